"""A real HTTP server for the web tests: the app on waitress in a thread, on a free loopback port.

Session-scoped: one temporary data folder with the RadLex subset loaded and one user per role. Tests that write
use their own graph IRIs or check the audit graph by activity IRI, so they do not depend on one another.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass

import pytest
import requests

import ontology

PASSWORDS = {"rita": "rita-password-1", "carl": "carl-password-1", "rhea": "rhea-password-1",
             "ada": "ada-password-12"}
ROLES = {"rita": "radiologist", "carl": "curator", "rhea": "researcher", "ada": "admin"}
UPDATE_TOKEN = "test-update-token-0123456789"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class LiveServer:
    """Serve a Flask app with waitress on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        from waitress import create_server

        self.app = app
        self.server = create_server(app, host="127.0.0.1", port=0, threads=8)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="waitress-test", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.close()
        self.thread.join(timeout=10)


class Client:
    """A requests session against the live server, with cookie handling and login/CSRF helpers."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        return self.http.get(self.base + path, timeout=30, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        return self.http.post(self.base + path, timeout=30, **kw)

    def csrf(self, path: str = "/login") -> str:
        """The CSRF token of this session, read from a page's form."""
        match = _CSRF.search(self.get(path).text)
        assert match, f"no CSRF token in {path}"
        return match.group(1)

    def login(self, name: str, password: str | None = None) -> requests.Response:
        token = self.csrf("/login")
        return self.post("/login", data={"name": name, "password": password or PASSWORDS[name],
                                         "csrf_token": token})


@dataclass
class Site:
    server: LiveServer
    data_dir: str
    passwords = PASSWORDS
    roles = ROLES
    update_token = UPDATE_TOKEN

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def app(self):
        return self.server.app

    @property
    def store(self):
        return self.app.extensions["semgraph"].store

    def client(self, user: str | None = None) -> Client:
        client = Client(self.url)
        if user is not None:
            response = client.login(user)
            assert response.status_code == 302, response.text
        return client

    @contextlib.contextmanager
    def settings(self, **values):
        """Change app settings (e.g. SPARQL limits) for the duration of a block."""
        old = {k: self.app.config[k] for k in values}
        self.app.config.update(values)
        try:
            yield
        finally:
            self.app.config.update(old)


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    from webapp import create_app

    data_dir = tmp_path_factory.mktemp("web-data")
    app = create_app({"data_dir": str(data_dir), "SPARQL_UPDATE_TOKEN": UPDATE_TOKEN})
    services = app.extensions["semgraph"]
    ontology.load(services.store, ontology.BUNDLED_RADLEX)
    for name, role in ROLES.items():
        services.users.add(name, role, PASSWORDS[name])
    server = LiveServer(app)
    yield Site(server, str(data_dir))
    server.stop()
    services.close()


@pytest.fixture
def anon(site) -> Client:
    return site.client()


@pytest.fixture
def curator(site) -> Client:
    return site.client("carl")
