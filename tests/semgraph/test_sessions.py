"""Retrieval sessions: feedback rounds written atomically with provenance, replay, undo, promotion, CLI."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from rdflib import URIRef
from synthetic import write_synthetic_cases

import kg
import ontology
from kg.namespaces import BASELINE_GRAPH, SG
from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.feedback.algorithms import (
    TEXT_ALGORITHM,
    FeedbackParams,
    discriminant_weights,
)
from semgraph.feedback.promotion import promote, promotion_candidates
from semgraph.feedback.replay import list_sessions, load_session
from semgraph.feedback.sessions import start_session, start_text_session
from semgraph.graph.casegraph import Annotation, Case, case_iri, user_iri, write_case
from semgraph.retrieval.engine import Engine

TERMS = [t.iri for t in paper_terms()]
R = "http://radlex.org/RID/"
HYPO, WATER, SOFT = R + "RID6042", R + "RID43336", R + "RID43337"
H, W, S = TERMS.index(HYPO), TERMS.index(WATER), TERMS.index(SOFT)


def fill(store, n=30, seed=5):
    """The bundled RadLex subset, n synthetic cases and 4 hand-made ones (Q: hypodense 0.9; REL: water density
    0.85; IRR: soft tissue density 0.9; OTHER: hypodense 0.2)."""
    ontology.load(store, "radlex-liver")
    write_synthetic_cases(store, n, seed,
                          lambda i: dict(study_date=dt.date(2021, 1, 1) + dt.timedelta(days=9 * i), age=40 + i,
                                         sex="FM"[i % 2]))
    hand = {"Q": {HYPO: 0.9}, "REL": {WATER: 0.85}, "IRR": {SOFT: 0.9}, "OTHER": {HYPO: 0.2}}
    for j, (cid, vals) in enumerate(hand.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis="cyst"), [Annotation("reader", vals)])


@pytest.fixture
def engine(store):
    fill(store)
    return Engine.from_store(store)


def snapshot(store):
    return store.graphs(), store.count()


def ranking(session):
    return [(h.case_id, h.distance) for h in session.ranking]


def test_a_round_is_one_named_graph_with_the_expected_changes(store, engine):
    D0 = engine.dissimilarity
    graphs, triples = snapshot(store)
    session = start_session(store, engine, "Q", "alice")
    assert snapshot(store) == (graphs, triples)  # nothing is written before the first round
    rnd = session.feedback({"REL": "relevant", "IRR": "irrelevant", "OTHER": "neutral"})
    after_graphs, after_triples = snapshot(store)
    assert set(after_graphs) - set(graphs) == {str(rnd.graph)} and len(after_graphs) == len(graphs) + 1
    assert after_triples == triples + store.count(str(rnd.graph))
    # penalty rule by hand: hypodense (0.9) ~ water density of REL (0.85): -0.1; ~ soft tissue of IRR: +0.1
    got = {(c.term_a, c.term_b): (c.before, c.after, c.derived_from) for c in rnd.changes}
    assert got == {(WATER, HYPO): (D0[H, W], pytest.approx(D0[H, W] - 0.1), ("REL",)),
                   (SOFT, HYPO): (D0[H, S], pytest.approx(min(1.0, D0[H, S] + 0.1)), ("IRR",))}
    assert rnd.changes[0].describe().startswith(("water density ↔ hypodense: ", "soft tissue density ↔ hypodense"))
    assert session.dissimilarity[H, W] == session.dissimilarity[W, H] == pytest.approx(D0[H, W] - 0.1)
    assert [r.number for r in session.rounds] == [1]
    assert session.feedback({"REL": "relevant"}).number == 2
    assert session.feedback({"OTHER": "neutral"}).number == 3


def test_the_learned_edges_with_their_provenance_by_sparql(store, engine):
    D0 = engine.dissimilarity
    session = start_session(store, engine, "Q", "alice")
    session.feedback({"REL": "relevant", "IRR": "irrelevant"})
    rows = store.select("""
        SELECT ?a ?b ?d ?prev ?user ?n ?from ?alg WHERE { GRAPH ?g {
          ?e a sg:TermSimilarity ; sg:kind "learned" ; sg:termA ?a ; sg:termB ?b ; sg:dissimilarity ?d ;
             sg:previous ?prev ; prov:wasGeneratedBy ?r ; prov:wasAttributedTo ?u ; prov:generatedAtTime ?t ;
             prov:wasDerivedFrom ?from .
          ?r a sg:FeedbackRound ; sg:roundNumber ?n ; sg:algorithm ?alg ; sg:session ?s ; prov:wasAssociatedWith ?u ;
             prov:startedAtTime ?t0 ; prov:endedAtTime ?t1 ; sg:parameters ?p .
          ?s a sg:RetrievalSession ; sg:queryCase $q ; prov:wasAssociatedWith ?u .
          ?u rdfs:label ?user } } ORDER BY ?a""", {"q": case_iri("Q")})
    got = [(str(r["a"]), str(r["b"]), float(r["d"]), float(r["prev"]), str(r["user"]), int(r["n"]), r["from"],
            str(r["alg"])) for r in rows]
    assert got == [
        (WATER, HYPO, pytest.approx(D0[H, W] - 0.1), D0[H, W], "alice", 1, case_iri("REL"), "penalty"),
        (SOFT, HYPO, pytest.approx(min(1.0, D0[H, S] + 0.1)), D0[H, S], "alice", 1, case_iri("IRR"), "penalty"),
    ]
    marks = store.select("SELECT ?c ?v WHERE { ?r sg:mark ?m . ?m a sg:Mark ; sg:markedCase ?c ; sg:relevance ?v } "
                         "ORDER BY ?v")
    assert [(r["c"], str(r["v"])) for r in marks] == [(case_iri("IRR"), "irrelevant"), (case_iri("REL"), "relevant")]


@pytest.mark.parametrize("marks, message", [
    ({"NOPE": "relevant"}, "no such case"), ({"REL": "maybe"}, "invalid mark"), ({}, "at least one mark"),
    ({"Q": "relevant"}, "query case"), ({"REL": "relevant", "IRR": "good"}, "invalid mark"),
])
def test_bad_marks_write_nothing(store, engine, marks, message):
    session = start_session(store, engine, "Q", "alice")
    session.feedback({"REL": "relevant"})
    before, D, ranked = snapshot(store), session.dissimilarity.copy(), ranking(session)
    with pytest.raises(InvalidInput, match=message):
        session.feedback(marks)
    assert snapshot(store) == before and len(session.rounds) == 1
    np.testing.assert_array_equal(session.dissimilarity, D)
    assert ranking(session) == ranked


def test_a_failing_write_leaves_store_and_session_unchanged(store, engine, monkeypatch):
    session = start_session(store, engine, "Q", "alice")
    before, ranked = snapshot(store), ranking(session)
    monkeypatch.setattr(store, "writable", False)  # the store now refuses every write
    with pytest.raises(kg.ReadOnlyStoreError):
        session.feedback({"REL": "relevant"})
    assert snapshot(store) == before and session.rounds == [] and ranking(session) == ranked
    np.testing.assert_array_equal(session.dissimilarity, engine.dissimilarity)


def test_a_round_number_taken_meanwhile_is_a_conflict(store, engine):
    session = start_session(store, engine, "Q", "alice")
    session.feedback({"REL": "relevant"})
    other = load_session(store, session.session_id, engine)
    other.feedback({"IRR": "irrelevant"})  # another client records round 2
    before = snapshot(store)
    with pytest.raises(SemgraphError, match="another client"):
        session.feedback({"OTHER": "neutral"})  # this one is stale: its round 2 is refused
    assert snapshot(store) == before and len(session.rounds) == 1


@pytest.mark.parametrize("algorithm", ["penalty", "regularised+rocchio"])
def test_replay_from_the_graph_equals_the_live_session(store, engine, algorithm):
    live = start_session(store, engine, "Q", "bob", k=10)
    params = FeedbackParams(algorithm=algorithm)
    live.feedback({"REL": "relevant", "IRR": "irrelevant"}, params)
    live.feedback({"REL": "relevant", "OTHER": "irrelevant"}, params)
    live.feedback({"IRR": "irrelevant"}, params)
    replay = load_session(store, live.session_id, engine, k=10)
    np.testing.assert_array_equal(replay.dissimilarity, live.dissimilarity)
    np.testing.assert_array_equal(replay.query, live.query)
    assert ranking(replay) == ranking(live)
    assert [(r.number, r.marks, r.changes) for r in replay.rounds] == \
        [(r.number, r.marks, r.changes) for r in live.rounds]
    assert replay.user == "bob" and replay.query_case == "Q"
    if algorithm != "penalty":
        assert not np.array_equal(live.query, live.query0)  # rocchio moved the query


def test_reweight_rounds_record_the_weights_and_replay_restores_them(store, engine):
    live = start_session(store, engine, "Q", "bob", k=10)
    first = live.feedback({"REL": "relevant", "IRR": "irrelevant"}, FeedbackParams(algorithm="rocchio+reweight"))
    expected = discriminant_weights(engine.vector("Q"), [engine.vector("REL")], [engine.vector("IRR")])
    np.testing.assert_allclose(first.weights, expected, rtol=1e-12)  # the guard applied it in full
    assert first.guard == "applied"
    rows = store.select("SELECT ?w WHERE { GRAPH $g { $r $p ?w } }", {"g": first.graph, "r": first.iri,
                                                                       "p": SG.termWeights})
    assert json.loads(str(rows[0]["w"])) == dict(zip(engine.terms, map(float, first.weights)))
    live.feedback({"OTHER": "irrelevant"}, FeedbackParams(algorithm="penalty"))  # keeps the weights
    np.testing.assert_array_equal(live.weights, first.weights)
    assert ranking(live) == [(h.case_id, h.distance) for h in engine.with_dissimilarity(
        live.dissimilarity, term_weights=live.weights).search_vector(live.query, 10, exclude=("Q",))]
    replay = load_session(store, live.session_id, engine, k=10)
    np.testing.assert_array_equal(replay.weights, live.weights)
    assert [r.weights.tolist() for r in replay.rounds] == [r.weights.tolist() for r in live.rounds]
    assert ranking(replay) == ranking(live)


def test_undo_restores_the_previous_weights(store, engine):
    session = start_session(store, engine, "Q", "carol", k=8)
    initial = ranking(session)
    session.feedback({"REL": "relevant", "IRR": "irrelevant"}, FeedbackParams(algorithm="reweight"))
    after_one, w1 = ranking(session), session.weights.copy()
    session.feedback({"REL": "relevant", "OTHER": "irrelevant"}, FeedbackParams(algorithm="reweight"))
    assert not np.array_equal(session.weights, w1)
    session.undo()
    np.testing.assert_array_equal(session.weights, w1)
    assert ranking(session) == after_one
    session.undo()
    assert session.weights is None and session.engine.term_weights is None and ranking(session) == initial


def test_replay_of_a_vector_query(store, engine):
    live = start_session(store, engine, {"hypodense": 0.9, "water density": 0.6}, "bob")
    live.feedback({"REL": "relevant"})
    replay = load_session(store, live.session_id, engine)
    assert replay.query_case is None and ranking(replay) == ranking(live)
    np.testing.assert_array_equal(replay.query0, live.query0)


def test_text_session_query_is_the_parsed_vector_and_the_text_is_recorded(store, engine):
    text = "hypodense lesion, no enhancement"
    session = start_text_session(store, engine, text, "tess", k=10)
    expected = np.zeros(len(TERMS))
    expected[H] = 1.0
    expected[TERMS.index(R + "RID6056")] = 1.0  # nonenhancing: complement of the negated "enhancement"
    np.testing.assert_array_equal(session.query0, expected)
    assert session.query_case is None and session.query_text == text
    assert not store.select("SELECT ?s WHERE { ?s $p ?t }", {"p": SG.queryText})  # nothing before the first round
    rnd = session.feedback({"REL": "relevant", "IRR": "irrelevant"}, FeedbackParams(algorithm=TEXT_ALGORITHM))
    rows = store.select("SELECT ?t WHERE { GRAPH $g { $s $p ?t } }", {"g": rnd.graph, "s": session.iri,
                                                                       "p": SG.queryText})
    assert [str(r["t"]) for r in rows] == [text]
    # Rocchio (alpha 1, beta 0.75, gamma 0.15) towards REL (water density 0.85) and away from IRR (soft tissue
    # density 0.9), clipped to [0, 1]: water 0 + 0.75 * 0.85 = 0.6375; soft tissue 0 - 0.15 * 0.9 -> 0; hypodense 1
    assert session.query[W] == pytest.approx(0.6375)
    assert session.query[S] == pytest.approx(0.0)
    assert session.query[H] == pytest.approx(1.0)
    replay = load_session(store, session.session_id, engine, k=10)
    assert replay.query_text == text and replay.query_case is None
    np.testing.assert_array_equal(replay.query, session.query)
    assert ranking(replay) == ranking(session)
    listed = {r["session_id"]: r for r in list_sessions(store)}
    assert listed[session.session_id]["query_text"] == text
    assert listed[session.session_id]["query_case"] is None


@pytest.mark.parametrize("text, message", [("", "empty"), ("   ", "empty"), ("a b c qqq", "names no vocabulary term"),
                                           ("x" * 2001, "too long")])
def test_bad_text_session_queries_write_nothing(store, engine, text, message):
    before = snapshot(store)
    with pytest.raises(InvalidInput, match=message):
        start_text_session(store, engine, text, "tess")
    assert snapshot(store) == before


def test_a_session_is_a_case_or_a_text_not_both(store, engine):
    with pytest.raises(InvalidInput, match="not both"):
        start_session(store, engine, "Q", "tess", query_text="hypodense")


def test_undo_restores_the_previous_state_in_one_drop(store, engine):
    session = start_session(store, engine, "Q", "carol", k=8)
    initial = ranking(session)
    session.feedback({"REL": "relevant", "IRR": "irrelevant"})
    after_one, D1, store_one = ranking(session), session.dissimilarity.copy(), snapshot(store)
    session.feedback({"REL": "relevant"})
    assert session.dissimilarity[H, W] < D1[H, W]
    session.undo()
    assert snapshot(store) == store_one and ranking(session) == after_one
    np.testing.assert_array_equal(session.dissimilarity, D1)
    assert load_session(store, session.session_id, engine, k=8).dissimilarity[H, W] == D1[H, W]
    session.undo()
    assert ranking(session) == initial
    np.testing.assert_array_equal(session.dissimilarity, engine.dissimilarity)
    with pytest.raises(NotFound):
        load_session(store, session.session_id, engine)
    with pytest.raises(InvalidInput, match="no round"):
        session.undo()


def test_promotion_is_explicit_recorded_and_changes_the_baseline_only_then(store, engine):
    D0 = engine.dissimilarity
    session = start_session(store, engine, "Q", "alice")
    session.feedback({"REL": "relevant"})
    session.feedback({"REL": "relevant"})
    assert store.count(str(BASELINE_GRAPH)) == 0  # learning never touches the baseline
    np.testing.assert_array_equal(Engine.from_store(store).dissimilarity, D0)
    with pytest.raises(InvalidInput, match="reason"):
        promote(store, session.session_id, user="curator", reason=" ")
    assert store.count(str(BASELINE_GRAPH)) == 0
    done = promote(store, session.session_id, user="curator", reason="confirmed by three readers")
    assert [(a, b) for a, b, *_ in done["changes"]] == [(WATER, HYPO)]
    D = Engine.from_store(store).dissimilarity
    assert D[H, W] == pytest.approx(D0[H, W] - 0.2)
    mask = np.ones_like(D, dtype=bool)
    mask[H, W] = mask[W, H] = False
    np.testing.assert_allclose(D[mask], D0[mask])
    rows = store.select("""SELECT ?d ?prev ?reason ?name (COUNT(DISTINCT ?r) AS ?rounds) WHERE { GRAPH $bg {
        ?e sg:termA $a ; sg:termB $b ; sg:dissimilarity ?d ; sg:previous ?prev ; prov:wasInfluencedBy ?p .
        ?p a sg:Promotion, prov:Activity ; rdfs:comment ?reason ; prov:wasAssociatedWith $u ; prov:startedAtTime ?t ;
           prov:used ?r . $u rdfs:label ?name } } GROUP BY ?d ?prev ?reason ?name""",
                        {"bg": BASELINE_GRAPH, "a": URIRef(WATER), "b": URIRef(HYPO), "u": user_iri("curator")})
    assert [(float(r["d"]), float(r["prev"]), str(r["reason"]), str(r["name"]), int(r["rounds"])) for r in rows] == [
        (pytest.approx(D0[H, W] - 0.2), pytest.approx(D0[H, W]), "confirmed by three readers", "curator", 2)]
    with pytest.raises(InvalidInput, match="promoted"):
        session.undo()
    with pytest.raises(InvalidInput, match="nothing to promote"):
        promote(store, session.session_id, user="curator", reason="again")


def test_promotion_candidates_need_agreeing_independent_sessions(store, engine):
    for user in ("u1", "u2", "u3"):
        start_session(store, engine, "Q", user).feedback({"REL": "relevant"})
    start_session(store, engine, "Q", "u1").feedback({"REL": "relevant"})  # same user and query: not independent
    start_session(store, engine, "Q", "u4").feedback({"IRR": "irrelevant"})
    found = promotion_candidates(store, min_sessions=3)
    assert [(c.term_a, c.term_b, c.sign, len(c.sessions), c.against) for c in found] == [(WATER, HYPO, -1, 3, 0)]
    assert found[0].proposed == pytest.approx(engine.dissimilarity[H, W] - 0.1)
    assert promotion_candidates(store, min_sessions=4) == []
    assert store.count(str(BASELINE_GRAPH)) == 0  # listing candidates promotes nothing


# --------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def run(tmp_path, cli_on):
    folder = tmp_path / "graph"
    with kg.open_store(folder) as s:
        fill(s)
    return cli_on(folder)


def test_cli_query_and_filters(run):
    out = run("query", "--case", "Q", "--k", "3")
    assert out.splitlines()[1].split()[:2] == ["1", "OTHER"] and "Q " not in out
    out = run("query", "--terms", "hypodense=0.9", "--filter", "term:water density>0.5", "--k", "3")
    assert out.splitlines()[1].split()[1] == "REL" and len(out.splitlines()) == 4
    assert "OTHER" not in out and "IRR" not in out  # nearer to the query, but without water density
    import json

    data = json.loads(run("query", "--case", "Q", "--filter", "diagnosis=cyst", "--format", "json"))
    assert {r["diagnosis"] for r in data["results"]} == {"cyst"} and len(data["results"][0]["explanation"]) <= 3
    assert "semgraph train" in run("query", "--image", "x.png", "--rect", "0,0,20,20", ok=False)
    assert "unknown key" in run("query", "--case", "Q", "--filter", "colour=red", ok=False)


def test_cli_feedback_session_undo_and_promote(run):
    out = run("feedback", "--new", "--case", "Q", "--user", "alice", "--relevant", "REL", "--irrelevant", "IRR")
    session_id = out.split()[1]
    assert "round 1 (penalty) by alice" in out and "water density ↔ hypodense: " in out
    assert "new ranking:" in out
    out = run("feedback", "--session", session_id, "--relevant", "REL")
    assert "round 2" in out and "changed 1 term pair" in out
    shown = run("session", "show", session_id)
    assert "case Q, user alice" in shown and "round 1 (penalty" in shown and "IRR=irrelevant, REL=relevant" in shown
    assert session_id in run("session", "list")
    assert "round 2 removed (1 round left)" in run("feedback", "--undo", "--session", session_id)
    assert "no such case" in run("feedback", "--session", session_id, "--relevant", "NOPE", ok=False)
    out = run("promote", "--session", session_id, "--user", "carol", "--reason", "agreed")
    assert "2 baseline values changed" in out and "water density ↔ hypodense" in out
    assert "no pair changed the same way" in run("promote", "--candidates")


def test_cli_feedback_with_reweight(run):
    out = run("feedback", "--new", "--case", "Q", "--user", "alice", "--relevant", "REL", "--irrelevant", "IRR",
              "--algorithm", "rocchio+reweight")
    session_id = out.split()[1]
    assert "round 1 (rocchio+reweight) by alice" in out and "term weights, farthest from 1 (reweight): " in out
    data = json.loads(run("feedback", "--session", session_id, "--irrelevant", "OTHER", "--algorithm",
                          "rocchio+reweight", "--format", "json"))
    assert set(data["weights"]) == set(TERMS) and data["round"]["weights"] == [data["weights"][t] for t in TERMS]
    assert sum(data["weights"].values()) == pytest.approx(len(TERMS))  # mean 1, whatever step the guard took
    shown = run("session", "show", session_id)
    assert shown.count("term weights, farthest from 1 (reweight): ") == 2  # replayed from the graph
