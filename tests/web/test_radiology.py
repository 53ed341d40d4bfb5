"""The radiologists' pages over real HTTP: start a query, rounds of feedback, undo, case page, filters, grouping,
image upload, escaping, login and roles. One module-scoped app over a generated 30-case cohort."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import radiology_fixture
import requests

from semgraph.graph.casegraph import Annotation, Case, read_cases, user_iri, write_case
from semgraph.graph.collection import bundled

USERS = {"rita": ("radiologist", "rita-password-1"), "rob": ("radiologist", "rob-password-1"),
         "rhea": ("researcher", "rhea-password-1")}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CARD = re.compile(r'<article class="hit( match| mismatch)?" data-case="([^"]+)"')


@pytest.fixture(scope="module")
def rsite(tmp_path_factory):
    site = radiology_fixture.build_cohort_site(tmp_path_factory, USERS)
    yield site
    site.stop()


class Browser:
    def __init__(self, base: str):
        self.base, self.http = base, requests.Session()

    def get(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        return self.http.get(self.base + path, timeout=60, **kw)

    def post(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        return self.http.post(self.base + path, timeout=60, **kw)

    def token(self, path="/login") -> str:
        return _CSRF.search(self.get(path).text).group(1)

    def login(self, name):
        r = self.post("/login", data={"name": name, "password": USERS[name][1], "csrf_token": self.token()})
        assert r.status_code == 302, r.text
        return self


def client(rsite, name=None) -> Browser:
    b = Browser(rsite.url)
    return b.login(name) if name else b


def start(b: Browser, case_id: str, **form) -> str:
    data = {"csrf_token": b.token("/cases"), "case_id": case_id, "k": "12", **form}
    r = b.post("/sessions", data=data)
    assert r.status_code == 302, r.text
    m = re.fullmatch(r"/sessions/([0-9a-f]+)(\?.*)?", r.headers["Location"])
    assert m, r.headers["Location"]
    return m.group(1)


def cards(html: str) -> list[tuple[str, str]]:
    return [(cid, (cls or "").strip()) for cls, cid in _CARD.findall(html)]


def cases_by_id(rsite) -> dict[str, Case]:
    return {c.case_id: c for c in read_cases(rsite.store)}


# ------------------------------------------------------------------------------------------- login and roles


def test_pages_need_login(rsite):
    anon = client(rsite)
    for path in ("/cases", f"/cases/{rsite.case_ids[0]}", "/sessions", "/query/image"):
        r = anon.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), path


def test_no_write_without_login_or_role(rsite):
    anon = client(rsite)
    r = anon.post("/sessions", data={"csrf_token": anon.token(), "case_id": rsite.case_ids[0]})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    researcher = client(rsite, "rhea")
    assert researcher.get("/cases").status_code == 200  # may look
    r = researcher.post("/sessions", data={"csrf_token": researcher.token("/cases"), "case_id": rsite.case_ids[0]})
    assert r.status_code == 403
    assert "radiologist" in r.text


def test_post_without_csrf_token_is_refused_and_writes_nothing(rsite):
    b = client(rsite, "rita")
    sid = start(b, rsite.case_ids[1])
    html = b.get(f"/sessions/{sid}").text
    first = cards(html)[0][0]
    before = len(rsite.store.graphs())
    r = b.post(f"/sessions/{sid}/feedback", data={f"mark-{first}": "relevant"})
    assert r.status_code == 400
    assert "security token" in r.text
    assert len(rsite.store.graphs()) == before


# ------------------------------------------------------------------------------------------- the session flow


def test_start_from_a_case_shows_results_with_frames(rsite):
    b = client(rsite, "rita")
    cases = cases_by_id(rsite)
    query = rsite.case_ids[2]
    sid = start(b, query)
    html = b.get(f"/sessions/{sid}").text
    assert 'id="round-counter">before feedback<' in html and "Apply feedback → round 1" in html
    assert "Undo round" not in html
    meters = re.findall(r"<meter[^>]*>", html)  # a likelihood is drawn in one colour: no value counts as bad
    assert meters and not any(re.search(r"\b(low|high|optimum)=", m) for m in meters)
    found = cards(html)
    assert len(found) == 12
    assert query not in [c for c, _ in found]
    for case_id, frame in found:  # green = same diagnosis as the query, red = another
        expected = "match" if cases[case_id].diagnosis == cases[query].diagnosis else "mismatch"
        assert frame == expected, case_id
    # predicted terms as bars, grouped by category; thumbnails and captions
    assert html.count("<meter") == 19
    assert f"/api/v1/cases/{found[0][0]}/thumbnail.png" in html
    assert "Liver lesion" in html


def _marks(rsite, sid, b):
    cases = cases_by_id(rsite)
    found = [c for c, _ in cards(b.get(f"/sessions/{sid}").text)]
    return found, cases


def test_feedback_round_then_reload_then_undo(rsite):
    b = client(rsite, "rita")
    # a query whose diagnosis-based marks (3 relevant, 3 irrelevant) move the ranking: picked by the fixture
    query, marks = radiology_fixture.best_feedback_query(rsite.store, k=12)
    sid = start(b, query)
    found, _ = _marks(rsite, sid, b)
    assert set(marks) <= set(found)
    data = {"csrf_token": b.token(f"/sessions/{sid}"), **{f"mark-{c}": v for c, v in marks.items()}}
    r = b.post(f"/sessions/{sid}/feedback", data=data)
    assert r.status_code == 302 and r.headers["Location"] == f"/sessions/{sid}"
    html = b.get(f"/sessions/{sid}").text
    assert 'id="round-counter">after round 1<' in html
    # every place that names a round agrees: the one shown is 1, the next one applied will be 2
    assert "What changed in round 1" in html and "Undo round 1" in html and "Apply feedback → round 2" in html
    changes = re.findall(r"<li>([^<]*↔[^<]*)</li>", html)
    assert changes and all("→" in c for c in changes)
    assert any("marked relevant" in c or "marked irrelevant" in c for c in changes)
    new_order = [c for c, _ in cards(html)]
    assert new_order != found  # the ranking changed
    assert re.search(r'class="move move-(up|down|new)"', html)
    # the marks are recorded, attributed to rita
    rows = rsite.store.select("SELECT DISTINCT ?r WHERE { ?r sg:session ?s ; prov:wasAssociatedWith $u . ?s rdfs:label $id }",
                              {"u": user_iri("rita"), "id": sid})
    assert len(rows) == 1
    # reloading gives the same page state (the session id is in the URL)
    assert [c for c, _ in cards(b.get(f"/sessions/{sid}").text)] == new_order
    # undo: back to round 1 and the first ranking; the round's graph is gone
    r = b.post(f"/sessions/{sid}/undo", data={"csrf_token": b.token(f"/sessions/{sid}")})
    assert r.status_code == 302
    html = b.get(f"/sessions/{sid}").text
    assert 'id="round-counter">before feedback<' in html
    assert [c for c, _ in cards(html)] == found
    assert not rsite.store.ask("ASK { ?r sg:session ?s . ?s rdfs:label $id }", {"id": sid})


def test_session_survives_a_restart_of_the_app_memory(rsite):
    from webapp import engines

    b = client(rsite, "rita")
    sid = start(b, rsite.case_ids[4])
    found = [c for c, _ in cards(b.get(f"/sessions/{sid}").text)]
    r = b.post(f"/sessions/{sid}/feedback", data={"csrf_token": b.token(f"/sessions/{sid}"),
                                                  f"mark-{found[0]}": "relevant", f"mark-{found[1]}": "irrelevant"})
    assert r.status_code == 302
    after = [c for c, _ in cards(b.get(f"/sessions/{sid}").text)]
    engines.invalidate(rsite.app.extensions["semgraph"])  # as after a restart: replayed from the store
    html = b.get(f"/sessions/{sid}").text
    assert 'id="round-counter">after round 1<' in html
    assert [c for c, _ in cards(html)] == after


def test_only_the_owner_may_mark(rsite):
    rita, rob = client(rsite, "rita"), client(rsite, "rob")
    sid = start(rita, rsite.case_ids[5])
    html = rob.get(f"/sessions/{sid}").text
    assert "belongs to rita" in html and 'type="radio"' not in html
    first = cards(html)[0][0]
    r = rob.post(f"/sessions/{sid}/feedback", data={"csrf_token": rob.token("/cases"), f"mark-{first}": "relevant"})
    assert r.status_code == 403


def test_apply_without_marks_is_a_clear_error(rsite):
    b = client(rsite, "rita")
    sid = start(b, rsite.case_ids[6])
    r = b.post(f"/sessions/{sid}/feedback", data={"csrf_token": b.token("/cases")})
    assert r.status_code == 400
    assert "mark at least one result" in r.text
    assert "Traceback" not in r.text


def test_unknown_session_and_case_are_404_pages(rsite):
    b = client(rsite, "rita")
    r = b.get("/sessions/0123456789ab")
    assert r.status_code == 404 and "no retrieval session" in r.text
    r = b.get("/cases/no-such-case")
    assert r.status_code == 404 and "<html" in r.text
    assert b.get("/cases", params={"page": "²"}).status_code == 200  # not a page number: the first page


def test_dendrogram_page_per_round(rsite):
    b = client(rsite, "rita")
    sid = start(b, rsite.case_ids[7])
    html = b.get(f"/sessions/{sid}/dendrogram").text
    assert f"/api/v1/sessions/{sid}/dendrogram.svg?round=0" in html
    svg = b.get(f"/api/v1/sessions/{sid}/dendrogram.svg?round=0")
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
    assert svg.text.count("<path") == 2 * 18  # 18 merges of 19 terms, two elbows each
    assert b.get(f"/api/v1/sessions/{sid}/dendrogram.svg?round=3").status_code == 404


# ------------------------------------------------------------------------------------------- filters, grouping


def test_filters_are_applied_inside_the_search(rsite):
    b = client(rsite, "rita")
    cases = cases_by_id(rsite)
    cysts = [c for c in cases.values() if c.diagnosis == "cyst"]
    query = next(c.case_id for c in cases.values() if c.diagnosis == "metastasis")
    sid = start(b, query, diagnosis="cyst", k="50")
    found = [c for c, _ in cards(b.get(f"/sessions/{sid}").text)]
    assert sorted(found) == sorted(c.case_id for c in cysts)  # every cyst, nothing else
    sid = start(b, query, age_min="50", age_max="65", sex="F")
    found = [c for c, _ in cards(b.get(f"/sessions/{sid}").text)]
    expected = {c.case_id for c in cases.values() if c.age is not None and 50 <= c.age <= 65 and c.sex == "F"
                and c.case_id != query}
    if len(expected) <= 12:
        assert set(found) == expected
    else:
        assert len(found) == 12 and set(found) <= expected


def test_grouping_by_diagnosis_puts_the_best_group_first(rsite):
    b = client(rsite, "rita")
    cases = cases_by_id(rsite)
    sid = start(b, rsite.case_ids[8])
    flat = [c for c, _ in cards(b.get(f"/sessions/{sid}").text)]
    html = b.get(f"/sessions/{sid}?group=diagnosis").text
    headings = re.findall(r'<section class="group"><h2>([^<]+?) <span', html)
    assert headings[0] == cases[flat[0]].diagnosis
    assert sorted(headings) == sorted({cases[c].diagnosis for c in flat})


# ------------------------------------------------------------------------------------------- case page


def test_case_page_shows_annotations_other_studies_and_feedback(rsite):
    b = client(rsite, "rita")
    cases = list(cases_by_id(rsite).values())
    by_patient: dict[str, list[str]] = {}
    for c in cases:
        by_patient.setdefault(c.patient_id, []).append(c.case_id)
    case_id, other = next(ids for ids in by_patient.values() if len(ids) >= 2)[:2]
    html = b.get(f"/cases/{case_id}").text
    for kind in ("reader", "predicted", "truth"):
        assert f'<h3 class="kind">{kind}</h3>' in html
    assert html.count("<meter") == 3 * 19
    section = html.split("other studies</h2>")[1].split("</section>")[0]
    assert f">{other}</a>" in section
    # feedback history: after a round that marks this case
    query = next(c.case_id for c in cases if c.case_id not in (case_id, other))
    sid = start(b, query, k="50")
    r = b.post(f"/sessions/{sid}/feedback", data={"csrf_token": b.token("/cases"), f"mark-{case_id}": "irrelevant"})
    assert r.status_code == 302
    history = b.get(f"/cases/{case_id}").text.split('id="feedback-history"')[1]
    assert sid in history and "irrelevant" in history and "rita" in history


# ------------------------------------------------------------------------------------------- escaping


def test_script_in_a_diagnosis_or_caption_renders_as_text(rsite):
    from webapp import engines

    evil = "<script>alert(1)</script>"
    case = Case("evil-1", "evil-patient", "evil-study", diagnosis=evil, liver_segment="<b>VII</b>", age=50, sex="F")
    write_case(rsite.store, case, [Annotation("reader", {next(iter(_vocab())): 0.9})], collection=bundled().iri)
    engines.invalidate(rsite.app.extensions["semgraph"])
    b = client(rsite, "rita")
    html = b.get("/cases/evil-1").text
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>VII</b>" not in html and "segment &lt;b&gt;VII&lt;/b&gt;" in html  # the caption is escaped
    sid = start(b, "evil-1")
    page = b.get(f"/sessions/{sid}").text
    assert evil not in page and "&lt;script&gt;" in page
    listing = b.get("/cases?q=evil").text
    assert evil not in listing and "&lt;script&gt;alert(1)&lt;/script&gt;" in listing


def _vocab():
    from ontology.paper_terms import paper_terms

    return [t.iri for t in paper_terms()]


# ------------------------------------------------------------------------------------------- image queries


def _dicom_and_box(rsite, case_id):
    from semgraph.cohort import read_manifest

    record = next(r for r in read_manifest(rsite.cohort / "manifest.json").cases if r.case_id == case_id)
    from PIL import Image

    mask = np.asarray(Image.open(record.mask)) > 0
    rows, cols = np.nonzero(mask)
    return record.image, [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]


def test_query_by_uploaded_image_and_drawn_rectangle(rsite):
    b = client(rsite, "rita")
    image, box = _dicom_and_box(rsite, rsite.case_ids[3])
    with open(image, "rb") as handle:
        r = b.post("/query/image", data={"csrf_token": b.token("/query/image")},
                   files={"image": ("lesion.dcm", handle, "application/dicom")})
    assert r.status_code == 302, r.text
    region = r.headers["Location"]
    page = b.get(region)
    assert page.status_code == 200 and 'id="roi-canvas"' in page.text and "<script>" not in page.text.split("<main>")[1]
    token = region.rstrip("/").rsplit("/", 1)[1]
    assert b.get(f"/api/v1/uploads/{token}/slice.raw").headers["Content-Type"] == "application/octet-stream"
    r = b.post(region, data={"csrf_token": b.token(region), "roi_kind": "rectangle",
                             "roi_points": json.dumps(box), "k": "10"})
    assert r.status_code == 302, r.text
    html = b.get(r.headers["Location"]).text
    assert "uploaded image lesion.dcm" in html
    assert len(cards(html)) == 10
    assert html.count("<meter") == 19
    # the session started in the shared graph, but the image's file name, token and region stay private
    sid = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    rows = rsite.store.select("SELECT ?title ?p WHERE { GRAPH ?g { ?s rdfs:label $sid ; dcterms:title ?title ; "
                              "sg:parameters ?p } }", {"sid": sid})
    assert [(str(x["title"]), json.loads(str(x["p"]))["k"]) for x in rows] == [("uploaded image", 10)]
    assert not rsite.store.ask("ASK { GRAPH ?g { ?s ?p ?o FILTER(CONTAINS(STR(?o), 'lesion.dcm')) } }")


def test_upload_limits_and_errors(rsite, tmp_path, monkeypatch):
    from webapp import uploads

    b = client(rsite, "rita")
    token = b.token("/query/image")
    r = b.post("/query/image", data={"csrf_token": token}, files={"image": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 400 and "unsupported type" in r.text
    r = b.post("/query/image", data={"csrf_token": token}, files={"image": ("fake.dcm", b"not a dicom", "x")})
    assert r.status_code == 400
    from PIL import Image

    png = tmp_path / "slice.png"
    Image.fromarray(np.full((64, 64), 120, dtype=np.uint8)).save(png)
    r = b.post("/query/image", data={"csrf_token": token}, files={"image": ("slice.png", png.read_bytes(), "image/png")})
    assert r.status_code == 400 and "HU" in r.text
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 100)
    r = b.post("/query/image", data={"csrf_token": token, "hu_min": "-160", "hu_max": "240"},
               files={"image": ("slice.png", png.read_bytes(), "image/png")})
    assert r.status_code == 413 and "larger than the limit" in r.text
    monkeypatch.undo()
    r = b.post("/query/image", data={"csrf_token": token, "hu_min": "-160", "hu_max": "240"},
               files={"image": ("slice.png", png.read_bytes(), "image/png")})
    assert r.status_code == 302
    # no region drawn → a clear error
    region = r.headers["Location"]
    r = b.post(region, data={"csrf_token": token})
    assert r.status_code == 400 and "draw a region" in r.text


def test_image_query_without_a_trained_model_is_a_clear_error(rsite):
    b = client(rsite, "rita")
    image, box = _dicom_and_box(rsite, rsite.case_ids[3])
    token = b.token("/query/image")
    r = b.post("/query/image", data={"csrf_token": token},
               files={"image": ("lesion.dcm", Path(image).read_bytes(), "application/dicom")})
    region = r.headers["Location"]
    marker = rsite.data_dir / "models" / "LATEST"
    saved = marker.read_text()
    marker.unlink()
    try:
        r = b.post(region, data={"csrf_token": token, "roi_kind": "rectangle", "roi_points": str(box)})
    finally:
        marker.write_text(saved)
    assert r.status_code == 409
    assert "No term model" in r.text and "Train" in r.text
