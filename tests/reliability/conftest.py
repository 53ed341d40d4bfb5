"""Shared helpers of the reliability tests: a filled store (ontology, cases, baseline, feedback rounds)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import requests
from livesite import LiveServer, WebClient
from synthetic import write_synthetic_cases

import ontology
from ontology.paper_terms import paper_terms
from semgraph.retrieval.engine import Engine
from semgraph.retrieval.similarity import write_baseline

TERMS = [t.iri for t in paper_terms()]


def fill(store, n: int = 24, seed: int = 3) -> None:
    """The bundled RadLex subset, ``n`` synthetic cases with predicted likelihoods, and the ontological baseline."""
    ontology.load(store, "radlex-liver")
    write_synthetic_cases(store, n, seed,
                          lambda i: dict(study_date=dt.date(2021, 1, 1) + dt.timedelta(days=7 * i), age=30 + i,
                                         sex="FM"[i % 2]))
    D0 = ontology.dissimilarity_matrix(store, TERMS)
    write_baseline(store, TERMS, D0, kind="ontology", provenance={"measure": "kurtz"})


def marks_for(engine: Engine, query: str, seed: int) -> dict[str, str]:
    """Three marks on cases other than the query (deterministic from ``seed``)."""
    rng = np.random.default_rng(seed)
    others = [c for c in engine.ids if c != query]
    picked = rng.choice(len(others), size=3, replace=False)
    return {others[int(i)]: v for i, v in zip(picked, ("relevant", "irrelevant", "relevant"))}


@pytest.fixture
def filled(store):
    """A store (each backend) with ontology, 24 cases and the baseline; returns (store, engine)."""
    fill(store)
    return store, Engine.from_store(store)


# --------------------------------------------------------------------------------------------- live web app

PASSWORDS = {"rita": "rita-password-1", "carl": "carl-password-1", "rhea": "rhea-password-1"}
ROLES = {"rita": "radiologist", "carl": "curator", "rhea": "researcher"}


class Live:
    """The web app on waitress (loopback, free port) over a filled store, with one user per role."""

    def __init__(self, data_dir, **settings):
        from webapp import create_app

        self.app = create_app({"data_dir": str(data_dir), **settings})
        self.services = self.app.extensions["semgraph"]
        fill(self.services.store, n=12)
        for name, role in ROLES.items():
            self.services.users.add(name, role, PASSWORDS[name])
        self.server = LiveServer(self.app)
        self.url = self.server.url

    @property
    def store(self):
        return self.services.store

    def session(self, user: str | None = None) -> requests.Session:
        """A requests session, logged in as ``user`` if given."""
        client = WebClient(self.url, PASSWORDS)
        return (client.logged_in(user) if user is not None else client).http

    def snapshot(self) -> int:
        """Quads outside the audit graph (which records accepted updates)."""
        return int(self.store.select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } "
                                     "FILTER(?g != <https://w3id.org/semgraph/graph/audit>) }")[0]["n"])

    def stop(self) -> None:
        self.server.stop()
        self.services.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    site = Live(tmp_path_factory.mktemp("live"), SPARQL_UPDATE_TOKEN="reliability-token-0123456789",
                SPARQL_MAX_ROWS=200, MAX_CONTENT_LENGTH=256 * 1024, SPARQL_MAX_QUERY_LENGTH=20_000)
    yield site
    site.stop()
