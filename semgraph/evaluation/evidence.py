"""Evidence for promoting learned term relations (docs/algorithms.md §5.5): would the current promotion candidates
improve retrieval for queries that no feedback round used?

:func:`promotion_evidence` takes the collection's baseline ``D0`` and ``D1``, the same baseline with the current
promotion candidates applied as :func:`semgraph.feedback.promotion.promote` applies values
(:func:`~semgraph.feedback.promotion.promoted_matrix`), and ranks held-out queries with both at round 0: the cases
with a diagnosis that were never marked nor the query of a session with a round, each ranking the cases with a
diagnosis of other patients (relevant: the same diagnosis). Nothing is written to the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from kg import Store
from semgraph.errors import InvalidInput, NotFound
from semgraph.evaluation.intervals import TIE, PairedComparison, compare_paired
from semgraph.evaluation.promotion import round0_ndcg
from semgraph.evaluation.protocol import eligible_queries
from semgraph.feedback.promotion import Candidate, promoted_matrix, promotion_candidates
from semgraph.graph.casegraph import Case
from semgraph.graph.collection import Collection
from semgraph.graph.collection import resolve as resolve_collection
from semgraph.graph.rounds import feedback_cases
from semgraph.retrieval import hsbd
from semgraph.retrieval.engine import Engine, baseline_dissimilarity

__all__ = ["PromotionEvidence", "promotion_evidence", "signed"]


def signed(x: float) -> str:
    """``x`` with three decimals and its sign, a true minus sign for negative values (``+0.012``, ``−0.004``)."""
    return f"{x:+.3f}".replace("-", "\u2212")


@dataclass(frozen=True)
class PromotionEvidence:
    """Round-0 NDCG@``k`` of held-out queries under the baseline (``before``) and after promotion (``after``), one
    value per query of ``queries``; ``pairs`` the baseline changes ``(term_a, term_b, old, new)``. ``reason`` says
    why nothing was measured (then ``queries`` is empty and ``difference`` None)."""

    collection: str
    k: int
    min_sessions: int
    pairs: tuple[tuple[str, str, float, float], ...] = ()
    queries: tuple[str, ...] = ()
    before: tuple[float, ...] = ()
    after: tuple[float, ...] = ()
    difference: PairedComparison | None = None  # after − before, paired by query
    reason: str | None = None

    def counts(self) -> dict[str, int]:
        """Queries ranked better, worse and unchanged (a difference within the intervals' tie tolerance)."""
        d = np.subtract(self.after, self.before)
        return {"better": int(np.sum(d > TIE)), "worse": int(np.sum(d < -TIE)),
                "unchanged": int(np.sum(np.abs(d) <= TIE))}

    def reading(self) -> str:
        """One sentence saying what the figures mean (or why there are none)."""
        if self.difference is None:
            return f"Nothing to measure: {self.reason}."
        d, n = self.difference.difference, len(self.pairs)
        return (f"Promoting the {n} candidate pair{'s' * (n != 1)} would change mean NDCG@{self.k} on "
                f"{len(self.queries)} held-out queries by {signed(d.mean)} (95 % CI {signed(d.low)} to "
                f"{signed(d.high)}); {100 * self.difference.worse:.0f} % of queries would rank worse.")

    def as_dict(self) -> dict:
        """JSON-ready: the figures, the per-query values, the counts and shares, the reading."""
        measured = self.difference is not None
        return {
            "collection": self.collection, "k": self.k, "min_sessions": self.min_sessions,
            "pairs": [{"term_a": a, "term_b": b, "old": old, "new": new} for a, b, old, new in self.pairs],
            "n_queries": len(self.queries), "queries": list(self.queries),
            "ndcg_before": list(self.before), "ndcg_after": list(self.after),
            "mean_before": round(float(np.mean(self.before)), 6) if measured else None,
            "mean_after": round(float(np.mean(self.after)), 6) if measured else None,
            "difference": self.difference.as_dict() if measured else None,
            "counts": self.counts() if measured else None,
            "reason": self.reason, "reading": self.reading(),
        }


def _values(candidates: Sequence[Candidate]) -> dict[tuple[str, str], float]:
    """Pair → proposed value of the candidates a curator would promote: a pair that is a candidate both ways keeps
    the way more sessions agree on (none on a tie), as in :func:`semgraph.evaluation.promotion.promote_matrices`."""
    return {(c.term_a, c.term_b): c.proposed for c in candidates if len(c.sessions) > c.against}


def _diagnosed(engine: Engine) -> tuple[list[Case], np.ndarray]:
    """The engine's cases with a diagnosis and their likelihood vectors."""
    rows = [i for i, c in enumerate(engine.cases) if c.diagnosis]
    return [engine.cases[i] for i in rows], engine.vectors[rows]


def _held_out(cases: Sequence[Case], used: set[str], max_queries: int, seed: int) -> list[int]:
    """Indices of the ``cases`` (all with a diagnosis) that share their diagnosis with another patient's case and
    are not in ``used``; a sorted sample of ``max_queries`` of them (seeded) when there are more."""
    found = [int(q) for q in eligible_queries([c.diagnosis for c in cases], [c.patient_id for c in cases])
             if cases[q].case_id not in used]
    if len(found) <= max_queries:
        return found
    return sorted(np.random.default_rng(seed).choice(found, size=max_queries, replace=False).tolist())


def promotion_evidence(store: Store, collection: Collection | None = None, *, min_sessions: int = 3, k: int = 10,
                       max_queries: int = 200, seed: int = 0) -> PromotionEvidence:
    """The evidence for promoting the current candidates of ``collection`` (default: the store's only one).

    Candidates: :func:`semgraph.feedback.promotion.promotion_candidates` with ``min_sessions``. Held-out queries
    beyond ``max_queries`` are sampled with ``numpy.random.default_rng(seed)``, which also seeds the bootstrap.
    When there is nothing to measure (no candidate changes the baseline, no case with a diagnosis, fewer than 2
    held-out queries) the evidence carries a ``reason`` instead of figures.
    """
    for name, value, low in (("k", k, 1), ("max_queries", max_queries, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInput(f"{name} must be an integer of at least {low}, got {value!r}")
    collection = collection or resolve_collection(store)
    evidence = PromotionEvidence(collection.name, k, min_sessions)
    values = _values(promotion_candidates(store, min_sessions, collection=collection))
    if not values:
        return replace(evidence, reason=f"no term pair was changed the same way by {min_sessions} or more "
                                        "independent sessions, so there is nothing to promote")
    D0 = baseline_dissimilarity(store, collection)[0]
    D1, changes = promoted_matrix(D0, collection.terms, values)
    if not changes:
        return replace(evidence, reason="the candidates' values equal the baseline's, so promoting them changes nothing")
    evidence = replace(evidence, pairs=tuple(changes))
    try:
        cases, A = _diagnosed(Engine.from_store(store, collection=collection, dissimilarity=D0))
    except NotFound as exc:
        return replace(evidence, reason=str(exc))
    if not cases:
        return replace(evidence, reason=f"no case of collection {collection.name} has a diagnosis, so relevance is "
                                        "unknown")
    diagnoses, patients = [c.diagnosis for c in cases], [c.patient_id for c in cases]
    queries = _held_out(cases, feedback_cases(store), max_queries, seed)
    if len(queries) < 2:
        return replace(evidence, reason=f"only {len(queries)} case(s) have a diagnosis shared with another patient's "
                                        "case and took no part in a feedback round; at least 2 held-out queries "
                                        "are needed")
    before, after = (round0_ndcg(A, diagnoses, patients, collection.categories, D, queries, k)
                     for D in (D0, hsbd.clamp(D1)))
    return replace(evidence, queries=tuple(cases[q].case_id for q in queries), before=tuple(map(float, before)),
                   after=tuple(map(float, after)), difference=compare_paired(after, before, seed=seed))
