"""The web text search and `semgraph search` are one use case: on a hand-checked store the page, its JSON twin and
the CLI give the same ranking, and a filter removes the same known case from all of them."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from livesite import WebClient, live_app
from textsearch_fixture import TEXT, fill_small

USERS = {"rita": ("radiologist", "rita-password-1")}

#: (query parameters of the web, arguments of `semgraph search`) asking the same thing
QUERIES = {
    "plain": ({"q": TEXT}, []),
    "cyst": ({"q": TEXT, "diagnosis": "cyst"}, ["--filter", "diagnosis=cyst"]),
    "recent": ({"q": TEXT, "date_from": "2021-01-01", "w_img": "0.4"}, ["--filter", "date=2021-01-01..",
                                                                         "--w-img", "0.4"]),
    "grouped": ({"q": TEXT, "group": "diagnosis", "k": "3", "filter": "exclude-patient=P4"},
                ["--group", "diagnosis", "--k", "3", "--filter", "exclude-patient=P4"]),
    "note": ({"q": "water density", "like": "C1", "w_img": "1"}, None),
}


@pytest.fixture(scope="module")
def answers(tmp_path_factory, monkeypatch_module):
    """Web JSON and page of every query (server running), then the CLI's JSON (server stopped, same folder)."""
    data_dir = tmp_path_factory.mktemp("textsearch-filters")
    web, pages = {}, {}
    with live_app(data_dir, USERS, fill_small) as server:
        client = WebClient(server.url, {"rita": USERS["rita"][1]}).logged_in("rita")
        for name, (params, _) in QUERIES.items():
            response = client.get("/api/v1/search/text", params=params)
            assert response.status_code == 200, response.text
            web[name] = response.json()
            pages[name] = client.get("/search", params=params).text
        bad = {name: client.get("/api/v1/search/text", params={"q": TEXT, name: value})
               for name, value in (("date_from", "2021-13-01"), ("age_min", "old"), ("term_threshold", "2"),
                                   ("w_img", "heavy"), ("k", "²"))}
    from semgraph.cli import load_commands

    for variable in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch_module.delenv(variable, raising=False)
    cli, runner = load_commands(), CliRunner()
    shell = {}
    for name, (_, args) in QUERIES.items():
        if args is not None:
            result = runner.invoke(cli, ["--data-dir", str(data_dir), "search", TEXT, *args, "--format", "json"],
                                   catch_exceptions=False)
            assert result.exit_code == 0, result.output
            shell[name] = json.loads(result.output)
    return web, pages, shell, bad


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _timeline_link(html: str, case_id: str) -> str:
    """The address of the "timeline and suggestion" link of ``case_id``'s hit."""
    hit = html.split(f'data-case="{case_id}"')[1].split("</li>")[0]
    return re.search(r'class="timeline-link" href="([^"]+)"', hit).group(1)


def _ranking(data: dict) -> list[tuple[str, int, float, float, float]]:
    return [(h["case_id"], h["rank"], round(h["score"], 12), round(h["sim_img"], 12), round(h["sim_txt"], 12))
            for h in data["hits"]]


def test_the_filter_removes_the_known_case_from_web_and_cli(answers):
    web, pages, shell, _ = answers
    assert [h["case_id"] for h in web["plain"]["hits"]] == ["H1", "C1", "C2", "M1"]
    # diagnosis=cyst leaves C1 (0.2 away) and C2 (0.6 away): 0.7 · 1 + 0.3 · 1 and 0; the caption channel ranks C1
    # first because TF-IDF is fitted on all four captions, where C2's date has two word pairs no other caption has
    # (worked out in tests/semgraph/test_text_search_usecase.py)
    assert _ranking(web["cyst"]) == _ranking(shell["cyst"]) == [("C1", 1, 1.0, 1.0, 1.0), ("C2", 2, 0.0, 0.0, 0.0)]
    assert web["cyst"]["filters"] == shell["cyst"]["filters"] == {"diagnosis": ["cyst"]}
    assert web["cyst"]["candidates"] == 2
    assert [h["case_id"] for h in web["recent"]["hits"]] == ["C2", "M1"]
    assert "H1" not in [h["case_id"] for h in shell["recent"]["hits"]]
    html = pages["cyst"]
    assert re.findall(r'<li data-case="([^"]+)"', html) == ["C1", "C2"]
    assert '<option value="cyst" selected>cyst</option>' in html and 'id="applied-filters"' in html
    assert "diagnosis: cyst" in html and "(2 cases allowed)" in html
    assert "diagnosis=cyst" in _timeline_link(html, "C1")  # the panel link keeps the filter


@pytest.mark.parametrize("name", [n for n, (_, args) in QUERIES.items() if args is not None])
def test_web_and_cli_give_the_same_ranking(answers, name):
    web, _, shell, _ = answers
    assert _ranking(web[name]) == _ranking(shell[name]) and web[name]["hits"]
    for key in ("query", "w_img", "w_txt", "masked", "caption_text", "filters", "candidates", "suggestion"):
        assert web[name][key] == shell[name][key], key
    assert web[name]["groups"] == shell[name].get("groups")
    for h, g in zip(web[name]["hits"], shell[name]["hits"]):
        assert h == g


def test_a_note_on_a_case_is_filtered_and_leaves_the_case_out(answers):
    web, pages, _, _ = answers
    assert [h["case_id"] for h in web["note"]["hits"]] == ["H1", "C2", "M1"] and web["note"]["like"] == "C1"
    assert "like=C1" in _timeline_link(pages["note"], "H1")


def test_bad_filter_values_name_their_parameter(answers):
    *_, bad = answers
    for name, response in bad.items():
        assert response.status_code == 400, (name, response.text)
        assert response.json()["error"]["message"].startswith(name), (name, response.text)
