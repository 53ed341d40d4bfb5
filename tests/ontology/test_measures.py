"""Tests of ontology.measures (δ_Θ) on a hand-drawn toy taxonomy, random trees and the bundled RadLex subset.

The toy taxonomy (tests/data/toy_taxonomy.ttl), depths in brackets (root = 1):

    entity [1]
    |-- margin [2]                                   cluster "margin",  D_c = 5
    |   |-- circumscribed margin [3]
    |   |   `-- smooth margin [4]
    |   `-- non-circumscribed margin [3]
    |       |-- irregular margin [4] --.
    |       `-- lobulated margin [4] --+-- microlobulated margin [5]   (two parents)
    `-- density [2]                                  cluster "density", D_c = 4
        |-- hypodense [3]
        |   `-- fat density [4]
        `-- hyperdense [3]

Kurtz raw value: ln(sqrt(path · CS) + 1), with CS = D_c − depth(LCA) in one cluster and
CS = max(D_c(a), D_c(b)) − depth(root) = max(5, 4) − 1 = 4 across the two clusters.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from ontology.errors import OntologyError, UnknownTermError
from ontology.hierarchy import Hierarchy
from ontology.measures import MEASURES, dissimilarity_matrix
from ontology.paper_terms import paper_terms

TOY = "http://example.org/toy#"
RID = "http://radlex.org/RID/"
ln = math.log
sqrt = math.sqrt


def t(name: str) -> str:
    return TOY + name


def kurtz_raw(h: Hierarchy, a: str, b: str) -> float:
    return MEASURES["kurtz"].pair(h, a, b, 1.0)


# ---------------------------------------------------------------------------------------------- toy, by hand
# (a, b, path, CS, comment)
TOY_PAIRS = [
    ("circumscribed", "noncircumscribed", 2, 3, "siblings at depth 3: LCA margin (2), CS = 5 - 2"),
    ("irregular", "lobulated", 2, 2, "siblings at depth 4: LCA non-circumscribed (3), CS = 5 - 3"),
    ("smooth", "irregular", 4, 3, "LCA margin (2)"),
    ("microlobulated", "irregular", 1, 1, "LCA irregular itself (4), CS = 5 - 4"),
    ("microlobulated", "smooth", 5, 3, "LCA margin"),
    ("hypodense", "hyperdense", 2, 2, "LCA density (2), CS = 4 - 2"),
    ("fat", "hyperdense", 3, 2, "LCA density"),
    ("hypodense", "fat", 1, 1, "LCA hypodense (3), CS = 4 - 3"),
    ("smooth", "fat", 6, 4, "across clusters"),
    ("microlobulated", "fat", 7, 4, "across clusters"),
    ("margin", "density", 2, 4, "across clusters"),
    ("entity", "fat", 3, 3, "the root takes the cross-cluster rule: D(density) - depth(root) = 4 - 1"),
]


@pytest.mark.parametrize(("a", "b", "path", "cs", "why"), TOY_PAIRS, ids=[f"{p[0]}-{p[1]}" for p in TOY_PAIRS])
def test_toy_raw_values(toy, a, b, path, cs, why):
    assert toy.path_length(t(a), t(b)) == path
    assert kurtz_raw(toy, t(a), t(b)) == pytest.approx(ln(sqrt(path * cs) + 1))
    assert kurtz_raw(toy, t(b), t(a)) == pytest.approx(ln(sqrt(path * cs) + 1))
    assert MEASURES["al-mubaid"].pair(toy, t(a), t(b), 1.0) == pytest.approx(ln(path * cs + 1))


def test_toy_named_raw_values(toy):
    assert kurtz_raw(toy, t("circumscribed"), t("noncircumscribed")) == pytest.approx(ln(sqrt(2 * 3) + 1))
    assert kurtz_raw(toy, t("irregular"), t("lobulated")) == pytest.approx(ln(3))
    assert kurtz_raw(toy, t("microlobulated"), t("irregular")) == pytest.approx(ln(2))


# Vocabulary for the matrix tests and its hand-computed raw Kurtz matrix.
VOCAB = ["smooth", "irregular", "lobulated", "microlobulated", "hypodense", "fat"]
R12, R15, R20, R24, R28 = (ln(sqrt(x) + 1) for x in (12, 15, 20, 24, 28))
RAW = np.array([
    #  smooth  irregular lobulated micro   hypodense fat
    [0.0,     R12,      R12,      R15,     R20,      R24],   # smooth: path 4/4/5 (CS 3), 5/6 (CS 4)
    [R12,     0.0,      ln(3),    ln(2),   R20,      R24],   # irregular: lobulated path 2 CS 2, micro path 1 CS 1
    [R12,     ln(3),    0.0,      ln(2),   R20,      R24],
    [R15,     ln(2),    ln(2),    0.0,     R24,      R28],   # micro-hypodense: path 4 + 2 = 6, CS 4
    [R20,     R20,      R20,      R24,     0.0,      ln(2)], # hypodense-fat: path 1, CS 4 - 3 = 1
    [R24,     R24,      R24,      R28,     ln(2),    0.0],   # micro-fat: path 4 + 3 = 7, CS 4
])
OMEGA = R28  # ln(sqrt(28) + 1) ≈ 1.8392: microlobulated margin vs fat density


def test_toy_kurtz_matrix(toy):
    m = dissimilarity_matrix(toy, [t(n) for n in VOCAB])
    assert m.dtype == np.float64 and m.shape == (6, 6)
    assert_allclose(m, RAW / OMEGA, rtol=1e-12)
    assert m.max() == 1.0 and m[3, 5] == 1.0
    assert m[1, 2] == pytest.approx(ln(3) / ln(sqrt(28) + 1))  # ≈ 0.5973
    assert m[0, 5] == pytest.approx(0.96497, abs=1e-5)           # ln(1 + √24) / ln(1 + √28)


def test_toy_al_mubaid_matrix(toy):
    m = dissimilarity_matrix(toy, [t(n) for n in VOCAB], "al-mubaid")
    assert m[1, 2] == pytest.approx(ln(5))       # path 2 · CS 2 + 1
    assert m[3, 5] == pytest.approx(ln(29))      # 7 · 4 + 1: not normalised
    assert m[0, 1] == pytest.approx(ln(13))      # 4 · 3 + 1


def test_toy_wu_palmer_matrix(toy):
    m = dissimilarity_matrix(toy, [t(n) for n in VOCAB], "wu-palmer")
    assert m[1, 2] == pytest.approx(1 - 2 * 3 / (4 + 4))   # 0.25, LCA non-circumscribed
    assert m[1, 3] == pytest.approx(1 - 2 * 4 / (4 + 5))   # 1/9, LCA irregular
    assert m[0, 5] == pytest.approx(1 - 2 * 1 / (4 + 4))   # 0.75, LCA root
    assert m[4, 5] == pytest.approx(1 - 2 * 3 / (3 + 4))   # 1/7
    assert m.max() < 1


def test_toy_path_matrix(toy):
    m = dissimilarity_matrix(toy, [t(n) for n in VOCAB], "path")
    paths = np.array([
        [0, 4, 4, 5, 5, 6],
        [4, 0, 2, 1, 5, 6],
        [4, 2, 0, 1, 5, 6],
        [5, 1, 1, 0, 6, 7],
        [5, 5, 5, 6, 0, 1],
        [6, 6, 6, 7, 1, 0],
    ])
    assert_allclose(m, paths / 7)


def test_terms_resolved_by_label_and_id(toy):
    by_iri = dissimilarity_matrix(toy, [t("irregular"), t("fat")])
    by_name = dissimilarity_matrix(toy, ["irregular margin", "fat"])
    assert_array_equal(by_iri, by_name)


# ---------------------------------------------------------------------------------------------- validation
def test_registry_names():
    assert set(MEASURES) == {"kurtz", "al-mubaid", "wu-palmer", "path"}
    for name, m in MEASURES.items():
        assert m.name == name and m.formula and m.reference and m.value_range
    with pytest.raises(TypeError):
        MEASURES["mine"] = MEASURES["path"]  # read-only registry


def test_unknown_measure_lists_valid_names(toy):
    with pytest.raises(OntologyError) as info:
        dissimilarity_matrix(toy, [t("fat")], "resnik")
    message = str(info.value)
    assert "'resnik'" in message
    for name in MEASURES:
        assert name in message


def test_duplicate_terms_are_at_distance_zero(toy):
    m = dissimilarity_matrix(toy, [t("fat"), t("smooth"), t("fat")])
    assert m[0, 2] == m[2, 0] == 0.0
    assert m[0, 1] == m[2, 1] == 1.0


@pytest.mark.parametrize("measure", sorted(MEASURES))
def test_degenerate_vocabularies(toy, measure):
    assert dissimilarity_matrix(toy, [], measure).shape == (0, 0)
    assert_array_equal(dissimilarity_matrix(toy, [t("fat")], measure), [[0.0]])
    assert_array_equal(dissimilarity_matrix(toy, [t("fat")] * 3, measure), np.zeros((3, 3)))


def test_bad_arguments(toy):
    with pytest.raises(OntologyError, match="single string"):
        dissimilarity_matrix(toy, t("fat"))
    with pytest.raises(UnknownTermError):
        dissimilarity_matrix(toy, [t("fat"), "fat densty"])
    with pytest.raises(OntologyError, match=">= 1"):
        dissimilarity_matrix(toy, [t("fat")], gamma=0.5)
    with pytest.raises(OntologyError, match="finite"):
        dissimilarity_matrix(toy, [t("fat")], gamma=float("nan"))
    with pytest.raises(OntologyError, match="does not use gamma"):
        dissimilarity_matrix(toy, [t("fat")], "path", gamma=2.0)


def test_gamma_enters_kurtz(toy):
    m = dissimilarity_matrix(toy, [t("irregular"), t("lobulated"), t("fat")], gamma=2.0)
    assert m[0, 1] == pytest.approx(ln(2 + 2) / ln(sqrt(24) + 2))
    assert m.max() == 1.0


# ---------------------------------------------------------------------------------------------- random trees
@st.composite
def random_trees(draw, max_nodes: int = 25, extra_parents: bool = False) -> Hierarchy:
    """A random rooted tree (or DAG with extra parents) from a parent array: node i > 0 has parents < i."""
    n = draw(st.integers(2, max_nodes))
    edges = []
    for i in range(1, n):
        edges.append((f"n{i:02d}", f"n{draw(st.integers(0, i - 1)):02d}"))
        if extra_parents and i > 1 and draw(st.booleans()):
            edges.append((f"n{i:02d}", f"n{draw(st.integers(0, i - 1)):02d}"))
    return Hierarchy.from_edges(edges)


@st.composite
def tree_and_terms(draw, extra_parents: bool = False):
    h = draw(random_trees(extra_parents=extra_parents))
    terms = draw(st.lists(st.sampled_from(sorted(h.terms)), min_size=1, max_size=10))
    return h, terms


@settings(max_examples=80, deadline=None)
@given(tree_and_terms(extra_parents=False) | tree_and_terms(extra_parents=True), st.sampled_from(sorted(MEASURES)))
def test_matrix_properties(case, measure):
    h, terms = case
    m = dissimilarity_matrix(h, terms, measure)
    k = len(terms)
    assert m.shape == (k, k) and m.dtype == np.float64
    assert_array_equal(np.diag(m), np.zeros(k))
    assert_array_equal(m, m.T)
    assert (m >= 0).all() and np.isfinite(m).all()
    if measure == "path":  # distinct terms are at least one edge apart, even with several parents
        for i, j in itertools.product(range(k), repeat=2):
            assert (m[i, j] == 0) == (terms[i] == terms[j])
    if measure in ("kurtz", "path"):
        assert m.max() <= 1.0
    if measure == "wu-palmer":
        assert m.max() < 1.0


@settings(max_examples=80, deadline=None)
@given(tree_and_terms(), st.sampled_from(["kurtz", "path"]))
def test_normalised_max_is_exactly_one_on_trees(case, measure):
    h, terms = case
    assume(len(set(terms)) >= 2)
    m = dissimilarity_matrix(h, terms, measure)
    assert m.max() == 1.0
    # on a tree, distinct terms are never at distance 0
    for i, j in itertools.combinations(range(len(terms)), 2):
        assert (m[i, j] > 0) == (terms[i] != terms[j])


def _sibling_pairs(h: Hierarchy):
    for parent in h.terms:
        if parent != h.root:
            for a, b in itertools.combinations(sorted(h.children(parent)), 2):
                yield parent, a, b


@settings(max_examples=80, deadline=None)
@given(random_trees(max_nodes=30))
def test_deeper_siblings_are_closer(h):
    pairs = list(_sibling_pairs(h))
    for (p, a, b), (q, c, d) in itertools.product(pairs, repeat=2):
        if h.cluster(p) == h.cluster(q) and h.depth(p) > h.depth(q):
            assert kurtz_raw(h, a, b) < kurtz_raw(h, c, d)


@settings(max_examples=80, deadline=None)
@given(random_trees(max_nodes=20))
def test_cross_cluster_at_least_same_cluster_at_equal_path(h):
    # Compared with the clusters involved: a pair across clusters c1, c2 is at least as far as any pair inside
    # c1 or inside c2 with the same path length (CS across = max(D_c1, D_c2) - 1 >= D_c - depth(LCA)).
    same: dict[tuple[str, int], float] = {}  # (cluster, path) -> largest raw inside that cluster
    cross: list[tuple[str, str, int, float]] = []
    others = sorted(h.terms - {h.root})
    for a, b in itertools.combinations(others, 2):
        path, raw = h.path_length(a, b), kurtz_raw(h, a, b)
        ca, cb = h.cluster(a), h.cluster(b)
        if ca == cb:
            same[ca, path] = max(same.get((ca, path), -1.0), raw)
        else:
            cross.append((ca, cb, path, raw))
    for ca, cb, path, raw in cross:
        for c in (ca, cb):
            assert raw >= same.get((c, path), -1.0)


# ---------------------------------------------------------------------------------------------- bundled RadLex subset
def test_radlex_paper_terms_kurtz_matrix(radlex):
    iris = [p.iri for p in paper_terms()]
    m = dissimilarity_matrix(radlex, iris)
    assert m.shape == (19, 19)
    assert_array_equal(np.diag(m), np.zeros(19))
    assert_array_equal(m, m.T)
    assert m.min() >= 0.0 and m.max() == 1.0

    i, j, s = (iris.index(RID + r) for r in ("RID5715", "RID5711", "RID5714"))
    # irregular vs lobulated, siblings under non-circumscribed margin (path 2),
    # are closer than smooth vs irregular (path 4)
    assert 0 < m[i, j] < m[s, i]


def test_radlex_sibling_pair_value(radlex):
    irregular, lobulated = RID + "RID5715", RID + "RID5711"
    d5 = radlex.cluster_depth(RID + "RID5")
    lca = radlex.lca(irregular, lobulated)
    assert lca == RID + "RID34355" and radlex.depth(lca) == 4
    assert kurtz_raw(radlex, irregular, lobulated) == pytest.approx(ln(sqrt(2 * (d5 - 4)) + 1))
