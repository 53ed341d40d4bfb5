"""The viewer's pixel endpoints (webapp/viewer.py): a case's and an upload's slice as int16 HU with its metadata,
checked against the DICOM files read with pydicom, the ROI outline computed by hand, and who may see what."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import radiology_fixture
import requests
from PIL import Image

from semgraph.cohort import read_manifest
from webapp.viewer import roi_outline

USERS = {"rita": ("radiologist", "rita-password-1"), "rob": ("radiologist", "rob-password-1"),
         "rhea": ("researcher", "rhea-password-1"), "ada": ("admin", "ada-password-123")}


@pytest.fixture(scope="module")
def rsite(tmp_path_factory):
    site = radiology_fixture.build_cohort_site(tmp_path_factory, USERS)
    yield site
    site.stop()


def login(rsite, name: str | None) -> requests.Session:
    http = requests.Session()
    if name:
        page = http.get(rsite.url + "/login").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = http.post(rsite.url + "/login", data={"name": name, "password": USERS[name][1], "csrf_token": token},
                      allow_redirects=False)
        assert r.status_code == 302
    return http


def _token(http, url: str) -> str:
    return http.get(url).text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def _record(rsite, case_id):
    return next(r for r in read_manifest(rsite.cohort / "manifest.json").cases if r.case_id == case_id)


def _stored_hu(path) -> np.ndarray:
    """HU of a cohort DICOM read with pydicom alone: stored value × slope + intercept."""
    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(np.int32) * int(float(ds.RescaleSlope)) + int(float(ds.RescaleIntercept))


def _raw(response) -> np.ndarray:
    rows, cols = (int(v) for v in response.headers["X-Slice-Shape"].split(","))
    return np.frombuffer(response.content, dtype="<i2").reshape(rows, cols)


def test_roi_outline_of_a_two_pixel_region_by_hand():
    mask = np.zeros((3, 4), dtype=bool)
    mask[1, 1] = mask[1, 2] = True  # row 1, columns 1 and 2
    outline = roi_outline(mask)
    assert outline["box"] == [1, 1, 3, 2] and outline["pixels"] == 2
    assert sorted(outline["edges"]) == sorted([[1, 1, 1, 2], [3, 1, 3, 2],  # left and right sides
                                               [1, 1, 2, 1], [2, 1, 3, 1],  # top
                                               [1, 2, 2, 2], [2, 2, 3, 2]])  # bottom
    assert roi_outline(np.zeros((3, 3), dtype=bool)) is None and roi_outline(None) is None


def test_case_slice_metadata_and_data_equal_the_stored_dicom(rsite):
    case_id = rsite.case_ids[2]
    record = _record(rsite, case_id)
    http = login(rsite, "rhea")  # any logged-in user, like the thumbnails
    meta = http.get(f"{rsite.url}/api/v1/cases/{case_id}/slice").json()
    hu = _stored_hu(record.image)
    assert meta["shape"] == [128, 128] == list(hu.shape)
    assert meta["hu_range"] == [float(hu.min()), float(hu.max())]
    assert meta["dtype"] == "int16" and meta["byte_order"] == "little"
    mask = np.asarray(Image.open(record.mask)) > 0
    rows, cols = np.nonzero(mask)
    assert meta["roi"]["box"] == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    assert meta["roi"]["pixels"] == int(mask.sum())
    raw = http.get(rsite.url + meta["data"])
    assert raw.status_code == 200 and raw.headers["Content-Type"] == "application/octet-stream"
    assert len(raw.content) == 2 * 128 * 128
    data = _raw(raw)
    centre = (int(rows.mean()), int(cols.mean()))
    for r, c in [(0, 0), (127, 127), (64, 5), centre, (rows.min(), cols.max())]:
        assert int(data[r, c]) == int(hu[r, c]), (r, c)
    assert np.array_equal(data, hu)


def test_case_slice_needs_a_login_and_a_known_case(rsite):
    case_id = rsite.case_ids[0]
    anon = login(rsite, None)
    assert anon.get(f"{rsite.url}/api/v1/cases/{case_id}/slice", allow_redirects=False).status_code in (302, 401)
    assert anon.get(f"{rsite.url}/api/v1/cases/{case_id}/slice.raw", allow_redirects=False).status_code in (302, 401)
    rita = login(rsite, "rita")
    for suffix in ("slice", "slice.raw"):
        r = rita.get(f"{rsite.url}/api/v1/cases/no-such-case/{suffix}")
        assert r.status_code == 404 and "no-such-case" in r.json()["error"]["message"]
    assert rita.get(f"{rsite.url}/api/v1/cases/{'x' * 5000}/slice").status_code in (400, 404)


def test_a_case_whose_image_is_gone_is_404(rsite):
    case_id = rsite.case_ids[5]
    record = _record(rsite, case_id)
    moved = record.image.with_suffix(".away")
    record.image.rename(moved)
    try:
        r = login(rsite, "rita").get(f"{rsite.url}/api/v1/cases/{case_id}/slice.raw")
        assert r.status_code == 404 and "no readable image" in r.json()["error"]["message"]
    finally:
        moved.rename(record.image)


def test_upload_slice_is_private_and_carries_the_sessions_region(rsite):
    case_id = rsite.case_ids[3]
    record = _record(rsite, case_id)
    rita = login(rsite, "rita")
    with open(record.image, "rb") as handle:
        r = rita.post(rsite.url + "/query/image", data={"csrf_token": _token(rita, rsite.url + "/query/image")},
                      files={"image": ("lesion.dcm", handle, "application/dicom")}, allow_redirects=False)
    assert r.status_code == 302, r.text
    region = rsite.url + r.headers["Location"]
    token = region.rstrip("/").rsplit("/", 1)[-1]
    base = f"{rsite.url}/api/v1/uploads/{token}"
    meta = rita.get(base + "/slice").json()
    hu = _stored_hu(record.image)
    assert meta["shape"] == list(hu.shape) and meta["roi"] is None
    assert np.array_equal(_raw(rita.get(rsite.url + meta["data"])), hu)
    # the owner and admins see it; another radiologist and a researcher do not; a malformed token is unknown
    assert login(rsite, "ada").get(base + "/slice.raw").status_code == 200
    for other in ("rob", "rhea"):
        assert login(rsite, other).get(base + "/slice").status_code == 403
        assert login(rsite, other).get(base + "/slice.raw").status_code == 403
    assert rita.get(f"{rsite.url}/api/v1/uploads/{'0' * 24}/slice").status_code == 404
    assert rita.get(f"{rsite.url}/api/v1/uploads/../slice").status_code == 404
    # a session started from a drawn rectangle: its outline is that rectangle
    r = rita.post(region, data={"csrf_token": _token(rita, region), "roi_kind": "rectangle",
                                "roi_points": "[40, 50, 56, 64]", "k": "5"}, allow_redirects=False)
    assert r.status_code == 302, r.text
    sid = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    roi = rita.get(base + "/slice", params={"session": sid}).json()["roi"]
    assert roi["box"] == [40, 50, 56, 64] and roi["pixels"] == 16 * 14 and len(roi["edges"]) == 2 * (16 + 14)
    other = rita.post(rsite.url + "/api/v1/sessions", json={"case_id": case_id, "k": 3},
                      headers={"X-CSRF-Token": rita.get(rsite.url + "/api/v1/me").json()["csrf_token"]})
    assert other.status_code in (200, 201), other.text
    r = rita.get(base + "/slice", params={"session": other.json()["session_id"]})
    assert r.status_code == 400 and "does not query this upload" in r.json()["error"]["message"]


def test_pages_embed_the_viewer(rsite):
    rita = login(rsite, "rita")
    case_id = rsite.case_ids[1]
    html = rita.get(f"{rsite.url}/cases/{case_id}").text
    assert f'data-slice="/api/v1/cases/{case_id}/slice"' in html and "/static/viewer.js" in html
    r = rita.post(rsite.url + "/sessions", data={"csrf_token": _token(rita, rsite.url + f"/cases/{case_id}"),
                                                 "case_id": case_id, "k": "4"})
    assert r.status_code == 200
    assert 'id="compare-result"' in r.text and f'data-slice="/api/v1/cases/{case_id}/slice"' in r.text
