"""The SPARQL 1.1 Protocol endpoint over real HTTP: query forms, result formats, errors, updates and limits."""

from __future__ import annotations

import csv
import io
import uuid
import xml.etree.ElementTree as ET

import pytest
from rdflib import Graph, Literal, URIRef

LABEL_QUERY = "SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }"
SRX = "{http://www.w3.org/2005/sparql-results#}"
RID = "http://radlex.org/RID/"
SUBCLASS = URIRef("http://www.w3.org/2000/01/rdf-schema#subClassOf")


def _label_binding(payload: dict) -> dict:
    (row,) = payload["results"]["bindings"]
    return row["l"]


def test_get_returns_sparql_json(anon):
    response = anon.get("/sparql", params={"query": LABEL_QUERY},
                        headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/sparql-results+json")
    payload = response.json()
    assert payload["head"]["vars"] == ["l"]
    assert _label_binding(payload) == {"type": "literal", "value": "irregular margin", "xml:lang": "en"}


def test_post_form_encoded(anon):
    response = anon.post("/sparql", data={"query": LABEL_QUERY})
    assert response.status_code == 200
    assert _label_binding(response.json())["value"] == "irregular margin"


def test_post_direct(anon):
    response = anon.post("/sparql", data=LABEL_QUERY.encode(),
                         headers={"Content-Type": "application/sparql-query", "Accept": "application/json"})
    assert response.status_code == 200
    assert _label_binding(response.json())["value"] == "irregular margin"


def test_xml_results(anon):
    response = anon.get("/sparql", params={"query": LABEL_QUERY}, headers={"Accept": "application/sparql-results+xml"})
    assert response.headers["Content-Type"].startswith("application/sparql-results+xml")
    root = ET.fromstring(response.content)
    assert [v.get("name") for v in root.find(f"{SRX}head")] == ["l"]
    literal = root.find(f"{SRX}results/{SRX}result/{SRX}binding/{SRX}literal")
    assert literal.text == "irregular margin"
    assert literal.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"


def test_xml_ask(anon):
    response = anon.get("/sparql", params={"query": "ASK { rid:RID5715 rdfs:subClassOf rid:RID34355 }"},
                        headers={"Accept": "application/sparql-results+xml"})
    root = ET.fromstring(response.content)
    assert root.find(f"{SRX}boolean").text == "true"


def test_xml_escapes_markup(site, anon):
    graph = URIRef(f"urn:test:{uuid.uuid4().hex}")
    site.store.update("INSERT DATA { GRAPH $g { <urn:x:a> rdfs:comment $c } }", {"g": graph, "c": "a < b & <c>"})
    response = anon.get("/sparql", params={"query": "SELECT ?c WHERE { <urn:x:a> rdfs:comment ?c }"},
                        headers={"Accept": "application/sparql-results+xml"})
    root = ET.fromstring(response.content)
    assert root.find(f"{SRX}results/{SRX}result/{SRX}binding/{SRX}literal").text == "a < b & <c>"
    site.store.drop(str(graph))


def test_csv_and_tsv(anon):
    query = "SELECT ?t ?l WHERE { VALUES ?t { rid:RID5715 } ?t rdfs:label ?l }"
    text = anon.get("/sparql", params={"query": query}, headers={"Accept": "text/csv"}).text
    assert list(csv.reader(io.StringIO(text))) == [["t", "l"], [RID + "RID5715", "irregular margin"]]
    response = anon.get("/sparql", params={"query": query}, headers={"Accept": "text/tab-separated-values"})
    assert response.text.splitlines() == ["?t\t?l", f"<{RID}RID5715>\t\"irregular margin\"@en"]


@pytest.mark.parametrize("accept,fmt", [("text/turtle", "turtle"), ("application/n-triples", "nt")])
def test_construct_as_turtle_and_ntriples(anon, accept, fmt):
    query = "CONSTRUCT { ?s rdfs:subClassOf ?o } WHERE { VALUES ?s { rid:RID5715 } ?s rdfs:subClassOf ?o }"
    response = anon.get("/sparql", params={"query": query}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(accept)
    graph = Graph().parse(data=response.text, format=fmt)
    assert set(graph) == {(URIRef(RID + "RID5715"), SUBCLASS, URIRef(RID + "RID34355"))}


def test_format_parameter_overrides_accept(anon):
    response = anon.get("/sparql", params={"query": LABEL_QUERY, "format": "csv"}, headers={"Accept": "application/json"})
    assert response.headers["Content-Type"].startswith("text/csv")


def test_dollar_variables_are_plain_variables(anon):
    response = anon.get("/sparql", params={"query": "SELECT $l WHERE { rid:RID5715 rdfs:label $l }"})
    assert _label_binding(response.json())["value"] == "irregular margin"


def test_bad_query_gives_400_with_the_parser_message(anon):
    response = anon.get("/sparql", params={"query": "SELECT ?x WHERE { ?x rdfs:label }"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["title"] == "Invalid query"
    assert "malformed SPARQL query" in error["message"]


def test_missing_query_gives_400(anon):
    response = anon.get("/sparql", headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 400


def test_browser_without_query_gets_the_query_page(anon):
    response = anon.get("/sparql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200
    assert "<textarea" in response.text


def test_unacceptable_media_type_gives_406(anon):
    response = anon.get("/sparql", params={"query": LABEL_QUERY}, headers={"Accept": "image/png"})
    assert response.status_code == 406


def test_unknown_body_type_gives_415(anon):
    response = anon.post("/sparql", data=LABEL_QUERY, headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_update_via_get_is_refused(anon):
    response = anon.get("/sparql", params={"update": "CLEAR ALL"})
    assert response.status_code == 400


# -- updates --------------------------------------------------------------------------------------------------
def _insert(graph: URIRef, value: str) -> str:
    return f'INSERT DATA {{ GRAPH <{graph}> {{ <urn:x:s> <urn:x:p> "{value}" }} }}'


def _has(site, graph: URIRef) -> bool:
    return site.store.ask("ASK { GRAPH $g { ?s ?p ?o } }", {"g": graph})


def _audit(site, activity: str) -> dict:
    rows = site.store.select(
        "SELECT ?agent ?type ?text ?time WHERE { GRAPH <https://w3id.org/semgraph/graph/audit> { "
        "$a a prov:Activity ; prov:wasAssociatedWith ?agent ; prov:startedAtTime ?time ; "
        "prov:used [ prov:value ?text ] . ?agent a ?type } }", {"a": URIRef(activity)})
    assert len(rows) == 1, rows
    return rows[0]


def test_anonymous_update_is_refused_and_writes_nothing(site, anon):
    graph = URIRef(f"urn:test:{uuid.uuid4().hex}")
    before = site.store.count()
    response = anon.post("/sparql", data=_insert(graph, "x"), headers={"Content-Type": "application/sparql-update"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert not _has(site, graph)
    assert site.store.count() == before


@pytest.mark.parametrize("user", ["rita", "rhea"])
def test_update_without_the_role_is_forbidden(site, user):
    client = site.client(user)
    graph = URIRef(f"urn:test:{uuid.uuid4().hex}")
    response = client.post("/sparql", data={"update": _insert(graph, "x"), "csrf_token": client.csrf("/query")})
    assert response.status_code == 403
    assert not _has(site, graph)


def test_wrong_token_is_refused(site, anon):
    graph = URIRef(f"urn:test:{uuid.uuid4().hex}")
    response = anon.post("/sparql", data=_insert(graph, "x"),
                         headers={"Content-Type": "application/sparql-update", "Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert not _has(site, graph)


def test_curator_update_is_applied_and_audited(site, curator):
    graph = URIRef(f"urn:test:{uuid.uuid4().hex}")
    text = _insert(graph, "curated")
    response = curator.post("/sparql", data={"update": text, "csrf_token": curator.csrf("/query")})
    assert response.status_code == 200, response.text
    assert site.store.ask("ASK { GRAPH $g { <urn:x:s> <urn:x:p> \"curated\" } }", {"g": graph})
    record = _audit(site, response.json()["activity"])
    assert record["agent"] == URIRef("https://w3id.org/semgraph/id/user/carl")
    assert record["type"] == URIRef("http://www.w3.org/ns/prov#Person")
    assert str(record["text"]) == text


def test_curator_form_update_needs_the_csrf_token(site, curator):
    graph = URIRef(f"urn:test:{uuid.uuid4().hex}")
    response = curator.post("/sparql", data={"update": _insert(graph, "x")})
    assert response.status_code == 400
    assert not _has(site, graph)


def test_admin_may_update_with_a_direct_post(site):
    admin = site.client("ada")
    graph = URIRef(f"urn:test:{uuid.uuid4().hex}")
    response = admin.post("/sparql", data={"update": _insert(graph, "x"), "csrf_token": admin.csrf("/query")})
    assert response.status_code == 200
    assert _has(site, graph)


def test_token_update_is_applied_and_audited(site, anon):
    graph = URIRef(f"urn:test:{uuid.uuid4().hex}")
    text = "PREFIX prov: <http://evil.example/> " + _insert(graph, "by token") + " ;"
    response = anon.post("/sparql", data=text.encode(), headers={
        "Content-Type": "application/sparql-update", "Authorization": f"Bearer {site.update_token}"})
    assert response.status_code == 200, response.text
    assert _has(site, graph)
    record = _audit(site, response.json()["activity"])  # prov: redeclared by the client does not leak in
    assert record["agent"] == URIRef("https://w3id.org/semgraph/id/agent/sparql-update-token")
    assert str(record["text"]) == text


def test_malformed_update_writes_nothing_not_even_an_audit_record(site, curator):
    before = site.store.count()
    response = curator.post("/sparql", data={"update": 'INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> } }',
                                             "csrf_token": curator.csrf("/query")})
    assert response.status_code == 400
    assert site.store.count() == before


def test_unterminated_string_cannot_swallow_the_audit_record(site, curator):
    before = site.store.count()
    response = curator.post("/sparql", data={"update": 'INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> """open',
                                             "csrf_token": curator.csrf("/query")})
    assert response.status_code == 400
    assert site.store.count() == before


# -- limits ---------------------------------------------------------------------------------------------------
def test_result_over_the_row_limit_is_refused(site, anon):
    query = "SELECT ?t WHERE { VALUES ?t { 1 2 3 4 5 6 } }"
    with site.settings(SPARQL_MAX_ROWS=5):
        response = anon.get("/sparql", params={"query": query})
        assert response.status_code == 400
        assert response.json()["error"]["title"] == "Result too large"
        ok = anon.get("/sparql", params={"query": query + " LIMIT 5"})
        assert ok.status_code == 200
        assert len(ok.json()["results"]["bindings"]) == 5


def test_construct_over_the_limit_is_refused(site, anon):
    query = "CONSTRUCT { ?s rdfs:label ?l } WHERE { ?s rdfs:label ?l } LIMIT 3"
    with site.settings(SPARQL_MAX_ROWS=2):
        assert anon.get("/sparql", params={"query": query}, headers={"Accept": "text/turtle"}).status_code == 400


def test_slow_query_times_out_with_503(site, anon):
    slow = ("SELECT (COUNT(*) AS ?n) WHERE { ?a rdfs:label ?x . ?b rdfs:label ?y . "
            "FILTER(STRLEN(?x) < STRLEN(?y)) }")
    with site.settings(SPARQL_TIMEOUT=0.2):
        response = anon.get("/sparql", params={"query": slow})
    assert response.status_code == 503
    assert response.json()["error"]["title"] == "Query timed out"


def test_overlong_query_is_refused_with_413(site, anon):
    with site.settings(SPARQL_MAX_QUERY_LENGTH=100):
        response = anon.post("/sparql", data={"query": LABEL_QUERY + " #" + "x" * 200})
    assert response.status_code == 413


def test_literal_results_keep_their_datatype(anon):
    response = anon.get("/sparql", params={"query": "SELECT (1 + 1 AS ?n) WHERE {}"})
    (row,) = response.json()["results"]["bindings"]
    assert row["n"] == {"type": "literal", "value": "2", "datatype": "http://www.w3.org/2001/XMLSchema#integer"}
    assert Literal(row["n"]["value"], datatype=URIRef(row["n"]["datatype"])).toPython() == 2
