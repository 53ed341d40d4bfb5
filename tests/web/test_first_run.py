"""First-run polish of the web app: the demo password hint, the request log, the favicon, readable times, the
navigation bar, and who may train the term models."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import requests

from semgraph.cli.demo_cmd import demo_users
from semgraph.users import DEMO_PASSWORD_FILE, UserStore, save_demo_password
from webapp import create_app, request_log, serving
from webapp.site import readable_time, session_title

# ------------------------------------------------------------------------------------------- demo password hint


@pytest.fixture
def fresh_app(tmp_path):
    app = create_app({"data_dir": str(tmp_path), "TESTING": True})
    yield app, tmp_path
    app.extensions["semgraph"].close()


def test_login_and_home_name_the_demo_password_file_never_the_password(fresh_app):
    app, data_dir = fresh_app
    users = app.extensions["semgraph"].users
    client = app.test_client()
    assert "demo-password-hint" not in client.get("/login").text  # no users, no file
    users.add("radiologist", "radiologist", "Xq7-demo-secret-42")
    assert "demo-password-hint" not in client.get("/login").text  # a demo user, but no file
    path = save_demo_password(data_dir, "Xq7-demo-secret-42")
    assert path == data_dir / DEMO_PASSWORD_FILE and (path.stat().st_mode & 0o777) == 0o600
    for page in ("/login", "/"):
        text = client.get(page).text
        assert 'id="demo-password-hint"' in text and str(path) in text, page
        assert "Xq7-demo-secret-42" not in text and "semgraph user password NAME" in text
    users.remove("radiologist")
    users.add("alice", "curator", "Xq7-demo-secret-42")  # not a demo user's name
    assert "demo-password-hint" not in client.get("/login").text


def test_demo_command_saves_the_password_file(tmp_path):
    lines = demo_users(tmp_path)
    password = (tmp_path / DEMO_PASSWORD_FILE).read_text().strip()
    assert password in lines[0] and str(tmp_path / DEMO_PASSWORD_FILE) in lines[0]
    assert "semgraph user password NAME" in lines[0]
    assert UserStore.in_data_dir(tmp_path).authenticate("admin", password).role == "admin"


# ------------------------------------------------------------------------------------------- request log


def test_one_log_line_per_request_without_query_values(site, caplog):
    caplog.set_level(logging.INFO, logger=request_log.LOGGER.name)
    carl = site.client("carl")
    caplog.clear()
    assert carl.get("/api/v1/terms?q=patient-secret-123&category=x&q=again").status_code == 200
    assert requests.get(site.url + "/api/v1/me", timeout=30).status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "semgraph.requests"]
    assert len(lines) == 2, lines
    assert re.fullmatch(r"GET /api/v1/terms\?q&category 200 \d+\.\d ms carl", lines[0]), lines[0]
    assert re.fullmatch(r"GET /api/v1/me 401 \d+\.\d ms -", lines[1]), lines[1]
    assert not any("patient-secret-123" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with site.settings(REQUEST_LOG=False):
        assert carl.get("/api/v1/me").status_code == 200
    assert not [r for r in caplog.records if r.name == "semgraph.requests"]


def test_the_serving_layer_sends_the_request_log_to_stderr(capsys):
    logger = request_log.LOGGER
    saved = (list(logger.handlers), logger.level)
    try:
        for handler in saved[0]:
            logger.removeHandler(handler)
        serving.log_requests_to_stderr()
        serving.log_requests_to_stderr()  # once per process
        assert len(logger.handlers) == 1 and logger.level == logging.INFO
        logger.info("%s %s %d %.1f ms %s", "GET", "/x", 200, 1.25, "-")
        assert capsys.readouterr().err.rstrip().endswith("GET /x 200 1.2 ms -")
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        for handler in saved[0]:
            logger.addHandler(handler)
        logger.setLevel(saved[1])


# ------------------------------------------------------------------------------------------- favicon, nav bar


def test_favicon_is_our_svg_and_every_page_links_it(site):
    icon = requests.get(site.url + "/favicon.ico", timeout=30)
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg") and "<script" not in icon.text
    page = requests.get(site.url + "/login", timeout=30).text
    link = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', page)
    assert link and requests.get(site.url + link.group(1), timeout=30).content == icon.content


@pytest.mark.parametrize("name, sees_jobs", [("rita", True), ("carl", True), ("ada", True), ("rhea", False),
                                             (None, False)])
def test_jobs_link_for_the_roles_that_may_use_it(site, name, sees_jobs):
    nav = site.client(name).get("/terms").text.split("<nav>", 1)[1].split("</nav>", 1)[0]
    assert ('href="/jobs">Jobs</a>' in nav) is sees_jobs
    assert ('href="/query/pacs">PACS</a>' in nav) is (name in ("rita", "ada"))  # the radiologists' PACS browser


# ------------------------------------------------------------------------------------------- training role


def test_radiologists_may_not_train_the_shared_term_models(site):
    rita = site.client("rita")
    page = rita.get("/jobs").text
    assert 'action="/jobs/train"' not in page and 'action="/jobs/ingest"' in page
    assert "curators and admins train them" in page
    r = rita.post("/jobs/train", data={"csrf_token": rita.csrf("/jobs")})
    assert r.status_code == 403 and "needs the curator or admin role" in r.text
    rita.with_api_token()
    r = rita.post("/api/v1/jobs", json={"kind": "train"})
    assert r.status_code == 403
    assert r.json()["error"]["message"].startswith("training the term models needs the curator or admin role")
    assert "rita (radiologist)" in r.json()["error"]["message"]
    assert 'action="/jobs/train"' in site.client("carl").get("/jobs").text


# ------------------------------------------------------------------------------------------- readable times


@pytest.mark.parametrize("iso, shown", [
    ("2026-12-05T14:03:27+00:00", "5 Dec 2026 14:03 UTC"),
    ("2026-12-05T15:03:59+01:00", "5 Dec 2026 14:03 UTC"),
    ("2027-01-01T00:30:00-01:00", "1 Jan 2027 01:30 UTC"),
    ("2026-03-09T08:07:06.123456", "9 Mar 2026 08:07 UTC"),
    ("2026-12-05T14:03:27Z", "5 Dec 2026 14:03 UTC"),
    ("not a time", "not a time"),
    (None, ""),
])
def test_readable_time(iso, shown):
    assert readable_time(iso) == shown


def test_session_titles():
    assert session_title({"session_id": "ab12", "query_case": "case-000007"}) == "case case-000007"
    assert session_title({"session_id": "ab12", "query_case": None, "query_text": "hypodense  rim"}) == \
        "text “hypodense rim”"
    assert session_title({"session_id": "ab12"}) == "uploaded image or term vector"


def test_jobs_page_shows_readable_times_and_the_json_keeps_iso(site):
    record = {"job_id": "0123456789abcdef", "kind": "ingest", "user": "carl", "state": "done", "done": 1, "total": 1,
              "message": "ingested 1", "result": {}, "error": None, "created_at": "2026-12-05T14:03:27+00:00",
              "started_at": None, "finished_at": None}
    job_file = Path(site.data_dir) / "jobs" / "0123456789abcdef.json"
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps(record))
    try:
        carl = site.client("carl")
        page = carl.get("/jobs").text
        assert '<time datetime="2026-12-05T14:03:27+00:00">5 Dec 2026 14:03 UTC</time>' in page
        listed = {j["job_id"]: j for j in carl.get("/api/v1/jobs").json()}
        assert listed["0123456789abcdef"]["created_at"] == "2026-12-05T14:03:27+00:00"
    finally:
        job_file.unlink()
