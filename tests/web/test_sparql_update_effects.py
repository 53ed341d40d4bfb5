"""A curator's SPARQL Update is seen by the next search: the app does not keep serving a stale engine."""

from __future__ import annotations

import pytest
from livesite import WebClient, live_app
from synthetic import write_synthetic_cases

import ontology
from ontology.paper_terms import paper_terms

USERS = {"rita": ("radiologist", "rita-password-1"), "carl": ("curator", "carl-password-1")}
TERMS = [t.iri for t in paper_terms()]


def fill(store) -> None:
    ontology.load(store, ontology.BUNDLED_RADLEX)
    write_synthetic_cases(store, 12, 5)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with live_app(tmp_path_factory.mktemp("update-effects-data"), USERS, fill) as server:
        yield server.url


def client(site: str, user: str) -> WebClient:
    passwords = {name: password for name, (_, password) in USERS.items()}
    return WebClient(site, passwords).logged_in(user).with_api_token()


def diagnoses(rita: WebClient, query: str) -> dict[str, str]:
    r = rita.post("/api/v1/search", json={"case_id": query, "k": 11})
    assert r.status_code == 200, r.text
    return {h["case_id"]: h["diagnosis"] for h in r.json()["results"]}


def test_a_corrected_diagnosis_shows_in_the_next_search(site):
    rita, carl = client(site, "rita"), client(site, "carl")
    cases = [c["case_id"] for c in rita.get("/api/v1/cases", params={"limit": 50}).json()["cases"]]
    query, target = cases[0], cases[1]
    before = diagnoses(rita, query)
    assert before[target] != "corrected by the curator"
    update = ("DELETE { GRAPH ?g { ?c sg:diagnosis ?d } } INSERT { GRAPH ?g { ?c sg:diagnosis "
              '"corrected by the curator" } } WHERE { GRAPH ?g { ?c a sg:Case ; rdfs:label "%s" ; sg:diagnosis ?d } }'
              % target)
    r = carl.post("/sparql", data=update.encode(), headers={"Content-Type": "application/sparql-update"})
    assert r.status_code == 200, r.text
    after = diagnoses(rita, query)
    assert after[target] == "corrected by the curator"
    assert {c: d for c, d in after.items() if c != target} == {c: d for c, d in before.items() if c != target}
