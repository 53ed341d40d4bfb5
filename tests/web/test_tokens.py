"""API tokens: how they are stored, `semgraph user token`, `Authorization: Bearer` against the live app, and the
CSRF rules for token and cookie requests (including the login form's token used after the login)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import requests
from click.testing import CliRunner

from semgraph.cli import load_commands
from semgraph.users import InvalidToken, UserStore


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------------------------- the store


def test_only_a_salted_hmac_of_the_token_is_stored(tmp_path):
    users = UserStore(tmp_path / "users.json")
    users.add("alice", "curator", "correct horse battery")
    first, second = users.create_token("alice", "one", 30), users.create_token("alice", "two", 30)
    text = (tmp_path / "users.json").read_text()
    for token in (first, second):
        assert token.startswith("sg_") and token not in text and token.rsplit("_", 1)[1] not in text
    stored = json.loads(text)["users"]["alice"]["tokens"]
    for label, token in (("one", first), ("two", second)):
        entry = stored[label]
        expected = hmac.new(bytes.fromhex(entry["salt"]), token.encode(), hashlib.sha256).hexdigest()
        assert entry["hmac"] == expected and entry["id"] == token.split("_")[1]
    assert stored["one"]["salt"] != stored["two"]["salt"]
    assert users.authenticate_token(first).name == "alice"


def test_expired_revoked_and_forged_tokens_are_refused(tmp_path):
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    users = UserStore(tmp_path / "users.json", clock=lambda: now)
    users.add("alice", "curator", "correct horse battery")
    token = users.create_token("alice", "short", 2)
    assert [(t.label, t.created, t.expires) for t in users.tokens("alice")] == \
        [("short", "2027-01-15T08:00:00+00:00", "2027-01-17T08:00:00+00:00")]
    assert users.authenticate_token(token).role == "curator"
    later = UserStore(tmp_path / "users.json", clock=lambda: now + 2 * 86400)
    with pytest.raises(InvalidToken, match="'short' of alice expired at 2027-01-17T08:00:00"):
        later.authenticate_token(token)
    with pytest.raises(InvalidToken, match="unknown or was revoked"):
        users.authenticate_token(token[:-1] + ("A" if token[-1] != "A" else "B"))  # same id, other secret
    with pytest.raises(InvalidToken, match="not a semgraph API token"):
        users.authenticate_token("test-update-token-0123456789")
    users.revoke_token("alice", "short")
    with pytest.raises(InvalidToken, match="unknown or was revoked"):
        users.authenticate_token(token)


def test_a_new_password_keeps_the_tokens_and_a_removed_user_loses_them(tmp_path):
    users = UserStore(tmp_path / "users.json")
    users.add("alice", "curator", "correct horse battery")
    token = users.create_token("alice", "api", 30)
    users.set_password("alice", "another horse battery")
    assert users.authenticate("alice", "another horse battery") is not None
    assert users.authenticate_token(token).name == "alice"
    users.remove("alice")
    with pytest.raises(InvalidToken):
        users.authenticate_token(token)


# ------------------------------------------------------------------------------------------- the command


@pytest.fixture
def run(tmp_path):
    cli = load_commands()

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path), *args], input=input)

    return invoke


def test_user_token_create_list_revoke(run, tmp_path):
    assert run("user", "add", "alice", "--role", "curator", "--password-stdin",
               input="correct horse battery\n").exit_code == 0
    result = run("user", "token", "alice", "--name", "notebook", "--expires", "7")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert UserStore.in_data_dir(tmp_path).authenticate_token(token).name == "alice"
    listed = run("user", "token", "alice", "--list").stdout.splitlines()
    assert len(listed) == 1 and listed[0].startswith("notebook\tcreated ") and token not in listed[0]
    again = run("user", "token", "alice", "--name", "notebook")
    assert again.exit_code != 0 and "already has a token labelled 'notebook'" in again.output
    assert run("user", "token", "alice", "--expires", "0").exit_code != 0
    assert run("user", "token", "alice", "--revoke", "notebook").exit_code == 0
    assert "no API token" in run("user", "token", "alice", "--list").stdout
    with pytest.raises(InvalidToken):
        UserStore.in_data_dir(tmp_path).authenticate_token(token)
    missing = run("user", "token", "alice", "--revoke", "notebook")
    assert missing.exit_code != 0 and "no token labelled 'notebook'" in missing.output


def test_user_password_keeps_the_role_and_ends_the_sessions(run, tmp_path):
    assert run("user", "add", "bob", "--role", "radiologist", "--password-stdin",
               input="correct horse battery\n").exit_code == 0
    before = UserStore.in_data_dir(tmp_path).get("bob").epoch
    result = run("user", "password", "bob", "--password-stdin", input="purple staple engine\n")
    assert result.exit_code == 0, result.output
    users = UserStore.in_data_dir(tmp_path)
    assert users.authenticate("bob", "purple staple engine").role == "radiologist"
    assert users.get("bob").epoch != before
    assert run("user", "password", "nobody", "--password-stdin", input="purple staple engine\n").exit_code != 0
    weak = run("user", "password", "bob", "--password-stdin", input="short\n")
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output


# ------------------------------------------------------------------------------------------- over HTTP


@pytest.fixture
def token_of(site):
    users = site.app.extensions["semgraph"].users
    made: list[tuple[str, str]] = []

    def make(name: str, days: int = 30) -> str:
        label = f"t{len(made)}-{time.monotonic_ns()}"
        made.append((name, label))
        return users.create_token(name, label, days)

    yield make
    for name, label in made:
        if label in {info.label for info in users.tokens(name)}:  # not revoked by the test itself
            users.revoke_token(name, label)


def test_bearer_token_acts_as_its_user_without_csrf(site, token_of):
    token = token_of("carl")
    me = requests.get(site.url + "/api/v1/me", headers=bearer(token), timeout=30)
    assert me.status_code == 200 and (me.json()["name"], me.json()["role"]) == ("carl", "curator")
    # a POST reaches the view (its own 400 for a bad kind), no CSRF token, no cookie
    r = requests.post(site.url + "/api/v1/jobs", json={"kind": "paint"}, headers=bearer(token), timeout=30)
    assert r.status_code == 400 and r.json()["error"]["title"] == "Invalid input", r.text
    assert "paint" in r.json()["error"]["message"]
    # the pages too: a researcher's token is refused the jobs page by role, a curator's is let in
    rhea = token_of("rhea")
    assert requests.get(site.url + "/jobs", headers=bearer(rhea), timeout=30).status_code == 403
    assert requests.get(site.url + "/jobs", headers=bearer(token), timeout=30).status_code == 200


def test_cookie_requests_still_need_the_csrf_token(site):
    carl = site.client("carl")
    r = carl.post("/api/v1/jobs", json={"kind": "paint"})
    assert r.status_code == 400 and r.json()["error"]["title"] == "Form expired"
    carl.with_api_token()
    r = carl.post("/api/v1/jobs", json={"kind": "paint"})
    assert r.status_code == 400 and r.json()["error"]["title"] == "Invalid input"


def test_bad_tokens_get_401_saying_why_even_with_a_valid_cookie(site, token_of):
    users = site.app.extensions["semgraph"].users
    old = UserStore(users.path, clock=lambda: time.time() - 10 * 86400)
    expired = old.create_token("carl", f"old-{time.monotonic_ns()}", 1)
    revoked = token_of("carl")
    users.revoke_token("carl", _label_of(users, "carl", revoked))
    carl = site.client("carl").with_api_token()  # logged in: the cookie alone would pass
    cases = [(expired, "expired at"), (revoked, "unknown or was revoked"), ("sg_nothing", "not a semgraph API token")]
    for token, reason in cases:
        r = carl.get("/api/v1/me", headers=bearer(token))
        assert r.status_code == 401, (token, r.text)
        assert r.json()["error"]["title"] == "Invalid API token" and reason in r.json()["error"]["message"]
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        post = carl.post("/api/v1/jobs", json={"kind": "paint"}, headers=bearer(token))
        assert post.status_code == 401
    page = requests.get(site.url + "/cases", headers=bearer("sg_nothing"), timeout=30)
    assert page.status_code == 401 and "not a semgraph API token" in page.text  # an HTML error page


def _label_of(users: UserStore, name: str, token: str) -> str:
    """The label of ``token`` among ``name``'s tokens (found by its id)."""
    entries = json.loads(users.path.read_text())["users"][name]["tokens"]
    return next(label for label, entry in entries.items() if entry["id"] == token.split("_")[1])


def test_the_sparql_update_token_keeps_working(site):
    update = "INSERT DATA { GRAPH <urn:test:tokens> { <urn:a> <urn:b> <urn:c> } }"
    r = requests.post(site.url + "/sparql", data=update, timeout=30, headers={
        **bearer(site.update_token), "Content-Type": "application/sparql-update"})
    assert r.status_code in (200, 204), r.text
    assert site.store.ask("ASK { GRAPH <urn:test:tokens> { <urn:a> <urn:b> <urn:c> } }")


def test_a_curators_api_token_runs_sparql_updates_attributed_to_the_curator(site, token_of):
    update = "INSERT DATA { GRAPH <urn:test:tokens> { <urn:carl> <urn:b> <urn:c> } }"
    kind = {"Content-Type": "application/sparql-update"}
    r = requests.post(site.url + "/sparql", data=update, headers={**bearer(token_of("carl")), **kind}, timeout=30)
    assert r.status_code in (200, 204), r.text
    assert site.store.ask("ASK { GRAPH <urn:test:tokens> { <urn:carl> <urn:b> <urn:c> } }")
    who = site.store.select("SELECT ?who WHERE { GRAPH <https://w3id.org/semgraph/graph/audit> { "
                            "?a prov:wasAssociatedWith ?who ; prov:used/prov:value ?text } "
                            "FILTER(CONTAINS(?text, 'urn:carl')) }")
    assert [str(row["who"]) for row in who] == ["https://w3id.org/semgraph/id/user/carl"]
    # a researcher's token is a known user without the role; a forged one is refused as such
    r = requests.post(site.url + "/sparql", data=update, headers={**bearer(token_of("rhea")), **kind}, timeout=30)
    assert r.status_code == 403 and "curator or admin" in r.text
    r = requests.post(site.url + "/sparql", data=update, headers={**bearer("sg_nothing"), **kind}, timeout=30)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # queries stay open, also with a token
    q = requests.get(site.url + "/sparql", params={"query": "ASK { ?s ?p ?o }"}, headers=bearer(token_of("rhea")),
                     timeout=30)
    assert q.status_code == 200 and q.json()["boolean"] is True


def test_the_login_forms_token_works_after_the_login(site):
    """A script reads the token from the login form, posts the form and goes on with that token."""
    http = requests.Session()
    page = http.get(site.url + "/login", timeout=30).text
    form_token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = http.post(site.url + "/login", data={"name": "carl", "password": site.passwords["carl"],
                                             "csrf_token": form_token}, allow_redirects=False, timeout=30)
    assert r.status_code == 302
    r = http.post(site.url + "/api/v1/jobs", json={"kind": "paint"}, headers={"X-CSRF-Token": form_token}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["title"] == "Invalid input", r.text
    assert http.get(site.url + "/api/v1/me", timeout=30).json()["csrf_token"] == form_token
    alone = requests.post(site.url + "/api/v1/jobs", json={"kind": "paint"}, headers={"X-CSRF-Token": form_token},
                          timeout=30)  # the token without its session's cookie
    assert alone.status_code == 400 and alone.json()["error"]["title"] == "Form expired"


def test_openapi_offers_the_token_scheme(site):
    document = requests.get(site.url + "/api/v1/openapi.json", timeout=30).json()
    scheme = document["components"]["securitySchemes"]["token"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {"token": []} in document["paths"]["/me"]["get"]["security"]
    assert {"token": []} in document["paths"]["/jobs"]["post"]["security"]
