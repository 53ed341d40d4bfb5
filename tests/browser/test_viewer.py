"""The lesion viewer in a real browser under the app's strict CSP: it renders without console errors, a window
preset gives a pixel the grey level computed by hand from the stored HU, a typed rectangle moves the drawn outline
and the submitted form (and a dragged corner moves the numbers), and j/k change the result shown beside the query.
Screenshots go to tests/browser/artifacts/viewer-*.png."""

from __future__ import annotations

import json
import math

import numpy as np
import pydicom
import pytest
import radiology_fixture
from PIL import Image

from semgraph.cohort import read_manifest

RITA, RITA_PASSWORD = "rita", "rita-viewer-password"
PRESETS = {"liver": (150, 90), "soft": (400, 40), "bone": (1800, 400)}  # (width, level) as docs/viewer.md states


@pytest.fixture(scope="module")
def cohort_site(tmp_path_factory):
    site = radiology_fixture.build_cohort_site(tmp_path_factory, {RITA: ("radiologist", RITA_PASSWORD)})
    yield site
    site.stop()


@pytest.fixture
def errors(page):
    """Console errors and uncaught exceptions of the page (a CSP violation is reported as a console error)."""
    found: list[str] = []
    page.on("console", lambda message: found.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: found.append(str(error)))
    return found


def _login(page, url):
    page.goto(url + "/login")
    page.fill("input[name=name]", RITA)
    page.fill("input[name=password]", RITA_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def _record(site, case_id):
    return next(r for r in read_manifest(site.cohort / "manifest.json").cases if r.case_id == case_id)


def _hu(path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(np.int32) * int(float(ds.RescaleSlope)) + int(float(ds.RescaleIntercept))


def _grey(hu: float, width: int, level: int) -> int:
    """By hand: black at level - width/2, white at level + width/2, rounded half up like Math.round."""
    return min(255, max(0, math.floor((hu - (level - width / 2)) / width * 255 + 0.5)))


def _canvas_rgb(page, canvas, x: float, y: float) -> tuple[int, int, int]:
    return tuple(canvas.evaluate("(c, p) => Array.from(c.getContext('2d').getImageData(p[0], p[1], 1, 1).data)"
                                 ".slice(0, 3)", [math.floor(x), math.floor(y)]))


def _at(view: dict, x: float, y: float) -> tuple[float, float]:
    """Canvas position of the image point (x, y) (x = column, y = row, pixel corners)."""
    return view["ox"] + x * view["scale"], view["oy"] + y * view["scale"]


def test_case_viewer_presets_give_the_hand_computed_grey(page, cohort_site, errors, shot):
    site = cohort_site
    case_id = site.case_ids[2]
    _login(page, site.url)
    page.goto(f"{site.url}/cases/{case_id}")
    viewer = page.locator("#viewer-case[data-state=ready]")
    viewer.wait_for()
    canvas = viewer.locator("canvas")
    record = _record(site, case_id)
    hu = _hu(record.image)
    mask = np.asarray(Image.open(record.mask)) > 0
    r = int(np.nonzero(mask)[0].mean())
    c = int(np.nonzero(mask[r])[0].mean())  # inside the lesion
    for name in ("liver", "bone", "soft"):
        viewer.locator(f"button[data-preset-name={name}]").click()
        assert viewer.locator(f"button[data-preset-name={name}]").get_attribute("aria-pressed") == "true"
        view = json.loads(canvas.get_attribute("data-view"))
        assert (view["width"], view["level"]) == PRESETS[name]
        expected = _grey(hu[r, c], *PRESETS[name])
        assert _canvas_rgb(page, canvas, *_at(view, c + 0.5, r + 0.5)) == (expected,) * 3, name
    assert _grey(hu[r, c], *PRESETS["liver"]) != _grey(hu[r, c], *PRESETS["bone"])  # the presets differ here
    # zoom to the lesion: its box fills the middle of the canvas at a larger scale
    before = json.loads(canvas.get_attribute("data-view"))["scale"]
    viewer.locator("button[data-action=lesion]").click()
    assert json.loads(canvas.get_attribute("data-view"))["scale"] > before
    # the outline toggle: the outline's yellow appears on the lesion's left edge only when on
    view = json.loads(canvas.get_attribute("data-view"))
    edge = _at(view, np.nonzero(mask[r])[0].min(), r + 0.5)  # where the lesion begins on row r
    assert _canvas_rgb(page, canvas, *edge) == (255, 214, 0)
    viewer.locator("button[data-action=outline]").click()
    assert viewer.locator("button[data-action=outline]").get_attribute("aria-pressed") == "false"
    assert _canvas_rgb(page, canvas, *edge) != (255, 214, 0)
    viewer.locator("button[data-action=outline]").click()
    # a left drag changes the window (default tool): 10 px right widens it by 40 HU, 10 px up raises the level 20 HU
    box = canvas.bounding_box()
    factor = box["width"] / float(canvas.get_attribute("width"))
    start = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 10 * factor, start[1] - 10 * factor, steps=3)
    page.mouse.up()
    after = json.loads(canvas.get_attribute("data-view"))
    assert (after["width"], after["level"]) == (PRESETS["soft"][0] + 40, PRESETS["soft"][1] + 20)
    # with "Pan drag" the same drag moves the image by 10 canvas pixels each way instead
    viewer.locator("button[data-tool=pan]").click()
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 10 * factor, start[1] - 10 * factor, steps=3)
    page.mouse.up()
    moved = json.loads(canvas.get_attribute("data-view"))
    assert (moved["ox"] - after["ox"], moved["oy"] - after["oy"]) == pytest.approx((10, -10), abs=0.01)
    assert (moved["width"], moved["level"]) == (after["width"], after["level"])
    shot(page, "viewer-01-case")
    assert errors == []


def test_typed_rectangle_moves_the_outline_and_the_form(page, cohort_site, errors, shot):
    site = cohort_site
    record = _record(site, site.case_ids[3])
    _login(page, site.url)
    page.goto(site.url + "/query/image")
    page.set_input_files("input[name=image]", str(record.image))
    page.click("#upload-form button[type=submit]")
    page.locator("#viewer-region[data-state=ready]").wait_for()
    canvas = page.locator("#roi-canvas")
    for field, value in zip(("x0", "y0", "x1", "y1"), (40, 50, 60, 70)):
        page.fill(f"#roi-{field}", str(value))
    assert page.input_value("#roi-kind") == "rectangle"
    assert json.loads(page.input_value("#roi-points")) == [40, 50, 60, 70]
    view = json.loads(canvas.get_attribute("data-view"))
    assert _canvas_rgb(page, canvas, *_at(view, 40, 60)) == (0, 229, 255)  # on the left side of the rectangle
    assert _canvas_rgb(page, canvas, *_at(view, 20, 60)) != (0, 229, 255)
    # drag the lower right corner from (60, 70) to (64, 72): the numbers follow
    box = canvas.bounding_box()
    factor = box["width"] / float(canvas.get_attribute("width"))
    x, y = _at(view, 60, 70)
    page.mouse.move(box["x"] + x * factor, box["y"] + y * factor)
    page.mouse.down()
    x, y = _at(view, 64, 72)
    page.mouse.move(box["x"] + x * factor, box["y"] + y * factor, steps=4)
    page.mouse.up()
    assert [page.input_value(f"#roi-{f}") for f in ("x0", "y0", "x1", "y1")] == ["40", "50", "64", "72"]
    assert json.loads(page.input_value("#roi-points")) == [40, 50, 64, 72]
    shot(page, "viewer-02-region")
    with page.expect_request(lambda request: request.method == "POST" and "/query/image/" in request.url) as sent:
        page.click("#search-image")
    body = sent.value.post_data
    assert 'name="roi_kind"\r\n\r\nrectangle' in body and 'name="roi_points"\r\n\r\n[40,50,64,72]' in body
    page.locator("#compare-query .viewer[data-state=ready]").wait_for()
    assert errors == []


def test_keys_move_through_the_results_beside_the_query(page, cohort_site, errors, shot):
    site = cohort_site
    query = site.case_ids[0]
    _login(page, site.url)
    page.goto(f"{site.url}/cases/{query}")
    page.click("button[name=case_id]")
    page.locator("#compare-query .viewer[data-state=ready]").wait_for()
    page.locator("#compare-result .viewer[data-state=ready]").wait_for()
    ids = page.locator("#hits article.hit").evaluate_all("cards => cards.map(c => c.dataset.case)")
    pane = page.locator("#compare-result")
    assert pane.get_attribute("data-case") == ids[0]
    page.locator("h1").click()  # focus outside any field
    page.keyboard.press("j")
    assert pane.get_attribute("data-case") == ids[1]
    assert page.locator("#compare-title").inner_text() == f"#2 {ids[1]}"
    assert page.locator("article.hit.selected").get_attribute("data-case") == ids[1]
    page.locator("#compare-result .viewer[data-state=ready]").wait_for()
    page.keyboard.press("ArrowRight")
    assert pane.get_attribute("data-case") == ids[2]
    page.keyboard.press("k")
    page.keyboard.press("k")
    page.keyboard.press("k")  # wraps round to the last result
    assert pane.get_attribute("data-case") == ids[-1]
    page.locator("#compare-result .viewer[data-state=ready]").wait_for()
    shot(page, "viewer-03-session")
    # a feedback round replaces the page body in place: the new viewers and keys work on the new results
    page.check(f"input[name='mark-{ids[0]}'][value=relevant]")
    page.check(f"input[name='mark-{ids[1]}'][value=irrelevant]")
    page.click("#apply")
    page.locator("#round-counter", has_text="after round 1").wait_for()
    page.locator("#compare-result .viewer[data-state=ready]").wait_for()
    ids = page.locator("#hits article.hit").evaluate_all("cards => cards.map(c => c.dataset.case)")
    assert pane.get_attribute("data-case") == ids[0]
    page.locator("h1").click()
    page.keyboard.press("j")
    assert pane.get_attribute("data-case") == ids[1]
    assert page.locator("article.hit.selected").count() == 1
    assert errors == []


def test_polygon_is_drawn_by_clicks_and_edited_by_typing_or_dragging(page, cohort_site, errors):
    site = cohort_site
    _login(page, site.url)
    page.goto(site.url + "/query/image")
    page.set_input_files("input[name=image]", str(_record(site, site.case_ids[4]).image))
    page.click("#upload-form button[type=submit]")
    page.locator("#viewer-region[data-state=ready]").wait_for()
    page.check("input[name=roi_shape][value=polygon]")
    canvas = page.locator("#roi-canvas")
    view = json.loads(canvas.get_attribute("data-view"))

    def screen(x, y):  # the canvas's box is read each time: typing in a field may scroll the page
        box = canvas.bounding_box()
        factor = box["width"] / float(canvas.get_attribute("width"))
        cx, cy = _at(view, x, y)
        return box["x"] + cx * factor, box["y"] + cy * factor

    page.mouse.click(*screen(30, 30))
    page.mouse.click(*screen(60, 30))
    page.mouse.dblclick(*screen(45, 60))  # the second click lands on the new point's handle: no duplicate
    assert page.input_value("#roi-kind") == "polygon"
    assert json.loads(page.input_value("#roi-points")) == [[30, 30], [60, 30], [45, 60]]
    assert page.locator("#roi-status").inner_text() == "Polygon of 3 points."
    page.fill("input[aria-label='point 2 x']", "70")
    assert json.loads(page.input_value("#roi-points")) == [[30, 30], [70, 30], [45, 60]]
    page.mouse.move(*screen(45, 60))
    page.mouse.down()
    page.mouse.move(*screen(45, 66), steps=3)
    page.mouse.up()
    assert page.input_value("input[aria-label='point 3 y']") == "66"
    assert json.loads(page.input_value("#roi-points")) == [[30, 30], [70, 30], [45, 66]]
    assert errors == []
