"""The JSON API under /api/v1 and its OpenAPI document."""

from __future__ import annotations

import re

import pytest

RID = "http://radlex.org/RID/"


def test_status(anon):
    status = anon.get("/api/v1/status").json()
    assert status["ontologies"] == ["radlex-liver"]
    assert status["store"]["backend"] == "EmbeddedStore"
    assert status["users"] >= 4


def test_ontologies(anon):
    (info,) = anon.get("/api/v1/ontologies").json()
    assert info["name"] == "radlex-liver"
    assert info["graph"] == "https://w3id.org/semgraph/graph/ontology/radlex-liver"
    assert info["root"] == RID + "RID1"


def test_terms_are_the_vocabulary_in_order(anon):
    terms = anon.get("/api/v1/terms").json()
    assert len(terms) == 19
    by_rid = {t["rid"]: t for t in terms}
    assert by_rid["RID5715"]["label"] == "irregular margin"
    assert by_rid["RID5715"]["category"] == "lesion margin and contour"
    assert "irregular margin" in by_rid["RID5715"]["labels"]
    assert by_rid["RID5709"]["paper_label"] == "poorly-defined margin"


def test_term(anon):
    term = anon.get("/api/v1/terms/RID5715").json()
    assert term["label"] == "irregular margin"
    assert [p["rid"] for p in term["parents"]] == ["RID34355"]
    assert term["in_vocabulary"] is True


def test_dissimilarity_of_siblings(anon):
    # RID5715 and RID5709 are both direct children of RID34355 (radlex_liver_subset.ttl).
    d = anon.get("/api/v1/terms/RID5715/dissimilarity", params={"to": "RID5709", "measure": "wu-palmer"}).json()
    assert d["path_length"] == 2
    assert d["lca"]["iri"] == RID + "RID34355"
    depth = anon.get("/api/v1/terms/RID34355").json()["depth"]
    # wu-palmer = 1 - 2·depth(LCA)/(depth(a)+depth(b)) with both at depth(LCA)+1
    assert d["raw"] == pytest.approx(1 - 2 * depth / (2 * (depth + 1)))
    assert d["value"] == pytest.approx(d["raw"])


def test_dissimilarity_is_zero_to_itself_and_symmetric(anon):
    same = anon.get("/api/v1/terms/RID5715/dissimilarity", params={"to": "RID5715"}).json()
    assert same["value"] == 0 and same["raw"] == 0
    ab = anon.get("/api/v1/terms/RID5715/dissimilarity", params={"to": "RID5709"}).json()
    ba = anon.get("/api/v1/terms/RID5709/dissimilarity", params={"to": "RID5715"}).json()
    assert ab["value"] == pytest.approx(ba["value"])
    assert 0 < ab["value"] <= 1
    assert ab["normalised_over"] == "vocabulary"


@pytest.mark.parametrize("params,status", [
    ({"to": "RID5709", "measure": "nope"}, 400),
    ({}, 400),
    ({"to": "banana"}, 400),
    ({"to": "RID999999999"}, 404),
])
def test_dissimilarity_errors(anon, params, status):
    response = anon.get("/api/v1/terms/RID5715/dissimilarity", params=params)
    assert response.status_code == status
    assert response.json()["error"]["status"] == status


def test_me_needs_login(site, anon):
    assert anon.get("/api/v1/me").status_code == 401
    assert site.client("rhea").get("/api/v1/me").json()["role"] == "researcher"


def test_openapi_document_lists_the_implemented_paths(site, anon):
    response = anon.get("/api/v1/openapi.json")
    assert response.headers["Content-Type"].startswith("application/json")
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "/api/v1"}]
    expected = {"/openapi.json", "/status", "/ontologies", "/terms", "/terms/{rid}", "/terms/{rid}/dissimilarity",
                "/me"}
    assert expected <= set(doc["paths"])
    # every documented path is a real route, and every API route is documented
    rules = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule)[len("/api/v1"):]
             for r in site.app.url_map.iter_rules() if r.rule.startswith("/api/v1/")}
    assert rules == set(doc["paths"])
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert {"200", "201"} & set(op["responses"]), (path, method)
    refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', response.text.replace('":"', '": "'))
    assert set(refs) <= set(doc["components"]["schemas"])
