"""Exclusive term groups: stored with the collection, read by the vocabulary, respected by captions, predicted
jointly by the term models; the calibration fitted on pooled out-of-fold scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ontology.paper_terms import paper_exclusive_groups, paper_terms
from semgraph.errors import InvalidInput
from semgraph.graph.collection import Collection, bundled, define, stored_collections
from semgraph.terms.evaluation import lopo_auc
from semgraph.terms.joint import fit_group, group_likelihoods, group_targets
from semgraph.terms.models import TermModels, apply_calibrations, fit_calibrations
from semgraph.text.captions import asserted, caption
from semgraph.text.textquery import Vocabulary, VocabularyTerm

R = "http://radlex.org/RID/"


def test_paper_groups_are_the_alternatives_of_table_1():
    groups = {name: {m.rsplit("/", 1)[1] for m in members} for name, members in paper_exclusive_groups().items()}
    assert groups == {"margin definition": {"RID5707", "RID5709"},
                      "margin contour": {"RID5714", "RID5711", "RID5715"},
                      "attenuation": {"RID6042", "RID43337", "RID43336"},
                      "enhancement": {"RID6055", "RID6056"},
                      "enhancement pattern": {"RID39457", "RID39563", "RID43319"},
                      "uniformity": {"RID6060", "RID6059"}}
    # hypervascular is a kind of enhancing, not an alternative to it; smooth is a kind of circumscribed
    liver = bundled()
    assert liver.exclusive[liver.position(R + "RID34389")] == ""
    assert liver.exclusive[liver.position(R + "RID5714")] != liver.exclusive[liver.position(R + "RID5707")]


def test_groups_round_trip_through_the_store(store):
    liver = define(store, bundled())
    (read,) = stored_collections(store)
    assert read.exclusive == liver.exclusive == bundled().exclusive
    assert read.exclusive_groups["attenuation"] == (R + "RID6042", R + "RID43337", R + "RID43336")
    assert [t["exclusive_group"] for t in read.as_dict()["terms"]][:2] == ["margin definition", "margin contour"]


def test_a_group_of_one_term_is_refused():
    liver = bundled()
    exclusive = list(liver.exclusive)
    exclusive[liver.position(R + "RID6055")] = "lonely"  # nonenhancing stays in "enhancement", alone too
    with pytest.raises(InvalidInput, match="single term"):
        dataclasses.replace(liver, exclusive=tuple(exclusive))
    with pytest.raises(InvalidInput, match="one exclusive group"):
        Collection("x", ("a", "b"), ("a", "b"), ("c", "c"), exclusive=("g",))


def test_a_subset_keeps_only_groups_of_two_or_more():
    c = Collection("x", ("a", "b", "c", "d"), ("A", "B", "C", "D"), ("k", "k", "k", "k"), exclusive=("g", "g", "h", "h"))
    part = c.subset([3, 0, 1])
    assert (part.terms, part.labels, part.exclusive) == (("d", "a", "b"), ("D", "A", "B"), ("", "g", "g"))
    assert part.exclusive_groups == {"g": ("a", "b")}


def test_vocabulary_carries_the_groups():
    vocab = Vocabulary.default()
    assert {t.exclusive_group for t in vocab.terms if t.iri in (R + "RID6060", R + "RID6059")} == {"uniformity"}
    from_collection = Vocabulary.from_collection(bundled())
    assert [t.exclusive_group for t in from_collection.terms] == [t.exclusive_group for t in vocab.terms]


def test_asserted_keeps_only_the_most_likely_term_of_a_group():
    vocab = Vocabulary.build([VocabularyTerm("x:a", "a", "c", exclusive_group="g"),
                              VocabularyTerm("x:b", "b", "c", exclusive_group="g"),
                              VocabularyTerm("x:c", "c", "c"),
                              VocabularyTerm("x:d", "d", "d", exclusive_group="g")], {})
    assert asserted([0.7, 0.9, 0.8, 0.6], vocab).tolist() == [False, True, True, False]
    assert asserted([0.7, 0.4, 0.3, 0.2], vocab).tolist() == [True, False, False, False]
    assert asserted([0.3, 0.2, 0.3, 0.2], vocab, threshold=0.25).tolist() == [True, False, True, False]  # tie: first
    assert asserted([0.1, 0.1, 0.1, 0.1], vocab).tolist() == [False] * 4


def test_caption_of_a_case_with_both_exclusive_terms_high_mentions_one():
    values = {t.iri: 0.1 for t in paper_terms()}
    values.update({R + "RID6060": 0.8, R + "RID6059": 0.9,  # heterogeneous and homogeneous
                   R + "RID43336": 0.95, R + "RID6042": 0.7,  # water and hypodense
                   R + "RID6055": 0.9, R + "RID34389": 0.8})  # enhancing and hypervascular: not exclusive
    text = caption(values)
    assert text == "Liver lesion: water density; enhancing, hypervascular; homogeneous."
    assert "heterogeneous" not in text and "hypodense" not in text


def test_asserted_never_names_two_terms_of_a_group_at_any_threshold():
    rng = np.random.default_rng(0)
    vocab = Vocabulary.default()
    for _ in range(200):
        said = asserted(rng.random(len(vocab)), vocab, threshold=float(rng.uniform(0, 0.9)))
        for members in paper_exclusive_groups().values():
            assert sum(said[vocab.iris.index(m)] for m in members) <= 1


# ---------------------------------------------------------------------------------------------- the joint model
def _two_alternatives(seed=0, n=120):
    """Term a where x0 > 0, term b where x1 > 0, never both: where both hold the reader picked one (alternately);
    term c (no group) where x2 > 0. Two ROIs per patient."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    a, b = X[:, 0] > 0, X[:, 1] > 0
    both = np.flatnonzero(a & b)
    a[both[::2]], b[both[1::2]] = False, False
    Y = np.c_[a, b, X[:, 2] > 0].astype(float)
    return X, Y, np.arange(n) // 2


TERMS3 = ["x:a", "x:b", "x:c"]


def test_independent_models_assert_both_alternatives_the_joint_model_one():
    X, Y, groups = _two_alternatives()
    probe = np.array([[3.0, 3.0, 0.0], [3.0, -3.0, 0.0], [-3.0, -3.0, 3.0]])
    independent = TermModels(terms=TERMS3, exclusive_groups={}).fit(X, Y, groups=groups)
    assert independent.groups_ == []
    p = independent.predict_proba(probe)
    assert p[0, 0] > 0.5 and p[0, 1] > 0.5  # the contradiction the joint model removes
    joint = TermModels(terms=TERMS3, exclusive_groups={"g": ["x:a", "x:b"]}).fit(X, Y, groups=groups)
    assert [g["name"] for g in joint.groups_] == ["g"] and joint.groups_[0]["kind"] == "multinomial"
    q = joint.predict_proba(probe)
    assert (q[:, :2].sum(axis=1) <= 1 + 1e-12).all()
    assert ((q[:, :2] > 0.5).sum(axis=1) <= 1).all()
    assert q[1, 0] > 0.5 > q[1, 1]  # only a's side: a, and clearly
    assert q[2, :2].max() < 0.5 and q[2, 2] > 0.5  # neither alternative; c is not in the group
    np.testing.assert_allclose(q[:, 2], p[:, 2])  # a term outside the group is untouched


def test_group_model_by_hand():
    # rows: none, a, b, a+b (counts half for each) -> outcome weights
    rows, outcomes, weights = group_targets(np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=bool))
    assert rows.tolist() == [0, 1, 2, 3, 3] and outcomes.tolist() == [0, 1, 2, 1, 2]
    assert weights.tolist() == [1.0, 1.0, 1.0, 0.5, 0.5]
    # one outcome only: the smoothed shares, (0 + 1)/(3 + 3) for each term
    prior = fit_group(np.zeros((3, 2)), np.zeros((3, 2), dtype=bool))
    assert prior == {"kind": "prior", "p": [1 / 6, 1 / 6]}
    # a hand-made softmax: logits none 0, a = z_a, b = z_b
    params = {"kind": "multinomial", "outcomes": [0, 1, 2], "coef": [[0, 0], [1, 0], [0, 1]], "intercept": [0, 0, 0]}
    p = group_likelihoods(params, [[np.log(2), np.log(3)]])
    np.testing.assert_allclose(p, [[2 / 6, 3 / 6]])


def test_paper_groups_are_the_default_and_survive_save_and_load(tmp_path):
    rng = np.random.default_rng(1)
    k = len(paper_terms())
    X = rng.normal(size=(40, 5))
    Y = (rng.random((40, k)) < 0.4).astype(float)
    model = TermModels().fit(X, Y, groups=np.arange(40) // 2)
    assert [g["name"] for g in model.groups_] == list(paper_exclusive_groups())
    loaded = TermModels.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    P = model.predict_proba(X)
    for members in paper_exclusive_groups().values():
        idx = [model.terms_.index(t) for t in members]
        assert (P[:, idx].sum(axis=1) <= 1 + 1e-12).all()


def test_bad_groups_are_refused():
    X, Y, groups = _two_alternatives(n=20)
    for bad in ({"g": ["x:a"]}, {"g": ["x:a", "x:z"]}, {"g": ["x:a", "x:b"], "h": ["x:b", "x:c"]}):
        with pytest.raises(InvalidInput, match="exclusive group"):
            TermModels(terms=TERMS3, exclusive_groups=bad).fit(X, Y, groups=groups)


# ---------------------------------------------------------------------------------------------- pooled calibration
def test_pooled_calibration_of_hand_built_scores():
    scores = np.array([[-3.0], [-2.0], [-1.0], [0.0], [1.0], [2.0], [3.0], [4.0]])
    labels = np.array([[0], [0], [0], [1], [0], [1], [1], [1]], dtype=float)
    (iso,), groups = fit_calibrations(scores, labels, "isotonic", ["x:a"], [])
    assert groups == []
    # pool-adjacent-violators: [0, 0, 0, (1, 0) -> 0.5, 1, 1, 1]
    got = apply_calibrations([[-2.5], [0.0], [0.5], [1.0], [3.5]], [iso], [], ["x:a"])[:, 0]
    np.testing.assert_allclose(got, [0.0, 0.5, 0.5, 0.5, 1.0])
    (platt,), _ = fit_calibrations(scores, labels, "platt", ["x:a"], [])
    mapped = apply_calibrations(scores, [platt], [], ["x:a"])[:, 0]
    assert platt["a"] > 0 and (np.diff(mapped) > 0).all() and mapped[0] < 0.25 and mapped[-1] > 0.75
    # a term with one class gets the Laplace prior (0 + 1)/(8 + 2)
    (prior,), _ = fit_calibrations(scores, np.zeros_like(labels), "platt", ["x:a"], [])
    assert prior == {"kind": "constant", "p": 0.1}


def test_lopo_calibrates_the_pooled_out_of_fold_scores():
    X, Y, groups = _two_alternatives(seed=3, n=60)
    estimator = TermModels(terms=TERMS3, exclusive_groups={"g": ["x:a", "x:b"]}, Cs=(1.0,))
    result = lopo_auc(X, Y, groups, estimator=estimator, n_splits=5)
    np.testing.assert_allclose(result.likelihoods,
                               apply_calibrations(result.scores, result.calibration, result.groups, TERMS3))
    # outside the group the pooled map is monotone, so it keeps the ranking of the raw scores
    assert result.auc[2] == pytest.approx(result.auc_raw[2])
    assert [g["name"] for g in result.groups] == ["g"]
    assert (result.likelihoods[:, :2].sum(axis=1) <= 1 + 1e-12).all()
    assert result.mean_auc > 0.85 and np.isfinite(result.auc_fold).all()
