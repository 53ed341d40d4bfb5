"""Relevance feedback on term dissimilarities and on the query vector (ALGORITHMS.md §5).

Three algorithms, selectable and combinable with ``+`` (e.g. ``"regularised+rocchio"``):

``penalty`` (the paper, §5.1)
    For every query term ``x_i`` with ``a_i > τ`` and every other term ``x_j`` of the same Table-1 category: if
    *any* newly marked relevant case has ``b_j > τ`` and ``|b_j − a_i| ≤ ε``, the pair gets a vote −1; if any
    irrelevant case does, +1. The votes are symmetrised, ``S = sign(S + Sᵀ)`` (a pair supported by both sets
    cancels), and ``D ← clip(D + ρ·S, d_min, 1)`` off the diagonal. So a pair moves by at most ρ per round.
``regularised`` (§5.2, our guard against over-fitting)
    The same step with ``ρ_t = ρ / t`` in round ``t`` (``decay``), kept inside a trust region
    ``|D − D0| ≤ κ`` around the baseline, and accepted only if consistent with the marks: the fraction of
    (relevant, irrelevant) pairs ordered correctly by HSBD to the query must not decrease; if it does, ``ρ_t`` is
    halved (at most twice) and, if it still decreases, the round leaves ``D`` unchanged.
``rocchio`` (§5.3, query-point movement)
    ``q = clip(α·q0 + β·mean(relevant so far) − γ·mean(irrelevant so far), 0, 1)`` with ``q0`` the original query;
    ``D`` is not changed.

:func:`apply_feedback` is a pure function (no store, no I/O).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from . import hsbd
from .errors import InvalidInput
from .similarity import _check_unit_dissimilarity, _matrix

__all__ = ["ALGORITHMS", "FeedbackParams", "FeedbackResult", "TermChange", "apply_feedback", "parse_algorithm",
           "penalty_votes"]

#: The elementary algorithms; ``FeedbackParams.algorithm`` joins one or more of them with ``+``.
ALGORITHMS = ("penalty", "regularised", "rocchio")


def parse_algorithm(name: str) -> frozenset[str]:
    """The set of elementary algorithms in ``name`` (``"regularised+rocchio"`` → {regularised, rocchio}).

    Raises ValueError for an unknown part, a repeated part, or ``penalty`` together with ``regularised`` (both
    change ``D``; ``regularised`` already contains the penalty step).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"Invalid algorithm: {name!r}. Use one of {', '.join(ALGORITHMS)} or a '+'-joined "
                         "combination such as 'regularised+rocchio'.")
    parts = [p.strip() for p in name.split("+")]
    for p in parts:
        if p not in ALGORITHMS:
            raise ValueError(f"Invalid algorithm: {name!r} ({p!r} is unknown). The supported values are "
                             f"{', '.join(map(repr, ALGORITHMS))} and '+'-joined combinations.")
    if len(set(parts)) != len(parts):
        raise ValueError(f"Invalid algorithm: {name!r} names a part twice.")
    if {"penalty", "regularised"} <= set(parts):
        raise ValueError(f"Invalid algorithm: {name!r}. 'penalty' and 'regularised' both update the term "
                         "dissimilarities; choose one (regularised = penalty + guards).")
    return frozenset(parts)


def _number(value, name: str, *, low: float, high: float = math.inf, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInput(f"{name} must be a number; got {value!r}.")
    v = float(value)
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and v <= high
    if not ok:
        bound = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise InvalidInput(f"{name} must be in {bound}; got {value!r}.")
    return v


@dataclass(frozen=True)
class FeedbackParams:
    """Parameters of :func:`apply_feedback` (defaults from ALGORITHMS.md §5).

    Attributes
    ----------
    algorithm : str, default 'penalty'
        ``'penalty'``, ``'regularised'``, ``'rocchio'`` or a ``+``-joined combination (see :func:`parse_algorithm`).
    rho : float > 0, default 0.1
        Step ρ of the penalty update.
    tau : float in [0, 1], default 0.5
        A term is "present" when its likelihood exceeds τ.
    eps : float >= 0, default 0.15
        Likelihoods ``b_j`` and ``a_i`` are "comparable" when ``|b_j − a_i| ≤ ε``.
    d_min : float in (0, 1), default 1e-3
        Lower bound of every off-diagonal dissimilarity (keeps HSBD a metric).
    kappa : float >= 0, default 0.3
        Trust region ``|D − D0| ≤ κ`` (regularised).
    decay : bool, default True
        Step ``ρ_t = ρ / t`` in round ``t`` (regularised).
    accept_check : bool, default True
        Halve the step (at most twice), then reject it, while it orders fewer marked pairs correctly (regularised).
    alpha, beta, gamma : float >= 0, defaults 1.0, 0.75, 0.15
        Rocchio weights of the original query, the relevant centroid and the irrelevant centroid.
    """

    algorithm: str = "penalty"
    rho: float = 0.1
    tau: float = 0.5
    eps: float = 0.15
    d_min: float = 1e-3
    kappa: float = 0.3
    decay: bool = True
    accept_check: bool = True
    alpha: float = 1.0
    beta: float = 0.75
    gamma: float = 0.15

    def __post_init__(self):
        parse_algorithm(self.algorithm)
        _number(self.rho, "rho", low=0.0, low_open=True)
        _number(self.tau, "tau", low=0.0, high=1.0)
        _number(self.eps, "eps", low=0.0)
        _number(self.d_min, "d_min", low=0.0, high=1.0, low_open=True)
        _number(self.kappa, "kappa", low=0.0)
        for name in ("alpha", "beta", "gamma"):
            _number(getattr(self, name), name, low=0.0)
        for name in ("decay", "accept_check"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInput(f"{name} must be true or false; got {getattr(self, name)!r}.")

    @property
    def parts(self) -> frozenset[str]:
        """The elementary algorithms of :attr:`algorithm`."""
        return parse_algorithm(self.algorithm)

    def as_dict(self) -> dict:
        """All parameters as a JSON-serialisable dict (stored as ``sg:parameters`` of a round)."""
        return asdict(self)


@dataclass(frozen=True)
class TermChange:
    """One off-diagonal pair ``(i, j)``, ``i < j``, whose dissimilarity changed."""

    i: int
    j: int
    before: float
    after: float


@dataclass(frozen=True)
class FeedbackResult:
    """Outcome of one feedback round."""

    dissimilarity: np.ndarray
    query: np.ndarray
    changes: tuple[TermChange, ...]
    params: FeedbackParams


# ---------------------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------------------


def _square(value, name: str) -> np.ndarray:
    """A k x k unit dissimilarity matrix (finite, symmetric, zero diagonal, in [0, 1]), or InvalidInput."""
    return _check_unit_dissimilarity(_matrix(value, name), name)


def _vector(value, k: int, name: str) -> np.ndarray:
    try:
        v = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be a numeric vector ({exc}).") from None
    if v.shape != (k,):
        raise InvalidInput(f"{name} must have shape ({k},); got {v.shape}.")
    if not np.all(np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
        raise InvalidInput(f"{name} must hold likelihoods in [0, 1].")
    return v


def _marks(value, k: int, name: str) -> np.ndarray:
    if value is None:
        return np.zeros((0, k))
    try:
        m = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be an m x {k} matrix ({exc}).") from None
    if m.size == 0:
        return np.zeros((0, k))
    if m.ndim != 2 or m.shape[1] != k:
        raise InvalidInput(f"{name} must be an m x {k} matrix (one row per marked case); got shape {m.shape}.")
    if not np.all(np.isfinite(m)) or np.any(m < 0) or np.any(m > 1):
        raise InvalidInput(f"{name} must hold likelihoods in [0, 1].")
    return m


# ---------------------------------------------------------------------------------------------------------------
# the algorithms
# ---------------------------------------------------------------------------------------------------------------


def penalty_votes(query, relevant, irrelevant, categories: Sequence[str], *, tau: float = 0.5,
                  eps: float = 0.15) -> np.ndarray:
    """The symmetric sign matrix ``S ∈ {−1, 0, 1}^{k×k}`` of one round of the paper's algorithm (§5.1).

    ``S[i, j] = −1``: decrease δ(x_i, x_j); ``+1``: increase; 0: unchanged. Zero diagonal; only same-category pairs
    can be non-zero. Inputs are assumed validated (see :func:`apply_feedback`).
    """
    a = np.asarray(query, dtype=np.float64)
    k = a.size
    cats = np.asarray(categories, dtype=object)
    same = cats[:, None] == cats[None, :]
    np.fill_diagonal(same, False)
    active = a > tau

    def support(marks: np.ndarray) -> np.ndarray:
        # hit[i, j] = any case b with b_j > tau and |b_j - a_i| <= eps
        if marks.shape[0] == 0:
            return np.zeros((k, k), dtype=bool)
        present = marks > tau                                                   # m x k (over j)
        close = np.abs(marks[:, None, :] - a[None, :, None]) <= eps + 1e-12     # m x k(i) x k(j)
        return np.any(present[:, None, :] & close, axis=0)

    mask = active[:, None] & same
    votes = np.where(mask & support(np.asarray(relevant)), -1, 0) + np.where(mask & support(np.asarray(irrelevant)), 1, 0)
    S = np.sign(votes + votes.T).astype(np.float64)
    np.fill_diagonal(S, 0.0)
    return S


def _ordered_fraction(D: np.ndarray, q: np.ndarray, rel: np.ndarray, irr: np.ndarray) -> float:
    """Fraction of (relevant, irrelevant) pairs with HSBD(q, rel) < HSBD(q, irr); ties count one half."""
    M = hsbd.projection(D)
    yq = M @ q
    dr = np.abs(rel @ M.T - yq).sum(axis=1)
    di = np.abs(irr @ M.T - yq).sum(axis=1)
    diff = di[None, :] - dr[:, None]
    scale = 1e-12 * max(1.0, float(np.abs(diff).max(initial=0.0)))
    return float(np.mean(np.where(diff > scale, 1.0, np.where(diff < -scale, 0.0, 0.5))))


def _penalty_step(D, S, rho, d_min):
    out = np.clip(D + rho * S, d_min, 1.0)
    np.fill_diagonal(out, 0.0)
    return out


def _regularised_step(D, D0, S, rho_t, p: FeedbackParams, q, rel, irr):
    lower = np.maximum(D0 - p.kappa, p.d_min)
    upper = np.maximum(np.minimum(D0 + p.kappa, 1.0), lower)  # if D0 + κ < d_min the metric guard wins

    def step(r):
        out = np.clip(D + r * S, lower, upper)
        np.fill_diagonal(out, 0.0)
        return out

    unchanged = step(0.0)  # D pulled into the trust region
    candidate = step(rho_t)
    if not p.accept_check or rel.shape[0] == 0 or irr.shape[0] == 0 or not np.any(S):
        return candidate
    before = _ordered_fraction(unchanged, q, rel, irr)
    for _ in range(2):
        if _ordered_fraction(candidate, q, rel, irr) >= before - 1e-12:
            return candidate
        rho_t /= 2.0
        candidate = step(rho_t)
    if _ordered_fraction(candidate, q, rel, irr) >= before - 1e-12:
        return candidate
    return unchanged


def _rocchio(q0, rel_all, irr_all, p: FeedbackParams) -> np.ndarray:
    q = p.alpha * q0
    if rel_all.shape[0]:
        q = q + p.beta * rel_all.mean(axis=0)
    if irr_all.shape[0]:
        q = q - p.gamma * irr_all.mean(axis=0)
    return np.clip(q, 0.0, 1.0)


def apply_feedback(dissimilarity, baseline, query, relevant, irrelevant, categories: Sequence[str], *,
                   round_number: int, params: FeedbackParams = FeedbackParams(), history_relevant=None,
                   history_irrelevant=None) -> FeedbackResult:
    """Apply one round of relevance feedback.

    Parameters
    ----------
    dissimilarity : array_like, shape (k, k)
        Current term dissimilarities ``D`` (symmetric, zero diagonal, entries in [0, 1]).
    baseline : array_like, shape (k, k)
        The baseline ``D0`` of the session (centre of the trust region of ``regularised``).
    query : array_like, shape (k,)
        The query's term likelihoods. For ``rocchio`` this is the ORIGINAL query ``q0``.
    relevant, irrelevant : array_like, shape (m, k)
        Likelihoods of the cases newly marked in this round (``(0, k)``, ``[]`` or ``None`` when there are none).
    categories : sequence of str, length k
        Non-empty category of every term (a collection's ``categories``); only terms of one category are paired.
    round_number : int >= 1
        1 for the first round of a session (``ρ_t = ρ / t`` with ``decay``).
    params : FeedbackParams
        Algorithm and parameters.
    history_relevant, history_irrelevant : array_like, shape (m', k), optional
        Cases marked in earlier rounds of the session (``rocchio`` averages over all marks so far).

    Returns
    -------
    FeedbackResult
        The new ``D`` (symmetric, zero diagonal, off-diagonal clamped to ``[d_min, 1]``), the new query (the input
        unless ``rocchio`` is part of the algorithm), every changed pair ``i < j``, and the parameters.

    Raises
    ------
    semgraph.errors.InvalidInput
        On bad shapes or values (nothing else happens: the function is pure).
    ValueError
        On an unknown algorithm name.

    Examples
    --------
    >>> D = [[0, .5, .8, .8], [.5, 0, .8, .8], [.8, .8, 0, .5], [.8, .8, .5, 0]]
    >>> r = apply_feedback(D, D, [.9, 0, 0, 0], [[0, .9, 0, 0]], [], ["a", "a", "b", "b"], round_number=1)
    >>> [(c.i, c.j, c.before, round(c.after, 3)) for c in r.changes]
    [(0, 1, 0.5, 0.4)]
    """
    if not isinstance(params, FeedbackParams):
        raise InvalidInput("params must be a FeedbackParams.")
    parts = parse_algorithm(params.algorithm)
    if isinstance(round_number, bool) or not isinstance(round_number, (int, np.integer)) or round_number < 1:
        raise InvalidInput(f"round_number must be an integer >= 1; got {round_number!r}.")
    D = _square(dissimilarity, "dissimilarity")
    k = D.shape[0]
    D0 = _square(baseline, "baseline")
    if D0.shape != D.shape:
        raise InvalidInput(f"baseline {D0.shape} and dissimilarity {D.shape} must have the same shape.")
    q = _vector(query, k, "query")
    if isinstance(categories, str) or len(categories) != k or not all(isinstance(c, str) for c in categories):
        raise InvalidInput(f"categories must be a sequence of {k} category names.")
    if not all(c.strip() for c in categories):
        raise InvalidInput("every term needs a non-empty category (an empty one would pair it with every other "
                           "uncategorised term); give each term its own category to pair none")
    rel = _marks(relevant, k, "relevant")
    irr = _marks(irrelevant, k, "irrelevant")
    hist_rel = _marks(history_relevant, k, "history_relevant")
    hist_irr = _marks(history_irrelevant, k, "history_irrelevant")
    p = params

    new_D = np.clip(D, p.d_min, 1.0)
    np.fill_diagonal(new_D, 0.0)
    if "penalty" in parts or "regularised" in parts:
        S = penalty_votes(q, rel, irr, categories, tau=p.tau, eps=p.eps)
        if "penalty" in parts:
            new_D = _penalty_step(D, S, p.rho, p.d_min)
        else:
            rho_t = p.rho / round_number if p.decay else p.rho
            new_D = _regularised_step(D, D0, S, rho_t, p, q, rel, irr)

    new_q = q.copy()
    if "rocchio" in parts:
        new_q = _rocchio(q, np.vstack([hist_rel, rel]), np.vstack([hist_irr, irr]), p)

    iu, ju = np.triu_indices(k, 1)
    changed = np.flatnonzero(new_D[iu, ju] != D[iu, ju])
    changes = tuple(TermChange(int(iu[n]), int(ju[n]), float(D[iu[n], ju[n]]), float(new_D[iu[n], ju[n]]))
                    for n in changed)
    return FeedbackResult(dissimilarity=new_D, query=new_q, changes=changes, params=p)
