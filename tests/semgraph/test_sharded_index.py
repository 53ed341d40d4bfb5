"""The sharded index on a real local Dask cluster of worker processes returns exactly the single index's results."""

import numpy as np
import pytest

from semgraph.errors import InvalidInput
from semgraph.retrieval.index import HSBDIndex
from semgraph.retrieval.sharded import ShardedIndex, shard_bounds

distributed = pytest.importorskip("distributed", reason="pip install semgraph[distributed]")

D = np.array([[0, 1, 4, 4, 3], [1, 0, 4, 4, 3], [4, 4, 0, 2, 3], [4, 4, 2, 0, 3], [3, 3, 3, 3, 0]], dtype=float)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as c:
        yield c


def test_shard_bounds_by_hand():
    assert shard_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shard_bounds(2, 3) == [(0, 1), (1, 2), (2, 2)]
    with pytest.raises(ValueError):
        shard_bounds(5, 0)


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    vectors = rng.random((n, 5))
    vectors[n // 2:n // 2 + 20] = vectors[3]  # ties across shards: the merge must keep the single index's order
    return [f"case-{i}" for i in range(n)], vectors


def test_same_results_as_one_index(client):
    ids, vectors = _rows(3000, 0)
    single = HSBDIndex(D, ids, vectors)
    sharded = ShardedIndex(client, D, ids, vectors, n_shards=3)
    assert sharded.n_shards == 3 and sharded.shard_sizes == [1000, 1000, 1000]
    rng = np.random.default_rng(1)
    mask = rng.random(3000) < 0.3
    for query in [vectors[3], rng.random(5), np.zeros(5) + 0.5]:
        for k in (1, 25, 40, 5000):
            expected, got = single.search(query, k), sharded.search(query, k)
            assert got.ids == expected.ids
            assert np.array_equal(got.distances, expected.distances)
        assert sharded.search(query, 25, mask=mask).ids == single.search(query, 25, mask=mask).ids
    assert sharded.search(vectors[3], 21).ids[:1] == ["case-3"]  # tied copies follow it in row order
    assert sharded.search(vectors[3], 21).ids[1:] == [f"case-{i}" for i in range(1500, 1520)]


def test_rebuild_and_add_keep_the_equality(client):
    ids, vectors = _rows(500, 2)
    single = HSBDIndex(D, ids, vectors)
    sharded = ShardedIndex(client, D, ids, vectors)
    learned = D.copy()
    learned[0, 2] = learned[2, 0] = 0.5
    single.rebuild(learned)
    sharded.rebuild(learned)
    extra = np.random.default_rng(3).random((10, 5))
    single.add([f"new-{i}" for i in range(10)], extra)
    sharded.add([f"new-{i}" for i in range(10)], extra)
    assert len(sharded) == 510
    for query in (extra[0], vectors[7]):
        assert sharded.search(query, 30).ids == single.search(query, 30).ids
    with pytest.raises(InvalidInput, match="already stored"):
        sharded.add(["new-1"], extra[:1])
    with pytest.raises(InvalidInput, match="mask"):
        sharded.search(extra[0], 5, mask=np.ones(3, dtype=bool))
