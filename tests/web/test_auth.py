"""Login, logout, roles, CSRF and the session secret, over real HTTP."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


@pytest.mark.parametrize("name", ["rita", "carl", "rhea", "ada"])
def test_login_shows_the_user_and_role(site, name):
    client = site.client()
    response = client.login(name)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/")
    me = client.get("/api/v1/me").json()
    assert me["name"] == name
    assert me["role"] == site.roles[name]
    assert me["iri"] == f"https://w3id.org/semgraph/id/user/{name}"
    assert name in client.get("/").text


def test_wrong_password_is_refused(site):
    client = site.client()
    response = client.login("carl", "not-the-password")
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    assert client.get("/api/v1/me").status_code == 401


def test_unknown_user_is_refused_the_same_way(site):
    response = site.client().login("nobody", "whatever-password")
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text


def test_logout_ends_the_session(site):
    client = site.client("rita")
    token = client.csrf("/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_login_without_csrf_token_is_rejected(site):
    client = site.client()
    client.get("/login")
    response = client.post("/login", data={"name": "carl", "password": site.passwords["carl"]})
    assert response.status_code == 400
    assert "security token" in response.text
    assert client.get("/api/v1/me").status_code == 401


def test_login_with_a_token_from_another_session_is_rejected(site):
    other = site.client().csrf("/login")
    client = site.client()
    client.get("/login")
    response = client.post("/login", data={"name": "carl", "password": site.passwords["carl"], "csrf_token": other})
    assert response.status_code == 400


def test_logout_without_csrf_token_keeps_the_session(site):
    client = site.client("carl")
    response = client.post("/logout", data={})
    assert response.status_code == 400
    assert client.get("/api/v1/me").json()["name"] == "carl"


def test_login_follows_only_local_next(site):
    client = site.client()
    token = client.csrf("/login")
    response = client.post("/login", data={"name": "rita", "password": site.passwords["rita"],
                                           "csrf_token": token, "next": "//evil.example/steal"})
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]
    client2 = site.client()
    token = client2.csrf("/login")
    response = client2.post("/login", data={"name": "rita", "password": site.passwords["rita"],
                                            "csrf_token": token, "next": "/terms"})
    assert response.headers["Location"].endswith("/terms")


def test_session_cookie_is_http_only_and_same_site(site):
    response = site.client().get("/login")
    cookie = response.headers["Set-Cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_secret_key_file_is_private(site):
    path = Path(site.data_dir) / "secret_key"
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32


def test_removed_user_loses_access_at_once(site):
    site.app.extensions["semgraph"].users.add("temp", "curator", "temporary-password")
    client = site.client()
    assert client.login("temp", "temporary-password").status_code == 302
    assert client.get("/api/v1/me").status_code == 200
    site.app.extensions["semgraph"].users.remove("temp")
    assert client.get("/api/v1/me").status_code == 401


def test_passwords_are_not_in_the_graph_or_the_user_file(site):
    text = (Path(site.data_dir) / "users.json").read_text()
    for password in site.passwords.values():
        assert password not in text
    rows = site.client().get("/sparql", params={"query": 'ASK { ?s ?p ?o FILTER(CONTAINS(STR(?o), "password")) }'})
    assert rows.json()["boolean"] is False
