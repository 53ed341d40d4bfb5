"""What the jobs and sessions pages say over a real cohort: the training job reports what it trained, and the
session list names sessions by their query with readable start times (the JSON keeps ids and ISO times)."""

from __future__ import annotations

import time

import pytest
import radiology_fixture
from livesite import WebClient

from webapp.site import readable_time

USERS = {"rita": ("radiologist", "rita-password-1"), "carl": ("curator", "carl-password-1")}


@pytest.fixture(scope="module")
def csite(tmp_path_factory):
    site = radiology_fixture.build_cohort_site(tmp_path_factory, USERS)
    yield site
    site.stop()


def login(csite, name: str) -> WebClient:
    return WebClient(csite.url, {n: p for n, (_, p) in USERS.items()}).logged_in(name).with_api_token()


def test_training_job_reports_the_cases_and_terms_it_trained(csite):
    from ontology.paper_terms import paper_terms

    carl = login(csite, "carl")
    r = carl.post("/api/v1/jobs", json={"kind": "train"})
    assert r.status_code == 200, r.text
    for _ in range(900):
        job = carl.get(f"/api/v1/jobs/{r.json()['job_id']}").json()
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert job["state"] == "done", job
    cases, terms = len(csite.case_ids), len(paper_terms())
    assert (job["result"]["cases"], job["result"]["terms"], job["result"]["annotated"]) == (cases, terms, cases)
    expected = (f"trained {terms} term models on {cases} cases (model {job['result']['model']}); "
                f"re-annotated {cases} cases")
    assert job["message"] == job["result"]["summary"] == expected
    assert "ingested" not in job["message"]
    assert expected in carl.get("/jobs").text


def test_session_list_shows_titles_and_readable_times(csite):
    rita = login(csite, "rita")
    case_id = csite.case_ids[0]
    started = rita.post("/api/v1/sessions", json={"case_id": case_id, "k": 5})
    assert started.status_code in (200, 201), started.text
    session = started.json()
    marks = {session["results"][0]["case_id"]: "relevant", session["results"][1]["case_id"]: "irrelevant"}
    r = rita.post(f"/api/v1/sessions/{session['session_id']}/rounds", json={"marks": marks, "round": 0})
    assert r.status_code in (200, 201), r.text
    listed = {s["session_id"]: s for s in rita.get("/api/v1/sessions").json()}
    row = listed[session["session_id"]]
    assert row["started_at"][:4].isdigit() and "T" in row["started_at"]  # the JSON keeps the ISO time and the id
    page = rita.get("/sessions").text
    link = (f'<a href="/sessions/{session["session_id"]}" title="session {session["session_id"]}">'
            f"case {case_id}</a>")
    assert link in page
    assert f'<time datetime="{row["started_at"]}">{readable_time(row["started_at"])}</time>' in page
    assert f">{session['session_id']}<" not in page
