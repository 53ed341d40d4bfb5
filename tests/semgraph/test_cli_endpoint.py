"""`semgraph sparql --endpoint URL`: reading a store that a running `semgraph serve` holds, through its /sparql."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from livesite import Served
from rdflib import URIRef

import kg
import ontology
from semgraph.cli import load_commands

cli = load_commands()

LABEL = "SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("endpoint") / "data"
    with kg.open_store(data / "graph") as store:
        ontology.load(store, "radlex-liver")
    server = Served(data)
    yield server
    server.stop()


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str, ok: bool = True) -> str:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return invoke


def test_sparql_reads_a_served_store_through_its_endpoint(served, run):
    endpoint = served.url + "/sparql"
    payload = json.loads(run("sparql", "--endpoint", endpoint, "--format", "json", LABEL))
    assert [row["l"]["value"] for row in payload["results"]["bindings"]] == ["irregular margin"]
    table = run("sparql", "--endpoint", endpoint,
                "SELECT ?t WHERE { ?t rdfs:label ?l FILTER(STR(?l) = $l) }", "--param", "l=irregular margin")
    assert "http://radlex.org/RID/RID5715" in table and "(1 row)" in table
    assert "true" in run("sparql", "--endpoint", endpoint, "--format", "json", "ASK { ?t rdfs:subClassOf ?u }")


def test_sparql_on_the_served_folder_fails_and_names_the_endpoint_option(served, run):
    out = run("--data-dir", str(served.data), "sparql", LABEL, ok=False)
    assert "already open in another process, for writing" in out
    assert f"process {served.process.pid}" in out
    assert "--endpoint" in out


def test_endpoint_must_be_an_http_url(run, tmp_path):
    assert "is not an http(s):// URL" in run("sparql", "--endpoint", str(tmp_path / "graph"), LABEL, ok=False)


def test_an_unreachable_endpoint_is_a_clear_error(run):
    out = run("sparql", "--endpoint", "http://127.0.0.1:9/sparql", LABEL, ok=False)
    assert "cannot reach the SPARQL endpoint http://127.0.0.1:9/sparql" in out



def test_sparql_reads_any_sparql_endpoint(oxigraph_server, run):
    with kg.open_store(oxigraph_server.query_url, update_url=oxigraph_server.update_url) as store:
        store.update("INSERT DATA { GRAPH $g { <https://example.org/endpoint-test> rdfs:label 'plain oxigraph' } }",
                     {"g": URIRef("https://example.org/graph/endpoint-test")})
    out = run("sparql", "--endpoint", oxigraph_server.query_url, "--format", "csv",
              "SELECT ?l WHERE { <https://example.org/endpoint-test> rdfs:label ?l }")
    assert out.splitlines() == ["l", "plain oxigraph"]
