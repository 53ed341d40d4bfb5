"""Sessions and logins, attacked over real HTTP: a cookie replayed after logout, open redirects through ``next``,
password guessing, the cookie and secret-key settings, weak passwords, and another user's uploaded query image.

Logins throttle per user name and per client address with counters in the data folder; these tests use small
thresholds, and the apps that share one data folder stand in for the worker processes of ``semgraph serve``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from click.testing import CliRunner
from livesite import LiveServer, WebClient

from semgraph.errors import ConfigurationError, InvalidInput
from semgraph.users import UserStore

from .conftest import PASSWORDS, Live

MAX_PER_USER = 3
#: The module's own users besides the conftest ones (rita, carl, rhea): a second radiologist, an admin, and
#: users that the throttling tests lock out.
EXTRA = {"rob": ("radiologist", "rob-password-1"), "ada": ("admin", "ada-password-12"),
         "tess": ("curator", "tess-password-1"), "troy": ("curator", "troy-password-1")}
ALL_PASSWORDS = {**PASSWORDS, **{name: password for name, (_, password) in EXTRA.items()}}


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    site = Live(tmp_path_factory.mktemp("login-security"), LOGIN_FAILURES_PER_USER=MAX_PER_USER,
                LOGIN_FAILURES_PER_ADDRESS=1000, LOGIN_FAILURE_WINDOW=600.0)
    for name, (role, password) in EXTRA.items():
        site.services.users.add(name, role, password)
    yield site
    site.stop()


def client(live: Live, user: str | None = None) -> WebClient:
    """A client of ``live``, logged in as ``user`` if given."""
    web = WebClient(live.url, ALL_PASSWORDS)
    return web.logged_in(user) if user else web


def replay(base: str, cookies: dict[str, str]) -> WebClient:
    """A new client that sends only ``cookies`` (a cookie saved earlier, replayed)."""
    web = WebClient(base)
    web.http.cookies.update(cookies)
    return web


def logout(web: WebClient) -> requests.Response:
    """Log ``web`` out through the form (with its CSRF token), asserting that it worked."""
    response = web.post("/logout", data={"csrf_token": web.csrf("/")})
    assert response.status_code == 302, response.text[:300]
    return response


@pytest.fixture
def twin_apps(tmp_path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two apps over one data folder (each with its own store), as two worker processes of one server are."""
    from webapp import create_app

    data_dir = tmp_path / "data"
    settings = {"LOGIN_FAILURES_PER_USER": MAX_PER_USER, "LOGIN_FAILURES_PER_ADDRESS": 1000}
    apps = [create_app({"data_dir": str(data_dir), "store": str(tmp_path / f"graph-{i}"), **settings})
            for i in (1, 2)]
    apps[0].extensions["semgraph"].users.add("carl", "curator", PASSWORDS["carl"])
    servers = [LiveServer(app, threads=2) for app in apps]
    yield servers[0], servers[1]
    for server in servers:
        server.stop()
        server.app.extensions["semgraph"].close()


# ------------------------------------------------------------------------------------------- logout (row 6)


def test_a_cookie_replayed_after_logout_is_logged_out(live):
    curator = client(live, "carl")
    saved = curator.http.cookies.get_dict()
    assert replay(live.url, saved).get("/api/v1/me").json()["name"] == "carl"
    logout(curator)
    replayed = replay(live.url, saved)
    me = replayed.get("/api/v1/me")
    assert me.status_code == 401, me.text[:300]
    assert "csrf_token" not in me.text
    token = replayed.csrf("/login")  # the stale cookie's own CSRF token does not make its writes pass either
    update = replayed.post("/sparql", data={"update": "INSERT DATA { GRAPH <urn:x:stale> { <urn:x:a> <urn:x:b> "
                                                      "<urn:x:c> } }"}, headers={"X-CSRF-Token": token})
    assert update.status_code in (401, 403) and "urn:x:stale" not in live.store.graphs()
    assert client(live, "carl").get("/api/v1/me").json()["name"] == "carl"  # a new login works as before


def test_a_password_or_role_change_ends_the_users_sessions(live):
    users = live.services.users
    users.add("temp", "curator", "temporary-password-1")
    web = WebClient(live.url, {"temp": "temporary-password-1"}).logged_in("temp")
    saved = web.http.cookies.get_dict()
    users.add("temp", "curator", "another-password-2", replace=True)
    assert replay(live.url, saved).get("/api/v1/me").status_code == 401
    web = WebClient(live.url, {"temp": "another-password-2"}).logged_in("temp")
    saved = web.http.cookies.get_dict()
    users.add("temp", "researcher", "another-password-2", replace=True)
    assert replay(live.url, saved).get("/api/v1/me").status_code == 401
    users.remove("temp")
    users.add("temp", "admin", "third-password-3")  # a new user of the same name does not inherit old cookies
    assert replay(live.url, saved).get("/api/v1/me").status_code == 401


def test_a_logout_through_one_worker_ends_the_session_in_the_other(twin_apps):
    first, second = twin_apps
    web = WebClient(first.url, PASSWORDS).logged_in("carl")
    saved = web.http.cookies.get_dict()
    assert replay(second.url, saved).get("/api/v1/me").json()["name"] == "carl"
    logout(web)
    assert replay(second.url, saved).get("/api/v1/me").status_code == 401


# ------------------------------------------------------------------------------------------- next (row 7)

#: Values of ``next`` that a browser would follow to another site (it drops tabs and line breaks from URLs, reads
#: a backslash as a slash, and "//host" as a host).
FOREIGN_NEXT = ["/\t/evil.example/phish", "/\n/evil.example/phish", "/\r/evil.example", "/\r\n/evil.example",
                "/\\evil.example", "\\\\evil.example", "/\\/evil.example", "//evil.example", "///evil.example",
                "https://evil.example/", "javascript:alert(1)", " //evil.example", "/\x00/evil.example",
                "/\x0b/evil.example", "/\u3000/evil.example", "/\u200b/evil.example", "http:/evil.example"]


def _login_with_next(live: Live, target: str) -> tuple[int, str | None]:
    """(status, Location) of a login by rita with ``target`` as ``next``."""
    web = client(live)
    token = web.csrf("/login?" + requests.compat.urlencode({"next": target}))
    response = web.post("/login", data={"name": "rita", "password": PASSWORDS["rita"], "csrf_token": token,
                                        "next": target})
    return response.status_code, response.headers.get("Location")


def test_next_follows_only_same_site_paths(live):
    followed = {target: _login_with_next(live, target) for target in FOREIGN_NEXT}
    assert {target: answer for target, answer in followed.items() if answer != (302, "/")} == {}
    for local in ("/terms", "/sessions?group=diagnosis", "/cases/case-000001", "/search?q=a%20b"):
        assert _login_with_next(live, local) == (302, local)


# ------------------------------------------------------------------------------------------- throttling (row 8)


def _wrong(web: WebClient, name: str) -> requests.Response:
    return web.login(name, "not-the-password-at-all")


def test_failed_logins_for_one_name_are_throttled(live):
    attacker = client(live)
    codes = [_wrong(attacker, "tess").status_code for _ in range(MAX_PER_USER)]
    assert codes == [401] * MAX_PER_USER
    blocked = _wrong(attacker, "tess")
    assert blocked.status_code == 429, blocked.text[:300]
    assert 0 < int(blocked.headers["Retry-After"]) <= 600
    assert "Too many" in blocked.text and "not-the-password" not in blocked.text
    # the right password is not even checked while the name is blocked, from any client
    assert client(live).login("tess").status_code == 429
    # other names (and so other users behind the same address) are not affected
    assert client(live).login("rita").status_code == 302


def test_a_successful_login_resets_the_counter_of_its_name(live):
    web = client(live)
    before = [_wrong(web, "troy").status_code for _ in range(MAX_PER_USER - 1)]
    assert web.login("troy").status_code == 302
    after = [_wrong(client(live), "troy").status_code for _ in range(MAX_PER_USER)]
    assert before + after == [401] * (2 * MAX_PER_USER - 1)
    assert _wrong(client(live), "troy").status_code == 429


def test_failed_logins_from_one_address_are_throttled(tmp_path):
    from livesite import live_app

    users = {"carl": ("curator", PASSWORDS["carl"])}
    with live_app(tmp_path / "data", users, LOGIN_FAILURES_PER_USER=1000, LOGIN_FAILURES_PER_ADDRESS=4) as server:
        web = WebClient(server.url, PASSWORDS)
        codes = [_wrong(web, f"guess{i}").status_code for i in range(4)]
        assert codes == [401] * 4
        blocked = web.login("carl")  # every name is blocked from this address now, even with its password
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0


def test_the_login_counters_are_shared_by_the_workers(twin_apps):
    first, second = twin_apps
    codes = [_wrong(WebClient(first.url), "carl").status_code for _ in range(MAX_PER_USER)]
    assert codes == [401] * MAX_PER_USER
    assert WebClient(second.url, PASSWORDS).login("carl").status_code == 429


# ------------------------------------------------------------------------------------------- settings (row 10)


def test_secure_cookies_setting_marks_the_session_cookie(tmp_path, monkeypatch):
    from livesite import live_app

    from webapp import create_app

    with live_app(tmp_path / "plain", {}) as server:
        assert "secure" not in WebClient(server.url).get("/login").headers["Set-Cookie"].lower()
    with live_app(tmp_path / "https", {}, SECURE_COOKIES=True) as server:
        cookie = WebClient(server.url).get("/login").headers["Set-Cookie"].lower()
        assert re.search(r";\s*secure(;|$)", cookie), cookie
    monkeypatch.setenv("SEMGRAPH_SECURE_COOKIES", "on")
    app = create_app({"data_dir": str(tmp_path / "env")})
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is True
    finally:
        app.extensions["semgraph"].close()


@pytest.mark.parametrize("how", ["setting", "environment"])
def test_short_secret_keys_are_refused(tmp_path, monkeypatch, how):
    from webapp import create_app

    def build(key: str):
        if how == "environment":
            monkeypatch.setenv("SEMGRAPH_SECRET_KEY", key)
            return create_app({"data_dir": str(tmp_path / "data")})
        return create_app({"data_dir": str(tmp_path / "data"), "SECRET_KEY": key})

    for weak in ("a", "x" * 31):
        with pytest.raises(ConfigurationError, match="at least 32 characters"):
            build(weak)
    app = build("k" * 32)
    app.extensions["semgraph"].close()


# ------------------------------------------------------------------------------------------- passwords (row 10)

WEAK = [("alice", "curator", "short-pw1", "at least 10 characters"),
        ("alice", "curator", "password123", "common"),
        ("alice", "curator", "QWERTYUIOP", "common"),
        ("alice", "curator", "1234567890", "common"),
        ("alice", "curator", "Alice-2024!!", "user name"),
        ("bob", "researcher", "researcher2025", "role")]


@pytest.mark.parametrize(("name", "role", "password", "message"), WEAK)
def test_weak_passwords_are_refused(tmp_path, name, role, password, message):
    users = UserStore.in_data_dir(tmp_path)
    with pytest.raises(InvalidInput, match=message):
        users.add(name, role, password)
    assert users.get(name) is None


def test_user_add_refuses_a_common_password(tmp_path):
    from semgraph.cli import load_commands

    run = CliRunner().invoke(load_commands(), ["--data-dir", str(tmp_path), "user", "add", "bob", "--role",
                                               "curator", "--password-stdin"], input="password1234\n")
    assert run.exit_code != 0 and "common" in run.output and "Traceback" not in run.output, run.output
    assert UserStore.in_data_dir(tmp_path).get("bob") is None
    ok = CliRunner().invoke(load_commands(), ["--data-dir", str(tmp_path), "user", "add", "bob", "--role",
                                              "curator", "--password-stdin"], input="plum-velvet-harbour\n")
    assert ok.exit_code == 0, ok.output


# ------------------------------------------------------------------------------------------- uploads (row 10)


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.full((64, 64), 120, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def rita_upload(live) -> dict:
    """An image rita uploaded (real HTTP) and a session of hers whose query is that upload."""
    from webapp import engines, web_sessions

    rita = client(live, "rita")
    page = rita.post("/query/image", data={"csrf_token": rita.csrf("/query/image"), "hu_min": "-160",
                                           "hu_max": "240"},
                     files={"image": ("jane-doe-liver.png", _png(), "image/png")})
    assert page.status_code == 302, page.text[:300]
    token = re.fullmatch(r"/query/image/([0-9a-f]{24})", page.headers["Location"]).group(1)
    with live.app.test_request_context():
        engine = engines.engine()
        vector = engine.vector(engine.ids[0]) * 0.9  # stands in for the region's predicted likelihoods
        entry = web_sessions.create_session(vector, "rita", k=5, upload=token,
                                            label="uploaded image jane-doe-liver.png",
                                            roi={"rectangle": (5, 5, 40, 40)})
    return {"token": token, "session": entry.id}


def test_another_users_upload_is_private(live, rita_upload):
    token = rita_upload["token"]
    paths = [f"/api/v1/uploads/{token}/slice.raw", f"/query/image/{token}"]
    seen = {who: [client(live, who).get(path).status_code for path in paths] for who in ("rita", "ada", "rob")}
    assert seen == {"rita": [200, 200], "ada": [200, 200], "rob": [403, 403]}
    assert client(live, "rhea").get(paths[0]).status_code == 403


def test_another_users_session_hides_its_upload(live, rita_upload):
    sid, token = rita_upload["session"], rita_upload["token"]
    own = client(live, "rita").get(f"/api/v1/sessions/{sid}").json()
    assert own["upload"] == token and "jane-doe" in own["label"]
    for who in ("rhea", "rob"):
        web = client(live, who)
        view = web.get(f"/api/v1/sessions/{sid}")
        page = web.get(f"/sessions/{sid}")
        assert view.status_code == 200 and page.status_code == 200  # the recorded session itself is shared
        assert view.json()["upload"] is None
        for text in (view.text, page.text):
            assert token not in text and "jane-doe" not in text
        assert web.get(f"/sessions/{sid}/query.png").status_code == 403
    admin = client(live, "ada")
    assert admin.get(f"/api/v1/sessions/{sid}").json()["upload"] == token
    assert admin.get(f"/sessions/{sid}/query.png").status_code == 200


def test_data_folder_keeps_no_secret_in_the_throttle_file(live):
    """The counters name users and addresses, never a tried password."""
    _wrong(client(live), "carl")
    text = "".join(p.read_text() for p in Path(live.services.config.data_dir).glob("login-*"))
    assert "carl" in text and "not-the-password" not in text
