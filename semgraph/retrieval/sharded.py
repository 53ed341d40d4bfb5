"""An HSBD index split into shards that live in the worker processes of a Dask distributed cluster.

Each shard is an ordinary :class:`~semgraph.retrieval.index.HSBDIndex` over a contiguous range of rows, held by a
Dask actor on one worker, so an index larger than one machine's memory spreads over the machines of a cluster. A
search sends the query to every shard at once; each answers its own pruned exact top-k, and the coordinator merges
them exactly:

    top_k(all rows) = top_k( union over shards s of top_k(rows of s) )

because a row among the k nearest of all rows is among the k nearest of its own shard. Distances are bit-identical
to the single index's (projections are computed row by row with the same float32 arithmetic, and a pruned search
returns the full scan's result bit for bit), and ties are broken the same way: shards hold consecutive row ranges
and each sorts by ``(distance, row)``, so sorting the union by ``(distance, shard, rank in shard)`` is sorting by
``(distance, global row)``. The merged result therefore equals :meth:`HSBDIndex.search` on one index holding the
same rows in the same order.

The cluster is any ``distributed.Client`` (a ``LocalCluster`` of processes on one machine, or a scheduler address);
this module makes no connection of its own. Requires ``pip install semgraph[distributed]``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.retrieval.index import HSBDIndex, SearchResult

__all__ = ["ShardedIndex", "shard_bounds"]


def shard_bounds(n_rows: int, n_shards: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of ``n_shards`` consecutive shards of near-equal size covering ``n_rows`` rows
    (sizes differ by at most one; the first ``n_rows % n_shards`` shards take the extra row)."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be a positive integer; got {n_shards!r}")
    base, extra = divmod(n_rows, n_shards)
    bounds, start = [], 0
    for s in range(n_shards):
        stop = start + base + (1 if s < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


class ShardedIndex:
    """Exact HSBD top-k over shards held by Dask actors; same results as one :class:`HSBDIndex`.

    Parameters
    ----------
    client : distributed.Client
        The cluster to place the shards on (one actor per shard, spread over its workers).
    dissimilarity : array_like, shape (k, k)
        Term dissimilarity matrix, as for :class:`HSBDIndex`.
    ids, vectors :
        The rows, as for :class:`HSBDIndex` (ids unique over all shards).
    n_shards : int, optional
        Number of shards (default: the number of workers of ``client``).
    **options :
        Passed to every shard's :class:`HSBDIndex` (``linkage``, ``weights``, ``block_size``, ``backend``).
    """

    def __init__(self, client, dissimilarity, ids: Iterable[Hashable], vectors, *, n_shards: int | None = None,
                 **options):
        ids = list(ids)
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != len(ids):
            raise InvalidInput(f"vectors must have one row per id ({len(ids)}); got shape {vectors.shape}")
        if len(set(ids)) != len(ids):
            raise InvalidInput("ids must be unique over all shards")
        n_shards = n_shards or max(1, len(client.scheduler_info()["workers"]))
        self._client = client
        self._bounds = shard_bounds(len(ids), n_shards)
        self._ids = set(ids)
        workers = sorted(client.scheduler_info()["workers"])
        futures = []
        for s, (a, b) in enumerate(self._bounds):
            worker = [workers[s % len(workers)]]
            rows = client.scatter(vectors[a:b], workers=worker)  # sent once, straight to the shard's worker
            futures.append(client.submit(HSBDIndex, dissimilarity, ids[a:b], rows, actor=True, pure=False,
                                         workers=worker, **options))
        self._shards = [future.result() for future in futures]

    def __len__(self) -> int:
        return self._bounds[-1][1] if self._bounds else 0

    @property
    def n_shards(self) -> int:
        return len(self._shards)

    @property
    def shard_sizes(self) -> list[int]:
        return [b - a for a, b in self._bounds]

    def add(self, ids: Sequence[Hashable], vectors) -> None:
        """Append rows to the last shard (so that the global row order stays the insertion order)."""
        ids = list(ids)
        clashes = self._ids.intersection(ids)
        if clashes or len(set(ids)) != len(ids):
            raise InvalidInput(f"ids already stored or repeated: {sorted(map(str, clashes))[:5]}")
        self._shards[-1].add(ids, vectors).result()
        a, b = self._bounds[-1]
        self._bounds[-1] = (a, b + len(ids))
        self._ids.update(ids)

    def rebuild(self, dissimilarity) -> None:
        """New term dissimilarities (after relevance feedback) on every shard, in parallel."""
        for pending in [shard.rebuild(dissimilarity) for shard in self._shards]:
            pending.result()

    def search(self, query_vector, k: int = 25, *, mask=None) -> SearchResult:
        """The ``k`` rows nearest to the query over all shards (see the module docstring for why it is exact).

        ``mask`` is a boolean array over all rows in insertion order, as for :meth:`HSBDIndex.search`.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInput(f"k must be a positive integer; got {k!r}.")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != np.bool_ or mask.shape != (len(self),):
                raise InvalidInput(f"mask must be a boolean array of shape ({len(self)},); got dtype {mask.dtype}, "
                                   f"shape {mask.shape}.")
        pending = [shard.search(query_vector, int(k), mask=None if mask is None else mask[a:b])
                   for shard, (a, b) in zip(self._shards, self._bounds) if b > a]
        parts = [p.result() for p in pending]
        keyed = [(float(d), s, rank, i) for s, part in enumerate(parts)
                 for rank, (i, d) in enumerate(zip(part.ids, part.distances))]
        keyed.sort(key=lambda item: item[:3])
        best = keyed[:k]
        return SearchResult([item[3] for item in best], np.array([item[0] for item in best], dtype=np.float64))
