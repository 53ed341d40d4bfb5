"""Pages, escaping and error pages over real HTTP."""

from __future__ import annotations

import uuid

import pytest
from rdflib import URIRef

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def script_label(site):
    """An rdfs:label holding markup on a vocabulary term (RID5715), in a graph of its own."""
    graph = URIRef(f"urn:test:{uuid.uuid4().hex}")
    site.store.update("INSERT DATA { GRAPH $g { rid:RID5715 rdfs:label $l } }", {"g": graph, "l": SCRIPT})
    yield
    site.store.drop(str(graph))


@pytest.mark.parametrize("path", ["/terms", "/terms/RID5715"])
def test_label_with_markup_renders_as_text(site, anon, script_label, path):
    html = anon.get(path).text
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_label_with_markup_renders_as_text_in_query_results(site, script_label):
    client = site.client("carl")
    response = client.post("/query", data={"query": "SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }",
                                           "csrf_token": client.csrf("/query")})
    assert response.status_code == 200
    assert SCRIPT not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_query_page_post_without_csrf_is_rejected(anon):
    response = anon.post("/query", data={"query": "ASK {}"})
    assert response.status_code == 400


def test_query_page_runs_a_query_from_the_url(anon):
    response = anon.get("/query", params={"query": "SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }"})
    assert response.status_code == 200
    assert 'id="results-table"' in response.text
    assert "irregular margin" in response.text


def test_query_page_shows_the_parser_error(anon):
    response = anon.get("/query", params={"query": "SELECT ?x WHERE { ?x }"})
    assert response.status_code == 400
    assert "malformed SPARQL query" in response.text


def test_query_page_examples_all_run(anon):
    from webapp.sparql_examples import EXAMPLES

    for example in EXAMPLES:
        response = anon.get("/query", params={"query": example.query})
        assert response.status_code == 200, (example.key, response.text[-500:])


def test_query_page_update_button_only_for_curators(site):
    assert "Run as update" not in site.client("rita").get("/query").text
    assert "Run as update" in site.client("carl").get("/query").text


def test_home_shows_the_store(anon):
    html = anon.get("/").text
    assert "radlex-liver" in html
    assert "/sparql" in html


def test_pages_forbid_inline_scripts(anon):
    policy = anon.get("/").headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy


@pytest.mark.parametrize("path,accept,json_expected", [
    ("/no-such-page", "text/html", False),
    ("/no-such-page", "application/json", True),
    ("/api/v1/no-such-thing", "text/html", True),
])
def test_404_in_the_right_format(anon, path, accept, json_expected):
    response = anon.get(path, headers={"Accept": accept})
    assert response.status_code == 404
    if json_expected:
        assert response.json()["error"]["status"] == 404
    else:
        assert response.headers["Content-Type"].startswith("text/html")
        assert "404" in response.text and "Not Found" in response.text


def test_405_keeps_the_allow_header(anon):
    response = anon.get("/logout")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert "Traceback" not in response.text


def test_unknown_term_is_404(anon):
    assert anon.get("/terms/RID999999999").status_code == 404
    assert anon.get("/terms/not-a-rid").status_code == 400


def test_500_never_shows_a_stack_trace(tmp_path):
    import threading

    import requests
    from waitress import create_server

    from webapp import create_app

    app = create_app({"data_dir": str(tmp_path)})

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internal detail")

    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.effective_port}"
        html = requests.get(base + "/boom", headers={"Accept": "text/html"}, timeout=10)
        data = requests.get(base + "/boom", headers={"Accept": "application/json"}, timeout=10)
    finally:
        server.close()
        thread.join(timeout=10)
        app.extensions["semgraph"].close()
    assert html.status_code == 500 and data.status_code == 500
    for response in (html, data):
        assert "Traceback" not in response.text
        assert "secret internal detail" not in response.text
        assert "RuntimeError" not in response.text
    assert data.json()["error"]["title"] == "Internal error"
