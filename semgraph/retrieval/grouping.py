"""Group a ranked result list, LifeSeeker style: by diagnosis, by patient, or by clustering the top results.

Every grouping keeps the ranking inside a group and orders the groups by their best (smallest) rank, so the group
holding the top result comes first. Each :class:`Group` carries its size and best score.

Clustering (:func:`group_by_cluster`) runs agglomerative clustering (average linkage, Manhattan metric) on the
HSBD-projected vectors ``M a`` of the top results: the Manhattan distance between projections *is* HSBD, so the
clusters are groups of mutually close cases in the same distance the ranking uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from semgraph.errors import InvalidInput

__all__ = ["GROUPINGS", "Group", "Member", "group", "group_by_cluster", "group_by_key"]

#: Allowed values of ``by`` in :func:`group`.
GROUPINGS = ("diagnosis", "patient", "cluster")


@dataclass(frozen=True)
class Member:
    """One case of a group: id, its rank in the full list (1 = best) and its score."""

    case_id: str
    rank: int
    score: float


@dataclass(frozen=True)
class Group:
    """A group of ranked cases; ``members`` are in rank order."""

    key: str
    members: tuple[Member, ...]

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def best_rank(self) -> int:
        return self.members[0].rank

    @property
    def best_score(self) -> float:
        return self.members[0].score

    def as_dict(self) -> dict:
        return {"key": self.key, "size": self.size, "best_rank": self.best_rank, "best_score": self.best_score,
                "members": [m.__dict__ for m in self.members]}


def _check_ranking(ids: Sequence[str], scores: Sequence[float] | None) -> list[float]:
    if len(set(ids)) != len(ids):
        raise InvalidInput("a ranking must not list a case twice")
    if scores is None:
        return [float(-r) for r in range(len(ids))]
    if len(scores) != len(ids):
        raise InvalidInput(f"got {len(ids)} ids but {len(scores)} scores")
    return [float(s) for s in scores]


def group_by_key(ids: Sequence[str], key: Callable[[str], str] | Mapping[str, str],
                 scores: Sequence[float] | None = None) -> list[Group]:
    """Group a ranked list (best first) by ``key(id)``; groups ordered by best rank.

    ``key`` is a function or a mapping (ids missing from a mapping go to the group ``'unknown'``).
    """
    s = _check_ranking(ids, scores)
    get = (lambda i: str(key.get(i) or "unknown")) if isinstance(key, Mapping) else (lambda i: str(key(i)))
    groups: dict[str, list[Member]] = {}
    for rank, (case_id, score) in enumerate(zip(ids, s), start=1):
        groups.setdefault(get(case_id), []).append(Member(case_id, rank, score))
    # dict keeps first-insertion order, which is the order of the best rank
    return [Group(k, tuple(v)) for k, v in groups.items()]


def group_by_cluster(ids: Sequence[str], projected, scores: Sequence[float] | None = None, *, top: int = 25,
                     n_clusters: int | None = None, distance_threshold: float | None = None) -> list[Group]:
    """Cluster the first ``top`` results on their projected vectors (rows of ``projected`` follow ``ids``).

    Give ``n_clusters`` or ``distance_threshold`` (HSBD units); by default ``n_clusters = min(5, top)``. Results
    after ``top`` are not grouped. Groups are named ``cluster 1``, ``cluster 2`` ... in order of their best rank.
    """
    s = _check_ranking(ids, scores)
    Y = np.asarray(projected, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[0] != len(ids):
        raise InvalidInput(f"projected must have one row per id ({len(ids)}), got shape {Y.shape}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise InvalidInput(f"top must be a positive integer, got {top!r}")
    n = min(int(top), len(ids))
    if n == 0:
        return []
    if distance_threshold is None and n_clusters is None:
        n_clusters = min(5, n)
    if n_clusters is not None and (isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer))
                                   or n_clusters < 1):
        raise InvalidInput(f"n_clusters must be a positive integer, got {n_clusters!r}")
    if n == 1 or (n_clusters is not None and n_clusters >= n):
        labels = np.arange(n) if n_clusters is not None and n_clusters >= n else np.zeros(n, dtype=int)
    else:
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(n_clusters=n_clusters, distance_threshold=distance_threshold,
                                        metric="manhattan", linkage="average")
        labels = model.fit_predict(Y[:n])
    names: dict[int, str] = {}
    for label in labels:  # rank order: the cluster of the best result is cluster 1
        names.setdefault(int(label), f"cluster {len(names) + 1}")
    return group_by_key(list(ids[:n]), {i: names[int(lab)] for i, lab in zip(ids[:n], labels)}, s[:n])


def group(ids: Sequence[str], by: str, *, scores: Sequence[float] | None = None,
          cases: Mapping[str, object] | None = None, projected=None, top: int = 25,
          n_clusters: int | None = None) -> list[Group]:
    """Group a ranked list ``by`` ``'diagnosis'``, ``'patient'`` (needs ``cases``: id → casegraph.Case) or
    ``'cluster'`` (needs ``projected``)."""
    if by not in GROUPINGS:
        raise ValueError(f"Invalid grouping: {by!r}. The supported values are {', '.join(map(repr, GROUPINGS))}.")
    if by == "cluster":
        if projected is None:
            raise InvalidInput("grouping by cluster needs the projected vectors")
        return group_by_cluster(ids, projected, scores, top=top, n_clusters=n_clusters)
    if cases is None:
        raise InvalidInput(f"grouping by {by} needs the cases' metadata")
    field = "diagnosis" if by == "diagnosis" else "patient_id"
    keys = {i: getattr(cases[i], field, None) for i in ids if i in cases}
    return group_by_key(ids, keys, scores)
