"""The text-search page and its JSON twins over real HTTP (own app and data folder with 30 captioned cases)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import requests
from livesite import WebClient, live_app
from synthetic import write_synthetic_cases

import ontology
from kg.namespaces import ANNOTATIONS_GRAPH
from ontology.paper_terms import paper_terms
from semgraph.graph.casegraph import Annotation, Case, case_iri, write_case
from semgraph.text.captions import write_captions

TERMS = [t.iri for t in paper_terms()]
R = "http://radlex.org/RID/"
HYPO, WATER = R + "RID6042", R + "RID43336"
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
USERS = {"rita": ("radiologist", "rita-password-1"), "rhea": ("researcher", "rhea-password-1")}
TEXT = "Well-defined hypodense lesion, no enhancement"


def fill(store):
    """29 cases: 24 synthetic, patient PT with three dated studies, and one case whose diagnosis holds markup."""
    ontology.load(store, ontology.BUNDLED_RADLEX)
    write_synthetic_cases(store, 24, 7,
                          lambda i: {"study_date": dt.date(2021, 1, 1) + dt.timedelta(days=5 * i), "age": 50,
                                     "sex": "F"})
    for n, day in enumerate([dt.date(2020, 1, 1), dt.date(2020, 6, 1), dt.date(2021, 1, 1)], start=1):
        write_case(store, Case(f"T{n}", "PT", f"ST{n}", diagnosis="cyst", study_date=day),
                   [Annotation("reader", {HYPO: 0.9, WATER: 0.8})])
    write_case(store, Case("X1", "PX1", "SX1", diagnosis=SCRIPT), [Annotation("reader", {HYPO: 0.95})])
    write_case(store, Case("X2", "PX2", "SX2", diagnosis="cyst"), [Annotation("reader", {HYPO: 0.7})])
    write_captions(store)
    store.update("DELETE { GRAPH $g { $c sg:caption ?old } } INSERT { GRAPH $g { $c sg:caption $new } } "
                 "WHERE { GRAPH $g { $c sg:caption ?old } }", {"g": ANNOTATIONS_GRAPH, "c": case_iri("X2"),
                                                                "new": "hypodense lesion " + SCRIPT})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with live_app(tmp_path_factory.mktemp("textsearch-data"), USERS, fill) as server:
        yield server.url


def client(site: str, user: str | None = None) -> WebClient:
    c = WebClient(site, {name: password for name, (_, password) in USERS.items()})
    return c.logged_in(user) if user else c


@pytest.fixture
def rita(site) -> WebClient:
    return client(site, "rita")


def test_logged_in_users_only(site):
    anon = client(site)
    r = anon.get("/search", params={"q": TEXT})
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    for path in ("/api/v1/parse?text=hypodense", "/api/v1/search/text?q=hypodense", "/api/v1/cases/T1/timeline",
                 "/api/v1/cases/T1/suggestion"):
        assert anon.get(path).status_code == 401, path
    assert client(site, "rhea").get("/search").status_code == 200


def test_parse_gives_the_chips(rita):
    data = rita.get("/api/v1/parse", params={"text": TEXT}).json()
    chips = [(c["kind"], c["words"], c["label"]) for c in data["chips"]]
    assert chips == [("term", "Well-defined", "circumscribed margin"), ("term", "hypodense", "hypodense"),
                     ("negated", "enhancement", "enhancing"), ("derived", "enhancement", "nonenhancing"),
                     ("ignored", "lesion", "lesion")]
    assert data["ignored"] == ["lesion"]
    assert rita.get("/api/v1/parse", params={"text": "  "}).status_code == 400
    assert rita.get("/api/v1/parse", params={"text": "x" * 2001}).status_code == 400


def test_search_json_with_both_components_and_groups(rita):
    data = rita.get("/api/v1/search/text", params={"q": TEXT, "group": "diagnosis", "k": "30"}).json()
    hits = data["hits"]
    assert len(hits) == 29 and [h["rank"] for h in hits] == list(range(1, 30))  # all 29 cases
    assert (data["w_img"], data["w_txt"]) == (0.7, 0.3)
    for h in hits:
        assert h["score"] == pytest.approx(0.7 * h["sim_img"] + 0.3 * h["sim_txt"])
        assert h["caption"].startswith("Liver lesion") or h["case_id"] == "X2"
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    groups = data["groups"]
    assert [g["best_rank"] for g in groups] == sorted(g["best_rank"] for g in groups)
    assert sorted(m["case_id"] for g in groups for m in g["members"]) == sorted(h["case_id"] for h in hits)
    diagnosis = {h["case_id"]: h["diagnosis"] for h in hits}
    for g in groups:
        assert {diagnosis[m["case_id"]] for m in g["members"]} == {g["key"]}
    assert data["suggestion"]["disclaimer"].startswith("Decision support only")
    patients = rita.get("/api/v1/search/text", params={"q": TEXT, "group": "patient", "k": "30"}).json()["groups"]
    assert [m["case_id"] for g in patients if g["key"] == "PT" for m in g["members"]] != []
    clusters = rita.get("/api/v1/search/text", params={"q": TEXT, "group": "cluster", "k": "10"}).json()["groups"]
    assert clusters[0]["key"] == "cluster 1"
    weighted = rita.get("/api/v1/search/text", params={"q": TEXT, "w_img": "0.2"}).json()
    assert (weighted["w_img"], weighted["w_txt"]) == (0.2, 0.8)


def test_a_case_with_a_note_is_queried_by_hsbd_fused_with_the_note(rita):
    # T1..T3 and X2 hold hypodense (+ water density) likelihoods; T1 is the query, the note asks for no enhancement
    image_only = rita.get("/api/v1/search/text", params={"q": "no enhancement", "like": "T1", "w_img": "1",
                                                         "k": "40"}).json()
    ids = [h["case_id"] for h in image_only["hits"]]
    assert "T1" not in ids and len(ids) == 28 and image_only["like"] == "T1"
    assert ids[:2] == ["T2", "T3"] and image_only["hits"][0]["sim_img"] == pytest.approx(1.0)  # identical vectors
    fused = rita.get("/api/v1/search/text", params={"q": "no enhancement", "like": "T1"}).json()
    for h in fused["hits"]:
        assert h["score"] == pytest.approx(0.7 * h["sim_img"] + 0.3 * h["sim_txt"])
    assert [c for c in fused["chips"] if c["kind"] == "negated"]  # "enhancement" was read as negated
    assert rita.get("/api/v1/search/text", params={"q": "x", "like": "NOPE"}).status_code == 404
    page = rita.get("/search", params={"q": "no enhancement", "like": "T1"}).text
    assert "is a note on case" in page and 'name="like" value="T1"' in page


@pytest.mark.parametrize("params", [{"q": ""}, {"q": TEXT, "group": "colour"}, {"q": TEXT, "k": "0"},
                                    {"q": TEXT, "k": "abc"}, {"q": TEXT, "w_img": "2"}, {"q": TEXT, "w_img": "x"}])
def test_bad_search_parameters(rita, params):
    assert rita.get("/api/v1/search/text", params=params).status_code == 400
    if params.get("q"):
        assert rita.get("/search", params=params).status_code == 400


def test_page_shows_grouped_results_with_scores_and_captions(rita):
    html = rita.get("/search", params={"q": TEXT, "group": "diagnosis", "k": "30"}).text
    heads = re.findall(r'<div class="group-head" data-group="([^"]+)">', html)
    assert len(heads) >= 2 and len(heads) == len(set(heads))
    assert html.count('<li data-case="') == 29
    assert "img " in html and "txt " in html and "Liver lesion" in html
    assert 'class="chip negated"' in html and 'class="chip ignored"' in html
    assert "Decision support only" in html
    assert '<script src="/static/textsearch.js"></script>' in html


def test_captions_and_diagnoses_with_markup_are_escaped(rita):
    html = rita.get("/search", params={"q": "hypodense lesion", "k": "200", "group": "diagnosis"}).text
    assert 'data-case="X1"' in html and 'data-case="X2"' in html
    assert SCRIPT not in html
    assert html.count(ESCAPED) >= 2  # X1's diagnosis (tag and group header) and X2's caption
    data = rita.get("/api/v1/search/text", params={"q": "hypodense lesion", "k": "200"}).json()
    assert {h["case_id"]: h["caption"] for h in data["hits"]}["X2"] == "hypodense lesion " + SCRIPT


def test_filters_as_query_parameters_are_applied_and_escaped(rita):
    params = {"q": "hypodense lesion", "k": "200", "diagnosis": SCRIPT, "filter": "exclude-patient=PX2"}
    data = rita.get("/api/v1/search/text", params=params).json()
    assert [h["case_id"] for h in data["hits"]] == ["X1"] and data["candidates"] == 1
    assert data["filters"] == {"diagnosis": [SCRIPT], "exclude_patient": ["PX2"]}
    html = rita.get("/search", params={**params, "sex": SCRIPT + "M", "date_from": "2020-01-01"}).text
    assert SCRIPT not in html
    assert f'<option value="{ESCAPED}" selected>{ESCAPED}</option>' in html  # the chosen diagnosis, kept
    assert f'<option value="{ESCAPED}M" selected>' in html  # a value the choices do not offer, kept and escaped
    assert 'name="date_from" type="date" value="2020-01-01"' in html
    assert 'name="filter" value="exclude-patient=PX2"' in html
    assert html.count('<li data-case="') == 0 and "0 results" in html  # X1 has no sex: the filter excludes it
    cysts = rita.get("/search", params={"q": TEXT, "diagnosis": ["cyst"], "date_to": "2020-12-31"}).text
    assert re.findall(r'<li data-case="([^"]+)"', cysts) == ["T1", "T2"]  # T3 (2021) and X2 (no date) are out


@pytest.mark.parametrize("name, value", [("date_from", "2020-02-30"), ("age_max", "-1"), ("term_threshold", "x"),
                                         ("filter", "colour=red"), ("k", "²")])
def test_bad_filter_parameters(rita, name, value):
    r = rita.get("/api/v1/search/text", params={"q": TEXT, name: value})
    assert r.status_code == 400 and name.split("_")[0] in r.json()["error"]["message"]
    page = rita.get("/search", params={"q": TEXT, name: value})
    assert page.status_code == 400 and 'role="alert"' in page.text


def test_timeline_json_and_panel(rita):
    data = rita.get("/api/v1/cases/T2/timeline").json()
    assert data["focus"]["case_id"] == "T2"
    assert [(e["case_id"], e["days"]) for e in data["earlier"]] == [("T1", -152)]  # 2020-01-01 → 2020-06-01
    assert [(e["case_id"], e["days"]) for e in data["later"]] == [("T3", 214)]  # 2020-06-01 → 2021-01-01
    assert "hypodense" in data["focus"]["terms"] and data["focus"]["caption"].startswith("Liver lesion")
    assert rita.get("/api/v1/cases/NOPE/timeline").status_code == 404
    html = rita.get("/search", params={"q": TEXT, "case": "T2"}).text
    panel = html[html.index("Earlier studies"):html.index('id="case-suggestion"')]
    assert panel.index("<strong>T1</strong>") < panel.index("<strong>T2</strong>") < panel.index("<strong>T3</strong>")
    assert "-152 days" in panel and "+214 days" in panel
    assert 'id="case-suggestion"' in html


def test_suggestion_is_labelled_decision_support(rita):
    data = rita.get("/api/v1/cases/T2/suggestion", params={"k": "5"}).json()
    assert data["disclaimer"].startswith("Decision support only")
    assert data["k"] == 5 and sum(data["votes"].values()) == pytest.approx(1.0)
    assert not {"T1", "T2", "T3"} & set(data["evidence"])  # the same patient's studies do not vote
    same = rita.get("/api/v1/cases/T2/suggestion", params={"k": "2", "include_same_patient": "true"}).json()
    assert set(same["evidence"]) == {"T1", "T3"} and same["diagnosis"] == "cyst"  # identical vectors rank first
    assert rita.get("/api/v1/cases/NOPE/suggestion").status_code == 404
    assert rita.get("/api/v1/cases/T2/suggestion", params={"include_same_patient": "maybe"}).status_code == 400


def test_documented_in_openapi(site):
    paths = client(site).get("/api/v1/openapi.json").json()["paths"]
    assert {"/parse", "/search/text", "/cases/{case_id}/timeline", "/cases/{case_id}/suggestion"} <= set(paths)


# --------------------------------------------------------------------------------------------------- feedback sessions


def _post_form(client: WebClient, page_path: str, action: str, data: dict) -> requests.Response:
    return client.post(action, data={**data, "csrf_token": client.csrf(page_path)})


def test_text_search_page_starts_a_feedback_session(rita, site):
    page = rita.get("/search", params={"q": TEXT}).text
    assert 'id="start-session"' in page and "Start a feedback session with this query" in page
    assert 'action="/search/session"' in page
    r = _post_form(rita, "/search?q=x", "/search/session", {"q": TEXT, "k": "8"})
    assert r.status_code == 302 and "/sessions/" in r.headers["Location"]
    session_path = r.headers["Location"].replace(site, "")
    html = rita.get(session_path).text
    assert f'<blockquote class="query-text" id="query-text">{TEXT}</blockquote>' in html
    assert "Terms of the text" in html and "regularised+rocchio" in html
    assert 'class="query-thumb"' not in html  # no query image for a text query
    # the query vector as bars: hypodense, circumscribed margin and nonenhancing (complement of "no enhancement") at 1
    bars = re.findall(r'<span class="term-label" title="(RID\d+)">[^<]*</span>\s*<meter[^>]*value="([0-9.]+)"', html)
    assert {rid for rid, v in bars if float(v) == 1.0} == {"RID6042", "RID5707", "RID6056"}
    assert len(bars) == len(TERMS)
    session_id = session_path.rsplit("/", 1)[-1]
    data = rita.get(f"/api/v1/sessions/{session_id}").json()
    assert data["query_text"] == TEXT and data["query_case"] is None and data["algorithm"] == "regularised+rocchio"
    assert data["moved_query_terms"] is None and data["round"] == 0 and len(data["results"]) == 8
    # one round: Rocchio moves the query, the page shows the moved query above the text's terms
    ranked = [h["case_id"] for h in data["results"]]
    marks = {f"mark-{ranked[0]}": "relevant", f"mark-{ranked[-1]}": "irrelevant"}
    r = _post_form(rita, session_path, f"/sessions/{session_id}/feedback", marks)
    assert r.status_code == 302
    html = rita.get(session_path).text
    assert 'id="moved-query"' in html and "Query after round 1" in html and TEXT in html
    data = rita.get(f"/api/v1/sessions/{session_id}").json()
    assert data["round"] == 1 and data["moved_query_terms"] is not None
    assert rita.get(f"/api/v1/sessions/{session_id}").json()["rounds"][0]["marks"] == {
        ranked[0]: "relevant", ranked[-1]: "irrelevant"}


def test_a_filtered_text_search_starts_a_session_with_its_filters(rita, site):
    page = rita.get("/search", params={"q": TEXT, "diagnosis": "cyst", "k": "5"}).text
    form = page[page.index('id="start-session"'):page.index("</form>", page.index('id="start-session"'))]
    assert '<input type="hidden" name="diagnosis" value="cyst">' in form
    r = _post_form(rita, "/search?q=x", "/search/session", {"q": TEXT, "k": "5", "diagnosis": "cyst"})
    assert r.status_code == 302
    data = rita.get("/api/v1/sessions/" + r.headers["Location"].rsplit("/", 1)[-1]).json()
    assert data["results"] and {h["diagnosis"] for h in data["results"]} == {"cyst"}


def test_a_session_query_refined_with_a_note(rita, site):
    r = _post_form(rita, "/search?q=x", "/search/session", {"q": "hypodense lesion", "k": "8"})
    session_id = r.headers["Location"].rsplit("/", 1)[-1]
    assert 'id="note-form"' in rita.get(f"/sessions/{session_id}").text
    data = rita.get("/api/v1/search/text", params={"q": "no enhancement", "session": session_id, "w_img": "1",
                                                   "k": "40"}).json()
    assert data["session"] == session_id and len(data["hits"]) == 29  # a text session has no query case to leave out
    query = rita.get(f"/api/v1/sessions/{session_id}").json()
    assert data["hits"][0]["sim_img"] == pytest.approx(1.0) and query["query_text"] == "hypodense lesion"
    assert rita.get("/api/v1/search/text", params={"q": "x", "session": "nope!"}).status_code in (400, 404)


def test_text_session_start_errors_and_roles(rita, site):
    r = _post_form(rita, "/search", "/search/session", {"q": "   "})
    assert r.status_code == 400 and "type a query text" in r.text
    r = _post_form(rita, "/search", "/search/session", {"q": "qqq zzz"})
    assert r.status_code == 400 and "names no vocabulary term" in r.text
    r = _post_form(rita, "/search", "/search/session", {"q": TEXT, "algorithm": "magic"})
    assert r.status_code == 400 and "Invalid algorithm" in r.text
    r = rita.http.post(rita.base + "/search/session", data={"q": TEXT}, allow_redirects=False, timeout=30)
    assert r.status_code == 400  # no CSRF token
    rhea = client(site, "rhea")
    page = rhea.get("/search", params={"q": TEXT}).text
    assert 'id="start-session"' not in page and "Radiologists can start a feedback session" in page
    assert _post_form(rhea, "/search", "/search/session", {"q": TEXT}).status_code == 403
