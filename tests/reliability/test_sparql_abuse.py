"""The public SPARQL endpoint under abuse, against a real `semgraph serve` process (and its `oxigraph serve` child):
queries past the time limit are cancelled and free their CPU and slot, looping anonymous queries cannot stall the
app, SERVICE and LOAD make no outbound request, cookie-authenticated updates need the CSRF token.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from livesite import Served, WebClient

import kg
from semgraph.users import UserStore

from .conftest import PASSWORDS, ROLES, fill

#: Queries that run for minutes on a few thousand triples (cartesian products, paths over everything, a regular
#: expression over a product, a huge OFFSET over a product). `oxigraph serve --timeout-s` alone stops the regular
#: expression in time, the product only after ~20 s and the paths and the OFFSET not within a minute.
HEAVY = {
    "cartesian count": "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }",
    "nested paths": "SELECT (COUNT(*) AS ?n) WHERE { ?x (rdfs:label|!rdfs:label)* ?y . "
                    "?z (rdfs:label|!rdfs:label)* ?w }",
    "regex over a product": 'SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . '
                            'FILTER(REGEX(CONCAT(STR(?c), STR(?f)), "^(a|b|c)*x$")) }',
    "huge offset": "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } OFFSET 100000000000",
}
JSON = {"Accept": "application/sparql-results+json"}
LIMIT = 2  # seconds: the served app's SPARQL_TIMEOUT in the `served` fixture
CLK = os.sysconf("SC_CLK_TCK")


def make_data(folder: Path) -> Path:
    data = folder / "data"
    with kg.open_store(data / "graph") as store:
        fill(store, n=12)
    users = UserStore.in_data_dir(data)
    for name, role in ROLES.items():
        users.add(name, role, PASSWORDS[name])
    return data


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    server = Served(make_data(tmp_path_factory.mktemp("sparql-abuse")), "--threads", "8",
                    env={"SEMGRAPH_SPARQL_TIMEOUT": str(LIMIT), "SEMGRAPH_SPARQL_MAX_CONCURRENT": "2",
                         "SEMGRAPH_SPARQL_QUEUE_WAIT": "1"})
    yield server
    server.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and all its descendants so far."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def query(url: str, text: str, http: requests.Session | None = None, timeout: float = 60) -> requests.Response:
    return (http or requests).post(url + "/sparql", data=text.encode(), timeout=timeout,
                                   headers={"Content-Type": "application/sparql-query", **JSON})


def client(served: Served, user: str | None = None) -> WebClient:
    web = WebClient(served.url, PASSWORDS)
    return web.logged_in(user).with_api_token() if user else web


# ---------------------------------------------------------------------- row 1: queries that really stop


@pytest.mark.parametrize("name", list(HEAVY))
def test_a_query_past_its_time_limit_is_cancelled_and_frees_its_cpu_and_slot(served, name):
    rita, carl = client(served, "rita"), client(served, "carl")
    answers: list[requests.Response] = []
    heavy = [threading.Thread(target=lambda http=http: answers.append(query(served.url, HEAVY[name], http)))
             for http in (None, rita.http)]  # an anonymous client and a radiologist: two slots of two
    for thread in heavy:
        thread.start()
    for thread in heavy:
        thread.join()
    assert [a.status_code for a in answers] == [503, 503], [a.text[:200] for a in answers]
    assert all(a.json()["error"]["title"] == "Query timed out" for a in answers)

    time.sleep(0.5)  # the store server's cancellation is checked between steps of the evaluation
    before = cpu_seconds(served.process.pid)
    time.sleep(2)
    burnt = cpu_seconds(served.process.pid) - before
    assert burnt < 0.5, f"the server kept computing after the time limit: {burnt:.1f} s of CPU in 2 s"

    light = query(served.url, "SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }", rita.http)
    assert light.status_code == 200, light.text[:300]
    update = carl.http.post(served.url + "/sparql", data=b"INSERT DATA { GRAPH <urn:x:g> { <urn:x:a> <urn:x:b> 1 } }",
                            headers={"Content-Type": "application/sparql-update"}, timeout=60)
    assert update.status_code == 200, update.text[:300]


# ------------------------------------------------------------------ row 2: the app stays responsive


@pytest.fixture(scope="module")
def served_default(tmp_path_factory) -> Iterator[Served]:
    """The app with the default SPARQL limits but a 10 s time limit (default: 30 s), 8 request threads."""
    server = Served(make_data(tmp_path_factory.mktemp("sparql-flood")), env={"SEMGRAPH_SPARQL_TIMEOUT": "10"})
    yield server
    server.stop()


def test_looping_anonymous_queries_do_not_stall_the_app(served_default):
    url, stop = served_default.url, time.monotonic() + 8
    statuses: dict[int, int] = {}
    retry_after: set[str | None] = set()

    def loop(text: str) -> None:
        http = requests.Session()
        while time.monotonic() < stop:
            try:
                answer = query(url, text, http, timeout=30)
            except requests.RequestException:
                continue
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 429:
                retry_after.add(answer.headers.get("Retry-After"))
                time.sleep(0.05)  # a client that ignores Retry-After; a flood of bare HTTP is a proxy's job

    flood = [threading.Thread(target=loop, args=(text,), daemon=True)
             for text in [HEAVY["cartesian count"]] * 8 + ["ASK {}"] * 8]
    for thread in flood:
        thread.start()
    try:
        time.sleep(2)
        rita = client(served_default, "rita")  # logs in: GET and POST /login
        for path in ("/login", "/api/v1/cases", "/search?q=hypodense"):
            answer = rita.http.get(url + path, timeout=5)  # liveness: 10 s per request before the gate
            assert answer.status_code == 200, (path, answer.status_code)
        search = rita.http.post(url + "/api/v1/search", json={"case_id": "case-s3-000001", "k": 5}, timeout=5)
        assert search.status_code == 200, search.text[:300]
    finally:
        for thread in flood:
            thread.join()
    assert statuses.get(429, 0) > 0 and retry_after == {"1"}, (statuses, retry_after)
    assert set(statuses) <= {200, 429, 503}, statuses


# ------------------------------------------------------------------ row 4: no outbound requests


@pytest.fixture
def listener() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP listener on a free loopback port that records what every connection sends."""
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    received.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 500 Internal\r\nContent-Length: 17\r\n\r\n<h1>internal</h1>")
                except OSError:
                    received.append(b"")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/sparql", received
    done.set()
    thread.join()
    server.close()


def test_service_and_load_are_refused_and_nothing_is_contacted(served, listener):
    target, received = listener
    carl = client(served, "carl")
    attempts = [
        query(served.url, f"SELECT * WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}"),
        requests.get(served.url + "/sparql", params={"query": f"select * {{ service silent <{target}> {{}} }}"},
                     headers=JSON, timeout=60),
        carl.http.post(served.url + "/sparql", data=f"LOAD <{target}> INTO GRAPH <urn:x:loaded>".encode(),
                       headers={"Content-Type": "application/sparql-update"}, timeout=60),
        carl.http.post(served.url + "/sparql", data={"update": f"INSERT {{ GRAPH <urn:x:g> {{ ?s ?p ?o }} }} "
                                                              f"WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}"},
                       timeout=60),
        carl.http.post(served.url + "/sparql", data=b"LOAD <file:///etc/passwd>",
                       headers={"Content-Type": "application/sparql-update"}, timeout=60),
    ]
    for answer in attempts:
        assert answer.status_code == 400, answer.text[:300]
        assert "SEMGRAPH_SPARQL_ALLOW_REMOTE" in answer.text and "internal" not in answer.text
    assert received == []
    harmless = query(served.url, 'SELECT ?service WHERE { ?service rdfs:label "SERVICE" } LIMIT 1')
    assert harmless.status_code == 200, harmless.text[:300]


def test_service_is_allowed_when_the_setting_says_so(live, listener):
    target, received = listener
    live.app.config["SPARQL_ALLOW_REMOTE"] = True
    try:
        answer = query(live.url, f"SELECT * WHERE {{ SERVICE SILENT <{target}> {{ ?s ?p ?o }} }}")
    finally:
        live.app.config["SPARQL_ALLOW_REMOTE"] = False
    assert answer.status_code == 200, answer.text[:300]
    assert received and received[0].startswith((b"POST", b"GET"))


# ----------------------------------------------------------- row 10: CSRF for cookie-authorised updates


def test_a_cookie_authorised_sparql_update_needs_the_csrf_token(live):
    carl = WebClient(live.url, PASSWORDS).logged_in("carl")
    update = b"INSERT DATA { GRAPH <urn:x:csrf> { <urn:x:a> <urn:x:b> 1 } }"
    before = live.snapshot()
    forged = carl.http.post(live.url + "/sparql", data=update, headers={"Content-Type": "application/sparql-update"},
                            timeout=60)
    assert forged.status_code == 400 and forged.json()["error"]["title"] == "Form expired", forged.text[:300]
    assert live.snapshot() == before
    carl.with_api_token()
    accepted = carl.http.post(live.url + "/sparql", data=update,
                              headers={"Content-Type": "application/sparql-update"}, timeout=60)
    assert accepted.status_code == 200, accepted.text[:300]
    assert live.snapshot() == before + 1


def test_a_deeply_nested_query_is_refused_before_any_parser_sees_it(served):
    nested = "SELECT * WHERE " + "{" * 5000 + "}" * 5000  # 10 KB: Oxigraph's parser overflows its stack on it
    answer = query(served.url, nested)
    assert answer.status_code == 400 and "nests brackets 5000 deep" in answer.text, answer.text[:300]
    assert served.process.poll() is None
    assert query(served.url, "ASK {}").status_code == 200
