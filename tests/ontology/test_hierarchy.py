"""Tests of ontology.hierarchy.Hierarchy on a hand-drawn toy taxonomy, random trees and the bundled RadLex subset.

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
"""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ontology.errors import HierarchyCycleError, OntologyError, UnknownTermError
from ontology.hierarchy import Hierarchy
from ontology.paper_terms import paper_terms

TOY = "http://example.org/toy#"
RID = "http://radlex.org/RID/"


def t(name: str) -> str:
    return TOY + name


# ---------------------------------------------------------------------------------------------- structure
def test_toy_root_and_size(toy):
    assert toy.root == t("entity")  # the only class without a parent
    assert len(toy) == 12
    assert t("fat") in toy and t("nothing") not in toy
    assert toy.terms == {t(n) for n in ("entity margin circumscribed smooth noncircumscribed irregular lobulated "
                                        "microlobulated density hypodense fat hyperdense").split()}
    assert toy.clusters == (t("density"), t("margin"))


def test_toy_parents_children_ancestors(toy):
    assert toy.parents(t("microlobulated")) == {t("irregular"), t("lobulated")}
    assert toy.parents(t("entity")) == frozenset()
    assert toy.children(t("noncircumscribed")) == {t("irregular"), t("lobulated")}
    assert toy.children(t("smooth")) == frozenset()
    # micro < irregular, lobulated < non-circumscribed < margin < entity; the term itself is excluded
    assert toy.ancestors(t("microlobulated")) == {t(n) for n in ("irregular", "lobulated", "noncircumscribed",
                                                                  "margin", "entity")}
    assert toy.ancestors(t("entity")) == frozenset()


@pytest.mark.parametrize(
    ("name", "depth"),
    [("entity", 1), ("margin", 2), ("density", 2), ("circumscribed", 3), ("noncircumscribed", 3),
     ("hypodense", 3), ("hyperdense", 3), ("smooth", 4), ("irregular", 4), ("lobulated", 4), ("fat", 4),
     ("microlobulated", 5)],  # 1 + depth of either parent (both 4)
)
def test_toy_depths(toy, name, depth):
    assert toy.depth(t(name)) == depth


@pytest.mark.parametrize(
    ("name", "cluster"),
    [("margin", "margin"), ("smooth", "margin"), ("microlobulated", "margin"), ("density", "density"),
     ("fat", "density"), ("hyperdense", "density")],
)
def test_toy_clusters(toy, name, cluster):
    assert toy.cluster(t(name)) == t(cluster)


def test_toy_cluster_depths(toy):
    # margin: deepest is microlobulated margin (5); density: deepest is fat density (4)
    assert toy.cluster_depth(t("margin")) == 5
    assert toy.cluster_depth(t("density")) == 4


def test_root_has_no_cluster_and_non_cluster_rejected(toy):
    with pytest.raises(OntologyError, match="no cluster"):
        toy.cluster(t("entity"))
    with pytest.raises(OntologyError, match="not a cluster"):
        toy.cluster_depth(t("irregular"))


@pytest.mark.parametrize(
    ("a", "b", "lca", "path"),
    [
        ("irregular", "lobulated", "noncircumscribed", 2),          # siblings at depth 4
        ("circumscribed", "noncircumscribed", "margin", 2),          # siblings at depth 3
        ("smooth", "irregular", "margin", 4),                        # smooth<circ<margin>non-circ>irregular
        ("microlobulated", "irregular", "irregular", 1),             # ancestor-or-self
        ("microlobulated", "lobulated", "lobulated", 1),
        ("microlobulated", "noncircumscribed", "noncircumscribed", 2),
        ("microlobulated", "smooth", "margin", 5),                   # 3 up from micro + 2 up from smooth
        ("hypodense", "fat", "hypodense", 1),
        ("fat", "hyperdense", "density", 3),
        ("smooth", "fat", "entity", 6),                              # across clusters, through the root
        ("microlobulated", "fat", "entity", 7),
        ("margin", "density", "entity", 2),
        ("entity", "fat", "entity", 3),
        ("smooth", "smooth", "smooth", 0),
    ],
)
def test_toy_lca_and_path(toy, a, b, lca, path):
    assert toy.lca(t(a), t(b)) == t(lca)
    assert toy.lca(t(b), t(a)) == t(lca)
    assert toy.path_length(t(a), t(b)) == path
    assert toy.path_length(t(b), t(a)) == path
    assert toy.path_and_lca(t(a), t(b)) == (path, t(lca))


# ---------------------------------------------------------------------------------------------- labels and lookup
def test_labels_and_resolve(toy):
    assert toy.label(t("fat")) == "fat density"
    assert toy.resolve(t("fat")) == t("fat")                     # IRI
    assert toy.resolve("  Irregular   MARGIN ") == t("irregular")  # label, case and spaces ignored
    assert toy.resolve("microlobulated") == t("microlobulated")  # bare local name
    assert toy.resolve("HYPERDENSE") == t("hyperdense")          # label wins before the local name


def test_label_missing_is_none():
    h = Hierarchy.from_edges([("b", "a")], labels={"a": "top"})
    assert h.label("a") == "top"
    assert h.label("b") is None


def test_resolve_unknown_suggests_close_labels():
    h = Hierarchy.from_edges(
        [("m", "root"), ("i", "m"), ("l", "m"), ("s", "m")],
        labels={"root": "root", "m": "margin", "i": "irregular margin", "l": "lobulated margin",
                "s": "smooth margin"},
    )
    with pytest.raises(UnknownTermError) as info:
        h.resolve("irregular margn")
    assert info.value.term == "irregular margn"
    assert info.value.suggestions[0] == "irregular margin"
    assert len(info.value.suggestions) <= 3
    assert "did you mean 'irregular margin'" in str(info.value)
    assert isinstance(info.value, OntologyError)


def test_unknown_term_in_queries(toy):
    with pytest.raises(UnknownTermError, match="fat densty"):
        toy.depth("fat densty")
    with pytest.raises(UnknownTermError):
        toy.path_length(t("fat"), t("nope"))


def test_ambiguous_label_is_an_error():
    h = Hierarchy.from_edges([("x1", "r"), ("x2", "r")], labels={"x1": "Same", "x2": "same"})
    with pytest.raises(OntologyError, match="several terms"):
        h.resolve("same")


# ---------------------------------------------------------------------------------------------- construction errors
def test_cycle_is_named_with_labels():
    edges = [("http://ex/b", "http://ex/a"), ("http://ex/c", "http://ex/b"), ("http://ex/a", "http://ex/c"),
             ("http://ex/d", "http://ex/a")]
    with pytest.raises(HierarchyCycleError) as info:
        Hierarchy.from_edges(edges, labels={"http://ex/a": "alpha", "http://ex/c": "gamma"})
    message = str(info.value)
    # a is_a c is_a b is_a a, starting at the smallest IRI; unlabelled terms appear as <iri>
    assert "alpha <http://ex/a> -> gamma <http://ex/c> -> <http://ex/b> -> alpha <http://ex/a>" in message
    assert len(info.value.cycle) == 3


def test_self_loop_is_a_cycle():
    with pytest.raises(HierarchyCycleError, match="<x> -> <x>"):
        Hierarchy.from_edges([("x", "x"), ("x", "r")])


def test_several_roots_need_root_argument():
    edges = [("a1", "a"), ("b1", "b"), ("c1", "c")]
    with pytest.raises(OntologyError) as info:
        Hierarchy.from_edges(edges, labels={"a": "first"})
    message = str(info.value)
    assert "3 top terms" in message and "first <a>" in message and "<b>" in message and "<c>" in message
    assert "root=" in message


def test_explicit_root_drops_terms_not_below_it():
    edges = [("a1", "a"), ("a", "top"), ("b1", "b"), ("x", "a1"), ("x", "b1")]
    h = Hierarchy.from_edges(edges, labels={"b1": "bee one"}, root="a")
    assert h.root == "a"
    assert h.terms == {"a", "a1", "x"}
    assert h.parents("x") == {"a1"}  # its parent outside the hierarchy is dropped
    for outside in ("top", "b", "b1"):
        assert outside not in h
        with pytest.raises(OntologyError, match="not below the root") as info:
            h.depth(outside)
        assert not isinstance(info.value, UnknownTermError)
    with pytest.raises(OntologyError, match="bee one <b1> is not below the root <a>"):
        h.resolve("Bee One")


def test_root_must_be_a_term():
    with pytest.raises(UnknownTermError):
        Hierarchy.from_edges([("b", "a")], root="c")


def test_empty_and_single_term_hierarchies():
    with pytest.raises(OntologyError, match="empty"):
        Hierarchy.from_edges([])
    h = Hierarchy.from_edges([], root="only")
    assert len(h) == 1 and h.depth("only") == 1 and h.path_length("only", "only") == 0
    assert h.clusters == ()


@pytest.mark.parametrize("edge", [("a",), ("a", ""), ("a", 3), "ab", ("a", "b", "c")])
def test_malformed_edges_are_rejected(edge):
    with pytest.raises(OntologyError, match="edge"):
        Hierarchy.from_edges([edge, ("x", "y")])


def test_hierarchy_is_immutable(toy):
    with pytest.raises(nx.NetworkXError):
        toy.graph.add_edge("a", "b")
    with pytest.raises(AttributeError):
        toy.new_attribute = 1


# ---------------------------------------------------------------------------------------------- several parents
def test_depth_is_the_shortest_path_from_the_root():
    #   r -> a -> b -> c, and a shortcut r -> c
    h = Hierarchy.from_edges([("a", "r"), ("b", "a"), ("c", "b"), ("c", "r")])
    assert h.depth("c") == 2          # via the shortcut, not 4
    assert h.cluster("c") == "c"      # the shortest path r -> c has c itself as the child of the root
    assert h.cluster_depth("a") == 3  # a (2), b (3); c is counted in its own cluster
    assert h.cluster_depth("c") == 2
    # the deepest common ancestor-or-self of c and b is b (depth 3), deeper than c (depth 2)
    assert h.path_and_lca("c", "b") == (1, "b")


def test_cluster_ties_go_to_the_smallest_iri():
    #   r -> b -> pb -> x   and   r -> a -> pa -> x   (equal length): cluster(x) = a
    #   r -> c -> y, r -> d -> e -> y: the path via c is shorter, so cluster(y) = c
    h = Hierarchy.from_edges([
        ("a", "r"), ("b", "r"), ("pa", "a"), ("pb", "b"), ("x", "pa"), ("x", "pb"),
        ("c", "r"), ("d", "r"), ("e", "d"), ("y", "c"), ("y", "e"),
    ])
    assert h.cluster("x") == "a"
    assert h.cluster("y") == "c"
    assert h.depth("y") == 3
    # D_c counts each term once, in its own cluster: x (3) is in a, not in b
    assert h.cluster_depth("a") == 4 and h.cluster_depth("b") == 3


def test_lca_ties_go_to_the_smallest_iri():
    #   x and y both have parents p and q (same depth 2): lca = p (smaller IRI), path = 2
    h = Hierarchy.from_edges([("p", "r"), ("q", "r"), ("x", "p"), ("x", "q"), ("y", "p"), ("y", "q")])
    assert h.lca("x", "y") == "p"
    assert h.path_length("x", "y") == 2


# ---------------------------------------------------------------------------------------------- random trees
@st.composite
def random_trees(draw, max_nodes: int = 30) -> Hierarchy:
    """A random rooted tree given as a parent array (node i > 0 has a parent < i); node n00 is the root."""
    n = draw(st.integers(2, max_nodes))
    parents = [draw(st.integers(0, i - 1)) for i in range(1, n)]
    return Hierarchy.from_edges([(f"n{i:02d}", f"n{p:02d}") for i, p in enumerate(parents, start=1)])


@settings(max_examples=60, deadline=None)
@given(random_trees())
def test_random_tree_queries_agree_with_networkx(h):
    down = h.graph.reverse(copy=True)  # parent -> child
    undirected = h.graph.to_undirected()
    depths = nx.single_source_shortest_path_length(down, h.root)
    for a in h.terms:
        assert h.depth(a) == depths[a] + 1
        assert h.ancestors(a) == nx.descendants(h.graph, a)
        if a != h.root:
            path = nx.shortest_path(down, h.root, a)
            assert h.cluster(a) == path[1]
            assert h.cluster_depth(h.cluster(a)) >= h.depth(a)
    terms = sorted(h.terms)
    for a in terms[:8]:
        for b in terms:
            assert h.path_length(a, b) == nx.shortest_path_length(undirected, a, b)
            assert h.lca(a, b) == nx.lowest_common_ancestor(down, a, b)


# ---------------------------------------------------------------------------------------------- bundled RadLex subset
def test_radlex_subset_structure(radlex):
    assert radlex.root == RID + "RID1"
    assert len(radlex) > 2000
    irregular, lobulated, smooth = RID + "RID5715", RID + "RID5711", RID + "RID5714"
    # irregular < non-circumscribed margin (RID34355) < margin (RID5972) < imaging observation (RID5) < RadLex entity
    assert radlex.depth(irregular) == 5
    assert radlex.cluster(irregular) == RID + "RID5"
    assert radlex.lca(irregular, lobulated) == RID + "RID34355"
    assert radlex.path_length(irregular, lobulated) == 2
    # smooth < circumscribed margin (RID5707) < margin (RID5972) > non-circumscribed margin > irregular
    assert radlex.lca(smooth, irregular) == RID + "RID5972"
    assert radlex.path_length(smooth, irregular) == 4
    assert radlex.label(irregular) == "irregular margin"


@pytest.mark.parametrize("term", paper_terms(), ids=lambda p: p.paper_label)
def test_radlex_paper_terms_resolve(radlex, term):
    assert radlex.resolve(term.iri) == term.iri
    assert radlex.resolve(term.rid) == term.iri
    assert radlex.resolve(term.label.upper()) == term.iri
    assert radlex.depth(term.iri) >= 3


def test_radlex_unknown_label_suggestions(radlex):
    with pytest.raises(UnknownTermError) as info:
        radlex.resolve("irregular margn")
    assert "irregular margin" in info.value.suggestions
