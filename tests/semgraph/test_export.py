"""Learned relations, exports with provenance, the ontology-update proposal and `semgraph export` (both backends)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os

import numpy as np
import pytest
from click.testing import CliRunner
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import PROV, RDF, RDFS, SKOS
from synthetic import write_synthetic_cases

import kg
import ontology
from kg.namespaces import SG
from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput
from semgraph.exchange import export as ex
from semgraph.feedback.sessions import start_session
from semgraph.graph.casegraph import Annotation, Case, case_iri, user_iri, write_case
from semgraph.graph.rounds import round_iri
from semgraph.retrieval.engine import Engine

TERMS = [t.iri for t in paper_terms()]
R = "http://radlex.org/RID/"
HYPO, WATER, SOFT = R + "RID6042", R + "RID43336", R + "RID43337"
H, W, S = TERMS.index(HYPO), TERMS.index(WATER), TERMS.index(SOFT)
X = "https://w3id.org/semgraph/vocab#"


def fill(store, n=26, seed=3):
    """The RadLex subset, n synthetic cases and 4 hand-made ones (Q hypodense; REL water density; IRR soft tissue
    density; OTHER weakly hypodense): 30 cases."""
    ontology.load(store, "radlex-liver")
    write_synthetic_cases(store, n, seed, lambda i: dict(study_date=dt.date(2021, 1, 1) + dt.timedelta(days=7 * i)))
    hand = {"Q": {HYPO: 0.9}, "REL": {WATER: 0.85}, "IRR": {SOFT: 0.9}, "OTHER": {HYPO: 0.2}}
    for j, (cid, vals) in enumerate(hand.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis="cyst"), [Annotation("reader", vals)])


@pytest.fixture
def engine(store):
    fill(store)
    return Engine.from_store(store)


@pytest.fixture
def two_rounds(store, engine):
    """alice, query Q: round 1 REL relevant + IRR irrelevant, round 2 REL relevant."""
    session = start_session(store, engine, "Q", "alice")
    r1 = session.feedback({"REL": "relevant", "IRR": "irrelevant"})
    r2 = session.feedback({"REL": "relevant"})
    return session, r1, r2


def change_of(rnd, a, b):
    (c,) = [c for c in rnd.changes if (c.term_a, c.term_b) == (a, b)]
    return c


# --------------------------------------------------------------------------------------------------- the table


def test_rows_counts_dates_and_users(store, engine, two_rounds):
    D0 = engine.dissimilarity
    _, r1, r2 = two_rounds
    rows = {(r.term_a, r.term_b): r for r in ex.learned_relations(store)}
    assert set(rows) == {(WATER, HYPO), (SOFT, HYPO)}
    water, soft = rows[(WATER, HYPO)], rows[(SOFT, HYPO)]
    # no baseline graph: the baseline is the value before the first round (the engine's D0)
    assert (water.baseline, water.baseline_source) == (D0[H, W], "before first round")
    assert water.learned == pytest.approx(D0[H, W] - 0.2)  # two penalty steps of 0.1
    assert water.change == pytest.approx(-0.2)
    assert (water.rounds, water.sessions, water.users, water.closer, water.farther) == (2, 1, ("alice",), 1, 0)
    assert (water.first, water.last) == (r1.ended_at, r2.ended_at)
    assert (water.label_a, water.label_b) == ("water density", "hypodense")
    assert soft.learned == pytest.approx(min(1.0, D0[H, S] + 0.1))
    assert (soft.rounds, soft.first, soft.last, soft.closer, soft.farther) == (1, r1.ended_at, r1.ended_at, 0, 1)
    assert sorted(water.round_ids) == sorted([r1.round_id, r2.round_id])
    data = water.as_dict()
    assert data["users"] == ["alice"] and data["first"] == r1.ended_at.isoformat()


def test_the_stored_baseline_is_used_when_there_is_one(store, engine, two_rounds):
    from semgraph.retrieval.similarity import write_baseline

    D = np.full((len(TERMS), len(TERMS)), 0.5)
    np.fill_diagonal(D, 0.0)
    write_baseline(store, TERMS, D, kind="ontology")
    (row,) = ex.learned_relations(store, term="water")
    assert (row.baseline, row.baseline_source) == (0.5, "baseline graph")
    assert row.change == pytest.approx(engine.dissimilarity[H, W] - 0.2 - 0.5)


def test_filters(store, engine, two_rounds):
    start_session(store, engine, "Q", "bob").feedback({"REL": "relevant"})
    pairs = lambda **kw: [(r.term_a, r.term_b) for r in ex.learned_relations(store, **kw)]
    (water,) = ex.learned_relations(store, term="WATER density")
    assert (water.sessions, water.rounds, water.users) == (2, 3, ("alice", "bob"))
    assert pairs(min_sessions=2) == [(WATER, HYPO)]
    assert pairs(user="bob") == [(WATER, HYPO)]
    assert ex.learned_relations(store, user="bob")[0].rounds == 1
    assert pairs(user="nobody") == []
    assert pairs(term="soft") == [(SOFT, HYPO)]
    assert sorted(pairs(term="RID6042")) == sorted([(WATER, HYPO), (SOFT, HYPO)])
    # the latest learned value is bob's (D0 - 0.1); soft tissue moved by min(1, D0 + 0.1) - D0 < 0.09
    assert engine.dissimilarity[H, S] > 0.91
    assert pairs(min_change=0.095) == [(WATER, HYPO)]
    assert pairs(min_change=0.15) == []
    today = dt.datetime.now(dt.UTC).date()
    assert len(pairs(since=today, until=today.isoformat())) == 2
    assert pairs(since=today + dt.timedelta(days=1)) == []
    assert pairs(until=today - dt.timedelta(days=1)) == []
    assert pairs(sort="change") == [(WATER, HYPO), (SOFT, HYPO)]
    assert pairs(sort="change", descending=True) == [(SOFT, HYPO), (WATER, HYPO)]
    assert pairs(sort="rounds", descending=True)[0] == (WATER, HYPO)


@pytest.mark.parametrize("kw, message", [
    ({"min_sessions": 0}, "min_sessions"), ({"min_change": -1}, "min_change"), ({"sort": "colour"}, "sort"),
    ({"since": "yesterday"}, "since"), ({"since": "2026-02-02", "until": "2026-01-01"}, "empty"),
    ({"term": "x" * 500}, "term"), ({"user": 3}, "user"),
])
def test_bad_filters(store, engine, kw, message):
    with pytest.raises(InvalidInput, match=message):
        ex.learned_relations(store, **kw)


def test_nothing_learned(store, engine):
    assert ex.learned_relations(store) == []
    assert "No learned term relations" in ex.report(store)
    assert ex.export(store, "csv").splitlines() == [",".join(ex.CSV_COLUMNS)]


# --------------------------------------------------------------------------------------------------- exports


def test_turtle_and_json_ld_parse_back_with_the_provenance(store, engine, two_rounds):
    _, r1, _ = two_rounds
    turtle = Graph().parse(data=ex.export(store, "turtle"), format="turtle")
    jsonld = Graph().parse(data=ex.export(store, "json-ld"), format="json-ld")
    assert set(turtle) == set(jsonld)
    edges = set(turtle.subjects(SG.kind, Literal("learned")))
    assert len(edges) == 3  # 2 pairs in round 1, 1 in round 2
    water1 = URIRef(f"{round_iri(r1.round_id)}/pair/RID43336/RID6042")
    assert water1 in edges
    g = turtle
    assert g.value(water1, SG.previous).toPython() == change_of(r1, WATER, HYPO).before
    assert g.value(water1, SG.dissimilarity).toPython() == change_of(r1, WATER, HYPO).after
    assert g.value(water1, PROV.wasAttributedTo) == user_iri("alice")
    assert g.value(water1, PROV.wasDerivedFrom) == case_iri("REL")
    assert g.value(water1, PROV.generatedAtTime).toPython() == r1.ended_at
    rnd = g.value(water1, PROV.wasGeneratedBy)
    assert rnd == round_iri(r1.round_id)
    assert (rnd, RDF.type, PROV.Activity) in g and g.value(rnd, SG.roundNumber).toPython() == 1
    assert str(g.value(rnd, SG.algorithm)) == "penalty" and '"tau"' in str(g.value(rnd, SG.parameters))
    assert g.value(rnd, PROV.startedAtTime).toPython() == r1.started_at
    marks = {(g.value(m, SG.markedCase), str(g.value(m, SG.relevance))) for m in g.objects(rnd, SG.mark)}
    assert marks == {(case_iri("REL"), "relevant"), (case_iri("IRR"), "irrelevant")}
    session = g.value(rnd, SG.session)
    assert g.value(session, SG.queryCase) == case_iri("Q")
    assert str(g.value(user_iri("alice"), RDFS.label)) == "alice"
    assert str(g.value(URIRef(WATER), RDFS.label)) == "water density"


def test_csv_columns_and_rows(store, engine, two_rounds):
    _, r1, r2 = two_rounds
    rows = list(csv.DictReader(io.StringIO(ex.export(store, "csv"))))
    assert tuple(rows[0]) == ("term_a", "label_a", "term_b", "label_b", "previous", "dissimilarity", "change",
                              "edge", "round", "round_number", "session", "query_case", "user", "generated_at",
                              "round_started", "round_ended", "algorithm", "parameters", "relevant_cases",
                              "irrelevant_cases", "neutral_cases", "derived_from", "graph")
    assert len(rows) == 3
    first = {r["label_a"]: r for r in rows if r["round"] == r1.round_id}
    water = first["water density"]
    assert (water["round_number"], water["user"], water["query_case"], water["algorithm"]) == \
        ("1", "alice", "Q", "penalty")
    assert (water["relevant_cases"], water["irrelevant_cases"], water["derived_from"]) == ("REL", "IRR", "REL")
    assert float(water["previous"]) == change_of(r1, WATER, HYPO).before
    assert float(water["change"]) == pytest.approx(-0.1)
    assert first["soft tissue density"]["derived_from"] == "IRR"
    (second,) = [r for r in rows if r["round"] == r2.round_id]
    assert (second["round_number"], second["relevant_cases"], second["irrelevant_cases"]) == ("2", "REL", "")
    assert second["graph"] == f"https://w3id.org/semgraph/graph/feedback/{r2.round_id}"


def test_export_filters_apply(store, engine, two_rounds):
    start_session(store, engine, "Q", "bob").feedback({"REL": "relevant"})
    rows = list(csv.DictReader(io.StringIO(ex.export(store, "csv", user="bob"))))
    assert [(r["user"], r["label_a"]) for r in rows] == [("bob", "water density")]
    g = Graph().parse(data=ex.export(store, "turtle", min_sessions=2), format="turtle")
    assert {(a, b) for a, b in g.subject_objects(SG.termA)} and \
        set(g.objects(None, SG.termB)) == {URIRef(HYPO)} and set(g.objects(None, SG.termA)) == {URIRef(WATER)}
    with pytest.raises(InvalidInput, match="format"):
        ex.export(store, "xml")


# --------------------------------------------------------------------------------------------------- proposal


def proposals_of(store, **kw):
    g = Graph().parse(data=ex.export(store, "proposal", **kw), format="turtle")
    out = {}
    for p in g.subjects(RDF.type, URIRef(X + "Proposal")):
        out[str(g.value(p, SG.kind))] = (p, g)
    return out


def test_one_session_proposes_a_related_link_with_its_rounds(store, engine, two_rounds):
    _, r1, r2 = two_rounds
    found = proposals_of(store)
    assert set(found) == {"related"}  # soft tissue moved apart: no proposal
    p, g = found["related"]
    assert (p, RDF.type, RDF.Statement) in g
    assert (g.value(p, RDF.subject), g.value(p, RDF.predicate), g.value(p, RDF.object)) == \
        (URIRef(WATER), SKOS.related, URIRef(HYPO))
    # 1 session, 1 user, change -0.2: 1/2 * (1 - 1/2) * (0.2 / 0.3) * 1 = 0.1667
    assert g.value(p, URIRef(X + "confidence")).toPython() == 0.167
    assert set(g.objects(p, PROV.wasDerivedFrom)) == {round_iri(r1.round_id), round_iri(r2.round_id)}
    assert g.value(p, URIRef(X + "supportingSessions")).toPython() == 1
    assert (None, SKOS.related, None) not in g  # proposed, not asserted


def test_confidence_grows_with_independent_sessions_and_falls_with_opposition(store, engine, two_rounds):
    D0 = engine.dissimilarity[H, W]
    start_session(store, engine, "Q", "bob").feedback({"REL": "relevant"})
    (p,) = [p for p in ex.proposals(store) if p.kind == "related"]
    # alice -0.2, bob -0.1: mean change -0.15; 2/3 * 3/4 * (0.15/0.3) * 1 = 0.25
    assert (p.sessions, p.users, p.against, p.confidence) == (2, 2, 0, 0.25)
    assert p.learned == pytest.approx(D0 - 0.15)
    start_session(store, engine, "Q", "carol").feedback({"REL": "irrelevant"})  # moves the pair apart
    (p,) = [p for p in ex.proposals(store) if p.kind == "related"]
    assert (p.sessions, p.against, p.confidence) == (2, 1, round(0.25 * 2 / 3, 3))
    assert ex.proposals(store, min_sessions=3) == []


def test_sessions_of_one_user_on_one_query_count_once(store, engine, two_rounds):
    start_session(store, engine, "Q", "alice").feedback({"REL": "relevant"})  # the latest one counts: -0.1
    (row,) = ex.learned_relations(store, term="water")
    assert row.sessions == 2
    (p,) = ex.proposals(store)
    # 1 independent session: 1/2 * 1/2 * (0.1 / 0.3) = 0.0833
    assert (p.sessions, p.users, p.confidence) == (1, 1, 0.083)


def test_a_much_closer_pair_gives_close_match_and_re_parenting(store, engine):
    session = start_session(store, engine, "Q", "dave")
    rounds = [session.feedback({"REL": "relevant"}) for _ in range(8)]
    learned = change_of(rounds[-1], WATER, HYPO).after
    assert learned <= 0.15  # precondition: 8 steps of 0.1 from ~0.93
    kinds = {p.kind: p for p in ex.proposals(store)}
    assert set(kinds) == {"closeMatch", "reparent"}
    assert kinds["closeMatch"].confidence == 0.25  # 1/2 * 1/2 * 1 * 1
    theta = ontology.dissimilarity_matrix(store, TERMS)[H, W]
    move = kinds["reparent"]
    assert move.confidence == round(0.25 * min(1.0, (theta - learned) / 0.6), 3)
    # equal depth, both leaves: the larger IRI (RID6042 hypodense) moves next to water density
    assert (move.subject, move.new_parent, move.current_parents) == (HYPO, R + "RID45721", (R + "RID6041",))
    p, g = proposals_of(store)["reparent"]
    assert (g.value(p, RDF.subject), g.value(p, RDF.predicate), g.value(p, RDF.object)) == \
        (URIRef(HYPO), RDFS.subClassOf, URIRef(R + "RID45721"))
    assert g.value(p, URIRef(X + "currentParent")) == URIRef(R + "RID6041")
    assert len(set(g.objects(p, PROV.wasDerivedFrom))) == 8


def test_a_link_the_ontology_already_has_is_not_proposed_again(store, engine, two_rounds):
    store.update("INSERT DATA { GRAPH <urn:test:links> { $b skos:related $a } }",
                 {"a": URIRef(WATER), "b": URIRef(HYPO)})
    assert [p.kind for p in ex.proposals(store)] == []


def test_report(store, engine, two_rounds):
    _, r1, r2 = two_rounds
    text = ex.report(store)
    assert text.startswith("# Learned term relations: change report")
    assert "**skos:related** water density ↔ hypodense: confidence 0.167" in text
    assert "| water density ↔ hypodense | " in text and "| soft tissue density ↔ hypodense | " in text
    assert r1.round_id in text and r2.round_id in text
    assert "2 term pairs changed by feedback, from 2 rounds by 1 user (alice)" in text
    assert "Filters: user = alice." in ex.report(store, user="alice")


# --------------------------------------------------------------------------------------------------- files, CLI


@pytest.mark.parametrize("name", ["../evil.ttl", "a/../../evil.ttl", "/etc/passwd", "..", ".", "", " ",
                                  "a//b.ttl", "C:\\x.ttl", "..\\evil.ttl", "~/x.ttl", "a\nb.ttl", "x" * 300])
def test_export_names_cannot_leave_the_folder(tmp_path, name):
    with pytest.raises(InvalidInput):
        ex.safe_export_path(tmp_path / "exports", name)


def test_export_names_inside_the_folder(tmp_path):
    base = (tmp_path / "exports").resolve()
    assert ex.safe_export_path(tmp_path / "exports", "a.ttl") == base / "a.ttl"
    assert ex.safe_export_path(tmp_path / "exports", "2026/run-1.csv") == base / "2026" / "run-1.csv"


def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "exports" / "link")
    with pytest.raises(InvalidInput, match="outside"):
        ex.safe_export_path(tmp_path / "exports", "link/x.ttl")


@pytest.fixture
def run(tmp_path, monkeypatch):
    from semgraph.cli import load_commands

    folder = tmp_path / "graph"
    with kg.open_store(folder) as s:
        fill(s)
        session = start_session(s, Engine.from_store(s), "Q", "alice")
        session.feedback({"REL": "relevant", "IRR": "irrelevant"})
        session.feedback({"REL": "relevant"})
    monkeypatch.chdir(tmp_path)
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch.delenv(name, raising=False)
    cli, runner = load_commands(), CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, ["--store", str(folder), "--data-dir", str(tmp_path / "data"), *args],
                               catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return invoke


def test_cli_export(run, tmp_path):
    out = run("export", "--format", "csv")
    assert out.splitlines()[0] == ",".join(ex.CSV_COLUMNS) and len(out.splitlines()) == 4
    assert len(Graph().parse(data=run("export"), format="turtle")) > 20
    assert "skos:related" in run("export", "--format", "proposal")
    assert "water density ↔ hypodense" in run("export", "--format", "report", "--min-sessions", "1")
    assert run("export", "--format", "csv", "--since", "2999-01-01").splitlines() == [",".join(ex.CSV_COLUMNS)]
    assert run("export", "--format", "csv", "--min-sessions", "2").splitlines() == [",".join(ex.CSV_COLUMNS)]
    out = run("export", "--format", "json-ld", "--out", "learned")
    target = tmp_path / "data" / "exports" / "learned.jsonld"
    assert str(target.resolve()) in out.replace("\n", "")
    assert len(Graph().parse(target, format="json-ld")) > 20
    assert "since must be a date" in run("export", "--since", "soon", ok=False)


@pytest.mark.parametrize("name", ["../evil.ttl", "../../evil.ttl", "/tmp/semgraph-evil.ttl", "x/../../e.ttl"])
def test_cli_export_refuses_paths_outside_the_folder_and_writes_nothing(run, tmp_path, name):
    before = sorted(p for p in tmp_path.rglob("*") if "graph" not in p.parts)
    out = run("export", "--out", name, ok=False)
    assert "invalid export file name" in out
    assert sorted(p for p in tmp_path.rglob("*") if "graph" not in p.parts) == before
    assert not os.path.exists("/tmp/semgraph-evil.ttl")
