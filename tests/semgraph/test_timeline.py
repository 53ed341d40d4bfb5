"""Patient timeline and temporal filters."""

from __future__ import annotations

import datetime as dt

import pytest

from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput, NotFound
from semgraph.graph.casegraph import Annotation, Case, write_case
from semgraph.retrieval.timeline import (
    add_months,
    after,
    before,
    build_timeline,
    parse_temporal,
    patient_timeline,
    temporal_filter,
    within_months,
)

D = dt.date


def cases():
    return [Case("A1", "P1", "S1", study_date=D(2020, 1, 15)), Case("A2", "P1", "S2", study_date=D(2020, 6, 1)),
            Case("A3", "P1", "S3", study_date=D(2021, 2, 1)), Case("A4", "P1", "S4"),
            Case("A5", "P1", "S1", study_date=D(2020, 1, 15)), Case("B1", "P2", "S9", study_date=D(2020, 3, 1))]


def ids(cs):
    return [c.case_id for c in cs]


def test_add_months_by_hand():
    assert add_months(D(2021, 1, 31), 1) == D(2021, 2, 28)
    assert add_months(D(2020, 1, 31), 1) == D(2020, 2, 29)
    assert add_months(D(2020, 11, 30), 3) == D(2021, 2, 28)
    assert add_months("2020-03-31", -1) == D(2020, 2, 29)
    with pytest.raises(InvalidInput):
        add_months("31/01/2020", 1)


def test_before_after_within():
    cs = cases()
    assert ids(before(cs, "2020-06-01")) == ["A1", "A5", "B1"]
    assert ids(before(cs, D(2020, 6, 1), inclusive=True)) == ["A1", "A2", "A5", "B1"]
    assert ids(after(cs, "2020-06-01")) == ["A3"]
    assert ids(within_months(cs, D(2020, 1, 15), 6)) == ["A2", "B1"]  # 2020-01-15 < d <= 2020-07-15
    assert ids(within_months(cs, D(2020, 6, 1), 5, direction="before")) == ["A1", "A5", "B1"]
    assert ids(within_months(cs, D(2020, 6, 1), 4, direction="both")) == ["B1"]
    with pytest.raises(ValueError):
        within_months(cs, D(2020, 6, 1), 4, direction="sideways")


def test_parse_temporal():
    cs = cases()
    assert ids(temporal_filter(cs, "before 2020-02-01")) == ["A1", "A5"]
    assert ids(temporal_filter(cs, "After 2020-12-31")) == ["A3"]
    assert ids(temporal_filter(cs, "follow-up within 6 months", reference=D(2020, 1, 15))) == ["A2", "B1"]
    assert ids(temporal_filter(cs, "within 1 month of 2020-02-15")) == ["B1"]
    f = parse_temporal("within 12 months")
    assert (f.op, f.date, f.months) == ("within", None, 12)
    with pytest.raises(InvalidInput, match="reference date"):
        f.apply(cs)
    for bad in ["before yesterday", "within months", "", None]:
        with pytest.raises(InvalidInput):
            parse_temporal(bad)


def test_build_timeline_by_hand():
    t = build_timeline(cases(), "A2", {"A1": {"x": 0.5}})
    assert t.focus.case.case_id == "A2" and t.focus.days == 0
    assert ids(e.case for e in t.earlier) == ["A1", "A5"] and [e.days for e in t.earlier] == [-138, -138]
    assert ids(e.case for e in t.later) == ["A3"] and t.later[0].days == 245
    assert ids(e.case for e in t.undated) == ["A4"] and t.same_day == ()
    assert t.earlier[0].likelihoods == {"x": 0.5}
    with pytest.raises(NotFound):
        build_timeline(cases(), "nope")


def test_patient_timeline_from_store(store):
    terms = paper_terms()
    for c in cases():
        write_case(store, c, [Annotation("reader", {terms[0].iri: 0.75})])
    t = patient_timeline(store, "A1")
    assert ids(e.case for e in t.same_day) == ["A5"]
    assert ids(e.case for e in t.later) == ["A2", "A3"]
    assert t.later[0].likelihoods[terms[0].iri] == 0.75 and t.later[0].likelihoods[terms[1].iri] == 0.0
    assert "B1" not in str(t.as_dict())
    with pytest.raises(NotFound):
        patient_timeline(store, "nope")
