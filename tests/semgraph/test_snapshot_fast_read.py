"""The bulk read of cases and likelihoods (issue 20) gives exactly what the former read gave.

:func:`reference_read_from_graph` below is the read of :func:`semgraph.graph.snapshot.read_from_graph` before the
change, kept verbatim with its SPARQL queries (nested-loop joins, one dict entry per copy, one matrix cell at a
time); every test compares the new read with it: the same cases in the same order, with the same metadata, and the
same float64 matrix.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from rdflib import Literal, URIRef
from rdflib.namespace import RDF
from synthetic import TERMS, write_synthetic_cases

from kg.namespaces import ANNOTATIONS_GRAPH, ID
from semgraph.graph import casegraph, snapshot
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    _annotations_from_nodes,
    _totals_agree,
    value_totals,
    write_case,
)

# --- the read before issue 20, verbatim -------------------------------------------------------------------------

_OLD_CASES = """
SELECT ?id ?patient ?study WHERE { GRAPH $g {
  ?c sg:study ?s ; rdfs:label ?id . ?s rdfs:label ?study ; sg:patient ?p . ?p rdfs:label ?patient
} }"""
_OLD_CASE_FIELDS = {
    "diagnosis": ("?c sg:diagnosis ?v", str), "contrast_phase": ("?c sg:contrastPhase ?v", str),
    "liver_segment": ("?c sg:liverSegment ?v", str), "image_file": ("?c sg:imageFile ?v", str),
    "mask_file": ("?c sg:maskFile ?v", str),
    "study_date": ("?s sg:studyDate ?v . ?c sg:study ?s", lambda text: dt.date.fromisoformat(text[:10])),
    "age": ("?s sg:age ?v . ?c sg:study ?s", int), "sex": ("?p sg:sex ?v . ?s sg:patient ?p . ?c sg:study ?s", str),
}
_OLD_CASE_FIELD = "SELECT ?id ?v WHERE { GRAPH $g { %s . ?c rdfs:label ?id } }"
_OLD_TERM_VALUES = """
SELECT ?id ?kind ?values WHERE { GRAPH $g { ?a sg:termValues ?values ; sg:annotates ?c ; sg:annotationKind ?kind .
  ?c rdfs:label ?id } }
"""
_OLD_MEMBERS = "SELECT ?id WHERE { GRAPH $g { ?c sg:inCollection $collection ; rdfs:label ?id } }"


def _old_members(store, collection):
    return {row[0] for row in store.select_values(_OLD_MEMBERS, {"g": ANNOTATIONS_GRAPH,
                                                                 "collection": URIRef(collection)})}


def _old_read_cases(store):
    g = {"g": ANNOTATIONS_GRAPH}
    fields = {case_id: {"case_id": case_id, "patient_id": patient, "study_id": study}
              for case_id, patient, study in store.select_values(_OLD_CASES, g)}
    for name, (path, parse) in _OLD_CASE_FIELDS.items():
        for case_id, value in store.select_values(_OLD_CASE_FIELD % path, g):
            if case_id in fields:
                fields[case_id][name] = parse(value)
    return [Case(**fields[case_id]) for case_id in sorted(fields)]


def _old_annotations_from_copies(store):
    expected = value_totals(store)
    rows = store.select_values(_OLD_TERM_VALUES, {"g": ANNOTATIONS_GRAPH})
    parsed = json.loads("[" + ",".join(text for _, _, text in rows) + "]")
    annotations = {(case_id, kind): values for (case_id, kind, _), values in zip(rows, parsed) if values}
    flat = np.fromiter((v for values in parsed for v in values.values()), dtype=np.float64)
    if not _totals_agree(expected, (len(flat), float(flat.sum()), float(flat @ flat))):
        return None
    return annotations


def _old_read_likelihoods(store, terms, kinds):
    index = {t: i for i, t in enumerate(terms)}
    rank = {k: i for i, k in enumerate(kinds)}
    annotations = _old_annotations_from_copies(store)
    if annotations is None:
        annotations = _annotations_from_nodes(store, None)
    best = {}
    for (case_id, kind), values in annotations.items():
        if kind in rank and (case_id not in best or rank[kind] < best[case_id][0]):
            best[case_id] = (rank[kind], values)
    ids = sorted(best)
    matrix = np.zeros((len(ids), len(terms)))
    for row, case_id in enumerate(ids):
        for term, value in best[case_id][1].items():
            if term in index:
                matrix[row, index[term]] = value
    return ids, matrix


def reference_read_from_graph(store, terms, kinds, *, collection=None):
    ids, A = _old_read_likelihoods(store, terms, tuple(kinds))
    by_id = {c.case_id: c for c in _old_read_cases(store)}
    members = _old_members(store, collection) if collection is not None else by_id
    keep = [i for i, case_id in enumerate(ids) if case_id in by_id and case_id in members]
    return [by_id[ids[i]] for i in keep], A[keep]


# --- the stores -------------------------------------------------------------------------------------------------

LUNG, LIVER = ID["collection/lung"], ID["collection/liver"]
OTHER_TERM = "http://example.org/not-in-the-vocabulary"
KINDS = [("predicted", "reader"), ("reader", "predicted", "crossval"), ("reader",), ("crossval",), ("truth",)]


def _details(i: int) -> dict:
    """Varied metadata, with every optional field missing in some case (the sex is set per patient in :func:`_case`:
    a patient of two sexes has no answer the former read could be compared with, it took either)."""
    return {"study_date": None if i % 4 == 0 else dt.date(2019, 1, 1) + dt.timedelta(days=37 * i),
            "age": None if i % 6 == 0 else 20 + i, "contrast_phase": "portal venous" if i % 2 else None,
            "liver_segment": ("VI", None, "II")[i % 3], "image_file": f"img/{i}.png" if i % 2 else None,
            "mask_file": f"img/{i}-mask.png" if i % 2 else None}


def _case(i: int, **changes) -> Case:
    return Case(case_id=f"K{i:02d}", patient_id=f"Q{i % 7}", study_id=f"T{i}",
                **{"diagnosis": (None, "cyst", "nodule")[i % 3], "sex": (None, "F", "M")[i % 7 % 3], **_details(i),
                   **changes})


def populate(store) -> None:
    """Synthetic cases without a collection, cases of two collections with one to three kinds of annotation, a
    case without annotations, one with likelihoods of another term only, one with an empty reader annotation."""
    write_synthetic_cases(store, 12, seed=3, details=_details)
    rng = np.random.default_rng(7)
    for i in range(24):
        kinds = [("predicted",), ("reader",), ("predicted", "reader"), ("crossval", "predicted", "reader")][i % 4]
        annotations = [Annotation(kind, dict(zip(TERMS, rng.random(len(TERMS)).tolist()))) for kind in kinds]
        write_case(store, _case(i), annotations, collection=LUNG if i % 2 else LIVER)
    write_case(store, _case(40), [], collection=LUNG)  # no annotations: never indexed
    write_case(store, _case(41), [Annotation("predicted", {OTHER_TERM: 0.5})], collection=LUNG)
    write_case(store, _case(42), [Annotation("reader", {}),
                                  Annotation("predicted", {TERMS[0]: 0.25, OTHER_TERM: 1.0})], collection=LIVER)
    # a copy whose terms come in another order than the vocabulary's
    write_case(store, _case(43), [Annotation("predicted", dict(reversed(list(zip(TERMS, rng.random(len(TERMS)))))))],
               collection=LIVER)


def assert_same_read(store, kinds, collection=None) -> tuple[list[Case], np.ndarray]:
    expected_cases, expected = reference_read_from_graph(store, TERMS, kinds, collection=collection)
    cases, A = snapshot.read_from_graph(store, TERMS, kinds, collection=collection)
    assert cases == expected_cases
    assert A.dtype == expected.dtype == np.float64 and A.shape == expected.shape == (len(cases), len(TERMS))
    assert_array_equal(A, expected)
    return cases, A


def _no_fallback(monkeypatch):
    """Make the former read fail, so that a test shows the bulk path answered alone."""
    def fail(*args, **kwargs):
        raise AssertionError("read_from_graph fell back to read_likelihoods")
    monkeypatch.setattr(snapshot, "read_likelihoods", fail)


# --- the tests --------------------------------------------------------------------------------------------------

@pytest.fixture
def embedded(tmp_path):
    import kg

    store = kg.open_store(tmp_path / "graph")
    populate(store)
    yield store
    store.close()


@pytest.mark.parametrize("kinds", KINDS)
@pytest.mark.parametrize("collection", [None, LUNG, LIVER])
def test_the_bulk_read_is_the_former_read(embedded, kinds, collection, monkeypatch):
    _no_fallback(monkeypatch)
    cases, A = assert_same_read(embedded, kinds, collection)
    if kinds == ("truth",):
        assert cases == []
    ids = [c.case_id for c in cases]
    assert ids == sorted(ids) and "K40" not in ids
    if collection == LUNG and "predicted" in kinds:
        assert "K41" in ids and not A[ids.index("K41")].any()  # likelihoods of other terms only: a zero row
    if collection is None and kinds == ("predicted", "reader"):
        assert len(cases) == 12 + 24 + 3 and cases[ids.index("K05")] == _case(5)
        assert A[ids.index("K42")][0] == 0.25  # the empty reader annotation does not hide the predicted one


@pytest.mark.parametrize("backend", ["remote", "second-server"])
def test_remote_stores_give_the_former_read(request, tmp_path, backend):
    """The same queries on ``oxigraph serve`` and on a SPARQL server of another implementation (subqueries in a
    GRAPH pattern are plain SPARQL 1.1)."""
    from conftest import open_backend

    store = open_backend(request, backend, tmp_path)
    try:
        populate(store)
        for kinds in KINDS[:3]:
            for collection in (None, LUNG):
                assert_same_read(store, kinds, collection)
    finally:
        store.close()


def _set_node_value(store, case_id: str, kind: str, term: str, value: float) -> None:
    """Change one likelihood node by SPARQL, leaving its annotation's sg:termValues copy as it was."""
    item = URIRef(f"{casegraph.annotation_iri(case_id, kind)}/{term.rsplit('/', 1)[-1]}")
    store.update("DELETE WHERE { GRAPH $g { $l sg:value ?v } } ; INSERT DATA { GRAPH $g { $l sg:value $v } }",
                 {"g": ANNOTATIONS_GRAPH, "l": item, "v": Literal(value)})


def test_the_nodes_win_over_a_copy_that_disagrees(embedded, caplog):
    before = snapshot.read_from_graph(embedded, TERMS, ("predicted", "reader"))
    row = [c.case_id for c in before[0]].index("K04")
    _set_node_value(embedded, "K04", "predicted", TERMS[3], 0.123)
    with caplog.at_level(logging.WARNING, logger="semgraph.graph.casegraph"):
        _, A = assert_same_read(embedded, ("predicted", "reader"))
    assert "do not match" in caplog.text
    assert A[row, 3] == 0.123 != before[1][row, 3]
    changed = np.zeros_like(A, dtype=bool)
    changed[row, 3] = True
    assert_array_equal(A[~changed], before[1][~changed])
    assert_same_read(embedded, ("reader",), LUNG)


def test_copies_of_integers_written_by_another_program(embedded, monkeypatch):
    """A copy is JSON: ``1`` and ``0`` are numbers as good as ``1.0`` (the totals agree), and read as 1.0 and 0.0."""
    a = casegraph.annotation_iri("K00", "predicted")
    values = {TERMS[0]: 1, TERMS[1]: 0}
    embedded.update("DELETE WHERE { GRAPH $g { $a sg:likelihood ?l . ?l ?p ?o } } ; "
                    "DELETE WHERE { GRAPH $g { $a sg:termValues ?v } } ; "
                    "INSERT DATA { GRAPH $g { $a sg:termValues $copy ; sg:likelihood $l0, $l1 . "
                    "$l0 sg:term $t0 ; sg:value 1.0 . $l1 sg:term $t1 ; sg:value 0.0 } }",
                    {"g": ANNOTATIONS_GRAPH, "a": a, "copy": Literal(json.dumps(values), datatype=RDF.JSON),
                     "l0": URIRef(f"{a}/x0"), "l1": URIRef(f"{a}/x1"), "t0": URIRef(TERMS[0]), "t1": URIRef(TERMS[1])})
    _no_fallback(monkeypatch)
    cases, A = assert_same_read(embedded, ("predicted", "reader"), LIVER)
    row = [c.case_id for c in cases].index("K00")
    assert A[row, 0] == 1.0 and not A[row, 1:].any()


def test_a_copy_that_is_not_json_fails_as_before(embedded):
    embedded.update("DELETE WHERE { GRAPH $g { $a sg:termValues ?v } } ; INSERT DATA { GRAPH $g { $a sg:termValues "
                    "'{not json' } }", {"g": ANNOTATIONS_GRAPH, "a": casegraph.annotation_iri("K01", "reader")})
    with pytest.raises(ValueError):
        reference_read_from_graph(embedded, TERMS, ("reader",))
    with pytest.raises(ValueError):
        snapshot.read_from_graph(embedded, TERMS, ("reader",))


def test_the_snapshot_holds_the_former_read(embedded, monkeypatch):
    """The first start reads the graph (reusing the key's value totals) and writes the file; the next reads it."""
    expected = reference_read_from_graph(embedded, TERMS, ("predicted", "reader"), collection=LUNG)
    totals = []
    monkeypatch.setattr(snapshot, "value_totals", lambda store: totals.append(1) or value_totals(store))
    first = snapshot.cases_and_likelihoods(embedded, TERMS, ("predicted", "reader"), collection=LUNG)
    assert first[2] == "graph" and len(totals) == 1
    second = snapshot.cases_and_likelihoods(embedded, TERMS, ("predicted", "reader"), collection=LUNG)
    assert second[2] == "snapshot"
    for cases, A, _ in (first, second):
        assert cases == expected[0]
        assert_array_equal(A, expected[1])
