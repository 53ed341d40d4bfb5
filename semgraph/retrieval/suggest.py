"""Diagnosis suggestion from retrieved similar cases — DECISION SUPPORT ONLY, not a diagnosis.

:func:`suggest` takes the top-K results of a search (ids and similarities in [0, 1]) and their diagnoses, and
returns the diagnosis with the largest similarity-weighted vote::

    vote(d) = Σ_{n in top K, diagnosis(n) = d} s_n ,     confidence = vote(best) / Σ_d vote(d)

with the evidence (the top-K cases that voted for it). If every similarity is 0 each case votes 1. Ties between
diagnoses go to the one whose best-ranked case comes first. The confidence is the share of the vote, *not* a
calibrated probability: it says how unanimous the retrieved neighbours are.

:func:`evaluate_suggestion` measures the rule leave-one-patient-out (LOPO): for each case, only cases of other
patients are candidates; it reports accuracy and macro-F1 beside a majority-class baseline (the most frequent
diagnosis among the other patients' cases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.retrieval.fusion import distance_to_similarity, hsbd_distances

__all__ = ["DISCLAIMER", "Suggestion", "evaluate_suggestion", "suggest", "suggest_for_vector"]

#: Shown with every suggestion.
DISCLAIMER = ("Decision support only: a vote of the most similar previous cases, not a diagnosis. "
              "The confidence is the share of the vote, not a calibrated probability.")


@dataclass(frozen=True)
class Suggestion:
    """A suggested diagnosis with its confidence, the vote of every diagnosis and the evidence case ids."""

    diagnosis: str | None
    confidence: float
    votes: dict  # diagnosis -> share of the vote, sorted by share (descending)
    evidence: tuple[str, ...]  # top-K cases with the suggested diagnosis, in rank order
    k: int
    disclaimer: str = DISCLAIMER

    def as_dict(self) -> dict:
        return {"diagnosis": self.diagnosis, "confidence": self.confidence, "votes": self.votes,
                "evidence": list(self.evidence), "k": self.k, "disclaimer": self.disclaimer}


def suggest(ids: Sequence[str], similarities: Sequence[float], diagnoses: Mapping[str, str], k: int = 10
            ) -> Suggestion:
    """Similarity-weighted vote of the first ``k`` of a ranking (``ids`` best first).

    Cases without a known diagnosis do not vote. Similarities must be finite and non-negative.

    Examples
    --------
    >>> s = suggest(["a", "b", "c"], [1.0, 0.5, 0.9], {"a": "cyst", "b": "hemangioma", "c": "hemangioma"}, k=3)
    >>> s.diagnosis, round(s.confidence, 4), s.evidence
    ('hemangioma', 0.5833, ('b', 'c'))
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    if len(ids) != len(similarities):
        raise InvalidInput(f"got {len(ids)} ids but {len(similarities)} similarities")
    s = np.asarray(similarities, dtype=np.float64)
    if s.size and (not np.all(np.isfinite(s)) or np.any(s < 0)):
        raise InvalidInput("similarities must be finite and non-negative")
    top = [(i, float(v)) for i, v in zip(ids[:k], s[:k]) if diagnoses.get(i)]
    if not top:
        return Suggestion(None, 0.0, {}, (), int(k))
    if sum(v for _, v in top) == 0:
        top = [(i, 1.0) for i, _ in top]
    votes: dict[str, float] = {}
    first: dict[str, int] = {}
    for rank, (i, v) in enumerate(top):
        d = diagnoses[i]
        votes[d] = votes.get(d, 0.0) + v
        first.setdefault(d, rank)
    total = sum(votes.values())
    order = sorted(votes, key=lambda d: (-votes[d], first[d]))
    best = order[0]
    return Suggestion(best, votes[best] / total, {d: votes[d] / total for d in order},
                      tuple(i for i, _ in top if diagnoses[i] == best), int(k))


def suggest_for_vector(vector, vectors, ids: Sequence[str], diagnoses: Mapping[str, str], projection, *,
                       k: int = 10, exclude: Sequence[str] = (), similarity_map: str = "linear") -> Suggestion:
    """Suggest a diagnosis for a term vector: HSBD to every case (except ``exclude``), similarity by
    :func:`semgraph.retrieval.fusion.distance_to_similarity` over the candidates, then :func:`suggest` on the top ``k``."""
    skip = set(exclude)
    rows = [r for r, i in enumerate(ids) if i not in skip]
    if not rows:
        return Suggestion(None, 0.0, {}, (), int(k))
    A = np.asarray(vectors, dtype=np.float64)[rows]
    d = hsbd_distances(vector, A, projection)
    sim = distance_to_similarity(d, similarity_map)
    order = np.lexsort((np.arange(len(rows)), d))
    return suggest([ids[rows[j]] for j in order], sim[order], diagnoses, k)


def _macro_f1(truth: Sequence[str], pred: Sequence[str | None]) -> float:
    from sklearn.metrics import f1_score

    labels = sorted(set(truth))
    return float(f1_score(truth, [p if p is not None else "" for p in pred], labels=labels, average="macro",
                          zero_division=0))


def evaluate_suggestion(ids: Sequence[str], vectors, diagnoses: Mapping[str, str], patients: Mapping[str, str],
                        projection, *, k: int = 10, similarity_map: str = "linear") -> dict:
    """Leave-one-patient-out evaluation of :func:`suggest_for_vector` against a majority-class baseline.

    Returns ``{'n', 'k', 'accuracy', 'macro_f1', 'baseline_accuracy', 'baseline_macro_f1', 'baseline_class',
    'per_class': {diagnosis: {'n', 'recall'}}}``. Macro-F1 averages over the diagnoses present in the truth.
    """
    ids = [str(i) for i in ids]
    A = np.asarray(vectors, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != len(ids):
        raise InvalidInput(f"vectors must have one row per id ({len(ids)}), got {A.shape}")
    missing = [i for i in ids if not diagnoses.get(i) or not patients.get(i)]
    if missing:
        raise InvalidInput(f"case(s) without diagnosis or patient: {', '.join(missing[:5])}")
    truth, pred, base = [], [], []
    for r, case_id in enumerate(ids):
        same = {i for i in ids if patients[i] == patients[case_id]}
        s = suggest_for_vector(A[r], A, ids, diagnoses, projection, k=k, exclude=same,
                               similarity_map=similarity_map)
        counts: dict[str, int] = {}
        for i in ids:
            if i not in same:
                counts[diagnoses[i]] = counts.get(diagnoses[i], 0) + 1
        majority = min(counts, key=lambda d: (-counts[d], d)) if counts else None
        truth.append(diagnoses[case_id])
        pred.append(s.diagnosis)
        base.append(majority)
    t, p, b = np.array(truth), np.array(pred, dtype=object), np.array(base, dtype=object)
    per_class = {d: {"n": int((t == d).sum()), "recall": float((p[t == d] == d).mean())} for d in sorted(set(truth))}
    return {"n": len(ids), "k": int(k), "accuracy": float((p == t).mean()), "macro_f1": _macro_f1(truth, pred),
            "baseline_accuracy": float((b == t).mean()), "baseline_macro_f1": _macro_f1(truth, base),
            "baseline_class": max(set(base), key=base.count) if base else None, "per_class": per_class}
