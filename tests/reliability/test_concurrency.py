"""32 concurrent clients submitting feedback rounds through semgraph.feedback.sessions, on both store backends.

Different sessions: every round lands, with all its learned edges (counted). The same session: clients racing
for the same round number get one winner and clean 409 conflicts for the rest, never two rounds with one number.
Every call runs under a timeout, so a deadlock fails the test instead of hanging it.

(The web-app-level version, 32 HTTP clients on the feedback endpoint, belongs with that endpoint's tests.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from semgraph.errors import SemgraphError
from semgraph.feedback.replay import load_session
from semgraph.feedback.sessions import start_session
from semgraph.graph.check import check_store

from .conftest import marks_for

CLIENTS = 32
TIMEOUT = 300  # seconds for all clients together; only reached by a deadlock


def _count(store):
    rounds = int(store.select("SELECT (COUNT(DISTINCT ?r) AS ?n) WHERE { ?r a sg:FeedbackRound }")[0]["n"])
    edges = int(store.select('SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE { ?e sg:kind "learned" ; '
                             'prov:wasGeneratedBy ?r }')[0]["n"])
    return rounds, edges


def test_32_clients_on_different_sessions_lose_nothing(filled):
    store, engine = filled
    sessions = [start_session(store, engine, engine.ids[i % len(engine.ids)], f"user{i}") for i in range(CLIENTS)]

    def client(i):
        s = sessions[i]
        return [s.feedback(marks_for(engine, s.query_case, 100 * i + n)) for n in range(2)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client, i) for i in range(CLIENTS)]
        results = [f.result(timeout=TIMEOUT) for f in futures]
    expected_edges = sum(len(r.changes) for rounds in results for r in rounds)
    rounds, edges = _count(store)
    print(f"different sessions: {CLIENTS} clients, {rounds} rounds, {edges} learned edges (expected "
          f"{2 * CLIENTS}, {expected_edges})")
    assert (rounds, edges) == (2 * CLIENTS, expected_edges), f"rounds/edges stored {rounds}/{edges}, expected " \
                                                             f"{2 * CLIENTS}/{expected_edges}"
    assert check_store(store).ok
    replay = load_session(store, sessions[5].session_id, engine)
    assert [len(r.changes) for r in replay.rounds] == [len(r.changes) for r in results[5]]


def test_32_clients_racing_on_one_session_get_one_winner_and_clean_conflicts(filled):
    store, engine = filled
    query = engine.ids[0]
    first = start_session(store, engine, query, "alice")
    first.feedback(marks_for(engine, query, 1))
    before = _count(store)
    clients = [load_session(store, first.session_id, engine) for _ in range(CLIENTS)]

    def client(i):
        try:
            return clients[i].feedback(marks_for(engine, query, 1000 + i))
        except SemgraphError as exc:
            return exc

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client, i) for i in range(CLIENTS)]
        outcomes = [f.result(timeout=TIMEOUT) for f in futures]
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    conflicts = [o for o in outcomes if isinstance(o, SemgraphError) and o.status == 409]
    others = [o for o in outcomes if isinstance(o, Exception) and not (isinstance(o, SemgraphError) and o.status == 409)]
    rounds, edges = _count(store)
    numbers = [int(r["n"]) for r in store.select("SELECT ?n WHERE { ?r sg:session $s ; sg:roundNumber ?n }",
                                                 {"s": first.iri})]
    print(f"same session: {CLIENTS} clients, {len(winners)} winner(s), {len(conflicts)} conflicts (409), "
          f"{len(others)} other errors; round numbers stored {sorted(numbers)}")
    assert not others, others[:3]
    assert len(winners) == 1 and len(conflicts) == CLIENTS - 1, \
        f"{len(winners)} winners and {len(conflicts)} conflicts for one round number; stored numbers {sorted(numbers)}"
    assert sorted(numbers) == [1, 2]
    assert (rounds, edges) == (before[0] + 1, before[1] + len(winners[0].changes))
    assert check_store(store).ok
