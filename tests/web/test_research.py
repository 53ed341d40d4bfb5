"""The researchers' learned-relations page, downloads and JSON twins, over real HTTP (own app and data folder)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from livesite import WebClient, live_app
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF
from synthetic import write_synthetic_cases

import ontology
from kg.namespaces import SG
from ontology.paper_terms import paper_terms
from semgraph.feedback.sessions import start_session
from semgraph.graph.casegraph import Annotation, Case, write_case
from semgraph.retrieval.engine import Engine

TERMS = [t.iri for t in paper_terms()]
R = "http://radlex.org/RID/"
HYPO, WATER, SOFT = R + "RID6042", R + "RID43336", R + "RID43337"
SCRIPT = "<script>alert(1)</script>"
USERS = {"rhea": ("researcher", "rhea-password-1"), "carl": ("curator", "carl-password-1"),
         "ada": ("admin", "ada-password-123"), "rita": ("radiologist", "rita-password-1")}


def fill(store) -> None:
    """30 cases (26 synthetic, four hand-made) and three rounds: two by alice, one by a user named like markup."""
    ontology.load(store, ontology.BUNDLED_RADLEX)
    write_synthetic_cases(store, 26, 4)
    for j, (cid, vals) in enumerate({"Q": {HYPO: 0.9}, "REL": {WATER: 0.85}, "IRR": {SOFT: 0.9},
                                     "OTHER": {HYPO: 0.2}}.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis="cyst"), [Annotation("reader", vals)])
    engine = Engine.from_store(store)
    alice = start_session(store, engine, "Q", "alice")
    alice.feedback({"REL": "relevant", "IRR": "irrelevant"})
    alice.feedback({"REL": "relevant"})
    start_session(store, engine, "Q", SCRIPT).feedback({"REL": "relevant"})  # a user name holding markup


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with live_app(tmp_path_factory.mktemp("research-data"), USERS, fill) as server:
        store = server.app.extensions["semgraph"].store
        yield {"url": server.url, "D0": Engine.from_store(store).dissimilarity, "store": store}


def client(site, user=None) -> WebClient:
    c = WebClient(site["url"], {name: password for name, (_, password) in USERS.items()})
    return c.logged_in(user) if user else c


def pairs_in(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", m).strip() for m in re.findall(r'<td class="term-pair">(.*?)</td>', html)]


@pytest.mark.parametrize("user", ["rhea", "carl", "ada"])
def test_researchers_curators_and_admins_see_the_table(site, user):
    r = client(site, user).get("/research/relations")
    assert r.status_code == 200
    assert pairs_in(r.text) == ["water density ↔ hypodense", "soft tissue density ↔ hypodense"]  # by change


def test_other_roles_and_anonymous_are_refused(site):
    assert client(site, "rita").get("/research/relations").status_code == 403
    assert client(site, "rita").get("/api/v1/relations").status_code == 403
    assert client(site, "rita").get("/research/export.ttl").status_code == 403
    anon = client(site)
    r = anon.get("/research/relations")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert anon.get("/api/v1/relations").status_code == 401
    assert anon.get("/research/report.md").status_code == 302


def test_the_user_name_with_markup_is_escaped(site):
    html = client(site, "rhea").get("/research/relations").text
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_filters_and_sorting_are_server_side(site):
    c = client(site, "rhea")
    assert pairs_in(c.get("/research/relations", params={"term": "soft"}).text) == ["soft tissue density ↔ hypodense"]
    assert pairs_in(c.get("/research/relations", params={"min_sessions": "2"}).text) == ["water density ↔ hypodense"]
    assert pairs_in(c.get("/research/relations", params={"user": "alice", "min_change": "0.15"}).text) == \
        ["water density ↔ hypodense"]  # alice: -0.2; soft tissue moved by less than 0.1
    assert pairs_in(c.get("/research/relations", params={"since": "2999-01-01"}).text) == []
    assert pairs_in(c.get("/research/relations", params={"sort": "change", "order": "desc"}).text) == \
        ["soft tissue density ↔ hypodense", "water density ↔ hypodense"]
    html = c.get("/research/relations", params={"sort": "rounds", "order": "desc", "term": "hypo"}).text
    assert 'aria-sort="descending"' in html
    assert "term=hypo" in html  # sort links keep the filters
    for bad in ({"min_sessions": "0"}, {"min_sessions": "x"}, {"min_sessions": "²"}, {"min_change": "lots"},
                {"since": "soon"}, {"sort": "colour"}, {"order": "up"}):
        assert c.get("/research/relations", params=bad).status_code == 400, bad
        assert c.get("/api/v1/relations", params=bad).status_code == 400, bad


def test_json_twin(site):
    D0 = site["D0"]
    h, w = TERMS.index(HYPO), TERMS.index(WATER)
    data = client(site, "rhea").get("/api/v1/relations", params={"term": "water"}).json()
    assert data["count"] == 1
    (row,) = data["relations"]
    assert (row["label_a"], row["label_b"], row["rounds"], row["sessions"]) == ("water density", "hypodense", 3, 2)
    assert sorted(row["users"]) == sorted(["alice", SCRIPT])
    assert row["baseline"] == D0[h, w] and row["baseline_source"] == "before first round"
    assert row["learned"] == pytest.approx(D0[h, w] - 0.1)  # the latest edge: the second session's single step
    assert dt.datetime.fromisoformat(row["first"]) <= dt.datetime.fromisoformat(row["last"])
    proposals = client(site, "carl").get("/api/v1/relations/proposals").json()
    assert [p["kind"] for p in proposals["proposals"]] == ["related"]
    # 2 independent sessions (2 users), mean change -0.15: 2/3 * 3/4 * 0.5 = 0.25
    assert proposals["proposals"][0]["confidence"] == 0.25


def test_downloads(site):
    c = client(site, "rhea")
    r = c.get("/research/export.ttl")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/turtle")
    assert "attachment" in r.headers["Content-Disposition"]
    g = Graph().parse(data=r.text, format="turtle")
    assert len(set(g.subjects(SG.kind, Literal("learned")))) == 4
    jg = Graph().parse(data=c.get("/research/export.jsonld").text, format="json-ld")
    assert set(jg) == set(g)
    rows = list(csv.DictReader(io.StringIO(c.get("/research/export.csv", params={"user": "alice"}).text)))
    assert {r["user"] for r in rows} == {"alice"} and len(rows) == 3
    p = Graph().parse(data=c.get("/research/proposal.ttl").text, format="turtle")
    assert len(set(p.subjects(RDF.type, URIRef("https://w3id.org/semgraph/vocab#Proposal")))) == 1
    report = c.get("/research/report.md")
    assert report.headers["Content-Type"].startswith("text/markdown")
    assert "water density ↔ hypodense" in report.text and "confidence 0.250" in report.text
    assert c.get("/research/export.xml").status_code == 404
    assert c.get("/research/export.csv", params={"since": "nope"}).status_code == 400


def test_the_page_links_the_downloads_with_the_filters(site):
    html = client(site, "rhea").get("/research/relations", params={"user": "alice"}).text
    for name in ("export.ttl", "export.jsonld", "export.csv", "proposal.ttl", "report.md"):
        assert f"/research/{name}?user=alice" in html


def test_relations_are_in_the_openapi_document(site):
    paths = client(site).get("/api/v1/openapi.json").json()["paths"]
    assert {"/relations", "/relations/proposals"} <= set(paths)


# -- evidence for promotion ---------------------------------------------------------------------------------------


def test_evidence_for_promotion_page_and_json_twin(site):
    # min_sessions=2: one candidate, water density ↔ hypodense, made closer by alice (2 steps of 0.1) and by the
    # markup-named user (1 step): promoted at the mean of their final values, D0 − 0.15
    D0, h, w = site["D0"], TERMS.index(HYPO), TERMS.index(WATER)
    c = client(site, "rhea")
    data = c.get("/api/v1/relations/evidence", params={"min_sessions": "2"}).json()
    assert data["filters"] == {"min_sessions": 2} and data["reason"] is None
    (pair,) = data["pairs"]
    assert (pair["term_a"], pair["term_b"]) == (WATER, HYPO)
    assert (pair["old"], pair["new"]) == (pytest.approx(D0[h, w]), pytest.approx(D0[h, w] - 0.15))
    # held out: every case with a diagnosis that another patient's case shares, except the session's query and marks
    cases = Engine.from_store(site["store"]).cases
    shared = {x.case_id for x in cases if x.diagnosis and any(
        y.diagnosis == x.diagnosis and y.patient_id != x.patient_id for y in cases)}
    assert "OTHER" in shared and {"Q", "REL", "IRR"} <= shared
    assert set(data["queries"]) == shared - {"Q", "REL", "IRR"} and data["n_queries"] == len(shared) - 3
    counts = data["counts"]
    assert counts["better"] + counts["worse"] + counts["unchanged"] == data["n_queries"]
    assert data["difference"]["worse"] == pytest.approx(counts["worse"] / data["n_queries"], abs=1e-6)
    differences = [a - b for a, b in zip(data["ndcg_after"], data["ndcg_before"])]
    assert data["difference"]["difference"]["mean"] == pytest.approx(sum(differences) / len(differences), abs=1e-6)
    assert data["reading"].startswith(f"Promoting the 1 candidate pair would change mean NDCG@10 on "
                                      f"{data['n_queries']} held-out queries by ")

    html = c.get("/research/relations", params={"min_sessions": "2"}).text
    section = html[html.index('id="promotion-evidence"'):]
    assert "Measure it" in section and data["reading"] not in section  # computed only when asked
    html = c.get("/research/relations", params={"min_sessions": "2", "evidence": "1"}).text
    section = html[html.index('id="promotion-evidence"'):]
    assert "Evidence for promotion" in section
    assert data["reading"].replace("'", "&#39;") in section
    assert f"{data['mean_before']:.3f}" in section and f"{data['mean_after']:.3f}" in section
    worse = f"{counts['worse']} ({100 * data['difference']['worse']:.0f} %)"
    assert re.search(r"<th>Queries ranked worse</th><td class=\"num\">" + re.escape(worse), section)

    report = c.get("/research/report.md", params={"min_sessions": "2"}).text
    assert "## Evidence for promotion" in report and data["reading"] in report
    assert f"| held-out queries | {data['n_queries']} |" in report
    assert f"| queries ranked worse | {worse} |" in report


def test_evidence_says_why_when_there_is_nothing_to_promote(site):
    c = client(site, "rhea")
    data = c.get("/api/v1/relations/evidence", params={"min_sessions": "3"}).json()
    assert data["difference"] is None and data["n_queries"] == 0 and data["pairs"] == []
    assert data["reason"].startswith("no term pair was changed the same way by 3 or more independent sessions")
    html = c.get("/research/relations", params={"min_sessions": "3", "evidence": "1"}).text
    assert "Nothing to measure: no term pair was changed the same way by 3" in html
    assert 'id="evidence-table"' not in html
    report = c.get("/research/report.md", params={"min_sessions": "3"}).text
    assert "No learned term relations match" in report and "Evidence for promotion" not in report  # nothing learned


def test_evidence_is_for_researchers_only_and_checks_its_filter(site):
    assert client(site, "rita").get("/api/v1/relations/evidence").status_code == 403
    assert client(site).get("/api/v1/relations/evidence").status_code == 401
    assert client(site, "carl").get("/api/v1/relations/evidence", params={"min_sessions": "0"}).status_code == 400
    assert "/relations/evidence" in client(site).get("/api/v1/openapi.json").json()["paths"]
