"""The retrieval engine: cases from the store, filters inside the search, explanations, image queries."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ontology
from ontology.paper_terms import paper_terms
from semgraph.cohort import iter_labels
from semgraph.errors import InvalidInput, NotFound
from semgraph.graph.casegraph import Annotation, Case, write_case
from semgraph.retrieval import hsbd
from semgraph.retrieval.engine import Engine, Filters, parse_filter, parse_terms
from semgraph.retrieval.index import HSBDIndex
from semgraph.text.captions import caption

TERMS = [t.iri for t in paper_terms()]
R = "http://radlex.org/RID/"
HYPO, WATER, SOFT = R + "RID6042", R + "RID43336", R + "RID43337"
SEGMENTS = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII")


def fill(store, n=32, seed=3):
    """The bundled RadLex subset, n synthetic cases (noisy reader labels as likelihoods) and 4 hand-made ones."""
    ontology.load(store, "radlex-liver")
    rng = np.random.default_rng(seed)
    for i, lab in enumerate(iter_labels(n, seed)):
        values = np.clip(0.1 + 0.8 * lab.reader_labels + rng.uniform(-0.08, 0.08, len(TERMS)), 0, 1)
        case = Case(lab.case_id, lab.patient_id, f"S{i}", diagnosis=lab.diagnosis,
                    study_date=dt.date(2020, 1, 1) + dt.timedelta(days=20 * i), age=30 + (7 * i) % 50,
                    sex="FM"[i % 2], contrast_phase=("portal venous", "arterial")[i % 3 == 0],
                    liver_segment=SEGMENTS[i % 8])
        write_case(store, case, [Annotation("predicted", dict(zip(TERMS, map(float, values))))])
    hand = {"Q": {HYPO: 0.9}, "REL": {WATER: 0.85}, "IRR": {SOFT: 0.9}, "OTHER": {HYPO: 0.2}}
    for j, (cid, vals) in enumerate(hand.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis="cyst", age=50, sex="F"),
                   [Annotation("reader", vals)])


@pytest.fixture
def engine(store):
    fill(store)
    return Engine.from_store(store)


def test_engine_reads_cases_and_falls_back_to_the_ontology(store, engine):
    assert len(engine) == 36 and engine.terms == tuple(TERMS)
    assert engine.source.startswith("ontology")
    expected = hsbd.clamp(ontology.dissimilarity_matrix(store, TERMS))
    np.testing.assert_array_equal(engine.dissimilarity, expected)
    np.testing.assert_allclose(engine.vector("Q")[TERMS.index(HYPO)], 0.9)
    assert engine.case("REL").diagnosis == "cyst"
    with pytest.raises(NotFound):
        engine.case("nope")


def test_empty_store_is_a_clear_error(store):
    with pytest.raises(NotFound, match="no case"):
        Engine.from_store(store, dissimilarity=np.ones((19, 19)) - np.eye(19))


def test_search_case_excludes_the_query_and_optionally_its_patient(engine):
    ids = [c.case_id for c in engine.cases]
    patient = {c.case_id: c.patient_id for c in engine.cases}
    # a synthetic case whose patient has several cases
    multi = next(c for c in ids if sum(patient[o] == patient[c] for o in ids) > 1)
    hits = engine.search_case(multi, k=len(ids))
    assert multi not in [h.case_id for h in hits] and len(hits) == len(ids) - 1
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    same = [h for h in hits if patient[h.case_id] == patient[multi]]
    assert same  # without the option the patient's other cases are found ...
    hits = engine.search_case(multi, k=len(ids), exclude_same_patient=True)
    assert all(patient[h.case_id] != patient[multi] for h in hits)  # ... and with it they are not


FILTERS = [
    ["diagnosis=cyst"], ["diagnosis=metastasis,hcc"], ["term:hypodense>0.5"], ["term:RID43336>0.5", "sex=F"],
    ["age=40-60"], ["age=-45"], ["date=2020-03-01..2021-01-01"], ["phase=arterial"], ["segment=VI"],
    ["exclude-patient=HP0,HP1"],
]


def test_filtered_top_k_equals_top_k_of_an_index_on_the_allowed_rows(engine):
    for filters in FILTERS:
        f = Filters.coerce(filters)
        allowed = engine.mask(f, exclude=("Q",))
        rows = [i for i, ok in enumerate(allowed) if ok]
        assert 0 < len(rows) < len(engine), filters
        sub = HSBDIndex(engine.dissimilarity, [engine.ids[i] for i in rows], engine.vectors[rows])
        k = min(5, len(rows))
        expected = sub.search(engine.vector("Q"), k=k)
        hits = engine.search_case("Q", k=k, filters=f)
        assert [h.case_id for h in hits] == expected.ids, filters  # k results, not a post-filtered global top-k
        np.testing.assert_allclose([h.distance for h in hits], expected.distances, rtol=1e-6)


def test_each_filter_keeps_exactly_the_matching_cases(engine):
    by_id = {c.case_id: c for c in engine.cases}

    def kept(*filters):
        return {h.case_id for h in engine.search_vector(np.full(19, 0.5), k=100, filters=list(filters))}

    assert kept("diagnosis=cyst") == {c for c, x in by_id.items() if x.diagnosis == "cyst"}
    assert kept("age=40-60") == {c for c, x in by_id.items() if x.age is not None and 40 <= x.age <= 60}
    assert kept("term:water density>0.5") == {
        c for c in by_id if engine.vector(c)[TERMS.index(WATER)] > 0.5}
    assert kept("date=2020-03-01..2021-01-01") == {
        c for c, x in by_id.items() if x.study_date and dt.date(2020, 3, 1) <= x.study_date <= dt.date(2021, 1, 1)}
    assert kept("segment=VI", "sex=F") == {c for c, x in by_id.items() if x.liver_segment == "VI" and x.sex == "F"}
    assert "REL" in kept("term:RID43336>0.8") and "Q" not in kept("term:RID43336>0.8")


def test_filter_parsing_and_errors():
    f = parse_filter("age=40-70", parse_filter("term:hypodense >= 0.5", parse_filter("diagnosis=cyst, hcc")))
    assert f.diagnosis == ("cyst", "hcc") and f.terms == (("hypodense", 0.5),) and f.age == (40, 70)
    assert parse_filter("date=2020-01-01..").study_date == (dt.date(2020, 1, 1), None)
    assert Filters.coerce({"diagnosis": "cyst"}).diagnosis == ("cyst",)
    for bad in ("colour=red", "age=old", "term:hypodense", "date=2020-13-01", "diagnosis="):
        with pytest.raises(InvalidInput):
            parse_filter(bad)
    with pytest.raises(InvalidInput, match="unknown filter"):
        Filters.coerce({"colour": "red"})
    assert parse_terms("hypodense=0.9, RID6042=1") == {"hypodense": 0.9, "RID6042": 1.0}
    with pytest.raises(InvalidInput):
        parse_terms("hypodense")


def test_terms_resolve_by_iri_rid_label_and_paper_label(engine):
    a = engine.vector_from_terms({HYPO: 0.9, "rid43336": 0.5, "Soft Tissue Density": 0.25, "hypervascular": 1})
    assert a[TERMS.index(HYPO)] == 0.9 and a[TERMS.index(WATER)] == 0.5 and a[TERMS.index(SOFT)] == 0.25
    assert a[TERMS.index(R + "RID34389")] == 1.0 and a.sum() == pytest.approx(2.65)
    with pytest.raises(InvalidInput, match="hypodense"):  # the ontology suggests the close label
        engine.vector_from_terms({"hypodens": 1})
    with pytest.raises(InvalidInput, match="not in the retrieval vocabulary"):
        engine.vector_from_terms({"liver mass": 1})  # a RadLex class outside the 19 terms
    with pytest.raises(InvalidInput, match=r"\[0, 1\]"):
        engine.vector_from_terms({"hypodense": 2})


def test_explanation_by_hand_on_three_terms():
    # D of the index docstring: terms 0 and 1 merge at 1, then with 2 at 4; gap weights W = [.25, .25, 1, .75, 0]
    cases = [Case(c, "P" + c, "S" + c) for c in "abc"]
    e = Engine(["t0", "t1", "t2"], cases, np.eye(3), [[0, 1, 4], [1, 0, 4], [4, 4, 0]], labels=["x", "y", "z"])
    hits = e.search_vector([1, 0, 0], k=3)
    assert [(h.case_id, h.distance) for h in hits] == [("a", 0.0), ("b", 0.5), ("c", 2.0)]
    assert hits[0].explanation == ()
    assert [(c.label, c.value) for c in hits[1].explanation] == [("x", 0.25), ("y", 0.25)]
    assert [(c.label, c.value) for c in hits[2].explanation] == [("z", 1.0), ("x + y", 0.75), ("x", 0.25)]
    assert hits[2].explanation[1].terms == ("t0", "t1")


def test_all_node_contributions_sum_to_the_distance(engine):
    for hit in engine.search_case("Q", k=10):
        parts = engine.contributions(engine.vector("Q"), engine.vector(hit.case_id))
        assert len(parts) == 2 * 19 - 1
        assert sum(p.value for p in parts) == pytest.approx(hit.distance, rel=1e-5, abs=1e-6)
        assert hsbd.distance(engine.vector("Q"), engine.vector(hit.case_id), engine.dissimilarity) == \
            pytest.approx(hit.distance, rel=1e-5)
        top = [p.value for p in hit.explanation]
        assert len(top) == 3 and top == sorted(top, reverse=True)
        assert top[0] == pytest.approx(max(p.value for p in parts))


def test_with_dissimilarity_gives_a_new_engine(engine):
    D = np.full((19, 19), 0.5)
    np.fill_diagonal(D, 0)
    other = engine.with_dissimilarity(D)
    assert not np.array_equal(other.dissimilarity, engine.dissimilarity)
    # all-equal D: HSBD is plain L1 (docs/algorithms.md §1.5, checked per §1.6)
    q, irr = engine.vector("Q"), engine.vector("IRR")  # differ by 0.9 in hypodense and 0.9 in soft tissue density
    assert sum(c.value for c in other.contributions(q, irr)) == pytest.approx(1.8)
    assert sum(c.value for c in engine.contributions(q, irr)) < 1.79  # the two terms share a dendrogram node


def test_captions_describe_the_case_and_are_shared_with_derived_engines(engine):
    text = engine.caption("Q")
    assert text.startswith("Liver lesion") and "50-year-old woman" in text  # case Q: age 50, sex F
    assert text == caption(dict(zip(engine.terms, engine.vector("Q"))), metadata=engine.case("Q"))
    D = np.full((19, 19), 0.5)
    np.fill_diagonal(D, 0)
    assert engine.with_dissimilarity(D).caption("Q") is text  # computed once, not per derived engine
    with pytest.raises(NotFound):
        engine.caption("no-such-case")


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.sampled_from([None, ["sex=F"], ["age=40-60"]]))
def test_an_engine_for_another_d_ranks_exactly_as_one_built_for_it(seed, k, filters):
    """with_dissimilarity (shared vectors, no index rebuild) and _set_dissimilarity vs engines built from scratch."""
    rng = np.random.default_rng(seed)
    n, t = int(rng.integers(2, 60)), int(rng.integers(2, 8))
    cases = [Case(f"c{i}", f"p{i % 7}", f"s{i}", diagnosis="dx", age=int(rng.integers(30, 70)), sex="FM"[i % 2])
             for i in range(n)]
    vectors = rng.integers(0, 4, (n, t)) / 3 if seed % 2 else rng.random((n, t))  # ties half of the time
    D1, D2 = (np.triu(rng.uniform(0.1, 1, (t, t)), 1) for _ in range(2))
    D1, D2 = D1 + D1.T, D2 + D2.T
    terms = [f"t{i}" for i in range(t)]
    base = Engine(terms, cases, vectors, D1)
    before = base.search_case("c0", k, filters)
    derived = base.with_dissimilarity(D2, source="session")
    assert derived.search_case("c0", k, filters) == Engine(terms, cases, vectors, D2).search_case("c0", k, filters)
    assert base.search_case("c0", k, filters) == before
    derived._set_dissimilarity(D1)
    assert derived.search_case("c0", k, filters) == before


class FixedModel:
    """A stand-in term model: predicts the same likelihoods for any region, and records what it was given."""

    version_ = "fixed"

    def __init__(self, likelihoods: dict):
        from semgraph.features import FeatureConfig

        self.values, self.seen = likelihoods, []
        self.feature_config_ = FeatureConfig()

    def likelihoods(self, x, patches=None, patch_kinds=None):
        self.seen.append((np.asarray(x).shape, np.asarray(patches).shape))
        return dict(self.values)


def test_search_by_image_goes_through_features_and_the_model(engine, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path / "slice.png"
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
    with pytest.raises(NotFound, match="semgraph train"):
        engine.search_image(path, {"rectangle": (10, 10, 50, 50)}, k=3, hu_range=(-100, 200))
    model = FixedModel(dict(zip(engine.terms, engine.vector("REL"))))
    hits = engine.search_image(path, {"rectangle": (10, 10, 50, 50)}, k=3, model=model, hu_range=(-100, 200))
    assert hits[0].case_id == "REL" and hits[0].distance == 0.0
    (roi_shape, patch_shape), = model.seen
    assert len(roi_shape) == 1 and roi_shape[0] > 0 and patch_shape[0] > 0  # one ROI vector and its patches
    with pytest.raises(InvalidInput, match="does not predict"):
        engine.search_image(path, {"rectangle": (10, 10, 50, 50)}, model=FixedModel({engine.terms[0]: 1.0}),
                            hu_range=(-100, 200))
