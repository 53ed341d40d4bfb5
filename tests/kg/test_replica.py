"""Query replicas: read-only copies of a store in `oxigraph serve-read-only` processes that can be killed."""

from __future__ import annotations

import time

import pytest
import requests

import kg
from kg.errors import RemoteEndpointError
from kg.replica import GRACE, QueryReplica
from kg.server import StoreServer

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <urn:x:g> { ?s ?p ?o } }"
#: The product of three closures over every predicate (~10^11 rows here): Oxigraph's own deadline does not stop it.
RUNAWAY = ("SELECT (COUNT(*) AS ?n) WHERE { ?x (rdfs:label|!rdfs:label)* ?y . "
           "?z (rdfs:label|!rdfs:label)* ?w . ?u (rdfs:label|!rdfs:label)* ?v }")


def add(store: kg.Store, n: int, start: int = 0) -> None:
    body = " ".join(f"<urn:x:s{i}> <urn:x:p> {i} ." for i in range(start, start + n))
    store.update("INSERT DATA { GRAPH <urn:x:g> { " + body + " } }")


def count(replica: QueryReplica) -> int:
    return int(replica.query(COUNT).rows[0]["n"])


def eventually(replica: QueryReplica, expected: int, seconds: float = 10) -> int:
    """The count once it is ``expected`` (a renewal in the background), or the last one seen after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (seen := count(replica)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


@pytest.fixture
def embedded(tmp_path):
    store = kg.open_store(tmp_path / "graph")
    replica = QueryReplica(store, tmp_path / "replicas", timeout=1, min_age=0)
    yield store, replica
    replica.close()
    store.close()


def test_a_replica_sees_every_write_and_is_reused_while_nothing_changes(embedded, tmp_path):
    store, replica = embedded
    add(store, 3)
    assert count(replica) == 3  # the first copy is made for the first query
    with replica.lease() as first:
        pass
    with replica.lease() as again:
        assert again == first  # nothing written: the same copy and server
    add(store, 2, start=3)
    assert eventually(replica, 5) == 5  # renewed in the background, the old copy answering meanwhile
    assert len(list((tmp_path / "replicas").iterdir())) == 2  # the new copy and its server's log; the old one gone


def test_renewals_wait_for_min_age_unless_invalidated(tmp_path):
    with kg.open_store(tmp_path / "graph") as store:
        replica = QueryReplica(store, tmp_path / "replicas", timeout=1, min_age=0.5)
        try:
            add(store, 1)
            assert count(replica) == 1
            add(store, 1, start=1)
            assert count(replica) == 1  # younger than min_age: the last write is not seen yet
            time.sleep(0.6)
            assert eventually(replica, 2) == 2
            add(store, 1, start=2)
            replica.invalidate()
            assert count(replica) == 3  # invalidated: renewed at once
        finally:
            replica.close()


def test_a_query_its_server_does_not_stop_is_ended_by_killing_the_server(tmp_path):
    with kg.open_store(tmp_path / "graph") as store:
        add(store, 2000)
        store.update("INSERT DATA { GRAPH <urn:x:g> { <urn:x:a> rdfs:label 'a' } }")
        replica = QueryReplica(store, tmp_path / "replicas", timeout=1)
        try:
            with replica.lease() as url:
                copies = {p.name for p in (tmp_path / "replicas").iterdir()}
            started = time.monotonic()
            with pytest.raises(RemoteEndpointError):
                replica.query(RUNAWAY)
            assert time.monotonic() - started < 1 + GRACE + 5
            with pytest.raises(requests.ConnectionError):  # its server is gone, its copy deleted
                requests.get(url, params={"query": "ASK {}"}, timeout=5)
            assert not copies & {p.name for p in (tmp_path / "replicas").iterdir()}
            assert count(replica) == 2001
            with replica.lease() as other:
                assert other != url
        finally:
            replica.close()


def test_a_replica_of_a_folder_held_by_a_server_follows_the_version_marker(tmp_path):
    folder = tmp_path / "graph"
    kg.open_store(folder).close()
    with StoreServer(folder) as server:
        writer = kg.open_store(server.query_url, update_url=server.update_url)
        version = [0]
        replica = QueryReplica(folder, tmp_path / "replicas", timeout=5, max_age=60, min_age=0,
                               version=lambda: version[0])
        try:
            add(writer, 4)
            assert count(replica) == 4
            add(writer, 1, start=4)
            assert count(replica) == 4  # younger than max_age and the same version: the copy stays
            version[0] += 1
            assert eventually(replica, 5) == 5
        finally:
            replica.close()


def test_copies_left_by_a_dead_process_are_removed(tmp_path):
    leftover = tmp_path / "replicas" / "999999999-3"
    leftover.mkdir(parents=True)
    (tmp_path / "replicas" / "999999999-3.server.log").write_text("old")
    with kg.open_store(tmp_path / "graph") as store:
        QueryReplica(store, tmp_path / "replicas", timeout=1).close()
    assert list((tmp_path / "replicas").iterdir()) == []
