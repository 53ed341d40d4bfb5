"""The SSSOM export of the proposed term links: written by sssom-py, read back by its parsers, equal to the proposal."""

from __future__ import annotations

import datetime as dt
import io
import json
from importlib.metadata import version

import pytest
from synthetic import write_synthetic_cases

import kg
import ontology
from ontology.paper_terms import paper_terms
from semgraph.exchange import export as ex
from semgraph.feedback.sessions import start_session
from semgraph.graph.casegraph import Annotation, Case, write_case
from semgraph.graph.rounds import round_iri
from semgraph.retrieval.engine import Engine

R = "http://radlex.org/RID/"
HYPO, WATER, SOFT = R + "RID6042", R + "RID43336", R + "RID43337"
USER = "https://w3id.org/semgraph/id/user/"
TERMS = [t.iri for t in paper_terms()]


def fill(store) -> Engine:
    """The RadLex subset, 12 synthetic cases and four hand-made ones: Q hypodense, REL water density, IRR soft
    tissue density."""
    ontology.load(store, "radlex-liver")
    write_synthetic_cases(store, 12, 5)
    for j, (cid, vals) in enumerate({"Q": {HYPO: 0.9}, "REL": {WATER: 0.85}, "IRR": {SOFT: 0.9},
                                     "OTHER": {HYPO: 0.2}}.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis="cyst"), [Annotation("reader", vals)])
    return Engine.from_store(store)


@pytest.fixture
def base(tmp_path):
    """A store filled by :func:`fill` and its engine; no feedback yet."""
    with kg.open_store(tmp_path / "graph") as store:
        yield store, fill(store)


@pytest.fixture
def learned(base):
    """alice: two rounds pulling water density towards hypodense (and pushing soft tissue away); bob: one round."""
    store, engine = base
    alice = start_session(store, engine, "Q", "alice")
    rounds = [alice.feedback({"REL": "relevant", "IRR": "irrelevant"}), alice.feedback({"REL": "relevant"})]
    rounds.append(start_session(store, engine, "Q", "bob").feedback({"REL": "relevant"}))
    return store, engine, rounds


def parse_tsv(text: str):
    from sssom.parsers import parse_sssom_table

    return parse_sssom_table(io.StringIO(text))


def parse_json(text: str, tmp_path):
    from sssom.parsers import parse_sssom_json

    path = tmp_path / "set.sssom.json"
    path.write_text(text, encoding="utf-8")
    return parse_sssom_json(path)


def rows(msdf) -> list[dict]:
    """The mappings as sssom-py's schema objects see them (multivalued slots as lists), as dicts."""
    return [{k: v for k, v in vars(m).items() if v not in (None, [])} for m in msdf.to_mappings()]


def test_known_feedback_gives_the_known_mapping(learned):
    store, engine, rounds = learned
    msdf = parse_tsv(ex.export(store, "sssom"))
    (row,) = rows(msdf)  # soft tissue was pushed apart: no proposal, no mapping
    assert (row["subject_id"], row["predicate_id"], row["object_id"]) == \
        ("RADLEX:RID43336", "skos:relatedMatch", "RADLEX:RID6042")
    assert (row["subject_label"], row["object_label"]) == ("water density", "hypodense")
    # alice -0.2 (two penalty steps), bob -0.1: 2 sessions, 2 users: 2/3 * 3/4 * (0.15 / 0.3) * 1 = 0.25
    assert row["confidence"] == 0.25
    D0 = engine.dissimilarity[TERMS.index(HYPO), TERMS.index(WATER)]
    assert row["similarity_score"] == pytest.approx(1 - (D0 - 0.15), abs=1e-6)  # mean of D0 - 0.2 and D0 - 0.1
    assert row["mapping_justification"] == "semapv:SemanticSimilarityThresholdMatching"
    assert row["author_id"] == ["sguser:alice", "sguser:bob"]
    assert sorted(row["see_also"]) == sorted(str(round_iri(r.round_id)) for r in rounds)
    assert row["mapping_date"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert (row["mapping_tool"], row["mapping_tool_version"]) == ("semgraph", version("semgraph"))  # propagated
    meta = msdf.metadata
    assert meta["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert meta["mapping_set_id"].startswith("https://w3id.org/semgraph/id/mapping-set/liver-ct/")
    assert meta["creator_id"] == ["sguser:alice", "sguser:bob"]
    assert msdf.converter.expand("sguser:alice") == USER + "alice"
    assert msdf.converter.expand("RADLEX:RID6042") == HYPO


def test_the_statements_equal_the_proposal(base, tmp_path):
    store, engine = base
    session = start_session(store, engine, "Q", "carol")
    for _ in range(8):  # water density ends up within 0.15 of hypodense: closeMatch, and a re-parenting
        session.feedback({"REL": "relevant"})
    found = ex.proposals(store)
    assert {p.kind for p in found} == {"closeMatch", "reparent"}
    links = {(p.term_a, {"closeMatch": "skos:closeMatch", "related": "skos:relatedMatch"}[p.kind], p.term_b,
              p.confidence, tuple(sorted(p.rounds))) for p in found if p.kind != "reparent"}
    for msdf in (parse_tsv(ex.export(store, "sssom")), parse_json(ex.export(store, "sssom-json"), tmp_path)):
        expand = msdf.converter.expand
        got = {(expand(r["subject_id"]), r["predicate_id"], expand(r["object_id"]), r["confidence"],
                tuple(sorted(r["see_also"]))) for r in rows(msdf)}
        assert got == links
        assert len(links) == 1 and next(iter(links))[1] == "skos:closeMatch"


def test_the_mapping_set_id_is_stable_and_depends_on_the_filters(learned):
    store, _, _ = learned
    first, again = (parse_tsv(ex.export(store, "sssom")).metadata["mapping_set_id"] for _ in range(2))
    assert first == again
    filtered = parse_tsv(ex.export(store, "sssom", user="alice"))
    assert filtered.metadata["mapping_set_id"] != first
    (row,) = rows(filtered)
    assert row["author_id"] == ["sguser:alice"] and row["confidence"] == round(0.5 * 0.5 * (0.2 / 0.3), 3)
    assert rows(parse_tsv(ex.export(store, "sssom", min_sessions=3))) == []


def test_nothing_learned_is_an_empty_but_valid_set(base):
    store, _ = base
    text = ex.export(store, "sssom")
    data = json.loads(ex.export(store, "sssom-json"))
    msdf = parse_tsv(text)
    assert rows(msdf) == [] and msdf.metadata["license"].startswith("https://creativecommons.org/")
    assert data.get("mappings", []) == [] and data["mapping_set_id"] == msdf.metadata["mapping_set_id"]


def test_cli_and_formats(learned, cli_on, tmp_path):
    store, _, _ = learned
    assert {"sssom", "sssom-json"} <= set(ex.available_formats())
    assert ex.get_format("sssom").download == "mappings.sssom.tsv"
    store.close()
    run = cli_on(tmp_path / "graph")
    (row,) = rows(parse_tsv(run("export", "--format", "sssom")))
    assert row["predicate_id"] == "skos:relatedMatch" and row["confidence"] == 0.25
    out = run("--data-dir", str(tmp_path / "data"), "export", "--format", "sssom-json", "--out", "links")
    target = tmp_path / "data" / "exports" / "links.sssom.json"
    assert str(target.resolve()) in out.replace("\n", "")
    (row,) = rows(parse_json(target.read_text(encoding="utf-8"), tmp_path))
    assert row["object_id"] == "RADLEX:RID6042"
