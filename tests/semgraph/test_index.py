"""Tests of semgraph.retrieval.index.HSBDIndex against brute-force HSBD (semgraph.retrieval.hsbd.distance)."""

from __future__ import annotations

import contextlib
import functools
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from semgraph.cohort import iter_labels
from semgraph.errors import InvalidInput
from semgraph.retrieval import hsbd
from semgraph.retrieval import index as index_module
from semgraph.retrieval.index import HSBDIndex


def _random_dissimilarity(rng: np.random.Generator, k: int) -> np.ndarray:
    D = np.zeros((k, k))
    D[np.triu_indices(k, 1)] = rng.uniform(0.05, 1.0, size=k * (k - 1) // 2)
    return D + D.T


@st.composite
def databases(draw, max_n: int = 60):
    """(D, ids, vectors, query) from a numpy seed; vectors sometimes repeat rows to create exact ties."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = draw(st.integers(1, 10))
    n = draw(st.integers(1, max_n))
    vectors = rng.random((n, k))
    if draw(st.booleans()):  # duplicate some rows -> tied distances
        vectors[rng.integers(0, n, size=n // 2)] = vectors[0]
    ids = [f"case{i:03d}" for i in range(n)]
    query = rng.random(k)
    return _random_dissimilarity(rng, k), ids, vectors, query


def _brute_force(index: HSBDIndex, D, query, *, linkage="average", weights="gap") -> np.ndarray:
    """Reference distances of the query to every stored (float32) vector, in float64."""
    return np.array(
        [hsbd.distance(query, row.astype(np.float64), D, linkage=linkage, weights=weights) for row in index.vectors]
    )


# ----------------------------------------------------------------------------------------------------------------
# agreement with brute force
# ----------------------------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(databases(), st.integers(1, 70), st.sampled_from(["average", "complete"]), st.sampled_from(["gap", "uniform"]))
def test_search_matches_brute_force(db, k, linkage, weights):
    D, ids, vectors, query = db
    index = HSBDIndex(D, ids, vectors, linkage=linkage, weights=weights, block_size=7)
    result = index.search(query, k=k)
    ref = _brute_force(index, D, query, linkage=linkage, weights=weights)
    expected = np.sort(ref)[: min(k, len(ids))]
    assert len(result.ids) == len(expected) == len(set(result.ids))
    assert_allclose(result.distances, expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(result.distances) >= 0)
    rows = [ids.index(i) for i in result.ids]
    assert_allclose(result.distances, ref[rows], rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(databases(), st.integers(1, 70), st.integers(2, 100))
def test_block_size_does_not_change_results(db, k, block):
    D, ids, vectors, query = db
    small = HSBDIndex(D, ids, vectors, block_size=1).search(query, k=k)
    mid = HSBDIndex(D, ids, vectors, block_size=block).search(query, k=k)
    big = HSBDIndex(D, ids, vectors, block_size=1 << 20).search(query, k=k)
    for other in (mid, big):
        assert other.ids == small.ids
        assert_array_equal(other.distances, small.distances)


def test_ties_broken_by_row_order():
    rng = np.random.default_rng(3)
    D = _random_dissimilarity(rng, 5)
    row = rng.random(5)
    ids = ["e", "d", "c", "b", "a", "far"]
    vectors = np.vstack([np.tile(row, (5, 1)), row + 1.0])
    for block in (1, 2, 4, 100):
        index = HSBDIndex(D, ids, vectors, block_size=block)
        result = index.search(row, k=3)
        assert result.ids == ["e", "d", "c"]
        assert_array_equal(result.distances, [0.0, 0.0, 0.0])
        assert index.search(row + 1.0, k=2).ids == ["far", "e"]


@settings(max_examples=60, deadline=None)
@given(databases(), st.integers(1, 70), st.data())
def test_mask_is_applied_inside_the_search(db, k, data):
    D, ids, vectors, query = db
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids))))
    index = HSBDIndex(D, ids, vectors, block_size=5)
    result = index.search(query, k=k, mask=mask)
    allowed = {i for i, keep in zip(ids, mask) if keep}
    assert set(result.ids) <= allowed
    assert len(result.ids) == min(k, len(allowed))
    ref = _brute_force(index, D, query)
    assert_allclose(result.distances, np.sort(ref[mask])[: len(result.ids)], rtol=1e-5, atol=1e-6)
    # the masked search equals an index built over the allowed rows only (same row order, same ties)
    kept = [n for n, keep in enumerate(mask) if keep]
    if kept:
        sub = HSBDIndex(D, [ids[n] for n in kept], vectors[kept]).search(query, k=k)
        assert sub.ids == result.ids
        assert_array_equal(sub.distances, result.distances)


def test_mask_all_false_and_empty_index():
    D = _random_dissimilarity(np.random.default_rng(0), 3)
    index = HSBDIndex(D, ["a", "b"], [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    result = index.search([0, 0, 0], k=5, mask=np.array([False, False]))
    assert result.ids == [] and result.distances.shape == (0,)
    empty = HSBDIndex(D)
    assert len(empty) == 0
    assert empty.search([0, 0, 0]).ids == []


# ----------------------------------------------------------------------------------------------------------------
# pruned search (bounds, then exact distances of the rows that can make the top k) vs the full scan
# ----------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _prune_from(rows: int):
    """Prune searches of indexes with at least ``rows`` rows (the module default is for production sizes)."""
    saved = index_module.PRUNE_MIN_ROWS
    index_module.PRUNE_MIN_ROWS = rows
    try:
        yield
    finally:
        index_module.PRUNE_MIN_ROWS = saved


#: Rows of the "large" indexes below: several blocks of bounds and a strided sample of them.
_LARGE = 3 * 4096


@pytest.fixture
def prune_all():
    """Prune from 1 row on, so that the tests' indexes are searched as production-size ones."""
    with _prune_from(1):
        yield


def _pruned_and_scanned(index: HSBDIndex, query, k: int, mask=None):
    with _prune_from(1):
        pruned = index.search(query, k=k, mask=mask)
    with _prune_from(sys.maxsize):
        scanned = index.search(query, k=k, mask=mask)
    return pruned, scanned


def _far_apart(rng: np.random.Generator, k: int) -> np.ndarray:
    """Term dissimilarities of 0.6-1, like the ontology's between categories: the leaves carry most HSBD weight."""
    D = np.zeros((k, k))
    D[np.triu_indices(k, 1)] = rng.uniform(0.6, 1.0, size=k * (k - 1) // 2)
    return D + D.T


@st.composite
def awkward_databases(draw):
    """(D, ids, vectors, query) for pruned searches: 50-400 rows, dissimilarities random or far apart (strong
    bounds), vectors with repeated rows, negative values, mixed magnitudes, few distinct values, or the query
    copied from a stored row."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = draw(st.integers(1, 19))
    n = draw(st.integers(50, 400))
    D = draw(st.sampled_from([_random_dissimilarity, _far_apart]))(rng, k)
    vectors, query = rng.random((n, k)), rng.random(k)
    kind = draw(st.sampled_from(["plain", "repeated rows", "signed", "magnitudes", "grid", "stored query"]))
    if kind == "repeated rows":
        vectors[rng.integers(0, n, size=n // 2)] = vectors[0]
    elif kind == "signed":
        vectors, query = vectors - 0.5, query - 0.5
    elif kind == "magnitudes":
        vectors = vectors * 10.0 ** rng.integers(-20, 20, size=vectors.shape)
    elif kind == "grid":  # many exactly equal distances
        vectors, query = np.round(vectors * 4) / 4, np.round(query * 4) / 4
    if kind in ("stored query", "repeated rows", "grid"):
        query = vectors[rng.integers(0, n)]
    return D, [f"case{i:03d}" for i in range(n)], vectors, query


@settings(max_examples=200, deadline=None)
@given(awkward_databases(), st.integers(1, 10), st.data())
def test_pruned_search_equals_the_full_scan_bit_for_bit(db, k, data):
    D, ids, vectors, query = db
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids))))
    base = HSBDIndex(D, ids, vectors)
    D2 = _far_apart(np.random.default_rng(len(ids)), D.shape[0])
    for index in (base, base.with_dissimilarity(D2)):  # stored projections, and projections while scanning
        for m in (None, mask):
            pruned, scanned = _pruned_and_scanned(index, query, k, m)
            assert pruned.ids == scanned.ids
            assert_array_equal(pruned.distances, scanned.distances)


def test_pruning_keeps_a_row_whose_float32_bound_rounds_above_its_distance():
    """The margin at work: rows x with x_0 + x_2 = a_0 + a_2 have no distance in the inner node {0, 2} (the root
    has weight 0), so their bound and their distance add the same terms, rounded differently; for some of them the
    bound comes out one float32 step above the distance. Such a row as the unique nearest one must still be found."""
    D = np.array([[0.0, 0.8, 0.3], [0.8, 0.0, 0.9], [0.3, 0.9, 0.0]])
    a = np.float32([0.5, 0.25, 0.5])
    rng = np.random.default_rng(0)
    t = rng.integers(1, 2**12, 512).astype(np.float32) / 2**13  # exact float32 sums a_0 + t + a_2 - t
    rows = np.stack([a[0] + t, a[1] + rng.random(512).astype(np.float32), a[2] - t], axis=1)
    probe = HSBDIndex(D, range(512), rows)
    assert_array_equal(probe.tree.merges, [[0, 2], [3, 1]])
    query = probe._project_rows(a[None, :])[:, 0]
    above = np.flatnonzero(probe._leaf_bounds(a, None) > probe._exact_distances(query, np.arange(512)))
    assert above.size, "no row rounds that way; the construction needs another seed"
    far = np.tile(rows[above[0]] + np.float32([0.0, 4.0, 0.0]), (60, 1)) + np.arange(60)[:, None]
    index = HSBDIndex(D, ["nearest", *[f"far{i}" for i in range(60)]], np.vstack([rows[above[0]], far]))
    with _prune_from(1):
        assert index.search(a, k=1).ids == ["nearest"]


@functools.cache
def _cohort_labels(n: int) -> np.ndarray:
    return np.array([case.reader_labels for case in iter_labels(n, seed=0)])


def _cohort_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """Likelihood vectors as the web benchmark's large store has them: the synthetic cohort's reader labels with
    noise."""
    labels = _cohort_labels(n)
    return np.clip(labels + rng.normal(0.0, 0.15, labels.shape), 0.0, 1.0)


def _count_exact_distances(monkeypatch) -> list[int]:
    computed: list[int] = []
    exact = HSBDIndex._exact_distances
    monkeypatch.setattr(HSBDIndex, "_exact_distances",
                        lambda self, q, rows: computed.append(rows.size) or exact(self, q, rows))
    return computed


@pytest.mark.usefixtures("prune_all")
def test_a_large_search_computes_few_distances_exactly(monkeypatch):
    rng = np.random.default_rng(11)
    n = _LARGE
    vectors = _cohort_vectors(rng, n)
    k = vectors.shape[1]
    index = HSBDIndex(_far_apart(rng, k), range(n), vectors)
    derived = index.with_dissimilarity(_far_apart(rng, k))
    computed = _count_exact_distances(monkeypatch)
    for query in vectors[:20]:
        for searched in (index, derived):
            computed.clear()
            result = searched.search(query, k=25)
            assert computed, "the search scanned every row instead of pruning"
            assert sum(computed) < 0.05 * n
            with _prune_from(sys.maxsize):
                assert searched.search(query, k=25).ids == result.ids


@pytest.mark.usefixtures("prune_all")
def test_weak_bounds_fall_back_to_the_scan(monkeypatch):
    rng = np.random.default_rng(14)
    n = _LARGE
    vectors = _cohort_vectors(rng, n)
    k = vectors.shape[1]
    D = _far_apart(rng, k)
    for group in (range(0, k, 2), range(1, k, 2)):  # two groups of close terms: little weight left on the leaves
        D[np.ix_(group, group)] *= 0.02
    index = HSBDIndex(D, range(n), vectors)
    computed = _count_exact_distances(monkeypatch)
    pruned, scanned = _pruned_and_scanned(index, vectors[0], 25)
    assert len(computed) == 1 and computed[0] < n // 4  # the candidates, then the scan
    assert pruned.ids == scanned.ids
    assert_array_equal(pruned.distances, scanned.distances)
    # the next searches of the index, and of one derived from it, scan without computing bounds first ...
    computed.clear()
    derived = index.with_dissimilarity(D * 1.01)
    for _ in range(index_module.SCANS_AFTER_WEAK_BOUNDS):
        index.search(vectors[0], k=25)
        derived.search(vectors[0], k=25)
    assert computed == []
    # ... then they try again
    index.search(vectors[0], k=25)
    assert computed


@pytest.mark.usefixtures("prune_all")
def test_pruning_when_the_bounds_sample_misses_every_allowed_row():
    rng = np.random.default_rng(12)
    n = _LARGE
    vectors = _cohort_vectors(rng, n)
    index = HSBDIndex(_far_apart(rng, vectors.shape[1]), range(n), vectors)
    stride = max(1, n // index_module._BOUND_SAMPLE)
    assert stride > 1
    mask = np.arange(n) % stride == 1  # the strided sample of the bounds holds rows 0, stride, 2 stride ... only
    pruned, scanned = _pruned_and_scanned(index, vectors[0], 25, mask)
    assert pruned.ids == scanned.ids and all(i % stride == 1 for i in pruned.ids)
    assert_array_equal(pruned.distances, scanned.distances)


@pytest.mark.usefixtures("prune_all")
def test_pruned_search_with_many_equal_vectors_keeps_row_order():
    rng = np.random.default_rng(13)
    n = _LARGE // 2
    vectors = _cohort_vectors(rng, n)
    vectors[n // 2 :] = vectors[0]  # half the rows tie at distance 0 from the query: the bounds cannot prune
    assert not any(np.array_equal(row, vectors[0]) for row in vectors[1 : n // 2])
    index = HSBDIndex(_far_apart(rng, vectors.shape[1]), range(n), vectors)
    result = index.search(vectors[0], k=30)
    assert result.ids == [0, *range(n // 2, n // 2 + 29)]
    assert_array_equal(result.distances, np.zeros(30))


# ----------------------------------------------------------------------------------------------------------------
# add / rebuild
# ----------------------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(databases(), st.integers(1, 70), st.lists(st.integers(0, 60), max_size=4))
def test_incremental_add_equals_bulk(db, k, cuts):
    D, ids, vectors, query = db
    bulk = HSBDIndex(D, ids, vectors, block_size=4)
    inc = HSBDIndex(D, block_size=4)
    bounds = sorted({0, len(ids), *[min(c, len(ids)) for c in cuts]})
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        inc.add(ids[lo:hi], vectors[lo:hi])
    assert len(inc) == len(bulk) == len(ids)
    assert inc.ids == ids
    assert_array_equal(inc.projected, bulk.projected)
    a, b = inc.search(query, k=k), bulk.search(query, k=k)
    assert a.ids == b.ids
    assert_array_equal(a.distances, b.distances)


def test_add_then_search_finds_new_case():
    rng = np.random.default_rng(1)
    D = _random_dissimilarity(rng, 18)
    index = HSBDIndex(D, [f"c{i}" for i in range(50)], rng.random((50, 18)))
    new = rng.random(18)
    index.add(["new"], new[None, :])
    result = index.search(new, k=3)
    assert result.ids[0] == "new"
    assert result.distances[0] == 0.0
    assert len(index) == 51
    assert index.nbytes == 51 * 35 * 4


@settings(max_examples=40, deadline=None)
@given(databases(), st.integers(1, 70), st.integers(0, 2**32 - 1))
def test_rebuild_equals_fresh_index(db, k, seed):
    D, ids, vectors, query = db
    D2 = _random_dissimilarity(np.random.default_rng(seed), D.shape[0])
    index = HSBDIndex(D, ids, vectors, block_size=3)
    index.rebuild(D2)
    fresh = HSBDIndex(D2, ids, vectors)
    assert_allclose(index.projection, hsbd.projection(D2))
    assert_array_equal(index.projected, fresh.projected)
    a, b = index.search(query, k=k), fresh.search(query, k=k)
    assert a.ids == b.ids
    assert_array_equal(a.distances, b.distances)
    ref = _brute_force(index, D2, query)
    assert_allclose(a.distances, np.sort(ref)[: len(a.ids)], rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(databases(), st.integers(1, 70), st.integers(0, 2**32 - 1), st.integers(1, 9), st.data())
def test_derived_index_equals_fresh_index_bit_for_bit(db, k, seed, block, data):
    """The fast path after a D change (shared vectors, projections computed while scanning) vs a rebuilt index."""
    D, ids, vectors, query = db
    D2 = _random_dissimilarity(np.random.default_rng(seed), D.shape[0])
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids))))
    base = HSBDIndex(D, ids, vectors, block_size=block)
    derived = base.with_dissimilarity(D2)
    fresh = HSBDIndex(D2, ids, vectors)
    assert not derived.stores_projections and derived.nbytes == 0
    assert_array_equal(derived.projected, fresh.projected)
    for m in (None, mask):
        a, b = derived.search(query, k=k, mask=m), fresh.search(query, k=k, mask=m)
        assert a.ids == b.ids
        assert_array_equal(a.distances, b.distances)
    ref = _brute_force(fresh, D2, query)
    assert_allclose(derived.search(query, k=k).distances, np.sort(ref)[: min(k, len(ids))], rtol=1e-5, atol=1e-6)
    # the base index is untouched, and a rebuild of the derived index only changes its own D
    assert_allclose(base.projection, hsbd.projection(D))
    derived.rebuild(D)
    a, b = derived.search(query, k=k), base.search(query, k=k)
    assert a.ids == b.ids
    assert_array_equal(a.distances, b.distances)


def test_a_derived_index_scans_in_stream_blocks(monkeypatch):
    rng = np.random.default_rng(8)
    D, D2 = _random_dissimilarity(rng, 7), _random_dissimilarity(rng, 7)
    ids, vectors = [f"c{i}" for i in range(50)], rng.random((50, 7))
    vectors[30:] = vectors[3]  # ties across block borders
    fresh = HSBDIndex(D2, ids, vectors, block_size=1 << 20).search(vectors[3], k=25)
    monkeypatch.setattr(index_module, "STREAM_BLOCK", 4)
    derived = HSBDIndex(D, ids, vectors, block_size=1 << 20).with_dissimilarity(D2)
    got = derived.search(vectors[3], k=25)
    assert got.ids == fresh.ids and got.ids[:21] == ["c3", *ids[30:]]
    assert_array_equal(got.distances, fresh.distances)


def test_adding_to_a_derived_index_or_its_base_leaves_the_other_unchanged():
    rng = np.random.default_rng(4)
    D, D2 = _random_dissimilarity(rng, 6), _random_dissimilarity(rng, 6)
    ids, vectors = [f"c{i}" for i in range(20)], rng.random((20, 6))
    base = HSBDIndex(D, ids, vectors)
    first = base.with_dissimilarity(D2)
    base.add(["early"], rng.random((1, 6)))  # the base grows first: the derived index does not see it
    assert first.ids == ids and len(first) == 20 and "early" not in first.search(np.zeros(6), k=30).ids
    first.add(["early"], rng.random((1, 6)))  # not a duplicate there
    assert first.ids == [*ids, "early"] and base.ids == [*ids, "early"]
    base = HSBDIndex(D, ids, vectors)
    derived = base.with_dissimilarity(D2)
    new = rng.random(6)
    derived.add(["new"], new[None, :])
    assert len(base) == 20 and base.ids == ids and "new" not in base.search(new, k=20).ids
    assert_array_equal(base.vectors, vectors.astype(np.float32))
    assert derived.ids == [*ids, "new"]
    fresh = HSBDIndex(D2, [*ids, "new"], np.vstack([vectors, new]))
    a, b = derived.search(new, k=5), fresh.search(new, k=5)
    assert a.ids == b.ids and a.ids[0] == "new"
    assert_array_equal(a.distances, b.distances)
    base.add(["other"], rng.random((1, 6)))  # the base can still grow; the derived index does not see it
    assert "other" not in derived.ids and len(derived) == 21
    with pytest.raises(InvalidInput, match="Duplicate"):
        derived.add(["c3"], rng.random((1, 6)))
    with pytest.raises(InvalidInput, match="6 terms"):
        base.with_dissimilarity(_random_dissimilarity(rng, 5))


def test_rebuild_with_wrong_size_leaves_index_unchanged():
    rng = np.random.default_rng(2)
    D = _random_dissimilarity(rng, 4)
    index = HSBDIndex(D, ["a", "b"], rng.random((2, 4)))
    before = index.projected.copy()
    with pytest.raises(InvalidInput, match="4 terms"):
        index.rebuild(_random_dissimilarity(rng, 5))
    with pytest.raises(InvalidInput, match="symmetric"):
        index.rebuild(np.triu(D))
    assert_array_equal(index.projected, before)
    assert_allclose(index.projection, hsbd.projection(D))


# ----------------------------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture
def small_index():
    D = _random_dissimilarity(np.random.default_rng(5), 3)
    return HSBDIndex(D, ["a", "b", "c"], [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.5, 0.5, 0.5]])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"k": 0}, "positive integer"),
        ({"k": 2.5}, "positive integer"),
        ({"k": True}, "positive integer"),
        ({"mask": [1, 0, 1]}, "boolean"),
        ({"mask": np.array([True, False])}, r"shape \(3,\)"),
    ],
)
def test_search_validation(small_index, kwargs, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        small_index.search([0.1, 0.1, 0.1], **kwargs)


@pytest.mark.parametrize("query", [[0.1, 0.2], [0.1, np.nan, 0.3], [[0.1, 0.2, 0.3]]])
def test_bad_query(small_index, query):
    with pytest.raises(InvalidInput):
        small_index.search(query)


@pytest.mark.parametrize(
    ("ids", "vectors", "fragment"),
    [
        (["d"], [[0.1, 0.2]], r"shape \(n, 3\)"),
        (["d", "e"], [[0.1, 0.2, 0.3]], "2 ids for 1 vectors"),
        (["a"], [[0.1, 0.2, 0.3]], "Duplicate case id 'a'"),
        (["d", "d"], [[0.1, 0.2, 0.3]] * 2, "Duplicate case id 'd'"),
        (["d"], [[0.1, np.inf, 0.3]], "NaN or infinite"),
        ([["unhashable"]], [[0.1, 0.2, 0.3]], "not hashable"),
    ],
)
def test_add_validation_is_atomic(small_index, ids, vectors, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        small_index.add(ids, vectors)
    assert small_index.ids == ["a", "b", "c"] and len(small_index) == 3


def test_option_validation():
    D = [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="'numpy', 'faiss'"):
        HSBDIndex(D, backend="annoy")
    with pytest.raises(ValueError, match="block_size"):
        HSBDIndex(D, block_size=0)
    with pytest.raises(ValueError, match="'average', 'complete'"):
        HSBDIndex(D, linkage="single")
    with pytest.raises(InvalidInput, match="both ids and vectors"):
        HSBDIndex(D, ids=["a"])


def test_faiss_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail even if it is installed
    with pytest.raises(ImportError, match=r"pip install semgraph\[fast\]"):
        HSBDIndex([[0, 1], [1, 0]], backend="faiss")


def test_faiss_backend_matches_numpy():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(11)
    D = _random_dissimilarity(rng, 18)
    vectors = rng.random((500, 18))
    ids = list(range(500))
    mask = rng.random(500) < 0.3
    fast = HSBDIndex(D, ids, vectors, backend="faiss")
    exact = HSBDIndex(D, ids, vectors)
    for m in (None, mask):
        a, b = fast.search(vectors[0], k=25, mask=m), exact.search(vectors[0], k=25, mask=m)
        assert a.ids == b.ids
        assert_allclose(a.distances, b.distances, rtol=1e-5, atol=1e-6)
    D2 = _random_dissimilarity(rng, 18)  # a derived index gives faiss the projections for its own D
    a, b = fast.with_dissimilarity(D2).search(vectors[1], k=25), HSBDIndex(D2, ids, vectors).search(vectors[1], k=25)
    assert a.ids == b.ids
    assert_allclose(a.distances, b.distances, rtol=1e-5, atol=1e-6)
