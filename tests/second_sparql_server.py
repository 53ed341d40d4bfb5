"""A second SPARQL 1.1 server implementation for the remote-store tests: ``rdflib-endpoint`` (PyPI), RDFLib's own
query and update engine behind FastAPI/uvicorn, on a free loopback port with updates enabled.

Oxigraph is the server the project recommends; this one checks that the remote store speaks plain SPARQL 1.1
Protocol and needs nothing Oxigraph-specific. Its dataset is in memory with the default graph as the union of the
named graphs (as ``oxigraph serve`` with ``--union-default-graph``); :meth:`wipe` empties it between tests.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

import kg
from kg.server import free_loopback_port


class RdflibEndpointServer:
    """``rdflib-endpoint serve --enable-update`` on ``http://127.0.0.1:PORT/`` (queries and updates at the root)."""

    def __init__(self, log: Path, *, start_timeout: float = 60.0):
        binary = Path(sys.executable).with_name("rdflib-endpoint")
        port = free_loopback_port()
        self.query_url = self.update_url = f"http://127.0.0.1:{port}/"
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen([str(binary), "serve", "--host", "127.0.0.1", "--port", str(port),
                                             "--enable-update"], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"rdflib-endpoint exited with status {self.process.returncode}:\n{log.read_text()}")
            try:
                if requests.get(self.query_url, params={"query": "ASK {}"}, timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rdflib-endpoint did not answer within {start_timeout} s:\n{log.read_text()}")
            time.sleep(0.2)

    def wipe(self) -> None:
        store = kg.open_store(self.query_url, update_url=self.update_url)
        try:
            store.update("DROP SILENT ALL")
        finally:
            store.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
