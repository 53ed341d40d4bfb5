"""Attacks on the radiologists' pages, the JSON API and the research exports, each shown to fail safely:
path traversal (upload names, cohort zips, export names), stored XSS (captions, diagnoses, labels, synonyms,
user names), SPARQL injection (case ids and texts through the API), writes without login or role on every POST
route of the app, CSRF on the radiology forms, oversized and pathological uploads.

One app (waitress, loopback) over a filled store; "nothing written" is checked by counting the store's quads
(outside the audit graph) and the data folder's files before and after.
"""

from __future__ import annotations

import io
import re
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests
from click.testing import CliRunner

from kg.namespaces import ANNOTATIONS_GRAPH
from semgraph.feedback.sessions import start_session
from semgraph.graph.casegraph import Annotation, Case, case_iri, write_case
from semgraph.retrieval.engine import Engine

from .conftest import PASSWORDS, TERMS, Live, marks_for

EVIL = "<script>alert('xss')</script>"
ESCAPED = "&lt;script&gt;"
INJECTIONS = [
    '" } ; DROP ALL ; INSERT DATA { GRAPH <urn:x:pwn> { <urn:x:a> <urn:x:b> "c" } } #',
    "' } } ; CLEAR ALL #",
    "> } DROP ALL <",
    "x\" . } ; DELETE WHERE { ?s ?p ?o } #",
    "case-000001' || true || '",
]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TIMEOUT = 60


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    live = Live(tmp_path_factory.mktemp("web-attacks"), MAX_CONTENT_LENGTH=2 * 1024 * 1024)
    live.services.users.add("rob", "radiologist", "rob-password-1")
    PASSWORDS.setdefault("rob", "rob-password-1")
    yield live
    live.stop()


def browser(site, user=None) -> requests.Session:
    http = site.session(user)
    http.headers["X-CSRF-Token"] = http.get(site.url + "/api/v1/me", timeout=TIMEOUT).json().get("csrf_token", "") \
        if user else ""
    return http


def form_token(site, http) -> str:
    return _CSRF.search(http.get(site.url + "/login", timeout=TIMEOUT).text).group(1)


def files_of(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()}


def png_bytes(side=64) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.full((side, side), 120, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A PNG whose header declares width × height pixels while its data holds one row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 65))
            + chunk(b"IEND", b""))


# ------------------------------------------------------------------------------------------- path traversal


TRAVERSAL_NAMES = ["../../../../escape.png", "..\\..\\escape.png", "/tmp/escape-abs.png", "uploads/../../x.png",
                   "....//....//escape.png"]


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_upload_file_names_cannot_leave_the_upload_folder(site, name):
    data_dir = Path(site.services.config.data_dir)
    before = files_of(data_dir)
    http = browser(site, "rita")
    token = form_token(site, http)
    page = http.post(site.url + "/query/image", data={"csrf_token": token, "hu_min": "-160", "hu_max": "240"},
                     files={"image": (name, png_bytes(), "image/png")}, allow_redirects=False, timeout=TIMEOUT)
    api = http.post(site.url + "/api/v1/search/image", data={"hu_min": "-160", "hu_max": "240",
                                                             "roi": '{"rectangle": [5, 5, 40, 40]}'},
                    files={"image": (name, png_bytes(), "image/png"), "mask": (name, png_bytes(), "image/png")},
                    timeout=TIMEOUT)
    # the page stores the upload (302 to its region page); the API answers 409: this app has no term model yet
    assert page.status_code == 302 and api.status_code == 409, (page.status_code, api.text[:300])
    new = files_of(data_dir) - before
    assert new and all(re.fullmatch(r"uploads/[0-9a-f]{24}/(image\.png|mask\.png|upload\.json)", f) for f in new), new
    assert not Path("/tmp/escape-abs.png").exists() and not (data_dir.parent / "escape.png").exists()
    record = http.get(site.url + page.headers["Location"], timeout=TIMEOUT)
    assert record.status_code == 200 and "../" not in record.text.split("<main>")[-1].split("</main>")[0]


ZIP_MEMBERS = ["../evil.txt", "cohort/../../evil.txt", "/abs-evil.txt", "C:/evil.txt", "cohort/..\\..\\evil.txt"]


@pytest.mark.parametrize("member", ZIP_MEMBERS)
def test_cohort_zip_with_escaping_members_is_refused_and_unpacks_nothing(site, member):
    data_dir = Path(site.services.config.data_dir)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cohort/manifest.json", '{"cases": []}')
        archive.writestr(member, "pwned")
    before, quads = files_of(data_dir), site.snapshot()
    http = browser(site, "rita")
    api = http.post(site.url + "/api/v1/jobs", data={"kind": "ingest"},
                    files={"archive": ("cohort.zip", buffer.getvalue(), "application/zip")}, timeout=TIMEOUT)
    page = http.post(site.url + "/jobs/ingest", data={"csrf_token": form_token(site, http)},
                     files={"archive": ("cohort.zip", buffer.getvalue(), "application/zip")}, allow_redirects=False,
                     timeout=TIMEOUT)
    if member.endswith("..\\..\\evil.txt"):
        # on Linux a backslash is an ordinary character: the member stays inside the cohort folder, harmless
        assert api.status_code in (200, 400) and page.status_code in (302, 400)
        assert not any(f.endswith("evil.txt") and not f.startswith("cohorts/") for f in files_of(data_dir))
    else:
        assert (api.status_code, page.status_code) == (400, 400), (api.text[:200], page.text[:200])
        assert "unsafe path" in api.json()["error"]["message"]
        assert files_of(data_dir) == before
    assert not (data_dir.parent / "evil.txt").exists() and not (data_dir / "evil.txt").exists()
    assert not Path("/abs-evil.txt").exists()
    assert site.snapshot() == quads


EXPORT_NAMES = ["../../outside.ttl", "/tmp/outside-abs.ttl", "sub/../../outside.ttl", "~/outside.ttl",
                "a\x00b.ttl", ".."]


@pytest.mark.parametrize("name", EXPORT_NAMES)
def test_export_names_cannot_leave_the_export_folder(site, tmp_path, name):
    from semgraph.cli import load_commands

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    result = CliRunner().invoke(load_commands(), ["--data-dir", str(data_dir), "export", "--out", name])
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert files_of(tmp_path) == set() or all(not f.endswith(".ttl") for f in files_of(tmp_path))
    assert not (tmp_path / "outside.ttl").exists() and not Path("/tmp/outside-abs.ttl").exists()


def test_research_download_names_are_a_closed_list(site):
    http = browser(site, "rhea")
    codes = [http.get(site.url + path, timeout=TIMEOUT).status_code for path in
             ("/research/..%2f..%2fsecret_key", "/research/../secret_key", "/research/export.ttl%2f..%2f..%2fusers.json",
              "/research/users.json", "/research/export.sh")]
    assert all(c == 404 for c in codes), codes
    ok = http.get(site.url + "/research/export.ttl", params={"user": "../../x"}, timeout=TIMEOUT)
    assert ok.status_code == 200
    assert re.fullmatch(r'attachment; filename="semgraph-learned-export-\d{8}\.ttl"',
                        ok.headers["Content-Disposition"])


# ------------------------------------------------------------------------------------------- stored XSS


@pytest.fixture(scope="module")
def poisoned(site):
    """A case whose diagnosis and stored caption are scripts, a term label and a synonym that are scripts, and a
    recorded feedback session by a user whose name is a script."""
    import ontology
    from webapp import engines

    store = site.store
    write_case(store, Case("xss-case", "xss-patient", "xss-study", diagnosis=EVIL, liver_segment=EVIL, age=40, sex="F"),
               [Annotation("predicted", {t: 0.8 if i % 3 == 0 else 0.2 for i, t in enumerate(TERMS)})])
    store.update("INSERT DATA { GRAPH $g { $c sg:caption $t } }",
                 {"g": ANNOTATIONS_GRAPH, "c": case_iri("xss-case"), "t": EVIL + " hypodense"})
    store.update("DELETE { GRAPH ?g { $t rdfs:label ?l } } INSERT { GRAPH ?g { $t rdfs:label $l2 } } "
                 "WHERE { GRAPH ?g { $t rdfs:label ?l } }",
                 {"t": __import__("rdflib").URIRef(TERMS[0]), "l2": "margin " + EVIL})
    store.update("INSERT DATA { GRAPH <https://w3id.org/semgraph/graph/synonyms> { $t skos:altLabel $l } }",
                 {"t": __import__("rdflib").URIRef(TERMS[1]), "l": EVIL})
    ontology._cache.clear() if hasattr(ontology, "_cache") else None
    engines.invalidate(site.services)
    engine = Engine.from_store(store)
    session = start_session(store, engine, engine.ids[0], EVIL)
    session.feedback(marks_for(engine, engine.ids[0], 7))
    return session


def _no_raw_script(html: str) -> None:
    assert "<script>alert(" not in html and "<script>" not in html.split("<main")[-1]


PAGES_WITH_EVIL = ["/cases?q=xss", "/cases/xss-case", "/sessions", "/research/relations"]


def test_stored_scripts_render_as_text_on_every_page(site, poisoned):
    http = browser(site, "carl")  # curators see the radiology and the research pages
    pages = {path: http.get(site.url + path, timeout=TIMEOUT) for path in PAGES_WITH_EVIL}
    rita = browser(site, "rita")
    start = rita.post(site.url + "/sessions", data={"csrf_token": form_token(site, rita), "case_id": "xss-case",
                                                    "k": "5"}, allow_redirects=False, timeout=TIMEOUT)
    assert start.status_code == 302, start.text[:300]
    pages["session page"] = rita.get(site.url + start.headers["Location"], timeout=TIMEOUT)
    pages["text search"] = http.get(site.url + "/search", params={"q": EVIL + " hypodense", "case": "xss-case"},
                                    timeout=TIMEOUT)
    pages["text search (synonym)"] = http.get(site.url + "/search", params={"q": "xss lesion"}, timeout=TIMEOUT)
    pages["other user's session"] = http.get(site.url + f"/sessions/{poisoned.session_id}", timeout=TIMEOUT)
    for name, r in pages.items():
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        _no_raw_script(r.text)
    shown = [name for name, r in pages.items() if ESCAPED in r.text]
    print(f"stored XSS: {len(pages)} pages checked, the payload shown escaped on {len(shown)}: {shown}")
    for must in ("/cases?q=xss", "/cases/xss-case", "/sessions", "/research/relations", "session page",
                 "text search", "other user's session"):
        assert must in shown, f"{must}: payload not rendered (escaped) where expected"
    # JSON answers carry the text as data (the browser never parses it as HTML)
    detail = http.get(site.url + "/api/v1/cases/xss-case", timeout=TIMEOUT)
    assert detail.headers["Content-Type"].startswith("application/json") and detail.json()["diagnosis"] == EVIL


# ------------------------------------------------------------------------------------------- SPARQL injection


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_through_case_ids_and_texts_in_the_json_api(site, payload):
    http = browser(site, "rita")
    graphs, quads = set(site.store.graphs()), site.snapshot()
    search = http.post(site.url + "/api/v1/search", json={"case_id": payload, "k": 5}, timeout=TIMEOUT)
    session = http.post(site.url + "/api/v1/sessions", json={"case_id": payload}, timeout=TIMEOUT)
    case = http.get(site.url + "/api/v1/cases/" + requests.utils.quote(payload, safe=""), timeout=TIMEOUT)
    timeline = http.get(site.url + "/api/v1/cases/" + requests.utils.quote(payload, safe="") + "/timeline",
                        timeout=TIMEOUT)
    text = http.get(site.url + "/api/v1/search/text", params={"q": payload + " hypodense"}, timeout=TIMEOUT)
    parse = http.get(site.url + "/api/v1/parse", params={"text": payload}, timeout=TIMEOUT)
    text_session = http.post(site.url + "/api/v1/sessions", json={"text": payload + ", hypodense lesion", "k": 5},
                             timeout=TIMEOUT)
    codes = [search.status_code, session.status_code, case.status_code, timeline.status_code, text.status_code,
             parse.status_code, text_session.status_code]
    assert all(c < 500 for c in codes), codes
    assert search.status_code == 400 and session.status_code == 400 and case.status_code in (400, 404)
    assert timeline.status_code in (400, 404)
    assert text.status_code == 200 and parse.status_code == 200 and text_session.status_code == 200
    # a text session is written with its start record and its first round: the text is stored as a literal,
    # nothing else changes
    view = text_session.json()
    rnd = http.post(site.url + f"/api/v1/sessions/{view['session_id']}/rounds",
                    json={"marks": {view["results"][0]["case_id"]: "relevant"}}, timeout=TIMEOUT)
    assert rnd.status_code == 200
    new_graphs = set(site.store.graphs()) - graphs
    assert sorted(g.rsplit("/", 2)[-2] for g in new_graphs) == ["feedback", "session"]
    assert site.store.ask("ASK { ?s ?p $t }", {"t": (payload + ", hypodense lesion").strip()})
    assert "urn:x:pwn" not in site.store.graphs()
    assert site.snapshot() == quads + sum(site.store.count(g) for g in new_graphs)


# ------------------------------------------------------------------------------------------- roles on every POST


def _post_rules(app) -> list[str]:
    return sorted({r.rule for r in app.url_map.iter_rules() if "POST" in (r.methods or ())})


def _fill(rule: str, ids: dict) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: ids.get(m.group(1), "x"), rule).replace(
        "<any('export.ttl', 'export.jsonld', 'export.csv', 'proposal.ttl', 'report.md'):name>", "export.ttl")


#: POST routes any logged-in user may call because they write nothing (reads with a body, or the login itself).
READ_POSTS = {"/api/v1/search", "/login", "/logout", "/query", "/sparql"}
#: POST routes every logged-in user may call on their own account (API tokens; never the store or the data files).
OWN_ACCOUNT_POSTS = {"/account/tokens", "/account/tokens/<label>/revoke", "/api/v1/me/tokens"}


def wait_for_jobs(http: requests.Session, base: str, seconds: float = 120) -> None:
    """Wait until no background job of the app is queued or running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        jobs = http.get(base + "/api/v1/jobs", timeout=TIMEOUT).json()
        if all(job["state"] not in ("queued", "running") for job in jobs):
            return
        time.sleep(0.2)
    raise AssertionError(f"background jobs still running after {seconds} s")


def test_every_post_route_refuses_anonymous_and_unprivileged_writers(site, poisoned):
    rules = _post_rules(site.app)
    assert len(rules) >= 15, rules
    rita = browser(site, "rita")
    view = rita.post(site.url + "/api/v1/sessions", json={"case_id": Engine.from_store(site.store).ids[1], "k": 5},
                     timeout=TIMEOUT).json()
    ids = {"session_id": view["session_id"], "case_id": "xss-case", "token": "0" * 24, "job_id": "0" * 16}
    marks = {view["results"][0]["case_id"]: "relevant"}
    data_dir = Path(site.services.config.data_dir)
    update = "INSERT DATA { GRAPH <urn:x:role> { <urn:x:a> <urn:x:b> <urn:x:c> } }"
    outcomes: dict[tuple[str, str], int] = {}
    for who in ("anonymous", "rhea", "carl"):
        http = requests.Session()
        if who != "anonymous":
            http = site.session(who)
        token = form_token(site, http)  # a valid CSRF token of this very session: the role check is what refuses
        for rule in rules:
            if rule in ("/login", "/logout"):
                continue
            path = _fill(rule, ids)
            quads, files = site.snapshot(), files_of(data_dir)
            if path.startswith("/api/"):
                r = http.post(site.url + path, json={"marks": marks, "case_id": "xss-case", "kind": "train",
                                                     "text": "hypodense"},
                              headers={"X-CSRF-Token": token}, allow_redirects=False, timeout=TIMEOUT)
            elif path == "/sparql":
                r = http.post(site.url + path, data={"update": update}, headers={"X-CSRF-Token": token},
                              allow_redirects=False, timeout=TIMEOUT)
            else:
                r = http.post(site.url + path, data={"csrf_token": token, "case_id": "xss-case", "q": "hypodense",
                                                     "query": update, "action": "update",
                                                     **{f"mark-{c}": v for c, v in marks.items()}},
                              files={"image": ("x.png", png_bytes(), "image/png")} if "image" in path else None,
                              allow_redirects=False, timeout=TIMEOUT)
            outcomes[(who, rule)] = r.status_code
            refused = r.status_code in (401, 403) or (r.status_code == 302 and
                                                      r.headers["Location"].startswith("/login"))
            may_pass = rule in READ_POSTS or (who == "carl" and rule in ("/api/v1/jobs", "/jobs/ingest", "/jobs/train")) \
                or (who != "anonymous" and rule in OWN_ACCOUNT_POSTS)
            assert r.status_code < 500, (who, rule, r.status_code, r.text[:300])
            if not may_pass:
                assert refused, (who, rule, r.status_code, r.text[:300])
            if who == "anonymous" and rule != "/query":
                assert refused, (who, rule, r.status_code)
            if not (who == "carl" and rule in ("/sparql", "/query", "/api/v1/jobs", "/jobs/train")):
                assert site.snapshot() == quads, (who, rule, r.status_code)
                assert files_of(data_dir) == files, (who, rule, files_of(data_dir) ^ files)
            elif "jobs" in rule:
                wait_for_jobs(http, site.url)  # a job carl may start writes files later; the next rule compares files
    site.store.drop("urn:x:role") if "urn:x:role" in site.store.graphs() else None
    refused = sum(1 for c in outcomes.values() if c in (401, 403, 302))
    print(f"roles: {len(rules)} POST routes x 3 callers = {len(outcomes)} requests, {refused} refused, none wrote "
          f"without the role: {outcomes}")
    assert outcomes[("rhea", "/api/v1/sessions/<session_id>/rounds")] == 403
    assert outcomes[("carl", "/sessions")] == 403


# ------------------------------------------------------------------------------------------- CSRF


def test_radiology_forms_without_the_right_token_write_nothing(site):
    rita = browser(site, "rita")
    other = site.session("rob")
    foreign = form_token(site, other)  # a valid token, but of another user's session
    view = rita.post(site.url + "/api/v1/sessions", json={"case_id": Engine.from_store(site.store).ids[3], "k": 5},
                     timeout=TIMEOUT).json()
    sid, first = view["session_id"], view["results"][0]["case_id"]
    assert rita.post(site.url + f"/api/v1/sessions/{sid}/rounds", json={"marks": {first: "relevant"}},
                     timeout=TIMEOUT).status_code == 200
    forms = {"/sessions": {"case_id": first}, f"/sessions/{sid}/feedback": {f"mark-{first}": "irrelevant"},
             f"/sessions/{sid}/undo": {}, "/search/session": {"q": "hypodense"}, "/jobs/train": {},
             "/query/image": {"hu_min": "-160", "hu_max": "240"}}
    data_dir = Path(site.services.config.data_dir)
    quads, files = site.snapshot(), files_of(data_dir)
    plain = requests.Session()
    plain.cookies.update(rita.cookies)  # the victim's cookie, as a forged cross-site form would send it
    codes = []
    for path, fields in forms.items():
        upload = {"image": ("x.png", png_bytes(), "image/png")} if path == "/query/image" else None
        for token in (None, "forged", foreign):
            body = dict(fields, **({"csrf_token": token} if token else {}))
            r = plain.post(site.url + path, data=body, files=upload, allow_redirects=False, timeout=TIMEOUT)
            codes.append(r.status_code)
    for path in (f"/api/v1/sessions/{sid}/rounds", f"/api/v1/sessions/{sid}/undo", "/api/v1/sessions"):
        for header in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": foreign}):
            r = plain.post(site.url + path, json={"marks": {first: "irrelevant"}, "case_id": first}, headers=header,
                           timeout=TIMEOUT)
            codes.append(r.status_code)
    print(f"CSRF: {len(codes)} forged requests on {len(forms) + 3} forms/endpoints, statuses {sorted(set(codes))}")
    assert codes == [400] * len(codes), codes
    assert site.snapshot() == quads and files_of(data_dir) == files
    # and the real token works (the check is not simply refusing everything)
    ok = rita.post(site.url + f"/sessions/{sid}/undo", data={"csrf_token": form_token(site, rita)},
                   allow_redirects=False, timeout=TIMEOUT)
    assert ok.status_code == 302 and site.snapshot() < quads


# ------------------------------------------------------------------------------------------- resource exhaustion


def test_oversized_and_pathological_uploads_fail_cleanly(site):
    http = browser(site, "rita")
    token = form_token(site, http)
    data_dir = Path(site.services.config.data_dir)
    quads, files = site.snapshot(), files_of(data_dir)
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (3 * 1024 * 1024)  # over the app's 2 MB request limit
    over = [http.post(site.url + "/query/image", data={"csrf_token": token, "hu_min": "0", "hu_max": "1"},
                      files={"image": ("big.png", big, "image/png")}, timeout=TIMEOUT).status_code,
            http.post(site.url + "/api/v1/search/image", data={"hu_min": "0", "hu_max": "1"},
                      files={"image": ("big.png", big, "image/png")}, timeout=TIMEOUT).status_code,
            http.post(site.url + "/api/v1/jobs", data={"kind": "ingest"},
                      files={"archive": ("big.zip", big, "application/zip")}, timeout=TIMEOUT).status_code]
    pathological = {
        "100000 x 100000 PNG": png_with_declared_size(100_000, 100_000),
        "2^31-1 x 1 PNG": png_with_declared_size(2**31 - 1, 1),
        "truncated PNG": png_bytes()[:60],
        "zero-size PNG": png_with_declared_size(0, 0),
    }
    bad = {}
    for name, data in pathological.items():
        r = http.post(site.url + "/query/image", data={"csrf_token": token, "hu_min": "-160", "hu_max": "240"},
                      files={"image": ("huge.png", data, "image/png")}, allow_redirects=False, timeout=TIMEOUT)
        a = http.post(site.url + "/api/v1/search/image", data={"hu_min": "-160", "hu_max": "240",
                                                               "roi": '{"rectangle": [0, 0, 5, 5]}'},
                      files={"image": ("huge.png", data, "image/png")}, timeout=TIMEOUT)
        bad[name] = (r.status_code, a.status_code)
    print(f"uploads: oversized {over}; pathological {bad}")
    assert over == [413, 413, 413]
    assert all(codes == (400, 400) for codes in bad.values()), bad
    assert site.snapshot() == quads and files_of(data_dir) == files  # rejected uploads leave no file behind
    assert http.get(site.url + "/api/v1/me", timeout=TIMEOUT).status_code == 200  # the server is still up
