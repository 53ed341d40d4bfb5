"""In a real browser: log in, type a text query, see the live term chips, search, see grouped results and panels."""

from __future__ import annotations

import datetime as dt

import pytest
from livesite import live_app
from synthetic import write_synthetic_cases

import ontology
from ontology.paper_terms import paper_terms
from semgraph.config import DEFAULT_K
from semgraph.text.captions import write_captions

USER, PASSWORD = "rita", "rita-browser-password"
TERMS = [t.iri for t in paper_terms()]


def fill(store) -> None:
    """The RadLex subset and 30 synthetic cases with dates, ages, sexes and captions."""
    ontology.load(store, ontology.BUNDLED_RADLEX)
    write_synthetic_cases(store, 30, 11,
                          lambda i: {"study_date": dt.date(2021, 1, 1) + dt.timedelta(days=11 * i), "age": 40 + i,
                                     "sex": "FM"[i % 2], "contrast_phase": "portal venous"})
    write_captions(store)


@pytest.fixture(scope="module")
def search_url(tmp_path_factory):
    with live_app(tmp_path_factory.mktemp("browser-text-data"), {USER: ("radiologist", PASSWORD)}, fill) as server:
        yield server.url


def test_text_query_with_live_chips_ends_with_grouped_results(page, search_url, shot):
    page.goto(search_url + "/login")
    page.fill("input[name=name]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(search_url + "/")
    page.click("nav >> text=Text search")
    page.wait_for_selector("#q")
    shot(page, "20-text-search-empty")

    page.type("#q", "Well-defined hypodense lesion, no enhancement", delay=15)
    page.wait_for_selector(".chip.negated")
    chips = page.locator("#chips .chip").all_inner_texts()
    assert chips == ["Well-defined → circumscribed margin", "hypodense → hypodense", "enhancement → enhancing",
                     "enhancement → nonenhancing", "lesion"]
    assert page.locator(".chip.negated").evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
    assert page.locator(".chip.ignored").inner_text() == "lesion"
    shot(page, "21-text-search-live-chips")

    page.select_option("#group", "diagnosis")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(".group-head")
    heads = page.locator(".group-head h3").all_inner_texts()
    assert len(heads) >= 2 and len(set(heads)) == len(heads)
    assert page.locator("ol.text-hits li").count() == DEFAULT_K  # of the 30 cases
    assert "img" in page.locator("ol.text-hits li .scores").first.inner_text()
    assert page.locator("ol.text-hits li .caption").first.inner_text().startswith("Liver lesion")
    assert "Decision support only" in page.locator("#query-suggestion").inner_text()
    shot(page, "22-text-search-grouped-results")

    page.locator("ol.text-hits li a.timeline-link").first.click()
    page.wait_for_selector("#timeline")
    assert "This study" in page.locator("#timeline").inner_text()
    assert "Decision support only" in page.locator("#case-suggestion").inner_text()
    assert page.input_value("#q") == "Well-defined hypodense lesion, no enhancement"
    shot(page, "23-text-search-timeline-and-suggestion")

    # the same text query becomes a feedback session: its parsed term vector is the query
    page.click("#start-session-button")
    page.wait_for_selector("#hits article.hit")
    page.wait_for_load_state("networkidle")
    assert "/sessions/" in page.url
    assert page.locator("#query-text").inner_text() == "Well-defined hypodense lesion, no enhancement"
    assert page.locator("#round-counter").inner_text() == "before feedback"
    assert page.locator("#algorithm").inner_text() == "regularised+rocchio"
    assert page.locator(".query-panel img.query-thumb").count() == 0
    present = page.locator("#query-terms .term-row.present .term-label").all_inner_texts()
    assert sorted(present) == ["circumscribed margin", "hypodense", "nonenhancing"]
    first = page.locator("#hits article.hit").evaluate_all("els => els.map(e => e.dataset.case)")
    diagnoses = page.locator("#hits article.hit .diagnosis").all_inner_texts()
    assert len(first) == DEFAULT_K
    shot(page, "24-text-session-round1")

    relevant = [c for c, d in zip(first, diagnoses) if d == "cyst"][:3]
    irrelevant = [c for c, d in zip(first, diagnoses) if d != "cyst"][:3]
    assert len(relevant) == 3 and len(irrelevant) == 3, diagnoses
    for case_id in relevant:
        page.check(f"article.hit[data-case='{case_id}'] input[value=relevant]")
    for case_id in irrelevant:
        page.check(f"article.hit[data-case='{case_id}'] input[value=irrelevant]")
    assert page.locator("#mark-count").inner_text() == "3 relevant, 3 irrelevant"
    shot(page, "25-text-session-marked")
    page.click("#apply")
    page.wait_for_selector("#round-counter:text-is('after round 1')")
    page.wait_for_load_state("networkidle")
    assert page.locator("#query-text").inner_text() == "Well-defined hypodense lesion, no enhancement"
    assert "Query after round 1" in page.locator(".query-panel").inner_text()
    assert page.locator("#moved-query meter").count() == len(TERMS)
    second = page.locator("#hits article.hit").evaluate_all("els => els.map(e => e.dataset.case)")
    assert second != first
    assert page.locator(".move-up, .move-down, .move-new").count() > 0
    shot(page, "26-text-session-round2")


def test_filters_of_the_text_search_in_the_browser(page, search_url, shot):
    page.goto(search_url + "/login")
    page.fill("input[name=name]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(search_url + "/")
    page.goto(search_url + "/search")
    page.fill("#q", "Well-defined hypodense lesion, no enhancement")
    page.click("#filters summary")
    page.select_option("select[name=diagnosis]", "cyst")
    page.fill("input[name=date_from]", "2021-03-01")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#applied-filters")
    assert "diagnosis: cyst" in page.locator("#applied-filters").inner_text()
    tags = page.locator("ol.text-hits li .tag").all_inner_texts()
    dates = page.locator("ol.text-hits li .muted").all_inner_texts()
    assert tags and set(tags) == {"cyst"}
    assert all(d.rsplit(", ", 1)[-1] >= "2021-03-01" for d in dates), dates
    assert page.locator("#filters").get_attribute("open") is not None  # open while filters are set
    assert page.input_value("input[name=date_from]") == "2021-03-01"
    shot(page, "27-text-search-filtered")
