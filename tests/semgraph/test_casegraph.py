"""Cases and annotations in the graph: atomic writes, replace, read back on both backends."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from semgraph.errors import InvalidInput
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    case_exists,
    model_iri,
    read_cases,
    read_likelihoods,
    write_case,
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
