"""In a real browser (issue 18): the cases page's filter card holds its date fields and Group by, the lesion
thumbnails load, and a text-search result opens its case page."""

from __future__ import annotations

import pytest
from livesite import live_app

import ontology
from semgraph.cohort import generate
from semgraph.exchange.ingest import ingest
from semgraph.text.captions import write_captions

USER, PASSWORD = "rita", "rita-browser-password"
N = 8


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("browser-lesion-data")

    def fill(store) -> None:
        ontology.load(store, ontology.BUNDLED_RADLEX)
        ingest(store, generate(N, seed=0, out_dir=data_dir / "cohort", size=128, progress=False), data_dir,
               progress=False)
        write_captions(store)

    with live_app(data_dir, {USER: ("radiologist", PASSWORD)}, fill) as server:
        yield server.url


def log_in(page, url: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=name]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def test_cases_page_filter_card_holds_its_fields_and_thumbnails_load(page, site_url, shot):
    log_in(page, site_url)
    page.goto(site_url + "/cases")
    page.wait_for_load_state("networkidle")
    card = page.locator("#start-form aside.card").bounding_box()
    for selector in ("input[name=date_from]", "input[name=date_to]", "select[name=group]", "input[name=k]",
                     "select[name=diagnosis]"):
        box = page.locator(f"#start-form {selector}").bounding_box()
        assert box is not None and box["width"] > 40, selector
        assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"], selector
    assert page.locator("select[name=diagnosis]").count() == 1
    sizes = page.locator("img.lesion-thumb").evaluate_all("els => els.map(e => [e.naturalWidth, e.clientWidth])")
    assert sizes == [[96, 96]] * N
    shot(page, "40-cases-lesion-thumbnails")


def test_a_text_search_result_opens_its_case(page, site_url, shot):
    log_in(page, site_url)
    page.goto(site_url + "/search?q=hypodense+lesion")
    page.wait_for_selector("ol.text-hits li")
    first = page.locator("ol.text-hits li").first
    case_id = first.get_attribute("data-case")
    assert first.locator(".hit-thumb img").evaluate("e => e.complete && e.naturalWidth") == 96
    shot(page, "41-text-search-with-thumbnails")
    first.locator("a.case-link").click()
    page.wait_for_url(f"{site_url}/cases/{case_id}")
    assert case_id in page.locator("h1").inner_text()
