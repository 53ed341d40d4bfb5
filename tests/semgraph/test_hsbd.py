"""Tests of semgraph.retrieval.hsbd: hand-computed values, validation, and hypothesis properties (docs/algorithms.md §1.6)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.cluster.hierarchy import linkage as scipy_linkage
from scipy.spatial.distance import squareform

from semgraph.errors import InvalidInput
from semgraph.retrieval import hsbd

LINKAGES = ["average", "complete"]
WEIGHTS = ["gap", "height", "uniform"]


# ----------------------------------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------------------------------


def _symmetric(k: int, upper_values) -> np.ndarray:
    D = np.zeros((k, k))
    D[np.triu_indices(k, 1)] = upper_values
    return D + D.T


# Entries mix a coarse integer grid (many exact ties and zeros) with continuous values.
_entry = st.one_of(st.integers(0, 4).map(float), st.floats(1e-3, 10.0, allow_nan=False, allow_subnormal=False))


@st.composite
def dissimilarities(draw, min_k: int = 1, max_k: int = 12) -> np.ndarray:
    k = draw(st.integers(min_k, max_k))
    values = draw(st.lists(_entry, min_size=k * (k - 1) // 2, max_size=k * (k - 1) // 2))
    return _symmetric(k, values)


@st.composite
def generic_dissimilarities(draw, min_k: int = 2, max_k: int = 16) -> np.ndarray:
    """Continuous random D (no ties with probability 1), from a numpy seed."""
    k = draw(st.integers(min_k, max_k))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _symmetric(k, rng.uniform(0.05, 1.0, size=k * (k - 1) // 2))


def _vector(k: int):
    return st.lists(st.floats(-2.0, 2.0, allow_nan=False, allow_subnormal=False), min_size=k, max_size=k).map(
        np.array
    )


@st.composite
def case(draw, n_vectors: int = 2, min_k: int = 1, max_k: int = 12):
    D = draw(dissimilarities(min_k, max_k))
    k = D.shape[0]
    return (D, *[draw(_vector(k)) for _ in range(n_vectors)])


options = st.tuples(st.sampled_from(LINKAGES), st.sampled_from(WEIGHTS))


# ----------------------------------------------------------------------------------------------------------------
# hand-computed k = 3 case
# ----------------------------------------------------------------------------------------------------------------

# D3 below, worked out by hand (not with the code under test):
#   average linkage: smallest entry D[0,1] = 2 -> merge {0},{1} at h1 = 2;
#                    link({0,1},{2}) = (6 + 4) / 2 = 5 -> root at h2 = 5, Z = 5.
#   complete linkage: same first merge; link = max(6, 4) = 6 -> h2 = 6, Z = 6.
#   a = (0.5, 0.2, 0.9), b = (0.1, 0.6, 0.3)
#   level 0 (singletons):     |0.4| + |-0.4| + |0.6|              = 1.4
#   level 1 ({0,1}, {2}):     |0.7 - 0.7| + |0.9 - 0.3|           = 0.6
#   level 2 (root):           |1.6 - 1.0|                         = 0.6
#   gap weights, average:     w = (2/5, 3/5, 0)   -> 0.4*1.4 + 0.6*0.6       = 0.92
#   gap weights, complete:    w = (2/6, 4/6, 0)   -> 1.4/3 + 0.6*2/3          = 13/15
#   height weights, average:  w = (0, 2, 5) / 7   -> (2/7 + 5/7) * 0.6        = 0.6
#   uniform weights:          w = (1, 1, 1) / 3   -> (1.4 + 0.6 + 0.6) / 3    = 13/15
#   node weights (average, gap): leaves 0,1: w0 = 0.4; leaf 2 (absorbed at level 2): w0 + w1 = 1.0;
#   node {0,1} (levels 1..1): w1 = 0.6; root: w2 = 0.
#   one-hot (average, gap): HSBD(e0, e1) = 0.4 + 0.4 = 0.8 = 2*2/5;  HSBD(e0, e2) = 0.4 + 1.0 + 0.6 = 2 = 2*5/5.
D3 = np.array([[0.0, 2.0, 6.0], [2.0, 0.0, 4.0], [6.0, 4.0, 0.0]])
A3 = np.array([0.5, 0.2, 0.9])
B3 = np.array([0.1, 0.6, 0.3])


@pytest.mark.parametrize(
    ("linkage", "weights", "expected"),
    [
        ("average", "gap", 0.92),
        ("complete", "gap", 13 / 15),
        ("average", "height", 0.6),
        ("average", "uniform", 13 / 15),
        ("complete", "uniform", 13 / 15),
    ],
)
def test_hand_computed_k3(linkage, weights, expected):
    assert hsbd.distance(A3, B3, D3, linkage=linkage, weights=weights) == pytest.approx(expected, abs=1e-12)
    assert hsbd.reference_distance(A3, B3, D3, linkage=linkage, weights=weights) == pytest.approx(expected, abs=1e-12)


def test_hand_computed_k3_tree():
    tree = hsbd.dendrogram(D3)
    assert_array_equal(tree.merges, [[0, 1], [3, 2]])
    assert_allclose(tree.heights, [2.0, 5.0])
    assert_allclose(tree.level_weights, [0.4, 0.6, 0.0])
    assert_allclose(tree.node_weights, [0.4, 0.4, 1.0, 0.6, 0.0])
    assert_allclose(tree.cophenetic, [[0, 2, 5], [2, 0, 5], [5, 5, 0]])
    assert_array_equal(tree.parent, [3, 3, 4, 4, -1])
    assert_array_equal(tree.membership, [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 1, 1]])
    expected_M = [[0.4, 0, 0], [0, 0.4, 0], [0, 0, 1.0], [0.6, 0.6, 0], [0, 0, 0]]
    assert_allclose(hsbd.projection(D3), expected_M, atol=1e-15)
    e = np.eye(3)
    assert hsbd.distance(e[0], e[1], D3) == pytest.approx(0.8)
    assert hsbd.distance(e[0], e[2], D3) == pytest.approx(2.0)


def test_tie_break_prefers_smallest_min_indices():
    # (0,1) and (0,2) tie at 1: (0,1) wins. Then link({0,1},{2}) = (1 + 2) / 2 = 1.5.
    D = [[0, 1, 1], [1, 0, 2], [1, 2, 0]]
    tree = hsbd.dendrogram(D)
    assert_array_equal(tree.merges, [[0, 1], [3, 2]])
    assert_allclose(tree.heights, [1.0, 1.5])
    # (1,2) and (0,3) tie at 1: (0,3) wins because min index 0 < 1.
    D4 = np.full((4, 4), 9.0)
    np.fill_diagonal(D4, 0)
    D4[1, 2] = D4[2, 1] = D4[0, 3] = D4[3, 0] = 1.0
    assert_array_equal(hsbd.dendrogram(D4).merges[0], [0, 3])


def test_projection_is_fresh_copy():
    M = hsbd.projection(D3)
    M[:] = 0
    assert hsbd.projection(D3).any()


# ----------------------------------------------------------------------------------------------------------------
# edge cases and validation
# ----------------------------------------------------------------------------------------------------------------


def test_k1():
    D = [[0.0]]
    assert hsbd.distance([0.3], [0.9], D) == 0.0
    assert hsbd.distance([0.3], [0.9], D, weights="height") == 0.0
    assert hsbd.distance([0.3], [0.9], D, weights="uniform") == pytest.approx(0.6)
    assert hsbd.reference_distance([0.3], [0.9], D, weights="uniform") == pytest.approx(0.6)
    assert hsbd.projection(D).shape == (1, 1)
    tree = hsbd.dendrogram(D)
    assert tree.merges.shape == (0, 2) and tree.heights.shape == (0,)


@pytest.mark.parametrize("k", [2, 3, 7])
def test_all_zero_dissimilarity_falls_back_to_limit_of_equal_entries(k):
    rng = np.random.default_rng(k)
    a, b = rng.random(k), rng.random(k)
    zero = np.zeros((k, k))
    ones = np.ones((k, k)) - np.eye(k)
    # Z = 0 is defined as the limit c -> 0 of c * (all-equal D): gap weights give plain L1.
    assert hsbd.distance(a, b, zero) == pytest.approx(np.abs(a - b).sum(), abs=1e-12)
    for weights in WEIGHTS:
        assert hsbd.distance(a, b, zero, weights=weights) == pytest.approx(
            hsbd.distance(a, b, ones, weights=weights), abs=1e-12
        )


@pytest.mark.parametrize(
    ("D", "fragment"),
    [
        ([[0, np.nan], [np.nan, 0]], "NaN"),
        ([[0, np.inf], [np.inf, 0]], "NaN or infinite"),
        ([[0, 1], [2, 0]], "symmetric"),
        ([[0, -1], [-1, 0]], "non-negative"),
        ([[1, 1], [1, 0]], "zero diagonal"),
        ([[0, 1, 2], [1, 0, 3]], "square"),
        ([0, 1], "square"),
        (np.zeros((0, 0)), "k >= 1"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_invalid_dissimilarity(D, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        hsbd.distance([0, 0], [0, 0], D)


@pytest.mark.parametrize(
    ("a", "fragment"),
    [([0.0, np.nan, 0.0], "NaN"), ([0.0, 1.0], r"shape \(3,\)"), ([[0, 0, 0]], r"shape \(3,\)")],
)
def test_invalid_vector(a, fragment):
    for func in (hsbd.distance, hsbd.reference_distance):
        with pytest.raises(InvalidInput, match=fragment):
            func(a, [0, 0, 0], D3)
        with pytest.raises(InvalidInput, match=fragment):
            func([0, 0, 0], a, D3)


def test_invalid_options_name_allowed_values():
    with pytest.raises(ValueError, match="'average', 'complete'"):
        hsbd.distance(A3, B3, D3, linkage="centroid")
    with pytest.raises(ValueError, match="'gap', 'height', 'uniform'"):
        hsbd.projection(D3, weights="max")
    with pytest.raises(ValueError, match="eps"):
        hsbd.clamp(D3, eps=0)
    with pytest.raises(ValueError, match="eps"):
        hsbd.clamp(D3, eps=float("nan"))


def test_tiny_asymmetry_is_rounding_noise():
    D = D3.copy()
    D[0, 1] += 1e-15
    assert hsbd.distance(A3, B3, D) == pytest.approx(0.92)


def test_clamp_values():
    D = np.array([[0, 0, 0.5], [0, 0, 2e-4], [0.5, 2e-4, 0]])
    C = hsbd.clamp(D)
    assert_allclose(C, [[0, 1e-3, 0.5], [1e-3, 0, 1e-3], [0.5, 1e-3, 0]])
    assert_allclose(D[0, 1], 0)  # input unchanged


# ----------------------------------------------------------------------------------------------------------------
# agreement with scipy
# ----------------------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(generic_dissimilarities(max_k=25), st.sampled_from(LINKAGES))
def test_heights_match_scipy_without_ties(D, linkage):
    ours = hsbd.dendrogram(D, linkage=linkage)
    theirs = scipy_linkage(squareform(D, checks=False), method=linkage)
    assert_allclose(ours.heights, theirs[:, 2], rtol=0, atol=1e-12)
    # same tree: every merge creates the same leaf set
    k = D.shape[0]
    leaves = [{i} for i in range(k)]
    for step, (u, v) in enumerate(theirs[:, :2].astype(int)):
        leaves.append(leaves[u] | leaves[v])
        assert set(np.flatnonzero(ours.membership[k + step])) == leaves[-1]


# ----------------------------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(case(), options)
def test_fast_equals_reference(data, opts):
    D, a, b = data
    linkage, weights = opts
    fast = hsbd.distance(a, b, D, linkage=linkage, weights=weights)
    slow = hsbd.reference_distance(a, b, D, linkage=linkage, weights=weights)
    assert abs(fast - slow) <= 1e-9
    M = hsbd.projection(D, linkage=linkage, weights=weights)
    assert abs(np.abs(M @ a - M @ b).sum() - slow) <= 1e-9


@settings(max_examples=200, deadline=None)
@given(case(n_vectors=3), options, st.integers(0, 2))
def test_project_rows_is_m_times_each_row_independently(data, opts, pick):
    D, *rows = data
    tree = hsbd.dendrogram(D, linkage=opts[0], weights=opts[1])
    X = np.array(rows)
    Y = tree.project_rows(X)
    assert Y.shape == (2 * tree.k - 1, 3) and Y.dtype == np.float64
    assert_allclose(Y, tree.projection @ X.T, rtol=1e-12, atol=1e-12)
    # a row's projection does not depend on the rows projected with it (bit for bit)
    assert_array_equal(tree.project_rows(X[pick : pick + 1])[:, 0], Y[:, pick])
    # float32 output: the float64 products rounded once
    Y32 = tree.project_rows(X, np.float32)
    assert Y32.dtype == np.float32
    assert_array_equal(Y32, Y.astype(np.float32))
    slow = hsbd.reference_distance(X[0], X[1], D, linkage=opts[0], weights=opts[1])
    assert abs(np.abs(Y[:, 0] - Y[:, 1]).sum() - slow) <= 1e-9


@settings(max_examples=200, deadline=None)
@given(case(n_vectors=3), options)
def test_pseudo_metric_axioms(data, opts):
    D, a, b, c = data
    linkage, weights = opts

    def d(x, y):
        return hsbd.distance(x, y, D, linkage=linkage, weights=weights)

    assert d(a, a) == 0.0
    assert d(a, b) >= 0.0
    assert d(a, b) == pytest.approx(d(b, a), abs=1e-12)
    assert d(a, c) <= d(a, b) + d(b, c) + 1e-9


@settings(max_examples=150, deadline=None)
@given(case(min_k=2))
def test_gap_hsbd_bounded_by_l1(data):
    D, a, b = data
    assert hsbd.distance(a, b, D) <= np.abs(a - b).sum() + 1e-9


@settings(max_examples=150, deadline=None)
@given(dissimilarities(min_k=2), st.sampled_from(LINKAGES))
def test_one_hot_is_twice_normalised_cophenetic(D, linkage):
    assume(D.max() > 0)
    tree = hsbd.dendrogram(D, linkage=linkage)
    Z = tree.heights[-1]
    e = np.eye(D.shape[0])
    for i, j in itertools.combinations(range(D.shape[0]), 2):
        expected = 2 * tree.cophenetic[i, j] / Z
        assert hsbd.distance(e[i], e[j], D, linkage=linkage) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(2, 15),
    st.floats(1e-3, 1e3, allow_subnormal=False),
    st.sampled_from(LINKAGES),
    st.integers(0, 2**32 - 1),
)
def test_equal_off_diagonal_gives_plain_l1(k, c, linkage, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random(k), rng.random(k)
    D = c * (np.ones((k, k)) - np.eye(k))
    assert hsbd.distance(a, b, D, linkage=linkage) == pytest.approx(np.abs(a - b).sum(), abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(case(), options, st.sampled_from([1e-3, 0.37, 3.0, 1024.0, 7e4]))
def test_scale_invariance(data, opts, scale):
    D, a, b = data
    linkage, weights = opts
    assert hsbd.distance(a, b, scale * D, linkage=linkage, weights=weights) == pytest.approx(
        hsbd.distance(a, b, D, linkage=linkage, weights=weights), abs=1e-9
    )


@settings(max_examples=150, deadline=None)
@given(generic_dissimilarities(), options, st.data())
def test_permutation_equivariance_without_ties(D, opts, data):
    linkage, weights = opts
    k = D.shape[0]
    a = data.draw(_vector(k))
    b = data.draw(_vector(k))
    perm = np.array(data.draw(st.permutations(range(k))))
    before = hsbd.distance(a, b, D, linkage=linkage, weights=weights)
    after = hsbd.distance(a[perm], b[perm], D[np.ix_(perm, perm)], linkage=linkage, weights=weights)
    assert after == pytest.approx(before, abs=1e-12)
    coph = hsbd.dendrogram(D, linkage=linkage).cophenetic
    assert_allclose(hsbd.dendrogram(D[np.ix_(perm, perm)], linkage=linkage).cophenetic, coph[np.ix_(perm, perm)])


@settings(max_examples=150, deadline=None)
@given(generic_dissimilarities(min_k=3), st.sampled_from(LINKAGES), st.data())
def test_clamp_restores_metric_after_zeroed_entry(D, linkage, data):
    k = D.shape[0]
    i, j = sorted(data.draw(st.lists(st.integers(0, k - 1), min_size=2, max_size=2, unique=True)))
    D = D.copy()
    D[i, j] = D[j, i] = 0.0  # e.g. relevance feedback drove the pair to 0
    e = np.eye(k)
    assert hsbd.distance(e[i], e[j], D, linkage=linkage) == 0.0  # pseudo-metric only
    C = hsbd.clamp(D)
    assert C[i, j] == C[j, i] == 1e-3
    assert np.all(hsbd.dendrogram(C, linkage=linkage).node_weights[:k] > 0)
    for p, q in itertools.combinations(range(k), 2):
        assert hsbd.distance(e[p], e[q], C, linkage=linkage) > 0.0


@settings(max_examples=150, deadline=None)
@given(dissimilarities(), st.sampled_from(LINKAGES))
def test_heights_monotone_and_tree_consistent(D, linkage):
    tree = hsbd.dendrogram(D, linkage=linkage)
    k = D.shape[0]
    assert np.all(np.diff(tree.heights) >= 0)
    assert np.all(tree.heights >= 0)
    assert tree.membership.shape == (2 * k - 1, k)
    assert_array_equal(tree.membership[:k], np.eye(k))
    assert_array_equal(tree.membership[-1], np.ones(k))
    assert np.all(tree.node_weights >= 0)
    assert tree.level_weights.sum() == pytest.approx(1.0 if k > 1 else 0.0)
    assert_allclose(tree.projection, tree.node_weights[:, None] * tree.membership)
    # cophenetic is an ultrametric dominated by the linkage range
    coph = tree.cophenetic
    for p, q, r in itertools.permutations(range(k), 3):
        assert coph[p, q] <= max(coph[p, r], coph[r, q]) + 1e-12


@st.composite
def ultrametrics(draw, max_k: int = 12) -> np.ndarray:
    """Random ultrametric: merge random clusters at non-decreasing (often equal) heights."""
    k = draw(st.integers(2, max_k))
    clusters = [[i] for i in range(k)]
    U = np.zeros((k, k))
    h = 0.0
    while len(clusters) > 1:
        h += draw(st.sampled_from([0.0, 0.5, 1.0, 0.25, 3.0]))
        p, q = draw(st.lists(st.integers(0, len(clusters) - 1), min_size=2, max_size=2, unique=True))
        left, right = clusters[p], clusters[q]
        U[np.ix_(left, right)] = h
        U[np.ix_(right, left)] = h
        clusters = [c for n, c in enumerate(clusters) if n not in (p, q)] + [left + right]
    return U


@settings(max_examples=200, deadline=None)
@given(ultrametrics(), st.sampled_from(LINKAGES))
def test_ultrametric_is_recovered(U, linkage):
    assert_allclose(hsbd.dendrogram(U, linkage=linkage).cophenetic, U, rtol=0, atol=1e-12)
