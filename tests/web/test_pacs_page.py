"""'Query from PACS' (webapp/pacs.py) over real HTTP against the real Orthanc: browse, pick a slice, draw, search."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from livesite import WebClient
from pacs_fixture import make_seg, one_case_per_study, pacs_study
from radiology_fixture import build_cohort_site

USERS = {"rita": ("radiologist", "rita-password-1"), "rhea": ("researcher", "rhea-password-1")}
PASSWORDS = {name: password for name, (_, password) in USERS.items()}


@pytest.fixture(scope="module")
def pacs_site(tmp_path_factory, orthanc):
    """A cohort site configured with the Orthanc PACS, which holds three of the cohort's studies (one with a SEG)."""
    from semgraph import cohort

    site = build_cohort_site(tmp_path_factory, USERS, extra={
        "dicomweb_url": orthanc.dicomweb_url, "dicomweb_user": orthanc.auth[0], "dicomweb_password": orthanc.auth[1]})
    orthanc.clear()
    studies = [pacs_study(r) for r in one_case_per_study(cohort.read_manifest(site.cohort / "manifest.json"))[:3]]
    for study in studies:
        orthanc.upload(study.image)
    folder = tmp_path_factory.mktemp("pacs-seg")
    studies[0].roi_uid = make_seg(studies[0].image, studies[0].mask, folder / "seg.dcm")
    orthanc.upload(folder / "seg.dcm")
    yield site, studies
    site.stop()
    orthanc.clear()  # the PACS is shared by the session's other modules


def _client(site, name="rita") -> WebClient:
    return WebClient(site.url, PASSWORDS).logged_in(name)


def test_studies_page_and_its_twin_list_the_pacs(pacs_site):
    site, studies = pacs_site
    rita = _client(site)
    page = rita.get("/query/pacs")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    for study in studies:
        assert f"study={study.study_uid}" in page.text and study.patient_id in page.text
    data = rita.get("/api/v1/pacs/studies").json()
    assert data["configured"] is True and data["page"] == 1 and data["more"] is False
    assert {s["study_uid"] for s in data["studies"]} == {s.study_uid for s in studies}
    assert orthanc_password_absent(page.text, data)


def orthanc_password_absent(*texts) -> bool:
    return all(USERS["rita"][1] not in str(t) and "not-a-secret-pacs-password" not in str(t) for t in texts)


def test_search_by_patient_and_date(pacs_site):
    site, studies = pacs_site
    rita = _client(site)
    one = studies[1]
    data = rita.get("/api/v1/pacs/studies", params={"patient": one.patient_id}).json()
    assert {s["study_uid"] for s in data["studies"]} == {s.study_uid for s in studies if s.patient_id == one.patient_id}
    data = rita.get("/api/v1/pacs/studies", params={"date_from": one.study_date, "date_to": one.study_date}).json()
    assert one.study_uid in {s["study_uid"] for s in data["studies"]}
    assert all(s["study_date"] == one.study_date for s in data["studies"])
    page = rita.get("/query/pacs", params={"patient": "nobody"})
    assert page.status_code == 200 and "No study matches" in page.text
    bad = rita.get("/api/v1/pacs/studies", params={"date_from": "yesterday"})
    assert bad.status_code == 400 and "date_from" in bad.json()["error"]["message"]


def test_a_study_lists_its_slices_with_thumbnails(pacs_site):
    site, studies = pacs_site
    rita = _client(site)
    study = studies[0]
    data = rita.get("/api/v1/pacs/studies", params={"study": study.study_uid}).json()
    [series] = data["series"]
    assert series["series_uid"] == study.series_uid and series["modality"] == "CT"
    assert [s["sop_uid"] for s in series["slices"]] == [study.sop_uid]
    assert [r["modality"] for r in data["roi_series"]] == ["SEG"]
    page = rita.get("/query/pacs", params={"study": study.study_uid})
    assert page.status_code == 200 and f'value="{study.sop_uid}"' in page.text
    thumb = rita.get(series["slices"][0]["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/png"
    assert thumb.content.startswith(b"\x89PNG")


def test_pick_a_slice_draw_a_region_and_search(pacs_site):
    site, studies = pacs_site
    rita = _client(site)
    study = studies[0]
    token = rita.csrf(f"/query/pacs?study={study.study_uid}")
    picked = rita.post("/query/pacs/slice", data={"csrf_token": token, "study": study.study_uid,
                                                   "series": study.series_uid, "instance": study.sop_uid})
    assert picked.status_code == 302, picked.text
    region = picked.headers["Location"]
    assert re.fullmatch(r"/query/image/[0-9a-f]{24}", region)
    page = rita.get(region)
    assert page.status_code == 200 and f"{study.sop_uid}.dcm" in page.text
    rows, cols = np.nonzero(study.mask)
    box = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
    searched = rita.post(region, data={"csrf_token": token, "roi_kind": "rectangle", "roi_points": str(box),
                                       "k": "5"})
    assert searched.status_code == 302 and searched.headers["Location"].startswith("/sessions/")
    session = rita.get("/api/v1" + searched.headers["Location"].split("?")[0]).json()
    assert len(session["results"]) == 5


def test_search_with_the_seg_region_of_the_study(pacs_site):
    site, studies = pacs_site
    rita = _client(site)
    study = studies[0]
    page = rita.get("/query/pacs", params={"study": study.study_uid})
    assert f'value="{study.roi_uid}"' in page.text and "Search with the SEG region" in page.text
    token = rita.csrf(f"/query/pacs?study={study.study_uid}")
    searched = rita.post("/query/pacs/region", data={"csrf_token": token, "study": study.study_uid,
                                                      "roi": study.roi_uid})
    assert searched.status_code == 302 and searched.headers["Location"].startswith("/sessions/"), searched.text
    session = rita.get("/api/v1" + searched.headers["Location"].split("?")[0]).json()
    assert session["results"][0]["case_id"] == study.case_id  # the SEG is the cohort case's own mask
    api = _client(site).with_api_token()
    made = api.post("/api/v1/pacs/region", json={"study": study.study_uid, "roi": study.roi_uid, "k": 3})
    assert made.status_code == 201, made.text
    twin = api.get(made.json()["session"]).json()
    assert [h["case_id"] for h in twin["results"]] == [h["case_id"] for h in session["results"][:3]]
    wrong = api.post("/api/v1/pacs/region", json={"study": studies[1].study_uid, "roi": study.roi_uid})
    assert wrong.status_code == 404  # the SEG is not in that study


def test_slice_twin_returns_the_upload(pacs_site):
    site, studies = pacs_site
    rita = _client(site).with_api_token()
    study = studies[1]
    made = rita.post("/api/v1/pacs/slice", json={"study": study.study_uid, "series": study.series_uid,
                                                 "instance": study.sop_uid})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["shape"] == [128, 128] and body["filename"] == f"{study.sop_uid}.dcm"
    assert body["region_page"] == f"/query/image/{body['token']}"
    other = _client(site, "rita")
    assert other.get(body["region_page"]).status_code == 200  # same user, another login: still theirs


def test_missing_study_and_instance_are_404_and_bad_uids_400(pacs_site):
    site, studies = pacs_site
    rita = _client(site).with_api_token()
    missing = rita.get("/api/v1/pacs/studies", params={"study": "1.2.3.4.5.6"})
    assert missing.status_code == 404 and "not on the PACS" in missing.json()["error"]["message"]
    study = studies[2]
    gone = rita.post("/api/v1/pacs/slice", json={"study": study.study_uid, "series": study.series_uid,
                                                 "instance": "1.2.3.4"})
    assert gone.status_code == 404
    bad = rita.post("/api/v1/pacs/slice", json={"study": "x' OR 1", "series": study.series_uid,
                                                "instance": study.sop_uid})
    assert bad.status_code == 400 and "not a DICOM UID" in bad.json()["error"]["message"]
    assert rita.get("/query/pacs", params={"study": "1.2.3.4.5.6"}).status_code == 404


def test_radiologists_only(pacs_site):
    site, _ = pacs_site
    assert WebClient(site.url).get("/query/pacs").status_code in (302, 401)
    rhea = _client(site, "rhea")
    assert rhea.get("/query/pacs").status_code == 403
    assert rhea.get("/api/v1/pacs/studies").status_code == 403


def test_a_pacs_that_is_down_or_refuses_is_a_502(pacs_site, monkeypatch):
    from kg.server import free_loopback_port

    site, _ = pacs_site
    rita = _client(site)
    services = site.app.extensions["semgraph"]
    monkeypatch.setattr(services, "config", dataclasses.replace(services.config, dicomweb_password="wrong"))
    refused = rita.get("/api/v1/pacs/studies")
    assert refused.status_code == 502 and "refused the credentials" in refused.json()["error"]["message"]
    monkeypatch.setattr(services, "config", dataclasses.replace(
        services.config, dicomweb_url=f"http://127.0.0.1:{free_loopback_port()}/dicom-web", dicomweb_timeout=2.0))
    down = rita.get("/query/pacs")
    assert down.status_code == 502 and "cannot reach" in down.text


def test_not_configured_says_how(site):
    rita = site.client("rita")
    page = rita.get("/query/pacs")
    assert page.status_code == 200 and "No PACS is configured" in page.text and "SEMGRAPH_DICOMWEB_URL" in page.text
    data = rita.get("/api/v1/pacs/studies").json()
    assert data["configured"] is False and "SEMGRAPH_DICOMWEB_URL" in data["setup"]
