"""Relevance feedback on term dissimilarities and on the query vector (docs/algorithms.md §5).

The algorithms live in one registry (:func:`register_algorithm`, :func:`available_algorithms`,
:func:`get_algorithm`): each entry names the function that applies its part of a round, whether that part changes
the term dissimilarities ``D``, moves the query and/or sets the term weights ``w``, and the :class:`FeedbackParams`
fields it reads. :func:`apply_feedback`, the evaluation protocol, the command line and the web app all read it.
Elementary algorithms combine with ``+`` (e.g. ``"regularised+rocchio"``) as long as at most one part changes
``D``, at most one moves the query and at most one sets the weights. The built-in ones:

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
``reweight`` (§5.7, per-term weights in the manner of MARS, Rui et al. 1998)
    With ``R`` = the original query and every case marked relevant so far and ``I`` = every case marked irrelevant
    so far: ``raw_i = (|mean_R,i − mean_I,i| + 0.05) / (sd_R,i + 0.1)`` (``1 / (sd_R,i + 0.1)`` without irrelevant
    marks), scaled to mean 1, and ``w = (1 − λ) + λ·raw``. The session then ranks by ``HSBD(w ⊙ x, w ⊙ q)``;
    neither ``D`` nor the query changes.

A session uses :data:`DEFAULT_ALGORITHM` unless told otherwise, :data:`TEXT_ALGORITHM` for a free-text query
(:func:`session_algorithm`). :func:`apply_feedback` is a pure function (no store, no I/O).

The round guard (§5.6, ours) sits on top of every algorithm: :func:`marked_evidence` measures how well a state
``(D, q, w)`` orders the cases marked so far, and :func:`guard_round` shrinks a candidate round (a backtracking line
search between the old and the new state) or refuses it when it would order them worse. A session runs it
(:meth:`semgraph.feedback.sessions.Session.compute_round`), since only the session knows which case each mark is on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.retrieval import hsbd
from semgraph.retrieval.index import check_term_weights
from semgraph.retrieval.similarity import _check_unit_dissimilarity, _matrix

__all__ = ["DEFAULT_ALGORITHM", "GUARD_HALVINGS", "GUARD_OUTCOMES", "TEXT_ALGORITHM", "Algorithm", "FeedbackParams",
           "FeedbackResult", "Guarded", "RoundInputs", "Step", "TermChange", "apply_feedback", "available_algorithms",
           "changed_pairs", "changes_dissimilarity", "check_algorithm", "discriminant_weights", "get_algorithm",
           "guard_round", "marked_evidence", "parse_algorithm", "penalty_votes", "register_algorithm",
           "session_algorithm"]

#: Feedback algorithm of a session whose query is a case or a term vector.
DEFAULT_ALGORITHM = "penalty"
#: Feedback algorithm of a text-query session: Rocchio moves the parsed term vector towards the relevant cases (the
#: query's unmentioned categories get the values the relevant cases share) and the regularised penalty learns term
#: dissimilarities inside its trust region.
TEXT_ALGORITHM = "regularised+rocchio"

_ALGORITHMS: dict[str, Algorithm] = {}  # name -> entry, in registration order (built-ins: below their steps)


def available_algorithms() -> tuple[str, ...]:
    """The registered elementary algorithms, in registration order."""
    return tuple(_ALGORITHMS)


def get_algorithm(name: str) -> Algorithm:
    """The registry entry of the elementary algorithm ``name``; ValueError if none is registered under it."""
    if name not in _ALGORITHMS:
        raise ValueError(f"Invalid algorithm: {name!r}. The supported values are "
                         f"{', '.join(map(repr, _ALGORITHMS))} and '+'-joined combinations.")
    return _ALGORITHMS[name]


def parse_algorithm(name: str) -> frozenset[str]:
    """The set of elementary algorithms in ``name`` (``"regularised+rocchio"`` → {regularised, rocchio}).

    Raises ValueError for an unknown part, a repeated part, or two parts that both change ``D`` (e.g. ``penalty``
    and ``regularised``: the latter already contains the penalty step), both move the query or both set the term
    weights.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"Invalid algorithm: {name!r}. Use one of {', '.join(_ALGORITHMS)} or a '+'-joined "
                         f"combination such as {TEXT_ALGORITHM!r}.")
    parts = [p.strip() for p in name.split("+")]
    for p in parts:
        if p not in _ALGORITHMS:
            raise ValueError(f"Invalid algorithm: {name!r} ({p!r} is unknown). The supported values are "
                             f"{', '.join(map(repr, _ALGORITHMS))} and '+'-joined combinations.")
    if len(set(parts)) != len(parts):
        raise ValueError(f"Invalid algorithm: {name!r} names a part twice.")
    for flag, what in (("changes_dissimilarity", "updates the term dissimilarities"),
                       ("moves_query", "moves the query"), ("sets_weights", "sets the term weights")):
        clash = [p for p in parts if getattr(_ALGORITHMS[p], flag)]
        if len(clash) > 1:
            raise ValueError(f"Invalid algorithm: {name!r}. {' and '.join(map(repr, clash))} each {what}; "
                             "choose one.")
    return frozenset(parts)


def changes_dissimilarity(algorithm: str) -> bool:
    """Whether a part of ``algorithm`` (a name as :func:`parse_algorithm` takes it) changes the term dissimilarities."""
    return any(_ALGORITHMS[p].changes_dissimilarity for p in parse_algorithm(algorithm))


def check_algorithm(algorithm: str) -> str:
    """``algorithm`` (a name as :func:`parse_algorithm` takes it) checked, outer spaces removed; InvalidInput for a
    bad or empty name."""
    if not isinstance(algorithm, str):
        raise InvalidInput(f"algorithm must be a text such as {DEFAULT_ALGORITHM!r} or {TEXT_ALGORITHM!r}")
    try:
        return FeedbackParams(algorithm=algorithm.strip()).algorithm
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def session_algorithm(algorithm: str | None, *, text: bool) -> str:
    """The feedback algorithm of a session, the one place that chooses it: ``algorithm`` checked
    (:func:`check_algorithm`) when one is given, else :data:`TEXT_ALGORITHM` for a text query, else
    :data:`DEFAULT_ALGORITHM`. InvalidInput for a bad name."""
    if algorithm in (None, ""):
        return TEXT_ALGORITHM if text else DEFAULT_ALGORITHM
    return check_algorithm(algorithm)


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
    """Parameters of :func:`apply_feedback` (defaults from docs/algorithms.md §5).

    Attributes
    ----------
    algorithm : str, default :data:`DEFAULT_ALGORITHM`
        A registered algorithm (:func:`available_algorithms`) or a ``+``-joined combination (see
        :func:`parse_algorithm`).
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
    lam : float in [0, 1], default 0.5
        λ of ``reweight``: the term weights are ``(1 − λ) + λ·raw`` (0: uniform weights, 1: the raw ones).
    """

    algorithm: str = DEFAULT_ALGORITHM
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
    lam: float = 0.5

    def __post_init__(self):
        parse_algorithm(self.algorithm)
        _number(self.rho, "rho", low=0.0, low_open=True)
        _number(self.tau, "tau", low=0.0, high=1.0)
        _number(self.eps, "eps", low=0.0)
        _number(self.d_min, "d_min", low=0.0, high=1.0, low_open=True)
        _number(self.kappa, "kappa", low=0.0)
        _number(self.lam, "lam", low=0.0, high=1.0)
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
    """Outcome of one feedback round; ``weights`` are the term weights after it (None: none, ``w = 1``)."""

    dissimilarity: np.ndarray
    query: np.ndarray
    changes: tuple[TermChange, ...]
    params: FeedbackParams
    weights: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundInputs:
    """The validated inputs of one round (see :func:`apply_feedback`), as every algorithm's step receives them."""

    dissimilarity: np.ndarray       # the current D, k x k
    baseline: np.ndarray            # the session's D0, k x k
    query: np.ndarray               # the ORIGINAL query q0, (k,)
    relevant: np.ndarray            # cases newly marked relevant, (m, k)
    irrelevant: np.ndarray          # ... irrelevant, (m, k)
    history_relevant: np.ndarray    # cases marked relevant in earlier rounds, (m', k)
    history_irrelevant: np.ndarray  # ... irrelevant, (m', k)
    categories: tuple[str, ...]     # one non-empty category per term
    round_number: int               # >= 1
    params: FeedbackParams


class Step(NamedTuple):
    """One algorithm's part of a round: the new ``D`` (k x k, symmetric, zero diagonal, off-diagonal in
    ``[d_min, 1]``) if it changes the dissimilarities, the new query (in [0, 1]) if it moves the query, the new
    term weights (k, finite, >= 0) if it sets them, else None."""

    dissimilarity: np.ndarray | None = None
    query: np.ndarray | None = None
    weights: np.ndarray | None = None


#: ``supports(q0, b, i, j, params)``: whether the marked case ``b`` (term vector) drove the change of pair (i, j).
Support = Callable[[np.ndarray, np.ndarray, int, int, FeedbackParams], bool]


@dataclass(frozen=True)
class Algorithm:
    """A registered elementary feedback algorithm.

    ``step`` computes its part of a round from the inputs alone (pure) and returns a :class:`Step` holding the new
    ``D`` exactly when ``changes_dissimilarity``, the new query exactly when ``moves_query`` and new term weights
    exactly when ``sets_weights``. ``parameters``
    are the :class:`FeedbackParams` fields it reads. ``supports`` (algorithms that change ``D``) tells which marked
    cases explain a changed pair, as a round's provenance records them; None: every case marked in the direction
    of the change (relevant for closer, irrelevant for farther).
    """

    name: str
    description: str
    step: Callable[[RoundInputs], Step]
    changes_dissimilarity: bool
    moves_query: bool
    parameters: tuple[str, ...]
    supports: Support | None = None
    sets_weights: bool = False


def register_algorithm(algorithm: Algorithm, *, replace: bool = False) -> None:
    """Add ``algorithm`` to the registry (after the registered ones). ValueError for a name that is not an
    identifier or is taken (unless ``replace``), an entry that changes nothing, or an unknown parameter name."""
    fields = {f.name for f in dataclasses.fields(FeedbackParams)} - {"algorithm"}
    if not algorithm.name.isidentifier():
        raise ValueError(f"an algorithm name must be an identifier, got {algorithm.name!r}.")
    if algorithm.name in _ALGORITHMS and not replace:
        raise ValueError(f"algorithm {algorithm.name!r} is already registered; pass replace=True.")
    if not (algorithm.changes_dissimilarity or algorithm.moves_query or algorithm.sets_weights):
        raise ValueError(f"algorithm {algorithm.name!r} must change the dissimilarities, move the query or set the "
                         "term weights.")
    unknown = set(algorithm.parameters) - fields
    if unknown:
        raise ValueError(f"algorithm {algorithm.name!r} reads unknown parameters {sorted(unknown)}; the "
                         f"FeedbackParams fields are {sorted(fields)}.")
    _ALGORITHMS[algorithm.name] = algorithm


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


def _ordered_fraction(D: np.ndarray, q: np.ndarray, rel: np.ndarray, irr: np.ndarray,
                      weights: np.ndarray | None = None) -> float:
    """Fraction of (relevant, irrelevant) pairs with h(q, rel) < h(q, irr), h = ||M diag(w) (x − q)||_1 (w = 1 when
    ``weights`` is None); ties count one half."""
    M = hsbd.projection(D) if weights is None else hsbd.projection(D) * weights
    yq = M @ q
    dr = np.abs(rel @ M.T - yq).sum(axis=1)
    di = np.abs(irr @ M.T - yq).sum(axis=1)
    diff = di[None, :] - dr[:, None]
    scale = 1e-12 * max(1.0, float(np.abs(diff).max(initial=0.0)))
    return float(np.mean(np.where(diff > scale, 1.0, np.where(diff < -scale, 0.0, 0.5))))


def _penalty(r: RoundInputs) -> Step:
    p = r.params
    S = penalty_votes(r.query, r.relevant, r.irrelevant, r.categories, tau=p.tau, eps=p.eps)
    out = np.clip(r.dissimilarity + p.rho * S, p.d_min, 1.0)
    np.fill_diagonal(out, 0.0)
    return Step(dissimilarity=out)


def _penalty_supports(q0: np.ndarray, b: np.ndarray, i: int, j: int, p: FeedbackParams) -> bool:
    """The penalty rule: ``b`` has one term of the pair present and comparable to the other term in the query."""
    return any(q0[x] > p.tau and b[y] > p.tau and abs(b[y] - q0[x]) <= p.eps + 1e-12 for x, y in ((i, j), (j, i)))


def _regularised(r: RoundInputs) -> Step:
    p, D, q, rel, irr = r.params, r.dissimilarity, r.query, r.relevant, r.irrelevant
    S = penalty_votes(q, rel, irr, r.categories, tau=p.tau, eps=p.eps)
    rho_t = p.rho / r.round_number if p.decay else p.rho
    lower = np.maximum(r.baseline - p.kappa, p.d_min)
    upper = np.maximum(np.minimum(r.baseline + p.kappa, 1.0), lower)  # if D0 + κ < d_min the metric guard wins

    def step(rho):
        out = np.clip(D + rho * S, lower, upper)
        np.fill_diagonal(out, 0.0)
        return out

    unchanged = step(0.0)  # D pulled into the trust region
    candidate = step(rho_t)
    if not p.accept_check or rel.shape[0] == 0 or irr.shape[0] == 0 or not np.any(S):
        return Step(dissimilarity=candidate)
    before = _ordered_fraction(unchanged, q, rel, irr)
    for _ in range(2):
        if _ordered_fraction(candidate, q, rel, irr) >= before - 1e-12:
            return Step(dissimilarity=candidate)
        rho_t /= 2.0
        candidate = step(rho_t)
    if _ordered_fraction(candidate, q, rel, irr) >= before - 1e-12:
        return Step(dissimilarity=candidate)
    return Step(dissimilarity=unchanged)


def _rocchio(r: RoundInputs) -> Step:
    p = r.params
    rel_all = np.vstack([r.history_relevant, r.relevant])
    irr_all = np.vstack([r.history_irrelevant, r.irrelevant])
    q = p.alpha * r.query
    if rel_all.shape[0]:
        q = q + p.beta * rel_all.mean(axis=0)
    if irr_all.shape[0]:
        q = q - p.gamma * irr_all.mean(axis=0)
    return Step(query=np.clip(q, 0.0, 1.0))


#: The constants of :func:`discriminant_weights` (ours): the offset of the numerator, which keeps a term on which
#: both sets agree from weighing 0, and the spread added to the relevant cases' sd, which bounds the weight of a
#: term on which they agree exactly.
REWEIGHT_OFFSET = 0.05
REWEIGHT_SPREAD = 0.1


def discriminant_weights(query, relevant, irrelevant, lam: float = 0.5) -> np.ndarray:
    """Term weights from the marks (§5.7): with ``R`` = the query and the ``relevant`` rows, ``I`` the
    ``irrelevant`` rows (sd: population standard deviation),

        raw_i = (|mean_R,i − mean_I,i| + 0.05) / (sd_R,i + 0.1)    (1 / (sd_R,i + 0.1) when I is empty),
        w = (1 − λ) + λ · raw / mean(raw),

    so the weights have mean 1 and ``λ = 0`` gives uniform weights. Inputs are assumed validated.

    >>> discriminant_weights([1, 0, .5], [[1, 0, .1]], [[0, 0, .9]]).round(4).tolist()  # (134, 44, 59) / 79
    [1.6962, 0.557, 0.7468]
    """
    R = np.vstack([np.asarray(query, dtype=np.float64)[None, :], np.asarray(relevant, dtype=np.float64)])
    irr = np.asarray(irrelevant, dtype=np.float64).reshape(-1, R.shape[1])
    spread = R.std(axis=0) + REWEIGHT_SPREAD
    raw = (np.abs(R.mean(axis=0) - irr.mean(axis=0)) + REWEIGHT_OFFSET) / spread if irr.shape[0] else 1.0 / spread
    return (1.0 - lam) + lam * raw / raw.mean()


def _reweight(r: RoundInputs) -> Step:
    rel_all = np.vstack([r.history_relevant, r.relevant])
    irr_all = np.vstack([r.history_irrelevant, r.irrelevant])
    return Step(weights=discriminant_weights(r.query, rel_all, irr_all, r.params.lam))


register_algorithm(Algorithm(
    "penalty", "The paper's penalty step: same-category pairs supported by the marks move by rho (§5.1).",
    _penalty, changes_dissimilarity=True, moves_query=False, parameters=("rho", "tau", "eps", "d_min"),
    supports=_penalty_supports))
register_algorithm(Algorithm(
    "regularised", "The penalty step with decay rho/t, a trust region around D0 and an acceptance check (§5.2).",
    _regularised, changes_dissimilarity=True, moves_query=False,
    parameters=("rho", "tau", "eps", "d_min", "kappa", "decay", "accept_check"), supports=_penalty_supports))
register_algorithm(Algorithm(
    "rocchio", "Rocchio query-point movement towards the relevant and away from the irrelevant cases (§5.3).",
    _rocchio, changes_dissimilarity=False, moves_query=True, parameters=("alpha", "beta", "gamma")))
register_algorithm(Algorithm(
    "reweight", "Per-term weights from all marks so far: terms the relevant cases agree on, and that separate them "
    "from the irrelevant ones, weigh more (§5.7).",
    _reweight, changes_dissimilarity=False, moves_query=False, parameters=("lam",), sets_weights=True))


def apply_feedback(dissimilarity, baseline, query, relevant, irrelevant, categories: Sequence[str], *,
                   round_number: int, params: FeedbackParams = FeedbackParams(), history_relevant=None,
                   history_irrelevant=None, weights=None) -> FeedbackResult:
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
        Algorithm (each of its parts runs its registered step on these inputs) and parameters.
    history_relevant, history_irrelevant : array_like, shape (m', k), optional
        Cases marked in earlier rounds of the session (``rocchio`` and ``reweight`` use all marks so far).
    weights : array_like, shape (k,), optional
        The session's current term weights (None: none); kept unless a part sets new ones (``reweight``).

    Returns
    -------
    FeedbackResult
        The new ``D`` (symmetric, zero diagonal, off-diagonal clamped to ``[d_min, 1]``), the new query (the input
        unless a part of the algorithm moves it, e.g. ``rocchio``), every changed pair ``i < j``, the parameters and
        the term weights (``weights`` unless a part sets them).

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
    new_w = check_term_weights(weights, k, "weights")

    inputs = RoundInputs(D, D0, q, rel, irr, hist_rel, hist_irr, tuple(categories), int(round_number), params)

    new_D = np.clip(D, params.d_min, 1.0)
    np.fill_diagonal(new_D, 0.0)
    new_q = q.copy()
    for name in parts:  # at most one part changes D and one moves the query (parse_algorithm): order is irrelevant
        step = _ALGORITHMS[name].step(inputs)
        if step.dissimilarity is not None:
            new_D = step.dissimilarity
        if step.query is not None:
            new_q = step.query
        if step.weights is not None:
            new_w = step.weights

    return FeedbackResult(dissimilarity=new_D, query=new_q, changes=changed_pairs(D, new_D), params=params,
                          weights=new_w)


def changed_pairs(before: np.ndarray, after: np.ndarray) -> tuple[TermChange, ...]:
    """Every off-diagonal pair ``i < j`` whose value differs between the k x k matrices ``before`` and ``after``."""
    iu, ju = np.triu_indices(before.shape[0], 1)
    changed = np.flatnonzero(after[iu, ju] != before[iu, ju])
    return tuple(TermChange(int(iu[n]), int(ju[n]), float(before[iu[n], ju[n]]), float(after[iu[n], ju[n]]))
                 for n in changed)


# ---------------------------------------------------------------------------------------------------------------
# the round guard (§5.6, ours)
# ---------------------------------------------------------------------------------------------------------------

#: Outcomes of :func:`guard_round`: the full step, a shrunk step, or no step at all.
GUARD_OUTCOMES = ("applied", "reduced", "refused")
#: How often :func:`guard_round` halves a harmful step (steps 1, 1/2, 1/4, 1/8) before it refuses the round.
GUARD_HALVINGS = 3
_EVIDENCE_TOL = 1e-12  # evidence values are multiples of 1/(2 m n): far coarser than this


def marked_evidence(dissimilarity, query, relevant, irrelevant, weights=None) -> float | None:
    """How well the state ``(D, q, w)`` ranks the marked cases: the fraction of (relevant, irrelevant) pairs of
    marked cases that ``HSBD(w ⊙ x, w ⊙ q)`` under ``D`` orders correctly, relevant strictly closer (a tie counts
    one half; ``weights`` None: ``w = 1``).

    ``relevant`` and ``irrelevant`` are (m, k) term vectors. 1 = every relevant case is ranked before every
    irrelevant one, 0 = the reverse; None when there is no pair (no relevant or no irrelevant case).

    >>> D = [[0, .2, .9], [.2, 0, .9], [.9, .9, 0]]
    >>> marked_evidence(D, [1, 0, 0], [[0, 1, 0]], [[0, 0, 1]])
    1.0
    """
    D = _square(dissimilarity, "dissimilarity")
    k = D.shape[0]
    q = _vector(query, k, "query")
    rel, irr = _marks(relevant, k, "relevant"), _marks(irrelevant, k, "irrelevant")
    w = check_term_weights(weights, k, "weights")
    if rel.shape[0] == 0 or irr.shape[0] == 0:
        return None
    return _ordered_fraction(D, q, rel, irr, w)


@dataclass(frozen=True)
class Guarded:
    """Outcome of :func:`guard_round`: ``guard`` in :data:`GUARD_OUTCOMES`, the ``step`` taken (1 = the full
    round, 0 = none), the resulting state (``weights`` None: no term weights), and the evidence
    (:func:`marked_evidence`) before and after it (None when the marks hold no (relevant, irrelevant) pair)."""

    guard: str
    step: float
    dissimilarity: np.ndarray
    query: np.ndarray
    before: float | None
    after: float | None
    weights: np.ndarray | None = None


def guard_round(dissimilarity, query, new_dissimilarity, new_query, relevant, irrelevant, *, d_min: float = 1e-3,
                halvings: int = GUARD_HALVINGS, weights=None, new_weights=None) -> Guarded:
    """Accept, shrink or refuse the round that takes the state ``(D, q, w)`` to ``(D', q', w')`` (§5.6, ours).

    With ``E`` = :func:`marked_evidence` on the marked cases ``relevant`` / ``irrelevant`` and the states on the
    segment between the old and the new one, ``D_t = D + t (D' − D)``, ``q_t = q + t (q' − q)``,
    ``w_t = w + t (w' − w)`` (term weights ``weights`` / ``new_weights``, None meaning ``w = 1``; none on
    either side: no weights at all): the round takes
    the largest ``t`` in 1, 1/2, ..., 2^−halvings with ``E(t) ≥ E(0)`` ("applied" for t = 1, else "reduced"), and
    ``t = 0`` ("refused": the state stays as it was) when there is none. Without a (relevant, irrelevant) pair it
    applies the round. ``D`` is first clamped to ``[d_min, 1]`` off the diagonal (as :func:`apply_feedback`
    returns it), so every ``D_t`` is a valid dissimilarity matrix and every ``q_t`` a likelihood vector.

    >>> D = [[0, .5, .9], [.5, 0, .9], [.9, .9, 0]]
    >>> g = guard_round(D, [1, 0, 0], D, [.5, .5, 0], [[0, 1, 0]], [[0, 0, 1]])
    >>> g.guard, g.step, g.before, g.after
    ('applied', 1.0, 1.0, 1.0)
    """
    D = _square(dissimilarity, "dissimilarity")
    k = D.shape[0]
    new_D = _square(new_dissimilarity, "new_dissimilarity")
    if new_D.shape != D.shape:
        raise InvalidInput(f"new_dissimilarity {new_D.shape} and dissimilarity {D.shape} must have the same shape.")
    q, new_q = _vector(query, k, "query"), _vector(new_query, k, "new_query")
    rel, irr = _marks(relevant, k, "relevant"), _marks(irrelevant, k, "irrelevant")
    w, new_w = check_term_weights(weights, k, "weights"), check_term_weights(new_weights, k, "new_weights")
    d_min = _number(d_min, "d_min", low=0.0, high=1.0, low_open=True)
    if isinstance(halvings, bool) or not isinstance(halvings, (int, np.integer)) or halvings < 0:
        raise InvalidInput(f"halvings must be an integer >= 0; got {halvings!r}.")
    D = np.clip(D, d_min, 1.0)
    np.fill_diagonal(D, 0.0)
    if rel.shape[0] == 0 or irr.shape[0] == 0:
        return Guarded("applied", 1.0, new_D, new_q, None, None, new_w)
    before = _ordered_fraction(D, q, rel, irr, w)
    dD, dq = new_D - D, new_q - q
    dw = None if w is None and new_w is None else _ones_if_none(new_w, k) - _ones_if_none(w, k)
    for n in range(int(halvings) + 1):
        t = 0.5 ** n
        D_t, q_t, w_t = (new_D, new_q, new_w) if n == 0 else (D + t * dD, q + t * dq, None)
        if n:
            np.fill_diagonal(D_t, 0.0)
            D_t = np.clip(D_t, d_min, 1.0)  # rounding only: D_t lies between two valid matrices
            np.fill_diagonal(D_t, 0.0)
            q_t = np.clip(q_t, 0.0, 1.0)
            w_t = None if dw is None else np.maximum(_ones_if_none(w, k) + t * dw, 0.0)
        after = _ordered_fraction(D_t, q_t, rel, irr, w_t)
        if after >= before - _EVIDENCE_TOL:
            return Guarded("applied" if n == 0 else "reduced", t, D_t, q_t, before, after, w_t)
    return Guarded("refused", 0.0, D, q.copy(), before, before, w)


def _ones_if_none(weights: np.ndarray | None, k: int) -> np.ndarray:
    """The term weights ``w``, with ``w = 1`` for None."""
    return np.ones(k) if weights is None else weights
