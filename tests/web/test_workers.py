"""`semgraph serve --workers 2`: two real gunicorn worker processes over one `oxigraph serve` child process.

Every request here goes over a new TCP connection (a new ``requests.Session`` carrying the login cookie), so the
kernel hands it to either worker; the tests check that what one worker did is what the other one shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from livesite import Served, WebClient
from synthetic import TERMS, write_synthetic_cases

import kg
import ontology
from semgraph.feedback.replay import load_session
from semgraph.graph.casegraph import case_iri
from semgraph.retrieval.engine import Engine
from semgraph.retrieval.similarity import write_baseline
from semgraph.users import UserStore

USERS = {"rad": ("radiologist", "rad-password-1"), "cur": ("curator", "cur-password-1")}
TIMEOUT = 60
FRESH = 16  # fresh connections per check, at least


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("workers") / "data"
    with kg.open_store(data / "graph") as store:
        ontology.load(store, "radlex-liver")
        write_synthetic_cases(store, 30, seed=5)
        write_baseline(store, TERMS, ontology.dissimilarity_matrix(store, TERMS), kind="ontology",
                       provenance={"measure": "kurtz"})
    users = UserStore.in_data_dir(data)
    for name, (role, password) in USERS.items():
        users.add(name, role, password)
    server = Served(data, "--workers", "2", "--threads", "2")
    yield server
    server.stop()


def fresh(client: WebClient) -> WebClient:
    """A new connection (so possibly the other worker) with ``client``'s login cookie and CSRF header."""
    other = WebClient(client.base)
    other.http.cookies.update(client.http.cookies)
    other.http.headers.update({k: v for k, v in client.http.headers.items() if k == "X-CSRF-Token"})
    return other


def logged_in(served: Served, name: str) -> WebClient:
    return WebClient(served.url, {n: pw for n, (_, pw) in USERS.items()}).logged_in(name).with_api_token()


def across_workers(client: WebClient, path: str, patience: float = 60.0) -> tuple[set[int], list[dict]]:
    """GET ``path`` over at least FRESH new connections, and more (up to ``patience`` seconds) until both worker
    processes have answered: a worker busy rebuilding its engine after a write leaves every connection to the other.

    Returns (processes that answered /api/v1/status meanwhile, the answers)."""
    pids, answers = set(), []
    deadline = time.monotonic() + patience
    while len(answers) < FRESH or (len(pids) < 2 and time.monotonic() < deadline):
        conn = fresh(client)
        pids.add(conn.get("/api/v1/status").json()["process"])
        answer = conn.get(path)
        assert answer.status_code == 200, answer.text[:300]
        answers.append(answer.json())
        conn.http.close()
    return pids, answers


def test_two_worker_processes_answer_and_share_the_login(served):
    rad = logged_in(served, "rad")
    pids, answers = across_workers(rad, "/api/v1/me")
    assert len(pids) == 2, f"only {pids} answered {FRESH} fresh connections"
    assert {a["name"] for a in answers} == {"rad"}  # the signed login cookie is valid in both workers
    assert "2 worker processes, 2 threads each" in served.banner


def test_a_session_continues_round_after_round_whichever_worker_answers(served):
    rad = logged_in(served, "rad")
    case = rad.get("/api/v1/cases", params={"limit": 5}).json()["cases"][3]["case_id"]
    view = fresh(rad).post("/api/v1/sessions", json={"case_id": case, "k": 10}).json()
    sid = view["session_id"]
    results = [h["case_id"] for h in view["results"]]
    for number in (1, 2, 3):
        marks = {results[number]: "relevant", results[-number]: "irrelevant"}
        r = fresh(rad).post(f"/api/v1/sessions/{sid}/rounds", json={"marks": marks, "round": number - 1})
        assert r.status_code == 200, r.text[:300]
        assert r.json()["round"] == number
        pids, answers = across_workers(rad, f"/api/v1/sessions/{sid}")
        assert len(pids) == 2
        assert {a["round"] for a in answers} == {number}, "a worker showed a stale copy of the session"
    stale = fresh(rad).post(f"/api/v1/sessions/{sid}/undo", json={"round": 2})
    assert stale.status_code == 409 and "nothing was undone" in stale.json()["error"]["message"]
    undone = fresh(rad).post(f"/api/v1/sessions/{sid}/undo", json={"round": 3})
    assert undone.status_code == 200 and undone.json()["undone"] == 3
    _, answers = across_workers(rad, f"/api/v1/sessions/{sid}")
    assert {a["round"] for a in answers} == {2}
    served.session_id = sid  # checked in the store after the server stopped


def test_a_curator_update_through_one_worker_is_seen_by_every_worker(served):
    rad, cur = logged_in(served, "rad"), logged_in(served, "cur")
    case = rad.get("/api/v1/cases", params={"limit": 5}).json()["cases"][1]["case_id"]
    pids, answers = across_workers(rad, f"/api/v1/cases/{case}")  # both workers have built their engines now
    assert len(pids) == 2 and len({a["diagnosis"] for a in answers}) == 1
    assert answers[0]["diagnosis"] != "cholangiocarcinoma"
    update = (f"DELETE {{ GRAPH ?g {{ {case_iri(case).n3()} sg:diagnosis ?old }} }} "
              f"INSERT {{ GRAPH ?g {{ {case_iri(case).n3()} sg:diagnosis \"cholangiocarcinoma\" }} }} "
              f"WHERE {{ GRAPH ?g {{ {case_iri(case).n3()} sg:diagnosis ?old }} }}")
    r = cur.post("/sparql", data={"update": update, "csrf_token": cur.csrf("/query")})
    assert r.status_code in (200, 204), r.text[:300]
    _, answers = across_workers(rad, f"/api/v1/cases/{case}")
    assert {a["diagnosis"] for a in answers} == {"cholangiocarcinoma"}, "a worker kept its engine from before"


def test_sigterm_stops_workers_and_store_process_and_every_acknowledged_round_is_in_the_folder(served):
    sid = getattr(served, "session_id", None)
    assert served.stop() == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(served.url + "/api/v1/status", timeout=5)
    with kg.open_store(served.data / "graph") as store:  # the folder is free again: oxigraph serve has stopped
        if sid is not None:
            session = load_session(store, sid, Engine.from_store(store))
            assert [r.number for r in session.rounds] == [1, 2]
