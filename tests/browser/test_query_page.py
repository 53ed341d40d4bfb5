"""In a real browser: log in, open the SPARQL query page, pick an example, run it, see the results table."""

from __future__ import annotations

USER, PASSWORD = "carl", "carl-browser-password"


def test_login_pick_an_example_and_see_results(page, live_url, shot):
    page.goto(live_url + "/")
    shot(page, "01-home")
    page.click("text=Log in")
    page.fill("input[name=name]", USER)
    page.fill("input[name=password]", PASSWORD)
    shot(page, "02-login")
    page.click("button[type=submit]")
    page.wait_for_url(live_url + "/")
    assert page.locator(".who").inner_text().startswith(USER)

    page.click("nav >> text=SPARQL")
    page.wait_for_selector(".CodeMirror")  # the editor over the (hidden) #query textarea
    page.click("a[data-example=term-hierarchy]")
    assert "margin" in page.input_value("#query")
    shot(page, "03-query-example")
    page.click("button[value=query]")
    page.wait_for_selector("#results-table")
    headers = page.locator("#results-table thead th").all_inner_texts()
    assert headers == ["?term", "?label", "?parent", "?parentLabel"]
    labels = page.locator("#results-table tbody tr td:nth-child(2)").all_inner_texts()
    assert any(label.startswith("irregular margin") for label in labels)
    shot(page, "04-query-results")


def test_vocabulary_page(page, live_url, shot):
    page.goto(live_url + "/terms")
    rows = page.locator("table.data tbody tr")
    assert rows.count() == 19
    shot(page, "05-vocabulary")


def test_bad_query_shows_the_error_in_the_page(page, live_url, shot):
    page.goto(live_url + "/query")
    page.locator(".CodeMirror").click()  # the query editor (tests/browser/test_sparql_editor.py)
    page.keyboard.press("Control+A")
    page.keyboard.insert_text("SELECT ?x WHERE { ?x }")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(".alert")
    assert "malformed SPARQL query" in page.locator(".alert").inner_text()
    shot(page, "06-query-error")
