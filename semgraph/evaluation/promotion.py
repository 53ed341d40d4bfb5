"""Learning across sessions (issue 17, point 4): does what readers taught in their sessions help the next reader?

:func:`cross_session` splits the PATIENTS of a collection into a training part and a held-out part. Simulated
readers (the reader of :mod:`semgraph.evaluation.protocol`: marks, among the top ``top_l`` cases not yet marked, up
to 3 of the query's diagnosis as relevant and 3 of another as irrelevant) run feedback sessions on training queries,
ranking only training cases, so that no held-out case is ever seen, marked or learned from. The final ``D`` of
every session is one session's learned values; the sessions' values are combined into a promoted baseline by the
rule of ``semgraph promote`` (:func:`promote_matrices`), and held-out queries (cases of held-out patients, ranking
every case of another patient) are ranked at round 0, before any feedback, with ``D0`` and with the promoted ``D``.
The per-query NDCG@k pairs give the mean difference with its 95 % bootstrap interval and the share of held-out
queries made better / worse (:func:`semgraph.evaluation.intervals.compare_paired`).

The promotion rule (docs/algorithms.md §5.5), on matrices: the vote is :func:`semgraph.graph.rounds.votes` itself,
fed one :class:`~semgraph.graph.rounds.LearnedChange` per session and changed pair (previous value = ``D0``, value =
the session's final ``D``; a session that moved a pair back to ``D0`` abstains, as a recorded net change of 0
does). Sessions of one reader on one query case count once (the latest); a pair is a candidate when at least
``min_sessions`` independent sessions agree in sign, and its proposed value is the mean of the agreeing sessions'
final values (what :func:`semgraph.feedback.promotion.promotion_candidates` proposes and what
:func:`semgraph.feedback.promotion.promote` writes for the agreeing sessions' rounds). The curator's decision is
simulated (ours): every candidate is promoted whose agreeing sessions outnumber those against (so a pair that is a
candidate both ways is left alone); ``majority=False`` promotes every candidate that is one only one way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.evaluation.intervals import bootstrap_mean, compare_paired
from semgraph.evaluation.protocol import ProtocolConfig, eligible_queries, run_protocol
from semgraph.feedback.algorithms import (
    DEFAULT_ALGORITHM,
    FeedbackParams,
    changes_dissimilarity,
    parse_algorithm,
)
from semgraph.graph.rounds import LearnedChange, votes

__all__ = ["Session", "cross_session", "promote_matrices", "round0_ndcg", "split_patients"]

_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def split_patients(patients: Sequence[str], *, train_fraction: float = 0.5, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training cases and of the held-out cases: the distinct patients (sorted, then shuffled with
    ``numpy.random.default_rng(seed)``) are cut at ``round(train_fraction · n_patients)`` (at least one patient on
    each side); every case goes with its patient, so no patient is on both sides."""
    if not 0.0 < train_fraction < 1.0:
        raise InvalidInput(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    pat = np.asarray([str(p) for p in patients], dtype=object)
    unique = sorted(set(pat))
    if len(unique) < 2:
        raise InvalidInput("need at least two patients to hold some out")
    order = np.random.default_rng(seed).permutation(len(unique))
    n_train = min(max(round(train_fraction * len(unique)), 1), len(unique) - 1)
    train = {unique[i] for i in order[:n_train]}
    in_train = np.array([p in train for p in pat], dtype=bool)
    return np.flatnonzero(in_train), np.flatnonzero(~in_train)


class Session:
    """One simulated session: the reader, the query case (id) and the final ``D``."""

    __slots__ = ("final", "query", "reader")

    def __init__(self, reader: str, query: str, final: np.ndarray):
        self.reader, self.query, self.final = str(reader), str(query), np.asarray(final, dtype=np.float64)


def promote_matrices(D0, sessions: Sequence[Session], *, min_sessions: int = 3, majority: bool = True,
                     terms: Sequence[str] | None = None) -> tuple[np.ndarray, list[dict]]:
    """The baseline after promotion of what ``sessions`` agree on (the rule of docs/algorithms.md §5.5, see the
    module docstring): ``D0`` with every promoted pair set (symmetrically) to the mean of its agreeing sessions'
    final values, and the promoted pairs (``term_a``, ``term_b``, ``old``, ``new``, ``sign``, ``agree``,
    ``against``). Sessions are in order of their start (a later one of the same reader and query replaces an
    earlier one)."""
    if isinstance(min_sessions, bool) or not isinstance(min_sessions, int) or min_sessions < 1:
        raise InvalidInput(f"min_sessions must be a positive integer, got {min_sessions!r}")
    base = np.array(D0, dtype=np.float64)
    k = base.shape[0]
    if base.shape != (k, k):
        raise InvalidInput(f"D0 must be a square matrix, got shape {base.shape}")
    names = [str(i) for i in range(k)] if terms is None else [str(t) for t in terms]
    if len(names) != k:
        raise InvalidInput(f"need one term name per row of D0 ({k}), got {len(names)}")
    upper = np.triu_indices(k, 1)
    by_pair: dict[tuple[int, int], list[LearnedChange]] = {}
    for n, s in enumerate(sessions):
        if s.final.shape != (k, k):
            raise InvalidInput(f"session {n} has a D of shape {s.final.shape}, expected {(k, k)}")
        sid = f"session/{n:06d}"
        for i, j in zip(*upper):
            value = float(s.final[i, j])
            if value != base[i, j]:
                by_pair.setdefault((int(i), int(j)), []).append(LearnedChange(
                    names[i], names[j], sid, sid + "/round", 1, float(base[i, j]), value, s.reader, s.query,
                    _EPOCH + dt.timedelta(seconds=n)))
    out, pairs = base.copy(), []
    for (i, j), group in sorted(by_pair.items()):
        v = votes(group)
        options = [(sign, agree, against) for sign, agree, against in ((-1, v.closer, v.farther),
                                                                        (1, v.farther, v.closer))
                   if len(agree) >= min_sessions and (len(agree) > len(against) if majority else True)]
        if len(options) != 1:  # none, or a candidate both ways (only without the majority condition)
            continue
        sign, agree, against = options[0]
        new = float(np.mean([x.value for x in agree]))
        out[i, j] = out[j, i] = new
        pairs.append({"term_a": names[i], "term_b": names[j], "old": float(base[i, j]), "new": new, "sign": sign,
                      "agree": len(agree), "against": len(against)})
    return out, pairs


def round0_ndcg(vectors, diagnoses: Sequence[str], patients: Sequence[str], categories: Sequence[str], D,
                queries: Sequence[int], k: int) -> np.ndarray:
    """NDCG@``k`` of every query (case index) ranked by HSBD under ``D`` before any feedback, among the cases of
    other patients (relevant: the query's diagnosis); NaN for a query without a relevant case."""
    config = ProtocolConfig(n_queries=len(queries), rounds=0, top_l=k, max_k=k)
    run = run_protocol(vectors, diagnoses, patients, categories, D, feedback=None, queries=queries, config=config)
    return run["ndcg"][:, 0, k - 1]


def cross_session(vectors, diagnoses: Sequence[str], patients: Sequence[str], categories: Sequence[str], D0, *,
                  train_fraction: float = 0.5, readers: int = 3, sessions_per_reader: int = 10, rounds: int = 3,
                  k: int = 10, feedback: str | FeedbackParams = DEFAULT_ALGORITHM, min_sessions: int = 3,
                  majority: bool = True, seed: int = 0, case_ids: Sequence[str] | None = None,
                  terms: Sequence[str] | None = None, train_patients: Sequence[str] | None = None,
                  resamples: int = 2000) -> dict:
    """Sessions on training queries, promotion of what they agree on, round-0 NDCG@``k`` on held-out queries.

    Parameters
    ----------
    vectors, diagnoses, patients, categories
        As for :func:`semgraph.evaluation.run_protocol` (N×k likelihoods in [0, 1], one diagnosis and patient per
        case, one category per term).
    D0 : array_like, shape (k, k)
        The baseline term dissimilarity.
    train_fraction : float
        Share of the patients whose cases are training cases (:func:`split_patients`, seeded by ``seed``), unless
        ``train_patients`` names them.
    readers, sessions_per_reader : int
        Each simulated reader draws ``sessions_per_reader`` training queries (without replacement while there are
        enough; a query that has a case of its diagnosis from another TRAINING patient) and runs one session on
        each, ranking training cases of other patients only, for ``rounds`` rounds with marks among the top ``k``.
    feedback : str or FeedbackParams
        The session's algorithm; it must learn ``D`` (e.g. 'penalty', 'regularised', 'penalty+rocchio').
    min_sessions, majority
        The promotion rule (:func:`promote_matrices`).

    Returns
    -------
    dict
        ``train_patients`` / ``heldout_patients``; ``sessions`` (reader, query case id, pairs changed);
        ``training_queries`` (distinct query case ids); ``heldout_queries`` (case ids, in the order of the
        per-query figures); ``before`` / ``after`` (round-0 NDCG@k per held-out query with ``D0`` / with the
        promoted ``D``); ``summary`` (``before``, ``after``: means with 95 % intervals; ``difference``: after − before
        paired by query, with the shares ``better`` / ``worse`` / ``ties``); ``promoted`` (the promoted pairs) and
        ``dissimilarity`` (the promoted ``D``, a list of lists).
    """
    A = np.asarray(vectors, dtype=np.float64)
    n = A.shape[0] if A.ndim == 2 else -1
    if n < 2 or len(diagnoses) != n or len(patients) != n:
        raise InvalidInput("vectors must be an N x k matrix with one diagnosis and one patient per case")
    base = np.array(D0, dtype=np.float64)
    params = feedback if isinstance(feedback, FeedbackParams) else FeedbackParams(algorithm=feedback)
    parse_algorithm(params.algorithm)
    if not changes_dissimilarity(params.algorithm):
        raise InvalidInput(f"feedback {params.algorithm!r} learns no term dissimilarity: nothing to promote")
    for name, value in (("readers", readers), ("sessions_per_reader", sessions_per_reader), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
    ids = [str(i) for i in range(n)] if case_ids is None else [str(c) for c in case_ids]
    diag = [str(d) for d in diagnoses]
    pat = np.asarray([str(p) for p in patients], dtype=object)

    if train_patients is None:
        train, held = split_patients(pat, train_fraction=train_fraction, seed=seed)
    else:
        chosen = {str(p) for p in train_patients}
        train = np.flatnonzero([p in chosen for p in pat])
        held = np.flatnonzero([p not in chosen for p in pat])
    if train.size < 2 or held.size == 0:
        raise InvalidInput("the split leaves too few training or held-out cases")

    # -- training sessions: on the training cases only (held-out cases are never ranked, marked or learned from)
    def sub(seq):
        return [seq[i] for i in train]

    train_eligible = eligible_queries(sub(diag), sub(list(pat)))
    if train_eligible.size == 0:
        raise InvalidInput("no training case has a case of its diagnosis from another training patient")
    rng = np.random.default_rng([seed, 1])
    config = ProtocolConfig(n_queries=1, rounds=rounds, top_l=k, max_k=k)
    sessions: list[Session] = []
    session_out = []
    for r in range(readers):
        reader = f"reader-{r}"
        size = sessions_per_reader
        queries = rng.choice(train_eligible, size=size, replace=size > train_eligible.size)
        run = run_protocol(A[train], sub(diag), sub(list(pat)), categories, base, feedback=params,
                           queries=queries, config=config, case_ids=sub(ids), keep_trace=True)
        for t in run["trace"]:
            final = np.array(t["dissimilarity_after"], dtype=np.float64)
            sessions.append(Session(reader, t["query"], final))
            session_out.append({"reader": reader, "query": t["query"],
                                "pairs_changed": int(np.count_nonzero(np.triu(final != base, 1)))})
    promoted_D, promoted = promote_matrices(base, sessions, min_sessions=min_sessions, majority=majority,
                                            terms=terms)

    # -- held-out queries: cases of held-out patients, ranking every case of another patient, round 0 only
    eligible = set(eligible_queries(diag, list(pat)).tolist())
    heldout_q = [int(i) for i in held if int(i) in eligible]
    if not heldout_q:
        raise InvalidInput("no held-out case has a case of its diagnosis from another patient")
    figures = {label: round0_ndcg(A, diag, list(pat), categories, D, heldout_q, k)
               for label, D in (("before", base), ("after", promoted_D))}
    training_queries = sorted({s.query for s in sessions})
    heldout_ids = [ids[i] for i in heldout_q]
    if set(heldout_ids) & set(training_queries):  # cannot happen: the patients are disjoint
        raise AssertionError("a held-out query was used for training")
    return {
        "seed": int(seed),
        "feedback": params.algorithm,
        "train_patients": sorted(set(pat[train])),
        "heldout_patients": sorted(set(pat[held])),
        "sessions": session_out,
        "training_queries": training_queries,
        "heldout_queries": heldout_ids,
        "before": [float(x) for x in figures["before"]],
        "after": [float(x) for x in figures["after"]],
        "summary": {
            "before": bootstrap_mean(figures["before"], resamples=resamples).as_dict(),
            "after": bootstrap_mean(figures["after"], resamples=resamples).as_dict(),
            "difference": compare_paired(figures["after"], figures["before"], resamples=resamples).as_dict(),
        },
        "promoted": promoted,
        "dissimilarity": promoted_D.tolist(),
    }
