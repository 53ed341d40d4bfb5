"""Loading ontologies into a store (both backends) and reading the hierarchy back, by networkx and by SPARQL."""

from __future__ import annotations

import gzip
import itertools

import numpy as np
import pytest

import ontology
from kg.namespaces import ontology_graph
from ontology import (
    HierarchyCycleError,
    OntologyError,
    OntologySourceError,
    UnknownTermError,
)
from ontology.paper_terms import paper_terms

TOY_TTL = """@prefix ex: <http://example.org/toy#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:b rdfs:subClassOf ex:root ; rdfs:label "b" .
ex:c rdfs:subClassOf ex:b ; rdfs:label "c" .
ex:d rdfs:subClassOf ex:b ; rdfs:label "d" .
"""
SKOS_TTL = """@prefix ex: <http://example.org/s#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
ex:top skos:prefLabel "top" .
ex:x skos:broader ex:top ; skos:prefLabel "x" .
ex:y skos:broader ex:x ; skos:prefLabel "y" .
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bundled_radlex_loads_and_describes_itself(store):
    info = ontology.load(store, "radlex-liver")
    assert info.name == "radlex-liver" and info.root == "http://radlex.org/RID/RID1"
    assert store.graphs() == [str(ontology_graph("radlex-liver"))]
    assert store.count(info.graph) == info.triples == 8656 + 6
    assert [i.name for i in ontology.catalog(store)] == ["radlex-liver"]
    h = ontology.hierarchy(store)
    assert len(h) == 2383
    assert all(t.iri in h for t in paper_terms())


def test_networkx_cache_and_sparql_agree_on_radlex(store):
    ontology.load(store, "radlex-liver")
    cached, sparql = ontology.hierarchy(store), ontology.sparql_hierarchy(store)
    iris = [t.iri for t in paper_terms()]
    for term in iris:
        assert cached.parents(term) == sparql.parents(term)
        assert cached.ancestors(term) == sparql.ancestors(term)
        assert cached.depth(term) == sparql.depth(term)
        assert cached.cluster(term) == sparql.cluster(term)
    for a, b in itertools.combinations(iris[:8], 2):
        assert cached.lca(a, b) == sparql.lca(a, b)
        assert cached.path_length(a, b) == sparql.path_length(a, b)
    for cluster in {cached.cluster(t) for t in iris}:
        assert cached.cluster_depth(cluster) == sparql.cluster_depth(cluster)


def test_dissimilarity_matrix_from_store(store):
    ontology.load(store, "radlex-liver")
    iris = [t.iri for t in paper_terms()]
    m = ontology.dissimilarity_matrix(store, iris)
    assert m.shape == (19, 19) and np.all(np.diag(m) == 0) and np.allclose(m, m.T) and m.max() == 1.0
    i, j = iris.index("http://radlex.org/RID/RID5715"), iris.index("http://radlex.org/RID/RID5711")
    # irregular vs lobulated: siblings, path 2, LCA RID34355 at depth 4, margin cluster D_c = 7 -> CS = 3
    assert m[i, j] * m.max() == pytest.approx(np.log(np.sqrt(2 * 3) + 1) / _omega(store, iris))
    with pytest.raises(UnknownTermError, match="RID999999"):
        ontology.dissimilarity_matrix(store, [iris[0], "http://radlex.org/RID/RID999999"])


def _omega(store, iris):
    from ontology.measures import MEASURES

    h = ontology.hierarchy(store)
    return max(MEASURES["kurtz"].pair(h, a, b, 1.0) for a, b in itertools.combinations(iris, 2))


def test_several_ontologies_live_side_by_side(store, tmp_path):
    ontology.load(store, "radlex-liver")
    ontology.load(store, write(tmp_path, "toy.ttl", TOY_TTL))
    ontology.load(store, write(tmp_path, "vocab.ttl", SKOS_TTL), name="skos-vocab")
    assert [i.name for i in ontology.catalog(store)] == ["radlex-liver", "skos-vocab", "toy"]
    toy = ontology.hierarchy(store, "toy")
    assert toy.root == "http://example.org/toy#root" and toy.depth("http://example.org/toy#c") == 3
    skos = ontology.hierarchy(store, "skos-vocab")
    assert skos.resolve("y") == "http://example.org/s#y" and skos.depth("http://example.org/s#y") == 3
    m = ontology.dissimilarity_matrix(store, ["http://example.org/toy#c", "http://example.org/toy#d"], "path")
    assert m.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_reload_replaces_and_refreshes_the_cache(store, tmp_path):
    path = write(tmp_path, "toy.ttl", TOY_TTL)
    ontology.load(store, path)
    assert ontology.hierarchy(store, "toy").depth("http://example.org/toy#c") == 3
    path.write_text(TOY_TTL.replace("ex:c rdfs:subClassOf ex:b", "ex:c rdfs:subClassOf ex:root"))
    ontology.load(store, path)
    assert ontology.hierarchy(store, "toy").depth("http://example.org/toy#c") == 2
    assert len(ontology.catalog(store)) == 1


def test_malformed_turtle_names_the_line_and_writes_nothing(store, tmp_path):
    ontology.load(store, "radlex-liver")
    before = store.count()
    bad = write(tmp_path, "bad.ttl", TOY_TTL + "ex:e rdfs:subClassOf .\n")
    with pytest.raises(OntologySourceError, match="line 6"):
        ontology.load(store, bad, name="radlex-liver")
    assert store.count() == before
    assert [i.name for i in ontology.catalog(store)] == ["radlex-liver"]


def test_cycle_is_named_and_writes_nothing(store, tmp_path):
    cyclic = write(tmp_path, "cyc.ttl", TOY_TTL + "ex:b rdfs:subClassOf ex:c .\n")
    with pytest.raises(HierarchyCycleError, match="b <http://example.org/toy#b>.*c <http://example.org/toy#c>"):
        ontology.load(store, cyclic, root="http://example.org/toy#root")
    assert store.count() == 0


def test_radlex_csv_export(store, tmp_path):
    csv = tmp_path / "radlex.csv.gz"
    rows = ["imaging observation,RID5,RID1", "margin,RID5972,RID5", "smooth margin,RID5714,RID5972",
            "irregular margin,RID5715,RID5972", "RadLex descriptor,RID6,RID1"]
    csv.write_bytes(gzip.compress("\n".join(rows).encode()))
    info = ontology.load(store, csv)
    assert info.name == "radlex" and info.root == "http://radlex.org/RID/RID1"
    h = ontology.hierarchy(store, "radlex")
    assert h.resolve("smooth margin") == "http://radlex.org/RID/RID5714" and h.depth(h.resolve("RID5714")) == 4
    header = tmp_path / "r2014.csv"
    header.write_text("Term,RID,Parent_RID\nRadLex entity,RID1,RID0\n" + "\n".join(rows))
    assert len(ontology.hierarchy(store, ontology.load(store, header).name)) == 6


@pytest.mark.parametrize("content, message", [
    ("a,RID1\n", "line 1: expected 3 columns"),
    ("a,RID2,RID1\nb,XYZ,RID1\n", "line 2: 'XYZ'"),
    ("a,RID2,RID1\na,RID2,RID1\n", "line 2: RID2 appears twice"),
])
def test_bad_radlex_csv(store, tmp_path, content, message):
    with pytest.raises(OntologySourceError, match=message):
        ontology.load(store, write(tmp_path, "bad.csv", content))
    assert store.count() == 0


def test_owl_file_via_rdfxml(store, tmp_path):
    owl = write(tmp_path, "tiny.owl", """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#"
         xmlns:owl="http://www.w3.org/2002/07/owl#">
  <owl:Class rdf:about="http://example.org/o#Top"/>
  <owl:Class rdf:about="http://example.org/o#Leaf"><rdfs:subClassOf rdf:resource="http://example.org/o#Top"/>
    <rdfs:label>leaf</rdfs:label></owl:Class>
</rdf:RDF>""")
    info = ontology.load(store, owl)
    assert ontology.hierarchy(store, info.name).resolve("leaf") == "http://example.org/o#Leaf"


def test_bad_requests(store, tmp_path):
    with pytest.raises(OntologySourceError, match="no such ontology file"):
        ontology.load(store, tmp_path / "missing.ttl")
    with pytest.raises(OntologyError, match="invalid ontology name"):
        ontology.load(store, "radlex-liver", name="Bad Name!")
    with pytest.raises(OntologyError, match="no ontology is loaded"):
        ontology.hierarchy(store)
    flat = write(tmp_path, "flat.ttl", '<http://e/a> <http://www.w3.org/2000/01/rdf-schema#label> "a" .')
    with pytest.raises(OntologySourceError, match="no rdfs:subClassOf"):
        ontology.load(store, flat)
    ontology.load(store, "radlex-liver")
    with pytest.raises(OntologyError, match="no ontology named 'nope'"):
        ontology.hierarchy(store, "nope")


def test_owl_xml_file_via_owlready2(store, tmp_path):
    owl = write(tmp_path, "owlxml.owl", """<?xml version="1.0"?>
<Ontology xmlns="http://www.w3.org/2002/07/owl#" xml:base="http://example.org/ox" ontologyIRI="http://example.org/ox">
    <Declaration><Class IRI="#Top"/></Declaration>
    <Declaration><Class IRI="#Leaf"/></Declaration>
    <SubClassOf><Class IRI="#Leaf"/><Class IRI="#Top"/></SubClassOf>
</Ontology>""")
    info = ontology.load(store, owl)
    h = ontology.hierarchy(store, info.name)
    assert h.root == "http://example.org/ox#Top" and h.parents("http://example.org/ox#Leaf") == {h.root}


def test_malformed_rdf_xml_names_the_line_and_writes_nothing(store, tmp_path):
    bad = write(tmp_path, "bad.owl", """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:owl="http://www.w3.org/2002/07/owl#">
  <owl:Class rdf:about="http://example.org/o#Top">
</rdf:RDF>""")
    with pytest.raises(OntologySourceError, match="at line 4, column"):
        ontology.load(store, bad)
    assert store.count() == 0
