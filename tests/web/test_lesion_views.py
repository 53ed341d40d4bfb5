"""Issue 18, web part: lesion-centred thumbnails, text-search results and timeline linking to case pages with
images, and a cases page with one diagnosis filter (over real HTTP on a generated, ingested cohort)."""

from __future__ import annotations

import io
import re
from html import unescape

import numpy as np
import pytest
from livesite import WebClient, live_app
from PIL import Image

import ontology
from semgraph.cohort import generate, read_mask
from semgraph.exchange.ingest import ingest
from semgraph.graph.casegraph import read_cases
from semgraph.imaging import lesion_box
from semgraph.text.captions import write_captions
from webapp.thumbnails import OUTLINE

USERS = {"rita": ("radiologist", "rita-password-1")}
N = 10


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("lesion-views-data")

    def fill(store):
        ontology.load(store, ontology.BUNDLED_RADLEX)
        report = ingest(store, generate(N, seed=0, out_dir=data_dir / "cohort", size=128, progress=False), data_dir,
                        progress=False)
        assert len(report.ingested) == N, report.summary()
        write_captions(store)

    with live_app(data_dir, USERS, fill) as server:
        server.data_dir = data_dir
        server.cases = {c.case_id: c for c in read_cases(server.app.extensions["semgraph"].store)}
        yield server


@pytest.fixture
def rita(site) -> WebClient:
    return WebClient(site.url, {"rita": USERS["rita"][1]}).logged_in("rita")


def test_lesion_box_by_hand():
    mask = np.zeros((100, 120), dtype=bool)
    mask[10:20, 100:116] = True  # 10 x 16 near the top right corner: a 32-pixel square pushed inside the image
    assert lesion_box(mask) == (0, 32, 88, 120)
    big = np.zeros((64, 64), dtype=bool)
    big[20:50, 30:40] = True  # 30 rows: side 60, centred on row 35 and column 35, moved inside 64 columns
    assert lesion_box(big) == (4, 64, 4, 64)
    assert lesion_box(np.zeros((8, 8), dtype=bool)) is None


def test_the_lesion_crop_contains_the_mask_and_shows_its_outline(site, rita):
    case = site.cases["case-000000"]
    mask = read_mask(site.data_dir / "cohort" / "masks" / "0000" / "case-000000.png")
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = lesion_box(mask)
    assert top <= rows.min() and rows.max() < bottom and left <= cols.min() and cols.max() < right
    assert bottom - top == right - left < 128  # a square, smaller than the 128-pixel slice
    url = f"/api/v1/cases/{case.case_id}/thumbnail.png"
    crop = rita.get(url, params={"size": 96, "crop": "lesion"})
    whole = rita.get(url, params={"size": 96})
    assert crop.status_code == whole.status_code == 200 and "X-Thumbnail" not in crop.headers
    outline_share = []
    for answer in (crop, whole):
        pixels = np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"))
        assert pixels.shape == (96, 96, 3)
        outline_share.append(np.all(pixels == OUTLINE, axis=-1).mean())
    assert outline_share[0] > 2 * outline_share[1] > 0  # the lesion fills much more of the cropped thumbnail
    assert rita.get(url, params={"crop": "zoom"}).status_code == 400


def test_text_search_results_link_to_case_pages_with_lesion_thumbnails(rita):
    page = rita.get("/search", params={"q": "hypodense lesion", "k": "5"}).text
    rows = re.findall(r'<li data-case="([^"]+)">(.*?)</li>', page, re.DOTALL)
    assert len(rows) == 5
    for case_id, row in rows:
        assert f'href="/cases/{case_id}"' in row
        assert f'src="/api/v1/cases/{case_id}/thumbnail.png?size=96&amp;crop=lesion"' in row
        assert "timeline and suggestion" in row


def test_timeline_entries_are_links_with_images(site, rita):
    by_patient: dict[str, list[str]] = {}
    for case in site.cases.values():
        by_patient.setdefault(case.patient_id, []).append(case.case_id)
    same_patient = sorted(max(by_patient.values(), key=len))
    assert len(same_patient) >= 2  # the seed-0 cohort of 10 has a patient with several cases
    page = rita.get("/search", params={"q": "hypodense", "case": same_patient[0]}).text
    timeline = page.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    linked = sorted(set(re.findall(r'<a href="/cases/([^"]+)"><strong>', timeline)))
    assert linked == same_patient
    for other in same_patient:
        assert f'src="/api/v1/cases/{other}/thumbnail.png?size=96&amp;crop=lesion"' in timeline


def test_cases_page_has_one_diagnosis_field_and_lesion_thumbnails(site, rita):
    page = rita.get("/cases").text
    assert len(re.findall(r'name="diagnosis"', page)) == 1  # the shared filter macro's, nothing else
    images = re.findall(r'<img class="lesion-thumb" src="([^"]+)"[^>]*width="96" height="96"', page)
    assert len(images) == N
    assert all(unescape(src).endswith("?size=96&crop=lesion") for src in images)
    diagnosis = site.cases["case-000000"].diagnosis
    found = rita.get("/cases", params={"q": diagnosis.upper()}).text
    listed = set(re.findall(r'<a href="/cases/([^"]+)">\1</a>', found))
    assert listed == {c.case_id for c in site.cases.values() if c.diagnosis == diagnosis}
