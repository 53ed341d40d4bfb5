"""Text queries on the command line: `semgraph query --text` (the fused ranking of `semgraph search`) and feedback
sessions started from a text (`semgraph feedback --new --text`), recorded with their text."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from synthetic import write_synthetic_cases

import kg
import ontology
from kg.namespaces import SG
from ontology.paper_terms import paper_terms
from semgraph.graph.casegraph import Annotation, Case, write_case

TERMS = [t.iri for t in paper_terms()]
R = "http://radlex.org/RID/"
WATER, NONENH, ENH, HYPO = R + "RID43336", R + "RID6056", R + "RID6055", R + "RID6042"
PNE, SOFT, HYPERV, HETERO, HOMOG = R + "RID43319", R + "RID43337", R + "RID34389", R + "RID6060", R + "RID6059"
TEXT = "water density, no enhancement"

HAND = {  # id: (diagnosis, reader likelihoods)
    "CYST1": ("cyst", {WATER: 0.9, NONENH: 0.9}),
    "CYST2": ("cyst", {WATER: 0.8, NONENH: 0.8, HOMOG: 0.6}),
    "HEM1": ("hemangioma", {HYPO: 0.9, PNE: 0.9, ENH: 0.9}),
    "HCC1": ("hepatocellular carcinoma", {SOFT: 0.9, HYPERV: 0.9, ENH: 0.9, HETERO: 0.9}),
}


def fill(store):
    ontology.load(store, "radlex-liver")
    write_synthetic_cases(store, 16, 4,
                          lambda i: dict(study_date=dt.date(2021, 1, 1) + dt.timedelta(days=9 * i), age=40 + i,
                                         sex="FM"[i % 2]))
    for j, (cid, (diagnosis, values)) in enumerate(HAND.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis=diagnosis), [Annotation("reader", values)])


@pytest.fixture
def cli_store(tmp_path, cli_on):
    folder = tmp_path / "graph"
    with kg.open_store(folder) as s:
        fill(s)
    return cli_on(folder), folder


def _ranked(out: str) -> list[str]:
    """Case ids of the result rows of the table output."""
    return [line.split()[1] for line in out.splitlines() if line.strip()[:1].isdigit() and "  " in line]


def test_query_text_shows_the_matches_and_ranks_like_search(cli_store):
    run, _ = cli_store
    out = run("query", "--text", TEXT, "--k", "3")
    assert "'water density'" in out and "→ water density (RID43336)" in out
    assert "→ NOT enhancing (RID6055)" in out and "nonenhancing (RID6056), complement of a negated term" in out
    assert "ignored: -" in out
    assert "caption text compared: water density nonenhancing" in out
    assert "score = 0.70 · HSBD similarity (mentioned categories) + 0.30 · caption similarity" in out
    assert _ranked(out)[:2] == ["CYST1", "CYST2"]
    assert out == run("search", TEXT, "--k", "3")  # one implementation of the text ranking and its printing


def test_query_text_json_weights_filters_and_groups(cli_store):
    run, _ = cli_store
    data = json.loads(run("query", "--text", TEXT, "--w-img", "0", "--format", "json", "--k", "4"))
    assert data["w_img"] == 0 and data["w_txt"] == 1
    assert data["caption_text"] == "water density nonenhancing"
    assert all(h["score"] == pytest.approx(h["sim_txt"]) for h in data["hits"])
    data = json.loads(run("query", "--text", "peripheral nodular enhancement", "--filter", "diagnosis=hemangioma",
                          "--format", "json", "--k", "50"))
    assert data["hits"] and {h["diagnosis"] for h in data["hits"]} == {"hemangioma"}
    assert "HEM1" in [h["case_id"] for h in data["hits"]]
    out = run("query", "--text", TEXT, "--group", "diagnosis", "--k", "5")
    heads = [line for line in out.splitlines() if line.startswith("== ")]
    assert heads and heads[0].startswith("== cyst:")  # the cyst group comes first
    data = json.loads(run("query", "--text", TEXT, "--filter", "diagnosis=none-such", "--format", "json"))
    assert data["hits"] == []


@pytest.mark.parametrize("args, message", [
    (("--text", TEXT, "--case", "CYST1"), "exactly one of --case, --terms, --text, --image or --dicomweb"),
    (("--text", ""), "exactly one of --case, --terms, --text, --image or --dicomweb"),
    (("--case", "CYST1", "--group", "diagnosis"), "--group with --text or --note"),
    (("--text", TEXT, "--exclude-same-patient"), "--exclude-same-patient goes with --case"),
])
def test_query_text_usage_errors(cli_store, args, message):
    run, _ = cli_store
    assert message in run("query", *args, ok=False)


def test_query_text_too_long_is_a_clear_error(cli_store):
    run, _ = cli_store
    assert "too long" in run("query", "--text", "x" * 2001, ok=False)


def test_feedback_session_from_a_text(cli_store):
    run, folder = cli_store
    out = run("feedback", "--new", "--text", TEXT, "--user", "tess", "--relevant", "CYST2", "--irrelevant", "HEM1",
              "--k", "5")
    session_id = out.split()[1]
    assert "round 1 (regularised+rocchio) by tess" in out
    assert f"query: {TEXT!r}" in out
    # Rocchio: homogeneous 0 + 0.75 * 0.6 (CYST2) - 0.15 * 0 (HEM1) = 0.45
    assert "homogeneous 0.00 → 0.45" in out
    shown = run("session", "show", session_id)
    assert f"text {TEXT!r}, user tess" in shown and "CYST2=relevant, HEM1=irrelevant" in shown
    assert f"text {TEXT!r}" in run("session", "list")
    data = json.loads(run("feedback", "--session", session_id, "--relevant", "CYST1", "--format", "json"))
    assert data["round"]["algorithm"] == "regularised+rocchio" and data["round"]["number"] == 2
    assert data["query_text"] == TEXT
    # round 2: relevant so far CYST2 and CYST1 (homogeneous 0.6 and 0): 0.75 * 0.3 = 0.225; irrelevant HEM1: 0
    assert data["query"][HOMOG] == pytest.approx(0.225)
    data = json.loads(run("feedback", "--session", session_id, "--neutral", "HCC1", "--algorithm", "rocchio",
                          "--format", "json"))
    assert data["round"]["algorithm"] == "rocchio"
    with kg.open_store(folder, read_only=True) as store:
        rows = store.select("SELECT DISTINCT ?t WHERE { ?s $p ?t }", {"p": SG.queryText})
    assert [str(r["t"]) for r in rows] == [TEXT]


@pytest.mark.parametrize("args, message", [
    (("--new", "--text", "qqq zzz", "--user", "tess", "--relevant", "CYST1"), "names no vocabulary term"),
    (("--new", "--text", TEXT, "--case", "CYST1", "--user", "tess", "--relevant", "CYST2"), "exactly one of"),
    (("--new", "--text", TEXT, "--relevant", "CYST2"), "--user NAME"),
    (("--session", "abc", "--text", TEXT, "--relevant", "CYST2"), "use them with --new"),
    (("--new", "--text", TEXT, "--user", "tess", "--relevant", "CYST2", "--algorithm", "magic"), "Invalid algorithm"),
    (("--new", "--text", TEXT, "--user", "tess", "--relevant", "NOPE"), "no such case"),
])
def test_bad_text_feedback_writes_nothing(cli_store, args, message):
    run, folder = cli_store
    with kg.open_store(folder, read_only=True) as store:
        before = store.count()
    assert message in run("feedback", *args, ok=False)
    with kg.open_store(folder, read_only=True) as store:
        assert store.count() == before


def test_query_with_a_note_fuses_the_case_with_the_note(tmp_path, monkeypatch):

    from semgraph.cli import load_commands

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    cli = load_commands()
    assert runner.invoke(cli, ["demo", "--no-serve", "--cases", "12", "--size", "128"]).exit_code == 0
    out = runner.invoke(cli, ["query", "--case", "case-000001", "--note", "no enhancement", "--k", "3"])
    assert out.exit_code == 0, out.output
    assert "NOT enhancing" in out.output and "caption text compared: nonenhancing" in out.output
    assert "score = 0.70 · HSBD similarity (all terms) + 0.30 · caption similarity" in out.output
    assert "case-000001 " not in out.output  # the query case itself is left out
    bad = runner.invoke(cli, ["query", "--text", "hypodense", "--note", "x"])
    assert bad.exit_code == 2 and "--note goes with" in bad.output
