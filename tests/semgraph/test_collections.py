"""A second collection that is not liver CT (lung-nodule ratings under a small `urn:` taxonomy) lives beside the
liver collection in one store: ingest → evaluate → query → feedback → session → export → check from the command
line, and the liver collection is unchanged by all of it."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import TERMS, write_synthetic_cases

import kg
import ontology
from semgraph.cli import load_commands
from semgraph.errors import InvalidInput
from semgraph.graph.collection import (
    LIVER_CT,
    bundled,
    default_categories,
    resolve,
    stored_collections,
)
from semgraph.retrieval.engine import Engine
from semgraph.retrieval.similarity import write_baseline

cli = load_commands()

# A hand-made taxonomy: three branches under one root, rating levels below them (one two levels deep).
TAXONOMY = """
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
<urn:nod:characteristic> a owl:Class ; rdfs:label "nodule characteristic" .
<urn:nod:margin> a owl:Class ; rdfs:label "margin" ; rdfs:subClassOf <urn:nod:characteristic> .
<urn:nod:margin-sharp> a owl:Class ; rdfs:label "sharp margin" ; rdfs:subClassOf <urn:nod:margin> .
<urn:nod:margin-poor> a owl:Class ; rdfs:label "poorly defined margin" ; rdfs:subClassOf <urn:nod:margin> .
<urn:nod:margin-spiculated> a owl:Class ; rdfs:label "spiculated margin" ; rdfs:subClassOf <urn:nod:margin-poor> .
<urn:nod:calcification> a owl:Class ; rdfs:label "calcification" ; rdfs:subClassOf <urn:nod:characteristic> .
<urn:nod:calc-absent> a owl:Class ; rdfs:label "no calcification" ; rdfs:subClassOf <urn:nod:calcification> .
<urn:nod:calc-popcorn> a owl:Class ; rdfs:label "popcorn calcification" ; rdfs:subClassOf <urn:nod:calcification> .
<urn:nod:texture> a owl:Class ; rdfs:label "texture" ; rdfs:subClassOf <urn:nod:characteristic> .
<urn:nod:solid> a owl:Class ; rdfs:label "solid" ; rdfs:subClassOf <urn:nod:texture> .
<urn:nod:ground-glass> a owl:Class ; rdfs:label "ground glass" ; rdfs:subClassOf <urn:nod:texture> .
"""
LUNG = ["urn:nod:margin-sharp", "urn:nod:margin-spiculated", "urn:nod:calc-absent", "urn:nod:calc-popcorn",
        "urn:nod:solid", "urn:nod:ground-glass"]
BRANCH = {"urn:nod:margin-sharp": "margin", "urn:nod:margin-spiculated": "margin",
          "urn:nod:calc-absent": "calcification", "urn:nod:calc-popcorn": "calcification",
          "urn:nod:solid": "texture", "urn:nod:ground-glass": "texture"}
# per diagnosis: the level most readers give in each branch (a reader deviates with probability 0.2)
TYPICAL = {"benign": ("sharp margin", "popcorn calcification", "solid"),
           "malignant": ("spiculated margin", "no calcification", "solid"),
           "indeterminate": ("sharp margin", "no calcification", "ground glass")}
LEVELS = (("sharp margin", "spiculated margin"), ("no calcification", "popcorn calcification"),
          ("solid", "ground glass"))


def write_ratings(path, n: int = 36, seed: int = 3) -> list[dict]:
    """A reader-ratings CSV whose term columns are labels of the taxonomy (resolved by ``ingest``)."""
    rng = np.random.default_rng(seed)
    labels = [lab for pair in LEVELS for lab in pair]
    rows = []
    for i in range(n):
        diagnosis = list(TYPICAL)[i % 3]
        row = {"case_id": f"N{i:03d}", "patient_id": f"LP{i // 2:03d}", "diagnosis": diagnosis}
        for branch, typical in zip(LEVELS, TYPICAL[diagnosis]):
            chosen = typical if rng.random() > 0.2 else next(lab for lab in branch if lab != typical)
            for lab in branch:
                row[lab] = "1" if lab == chosen else "0"
        rows.append(row)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["case_id", "patient_id", "diagnosis", *labels])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def liver_state(store) -> dict:
    engine = Engine.from_store(store, collection=LIVER_CT)
    return {"ids": engine.ids, "vectors": engine.vectors.copy(), "D": engine.dissimilarity.copy(),
            "ranking": [(h.case_id, round(h.distance, 12)) for h in engine.search_case(engine.ids[0], 10)],
            "captions": engine.caption(engine.ids[0])}


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "semgraph-data"
    with kg.open_store(data / "graph") as store:
        ontology.load(store, "radlex-liver")
        write_synthetic_cases(store, 24, seed=2)  # cases written before collections existed: no sg:inCollection
        write_baseline(store, TERMS, ontology.dissimilarity_matrix(store, TERMS), kind="ontology")
    (tmp_path / "nodules.ttl").write_text(TAXONOMY, encoding="utf-8")
    write_ratings(tmp_path / "ratings.csv")
    return data


def invoke(*args, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_default_categories_are_the_branches_under_the_deepest_common_class(store_dir):
    with kg.open_store(store_dir / "graph") as store:
        ontology.load(store, "nodules.ttl", name="nodules")
        h = ontology.hierarchy(store, "nodules")
        root, categories = default_categories(h, LUNG)
        assert root == "urn:nod:characteristic"
        assert categories == BRANCH  # spiculated is two levels below "margin" and still in it
        root, categories = default_categories(h, ["urn:nod:margin-sharp", "urn:nod:margin-spiculated"])
        assert root == "urn:nod:margin"
        assert categories == {"urn:nod:margin-sharp": "sharp margin", "urn:nod:margin-spiculated": "poorly defined margin"}
        # a term above another: the root is a class above both, and both are in the branch "margin"
        assert default_categories(h, ["urn:nod:margin", "urn:nod:margin-sharp"]) == (
            "urn:nod:characteristic", {"urn:nod:margin": "margin", "urn:nod:margin-sharp": "margin"})
        assert default_categories(h, ["urn:nod:solid"]) == ("urn:nod:texture", {"urn:nod:solid": "solid"})
        with pytest.raises(InvalidInput, match="term root itself"):
            default_categories(h, ["urn:nod:margin", "urn:nod:margin-sharp"], "urn:nod:margin")
        with pytest.raises(InvalidInput, match="no class of the ontology lies above every term"):
            default_categories(h, ["urn:nod:characteristic", "urn:nod:solid"])


def test_a_second_collection_from_the_command_line_leaves_the_liver_collection_unchanged(store_dir):
    with kg.open_store(store_dir / "graph") as store:
        before = liver_state(store)
        assert stored_collections(store) == [] and resolve(store) == bundled()
    invoke("ontology", "load", "nodules.ttl", "--name", "nodules")

    out = invoke("ingest", "ratings.csv", "--collection", "lung-nodules", "--title", "Lung nodules",
                 "--case-label", "Lung nodule")
    assert "ingested 36 into collection lung-nodules" in out
    listed = invoke("collection", "list")
    assert re.search(r"liver-ct\s+24 cases\s+19 terms", listed), listed
    assert re.search(r"lung-nodules\s+36 cases\s+6 terms", listed), listed
    shown = json.loads(invoke("collection", "show", "lung-nodules", "--format", "json"))
    assert [t["iri"] for t in shown["terms"]] == [
        "urn:nod:margin-sharp", "urn:nod:margin-spiculated", "urn:nod:calc-absent", "urn:nod:calc-popcorn",
        "urn:nod:solid", "urn:nod:ground-glass"]  # CSV column order
    assert {t["iri"]: t["category"] for t in shown["terms"]} == BRANCH
    assert shown["ontology"] == "nodules" and shown["term_root"] == "urn:nod:characteristic"

    # with two collections a command must be told which one
    assert "holds 2 collections (liver-ct, lung-nodules)" in invoke("query", "--case", "N000", ok=False)

    evaluation = invoke("evaluate", "--collection", "lung-nodules", "--likelihoods", "reader", "--seeds", "2",
                        "--queries", "4", "--rounds", "1", "--out", "evaluation")
    assert "collection lung-nodules: δΓ from co-occurrence" in evaluation
    assert "reader/cooccurrence/none" in evaluation and "reader/image" not in evaluation
    saved = json.loads((store_dir.parent / "evaluation" / "evaluation.json").read_text())
    assert saved["collection"] == "lung-nodules" and saved["warnings"] == []
    ndcg = {name: s["ndcg"]["mean"][0][9] for name, s in saved["settings"].items()}
    assert len({round(v, 9) for v in ndcg.values()}) > 1, "every setting tied"

    hits = json.loads(invoke("query", "--collection", "lung-nodules", "--case", "N000", "--k", "36",
                             "--format", "json"))
    assert hits["collection"] == "lung-nodules"
    assert all(re.fullmatch(r"N\d{3}", h["case_id"]) for h in hits["results"])
    assert hits["results"][0]["distance"] == 0.0  # N000 = benign typical: another benign typical case ties it
    assert "likelihood of 0 for every one of the 6 terms" in invoke(
        "query", "--collection", "lung-nodules", "--terms", "solid=0", ok=False)

    # marked cases that differ from the query in some rating, so that the round pairs two levels of one branch
    rel = [h["case_id"] for h in hits["results"] if h["diagnosis"] == "benign" and h["distance"] > 0][:2]
    irr = [h["case_id"] for h in hits["results"] if h["diagnosis"] != "benign" and h["distance"] > 0][:2]
    assert rel and irr
    first = json.loads(invoke("feedback", "--collection", "lung-nodules", "--new", "--case", "N000", "--user",
                              "reader1", "--relevant", ",".join(rel), "--irrelevant", ",".join(irr),
                              "--format", "json"))
    session_id = first["session_id"]
    changed = first["round"]["changes"]
    for change in changed:  # the penalty algorithm pairs terms of one category only
        assert BRANCH[change["term_a"]] == BRANCH[change["term_b"]], change
    shown = invoke("session", "show", session_id)  # finds the session's collection by itself
    assert f"session {session_id}: case N000, user reader1" in shown
    again = json.loads(invoke("feedback", "--session", session_id, "--relevant", rel[0], "--irrelevant", irr[0],
                              "--format", "json"))  # continues in the session's collection
    assert again["round"]["number"] == 2

    exported = invoke("export", "--collection", "lung-nodules", "--format", "csv")
    rows = list(csv.DictReader(exported.splitlines()))
    assert len(rows) == len(first["round"]["changes"]) + len(again["round"]["changes"]) > 0
    assert all(r["term_a"] in LUNG and r["term_b"] in LUNG for r in rows)
    assert invoke("export", "--collection", "liver-ct", "--format", "csv").strip().count("\n") == 0  # header only

    checked = invoke("check")
    assert "no problems found" in checked, checked

    with kg.open_store(store_dir / "graph", read_only=True) as store:
        after = liver_state(store)
        lung = Engine.from_store(store, collection="lung-nodules", likelihood_kinds=("reader",))
        with open(store_dir.parent / "ratings.csv", encoding="utf-8") as f:
            n000 = next(r for r in csv.DictReader(f) if r["case_id"] == "N000")
        rated = [lab for pair in LEVELS for lab in pair if n000[lab] == "1"]  # one level per branch, in CSV order
        assert lung.caption("N000") == "Lung nodule: " + "; ".join(rated) + "."
    assert after["ids"] == before["ids"]
    np.testing.assert_array_equal(after["vectors"], before["vectors"])
    np.testing.assert_array_equal(after["D"], before["D"])
    assert after["ranking"] == before["ranking"] and after["captions"] == before["captions"]


def test_ingest_refuses_terms_outside_the_collection_and_writes_nothing(store_dir):
    invoke("ontology", "load", "nodules.ttl", "--name", "nodules")
    out = invoke("ingest", "ratings.csv", ok=False)  # default: the liver collection
    assert "6 term(s) are not terms of collection 'liver-ct'" in out and "--collection NEW-NAME" in out
    with kg.open_store(store_dir / "graph", read_only=True) as store:
        assert stored_collections(store) == []
        assert not store.ask("ASK { ?c <https://w3id.org/semgraph/vocab#inCollection> ?x }")


def test_check_reports_a_likelihood_outside_its_collection(store_dir):
    invoke("ontology", "load", "nodules.ttl", "--name", "nodules")
    invoke("ingest", "ratings.csv", "--collection", "lung-nodules")
    with kg.open_store(store_dir / "graph") as store:
        store.update("""INSERT DATA { GRAPH <https://w3id.org/semgraph/graph/annotations> {
            <https://w3id.org/semgraph/id/annotation/N001/reader/x> <https://w3id.org/semgraph/vocab#term>
                <http://radlex.org/RID/RID5715> .
            <https://w3id.org/semgraph/id/annotation/N001/reader> <https://w3id.org/semgraph/vocab#likelihood>
                <https://w3id.org/semgraph/id/annotation/N001/reader/x> } }""")
    out = invoke("check", ok=False)
    assert "likelihood(s) of its cases name terms outside it, e.g. http://radlex.org/RID/RID5715" in out
    with kg.open_store(store_dir / "graph") as store:  # a term that is a literal: outside too, and no crash
        store.update("""DELETE DATA { GRAPH <https://w3id.org/semgraph/graph/annotations> {
            <https://w3id.org/semgraph/id/annotation/N001/reader/x> <https://w3id.org/semgraph/vocab#term>
                <http://radlex.org/RID/RID5715> } } ;
            INSERT DATA { GRAPH <https://w3id.org/semgraph/graph/annotations> {
            <https://w3id.org/semgraph/id/annotation/N001/reader/x> <https://w3id.org/semgraph/vocab#term> "hypodense" } }""")
    out = invoke("check", ok=False)
    assert "likelihood(s) of its cases name terms outside it, e.g. hypodense" in out
    assert "needs exactly one sg:term (a term IRI)" in out
