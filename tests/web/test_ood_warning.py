"""Out-of-distribution warnings of image queries over real HTTP: the JSON answer's ``warnings`` list, the alert box
of the session page (escaped, kept with the session), and no warning for a CT lesion of the cohort. One
module-scoped app over the generated 30-case cohort with trained term models (radiology_fixture)."""

from __future__ import annotations

import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import radiology_fixture
import requests

USERS = {"rita": ("radiologist", "rita-password-1")}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ALERT = re.compile(r'<section class="card alert" role="alert" id="query-warnings">(.*?)</section>', re.DOTALL)


@pytest.fixture(scope="module")
def rsite(tmp_path_factory):
    site = radiology_fixture.build_cohort_site(tmp_path_factory, USERS)
    yield site
    site.stop()


class Browser:
    """A logged-in requests session (redirects not followed), with the form CSRF token and the API header."""

    def __init__(self, base: str):
        self.base, self.http = base, requests.Session()
        token = self.token("/login")
        r = self.post("/login", data={"name": "rita", "password": USERS["rita"][1], "csrf_token": token})
        assert r.status_code == 302, r.text

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, timeout=60, allow_redirects=False, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.http.post(self.base + path, timeout=60, allow_redirects=False, **kw)

    def token(self, path: str) -> str:
        return _CSRF.search(self.get(path).text).group(1)

    def api(self, path: str, **kw) -> requests.Response:
        headers = {"X-CSRF-Token": self.get("/api/v1/me").json()["csrf_token"]}
        return self.post("/api/v1" + path, headers=headers, **kw)


def _mr_small(modality: str | None = None) -> bytes:
    """pydicom's MR_small.dcm, with another Modality value when given."""
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file("MR_small.dcm")
    if modality is None:
        return Path(path).read_bytes()
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # not a valid CS value, on purpose
        ds.Modality = modality
        out = io.BytesIO()
        ds.save_as(out)
    return out.getvalue()


def _case(rsite, index: int = 0):
    """(DICOM bytes, mask bytes, bounding box) of a cohort case."""
    from PIL import Image

    from semgraph.cohort import read_manifest

    record = read_manifest(rsite.cohort / "manifest.json").cases[index]
    rows, cols = np.nonzero(np.asarray(Image.open(record.mask)) > 0)
    box = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
    return Path(record.image).read_bytes(), Path(record.mask).read_bytes(), box


def test_api_image_search_lists_warnings_and_still_ranks(rsite):
    b = Browser(rsite.url)
    image, mask, _ = _case(rsite)
    r = b.api("/search/image", data={"k": "5"}, files={"image": ("ct.dcm", image, "application/dicom"),
                                                       "mask": ("m.png", mask, "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == [] and len(r.json()["results"]) == 5
    r = b.api("/search/image", data={"k": "5", "roi": json.dumps({"rectangle": [16, 16, 48, 48]})},
              files={"image": ("mr.dcm", _mr_small(), "application/dicom")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 5 and len(body["vector"]) == 19  # not blocked
    codes = [w["code"] for w in body["warnings"]]
    assert codes[0] == "modality" and "features" in codes
    assert all(set(w) == {"code", "message"} for w in body["warnings"])
    assert "DICOM MR image, not CT" in body["warnings"][0]["message"]


def test_api_image_session_keeps_its_warnings(rsite):
    b = Browser(rsite.url)
    r = b.api("/sessions", data={"k": "4", "roi": json.dumps({"rectangle": [16, 16, 48, 48]})},
              files={"image": ("mr.dcm", _mr_small(), "application/dicom")})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"][0]["code"] == "modality"
    again = b.get(r.headers["Location"]).json()
    assert again["warnings"] == r.json()["warnings"]
    case_session = b.api("/sessions", json={"case_id": rsite.case_ids[0], "k": 4})
    assert case_session.status_code == 200 and case_session.json()["warnings"] == []


def _page_search(b: Browser, image: bytes, name: str, roi_points: list[int]) -> str:
    """Upload through the page, draw a rectangle, run the search; the HTML of the session page it leads to."""
    r = b.post("/query/image", data={"csrf_token": b.token("/query/image")},
               files={"image": (name, image, "application/dicom")})
    assert r.status_code == 302, r.text
    region = r.headers["Location"]
    r = b.post(region, data={"csrf_token": b.token(region), "roi_kind": "rectangle",
                             "roi_points": json.dumps(roi_points), "k": "6"})
    assert r.status_code == 302, r.text
    page = b.get(r.headers["Location"])
    assert page.status_code == 200
    return page.text


def test_session_page_shows_an_escaped_alert_box(rsite):
    b = Browser(rsite.url)
    html = _page_search(b, _mr_small("<b>XR</b>"), "odd.dcm", [16, 16, 48, 48])
    alert = _ALERT.search(html)
    assert alert, "no alert box on the session page"
    assert 'data-code="modality"' in alert.group(1) and 'data-code="features"' in alert.group(1)
    assert "DICOM &lt;b&gt;XR&lt;/b&gt; image, not CT" in alert.group(1) and "<b>XR" not in html
    assert len(re.findall(r'<article class="hit', html)) == 6  # the results are there all the same


def test_session_page_of_a_cohort_ct_has_no_alert(rsite):
    b = Browser(rsite.url)
    image, _, box = _case(rsite, 3)
    html = _page_search(b, image, "lesion.dcm", box)
    assert 'id="query-warnings"' not in html and "uploaded image lesion.dcm" in html
