"""The SPARQL query page as curators use it, over real HTTP: paging of a SELECT without LIMIT, IRIs as links, the
triple counts of an update, the wording per role, one-line errors with their position, the prefixes of Turtle
output, and no server file paths in what anonymous clients can read."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from livesite import WebClient, live_app
from rdflib import Graph

import ontology
from semgraph.cohort.build import generate
from semgraph.exchange.ingest import ingest
from semgraph.graph.casegraph import case_iri

CELL = re.compile(r'<td class="(\w+)"(?: title="([^"]*)")?>(?:<a href="([^"]*)"[^>]*>)?([^<]*)')


def _token_update(anon, site, text: str) -> dict:
    response = anon.post("/sparql", data=text.encode(), headers={
        "Content-Type": "application/sparql-update", "Authorization": f"Bearer {site.update_token}"})
    assert response.status_code == 200, response.text
    return response.json()


def _graph_of(anon, site, size: int) -> str:
    """A new graph holding ``size`` triples <urn:s> <urn:p> 1..size; its IRI."""
    graph = f"urn:test:{uuid.uuid4().hex}"
    objects = " ".join(f"<urn:s> <urn:p> {n} ." for n in range(1, size + 1))
    _token_update(anon, site, f"INSERT DATA {{ GRAPH <{graph}> {{ {objects} }} }}")
    return graph


def _run(client, data: dict):
    """POST the query form as a browser does (with the session's CSRF token)."""
    return client.post("/query", data={**data, "csrf_token": client.csrf("/query")})


def _heading(page: str) -> str:
    match = re.search(r'<h2 id="results-heading">(.*?)<span class="downloads">', page, re.DOTALL)
    assert match, "no results heading"
    return " ".join(match.group(1).split())


def _column(page: str) -> list[str]:
    return [html.unescape(m.group(4)) for m in CELL.finditer(page)]


def _pager(page: str) -> dict[str, int]:
    """Offset of each pager button present (previous, next)."""
    forms = re.findall(r'name="offset" value="(\d+)">\s*<button[^>]*class="page-(\w+)"', page)
    return {name: int(offset) for offset, name in forms}


# -- paging ---------------------------------------------------------------------------------------------------
def test_a_select_without_limit_is_shown_a_page_at_a_time(site, anon):
    graph = _graph_of(anon, site, 200)
    query = f"SELECT ?n WHERE {{ GRAPH <{graph}> {{ ?s ?p ?n }} }} ORDER BY ?n"

    first = _run(anon, {"query": query})
    assert first.status_code == 200
    assert _heading(first.text) == "Rows 1–100 of more"
    assert _column(first.text) == [str(n) for n in range(1, 101)]
    assert _pager(first.text) == {"next": 100}

    second = _run(anon, {"query": query, "offset": "100"})
    assert _heading(second.text) == "Rows 101–200"  # exactly 200: no next page
    assert _column(second.text) == [str(n) for n in range(101, 201)]
    assert _pager(second.text) == {"previous": 0}

    beyond = _run(anon, {"query": query, "offset": "200"})
    assert _heading(beyond.text) == "No rows after row 200"
    assert _column(beyond.text) == []


def test_paging_keeps_a_trailing_values_block_and_a_final_comment(site, anon):
    graph = _graph_of(anon, site, 101)
    query = (f"SELECT ?n ?tag WHERE {{ GRAPH <{graph}> {{ ?s ?p ?n }} }} ORDER BY DESC(?n)\n"
             "VALUES ?tag { \"t\" } # the tag")
    page = _run(anon, {"query": query})
    assert page.status_code == 200, page.text
    assert _heading(page.text) == "Rows 1–100 of more"
    assert _column(page.text)[:4] == ["101", "t", "100", "t"]
    last = _run(anon, {"query": query, "offset": "100"})
    assert _heading(last.text) == "Rows 101–101" and _column(last.text) == ["1", "t"]


def test_a_query_with_its_own_limit_is_not_paged(site, anon):
    graph = _graph_of(anon, site, 150)
    page = _run(anon, {"query": f"SELECT ?n WHERE {{ GRAPH <{graph}> {{ ?s ?p ?n }} }} LIMIT 120",
                                     "offset": "100"})
    assert _heading(page.text) == "120 rows"
    assert len(_column(page.text)) == 120 and _pager(page.text) == {}


def test_a_bad_offset_is_refused(anon):
    for offset in ("-1", "ten", "10000000000"):
        page = _run(anon, {"query": "SELECT * WHERE { ?s ?p ?o }", "offset": offset})
        assert page.status_code == 400 and "offset must be a whole number" in page.text


def test_the_endpoint_keeps_refusing_large_results_and_says_how_to_page(site, anon):
    with site.settings(SPARQL_MAX_ROWS=5):
        response = anon.get("/sparql", params={"query": "SELECT ?t WHERE { VALUES ?t { 1 2 3 4 5 6 } }"})
        assert response.status_code == 400
        assert "LIMIT 5 OFFSET 0, then OFFSET 5 for the next page" in response.json()["error"]["message"]


# -- links ----------------------------------------------------------------------------------------------------
def test_iris_link_to_our_pages_or_as_safe_links(anon):
    query = """SELECT ?x WHERE { VALUES ?x { rid:RID5715 <https://w3id.org/semgraph/id/case/c%201>
      <http://example.org/p?a=1&b=2> <javascript:alert(1)> <urn:x:y> } }"""
    page = _run(anon, {"query": query}).text
    cells = [(m.group(2), m.group(3), m.group(4)) for m in CELL.finditer(page)]
    assert cells == [
        ("http://radlex.org/RID/RID5715", "/terms/RID5715", "rid:RID5715"),
        ("https://w3id.org/semgraph/id/case/c%201", "/cases/c%201", "https://w3id.org/semgraph/id/case/c%201"),
        ("http://example.org/p?a=1&amp;b=2", "http://example.org/p?a=1&amp;b=2", "http://example.org/p?a=1&amp;b=2"),
        ("javascript:alert(1)", None, "javascript:alert(1)"),
        ("urn:x:y", None, "urn:x:y"),
    ]
    assert 'href="javascript' not in page


def test_literals_are_escaped(anon):
    page = _run(anon, {"query": "SELECT ?x WHERE { BIND(\"<b onmouseover='x'>&\" AS ?x) }"}).text
    assert "&lt;b onmouseover=&#39;x&#39;&gt;&amp;" in page and "<b onmouseover" not in page


# -- updates --------------------------------------------------------------------------------------------------
def test_an_update_reports_the_triples_added_and_removed(site, curator):
    graph = f"urn:test:{uuid.uuid4().hex}"
    token = curator.csrf("/query")

    def run(text: str) -> str:
        page = curator.post("/query", data={"query": text, "action": "update", "csrf_token": token})
        assert page.status_code == 200, page.text
        return html.unescape(re.search(r'<p class="notice" role="status">(.*?)</p>', page.text, re.DOTALL).group(1))

    added = run(f"INSERT DATA {{ GRAPH <{graph}> {{ <urn:a> <urn:b> 1, 2, 3 }} }}")
    assert added.startswith(f"3 triples added and 0 removed ({graph}: 0 → 3).")
    assert "Recorded as https://w3id.org/semgraph/id/sparql-update/" in added
    removed = run(f"DELETE WHERE {{ GRAPH <{graph}> {{ <urn:a> <urn:b> 2 }} }}")
    assert removed.startswith(f"0 triples added and 1 removed ({graph}: 3 → 2).")
    nothing = run(f"DELETE WHERE {{ GRAPH <{graph}> {{ <urn:a> <urn:b> 99 }} }}")
    assert nothing.startswith("The update changed nothing: no named graph gained or lost a triple.")
    assert "Update applied and recorded" not in nothing


def test_the_protocol_answer_of_an_update_has_the_counts(site, anon):
    graph = f"urn:test:{uuid.uuid4().hex}"
    answer = _token_update(anon, site, f"INSERT DATA {{ GRAPH <{graph}> {{ <urn:a> <urn:b> 1, 2 }} }}")
    assert (answer["added"], answer["removed"]) == (2, 0)
    assert answer["graphs"] == [{"graph": graph, "before": 0, "after": 2}]
    moved = _token_update(anon, site, f"DELETE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }} INSERT {{ GRAPH <{graph}x> "
                                      f"{{ ?s ?p ?o }} }} WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    assert (moved["added"], moved["removed"]) == (2, 2)
    assert moved["graphs"] == [{"graph": graph, "before": 2, "after": 0}, {"graph": graph + "x", "before": 0,
                                                                          "after": 2}]


# -- wording and errors ---------------------------------------------------------------------------------------
def test_the_page_says_what_each_role_may_do(site, anon):
    anonymous = anon.get("/query").text
    assert "curators can log in to run updates" in anonymous and "Run as update" not in anonymous
    radiologist = site.client("rita").get("/query").text
    assert "Updates need the curator or admin role; you are logged in as a\nradiologist" in radiologist
    assert "Run as update" not in radiologist
    curator = site.client("carl").get("/query").text
    assert "Run as update</button>" in curator and "you are logged in as a curator" in curator
    assert "Read-only for everyone" not in curator


def test_an_unknown_prefix_is_one_line_naming_it(site, anon):
    query = "SELECT ?s WHERE {\n  ?s foo:bar ?o }"
    page = _run(anon, {"query": query})
    assert page.status_code == 400
    message = html.unescape(re.search(r'<pre class="message">(.*?)</pre>', page.text, re.DOTALL).group(1))
    assert message.startswith("unknown prefix foo: at line 2, column 6; declare it with PREFIX foo: <...>")
    assert "\n" not in message and "\\u{" not in message
    assert 'data-line="2"\n         data-column="6"' in page.text
    endpoint = anon.get("/sparql", params={"query": query}).json()["error"]["message"]
    assert endpoint == message
    update = _update_error(site, "INSERT DATA { GRAPH <urn:g> { <urn:a> nope:b 1 } }")
    assert update.startswith("unknown prefix nope: at line 1, column 39;")  # after "... <urn:a> "


def _update_error(site, text: str) -> str:
    response = site.client().post("/sparql", data=text.encode(), headers={
        "Content-Type": "application/sparql-update", "Authorization": f"Bearer {site.update_token}"})
    assert response.status_code == 400
    return response.json()["error"]["message"]


def test_a_syntax_error_carries_its_line_and_column(anon):
    page = _run(anon, {"query": "SELECT ?x WHERE {\n ?x ?y\n}"})
    assert page.status_code == 400
    # Oxigraph gives the position just after the furthest character it could parse: here the "}" of line 3 (the
    # LIMIT the page adds for paging does not move it)
    assert "error at 3:2" in page.text and 'data-line="3"\n         data-column="2"' in page.text
    endpoint = anon.get("/sparql", params={"query": "SELECT ?x WHERE {\n ?x ?y\n}"}).json()["error"]["message"]
    assert "error at 3:2" in endpoint


# -- Turtle prefixes ------------------------------------------------------------------------------------------
def test_describe_and_construct_turtle_use_the_declared_prefixes(anon):
    turtle = anon.get("/sparql", params={"query": "DESCRIBE rid:RID5715", "format": "turtle"}).text
    assert "@prefix rid: <http://radlex.org/RID/> ." in turtle and "rid:RID5715" in turtle
    assert "<http://radlex.org/RID/RID" not in turtle and "<http://www.w3.org/2000/01/rdf-schema#label>" not in turtle
    assert len(Graph().parse(data=turtle, format="turtle")) > 0
    construct = "PREFIX ex: <http://example.org/ns#>\nCONSTRUCT { rid:RID5715 ex:seen true } WHERE {}"
    own = anon.get("/sparql", params={"query": construct, "format": "turtle"}).text
    assert "@prefix ex: <http://example.org/ns#> ." in own and "rid:RID5715 ex:seen true" in own
    page = html.unescape(_run(anon, {"query": construct}).text)
    assert "rid:RID5715 ex:seen true" in page and "@prefix ex: <http://example.org/ns#> ." in page


# -- file paths -----------------------------------------------------------------------------------------------
PATH_USERS = {"rita": ("radiologist", "rita-password-1")}
PATH_TOKEN = "paths-update-token-0123456789"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """A site whose two cases were ingested from a cohort outside its data folder, and the cohort's folder."""
    cohort = tmp_path_factory.mktemp("paths-cohort")
    generate(2, seed=3, out_dir=cohort, size=128, progress=False)
    data = tmp_path_factory.mktemp("paths-data")

    def fill(store) -> None:
        ontology.load(store, ontology.BUNDLED_RADLEX)
        ingest(store, cohort, data, progress=False)

    with live_app(data, PATH_USERS, fill, SPARQL_UPDATE_TOKEN=PATH_TOKEN) as server:
        yield server.url, data, cohort


def test_anonymous_clients_see_no_server_paths(ingested):
    url, data, cohort = ingested
    anon = WebClient(url)
    rows = anon.get("/sparql", params={"query": "SELECT ?file WHERE { ?c sg:imageFile|sg:maskFile ?file }"}
                    ).json()["results"]["bindings"]
    files = sorted(row["file"]["value"] for row in rows)
    assert len(files) == 4  # an image and a mask per case
    assert all(re.fullmatch(r"images/[\w.-]+/[\w.-]+", f) for f in files), files
    assert not any(str(data) in f or str(cohort) in f or f.startswith("/") for f in files)
    page = _run(anon, {"query": "SELECT ?file WHERE { ?c sg:imageFile ?file }"}).text
    assert str(data) not in page and str(cohort) not in page


def test_an_absolute_path_recorded_by_an_older_version_still_resolves(ingested):
    url, data, _ = ingested
    rita = WebClient(url, {"rita": PATH_USERS["rita"][1]}).logged_in("rita")
    case_id = rita.get("/api/v1/cases").json()["cases"][0]["case_id"]
    relative = WebClient(url).get("/sparql", params={"query": f"SELECT ?f WHERE {{ <{case_iri(case_id)}> "
                                                              "sg:imageFile ?f }"}).json()
    (row,) = relative["results"]["bindings"]
    absolute = str(data.resolve() / row["f"]["value"])
    rewrite = (f"DELETE {{ GRAPH ?g {{ ?c sg:imageFile ?f }} }} INSERT {{ GRAPH ?g {{ ?c sg:imageFile "
               f"\"{absolute}\" }} }} WHERE {{ BIND(<{case_iri(case_id)}> AS ?c) GRAPH ?g {{ ?c sg:imageFile ?f }} }}")
    answer = rita.http.post(url + "/sparql", data=rewrite.encode(), timeout=60, headers={
        "Content-Type": "application/sparql-update", "Authorization": f"Bearer {PATH_TOKEN}"}).json()
    assert (answer["added"], answer["removed"]) == (0, 0)  # one value replaced by another: sizes unchanged
    thumb = rita.get(f"/api/v1/cases/{case_id}/thumbnail.png")
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/png"
    assert "X-Thumbnail" not in thumb.headers  # the file was found, not the placeholder drawn
