"""`semgraph check`: a complete store passes; each planted corruption (raw SPARQL update) is reported."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kg.namespaces import ANNOTATIONS_GRAPH, BASELINE_GRAPH, GRAPH, feedback_graph
from semgraph.cli import load_commands
from semgraph.feedback.sessions import start_session
from semgraph.graph.check import check_store

from .conftest import fill, marks_for


@pytest.fixture
def with_rounds(filled):
    store, engine = filled
    session = start_session(store, engine, engine.ids[0], "alice")
    rounds = [session.feedback(marks_for(engine, engine.ids[0], seed)) for seed in (1, 2)]
    assert any(r.changes for r in rounds)
    return store, engine, session, rounds


def test_a_complete_store_passes(with_rounds):
    store, engine, _, rounds = with_rounds
    report = check_store(store)
    assert report.ok, report.format_text()
    assert report.checked["cases"] == 24 and report.checked["feedback rounds"] == 2
    assert report.checked["learned edges"] == sum(len(r.changes) for r in rounds)
    assert report.checked["baseline pairs"] == 19 * 18 // 2  # every pair of the 19-term vocabulary
    assert report.checked["ontology graphs"] == 1


def _edge(rounds):
    rnd = next(r for r in rounds if r.changes)
    c = rnd.changes[0]
    tail = lambda iri: iri.rsplit("/", 1)[-1]  # noqa: E731
    return rnd, f"<{rnd.iri}/pair/{tail(c.term_a)}/{tail(c.term_b)}>"


# (name, update builder, expected problem kind): each plants one kind of corruption with a raw SPARQL update.
def _corruptions():
    ann = f"<{ANNOTATIONS_GRAPH}>"
    return [
        ("case without label", lambda e, s, rs: f"DELETE WHERE {{ GRAPH {ann} {{ <{_case(e)}> rdfs:label ?l }} }}",
         "case"),
        ("case without study", lambda e, s, rs: f"DELETE WHERE {{ GRAPH {ann} {{ <{_case(e)}> sg:study ?x }} }}",
         "case"),
        ("case type removed", lambda e, s, rs: f"DELETE DATA {{ GRAPH {ann} {{ <{_case(e)}> a sg:Case }} }}", "case"),
        ("patient removed", lambda e, s, rs: f"DELETE WHERE {{ GRAPH {ann} {{ ?st sg:patient ?p . ?p ?pp ?po }}}}",
         "case"),
        ("likelihood value > 1", lambda e, s, rs: (
            f"DELETE {{ GRAPH {ann} {{ ?l sg:value ?v }} }} INSERT {{ GRAPH {ann} {{ ?l sg:value 1.5 }} }} "
            f"WHERE {{ GRAPH {ann} {{ ?a sg:annotates <{_case(e)}> ; sg:likelihood ?l . ?l sg:value ?v }} }}"),
         "likelihood"),
        ("likelihood value edited, its copy not", lambda e, s, rs: (
            f"DELETE {{ GRAPH {ann} {{ ?l sg:value ?v }} }} INSERT {{ GRAPH {ann} {{ ?l sg:value 0.5 }} }} "
            f"WHERE {{ GRAPH {ann} {{ ?a sg:annotates <{_case(e)}> ; sg:likelihood ?l . ?l sg:value ?v "
            "FILTER(?v != 0.5) } }"), "copy"),
        ("likelihood without term", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH {ann} {{ ?a sg:annotates <{_case(e)}> ; sg:likelihood ?l . ?l sg:term ?t }} }}"),
         "likelihood"),
        ("likelihood value a string", lambda e, s, rs: (
            f"DELETE {{ GRAPH {ann} {{ ?l sg:value ?v }} }} INSERT {{ GRAPH {ann} {{ ?l sg:value \"0.5\" }} }} "
            f"WHERE {{ GRAPH {ann} {{ ?a sg:annotates <{_case(e)}> ; sg:likelihood ?l . ?l sg:value ?v }} }}"),
         "likelihood"),
        ("likelihood value negative", lambda e, s, rs: (
            f"DELETE {{ GRAPH {ann} {{ ?l sg:value ?v }} }} INSERT {{ GRAPH {ann} {{ ?l sg:value -0.25 }} }} "
            f"WHERE {{ GRAPH {ann} {{ ?a sg:annotates <{_case(e)}> ; sg:likelihood ?l . ?l sg:value ?v }} }}"),
         "likelihood"),
        ("likelihood term a literal", lambda e, s, rs: (
            f"DELETE {{ GRAPH {ann} {{ ?l sg:term ?t }} }} INSERT {{ GRAPH {ann} {{ ?l sg:term \"hypodense\" }} }} "
            f"WHERE {{ GRAPH {ann} {{ ?a sg:annotates <{_case(e)}> ; sg:likelihood ?l . ?l sg:term ?t }} }}"),
         "likelihood"),
        ("likelihood without its annotation", lambda e, s, rs: (
            f"INSERT DATA {{ GRAPH {ann} {{ <urn:x:loose> a sg:TermLikelihood ; sg:term <urn:x:t> ; sg:value 0.5 }} }}"),
         "orphan"),
        ("annotation without kind", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH {ann} {{ ?a sg:annotates <{_case(e)}> ; sg:annotationKind ?k }} }}"), "annotation"),
        ("annotation without time", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH {ann} {{ ?a sg:annotates <{_case(e)}> ; prov:generatedAtTime ?k }} }}"),
         "annotation"),
        ("annotation of a deleted case", lambda e, s, rs: f"DELETE WHERE {{ GRAPH {ann} {{ <{_case(e)}> ?p ?o }} }}",
         "orphan"),
        ("round without user", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{rs[0].graph}> {{ <{rs[0].iri}> prov:wasAssociatedWith ?u }} }}"), "round"),
        ("round without number", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{rs[0].graph}> {{ <{rs[0].iri}> sg:roundNumber ?u }} }}"), "round"),
        ("round without algorithm", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{rs[0].graph}> {{ <{rs[0].iri}> sg:algorithm ?u }} }}"), "round"),
        ("round without marks", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{rs[0].graph}> {{ <{rs[0].iri}> sg:mark ?m . ?m ?p ?o }} }}"), "round"),
        ("round without time", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{rs[0].graph}> {{ <{rs[0].iri}> prov:endedAtTime ?m }} }}"), "round"),
        ("duplicate round number", lambda e, s, rs: (
            f"INSERT DATA {{ GRAPH <{feedback_graph('fake')}> {{ <urn:x:fake-round> a sg:FeedbackRound ; "
            f"sg:session <{s.iri}> ; sg:roundNumber 1 ; prov:wasAssociatedWith <urn:x:u> ; "
            f"prov:startedAtTime \"2024-01-01T00:00:00Z\"^^xsd:dateTime ; prov:endedAtTime "
            f"\"2024-01-01T00:00:00Z\"^^xsd:dateTime ; sg:algorithm \"penalty\" ; sg:mark <urn:x:m> . "
            f"<urn:x:m> sg:markedCase <urn:x:c> ; sg:relevance \"relevant\" }} }}"), "round"),
        ("round built on a dropped round", lambda e, s, rs: f"DROP GRAPH <{rs[0].graph}>", "round"),
        ("claim left pending by a crashed process", lambda e, s, rs: (
            f"DELETE {{ GRAPH <{rs[1].graph}> {{ <{rs[1].iri}> prov:endedAtTime ?t }} }} "
            f"INSERT {{ GRAPH <{rs[1].graph}> {{ <{rs[1].iri}> sg:pending true ; prov:endedAtTime "
            f"\"2024-01-01T00:00:00Z\"^^xsd:dateTime }} }} "
            f"WHERE {{ GRAPH <{rs[1].graph}> {{ <{rs[1].iri}> prov:endedAtTime ?t }} }}"), "round"),
        ("edge without provenance agent", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{_edge(rs)[0].graph}> {{ {_edge(rs)[1]} prov:wasAttributedTo ?x }} }}"), "edge"),
        ("edge without time", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{_edge(rs)[0].graph}> {{ {_edge(rs)[1]} prov:generatedAtTime ?x }} }}"), "edge"),
        ("edge without previous", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{_edge(rs)[0].graph}> {{ {_edge(rs)[1]} sg:previous ?x }} }}"), "edge"),
        ("edge without termB", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{_edge(rs)[0].graph}> {{ {_edge(rs)[1]} sg:termB ?x }} }}"), "edge"),
        ("edge value out of range", lambda e, s, rs: (
            f"DELETE {{ GRAPH <{_edge(rs)[0].graph}> {{ {_edge(rs)[1]} sg:dissimilarity ?x }} }} "
            f"INSERT {{ GRAPH <{_edge(rs)[0].graph}> {{ {_edge(rs)[1]} sg:dissimilarity -0.5 }} }} "
            f"WHERE {{ GRAPH <{_edge(rs)[0].graph}> {{ {_edge(rs)[1]} sg:dissimilarity ?x }} }}"), "edge"),
        ("orphan edge (round triples deleted)", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{_edge(rs)[0].graph}> {{ <{_edge(rs)[0].iri}> ?p ?o }} }}"), "orphan"),
        ("orphan edge (no wasGeneratedBy)", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{_edge(rs)[0].graph}> {{ {_edge(rs)[1]} prov:wasGeneratedBy ?x }} }}"), "orphan"),
        ("baseline pair missing", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{BASELINE_GRAPH}> {{ ?x sg:termA <http://radlex.org/RID/RID43336> ; "
            "sg:termB <http://radlex.org/RID/RID6042> ; ?p ?o }}"), "baseline"),
        ("baseline pair doubled", lambda e, s, rs: (
            f"INSERT {{ GRAPH <{BASELINE_GRAPH}> {{ ?x sg:dissimilarity 0.123 }} }} WHERE {{ GRAPH <{BASELINE_GRAPH}> "
            "{ ?x sg:termA <http://radlex.org/RID/RID43336> ; sg:termB <http://radlex.org/RID/RID6042> } }"),
         "baseline"),
        ("ontology description removed", lambda e, s, rs: (
            f"DELETE WHERE {{ GRAPH <{GRAPH['ontology/radlex-liver']}> {{ <{GRAPH['ontology/radlex-liver']}> "
            "sg:root ?r }}"), "ontology"),
        ("undescribed ontology graph", lambda e, s, rs: (
            f"INSERT DATA {{ GRAPH <{GRAPH['ontology/stray']}> {{ <urn:x:a> rdfs:subClassOf <urn:x:b> }} }}"),
         "ontology"),
    ]


def _case(engine):
    from semgraph.graph.casegraph import case_iri

    return case_iri(engine.ids[3])


CORRUPTIONS = _corruptions()


@pytest.mark.parametrize("name,build,kind", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_each_planted_corruption_is_reported(with_rounds, name, build, kind):
    store, engine, session, rounds = with_rounds
    assert check_store(store).ok
    store.update(build(engine, session, rounds))
    report = check_store(store)
    assert not report.ok, f"{name}: not detected"
    assert kind in report.kinds(), f"{name}: reported as {report.kinds()}, expected {kind}"


def test_cli_exit_status_and_json(tmp_path):
    import kg

    folder = tmp_path / "data"
    store = kg.open_store(folder / "graph")
    fill(store, n=6)
    store.close()
    runner = CliRunner()
    cli = load_commands()
    ok = runner.invoke(cli, ["--data-dir", str(folder), "check"])
    assert ok.exit_code == 0, ok.output
    assert "no problems found" in ok.output and "6 cases" in ok.output
    store = kg.open_store(folder / "graph")
    store.update(f"INSERT DATA {{ GRAPH <{ANNOTATIONS_GRAPH}> {{ <urn:x:c> a sg:Case }} }}")
    store.close()
    bad = runner.invoke(cli, ["--data-dir", str(folder), "check", "--format", "json"])
    assert bad.exit_code == 1, bad.output
    payload = json.loads(bad.output)
    assert payload["ok"] is False and payload["problem_counts"] == {"case": 2}  # no label, no study
    assert {p["subject"] for p in payload["problems"]} == {"urn:x:c"}


def test_cli_repair_rebuilds_the_copies(tmp_path):
    import kg

    folder = tmp_path / "data"
    store = kg.open_store(folder / "graph")
    fill(store, n=3)
    store.update("DELETE WHERE { GRAPH $g { ?a sg:termValues ?v } }", {"g": ANNOTATIONS_GRAPH})
    store.close()
    runner = CliRunner()
    cli = load_commands()
    bad = runner.invoke(cli, ["--data-dir", str(folder), "check", "--format", "json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["problem_counts"] == {"copy": 3}, bad.output
    fixed = runner.invoke(cli, ["--data-dir", str(folder), "check", "--repair"])
    assert fixed.exit_code == 0, fixed.output
    assert "rebuilt the likelihood copies of 3 annotations" in fixed.output


def test_cli_repair_records_absolute_paths_inside_the_data_folder_relative_to_it(tmp_path):
    """An older store recorded absolute file paths, which the public endpoint would show: --repair rewrites those
    inside the data folder and leaves a path outside it for the check to report."""
    from rdflib import Literal

    import kg
    from kg.namespaces import SG
    from kg.sparql import insert_data
    from semgraph.graph.casegraph import case_iri, read_cases

    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    for name in ("a.png", "a-roi.png"):
        (folder / "images" / name).write_bytes(b"png")
    store = kg.open_store(folder / "graph")
    fill(store, n=2)
    first, second = sorted(c.case_id for c in read_cases(store))
    inside = (f"{folder.resolve()}/images/a.png", f"{folder.resolve()}/images/a-roi.png")
    for cid, files in ((first, inside), (second, ("/elsewhere/b.png",))):
        c = case_iri(cid)
        store.update("DELETE WHERE { GRAPH $g { $c sg:imageFile ?i } } ; DELETE WHERE { GRAPH $g { $c sg:maskFile ?m } }",
                     {"g": ANNOTATIONS_GRAPH, "c": c})
        store.update(insert_data(zip((c, c), (SG.imageFile, SG.maskFile), map(Literal, files))),
                     {"g": ANNOTATIONS_GRAPH})
    store.close()
    runner = CliRunner()
    fixed = runner.invoke(load_commands(), ["--data-dir", str(folder), "check", "--repair"])
    assert "recorded 2 image and mask paths relative to the data folder" in fixed.output, fixed.output
    store = kg.open_store(folder / "graph", read_only=True)
    try:
        after = {c.case_id: (c.image_file, c.mask_file) for c in read_cases(store)}
    finally:
        store.close()
    assert after[first] == ("images/a.png", "images/a-roi.png")
    assert after[second][0] == "/elsewhere/b.png"  # outside the data folder: not touched, reported by the check
    assert fixed.exit_code == 1 and "/elsewhere/b.png" in fixed.output
