"""In a real browser: the SPARQL page's CodeMirror editor loads under the strict CSP, runs what is typed into it,
completes the declared prefixes, pages through a large result and marks the line of the server's error."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def _watch(page) -> list[str]:
    """Console errors and uncaught exceptions of the page (a CSP violation is reported as a console error)."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def type_query(page, text: str) -> None:
    """Replace the editor's text by ``text`` as a user pasting it would."""
    page.locator(".CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def test_the_editor_loads_under_the_csp_and_runs_a_typed_query(page, live_url, shot):
    problems = _watch(page)
    response = page.goto(live_url + "/query")
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'self' only
    editor = page.locator(".CodeMirror")
    expect(editor).to_be_visible()
    expect(page.locator("#query")).to_be_hidden()  # the textarea is replaced, and kept for the form
    expect(page.locator(".CodeMirror-linenumber").first).to_have_text("1")
    expect(page.locator(".CodeMirror .cm-keyword").first).to_have_text("SELECT")  # highlighted by the SPARQL mode

    type_query(page, "SELECT ?label WHERE {\n  rid:RID5715 rdfs:label ?label\n}")
    assert page.input_value("#query") == "SELECT ?label WHERE {\n  rid:RID5715 rdfs:label ?label\n}"
    page.keyboard.press("Control+Enter")
    expect(page.locator("#results-table tbody tr")).to_have_count(1)
    expect(page.locator("#results-table tbody td").first).to_have_text("irregular margin@en")
    expect(page.locator(".CodeMirror-code")).to_contain_text("rid:RID5715 rdfs:label ?label")  # kept after the run
    shot(page, "sparql-editor-01-results")
    assert problems == []


def test_iris_are_links_and_a_large_result_has_pages(page, live_url, shot):
    problems = _watch(page)
    page.goto(live_url + "/query")
    type_query(page, "SELECT ?term WHERE { ?term rdfs:label ?l } ORDER BY ?term")
    page.click("button[value=query]")
    expect(page.locator("#results-heading")).to_contain_text("Rows 1–100 of more")
    first = page.locator("#results-table tbody td a").first
    expect(first).to_have_attribute("href", re.compile(r"^/terms/RID\d+$"))
    page.click("button.page-next")
    expect(page.locator("#results-heading")).to_contain_text(re.compile(r"Rows 101–\d+"))
    expect(page.locator("button.page-previous")).to_be_visible()
    shot(page, "sparql-editor-02-second-page")
    first.click()  # the first term of page 2 links to its term page
    expect(page).to_have_url(re.compile(r"/terms/RID\d+$"))
    assert problems == []


def test_prefix_completion_offers_the_declared_prefixes(page, live_url):
    page.goto(live_url + "/query")
    type_query(page, "PREFIX ex: <http://example.org/>\nSELECT * WHERE { ?s rd")
    page.keyboard.press("Control+Space")
    hints = page.locator(".CodeMirror-hints li")
    expect(hints).to_have_text([re.compile(r"^rdf:\s+<http://www\.w3\.org/1999/02/22-rdf-syntax-ns#>$"),
                                re.compile(r"^rdfs:\s+<http://www\.w3\.org/2000/01/rdf-schema#>$")])
    page.keyboard.press("Escape")
    page.keyboard.insert_text(" ?o . ?s e")
    page.keyboard.press("Control+Space")
    expect(hints).to_have_text([re.compile(r"^ex:\s+<http://example\.org/>$")])  # declared by the query itself


def test_an_error_marks_its_line(page, live_url, shot):
    problems = _watch(page)
    page.goto(live_url + "/query")
    type_query(page, "SELECT ?x WHERE {\n  ?x rdfs:label ?l .\n  ?x nope:parent ?p\n}")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#query-error .message")).to_have_text(re.compile(r"^unknown prefix nope: at line 3, column 6;"))
    marked = page.locator(".CodeMirror-code > div").nth(2)  # the third line
    expect(marked.locator(".error-line")).to_have_count(1)
    expect(marked.locator(".error-marker")).to_have_count(1)
    expect(page.locator(".error-mark")).to_have_text("nope:parent")
    expect(page.locator(".CodeMirror .error-line")).to_have_count(1)  # no other line
    shot(page, "sparql-editor-03-error")
    # a 400 page is expected to log its status; nothing else may fail
    assert [p for p in problems if "status of 400" not in p] == []


def test_the_form_still_works_without_javascript(browser, live_url):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(live_url + "/query")
        expect(page.locator("textarea#query")).to_be_visible()
        page.fill("#query", "ASK { rid:RID5715 rdfs:label ?l }")
        page.click("button[value=query]")
        expect(page.locator(".boolean")).to_have_text("true")
    finally:
        context.close()
