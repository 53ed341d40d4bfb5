"""Shared fixtures: stores on both backends (embedded folder, real `oxigraph serve` process)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import kg


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def oxigraph_binary() -> str:
    """The `oxigraph` server binary of the `oxigraph` pip package (test extra)."""
    found = shutil.which("oxigraph") or str(Path(sys.executable).with_name("oxigraph"))
    if not Path(found).exists():
        pytest.fail("the `oxigraph` server binary is missing: pip install -e '.[test]'")
    return found


class OxigraphServer:
    """A real `oxigraph serve` process on a free loopback port, stopped by :meth:`stop`.

    Its output goes to ``<store folder>.log``, never to a pipe that nobody reads (a full pipe
    would block the server).
    """

    def __init__(self, folder: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.query_url, self.update_url = f"{self.url}/query", f"{self.url}/update"
        self.log = folder.with_name(folder.name + ".log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [oxigraph_binary(), "serve", "--location", str(folder), "--bind", f"127.0.0.1:{self.port}",
                 "--union-default-graph"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"oxigraph serve exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/query?query=ASK%7B%7D", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("oxigraph serve did not start within 30 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def oxigraph_server(tmp_path_factory):
    server = OxigraphServer(tmp_path_factory.mktemp("oxigraph-server"))
    yield server
    server.stop()


@pytest.fixture(params=["embedded", "remote"])
def store(request, tmp_path):
    """An empty writable store on each backend."""
    if request.param == "embedded":
        opened = kg.open_store(tmp_path / "graph")
    else:
        server = request.getfixturevalue("oxigraph_server")
        opened = kg.open_store(server.query_url, update_url=server.update_url)
        opened.update("DROP SILENT ALL")
    yield opened
    opened.close()
