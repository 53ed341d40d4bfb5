"""The radiologists' JSON API under /api/v1 over real HTTP: cases, search, sessions with rounds and undo,
dendrogram, thumbnails, image search, background jobs; plus unit checks of the SVG and thumbnail drawing."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import radiology_fixture
import requests

from kg.namespaces import session_graph
from semgraph.graph.casegraph import read_cases, user_iri

USERS = {"rita": ("radiologist", "rita-password-1"), "rob": ("radiologist", "rob-password-1"),
         "carl": ("curator", "carl-password-1"), "rhea": ("researcher", "rhea-password-1")}


@pytest.fixture(scope="module")
def rsite(tmp_path_factory):
    site = radiology_fixture.build_cohort_site(tmp_path_factory, USERS)
    yield site
    site.stop()


class Api:
    def __init__(self, base: str, name: str | None):
        self.base, self.http = base, requests.Session()
        self.token = None
        if name:
            page = self.http.get(base + "/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            r = self.http.post(base + "/login", data={"name": name, "password": USERS[name][1], "csrf_token": token},
                               allow_redirects=False)
            assert r.status_code == 302
            self.token = self.http.get(base + "/api/v1/me").json()["csrf_token"]

    def get(self, path, **kw):
        return self.http.get(self.base + "/api/v1" + path, timeout=60, **kw)

    def post(self, path, csrf=True, **kw):
        headers = {"X-CSRF-Token": self.token} if csrf and self.token else {}
        return self.http.post(self.base + "/api/v1" + path, headers=headers, timeout=60, **kw)


def cases_by_id(rsite):
    return {c.case_id: c for c in read_cases(rsite.store)}


# ------------------------------------------------------------------------------------------- OpenAPI, auth


def test_openapi_documents_the_retrieval_paths(rsite):
    doc = requests.get(rsite.url + "/api/v1/openapi.json", timeout=30).json()
    for path in ("/cases", "/cases/{case_id}", "/cases/{case_id}/thumbnail.png", "/search", "/search/image",
                 "/sessions", "/sessions/{session_id}", "/sessions/{session_id}/rounds",
                 "/sessions/{session_id}/undo", "/sessions/{session_id}/dendrogram.svg", "/jobs", "/jobs/{job_id}"):
        assert path in doc["paths"], path
    assert set(doc["paths"]["/sessions"]) == {"get", "post"}
    rules = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule)[len("/api/v1"):]
             for r in rsite.app.url_map.iter_rules() if r.rule.startswith("/api/v1/")}
    assert rules == set(doc["paths"])


def test_api_needs_login_and_the_role_to_write(rsite):
    anon = Api(rsite.url, None)
    assert anon.get("/cases").status_code == 401
    assert anon.get("/cases").json()["error"]["status"] == 401
    researcher = Api(rsite.url, "rhea")
    assert researcher.get("/cases").status_code == 200
    r = researcher.post("/sessions", json={"case_id": rsite.case_ids[0]})
    assert r.status_code == 403 and r.json()["error"]["title"] == "Forbidden"
    assert researcher.get("/jobs").status_code == 403
    rita = Api(rsite.url, "rita")
    assert rita.post("/search", csrf=False, json={"case_id": rsite.case_ids[0]}).status_code == 400


# ------------------------------------------------------------------------------------------- cases


def test_list_and_search_cases(rsite):
    api = Api(rsite.url, "rita")
    listing = api.get("/cases", params={"limit": 5, "offset": 2}).json()
    assert listing["total"] == len(rsite.case_ids)
    assert [c["case_id"] for c in listing["cases"]] == sorted(rsite.case_ids)[2:7]
    cysts = api.get("/cases", params={"diagnosis": "cyst", "limit": 500}).json()
    expected = sorted(c.case_id for c in cases_by_id(rsite).values() if c.diagnosis == "cyst")
    assert [c["case_id"] for c in cysts["cases"]] == expected
    one = api.get("/cases", params={"q": "CASE-000003"}).json()
    assert [c["case_id"] for c in one["cases"]] == ["case-000003"]
    assert api.get("/cases", params={"limit": "x"}).status_code == 400


def test_one_case(rsite):
    api = Api(rsite.url, "rita")
    case_id = rsite.case_ids[0]
    stored = cases_by_id(rsite)[case_id]
    detail = api.get(f"/cases/{case_id}").json()
    assert detail["diagnosis"] == stored.diagnosis and detail["patient_id"] == stored.patient_id
    assert [a["kind"] for a in detail["annotations"]] == ["reader", "predicted", "truth"]
    bars = [t for cat in detail["annotations"][0]["categories"] for t in cat["terms"]]
    assert len(bars) == 19 and all(0 <= t["value"] <= 1 for t in bars)
    assert detail["caption"].startswith("Liver lesion")
    assert api.get("/cases/nope-1").status_code == 404
    assert api.get("/cases/bad id!").status_code in (400, 404)


def test_thumbnail(rsite):
    from PIL import Image

    api = Api(rsite.url, "rita")
    r = api.get(f"/cases/{rsite.case_ids[0]}/thumbnail.png", params={"size": 128})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    picture = Image.open(io.BytesIO(r.content))
    assert picture.size == (128, 128)
    pixels = np.asarray(picture.convert("RGB"))
    assert np.any(np.all(pixels == (255, 214, 0), axis=-1))  # the ROI outline is drawn
    assert list((rsite.data_dir / "thumbnails").rglob("*.png"))  # and cached
    assert api.get(f"/cases/{rsite.case_ids[0]}/thumbnail.png", params={"size": 77}).status_code == 400


def test_a_session_starts_in_the_graph_and_resumes_after_a_restart_before_any_round(rsite):
    from webapp import engines

    api = Api(rsite.url, "rita")
    view = api.post("/sessions", json={"case_id": rsite.case_ids[2], "k": 7, "filters": ["sex=F"]}).json()
    sid = view["session_id"]
    rows = rsite.store.select("SELECT ?title ?p WHERE { GRAPH $g { ?s rdfs:label $sid ; dcterms:title ?title ; "
                              "sg:parameters ?p } }", {"sid": sid, "g": session_graph(sid)})
    assert len(rows) == 1 and str(rows[0]["title"]) == f"case {rsite.case_ids[2]}"
    assert json.loads(str(rows[0]["p"])) == {"k": 7, "filters": ["sex=F"], "algorithm": view["algorithm"],
                                              "warnings": []}
    engines.invalidate(rsite.app.extensions["semgraph"])  # a restart: nothing of the session left in memory
    again = api.get(f"/sessions/{sid}").json()
    assert again["round"] == 0 and again["k"] == 7 and again["filters"] == ["sex=F"]
    assert [h["case_id"] for h in again["results"]] == [h["case_id"] for h in view["results"]]


def test_a_sessions_thumbnail_links_name_each_hit_and_load(rsite):
    api = Api(rsite.url, "rita")
    view = api.post("/sessions", json={"case_id": rsite.case_ids[1], "k": 5}).json()
    links = [h["thumbnail"] for h in view["results"]]
    assert links == [f"/api/v1/cases/{h['case_id']}/thumbnail.png" for h in view["results"]]
    r = api.http.get(rsite.url + links[0], timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"


def test_thumbnail_links_quote_the_case_id_as_one_path_segment(tmp_path):
    from webapp import create_app
    from webapp.api_retrieval import add_thumbnails

    app = create_app({"data_dir": str(tmp_path / "data")})
    try:
        with app.test_request_context():
            hits = [{"case_id": "case-000001"}, {"case_id": "a b/c"}]
            add_thumbnails(hits)
        assert [h["thumbnail"] for h in hits] == ["/api/v1/cases/case-000001/thumbnail.png",
                                                  "/api/v1/cases/a%20b%2Fc/thumbnail.png"]
    finally:
        app.extensions["semgraph"].close()


# ------------------------------------------------------------------------------------------- search


def test_search_by_case(rsite):
    api = Api(rsite.url, "rita")
    query = rsite.case_ids[1]
    r = api.post("/search", json={"case_id": query, "k": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [h["case_id"] for h in body["results"]]
    assert len(ids) == 7 and query not in ids
    distances = [h["distance"] for h in body["results"]]
    assert distances == sorted(distances)
    cases = cases_by_id(rsite)
    for h in body["results"]:
        assert h["match"] == (cases[h["case_id"]].diagnosis == cases[query].diagnosis)


def test_search_with_filters_and_grouping(rsite):
    api = Api(rsite.url, "rita")
    cases = cases_by_id(rsite)
    r = api.post("/search", json={"case_id": rsite.case_ids[1], "k": 50, "filters": ["age=50-70", "sex=M"],
                                  "group_by": "patient"})
    body = r.json()
    expected = {c.case_id for c in cases.values() if c.age is not None and 50 <= c.age <= 70 and c.sex == "M"}
    expected.discard(rsite.case_ids[1])
    assert {h["case_id"] for h in body["results"]} == expected
    groups = body["groups"]
    assert [g["best_rank"] for g in groups] == sorted(g["best_rank"] for g in groups)
    for g in groups:
        assert {cases[m["case_id"]].patient_id for m in g["members"]} == {g["key"]}
    bad = api.post("/search", json={"case_id": rsite.case_ids[1], "filters": ["colour=blue"]})
    assert bad.status_code == 400 and "unknown key" in bad.json()["error"]["message"]


def test_search_by_vector(rsite):
    api = Api(rsite.url, "rita")
    r = api.post("/search", json={"vector": {"hypodense": 1.0, "circumscribed margin": 1.0}, "k": 3})
    assert r.status_code == 200 and len(r.json()["results"]) == 3
    assert all(h["match"] is None for h in r.json()["results"])  # no query diagnosis → no frames
    assert api.post("/search", json={"vector": [0.5] * 3}).status_code == 400
    assert api.post("/search", json={}).status_code == 400


# ------------------------------------------------------------------------------------------- sessions


def test_session_rounds_undo_and_attribution(rsite):
    rita, rob = Api(rsite.url, "rita"), Api(rsite.url, "rob")
    cases = cases_by_id(rsite)
    query, marks = radiology_fixture.best_feedback_query(rsite.store, k=12)  # marks that change some term pairs
    r = rita.post("/sessions", json={"case_id": query, "k": 12})
    assert r.status_code == 200, r.text
    s = r.json()
    sid = s["session_id"]
    assert r.headers["Location"] == f"/api/v1/sessions/{sid}" and s["round"] == 0 and s["user"] == "rita"
    first = [h["case_id"] for h in s["results"]]
    assert set(marks) <= set(first)
    for case_id, value in marks.items():  # the marks follow the diagnoses, as a radiologist's would
        assert (value == "relevant") == (cases[case_id].diagnosis == cases[query].diagnosis)
    assert rob.post(f"/sessions/{sid}/rounds", json={"marks": marks}).status_code == 403
    assert rita.post(f"/sessions/{sid}/rounds", json={"marks": {first[0]: "maybe"}}).status_code == 400
    assert rita.post(f"/sessions/{sid}/rounds", json={"marks": {"case-999999": "relevant"}}).status_code == 400
    for bad in ("one", "²", -1, True, 1.5, [0]):  # `round`: the round the page showed, a count from 0
        refused = rita.post(f"/sessions/{sid}/rounds", json={"marks": marks, "round": bad})
        assert refused.status_code == 400 and "round must be" in refused.json()["error"]["message"], (bad, refused.text)
    stale = rita.post(f"/sessions/{sid}/rounds", json={"marks": marks, "round": 3})
    assert stale.status_code == 409 and "no feedback was applied" in stale.json()["error"]["message"]
    assert rita.get(f"/sessions/{sid}").json()["round"] == 0  # nothing was recorded by the refused requests
    r = rita.post(f"/sessions/{sid}/rounds", json={"marks": marks, "round": 0})
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["round"] == 1 and len(after["rounds"]) == 1 and after["rounds"][0]["marks"] == marks
    assert after["changes"], "diagnosis-based marks on this query change some term pairs"
    for change in after["changes"]:
        assert "↔" in change["text"] and f"{change['before']:.2f} → {change['after']:.2f}" in change["text"]
        assert set(change["derived_from"]) <= set(marks)
    moves = {h["case_id"]: h["move"] for h in after["results"]}
    now = [h["case_id"] for h in after["results"]]
    for rank, case_id in enumerate(now, start=1):
        if case_id in first:
            delta = first.index(case_id) + 1 - rank
            assert moves[case_id]["by"] == abs(delta)
            assert moves[case_id]["kind"] == ("up" if delta > 0 else "down" if delta < 0 else "same")
        else:
            assert moves[case_id]["kind"] == "new"
    # the learned edges are attributed to rita
    rows = rsite.store.select("""SELECT DISTINCT ?e WHERE { ?e sg:kind "learned" ; prov:wasAttributedTo $u ;
        prov:wasGeneratedBy ?r . ?r sg:session ?s . ?s rdfs:label $sid }""", {"u": user_iri("rita"), "sid": sid})
    assert len(rows) == len(after["changes"])
    assert rita.get(f"/sessions/{sid}").json()["round"] == 1
    assert any(x["session_id"] == sid for x in rita.get("/sessions").json())
    undone = rita.post(f"/sessions/{sid}/undo").json()
    assert undone["undone"] == 1 and undone["round"] == 0
    assert [h["case_id"] for h in undone["results"]] == first
    assert rita.post(f"/sessions/{sid}/undo").status_code == 400


CYST_TEXT = "well-circumscribed water density lesion, no enhancement"


def test_text_session_by_json_moves_the_query_and_records_the_text(rsite):
    from kg.namespaces import SG
    from webapp import engines, web_sessions

    rita = Api(rsite.url, "rita")
    cases = cases_by_id(rsite)
    r = rita.post("/sessions", json={"text": CYST_TEXT, "k": 12})
    assert r.status_code == 200, r.text
    s = r.json()
    sid = s["session_id"]
    assert s["query_text"] == CYST_TEXT and s["query_case"] is None and s["algorithm"] == "regularised+rocchio"
    assert s["label"] == f"text “{CYST_TEXT}”" and s["moved_query_terms"] is None
    values = {t["label"]: t["value"] for c in s["query_terms"] for t in c["terms"]}
    assert {label for label, v in values.items() if v == 1.0} == {"circumscribed margin", "water density",
                                                                  "nonenhancing"}
    first = [h["case_id"] for h in s["results"]]
    rel = [c for c in first if cases[c].diagnosis == "cyst"][:3]
    irr = [c for c in first if cases[c].diagnosis != "cyst"][:3]
    assert rel and irr, "the cohort's top results for a cyst description hold cysts and other lesions"
    marks = {**{c: "relevant" for c in rel}, **{c: "irrelevant" for c in irr}}
    after = rita.post(f"/sessions/{sid}/rounds", json={"marks": marks}).json()
    assert after["round"] == 1 and after["moved_query_terms"] is not None
    moved = {t["label"]: t["value"] for c in after["moved_query_terms"] for t in c["terms"]}
    assert moved != values
    rows = rsite.store.select("SELECT DISTINCT ?alg ?t WHERE { ?r sg:session ?s ; sg:algorithm ?alg . ?s rdfs:label $sid ; "
                              "$qt ?t }", {"sid": sid, "qt": SG.queryText})
    assert [(str(x["alg"]), str(x["t"])) for x in rows] == [("regularised+rocchio", CYST_TEXT)]
    # the session started in the graph: nothing of a text session is kept in the data folder, and after a restart
    # (memory cleared) it is replayed from the graph alone, with its k and algorithm
    assert not (rsite.data_dir / web_sessions.SESSIONS_DIR / f"{sid}.json").exists()
    engines.invalidate(rsite.app.extensions["semgraph"])
    again = rita.get(f"/sessions/{sid}").json()
    assert again["query_text"] == CYST_TEXT and again["round"] == 1 and again["algorithm"] == "regularised+rocchio"
    assert [h["case_id"] for h in again["results"]] == [h["case_id"] for h in after["results"]]
    assert any(x["session_id"] == sid and x["query_text"] == CYST_TEXT for x in rita.get("/sessions").json())


@pytest.mark.parametrize("body, status, message", [
    ({"text": CYST_TEXT, "case_id": "x"}, 400, "exactly one of case_id, vector or text"),
    ({"text": 42}, 400, "text must be a string"),
    ({"text": "zzz qqq"}, 400, "names no vocabulary term"),
    ({"text": CYST_TEXT, "algorithm": "penalty+regularised"}, 400, "choose one"),
    ({}, 400, "exactly one of case_id, vector or text"),
])
def test_text_session_bad_bodies(rsite, body, status, message):
    r = Api(rsite.url, "rita").post("/sessions", json=body)
    assert r.status_code == status and message in r.json()["error"]["message"], r.text


def test_text_session_needs_a_radiologist(rsite):
    assert Api(rsite.url, "rhea").post("/sessions", json={"text": CYST_TEXT}).status_code == 403


def test_openapi_documents_the_text_session_body(rsite):
    doc = requests.get(rsite.url + "/api/v1/openapi.json", timeout=30).json()
    body = doc["paths"]["/sessions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"text", "algorithm", "case_id", "vector"} <= set(body["properties"])
    assert {"query_text", "algorithm", "moved_query_terms"} <= set(
        doc["components"]["schemas"]["RetrievalSession"]["properties"])


def test_dendrogram_svg_of_a_round(rsite):
    api = Api(rsite.url, "rita")
    sid = api.post("/sessions", json={"case_id": rsite.case_ids[0], "k": 12}).json()["session_id"]
    svg = api.get(f"/sessions/{sid}/dendrogram.svg").text
    assert svg.startswith("<svg") and svg.count('fill="#c05600"') == 0  # baseline: nothing highlighted
    assert api.get(f"/sessions/{sid}/dendrogram.svg", params={"round": "x"}).status_code == 400


# ------------------------------------------------------------------------------------------- image search


def test_search_by_image_upload(rsite):
    from PIL import Image

    from semgraph.cohort import read_manifest

    api = Api(rsite.url, "rita")
    record = read_manifest(rsite.cohort / "manifest.json").cases[0]
    mask = np.asarray(Image.open(record.mask)) > 0
    rows, cols = np.nonzero(mask)
    box = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
    r = api.post("/search/image", data={"roi": json.dumps({"rectangle": box}), "k": "5"},
                 files={"image": ("q.dcm", Path(record.image).read_bytes(), "application/dicom")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 5 and len(body["vector"]) == 19
    # with the mask file instead of a drawn region, as a session
    r = api.post("/sessions", data={"k": "4"}, files={
        "image": ("q.dcm", Path(record.image).read_bytes(), "application/dicom"),
        "mask": ("m.png", Path(record.mask).read_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["upload"] and len(r.json()["results"]) == 4
    bad = api.post("/search/image", data={"roi": "{\"circle\": 3}"},
                   files={"image": ("q.dcm", Path(record.image).read_bytes(), "application/dicom")})
    assert bad.status_code == 400
    bad = api.post("/search/image", data={"roi": json.dumps({"rectangle": box}), "filters": "sex=F"},
                   files={"image": ("q.dcm", Path(record.image).read_bytes(), "application/dicom")})
    assert bad.status_code == 400 and "JSON list of filter texts" in bad.json()["error"]["message"], bad.text


# ------------------------------------------------------------------------------------------- jobs


def _wait(api, job_id):
    for _ in range(600):
        job = api.get(f"/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_ingest_job_from_an_uploaded_zip_then_training(rsite, tmp_path):
    from semgraph import cohort

    manifest = cohort.generate(n=3, seed=5, size=128, out_dir=tmp_path / "new", progress=False)
    data = json.loads(manifest.read_text())
    for i, case in enumerate(data["cases"]):
        case["case_id"] = f"upl-{i:03d}"
    manifest.write_text(json.dumps(data))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for path in (tmp_path / "new").rglob("*"):
            if path.is_file() and path.name != "manifest.csv":
                z.write(path, "cohort/" + str(path.relative_to(tmp_path / "new")))
    carl = Api(rsite.url, "carl")
    r = carl.post("/jobs", data={"kind": "ingest"}, files={"archive": ("c.zip", archive.getvalue(), "application/zip")})
    assert r.status_code == 200, r.text
    job = _wait(carl, r.json()["job_id"])
    assert job["state"] == "done", job
    assert job["result"]["ingested"] + len(job["result"]["failed"]) == 3 and job["percent"] == 100
    listed = carl.get("/cases", params={"q": "upl-"}).json()["cases"]
    assert len(listed) == job["result"]["ingested"] >= 1  # the engine was refreshed after the job
    r = carl.post("/jobs", json={"kind": "train"})
    job = _wait(carl, r.json()["job_id"])
    assert job["state"] == "done", job
    assert job["result"]["cases"] == len(rsite.case_ids) + len(listed)  # every image case with reader labels
    assert (rsite.data_dir / "models" / "LATEST").read_text().strip() == job["result"]["model"]
    assert any(j["job_id"] == job["job_id"] for j in carl.get("/jobs").json())


def test_unsafe_zip_is_refused(rsite):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../evil.txt", "x")
    carl = Api(rsite.url, "carl")
    r = carl.post("/jobs", data={"kind": "ingest"}, files={"archive": ("c.zip", archive.getvalue(), "application/zip")})
    assert r.status_code == 400 and "unsafe path" in r.json()["error"]["message"]
    assert not (rsite.data_dir / "evil.txt").exists()
    assert carl.post("/jobs", json={"kind": "paint"}).status_code == 400


# ------------------------------------------------------------------------------------------- drawing (unit)


def test_outline_of_a_square_mask():
    from webapp.thumbnails import outline

    mask = np.zeros((6, 6), dtype=bool)
    mask[1:5, 1:5] = True  # a 4×4 block: 12 border pixels, 4 inner ones
    edge = outline(mask)
    assert edge.sum() == 12
    assert not edge[2:4, 2:4].any() and edge[1, 1] and edge[4, 4]


def test_render_windows_and_outlines():
    from PIL import Image

    from webapp.thumbnails import render

    hu = np.full((8, 8), 40.0)  # the abdomen window's level → mid grey (0.5 · 255 = 127.5 → 127)
    hu[0, 0] = -1000.0  # below the window → black
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:6, 2:6] = True
    picture = np.asarray(Image.open(io.BytesIO(render(hu, mask, size=96, window="abdomen"))).convert("RGB"))
    assert picture.shape == (96, 96, 3)
    assert tuple(picture[60, 60]) == (127, 127, 127)  # inside the ROI, not on its outline
    assert tuple(picture[24, 40]) == (255, 214, 0)  # row 24 = image row 2, the top edge of the ROI
    assert tuple(picture[0, 0]) == (0, 0, 0)


def test_dendrogram_svg_of_three_terms_escapes_labels():
    from webapp.dendrogram import dendrogram_svg

    D = np.array([[0.0, 0.2, 0.8], [0.2, 0.0, 0.8], [0.8, 0.8, 0.0]])
    svg = dendrogram_svg(D, ["a<b>", "b&c", "far"], ["t1", "t2", "t3"], {"t3"}, title="T <x>")
    assert "a&lt;b&gt;" in svg and "b&amp;c" in svg and "<b>" not in svg and "T &lt;x&gt;" in svg
    assert svg.count("<path") == 4  # two merges, two elbows each
    labels = re.findall(r'<text x="[^"]+" y="([^"]+)"[^>]*>([^<]+)</text>', svg)
    order = [name for _, name in labels if name in ("a&lt;b&gt;", "b&amp;c", "far")]
    assert order == ["a&lt;b&gt;", "b&amp;c", "far"]  # the close pair are neighbours
    assert re.search(r'font-weight="bold" fill="#c05600">far<', svg)
    # the root's height (0.8, average linkage) is the axis' first tick
    assert ">0.80</text>" in svg


# ------------------------------------------------------------------------------------------- page / JSON twins

#: Every page of the app and the /api/v1 route that answers the same question in JSON (method and rule).
PAGE_TWINS = {
    ("GET", "/"): ("GET", "/api/v1/status"),
    ("GET", "/account"): ("GET", "/api/v1/me/tokens"),
    ("POST", "/account/tokens"): ("POST", "/api/v1/me/tokens"),
    ("POST", "/account/tokens/<label>/revoke"): ("DELETE", "/api/v1/me/tokens/<label>"),
    ("GET", "/cases"): ("GET", "/api/v1/cases"),
    ("GET", "/cases/<case_id>"): ("GET", "/api/v1/cases/<case_id>"),
    ("GET", "/jobs"): ("GET", "/api/v1/jobs"),
    ("POST", "/jobs/ingest"): ("POST", "/api/v1/jobs"),
    ("POST", "/jobs/train"): ("POST", "/api/v1/jobs"),
    ("GET", "/query"): ("GET", "/sparql"),  # the SPARQL editor; its twin is the protocol endpoint
    ("POST", "/query"): ("POST", "/sparql"),
    ("GET", "/query/image"): ("POST", "/api/v1/search/image"),
    ("POST", "/query/image"): ("POST", "/api/v1/search/image"),
    ("GET", "/query/image/<token>"): ("POST", "/api/v1/search/image"),
    ("POST", "/query/image/<token>"): ("POST", "/api/v1/search/image"),
    ("GET", "/query/pacs"): ("GET", "/api/v1/pacs/studies"),
    ("POST", "/query/pacs/slice"): ("POST", "/api/v1/pacs/slice"),
    ("POST", "/query/pacs/region"): ("POST", "/api/v1/pacs/region"),
    ("GET", "/research/relations"): ("GET", "/api/v1/relations"),
    ("GET", "/search"): ("GET", "/api/v1/search/text"),
    ("POST", "/search/session"): ("POST", "/api/v1/sessions"),
    ("GET", "/sessions"): ("GET", "/api/v1/sessions"),
    ("POST", "/sessions"): ("POST", "/api/v1/sessions"),
    ("GET", "/sessions/<session_id>"): ("GET", "/api/v1/sessions/<session_id>"),
    ("GET", "/sessions/<session_id>/dendrogram"): ("GET", "/api/v1/sessions/<session_id>/dendrogram.svg"),
    ("POST", "/sessions/<session_id>/feedback"): ("POST", "/api/v1/sessions/<session_id>/rounds"),
    ("POST", "/sessions/<session_id>/undo"): ("POST", "/api/v1/sessions/<session_id>/undo"),
    ("GET", "/terms"): ("GET", "/api/v1/terms"),
    ("GET", "/terms/<rid>"): ("GET", "/api/v1/terms/<rid>"),
}
#: Routes that are not pages: sign-in, the SPARQL protocol endpoint (its own content negotiation), files and images.
NOT_PAGES = {"/login", "/logout", "/sparql", "/static/<path:filename>",
             "/sessions/<session_id>/query.png", "/favicon.ico", "/query/pacs/thumbnail.png", "/ns/shapes.ttl"}


def _routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_page_has_a_json_twin(rsite):
    routes = _routes(rsite.app)
    pages = {(m, r) for m, r in routes if not r.startswith("/api/") and r not in NOT_PAGES
             and not r.startswith("/research/<")}  # the researchers' downloads are files, listed by the export registry
    assert pages - set(PAGE_TWINS) == set(), "pages without a JSON twin in PAGE_TWINS"
    assert set(PAGE_TWINS) - pages == set(), "PAGE_TWINS names pages the app no longer has"
    assert {twin for twin in PAGE_TWINS.values()} <= routes, "a twin that is not a route of the app"


def test_each_page_and_its_twin_answer_the_same_request(rsite):
    users = {"rita": Api(rsite.url, "rita"), "rhea": Api(rsite.url, "rhea")}  # a radiologist; a researcher
    sid = users["rita"].post("/sessions", json={"case_id": rsite.case_ids[0], "k": 5}).json()["session_id"]
    values = {"<case_id>": rsite.case_ids[0], "<session_id>": sid, "<rid>": "RID5715"}
    for (method, page), (twin_method, twin) in PAGE_TWINS.items():
        if method != "GET" or twin_method != "GET" or "<token>" in page:
            continue
        for placeholder, value in values.items():
            page, twin = page.replace(placeholder, value), twin.replace(placeholder, value)
        http = users["rhea" if page.startswith("/research/") else "rita"].http
        # the twin needs the question the page asks
        params = {"/search": {"q": "hypodense lesion"}, "/query": {"query": "ASK { ?s ?p ?o }"}}.get(page, {})
        html = http.get(rsite.url + page, params=params, timeout=60)
        data = http.get(rsite.url + twin, params=params, timeout=60)
        assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html"), page
        assert data.status_code == 200, twin
        kind = data.headers["Content-Type"]
        assert kind.startswith(("application/json", "application/sparql-results+json")) or \
            (twin.endswith(".svg") and kind.startswith("image/svg")), (twin, kind)


def test_a_cases_feedback_history_lists_each_round_once(rsite):
    rita = Api(rsite.url, "rita")
    query = rsite.case_ids[4]
    view = rita.post("/sessions", json={"case_id": query, "k": 12}).json()
    sid, cases = view["session_id"], cases_by_id(rsite)
    for n in (1, 2):  # two rounds, each marking the first unmarked result of each kind
        hits = [h["case_id"] for h in rita.get(f"/sessions/{sid}").json()["results"]]
        rel = [c for c in hits if cases[c].diagnosis == cases[query].diagnosis][n - 1:n]
        irr = [c for c in hits if cases[c].diagnosis != cases[query].diagnosis][n - 1:n]
        r = rita.post(f"/sessions/{sid}/rounds", json={"marks": {**dict.fromkeys(rel, "relevant"),
                                                                 **dict.fromkeys(irr, "irrelevant")}})
        assert r.status_code == 200, r.text
    mine = [f for f in rita.get(f"/cases/{query}").json()["feedback"] if f["session_id"] == sid]
    assert sorted((f["round"], f["role"], f["relevance"]) for f in mine) == [(1, "query", None), (2, "query", None)]
