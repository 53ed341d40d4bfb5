"""In a real browser, end to end: a radiologist logs in, picks a query case, sees the results, marks 3 relevant and
3 irrelevant, applies, sees round 2 with a changed ranking and the change list, then finds the new learned edge
(with its user) by a SPARQL query on /sparql, and a researcher downloads the export as Turtle, which holds the same
learned edges with their round, session and user. Screenshots of every page go to tests/browser/artifacts/radiology-*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import radiology_fixture
from rdflib import RDF, RDFS, Graph, Literal
from rdflib.namespace import PROV

from kg.namespaces import SG

RITA, RITA_PASSWORD = "rita", "rita-browser-password"
RHEA, RHEA_PASSWORD = "rhea", "rhea-browser-password"


@pytest.fixture(scope="module")
def cohort_site(tmp_path_factory):
    site = radiology_fixture.build_cohort_site(tmp_path_factory, {RITA: ("radiologist", RITA_PASSWORD),
                                                                  RHEA: ("researcher", RHEA_PASSWORD)})
    query, marks = radiology_fixture.best_feedback_query(site.store)
    yield site, query, marks
    site.stop()


def _login(page, url, name, password):
    page.goto(url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def _result_ids(page) -> list[str]:
    return page.locator("#hits article.hit").evaluate_all("cards => cards.map(c => c.dataset.case)")


def test_radiologist_feedback_round_and_sparql(page, browser, cohort_site, shot):
    site, query, marks = cohort_site
    url = site.url
    _login(page, url, RITA, RITA_PASSWORD)
    assert page.locator(".who").inner_text().startswith(RITA)

    # pick a query case from the case list
    page.click("nav >> text=Cases")
    page.wait_for_selector("#case-table")
    page.fill("#case-search input[name=q]", query)
    page.click("#case-search button[type=submit]")
    page.wait_for_selector(f"#case-table button[value='{query}']")
    shot(page, "radiology-01-cases")
    page.fill("input[name=k]", "12")
    page.click(f"#case-table button[value='{query}']")
    page.wait_for_selector("#hits article.hit")
    page.wait_for_load_state("networkidle")  # (wait_for_function would need 'unsafe-eval', which the CSP forbids)
    assert page.locator("#round-counter").inner_text() == "before feedback"
    first = _result_ids(page)
    assert len(first) == 12 and query not in first
    assert page.locator("article.hit.match").count() + page.locator("article.hit.mismatch").count() == 12
    assert page.locator(".query-panel meter").count() == 19
    shot(page, "radiology-02-results")

    # mark 3 relevant + 3 irrelevant, apply: round 2 arrives in place
    assert sorted(marks.values()).count("relevant") == 3 and sorted(marks.values()).count("irrelevant") == 3
    for case_id, value in marks.items():
        page.check(f"article.hit[data-case='{case_id}'] input[value={value}]")
    assert page.locator("#mark-count").inner_text() == "3 relevant, 3 irrelevant"
    shot(page, "radiology-03-marked")
    page.click("#apply")
    page.wait_for_selector("#round-counter:text-is('after round 1')")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/sessions/" + page.locator("#session-body").get_attribute("data-session"))
    second = _result_ids(page)
    assert second != first
    assert page.locator(".move-up, .move-down, .move-new").count() > 0
    changes = page.locator("#changes li").all_inner_texts()
    assert changes and all("↔" in c and "→" in c for c in changes)
    assert any("marked relevant" in c or "marked irrelevant" in c for c in changes)
    shot(page, "radiology-04-round2")
    session_id = page.locator("#session-body").get_attribute("data-session")

    # the dendrogram of round 1 and a case page
    page.click("#dendrogram-link")
    page.wait_for_selector("#dendrogram")
    page.wait_for_load_state("networkidle")
    shot(page, "radiology-05-dendrogram")
    marked, value = next(iter(marks.items()))
    page.goto(f"{url}/cases/{marked}")
    page.wait_for_selector("#feedback-history")
    # the round is listed once, with the case's own mark (columns: when, user, session, round, role, mark, edges)
    rows = page.locator("#feedback-history tbody tr").filter(has_text=session_id)
    assert rows.count() == 1
    assert rows.first.locator("td").all_inner_texts()[3:6] == ["1", "marked", value]
    shot(page, "radiology-06-case")

    # the new learned edge, with its user, through the SPARQL query page
    page.goto(url + "/query")
    page.locator(".CodeMirror").click()  # the query editor: select its text and paste over it
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(f"""SELECT ?a ?b ?before ?after ?user WHERE {{
  ?e sg:kind "learned" ; sg:termA ?ta ; sg:termB ?tb ; sg:previous ?before ; sg:dissimilarity ?after ;
     prov:wasAttributedTo ?u ; prov:wasGeneratedBy ?r .
  ?r sg:session ?s . ?s rdfs:label "{session_id}" . ?u rdfs:label ?user .
  ?ta rdfs:label ?a . ?tb rdfs:label ?b .
}}""")
    page.click("button[value=query]")
    page.wait_for_selector("#results-table")
    users = page.locator("#results-table tbody tr td:nth-child(5)").all_inner_texts()
    assert users and set(users) == {RITA}
    assert len(users) >= len(changes)
    shot(page, "radiology-07-sparql")

    # the export as Turtle (the researchers' page)
    context = browser.new_context()
    researcher = context.new_page()
    try:
        _login(researcher, url, RHEA, RHEA_PASSWORD)
        response = researcher.request.get(url + "/research/export.ttl")
        assert response.status == 200 and response.headers["content-type"].startswith("text/turtle")
        turtle = response.text()
        g = Graph().parse(data=turtle, format="turtle")
        # the session's learned edges, each generated by one of its rounds and attributed to the radiologist
        session = g.value(predicate=RDFS.label, object=Literal(session_id))
        assert session is not None and (session, RDF.type, SG.RetrievalSession) in g
        rounds = set(g.subjects(SG.session, session))
        edges = [e for r in rounds for e in g.subjects(PROV.wasGeneratedBy, r)]
        assert len(changes) <= len(edges) <= len(users)  # the learned edges the SPARQL query found
        for edge in edges:
            assert (edge, SG.kind, Literal("learned")) in g and (edge, RDF.type, SG.TermSimilarity) in g
            assert str(g.value(g.value(edge, PROV.wasAttributedTo), RDFS.label)) == RITA
            assert g.value(edge, SG.previous) is not None and g.value(edge, SG.dissimilarity) is not None
        (Path(__file__).parent / "artifacts").mkdir(exist_ok=True)
        (Path(__file__).parent / "artifacts" / "radiology-08-export.ttl").write_text(turtle)
        researcher.goto(url + "/research/relations")
        shot(researcher, "radiology-08-relations")
    finally:
        context.close()


def test_image_query_drawn_rectangle(page, cohort_site, shot):
    import numpy as np
    from PIL import Image

    from semgraph.cohort import read_manifest

    site, _, _ = cohort_site
    _login(page, site.url, RITA, RITA_PASSWORD)
    record = read_manifest(site.cohort / "manifest.json").cases[0]
    page.goto(site.url + "/query/image")
    page.set_input_files("input[name=image]", str(record.image))
    shot(page, "radiology-09-upload")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#roi-canvas")
    page.wait_for_load_state("networkidle")
    mask = np.asarray(Image.open(record.mask)) > 0
    rows, cols = np.nonzero(mask)
    box = page.locator("#roi-canvas").bounding_box()
    rows_n, cols_n = mask.shape
    x0 = box["x"] + (cols.min() - 2) * box["width"] / cols_n
    y0 = box["y"] + (rows.min() - 2) * box["height"] / rows_n
    x1 = box["x"] + (cols.max() + 3) * box["width"] / cols_n
    y1 = box["y"] + (rows.max() + 3) * box["height"] / rows_n
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    assert page.input_value("#roi-kind") == "rectangle"
    assert re.fullmatch(r"\[[0-9., ]+\]", page.input_value("#roi-points"))
    shot(page, "radiology-10-region")
    page.click("#search-image")
    page.wait_for_selector("#hits article.hit")
    page.wait_for_load_state("networkidle")
    assert "uploaded image" in page.locator(".session-head").inner_text()
    shot(page, "radiology-11-image-results")
