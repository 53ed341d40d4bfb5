"""Normalised discounted cumulative gain (NDCG@K)."""

from __future__ import annotations

import numpy as np

from semgraph.errors import InvalidInput

__all__ = ["FORMS", "dcg", "ndcg", "ndcg_curve"]

#: Allowed values of ``form``: Järvelin & Kekäläinen 2002 (primary) and Burges et al. 2005.
FORMS = ("jk", "burges")


def _gains(value, name: str) -> np.ndarray:
    try:
        g = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be a numeric vector ({exc}).") from None
    if g.ndim != 1:
        raise InvalidInput(f"{name} must be a 1-D vector of gains; got shape {g.shape}.")
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise InvalidInput(f"{name} must hold finite non-negative gains.")
    return g


def _check_form(form: str) -> str:
    if form not in FORMS:
        raise ValueError(f"Invalid form: {form!r}. The supported values are {', '.join(map(repr, FORMS))}.")
    return form


def _terms(g: np.ndarray, form: str) -> np.ndarray:
    """Discounted gain of every rank r = 1..n."""
    r = np.arange(1, g.size + 1, dtype=np.float64)
    if form == "jk":
        return g / np.maximum(1.0, np.log2(r))
    return (np.power(2.0, g) - 1.0) / np.log2(r + 1.0)


def dcg(gains, k: int | None = None, *, form: str = "jk") -> float:
    """Discounted cumulative gain of a ranked list of gains, cut at rank ``k`` (default: the whole list).

    ``form='jk'``: ``DCG@K = Σ_{r=1}^{K} g_r / max(1, log2 r)`` (Järvelin & Kekäläinen, ACM TOIS 20(4), 2002;
    no discount at ranks 1 and 2). ``form='burges'``: ``Σ_{r=1}^{K} (2^{g_r} − 1) / log2(r + 1)``.

    >>> dcg([1, 0, 1])  # 1/1 + 0/1 + 1/log2(3)
    1.6309297535714575
    """
    _check_form(form)
    g = _gains(gains, "gains")
    if k is not None:
        g = g[: max(int(k), 0)]
    return float(_terms(g, form).sum())


def ndcg_curve(ranked_gains, pool_gains=None, max_k: int = 25, *, form: str = "jk") -> np.ndarray:
    """NDCG@K for K = 1..max_k of one ranking.

    Parameters
    ----------
    ranked_gains : array_like, shape (n,)
        Gains of the ranked items, best-ranked first.
    pool_gains : array_like, optional
        Gains of the whole candidate pool the ideal ordering is taken from (default: ``ranked_gains``, i.e. the
        ranking covers the whole pool).
    max_k : int >= 1, default 25
    form : {'jk', 'burges'}, default 'jk'

    Returns
    -------
    ndarray, shape (max_k,)
        ``DCG@K / IDCG@K``, in [0, 1]. When K exceeds the list length, DCG and IDCG stop growing. NaN where
        ``IDCG@K = 0`` (no item with a positive gain in the pool: NDCG is undefined).

    Examples
    --------
    >>> ndcg_curve([0, 1], max_k=2).tolist()  # ideal [1, 0]: NDCG@1 = 0, NDCG@2 = 1/1
    [0.0, 1.0]
    """
    _check_form(form)
    if isinstance(max_k, bool) or not isinstance(max_k, (int, np.integer)) or max_k < 1:
        raise InvalidInput(f"max_k must be a positive integer; got {max_k!r}.")
    ranked = _gains(ranked_gains, "ranked_gains")
    pool = ranked if pool_gains is None else _gains(pool_gains, "pool_gains")
    if pool.size < ranked.size:
        raise InvalidInput("pool_gains must contain at least as many items as ranked_gains.")
    ideal = np.sort(pool)[::-1]

    def cumulative(g):
        c = np.cumsum(_terms(g[:max_k], form))
        if c.size < max_k:
            c = np.concatenate([c, np.full(max_k - c.size, c[-1] if c.size else 0.0)])
        return c

    num, den = cumulative(ranked), cumulative(ideal)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return np.minimum(out, 1.0)


def ndcg(ranked_gains, k: int, pool_gains=None, *, form: str = "jk") -> float:
    """NDCG@k of one ranking (see :func:`ndcg_curve`)."""
    return float(ndcg_curve(ranked_gains, pool_gains, k, form=form)[-1])
