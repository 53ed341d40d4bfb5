"""The SHACL shapes of the graph model: a demo store conforms, and a planted violation of each shape is reported."""

from __future__ import annotations

import json

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import PROV, RDF, SKOS, XSD

import kg
import ontology
from kg.namespaces import SG
from semgraph.cli.demo_cmd import build_demo
from semgraph.exchange import export as ex
from semgraph.feedback.algorithms import FeedbackParams
from semgraph.feedback.promotion import promote
from semgraph.feedback.sessions import start_session
from semgraph.graph import shapes
from semgraph.graph.casegraph import Annotation, Case, read_cases, write_case
from semgraph.graph.collection import resolve as resolve_collection
from semgraph.retrieval.engine import Engine

ID = "https://w3id.org/semgraph/id/"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo data folder (12 cases of 128 px) with feedback sessions (one with a start record, one with term
    weights), a
    promotion of one of them and two sessions on hand-made cases that give a proposal; yields the store folder and
    the data folder."""
    root = tmp_path_factory.mktemp("shacl-demo")
    with kg.open_store(root / "graph") as store:
        build_demo(store, root / "data", n=12, seed=1, size=128)
        cases = [c.case_id for c in read_cases(store)]
        # three hand-made cases whose feedback certainly pulls water density towards hypodense (a proposal)
        target = resolve_collection(store, None)
        for j, (cid, rid) in enumerate((("Q", "RID6042"), ("REL", "RID43336"), ("IRR", "RID43337"))):
            write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis="cyst"),
                       [Annotation("reader", {f"http://radlex.org/RID/{rid}": 0.9})], collection=target.case_filter)
        engine = Engine.from_store(store)
        for user in ("dora", "emil"):
            start_session(store, engine, "Q", user).feedback({"REL": "relevant", "IRR": "irrelevant"})
        first = start_session(store, engine, cases[0], "alice")
        first.record_start(title=f"case {cases[0]}", parameters={"k": 5, "filters": [], "algorithm": "penalty"})
        first.feedback({cases[1]: "relevant", cases[2]: "irrelevant"})
        first.feedback({cases[3]: "relevant", cases[4]: "neutral"})
        start_session(store, engine, cases[5], "bob").feedback({cases[6]: "relevant"},
                                                               FeedbackParams(algorithm="rocchio+reweight"))
        promote(store, first.session_id, user="carl", reason="agreed in review")
    return root / "graph", root / "data"


@pytest.fixture(scope="module")
def data(demo) -> Graph:
    with kg.open_store(demo[0], read_only=True) as store:
        return shapes.store_data(store)


def planted(data: Graph, remove=(), add=()) -> list[tuple[str, str, str]]:
    """(shape, focus, path) of each violation after removing and adding triples to a copy of ``data``."""
    g = Graph()
    for t in data:
        g.add(t)
    for pattern in remove:
        found = list(g.triples(pattern))
        assert found, f"nothing to remove for {pattern}"  # the planted change must change something
        for t in found:
            g.remove(t)
    for t in add:
        g.add(t)
    return [(v.shape, v.focus, v.path) for v in shapes.validate_graph(g).violations]


def one(data: Graph, cls) -> URIRef:
    """The first (smallest IRI) subject of type ``cls`` in ``data``."""
    return min(data.subjects(RDF.type, cls))


def short(iri) -> str:
    return "id:" + str(iri)[len(ID):]


def test_the_shapes_parse_and_cover_the_model():
    g = shapes.shapes_graph()
    sh = "http://www.w3.org/ns/shacl#"
    targets = {str(o) for o in g.objects(None, URIRef(sh + "targetClass"))}
    assert targets >= {str(SG[c]) for c in ("Case", "Study", "Patient", "Annotation", "TermLikelihood", "Collection",
                                            "CollectionTerm", "TermSimilarity", "RetrievalSession",
                                            "FeedbackRound", "Mark", "Promotion", "OntologyGraph", "Proposal")}
    messages = list(g.objects(None, URIRef(sh + "message")))
    assert len(messages) > 60 and all(str(m).strip() for m in messages)


def test_the_demo_store_conforms(demo, data):
    report = shapes.validate_graph(data)
    assert report.ok, report.format_text()
    kinds = {o for o in data.objects(None, RDF.type)}
    assert {SG.Case, SG.Annotation, SG.TermLikelihood, SG.Collection, SG.FeedbackRound, SG.Mark, SG.Promotion,
            SG.RetrievalSession, SG.OntologyGraph} <= kinds  # the demo exercised every stored shape
    assert len(list(data.triples((None, SG.termWeights, None)))) == 1  # bob's reweight round
    assert report.triples == len(data) > 1000
    # ontology graphs contribute only their self-description
    assert len(list(data.subjects(RDF.type, URIRef("http://www.w3.org/2002/07/owl#Class")))) == 0


def plantings(data: Graph) -> list[tuple[list, list, tuple[str, str, str]]]:
    """One planted violation per shape kind: (triples to remove, triples to add, the violation expected)."""
    rdfs_label = URIRef("http://www.w3.org/2000/01/rdf-schema#label")
    item, annotation, rnd = one(data, SG.TermLikelihood), one(data, SG.Annotation), one(data, SG.FeedbackRound)
    edge = min(data.subjects(SG.kind, Literal("learned")))
    mark, session, term = one(data, SG.Mark), one(data, SG.RetrievalSession), one(data, SG.CollectionTerm)
    case, promotion, graph = one(data, SG.Case), one(data, SG.Promotion), one(data, SG.OntologyGraph)
    weighted = min(data.subjects(SG.termWeights, None))
    return [
        # a likelihood outside [0, 1]
        ([(item, SG.value, None)], [(item, SG.value, Literal(1.25, datatype=XSD.double))],
         ("sgsh:TermLikelihoodShape", short(item), "sg:value")),
        # an annotation without a case
        ([(annotation, SG.annotates, None)], [], ("sgsh:AnnotationShape", short(annotation), "sg:annotates")),
        # a round without its end time
        ([(rnd, PROV.endedAtTime, None)], [], ("sgsh:FeedbackRoundShape", short(rnd), "prov:endedAtTime")),
        # a learned edge without the round that made it (the SHACL-SPARQL constraint: no path)
        ([(edge, PROV.wasGeneratedBy, None)], [], ("sgsh:TermSimilarityShape", short(edge), "")),
        # a mark with an unknown relevance
        ([(mark, SG.relevance, None)], [(mark, SG.relevance, Literal("maybe"))],
         ("sgsh:MarkShape", short(mark), "sg:relevance")),
        # a session without its user
        ([(session, PROV.wasAssociatedWith, None)], [],
         ("sgsh:RetrievalSessionShape", short(session), "prov:wasAssociatedWith")),
        # a collection term without a category
        ([(term, SG.category, None)], [], ("sgsh:CollectionTermShape", short(term), "sg:category")),
        # a case with two labels
        ([], [(case, rdfs_label, Literal("another"))], ("sgsh:CaseShape", short(case), "rdfs:label")),
        # a promotion without the rounds it used
        ([(promotion, PROV.used, None)], [], ("sgsh:PromotionShape", short(promotion), "prov:used")),
        # an ontology graph without its root
        ([(graph, SG.root, None)], [],
         ("sgsh:OntologyGraphShape", "graph:" + str(graph).rsplit("/graph/", 1)[1], "sg:root")),
        # a round with two sets of term weights
        ([], [(weighted, SG.termWeights, Literal("{}", datatype=RDF.JSON))],
         ("sgsh:FeedbackRoundShape", short(weighted), "sg:termWeights")),
    ]


def test_each_planted_violation_is_reported_once(data):
    cases = plantings(data)
    found = planted(data, remove=[t for r, _, _ in cases for t in r], add=[t for _, a, _ in cases for t in a])
    assert sorted(found) == sorted(expected for _, _, expected in cases)


def test_a_planted_violation_alone_is_the_only_one(data):
    removed, added, expected = plantings(data)[0]
    assert planted(data, remove=removed, add=added) == [expected]


def test_proposals_conform_and_a_bad_confidence_is_reported(demo, data):
    """A proposal names the store's rounds (and types them): it is validated together with the store's data."""
    with kg.open_store(demo[0], read_only=True) as store:
        proposal = ex.proposal_graph(store)
    found = list(proposal.subjects(RDF.type, SG.Proposal))
    assert found, "the hand-made sessions give at least one proposal"
    assert shapes.validate_graph(proposal + data).ok
    p = min(found)
    proposal.remove((p, SG.confidence, None))
    proposal.add((p, SG.confidence, Literal(2.0, datatype=XSD.double)))
    proposal.add((p, URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#predicate"), SKOS.exactMatch))
    assert sorted((v.shape, v.path) for v in shapes.validate_graph(proposal + data).violations) == \
        [("sgsh:ProposalShape", "rdf:predicate"), ("sgsh:ProposalShape", "rdf:predicate"),
         ("sgsh:ProposalShape", "sg:confidence")]


def test_cli_check_shacl(demo, cli_on):
    folder, _ = demo
    run = cli_on(folder)
    out = run("check", "--shacl")
    assert "the data conforms to the shapes" in out
    assert "no problems found" in run("--data-dir", str(demo[1]), "check")
    with kg.open_store(folder) as store:
        rnd = min(r["r"] for r in store.select("SELECT ?r WHERE { ?r a sg:FeedbackRound }"))
        ended = store.select("SELECT ?g ?t WHERE { GRAPH ?g { $r prov:endedAtTime ?t } }", {"r": rnd})[0]
        store.update("DELETE DATA { GRAPH $g { $r prov:endedAtTime $t } }", {"g": ended["g"], "r": rnd, "t": ended["t"]})
    try:
        out = run("check", "--shacl", ok=False)
        assert f"[Violation] {short(rnd)} prov:endedAtTime: a round has exactly one prov:endedAtTime" in out
        report = json.loads(run("check", "--shacl", "--format", "json", ok=False))
        assert report["violation_counts"] == {"sgsh:FeedbackRoundShape": 1} and not report["ok"]
        fast = run("--data-dir", str(demo[1]), "check", ok=False)  # the fast check sees it too, in its own words
        assert "validated" not in fast and str(rnd) in fast
    finally:
        with kg.open_store(folder) as store:
            store.update("INSERT DATA { GRAPH $g { $r prov:endedAtTime $t } }",
                         {"g": ended["g"], "r": rnd, "t": ended["t"]})


def test_store_data_on_both_backends_keeps_only_the_ontology_descriptions(store):
    ontology.load(store, "radlex-liver")
    write_case(store, Case("C1", "P1", "S1", diagnosis="cyst"),
               [Annotation("reader", {"http://radlex.org/RID/RID6042": 0.8})])
    data = shapes.store_data(store)
    (graph,) = data.subjects(RDF.type, SG.OntologyGraph)
    assert set(data.subjects(None, None)) - {graph} == {
        URIRef(ID + x) for x in ("case/C1", "study/S1", "patient/P1", "annotation/C1/reader",
                                 "annotation/C1/reader/RID6042")} | {URIRef("https://w3id.org/semgraph/graph/annotations")}
    assert shapes.validate_store(store).ok
    store.update("DELETE WHERE { GRAPH ?g { ?l sg:value ?v } } ; INSERT DATA { GRAPH $g { $l sg:value 1.5e0 } }",
                 {"g": URIRef("https://w3id.org/semgraph/graph/annotations"),
                  "l": URIRef(ID + "annotation/C1/reader/RID6042")})
    assert [(v.shape, v.path, v.value) for v in shapes.validate_store(store).violations] == \
        [("sgsh:TermLikelihoodShape", "sg:value", "'1.5'^^xsd:double")]
