"""Over real HTTP: the SHACL shapes at their stable address, and the SSSOM downloads of the researchers' page."""

from __future__ import annotations

import io
import json

import pytest
from livesite import WebClient, live_app
from rdflib import Graph, URIRef

import ontology
from semgraph.feedback.sessions import start_session
from semgraph.graph.casegraph import Annotation, Case, write_case
from semgraph.graph.shapes import shapes_graph
from semgraph.retrieval.engine import Engine

R = "http://radlex.org/RID/"
HYPO, WATER = R + "RID6042", R + "RID43336"
USERS = {"rhea": ("researcher", "rhea-password-1"), "rita": ("radiologist", "rita-password-1")}


def fill(store) -> None:
    """Three cases; alice marks REL (water density) relevant twice for Q (hypodense): one proposed related link."""
    ontology.load(store, ontology.BUNDLED_RADLEX)
    for j, (cid, vals) in enumerate({"Q": {HYPO: 0.9}, "REL": {WATER: 0.85}, "OTHER": {HYPO: 0.2}}.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis="cyst"), [Annotation("reader", vals)])
    session = start_session(store, Engine.from_store(store), "Q", "alice")
    session.feedback({"REL": "relevant"})
    session.feedback({"REL": "relevant"})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with live_app(tmp_path_factory.mktemp("shapes-site"), USERS, fill) as server:
        yield server.url


def test_the_shapes_are_public_at_a_stable_address(site):
    r = WebClient(site).get("/ns/shapes.ttl")  # nobody logged in
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/turtle; charset=utf-8"
    served = Graph().parse(data=r.text, format="turtle")
    assert len(served) == len(shapes_graph()) > 300
    assert (URIRef("https://w3id.org/semgraph/shapes#CaseShape"), None, None) in served


def test_the_research_page_serves_the_sssom_mapping_set(site):
    from sssom.parsers import parse_sssom_table

    rhea = WebClient(site, {"rhea": USERS["rhea"][1], "rita": USERS["rita"][1]}).logged_in("rhea")
    assert 'href="/research/mappings.sssom.tsv"' in rhea.get("/research/relations").text
    tsv = rhea.get("/research/mappings.sssom.tsv")
    assert tsv.status_code == 200 and tsv.headers["Content-Type"].startswith("text/tab-separated-values")
    assert tsv.headers["Content-Disposition"].endswith('.sssom.tsv"')
    (mapping,) = parse_sssom_table(io.StringIO(tsv.text)).to_mappings()
    # one session, one user, change -0.2: 1/2 * 1/2 * (0.2 / 0.3) = 0.167
    assert (mapping.subject_id, mapping.predicate_id, mapping.object_id, mapping.confidence) == \
        ("RADLEX:RID43336", "skos:relatedMatch", "RADLEX:RID6042", 0.167)
    assert mapping.author_id == ["sguser:alice"] and len(mapping.see_also) == 2
    js = rhea.get("/research/mappings.sssom.json", params={"user": "nobody"})
    assert js.status_code == 200 and js.headers["Content-Type"].startswith("application/json")
    data = json.loads(js.text)  # no user named nobody: an empty mapping set, with its metadata
    assert data.get("mappings", []) == [] and data["license"].startswith("https://creativecommons.org/")
    rita = WebClient(site, {"rita": USERS["rita"][1]}).logged_in("rita")
    assert rita.get("/research/mappings.sssom.tsv").status_code == 403
