"""An embedded store folder served over SPARQL 1.1 by an ``oxigraph serve`` child process on a loopback port.

An embedded Oxigraph folder can be opened by one process only (RocksDB's lock). When several processes must write
to one store (``semgraph serve --workers N``), one ``oxigraph serve`` process opens the folder and every worker
reaches it through :class:`kg.remote.RemoteStore` at :attr:`StoreServer.query_url` / :attr:`StoreServer.update_url`.
The server sees the union of the named graphs as its default graph, as the embedded backend does.

The server's output goes to ``<folder>.log``, never to a pipe: a pipe that nobody reads fills up and blocks the
server.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .errors import StoreError

__all__ = ["StoreServer", "free_loopback_port", "oxigraph_binary"]

_START_ATTEMPTS = 3


def oxigraph_binary() -> str:
    """Path of the ``oxigraph`` server binary (pip package ``oxigraph``); :class:`StoreError` when missing."""
    found = shutil.which("oxigraph") or str(Path(sys.executable).with_name("oxigraph"))
    if not Path(found).is_file():
        raise StoreError("the `oxigraph` server binary was not found (next to this Python or on PATH); "
                         "install it with `pip install oxigraph`")
    return found


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (another process may still take it before it is bound)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StoreServer:
    """``oxigraph serve --location FOLDER`` on a free loopback port, until :meth:`stop` (or the ``with`` block ends).

    The folder must not be open elsewhere: the server then exits at once and :class:`StoreError` quotes its log.
    With ``query_timeout`` (seconds, rounded up to whole seconds) the server cancels every query that runs longer
    (``oxigraph serve --timeout-s``): the evaluation stops and frees its CPU, and the client reads a cut answer.
    Updates are not cancelled. ``read_only`` serves the folder without the update endpoint (``serve-read-only``).
    The server's output goes to ``log`` (default: ``<folder>.server.log``). A positive ``niceness`` runs it at that
    lower CPU priority (``nice -n``), so that its queries yield the CPU to every normal process.
    """

    def __init__(self, folder: str | os.PathLike, *, start_timeout: float = 60.0,
                 query_timeout: float | None = None, read_only: bool = False, log: str | os.PathLike | None = None,
                 niceness: int = 0):
        if query_timeout is not None and not query_timeout > 0:
            raise StoreError(f"query_timeout must be positive seconds, got {query_timeout!r}")
        self.folder = Path(folder)
        self.read_only, self.niceness = read_only, niceness
        self.query_timeout = None if query_timeout is None else math.ceil(query_timeout)
        self.log = Path(log) if log is not None else self.folder.with_name(self.folder.name + ".server.log")
        self.process: subprocess.Popen | None = None
        for attempt in range(_START_ATTEMPTS):  # another process may take the free port before the server binds it
            self.port = free_loopback_port()
            if self._start(start_timeout):
                return
        raise StoreError(f"oxigraph serve did not start on {self.folder}: {self._log_tail()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def query_url(self) -> str:
        return self.url + "/query"

    @property
    def update_url(self) -> str:
        return self.url + "/update"

    def _start(self, timeout: float) -> bool:
        """Start the server; True once it answers, False if it exited early (port taken); StoreError on timeout."""
        command = [oxigraph_binary(), "serve-read-only" if self.read_only else "serve", "--location", str(self.folder), "--bind", f"127.0.0.1:{self.port}",
                   "--union-default-graph"]
        if self.query_timeout is not None:
            command += ["--timeout-s", str(self.query_timeout)]
        nice = shutil.which("nice") if self.niceness else None
        if nice:
            command = [nice, "-n", str(self.niceness), *command]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "ddress already in use" in self._log_tail():
                    return False
                raise StoreError(f"oxigraph serve could not open {self.folder} (is another process using it?): "
                                 f"{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.query_url + "?query=ASK%7B%7D", timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise StoreError(f"oxigraph serve did not answer within {timeout:g} s on {self.folder}: {self._log_tail()}")

    def _log_tail(self) -> str:
        """The server's error line (its log without the stack trace), else the end of its log."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        errors = [line for line in text.splitlines() if line.startswith("Error:")]
        return errors[-1] if errors else text[-500:].strip()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); its folder is then free again."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop the server at once (SIGKILL): for a read-only server whose queries must end now."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> StoreServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
