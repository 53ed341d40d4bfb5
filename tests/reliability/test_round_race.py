"""Round-number races and stale undos between clients that do not share memory (other processes), on both store
backends.

Several ``Session`` copies of one session (what several server processes have) compute the next round and then
record it at the same moment, behind a barrier, so that their writes really overlap. Oxigraph's transactions read a
snapshot and commit without a conflict check, so a conditional insert alone let two of them store the same round
number (seen in about a quarter of 32-writer races against ``oxigraph serve``); every race must now end with one
acknowledged round per number, the others refused with 409 and nothing of theirs left in the store.

A copy whose last round is no longer the store's last round (another client added or undid one) must refuse to
undo (409, nothing dropped) instead of dropping the wrong round.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from semgraph.errors import InvalidInput, SemgraphError
from semgraph.feedback.replay import load_session
from semgraph.feedback.sessions import start_session
from semgraph.graph import rounds as sessions_module
from semgraph.graph.check import check_store

from .conftest import marks_for

WRITERS = 32
RACES = 8  # rounds 2..9 of one session, each raced by WRITERS copies
TIMEOUT = 300  # seconds for one race; only a deadlock reaches it

_ROUNDS = "SELECT ?r ?n WHERE { GRAPH ?g { ?r a sg:FeedbackRound ; sg:session $s ; sg:roundNumber ?n } }"


def stored(store, session) -> dict[str, int]:
    """round id → round number, for every stored round of ``session``."""
    return {str(r["r"]).rsplit("/", 1)[-1]: int(r["n"]) for r in store.select(_ROUNDS, {"s": session.iri})}


def race(store, engine, session_id: str, seed: int) -> list:
    """WRITERS fresh copies of the session each compute the next round, then all record it at once."""
    copies = [load_session(store, session_id, engine) for _ in range(WRITERS)]
    rounds = [c.compute_round(marks_for(engine, c.query_case, seed + i)) for i, c in enumerate(copies)]
    barrier = threading.Barrier(WRITERS)

    def writer(i: int):
        barrier.wait(timeout=TIMEOUT)
        try:
            return copies[i].record(rounds[i])
        except SemgraphError as exc:
            return exc

    with ThreadPoolExecutor(WRITERS) as pool:
        return [f.result(timeout=TIMEOUT) for f in [pool.submit(writer, i) for i in range(WRITERS)]]


def test_copies_of_a_session_racing_for_a_round_number_store_it_once(filled):
    store, engine = filled
    first = start_session(store, engine, engine.ids[0], "alice")
    first.feedback(marks_for(engine, first.query_case, 1))
    acknowledged = {first.rounds[0].round_id: 1}
    for n in range(2, RACES + 2):
        outcomes = race(store, engine, first.session_id, 100 * n)
        winners = [o for o in outcomes if not isinstance(o, Exception)]
        conflicts = [o for o in outcomes if isinstance(o, SemgraphError) and o.status == 409]
        print(f"race for round {n}: {len(winners)} acknowledged, {len(conflicts)} x 409, "
              f"stored numbers {sorted(stored(store, first).values())}")
        assert len(winners) + len(conflicts) == WRITERS, [o for o in outcomes if o not in winners + conflicts][:3]
        assert len(winners) == 1, f"{len(winners)} clients were told they recorded round {n}"
        acknowledged[winners[0].round_id] = n
        assert stored(store, first) == acknowledged
    replay = load_session(store, first.session_id, engine)
    assert [r.round_id for r in replay.rounds] == list(acknowledged)
    report = check_store(store)
    assert report.ok, report.format_text()


def test_a_round_computed_before_the_session_moved_on_is_refused(filled):
    store, engine = filled
    session = start_session(store, engine, engine.ids[1], "alice")
    early = session.compute_round(marks_for(engine, session.query_case, 1))
    session.feedback(marks_for(engine, session.query_case, 2))
    with pytest.raises(InvalidInput, match="does not follow"):
        session.record(early)
    assert sorted(stored(store, session).values()) == [1]


def test_a_round_built_on_a_round_undone_elsewhere_is_a_conflict(filled):
    store, engine = filled
    session = start_session(store, engine, engine.ids[2], "alice")
    session.feedback(marks_for(engine, session.query_case, 1))
    session.feedback(marks_for(engine, session.query_case, 2))
    other = load_session(store, session.session_id, engine)
    other.undo()  # another process undoes round 2
    with pytest.raises(SemgraphError, match="another client") as caught:
        session.feedback(marks_for(engine, session.query_case, 3))  # round 3 on top of the undone round 2
    assert caught.value.status == 409
    assert sorted(stored(store, session).values()) == [1] and len(session.rounds) == 2


def _pending(store, round_) -> bool:
    return store.ask("ASK { GRAPH $g { $r sg:pending true } }", {"g": round_.graph, "r": round_.iri})


def test_a_pending_claim_is_not_part_of_the_session_and_nothing_is_built_on_it(filled):
    """The race seen with two server processes: a copy replayed while another client's claim for round 2 was still
    pending (not yet checked) built round 3 on it; the claim was then withdrawn and round 3, acknowledged, was left
    on a round that no longer existed. A pending claim must be invisible to a replay, and a round on top of it must
    be refused."""
    store, engine = filled
    session = start_session(store, engine, engine.ids[3], "alice")
    session.feedback(marks_for(engine, session.query_case, 1))
    claimant = load_session(store, session.session_id, engine)
    claimed = claimant.compute_round(marks_for(engine, session.query_case, 2))
    claimant._insert(claimed, pending=True)  # inserted, not yet checked
    assert _pending(store, claimed)
    replay = load_session(store, session.session_id, engine)
    assert [r.number for r in replay.rounds] == [1] and replay.is_current()
    stale = load_session(store, session.session_id, engine)
    stale.rounds.append(claimed)  # a copy that took the pending claim for the session's round 2
    with pytest.raises(SemgraphError, match="another client") as caught:
        stale.feedback(marks_for(engine, session.query_case, 3))
    assert caught.value.status == 409
    assert sorted(stored(store, session).values()) == [1, 2]  # round 1 and the pending claim; no round 3
    # the claimant's check then lets its claim stand, and recording it removes the mark
    assert claimant._claim_stands(claimed)
    claimant.store.update("DELETE DATA { GRAPH $g { $r sg:pending true } }", {"g": claimed.graph, "r": claimed.iri})
    assert [r.number for r in load_session(store, session.session_id, engine).rounds] == [1, 2]


def test_a_recorded_round_is_not_pending(filled):
    store, engine = filled
    session = start_session(store, engine, engine.ids[4], "alice")
    recorded = session.feedback(marks_for(engine, session.query_case, 1))
    assert not _pending(store, recorded)
    assert store.ask("ASK { GRAPH $g { $r a sg:FeedbackRound } }", {"g": recorded.graph, "r": recorded.iri})


def test_a_pending_claim_left_by_a_crashed_process_expires(filled):
    store, engine = filled
    session = start_session(store, engine, engine.ids[5], "alice")
    session.feedback(marks_for(engine, session.query_case, 1))
    crashed = load_session(store, session.session_id, engine)
    left = crashed.compute_round(marks_for(engine, session.query_case, 2))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=sessions_module.CLAIM_LEASE + 5)
    left = dataclasses.replace(left, started_at=old, ended_at=old)
    crashed._insert(left, pending=True)  # then the process died: never checked, never withdrawn
    fresh = crashed.compute_round(marks_for(engine, session.query_case, 3))
    young = load_session(store, session.session_id, engine)
    young._insert(fresh, pending=True)  # a claim of the same number within the lease still holds it ...
    with pytest.raises(SemgraphError, match="another client"):
        session.feedback(marks_for(engine, session.query_case, 4))
    young.store.drop(str(fresh.graph))
    recorded = session.feedback(marks_for(engine, session.query_case, 4))  # ... an expired one does not
    assert recorded.number == 2
    assert stored(store, session) == {session.rounds[0].round_id: 1, recorded.round_id: 2}  # the leftover dropped


def test_undo_of_a_stale_copy_after_a_round_added_elsewhere_drops_nothing(filled):
    store, engine = filled
    session = start_session(store, engine, engine.ids[3], "alice")
    session.feedback(marks_for(engine, session.query_case, 1))
    stale = load_session(store, session.session_id, engine)
    session.feedback(marks_for(engine, session.query_case, 2))  # round 2, recorded by another process
    before = stored(store, session)
    with pytest.raises(SemgraphError, match="round 2 was added") as caught:
        stale.undo()
    assert caught.value.status == 409
    assert stored(store, session) == before and len(stale.rounds) == 1
    fresh = load_session(store, session.session_id, engine)
    assert fresh.undo().number == 2
    assert sorted(stored(store, session).values()) == [1]


def test_undo_of_a_round_already_undone_elsewhere_is_a_conflict(filled):
    store, engine = filled
    session = start_session(store, engine, engine.ids[4], "alice")
    session.feedback(marks_for(engine, session.query_case, 1))
    session.feedback(marks_for(engine, session.query_case, 2))
    stale = load_session(store, session.session_id, engine)
    session.undo()
    before = stored(store, session)
    with pytest.raises(SemgraphError, match="no longer recorded") as caught:
        stale.undo()
    assert caught.value.status == 409
    assert stored(store, session) == before == {session.rounds[0].round_id: 1}


def test_a_round_added_at_the_moment_of_an_undo_keeps_the_undone_round(filled, monkeypatch):
    """Another process records round 3 from a snapshot taken just before the undo's drop committed (what a
    snapshot-isolated store lets through): the undo puts round 2 back and answers 409."""
    store, engine = filled
    session = start_session(store, engine, engine.ids[5], "alice")
    session.feedback(marks_for(engine, session.query_case, 1))
    second = session.feedback(marks_for(engine, session.query_case, 2))
    other = load_session(store, session.session_id, engine)
    third = other.compute_round(marks_for(engine, session.query_case, 3))
    graph = "SELECT ?s ?p ?o WHERE { GRAPH $g { ?s ?p ?o } }"
    before = {tuple(r.values()) for r in store.select(graph, {"g": second.graph})}
    update = store.update

    def update_then_concurrent_insert(text, bindings=None):
        update(text, bindings)
        if text.startswith("DELETE") and bindings and bindings.get("g") == second.graph:
            triples = " .\n".join(f"{s.n3()} {p.n3()} {o.n3()}" for s, p, o in other.round_triples(third))
            update("INSERT DATA { GRAPH $g { " + triples + " } }", {"g": third.graph})

    monkeypatch.setattr(store, "update", update_then_concurrent_insert)
    with pytest.raises(SemgraphError, match="round 3 was added") as caught:
        session.undo()
    assert caught.value.status == 409
    assert stored(store, session) == {session.rounds[0].round_id: 1, second.round_id: 2, third.round_id: 3}
    assert {tuple(r.values()) for r in store.select(graph, {"g": second.graph})} == before
    assert len(session.rounds) == 2
    report = check_store(store)
    assert report.ok, report.format_text()
