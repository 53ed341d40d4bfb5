"""kg.server.StoreServer: an embedded folder served by a real `oxigraph serve` child process."""

from __future__ import annotations

import pytest
from rdflib import Literal, URIRef

import kg
from kg.server import StoreServer

G = "https://example.org/g"


def test_a_served_folder_is_written_over_http_and_the_writes_are_in_the_folder_after_stop(tmp_path):
    folder = tmp_path / "graph"
    with kg.open_store(folder) as store:
        store.update("INSERT DATA { GRAPH <https://example.org/g> { <urn:x:a> <urn:x:p> 'before' } }")
        assert not store.shared  # an embedded folder is this process's alone
    with StoreServer(folder) as server:
        remote = kg.open_store(server.query_url, update_url=server.update_url)
        assert remote.shared
        assert [str(r["o"]) for r in remote.select("SELECT ?o WHERE { <urn:x:a> <urn:x:p> ?o }")] == ["before"]
        remote.update("INSERT DATA { GRAPH $g { <urn:x:a> <urn:x:p> $v } }", {"g": URIRef(G), "v": Literal("after")})
    with kg.open_store(folder) as store:  # free again once the server stopped
        values = sorted(str(r["o"]) for r in store.select("SELECT ?o WHERE { <urn:x:a> <urn:x:p> ?o }"))
    assert values == ["after", "before"]


def test_a_folder_open_in_another_process_gives_an_error_that_says_so(tmp_path):
    folder = tmp_path / "graph"
    with kg.open_store(folder), pytest.raises(kg.StoreError, match="another process") as error:
        StoreServer(folder, start_timeout=20)
    assert "lock" in str(error.value).lower()
