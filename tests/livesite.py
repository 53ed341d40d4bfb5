"""Shared by the web, browser and reliability tests: the app on a real HTTP server, and a client for it.

Importable as ``livesite`` (pytest puts ``tests/`` on ``sys.path``, see ``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class LiveServer:
    """Serve a Flask app with waitress on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app, threads: int = 8):
        from waitress import create_server

        self.app = app
        self.server = create_server(app, host="127.0.0.1", port=0, threads=threads)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="waitress-test", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.close()
        self.thread.join(timeout=10)


@contextmanager
def live_app(data_dir: Path, users: Mapping[str, tuple[str, str]], fill: Callable | None = None, *,
             threads: int = 4, **settings) -> Iterator[LiveServer]:
    """A new app over ``data_dir`` with ``users`` (name → (role, password)), ``fill(store)`` run first, served.

    The server is stopped and the app's store closed when the block ends.
    """
    from webapp import create_app

    app = create_app({"data_dir": str(data_dir), **settings})
    services = app.extensions["semgraph"]
    try:
        if fill is not None:
            fill(services.store)
        for name, (role, password) in users.items():
            services.users.add(name, role, password)
        server = LiveServer(app, threads)
        try:
            yield server
        finally:
            server.stop()
    finally:
        services.close()


class WebClient:
    """A requests session against a live server, with login and CSRF helpers; redirects are not followed."""

    def __init__(self, base: str, passwords: Mapping[str, str] | None = None):
        self.base = base
        self.passwords = dict(passwords or {})
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        return self.http.get(self.base + path, timeout=60, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        return self.http.post(self.base + path, timeout=60, **kw)

    def csrf(self, path: str = "/login") -> str:
        """The CSRF token of this session, read from a page's form."""
        match = _CSRF.search(self.get(path).text)
        assert match, f"no CSRF token in {path}"
        return match.group(1)

    def login(self, name: str, password: str | None = None) -> requests.Response:
        """Post the login form; the caller checks the answer (302 on success)."""
        token = self.csrf("/login")
        return self.post("/login", data={"name": name, "password": password or self.passwords[name],
                                         "csrf_token": token})

    def logged_in(self, name: str) -> WebClient:
        """Log in as ``name`` (asserting that it worked) and return this client."""
        response = self.login(name)
        assert response.status_code == 302, response.text
        return self

    def with_api_token(self) -> WebClient:
        """Send the session's CSRF token (from ``/api/v1/me``) as ``X-CSRF-Token``, as JSON API writes need."""
        self.http.headers["X-CSRF-Token"] = self.get("/api/v1/me").json()["csrf_token"]
        return self


class Served:
    """``semgraph serve`` over ``data`` in a subprocess on a free loopback port (``extra`` CLI options, ``SEMGRAPH_*``
    settings from ``env``); stderr goes to ``serve.log`` beside ``data``. :meth:`stop` sends SIGTERM and waits."""

    def __init__(self, data: Path, *extra: str, env: Mapping[str, str] | None = None):
        self.data = data
        self.log = data.with_name("serve.log")
        with open(self.log, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from semgraph.cli import main; main()", "--data-dir", str(data), "serve",
                 "--port", "0", *extra], stdout=subprocess.PIPE, stderr=err, text=True,
                env={**os.environ, **(env or {})})
        line = self.banner = self.process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if found is None:
            self.stop()
            raise RuntimeError(f"no URL in {line!r}: {self.log.read_text()[-2000:]}")
        self.url = found.group(0)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=90)
        self.process.stdout.close()
        return code
