"""The account page and its JSON twins: each user creates and revokes their own API tokens, over real HTTP."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
import requests

TOKEN = re.compile(r"sg_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def label(site):
    """A fresh label per call; tokens the test left behind are revoked afterwards (the site is shared)."""
    users = site.app.extensions["semgraph"].users
    made: list[str] = []

    def make(stem: str = "t") -> str:
        made.append(f"{stem}-{time.monotonic_ns()}")
        return made[-1]

    yield make
    for name in site.roles:
        left = {info.label for info in users.tokens(name)}
        for one in made:
            if one in left:
                users.revoke_token(name, one)


def _days(entry: dict) -> float:
    created, expires = (dt.datetime.fromisoformat(entry[k]) for k in ("created", "expires"))
    return (expires - created).total_seconds() / 86400


def _me(site, token: str) -> requests.Response:
    return requests.get(site.url + "/api/v1/me", headers=bearer(token), timeout=30)


# ------------------------------------------------------------------------------------------- the page


def test_create_use_and_revoke_a_token_on_the_page(site, label):
    rita, name = site.client("rita"), label("notebook")
    page = rita.get("/account")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'id="account-name">rita<' in page.text and 'id="account-role">radiologist<' in page.text
    assert 'action="/account/tokens"' in page.text and not TOKEN.search(page.text)

    created = rita.post("/account/tokens", data={"label": name, "days": "7", "csrf_token": rita.csrf("/account")})
    assert created.status_code == 200, created.text
    assert created.headers["Cache-Control"] == "no-store"
    assert "cannot be shown again" in created.text
    shown = TOKEN.findall(created.text)
    assert len(set(shown)) == 1 and f'<code id="new-token">{shown[0]}</code>' in created.text
    token = shown[0]

    me = _me(site, token)
    assert me.status_code == 200 and (me.json()["name"], me.json()["role"]) == ("rita", "radiologist")

    listed = rita.get("/account").text
    row = re.search(rf'<tr class="token" data-label="{re.escape(name)}">(.*?)</tr>', listed, re.DOTALL)
    assert row and row.group(1).count("<time datetime=") == 2
    assert token not in listed and token.rsplit("_", 1)[1] not in listed and not TOKEN.search(listed)
    entries = {t["label"]: t for t in rita.get("/api/v1/me/tokens").json()["tokens"]}
    assert _days(entries[name]) == 7 and entries[name]["expired"] is False

    revoked = rita.post(f"/account/tokens/{name}/revoke", data={"csrf_token": rita.csrf("/account")})
    assert revoked.status_code == 303 and revoked.headers["Location"].endswith("/account")
    refused = _me(site, token)
    assert refused.status_code == 401 and "unknown or was revoked" in refused.json()["error"]["message"]
    assert f'data-label="{name}"' not in rita.get("/account").text


def test_the_page_needs_a_login_and_is_linked_for_logged_in_users(site, anon):
    answer = anon.get("/account")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert anon.get("/api/v1/me/tokens").status_code == 401
    assert 'href="/account"' not in anon.get("/").text
    for user in ("rhea", "ada"):  # any role
        client = site.client(user)
        assert 'href="/account"' in client.get("/").text
        assert client.get("/account").status_code == 200


def test_page_errors_go_through_the_error_page(site, label):
    carl, name = site.client("carl"), label("dup")
    csrf = carl.csrf("/account")
    assert carl.post("/account/tokens", data={"label": name, "days": "3", "csrf_token": csrf}).status_code == 200
    cases = [({"label": name, "days": "3"}, 400, "already has a token labelled"),
             ({"label": label(), "days": "0"}, 400, "between 1 and 3650"),
             ({"label": label(), "days": "9999"}, 400, "between 1 and 3650"),
             ({"label": label(), "days": "soon"}, 400, "whole number"),
             ({"label": "", "days": "3"}, 400, "give the token a label"),
             ({"label": "<b>bold</b>", "days": "3"}, 400, "invalid token label")]
    for form, status, message in cases:
        answer = carl.post("/account/tokens", data={**form, "csrf_token": csrf})
        assert answer.status_code == status, (form, answer.text)
        assert 'class="card error-page"' in answer.text and message in answer.text, form
        assert not TOKEN.search(answer.text)
    escaped = carl.post("/account/tokens", data={"label": "<b>bold</b>", "csrf_token": csrf}).text
    assert "<b>bold</b>" not in escaped and "&lt;b&gt;bold&lt;/b&gt;" in escaped
    no_csrf = carl.post("/account/tokens", data={"label": label(), "days": "3"})
    assert no_csrf.status_code == 400 and "Form expired" in no_csrf.text
    assert carl.post(f"/account/tokens/{name}/revoke").status_code == 400  # no CSRF token: kept
    assert name in [t["label"] for t in carl.get("/api/v1/me/tokens").json()["tokens"]]
    missing = carl.post(f"/account/tokens/{label()}/revoke", data={"csrf_token": csrf})
    assert missing.status_code == 404 and "has no token labelled" in missing.text


# ------------------------------------------------------------------------------------------- the JSON twins


def test_json_twins_create_list_and_revoke(site, label):
    carl, first, second = site.client("carl"), label("script"), label("bearer-made")
    assert carl.post("/api/v1/me/tokens", json={"label": first}).json()["error"]["title"] == "Form expired"
    carl.with_api_token()
    created = carl.post("/api/v1/me/tokens", json={"label": first, "days": 3})
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    body = created.json()
    token = body["token"]
    assert TOKEN.fullmatch(token) and body["label"] == first and _days(body) == 3 and body["expired"] is False
    default = carl.post("/api/v1/me/tokens", json={"label": label("default")}).json()
    assert _days(default) == 90  # as `semgraph user token`

    listed = carl.get("/api/v1/me/tokens")
    assert listed.status_code == 200 and token not in listed.text and not TOKEN.search(listed.text)
    assert {"label": first, "created": body["created"], "expires": body["expires"], "expired": False} in \
        listed.json()["tokens"]

    # a request signed with the token manages its user's tokens, without cookie or CSRF token
    mine = requests.get(site.url + "/api/v1/me/tokens", headers=bearer(token), timeout=30)
    assert mine.status_code == 200 and first in [t["label"] for t in mine.json()["tokens"]]
    made = requests.post(site.url + "/api/v1/me/tokens", json={"label": second, "days": 1}, headers=bearer(token),
                         timeout=30)
    assert made.status_code == 201, made.text
    assert _me(site, made.json()["token"]).json()["name"] == "carl"
    gone = requests.delete(site.url + f"/api/v1/me/tokens/{second}", headers=bearer(token), timeout=30)
    assert gone.status_code == 200 and gone.json() == {"label": second, "revoked": True}
    assert _me(site, made.json()["token"]).status_code == 401

    cases = [({"label": first, "days": 3}, "already has a token labelled"), ({"label": label(), "days": 0}, "between"),
             ({"label": label(), "days": 2.5}, "whole number"), ({"label": label(), "days": True}, "whole number"),
             ({"label": "a b"}, "invalid token label"), ({"days": 3}, "give the token a label"), ([first], "JSON")]
    for payload, message in cases:
        answer = carl.post("/api/v1/me/tokens", json=payload)
        assert answer.status_code == 400 and message in answer.json()["error"]["message"], (payload, answer.text)

    plain = site.client("carl")  # a cookie without the CSRF header cannot revoke
    assert plain.http.delete(site.url + f"/api/v1/me/tokens/{first}", timeout=30).status_code == 400
    assert carl.http.delete(site.url + f"/api/v1/me/tokens/{first}", timeout=30).status_code == 200
    assert _me(site, token).status_code == 401
    again = carl.http.delete(site.url + f"/api/v1/me/tokens/{first}", timeout=30)
    assert again.status_code == 404 and again.json()["error"]["title"] == "Not found"


def test_a_user_cannot_revoke_another_users_token(site, label):
    rita, carl, name = site.client("rita").with_api_token(), site.client("carl").with_api_token(), label("shared")
    ritas = rita.post("/api/v1/me/tokens", json={"label": name, "days": 2}).json()["token"]
    assert name not in [t["label"] for t in carl.get("/api/v1/me/tokens").json()["tokens"]]
    assert carl.http.delete(site.url + f"/api/v1/me/tokens/{name}", timeout=30).status_code == 404
    page = carl.post(f"/account/tokens/{name}/revoke", data={"csrf_token": carl.csrf("/account")})
    assert page.status_code == 404
    # with carl's own token too, and when carl has a token of the same label: only his goes
    carls = carl.post("/api/v1/me/tokens", json={"label": name, "days": 2}).json()["token"]
    assert requests.delete(site.url + f"/api/v1/me/tokens/{name}", headers=bearer(carls), timeout=30).status_code == 200
    assert _me(site, carls).status_code == 401
    assert _me(site, ritas).json()["name"] == "rita"
    assert name in [t["label"] for t in rita.get("/api/v1/me/tokens").json()["tokens"]]


def test_openapi_describes_the_token_routes(site, anon):
    paths = anon.get("/api/v1/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/me/tokens"]) and "delete" in paths["/me/tokens/{label}"]
    for op in (paths["/me/tokens"]["get"], paths["/me/tokens"]["post"], paths["/me/tokens/{label}"]["delete"]):
        assert {"session": []} in op["security"] and {"token": []} in op["security"]
