"""What differs between the backends: locking and read-only opening (embedded), reachability (remote)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyoxigraph as ox
import pytest
from rdflib import URIRef

import kg
from kg import ReadOnlyStoreError, RemoteEndpointError, StoreError
from kg.embedded import STAGING_PREFIX

G = "https://example.org/graph/one"


def _insert(store, value="v"):
    store.update("INSERT DATA { GRAPH $g { <https://example.org/s> <https://example.org/p> $v } }",
                 {"g": URIRef(G), "v": value})


def test_second_process_gets_a_clear_lock_error(tmp_path):
    folder = tmp_path / "graph"
    with kg.open_store(folder) as store:
        _insert(store)
        code = textwrap.dedent(f"""
            import kg
            try:
                kg.open_store({str(folder)!r})
            except kg.StoreLockedError as exc:
                print("LOCKED", exc)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
        assert out.startswith("LOCKED") and "already open in another process" in out
        assert store.count(G) == 1  # the first process is unaffected


def test_reopen_after_close_keeps_data(tmp_path):
    folder = tmp_path / "graph"
    with kg.open_store(folder) as store:
        _insert(store)
    with kg.open_store(folder) as store:
        assert store.count(G) == 1


def test_read_only_embedded_store(tmp_path):
    folder = tmp_path / "graph"
    with kg.open_store(folder) as store:
        _insert(store)
    reader = kg.open_store(folder, read_only=True)
    assert reader.count(G) == 1
    with pytest.raises(ReadOnlyStoreError, match="read-only"):
        _insert(reader, "w")
    with pytest.raises(ReadOnlyStoreError):
        reader.drop(G)
    reader.close()
    with pytest.raises(StoreError, match="no store at"):
        kg.open_store(tmp_path / "missing", read_only=True)


def test_leftover_staging_graph_is_removed_on_open(tmp_path):
    folder = tmp_path / "graph"
    raw = ox.Store(str(folder))  # simulate a crash between staging and swapping in a replace-load
    raw.add(ox.Quad(ox.NamedNode("https://example.org/s"), ox.NamedNode("https://example.org/p"),
                    ox.Literal("half"), ox.NamedNode(STAGING_PREFIX + "dead")))
    raw.flush()
    del raw
    with kg.open_store(folder) as store:
        assert store.graphs() == []
        assert store.count() == 0


def test_remote_without_update_url_is_read_only(oxigraph_server):
    store = kg.open_store(oxigraph_server.query_url, read_only=True)
    assert store.ask("ASK { }")
    with pytest.raises(ReadOnlyStoreError, match="no update URL"):
        _insert(store)


def test_unreachable_endpoint_is_a_clear_error():
    with pytest.raises(RemoteEndpointError, match="cannot reach"):
        kg.open_store("http://127.0.0.1:9/query", timeout=2).ask("ASK { }")


def test_remote_sees_writes_of_another_client(oxigraph_server):
    writer = kg.open_store(oxigraph_server.query_url, update_url=oxigraph_server.update_url)
    writer.update("DROP SILENT ALL")
    _insert(writer, "shared")
    reader = kg.open_store(oxigraph_server.query_url, read_only=True)
    assert reader.ask("ASK { GRAPH ?g { ?s ?p $v } }", {"v": "shared"})
