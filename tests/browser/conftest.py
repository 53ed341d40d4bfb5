"""A real browser for the UI tests: Debian's chromium driven by Playwright (no browser download).

Needs ``pip install playwright`` and ``apt-get install -y chromium`` (/usr/bin/chromium). The app runs on waitress
in a thread on a free loopback port, over a temporary data folder with the RadLex subset and one curator.
Screenshots go to tests/browser/artifacts/ (git-ignored).

How the tests wait: the app's Content-Security-Policy forbids ``unsafe-eval``, and Playwright's
``page.wait_for_function("js text")`` evaluates a string, so the page refuses it. The tests wait instead for what
the user would see: ``page.wait_for_selector`` with a CSS or text selector (``"#round-counter:text-is('after round
1')"``), a locator's ``wait_for()`` / ``expect``-style checks on its text, ``page.wait_for_load_state("networkidle")``
after an action that fetches, or ``page.wait_for_url``. Pages also mark their ready state in attributes
(``data-session``; ``data-state="ready"`` on a viewer once its slice is drawn) that a selector can wait for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from livesite import live_app

import ontology

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
USER, PASSWORD = "carl", "carl-browser-password"


@pytest.fixture(scope="session")
def live_url(tmp_path_factory):
    def fill(store) -> None:
        ontology.load(store, ontology.BUNDLED_RADLEX)

    with live_app(tmp_path_factory.mktemp("browser-data"), {USER: ("curator", PASSWORD)}, fill) as server:
        yield server.url


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def shot():
    """Save a full-page screenshot under tests/browser/artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)

    def save(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
