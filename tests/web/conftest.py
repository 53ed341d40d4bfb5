"""A real HTTP server for the web tests: the app on waitress in a thread, on a free loopback port.

Session-scoped: one temporary data folder with the RadLex subset loaded and one user per role. Tests that write
use their own graph IRIs or check the audit graph by activity IRI, so they do not depend on one another.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest
from livesite import LiveServer
from livesite import WebClient as Client

import ontology

PASSWORDS = {"rita": "rita-password-1", "carl": "carl-password-1", "rhea": "rhea-password-1",
             "ada": "ada-password-12"}
ROLES = {"rita": "radiologist", "carl": "curator", "rhea": "researcher", "ada": "admin"}
UPDATE_TOKEN = "test-update-token-0123456789"


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
        client = Client(self.url, PASSWORDS)
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
    # every client of these tests comes from 127.0.0.1: room for a timed-out query still running in the background
    app = create_app({"data_dir": str(data_dir), "SPARQL_UPDATE_TOKEN": UPDATE_TOKEN, "SPARQL_MAX_PER_CLIENT": 4,
                      "SPARQL_MAX_CONCURRENT": 4})
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
