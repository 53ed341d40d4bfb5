"""The feedback round's graph shape, its read queries and the one vote of independent sessions (semgraph.graph.rounds)."""

from __future__ import annotations

import datetime as dt

import pytest
from rdflib import Literal, URIRef
from rdflib.namespace import RDF
from synthetic import write_synthetic_cases

import ontology
from kg.namespaces import SG, feedback_graph
from semgraph.exchange.export import learned_relations, proposals
from semgraph.feedback.promotion import promotion_candidates
from semgraph.feedback.replay import load_session
from semgraph.feedback.sessions import Session
from semgraph.graph import rounds
from semgraph.graph.casegraph import Annotation, Case, case_iri, user_iri, write_case
from semgraph.retrieval.engine import Engine

R = "http://radlex.org/RID/"
HYPO, WATER, SOFT = R + "RID6042", R + "RID43336", R + "RID43337"
UTC = dt.UTC


def fill(store):
    """The RadLex subset, 8 synthetic cases and Q (hypodense 0.9), REL (water density 0.85), IRR (soft tissue 0.9)."""
    ontology.load(store, "radlex-liver")
    write_synthetic_cases(store, 8, 4, lambda i: {})
    for j, (cid, vals) in enumerate({"Q": {HYPO: 0.9}, "REL": {WATER: 0.85}, "IRR": {SOFT: 0.9}}.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}"), [Annotation("reader", vals)])


@pytest.fixture
def engine(store):
    fill(store)
    return Engine.from_store(store)


def session(store, engine, session_id: str, user: str, started: dt.datetime) -> Session:
    return Session(store, engine, session_id=session_id, user=user, query_case="Q",
                   query_vector=engine.vector("Q"), started_at=started)


# --------------------------------------------------------------------------------------------------- the vote


def test_promotion_and_export_count_the_latest_session_by_start_time_not_by_id(store, engine):
    # One user, one query case, two sessions: "zzz" started first and moved water density closer to hypodense,
    # "aaa" started a day later and moved them apart. Only the latest by start time ("aaa") counts. Before, the
    # promotion kept "zzz" (the last session IRI in sort order) while the export kept "aaa".
    session(store, engine, "zzz", "u1", dt.datetime(2026, 1, 1, tzinfo=UTC)).feedback({"REL": "relevant"})
    session(store, engine, "aaa", "u1", dt.datetime(2026, 1, 2, tzinfo=UTC)).feedback({"REL": "irrelevant"})
    found = {(c.term_a, c.term_b): c for c in promotion_candidates(store, min_sessions=1)}
    water = found[(WATER, HYPO)]
    assert (water.sign, water.sessions, water.against) == (1, ("aaa",), 0)
    (rel,) = [r for r in learned_relations(store) if (r.term_a, r.term_b) == (WATER, HYPO)]
    assert (rel.sessions, rel.closer, rel.farther) == (2, 0, 1)
    assert [p for p in proposals(store) if (p.term_a, p.term_b) == (WATER, HYPO)] == []


def test_a_later_session_start_makes_the_older_session_count_when_started_later(store, engine):
    # the same marks, start times swapped: now "zzz" is the latest and the pair is voted closer
    session(store, engine, "zzz", "u1", dt.datetime(2026, 1, 3, tzinfo=UTC)).feedback({"REL": "relevant"})
    session(store, engine, "aaa", "u1", dt.datetime(2026, 1, 2, tzinfo=UTC)).feedback({"REL": "irrelevant"})
    water = {(c.term_a, c.term_b): c for c in promotion_candidates(store, min_sessions=1)}[(WATER, HYPO)]
    assert (water.sign, water.sessions, water.against) == (-1, ("zzz",), 0)
    (rel,) = [r for r in learned_relations(store) if (r.term_a, r.term_b) == (WATER, HYPO)]
    assert (rel.closer, rel.farther) == (1, 0)


T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)


def change(session, number, previous, value, *, user="u1", case="Q", started=T0):
    return rounds.LearnedChange(WATER, HYPO, session, f"{session}/r{number}", number, previous, value, user, case,
                                started)


def test_votes_tie_on_start_time_goes_to_the_larger_session_iri():
    votes = rounds.votes([change("s:b", 1, 0.5, 0.4), change("s:a", 1, 0.5, 0.7)])
    assert votes == rounds.Votes([rounds.Vote("s:b", "u1", 0.4)], [])


def test_votes_one_per_user_and_query_case_and_a_zero_net_change_abstains():
    votes = rounds.votes([
        change("s:1", 1, 0.5, 0.4, user="u1"),  # u1 on Q: older, replaced by s:2
        change("s:2", 1, 0.5, 0.3, user="u1", started=T0 + dt.timedelta(hours=1)),
        change("s:2", 2, 0.3, 0.45, user="u1", started=T0 + dt.timedelta(hours=1)),  # net 0.5 -> 0.45: closer
        change("s:3", 1, 0.5, 0.6, user="u2"),  # u2 on Q: farther
        change("s:4", 1, 0.5, 0.2, user="u2", case=None),  # no query case: a vote of its own
        change("s:5", 1, 0.5, 0.6, user="u3"),
        change("s:5", 2, 0.6, 0.5, user="u3"),  # net 0: no vote
    ])
    assert votes.closer == [rounds.Vote("s:2", "u1", 0.45), rounds.Vote("s:4", "u2", 0.2)]
    assert votes.farther == [rounds.Vote("s:3", "u2", 0.6)]


def test_session_net_takes_the_first_rounds_previous_and_the_last_rounds_value_in_any_order():
    net = rounds.session_net([change("s:1", 3, 0.35, 0.3), change("s:1", 1, 0.5, 0.4), change("s:1", 2, 0.4, 0.35)])
    assert net == {"s:1": rounds.SessionNet(0.5, 0.3, "u1", "Q", T0)}
    assert net["s:1"].sign == -1


# --------------------------------------------------------------------------------------------------- the shape


def test_round_triples_number_the_marks_and_pair_iris_use_the_terms_local_names():
    r, s, u = rounds.round_iri("R 1"), rounds.session_iri("S"), user_iri("alice")
    assert str(r) == "https://w3id.org/semgraph/id/round/R%201"
    assert rounds.pair_iri(r, WATER, HYPO) == URIRef(f"{r}/pair/RID43336/RID6042")
    g = rounds.round_triples(r, session=s, number=2, user=u, started=T0, ended=T0, algorithm="penalty",
                             parameters="{}", marks=[("IRR", "irrelevant"), ("REL", "relevant")])
    assert (r, SG.roundNumber, Literal(2)) in g and (r, SG.session, s) in g
    assert not any(p == SG.queryVector for _, p, _ in g)
    assert {(str(o), str(m)) for m, p, o in g if p == SG.markedCase} == {
        (str(case_iri("IRR")), f"{r}/mark/1"), (str(case_iri("REL")), f"{r}/mark/2")}
    e = rounds.pair_iri(r, WATER, HYPO)
    pair = rounds.pair_triples(e, round_=r, term_a=WATER, term_b=HYPO, value=0.3, previous=0.4, user=u,
                               generated_at=T0, derived_from=["REL"])
    assert (e, RDF.type, SG.TermSimilarity) in pair and (e, SG.kind, Literal("learned")) in pair
    assert len(pair) == 11


def _round_graph(store, round_id):
    rows = store.select("SELECT ?s ?p ?o WHERE { GRAPH $g { ?s ?p ?o } }", {"g": feedback_graph(round_id)})
    return {(str(r["s"]), str(r["p"]), r["o"].toPython() if isinstance(r["o"], Literal) else str(r["o"]))
            for r in rows}


def test_the_export_writes_a_round_as_the_session_stored_it(store, engine):
    from semgraph.exchange.export import edges_graph, learned_edges

    rnd = session(store, engine, "s1", "alice", T0).feedback({"REL": "relevant", "IRR": "irrelevant"})
    stored = _round_graph(store, rnd.round_id)
    exported = {(str(s), str(p), o.toPython() if isinstance(o, Literal) else str(o))
                for s, p, o in edges_graph(store, learned_edges(store))}
    labels = {t for t in exported if t[1] == str(URIRef("http://www.w3.org/2000/01/rdf-schema#label"))
              and t[0].startswith(R)}
    assert exported - labels <= stored
    assert {t for t in stored if t[0] == str(rnd.iri) and t[1] != str(SG.queryVector)} <= exported


def test_readers_skip_a_pending_round(store, engine):
    s = session(store, engine, "s1", "alice", T0)
    rnd = s.feedback({"REL": "relevant"})
    store.update("INSERT DATA { GRAPH $g { $r sg:pending true } }", {"g": rnd.graph, "r": rnd.iri})
    sid = rounds.session_iri("s1")
    assert rounds.rounds_of(store, sid) == [] and rounds.round_ids_of(store, sid) == set()
    assert rounds.learned_changes(store) == []
    assert rounds.marks_of(store, sid) == {str(rnd.iri): {"REL": "relevant"}}  # by round: callers pick recorded ones
    assert rounds.marks_of(store) == rounds.marks_of(store, sid)
    store.update("DELETE DATA { GRAPH $g { $r sg:pending true } }", {"g": rnd.graph, "r": rnd.iri})
    assert [int(r["n"]) for r in rounds.rounds_of(store, sid)] == [1]
    assert rounds.round_ids_of(store, sid) == {str(rnd.iri)}
    (learned,) = [c for c in rounds.learned_changes(store) if (c.term_a, c.term_b) == (WATER, HYPO)]
    assert (learned.session, learned.round_number, learned.user, learned.session_started) == (
        str(sid), 1, str(user_iri("alice")), T0)
    assert learned.value == pytest.approx(learned.previous - 0.1)
    changes = rounds.pair_changes_of(store, sid)[str(rnd.iri)]
    assert [(a, b, derived) for a, b, _, _, derived in changes] == [(WATER, HYPO, ("REL",))]
    assert load_session(store, "s1", engine).rounds[0].changes == rnd.changes
