"""Cases and annotations in the graph: atomic writes, replace, read back on both backends."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from kg.namespaces import ANNOTATIONS_GRAPH

from semgraph.errors import InvalidInput
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    annotation_stamps,
    case_exists,
    case_ntriples,
    case_triples,
    count_annotated,
    model_iri,
    read_cases,
    read_likelihoods,
    rebuild_term_values,
    replace_annotation,
    stale_term_values,
    update_annotations,
    value_totals,
    write_case,
    write_cases,
)

T1, T2, T3 = (f"http://radlex.org/RID/RID{n}" for n in (5715, 5711, 6042))


def make_case(case_id="C 1/é", **kw):
    return Case(case_id, "P1", "S1", diagnosis="cyst", study_date=dt.date(2020, 1, 31), age=63, sex="F",
                contrast_phase="portal venous", liver_segment="VI", image_file="images/c1.dcm", **kw)


def test_write_and_read_back(store):
    case = make_case()
    write_case(store, case, [Annotation("reader", {T1: 1.0, T2: 0.0}),
                             Annotation("predicted", {T1: 0.25, T3: 0.75}, attributed_to=model_iri("v1"))])
    assert read_cases(store) == [case]
    assert case_exists(store, "C 1/é") and not case_exists(store, "C 2")
    ids, matrix = read_likelihoods(store, [T1, T2, T3])
    assert ids == ["C 1/é"] and matrix.tolist() == [[0.25, 0.0, 0.75]]  # predicted first by default
    ids, matrix = read_likelihoods(store, [T1, T2, T3], kinds=("reader",))
    assert matrix.tolist() == [[1.0, 0.0, 0.0]]
    assert store.ask("ASK { ?a sg:annotates ?c ; prov:wasAttributedTo ?m ; prov:generatedAtTime ?t }")


def test_replace_rewrites_only_that_case(store):
    write_case(store, make_case("A"), [Annotation("reader", {T1: 1.0})])
    write_case(store, make_case("B"), [Annotation("reader", {T2: 1.0})])
    write_case(store, make_case("A"), [Annotation("reader", {T3: 0.5})], replace=True)
    ids, matrix = read_likelihoods(store, [T1, T2, T3])
    assert ids == ["A", "B"] and matrix.tolist() == [[0.0, 0.0, 0.5], [0.0, 1.0, 0.0]]
    assert len(read_cases(store)) == 2


@pytest.mark.parametrize("values", [{T1: 1.5}, {T1: -0.1}, {T1: float("nan")}, {T1: "high"}])
def test_invalid_likelihoods_are_rejected_before_writing(store, values):
    with pytest.raises(InvalidInput, match="in \\[0, 1\\]"):
        write_case(store, make_case(), [Annotation("reader", values)])
    assert store.count() == 0


def test_unknown_kind_and_empty_id(store):
    with pytest.raises(InvalidInput, match="unknown annotation kind"):
        Annotation("guess", {T1: 0.5})
    with pytest.raises(InvalidInput, match="empty id"):
        write_case(store, make_case(""))
    assert store.count() == 0


def test_cases_without_annotation_are_left_out(store):
    write_case(store, make_case("A"))
    ids, matrix = read_likelihoods(store, [T1])
    assert ids == [] and matrix.shape == (0, 1)
    assert np.all(matrix == 0)


# ------------------------------------------------------------------ the compact copies (sg:termValues)

_SET_VALUE = """DELETE { GRAPH $g { ?l sg:value ?v } } INSERT { GRAPH $g { ?l sg:value $new } }
WHERE { GRAPH $g { ?a sg:annotates ?c ; sg:likelihood ?l . ?c rdfs:label $case . ?l sg:term $term ; sg:value ?v } }"""


def _two_cases(store):
    write_case(store, Case("A", "P1", "S1"), [Annotation("reader", {T1: 0.25, T2: 1.0})])
    write_case(store, Case("B", "P2", "S2"), [Annotation("reader", {T1: 0.5})])


def test_every_write_keeps_the_copy_and_the_totals(store):
    _two_cases(store)
    # count 3, sum 0.25 + 1 + 0.5 = 1.75, squares 0.0625 + 1 + 0.25 = 1.3125 (worked out by hand)
    assert value_totals(store) == (3, 1.75, 1.3125)
    replace_annotation(store, "B", Annotation("reader", {T2: 0.125, T3: 0.0}))
    assert value_totals(store) == (4, 1.375, 1.078125)
    assert stale_term_values(store) == []
    ids, matrix = read_likelihoods(store, [T1, T2, T3], kinds=("reader",))
    assert ids == ["A", "B"] and matrix.tolist() == [[0.25, 1.0, 0.0], [0.0, 0.125, 0.0]]


def test_a_value_edited_by_sparql_is_read_from_the_nodes_until_the_copies_are_rebuilt(store, caplog):
    from rdflib import Literal, URIRef
    from rdflib.namespace import XSD

    _two_cases(store)
    update_annotations(store, _SET_VALUE, {"case": Literal("B"), "term": URIRef(T1),
                                           "new": Literal(0.75, datatype=XSD.double)})
    with caplog.at_level("WARNING", logger="semgraph.graph.casegraph"):
        ids, matrix = read_likelihoods(store, [T1, T2], kinds=("reader",))
    assert matrix.tolist() == [[0.25, 1.0], [0.75, 0.0]]  # the edit, not the stale copy's 0.5
    assert "semgraph check --repair" in caplog.text
    for batch in (1, 2000):  # one annotation per read, or all in one
        assert [(a.rsplit("/", 2)[-2], problem) for a, problem in stale_term_values(store, batch=batch)] == [
            ("B", "has an sg:termValues copy that differs from its likelihood nodes")]
    assert rebuild_term_values(store, batch=1) == 2
    caplog.clear()
    with caplog.at_level("WARNING", logger="semgraph.graph.casegraph"):
        assert read_likelihoods(store, [T1, T2], kinds=("reader",))[1].tolist() == [[0.25, 1.0], [0.75, 0.0]]
    assert caplog.text == "" and stale_term_values(store) == []


def test_a_store_without_copies_reads_the_same_and_is_repaired(store):
    _two_cases(store)
    store.update("DELETE WHERE { GRAPH $g { ?a sg:termValues ?v } }", {"g": ANNOTATIONS_GRAPH})
    assert read_likelihoods(store, [T1, T2], kinds=("reader",))[1].tolist() == [[0.25, 1.0], [0.5, 0.0]]
    assert len(stale_term_values(store)) == 2
    rebuild_term_values(store)
    assert stale_term_values(store) == []
    assert read_likelihoods(store, [T1, T2], kinds=("reader",))[1].tolist() == [[0.25, 1.0], [0.5, 0.0]]


def test_count_annotated_counts_cases_not_annotations(store):
    _two_cases(store)  # A and B, each with a reader annotation
    write_case(store, Case("C", "P3", "S3"), [Annotation("predicted", {T1: 0.5}),
                                              Annotation("reader", {T2: 1.0})], replace=True)
    assert count_annotated(store, "reader") == 3 and count_annotated(store, "predicted") == 1
    assert count_annotated(store, "crossval") == 0


def test_case_ntriples_hand_written():
    case = Case('C"1', "P 1", "S1", study_date=dt.date(2020, 1, 31), age=63)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    text = case_ntriples(case, [Annotation("reader", {T1: 1.0, T2: 0.25}, generated_at=when)])
    lines = set(text.splitlines())
    c, s, p = ("<https://w3id.org/semgraph/id/case/C%221>", "<https://w3id.org/semgraph/id/study/S1>",
               "<https://w3id.org/semgraph/id/patient/P%201>")
    a = "<https://w3id.org/semgraph/id/annotation/C%221/reader>"
    item = "<https://w3id.org/semgraph/id/annotation/C%221/reader/RID5711>"
    sg, xsd = "https://w3id.org/semgraph/vocab#", "http://www.w3.org/2001/XMLSchema#"
    rdf_type, label = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", "<http://www.w3.org/2000/01/rdf-schema#label>"
    expected = {
        f"{c} {rdf_type} <{sg}Case> .", f'{c} {label} "C\\"1" .', f"{c} <{sg}study> {s} .",
        f"{s} <{sg}studyDate> \"2020-01-31\"^^<{xsd}date> .", f"{s} <{sg}age> \"63\"^^<{xsd}integer> .",
        f'{p} {label} "P 1" .', f"{a} <{sg}annotates> {c} .",
        f"{a} <http://www.w3.org/ns/prov#generatedAtTime> \"2026-01-02T03:04:05+00:00\"^^<{xsd}dateTime> .",
        f"{a} <{sg}likelihood> {item} .", f"{item} <{sg}term> <{T2}> .", f"{item} <{sg}value> \"0.25\"^^<{xsd}double> .",
    }
    assert expected <= lines
    assert len(lines) == 8 + 2 + 5 + 2 * 4  # case, study, patient; their two metadata; the annotation; two nodes
    assert len(case_triples(case, [Annotation("reader", {T1: 1.0, T2: 0.25})])) == len(lines)


def test_write_cases_adds_many_cases_in_one_load_and_renews_the_stamp(store):
    write_case(store, make_case("old"), [Annotation("reader", {T1: 1.0})])
    stamps = annotation_stamps(store)
    cases = [make_case(f"C{i}") for i in range(3)]
    write_cases(store, [case_ntriples(case, [Annotation("reader", {T1: i / 4, T2: 1.0})])
                        for i, case in enumerate(cases)])
    assert sorted(c.case_id for c in read_cases(store)) == ["C0", "C1", "C2", "old"]
    new = annotation_stamps(store)
    assert len(new) == 1 and new != stamps
    ids, matrix = read_likelihoods(store, [T1, T2], kinds=("reader",))
    assert dict(zip(ids, matrix.tolist())) == {"old": [1.0, 0.0], "C0": [0.0, 1.0], "C1": [0.25, 1.0],
                                               "C2": [0.5, 1.0]}
    assert value_totals(store) == (7, 4.75, 1 + 0.0625 + 0.25 + 3)  # the nodes agree with the copies
    write_cases(store, [])
    assert annotation_stamps(store) == new
