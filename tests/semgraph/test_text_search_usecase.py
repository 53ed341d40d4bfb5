"""The text-search use case (semgraph.usecases.text_search) on a hand-checked store, and the CLI that prints it:
filters are the engine's, applied before the ranking, and `semgraph search` / `query --text` show the same ranking."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from textsearch_fixture import CASES, DISTANCE, TEXT, fill_small

import kg
from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput, NotFound
from semgraph.retrieval.engine import Engine, Filters
from semgraph.usecases.text_search import (
    TextIndex,
    case_suggestion,
    describe_filters,
    parse_grouping,
    parse_k,
    parse_weight,
    text_search,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("textsearch") / "graph"
    with kg.open_store(path) as store:
        fill_small(store)
    return path


@pytest.fixture(scope="module")
def index(folder) -> TextIndex:
    with kg.open_store(folder, read_only=True) as store:
        return TextIndex.from_store(store)


@pytest.fixture
def run(folder, cli_on):
    return cli_on(folder)


# --------------------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("value, expected", [(None, 0.7), ("", 0.7), ("0.25", 0.25), (" 1 ", 1.0), (0, 0.0)])
def test_parse_weight(value, expected):
    assert parse_weight(value) == expected


@pytest.mark.parametrize("value", ["x", "2", "-0.1", "nan", "inf", True, [0.5]])
def test_parse_weight_errors_name_the_parameter(value):
    with pytest.raises(InvalidInput, match=r"^w_img must be a number in \[0, 1\], got"):
        parse_weight(value)


def test_parse_k_and_grouping():
    assert parse_k(None) == DEFAULT_K and parse_k(" 7 ") == 7 and parse_k(3) == 3
    for bad in ("0", "abc", "²", "1.5", "-3", True, 0):  # "²".isdigit() is True but int("²") fails
        with pytest.raises(InvalidInput, match="^k must be a whole number from 1"):
            parse_k(bad, maximum=200)
    with pytest.raises(InvalidInput, match="^k must be a whole number from 1 to 200, got '201'"):
        parse_k("201", maximum=200)
    assert parse_grouping("") is None and parse_grouping("cluster") == "cluster"
    with pytest.raises(InvalidInput, match="^group must be one of diagnosis, patient, cluster"):
        parse_grouping("colour")


# --------------------------------------------------------------------------------------------------- hand-checked


def test_unfiltered_ranking_by_hand(index):
    r = text_search(index, TEXT, k=10)
    assert r.ids == ["H1", "C1", "C2", "M1"] and r.candidates == 4 and r.masked
    for h in r.hits:
        assert h.distance == pytest.approx(DISTANCE[h.case_id])
        assert h.sim_img == pytest.approx(1 - DISTANCE[h.case_id] / 1.8)  # linear map, then min-max over 4 cases
        assert h.score == pytest.approx(0.7 * h.sim_img + 0.3 * h.sim_txt)
        assert (h.patient_id, h.diagnosis, h.study_date) == CASES[h.case_id][:3] and h.caption.startswith("Liver")
    assert r.hits[-1].sim_txt == 0  # M1's caption shares no word with "hypodense water density"
    assert r.suggestion is not None and r.suggestion.k == 4 and r.groups is None and r.warnings == ()


def test_a_diagnosis_filter_removes_a_case_before_the_ranking(index):
    r = text_search(index, TEXT, filters=["diagnosis=cyst"])
    # only C1 and C2 are candidates: distances 0.2 and 0.6 → similarities 1 − d/0.6 = (2/3, 0) → rescaled (1, 0).
    # Their captions differ only in the date; TF-IDF is fitted on all four captions, where C2's date gives two word
    # pairs no other caption has ("hypodense 2021", "2021 06") and C1's one ("2020 06"): C2's longer vector leaves
    # less weight to "hypodense", the one word the query shares, so C1's text similarity is the higher → (1, 0)
    assert [(h.case_id, h.rank, round(h.score, 9), h.sim_img, h.sim_txt) for h in r.hits] == [
        ("C1", 1, 1.0, 1.0, 1.0), ("C2", 2, 0.0, 0.0, 0.0)]
    assert r.candidates == 2 and r.filters == Filters(diagnosis=("cyst",))
    assert r.as_dict()["filters"] == {"diagnosis": ["cyst"]}
    assert r.suggestion.diagnosis == "cyst" and r.suggestion.votes == {"cyst": 1.0}


def test_date_and_patient_filters(index):
    r = text_search(index, TEXT, filters=["date=2021-01-01.."])
    assert text_search(index, TEXT, filters={"study_date": (dt.date(2021, 1, 1), None)}).ids == r.ids
    assert [(h.case_id, round(h.score, 9)) for h in r.hits] == [("C2", 1.0), ("M1", 0.0)]
    assert describe_filters(r.filters) == ["study date: 2021-01-01 to …"]
    assert r.as_dict()["filters"] == {"study_date": ["2021-01-01", None]}
    assert "H1" not in text_search(index, TEXT, filters=["exclude-patient=P1"]).ids
    nothing = text_search(index, TEXT, filters=["diagnosis=none-such"], group_by="diagnosis")
    assert nothing.hits == () and nothing.groups == () and nothing.warnings == ("the filters allow no case",)


def test_a_note_on_a_case_leaves_it_out_and_honours_the_filters(index):
    r = text_search(index, "water density", like="C1", w_img=1, filters=["diagnosis=cyst,hemangioma"])
    assert r.ids == ["H1", "C2"]  # C1 is the query; M1 is filtered out; H1 (0.1 + 0.1 away) before C2
    with pytest.raises(NotFound):
        text_search(index, "water density", like="NOPE")
    with pytest.raises(InvalidInput, match="unknown key"):
        text_search(index, TEXT, filters=["colour=red"])


def test_groups_and_case_suggestion(index):
    r = text_search(index, TEXT, group_by="diagnosis")
    assert [(g.key, [m.case_id for m in g.members]) for g in r.groups] == [
        ("hemangioma", ["H1"]), ("cyst", ["C1", "C2"]), ("metastasis", ["M1"])]
    s = case_suggestion(index, "C1", k=1)
    assert s.suggestion.evidence == ("H1",) and s.as_dict()["diagnosis_known"] == "cyst"


def test_an_index_over_an_engine_built_in_memory(index):
    engine = index.engine
    other = Engine(engine.terms, engine.cases, engine.vectors, engine.dissimilarity)
    mine = TextIndex.from_engine(other, vocabulary=index.vocabulary, captions=index.captions())
    assert text_search(mine, TEXT, filters=["diagnosis=cyst"]).ids == ["C1", "C2"]


# --------------------------------------------------------------------------------------------------- CLI


def test_cli_search_and_query_text_filter_like_the_use_case(run, index):
    expected = text_search(index, TEXT, filters=["diagnosis=cyst"])
    for command in (("search", TEXT), ("query", "--text", TEXT)):
        data = json.loads(run(*command, "--filter", "diagnosis=cyst", "--format", "json"))
        assert [h["case_id"] for h in data["hits"]] == ["C1", "C2"] == expected.ids
        assert [h["score"] for h in data["hits"]] == [h.score for h in expected.hits]
        assert data["filters"] == {"diagnosis": ["cyst"]} and "groups" not in data
    out = run("search", TEXT, "--filter", "diagnosis=cyst")
    assert "filters: diagnosis: cyst (2 cases allowed)" in out
    rows = [line.split()[1] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert rows == ["C1", "C2"]
    assert "H1" in run("search", TEXT) and "H1" not in out
    assert "unknown key" in run("search", TEXT, "--filter", "colour=red", ok=False)


def test_cli_suggest_uses_the_case_suggestion(run, index):
    data = json.loads(run("suggest", "--case", "C1", "--k", "1", "--format", "json"))
    assert data["case"] == "C1" and data["evidence"] == ["H1"] and data["diagnosis"] == "hemangioma"
    assert "no case 'nope'" in run("suggest", "--case", "nope", ok=False)
