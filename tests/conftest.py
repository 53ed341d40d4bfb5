"""Shared fixtures: stores on both backends (embedded folder, real `oxigraph serve` process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import kg
import kg.server

# The tests write to the store and read the result back through /sparql at once: every query sees every write
# (the default lets /sparql lag up to a second behind; tests/kg/test_replica.py covers that).
os.environ.setdefault("SEMGRAPH_SPARQL_MAX_LAG", "0")


def oxigraph_binary() -> str:
    """The `oxigraph` server binary of the `oxigraph` pip package; fails the test when missing."""
    try:
        return kg.server.oxigraph_binary()
    except kg.StoreError as exc:
        pytest.fail(str(exc))


class OxigraphServer(kg.server.StoreServer):
    """A real `oxigraph serve` process on a free loopback port over ``folder`` (created when missing)."""

    def __init__(self, folder: Path):
        oxigraph_binary()
        super().__init__(folder, start_timeout=30)


@pytest.fixture(scope="session")
def oxigraph_server(tmp_path_factory):
    server = OxigraphServer(tmp_path_factory.mktemp("oxigraph-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def second_sparql_server(tmp_path_factory):
    """A real SPARQL server of another implementation than Oxigraph (tests/second_sparql_server.py)."""
    from second_sparql_server import RdflibEndpointServer

    server = RdflibEndpointServer(tmp_path_factory.mktemp("rdflib-endpoint") / "server.log")
    yield server
    server.stop()


def open_backend(request, backend: str, tmp_path):
    """An empty writable store: ``embedded`` (a folder), ``remote`` (oxigraph serve) or ``second-server``."""
    if backend == "embedded":
        return kg.open_store(tmp_path / "graph")
    server = request.getfixturevalue("oxigraph_server" if backend == "remote" else "second_sparql_server")
    opened = kg.open_store(server.query_url, update_url=server.update_url)
    opened.update("DROP SILENT ALL")
    return opened


@pytest.fixture(params=["embedded", "remote"])
def store(request, tmp_path):
    """An empty writable store on each backend."""
    opened = open_backend(request, request.param, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def cli_on(tmp_path, monkeypatch):
    """``cli_on(folder)``: a function running the ``semgraph`` CLI on the store in ``folder`` from a clean environment
    (no SEMGRAPH_* variables, the working folder ``tmp_path``); ``invoke(*args, ok=True)`` asserts the exit status
    and returns the output."""
    from click.testing import CliRunner

    from semgraph.cli import load_commands

    monkeypatch.chdir(tmp_path)
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch.delenv(name, raising=False)
    cli, runner = load_commands(), CliRunner()

    def on(folder):
        def invoke(*args, ok=True):
            result = runner.invoke(cli, ["--store", str(folder), *args], catch_exceptions=False)
            assert (result.exit_code == 0) == ok, result.output
            return result.output
        return invoke

    return on


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A real Orthanc PACS with DICOMweb on a free loopback port (tests/orthanc_server.py), for the whole session."""
    from orthanc_server import OrthancServer

    server = OrthancServer(tmp_path_factory.mktemp("orthanc"))
    yield server
    server.stop()
