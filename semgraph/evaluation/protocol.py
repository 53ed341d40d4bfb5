"""The retrieval-with-feedback evaluation protocol (docs/algorithms.md §6.2, made concrete).

For each seed, ``n_queries`` query cases are drawn at random (among the cases that have at least one case of the
same diagnosis from another patient). For each query, every case of ANOTHER patient is ranked by HSBD (or plain
L1) to the query; the gain of a case is 1 if it has the query's diagnosis, else 0. A simulated reader who knows
the diagnoses then looks at the top ``top_l`` cases not yet marked and marks the first ``max_relevant`` of the
same diagnosis as relevant and the first ``max_irrelevant`` of another diagnosis as irrelevant;
:func:`semgraph.feedback.algorithms.apply_feedback` updates the term dissimilarities (and/or the query and the term
weights ``w``), the dendrogram and projections are rebuilt and the pool is re-ranked by ``||M diag(w) (a − q)||_1``. NDCG@K (K = 1..max_k) is recorded after every round on the whole
pool (the ranking as the metric produces it, marked cases are not pinned) and on the residual collection (every
case marked so far removed from the ranking and from the ideal ordering).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.evaluation.intervals import bootstrap_means
from semgraph.evaluation.metrics import FORMS, ndcg_curve
from semgraph.feedback.algorithms import (
    FeedbackParams,
    apply_feedback,
    available_algorithms,
    changes_dissimilarity,
    parse_algorithm,
)
from semgraph.retrieval import hsbd

__all__ = [
    "FEEDBACKS",
    "ProtocolConfig",
    "compare",
    "eligible_queries",
    "proxy_signatures",
    "run_protocol",
    "simulate_likelihoods",
]

#: Feedback settings compared by :func:`compare`: "none" (no learning, the reader's marks are still recorded) and
#: every registered algorithm of :mod:`semgraph.feedback.algorithms`.
FEEDBACKS = ("none", *available_algorithms())
_WORSE_TOL = 1e-9


@dataclass(frozen=True)
class ProtocolConfig:
    """Parameters of the protocol (defaults: the paper's 10 queries, 3 rounds, 3 + 3 marks among the top 10)."""

    n_queries: int = 10
    rounds: int = 3
    top_l: int = 10
    max_relevant: int = 3
    max_irrelevant: int = 3
    max_k: int = 25
    form: str = "jk"

    def __post_init__(self):
        for name, low, high in (("n_queries", 1, 10**6), ("rounds", 0, 10), ("top_l", 1, 10**6),
                                ("max_relevant", 0, 10**6), ("max_irrelevant", 0, 10**6), ("max_k", 1, 10**6)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise InvalidInput(f"{name} must be an integer in [{low}, {high}]; got {value!r}.")
        if self.form not in FORMS:
            raise ValueError(f"Invalid form: {self.form!r}. The supported values are {', '.join(map(repr, FORMS))}.")


# ---------------------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------------------


def simulate_likelihoods(truth, *, noise: float = 0.15, low: float = 0.2, high: float = 0.8,
                         seed: int = 0) -> np.ndarray:
    """Stand-in "predicted" likelihoods until trained term models exist.

    ``a = clip(low + (high − low)·y + N(0, noise²), 0, 1)`` element-wise, for ground-truth labels ``y ∈ {0, 1}``
    (or any values in [0, 1]); seeded with ``numpy.random.default_rng(seed)``.
    """
    y = np.asarray(truth, dtype=np.float64)
    if y.ndim != 2 or not np.all(np.isfinite(y)) or np.any(y < 0) or np.any(y > 1):
        raise InvalidInput("truth must be an N x k matrix of values in [0, 1].")
    if not (noise >= 0 and 0 <= low <= high <= 1):
        raise InvalidInput("need noise >= 0 and 0 <= low <= high <= 1.")
    rng = np.random.default_rng(seed)
    return np.clip(low + (high - low) * y + rng.normal(0.0, noise, size=y.shape), 0.0, 1.0)


def proxy_signatures(likelihoods) -> np.ndarray:
    """Stand-in term signatures for δΓ when no term models are stored: one row per term.

    Row ``i`` is term ``i``'s z-scored column of the N×k likelihood matrix (how the term varies over the cases),
    so ``δΓ`` becomes a correlation distance between terms: terms that co-occur get close, complementary terms
    (e.g. homogeneous / heterogeneous) far apart. A constant column gets its own orthogonal unit direction. It uses
    the likelihoods of every case (and no diagnosis).
    """
    A = np.asarray(likelihoods, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] < 2 or not np.all(np.isfinite(A)):
        raise InvalidInput("likelihoods must be a finite N x k matrix with N >= 2.")
    centred = A - A.mean(axis=0)
    sd = centred.std(axis=0)
    constant = sd <= 1e-12
    z = np.where(constant, 0.0, centred / np.where(constant, 1.0, sd))
    extra = np.zeros((A.shape[1], int(constant.sum())))
    extra[np.flatnonzero(constant), np.arange(int(constant.sum()))] = 1.0
    return np.hstack([z.T, extra])


def eligible_queries(diagnoses: Sequence[str], patients: Sequence[str]) -> np.ndarray:
    """Indices of the cases with at least one case of the same diagnosis from another patient."""
    d = np.asarray(diagnoses, dtype=object)
    p = np.asarray(patients, dtype=object)
    ok = [(np.any((d == d[i]) & (p != p[i]))) for i in range(d.size)]
    return np.flatnonzero(ok)


def _validate(vectors, diagnoses, patients, categories, dissimilarity):
    A = np.asarray(vectors, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] < 2 or A.shape[1] < 1:
        raise InvalidInput(f"vectors must be an N x k matrix with N >= 2; got shape {A.shape}.")
    if not np.all(np.isfinite(A)) or np.any(A < 0) or np.any(A > 1):
        raise InvalidInput("vectors must hold likelihoods in [0, 1].")
    n, k = A.shape
    if len(diagnoses) != n or len(patients) != n:
        raise InvalidInput(f"need one diagnosis and one patient id per case ({n}); got {len(diagnoses)} and "
                           f"{len(patients)}.")
    if len(categories) != k:
        raise InvalidInput(f"need one category per term ({k}); got {len(categories)}.")
    if dissimilarity is not None:
        D = np.asarray(dissimilarity, dtype=np.float64)
        if D.shape != (k, k):
            raise InvalidInput(f"the dissimilarity must be {k} x {k}; got {D.shape}.")
    return A


# ---------------------------------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------------------------------


def _distances(A: np.ndarray, q: np.ndarray, D: np.ndarray | None, w: np.ndarray | None = None) -> np.ndarray:
    """``||M diag(w) (a − q)||_1`` for every row a of A (M = I for plain L1, w = 1 without term weights)."""
    if w is not None:
        A, q = A * w, q * w
    if D is None:
        return np.abs(A - q).sum(axis=1)
    M = hsbd.projection(D)
    return np.abs(A @ M.T - M @ q).sum(axis=1)


def _rank(dist: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Pool indices sorted by distance (rounded to 1e-12 so that rounding noise does not break ties), then index."""
    d = np.round(dist[pool], 12)
    return pool[np.lexsort((pool, d))]


def _l1_feedbacks(feedbacks: Sequence[str]) -> list[str]:
    """The settings meaningful on plain L1 (no ``D``): "none" and those of ``feedbacks`` that leave ``D`` alone."""
    return ["none", *(fb for fb in feedbacks if fb != "none" and not changes_dissimilarity(fb))]


def _feedback_params(feedback) -> FeedbackParams | None:
    if feedback is None or feedback == "none":
        return None
    if isinstance(feedback, FeedbackParams):
        return feedback
    parse_algorithm(feedback)
    return FeedbackParams(algorithm=feedback)


def run_protocol(vectors, diagnoses: Sequence[str], patients: Sequence[str], categories: Sequence[str],
                 dissimilarity=None, *, feedback: str | FeedbackParams | None = "penalty", seed: int = 0,
                 config: ProtocolConfig = ProtocolConfig(), queries: Sequence[int] | None = None,
                 case_ids: Sequence[str] | None = None, keep_trace: bool = False) -> dict:
    """Run the protocol once (one seed, one setting).

    Parameters
    ----------
    vectors : array_like, shape (N, k)
        Term vectors of the cases (predicted likelihoods, reader labels or ground truth), in [0, 1].
    diagnoses, patients : sequence of str, length N
        Diagnosis and patient id of every case (relevance = same diagnosis; same-patient cases are never ranked).
    categories : sequence of str, length k
        Term categories (the same-category rule of the penalty algorithm).
    dissimilarity : array_like, shape (k, k), optional
        The baseline ``D0``; ``None`` ranks by plain L1 on the vectors (then only ``'none'`` and algorithms that do
        not change ``D``, such as ``'rocchio'``, are meaningful).
    feedback : str or FeedbackParams or None, default 'penalty'
        ``'none'``/None, an algorithm name of :mod:`semgraph.feedback.algorithms` or full parameters.
    seed : int
        Seeds the draw of the queries (ignored when ``queries`` is given).
    queries : sequence of int, optional
        Query indices to use instead of a random draw.
    case_ids : sequence of str, optional
        Names of the cases in the output (default: their indices as strings).
    keep_trace : bool
        Also return, per query, the ranking of every round with the relevance of its cases and the final ``D``.

    Returns
    -------
    dict
        ``queries`` (case ids), ``ndcg`` and ``residual`` (arrays of shape (n_queries, rounds + 1, max_k); NaN
        where undefined), ``marks`` (per query and round: relevant and irrelevant case ids) and, with
        ``keep_trace``, ``trace`` (per query: ``rankings`` and ``relevant``, the ranked case ids and their relevance
        in every round, the final ``dissimilarity_after``, ``query_after`` and ``weights_after``, the term weights
        (None without)).
    """
    A = _validate(vectors, diagnoses, patients, categories, dissimilarity)
    n, _ = A.shape
    cfg = config
    params = _feedback_params(feedback)
    if dissimilarity is None and params is not None and changes_dissimilarity(params.algorithm):
        usable = " or ".join(map(repr, _l1_feedbacks(FEEDBACKS)))
        raise InvalidInput(f"plain L1 ranking has no term dissimilarities to learn; use feedback {usable}.")
    D0 = None if dissimilarity is None else np.array(dissimilarity, dtype=np.float64)
    ids = [str(i) for i in range(n)] if case_ids is None else [str(c) for c in case_ids]
    diag = np.asarray(diagnoses, dtype=object)
    pat = np.asarray(patients, dtype=object)
    if queries is None:
        eligible = eligible_queries(diagnoses, patients)
        if eligible.size == 0:
            raise InvalidInput("no case has a case of the same diagnosis from another patient: nothing to evaluate.")
        rng = np.random.default_rng(seed)
        queries = rng.choice(eligible, size=min(cfg.n_queries, eligible.size), replace=False)
    queries = [int(q) for q in queries]
    placeholder = np.ones((A.shape[1], A.shape[1])) - np.eye(A.shape[1])  # D for query-only feedback on L1 (unused)

    rounds = cfg.rounds
    ndcg = np.full((len(queries), rounds + 1, cfg.max_k), np.nan)
    residual = np.full_like(ndcg, np.nan)
    marks_out, trace = [], []
    for qi, q in enumerate(queries):
        pool = np.flatnonzero(pat != pat[q])
        gains = (diag == diag[q]).astype(np.float64)
        q0 = A[q].copy()
        D = None if D0 is None else D0.copy()
        query, weights = q0.copy(), None
        marked: list[int] = []
        hist_rel = np.zeros((0, A.shape[1]))
        hist_irr = np.zeros((0, A.shape[1]))
        ranking = _rank(_distances(A, query, D), pool)
        rankings = []
        query_marks = []
        for t in range(rounds + 1):
            if t > 0:
                seen = set(marked)
                window = [c for c in ranking if c not in seen][: cfg.top_l]
                rel = [c for c in window if gains[c] > 0][: cfg.max_relevant]
                irr = [c for c in window if gains[c] == 0][: cfg.max_irrelevant]
                query_marks.append({"relevant": [ids[c] for c in rel], "irrelevant": [ids[c] for c in irr]})
                if params is not None:
                    result = apply_feedback(D if D is not None else placeholder,
                                            D0 if D0 is not None else placeholder, q0, A[rel], A[irr], categories,
                                            round_number=t, params=params, history_relevant=hist_rel,
                                            history_irrelevant=hist_irr, weights=weights)
                    if D is not None:
                        D = np.array(result.dissimilarity)
                    query, weights = np.array(result.query), result.weights
                hist_rel = np.vstack([hist_rel, A[rel]])
                hist_irr = np.vstack([hist_irr, A[irr]])
                marked.extend(rel + irr)
                ranking = _rank(_distances(A, query, D, weights), pool)
            rankings.append(ranking)
            ndcg[qi, t] = ndcg_curve(gains[ranking], max_k=cfg.max_k, form=cfg.form)
            seen = set(marked)
            rest = np.array([c for c in ranking if c not in seen], dtype=np.int64)
            if rest.size:
                residual[qi, t] = ndcg_curve(gains[rest], max_k=cfg.max_k, form=cfg.form)
        marks_out.append(query_marks)
        if keep_trace:
            trace.append({
                "query": ids[q], "rankings": [[ids[c] for c in r] for r in rankings],
                "relevant": [[bool(gains[c] > 0) for c in r] for r in rankings],
                "dissimilarity_after": None if D is None else D.tolist(), "query_after": query.tolist(),
                "weights_after": None if weights is None else weights.tolist(),
            })
    out = {"queries": [ids[q] for q in queries], "ndcg": ndcg, "residual": residual, "marks": marks_out}
    if keep_trace:
        out["trace"] = trace
    return out


# ---------------------------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------------------------


def _mean_sd(values: np.ndarray) -> dict:
    values = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (undefined residual NDCG) stay NaN
        mean = np.nanmean(values, axis=0)
        sd = np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else np.zeros_like(mean)
    return {"mean": _clean(mean), "sd": _clean(sd)}


def _band(curves: np.ndarray, rounds: list[int]) -> dict:
    """The mean over runs of ``curves`` (runs × rounds+1 × K) and, for the rounds ``rounds``, its 95 %
    percentile-bootstrap interval (``low``, ``high``: len(rounds) × K)."""
    mean, low, high = bootstrap_means(curves)
    return {"mean": _clean(mean), "low": _clean(low[rounds]), "high": _clean(high[rounds])}


def _clean(x):
    """ndarray/np scalar → nested lists of floats with NaN → None (JSON has no NaN)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        v = float(arr)
        return None if np.isnan(v) else round(v, 6)
    return [_clean(v) for v in arr]


#: The cut-off of the per-run figures (``at10``) that intervals and paired comparisons use.
REPORTED_K = 10


def _summarise(runs: list[dict], seeds: Sequence[int]) -> dict:
    """Mean ± sd over seeds of the per-seed mean curves, the mean over runs (queries of a seed, in seed order) with
    the bootstrap interval of round 0 and of the last round (``interval``), the gains, the queries that got worse,
    and per run the NDCG@:data:`REPORTED_K` of every round (``at10``, for intervals and pairing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN residual column stays NaN
        per_seed_ndcg = np.array([np.nanmean(r["ndcg"], axis=0) for r in runs])      # seeds x rounds+1 x K
        per_seed_res = np.array([np.nanmean(r["residual"], axis=0) for r in runs])
    worse, counts, gains = [], [], []
    for seed, r in zip(seeds, runs):
        curve_mean = np.nanmean(r["ndcg"], axis=2)                                     # queries x rounds+1
        delta = curve_mean[:, -1] - curve_mean[:, 0]
        gains.append(float(np.mean(delta)))
        bad = np.flatnonzero(delta < -_WORSE_TOL)
        counts.append(int(bad.size))
        worse.extend({"seed": int(seed), "query": r["queries"][i], "delta": round(float(delta[i]), 6)} for i in bad)
    n_queries = sum(len(r["queries"]) for r in runs)
    k = min(REPORTED_K, runs[0]["ndcg"].shape[2])
    ends = sorted({0, runs[0]["ndcg"].shape[1] - 1})
    return {
        "at10": _clean(np.concatenate([r["ndcg"][:, :, k - 1] for r in runs])),  # runs x rounds+1
        "ndcg": _mean_sd(per_seed_ndcg),
        "residual": _mean_sd(per_seed_res),
        "interval": {"rounds": ends, **{key: _band(np.concatenate([r[key] for r in runs]), ends)
                                        for key in ("ndcg", "residual")}},
        "gain": _mean_sd(np.array(gains)),  # mean over K of NDCG after the last round minus before, per seed
        "worse": {"count": _mean_sd(np.array(counts, dtype=float)), "total": int(sum(counts)),
                  "fraction": round(sum(counts) / n_queries, 6) if n_queries else None, "queries": worse},
    }


def _example(setting: str, seed: int, run: dict, dissimilarity, top: int) -> dict:
    """The example of :func:`compare` from a run with a trace: the NDCG@K curves of each of its ``queries`` per
    round (``ndcg_per_query``: queries × rounds+1 × max_k); for its first query (``query``) the top ``top`` of the
    ranking of every round (``rankings``) with their relevance (``relevant``), ``D`` before and after feedback."""
    trace = run["trace"][0]
    return {"setting": setting, "seed": seed, **trace,
            "rankings": [r[:top] for r in trace["rankings"]], "relevant": [r[:top] for r in trace["relevant"]],
            "dissimilarity_before": np.asarray(dissimilarity).tolist(),
            "queries": run["queries"], "ndcg_per_query": _clean(run["ndcg"])}


def compare(likelihoods, diagnoses: Sequence[str], patients: Sequence[str], categories: Sequence[str],
            dissimilarities: Mapping[str, np.ndarray], *, truth=None, seeds: Sequence[int] = tuple(range(20)),
            config: ProtocolConfig = ProtocolConfig(), feedbacks: Sequence[str] = FEEDBACKS,
            params: Mapping[str, FeedbackParams] | None = None, case_ids: Sequence[str] | None = None,
            source: str = "likelihoods", example: tuple[str, str] = ("combined", "regularised")) -> dict:
    """Run every compared setting over the seeds and return a JSON-serialisable result.

    Settings are ``"<source>/<D>/<feedback>"`` for every D of ``dissimilarities`` (e.g. 'image', 'ontology',
    'combined') and every feedback of ``feedbacks``, plus ``"<source>/l1/none"`` and ``"<source>/l1/<feedback>"``
    for every feedback of ``feedbacks`` that leaves ``D`` alone, e.g. rocchio (plain L1 on the vectors); with
    ``truth`` (ground-truth term vectors, N×k) the same settings again under the source ``"truth"`` as the ceiling
    of the term-based approach. All settings of one seed use the same queries.

    Returns
    -------
    dict
        ``config``, ``seeds``, ``settings`` (name → summary: ``ndcg``/``residual`` mean and sd over seeds, shape
        (rounds + 1) × max_k; ``interval``: the mean over runs, same shape, with the 95 % bootstrap interval of
        the ``rounds`` 0 and last; ``gain``; ``worse`` queries; ``at10``), ``regularisation`` (per source and D:
        queries made worse by ``penalty`` and whether ``regularised`` avoids them) and ``example`` (the first seed
        under the ``example`` setting, see :func:`_example`).
    """
    A = _validate(likelihoods, diagnoses, patients, categories, None)
    sources = {source: A}
    if truth is not None:
        sources["truth"] = _validate(truth, diagnoses, patients, categories, None)
        if sources["truth"].shape != A.shape:
            raise InvalidInput("truth must have the shape of the likelihoods.")
    for name, D in dissimilarities.items():
        if name == "l1":
            raise InvalidInput("'l1' is reserved for plain L1 ranking; rename that dissimilarity.")
        _validate(A, diagnoses, patients, categories, D)
    for fb in feedbacks:
        if fb != "none":
            parse_algorithm(fb)
    params = dict(params or {})
    eligible = eligible_queries(diagnoses, patients)
    if eligible.size == 0:
        raise InvalidInput("no case has a case of the same diagnosis from another patient: nothing to evaluate.")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise InvalidInput("need at least one seed.")
    draws = {s: np.random.default_rng(s).choice(eligible, size=min(config.n_queries, eligible.size), replace=False)
             for s in seeds}

    settings: dict[str, dict] = {}
    raw: dict[str, list[dict]] = {}
    example_out = None
    for src, vectors in sources.items():
        grid = [(d, fb) for d in dissimilarities for fb in feedbacks]
        grid += [("l1", fb) for fb in _l1_feedbacks(feedbacks)]
        for dname, fb in grid:
            name = f"{src}/{dname}/{fb}"
            D = None if dname == "l1" else dissimilarities[dname]
            fbp = None if fb == "none" else params.get(fb, fb)
            runs = []
            for s in seeds:
                want_trace = src == source and (dname, fb) == example and s == seeds[0]
                run = run_protocol(vectors, diagnoses, patients, categories, D, feedback=fbp, seed=s, config=config,
                                   queries=draws[s], case_ids=case_ids, keep_trace=want_trace)
                if want_trace:
                    example_out = _example(name, s, run, D, config.max_k)
                runs.append(run)
            raw[name] = runs
            settings[name] = {"source": src, "dissimilarity": dname, "feedback": fb, **_summarise(runs, seeds)}

    regularisation = {}
    for src in sources:
        for dname in dissimilarities:
            pen, reg = raw.get(f"{src}/{dname}/penalty"), raw.get(f"{src}/{dname}/regularised")
            if pen is None or reg is None:
                continue
            worse_p, worse_r = set(), set()
            for s, rp, rr in zip(seeds, pen, reg):
                for label, run, bucket in (("p", rp, worse_p), ("r", rr, worse_r)):
                    m = np.nanmean(run["ndcg"], axis=2)
                    for i in np.flatnonzero(m[:, -1] - m[:, 0] < -_WORSE_TOL):
                        bucket.add((s, run["queries"][i]))
            regularisation[f"{src}/{dname}"] = {
                "worse_penalty": len(worse_p), "worse_regularised": len(worse_r),
                "avoided": len(worse_p - worse_r), "still_worse": len(worse_p & worse_r),
                "new_worse": len(worse_r - worse_p),
            }
    return {
        "config": asdict(config),
        "seeds": seeds,
        "n_cases": int(A.shape[0]),
        "n_eligible_queries": int(eligible.size),
        "feedback_params": {fb: (params.get(fb) or FeedbackParams(algorithm=fb)).as_dict()
                            for fb in feedbacks if fb != "none"},
        "settings": settings,
        "regularisation": regularisation,
        "example": example_out,
    }
