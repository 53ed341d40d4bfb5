"""Relevance feedback: hand-computed rounds on k = 4 (two categories) and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semgraph.errors import InvalidInput
from semgraph.feedback.algorithms import (
    FeedbackParams,
    TermChange,
    apply_feedback,
    parse_algorithm,
)
from semgraph.retrieval import hsbd

CATS = ["a", "a", "b", "b"]
D4 = np.array([[0, .5, .8, .8], [.5, 0, .8, .8], [.8, .8, 0, .5], [.8, .8, .5, 0]])
Q = [0.9, 0.0, 0.8, 0.0]


def run(D=D4, rel=(), irr=(), q=Q, t=1, D0=None, **kw):
    rel = rel if len(rel) else np.zeros((0, 4))
    irr = irr if len(irr) else np.zeros((0, 4))
    return apply_feedback(D, D4 if D0 is None else D0, q, rel, irr, CATS, round_number=t, params=FeedbackParams(**kw))


def test_penalty_hand_computed():
    # relevant case has term 1 at 0.85 (|0.85 - 0.9| <= 0.15): pair (0,1) decreases; the irrelevant case has term 3
    # at 0.7 (|0.7 - 0.8| <= 0.15): pair (2,3) increases. Term 0 vs term 3 are in different categories: unchanged.
    r = run(rel=[[0, .85, 0, 0]], irr=[[0, 0, 0, .7]])
    expected = D4.copy()
    expected[0, 1] = expected[1, 0] = 0.4
    expected[2, 3] = expected[3, 2] = 0.6
    np.testing.assert_allclose(r.dissimilarity, expected, atol=1e-12)
    assert [(c.i, c.j) for c in r.changes] == [(0, 1), (2, 3)]
    assert r.changes[0] == TermChange(0, 1, 0.5, pytest.approx(0.4))
    np.testing.assert_array_equal(r.query, Q)


def test_penalty_not_comparable_or_absent():
    assert run(rel=[[0, .6, 0, 0]]).changes == ()        # |0.6 - 0.9| > 0.15
    assert run(rel=[[0, .45, 0, 0]], q=[.5, 0, 0, 0], eps=0.5).changes == ()  # 0.45 is not > tau
    assert run(rel=[[0, .9, 0, 0]], q=[.4, 0, 0, 0]).changes == ()  # the query term is not present


def test_penalty_any_rule_and_cancellation():
    one = run(rel=[[0, .85, 0, 0]])
    three = run(rel=[[0, .85, 0, 0]] * 3)                  # several supporting images: still one step
    np.testing.assert_allclose(one.dissimilarity, three.dissimilarity)
    both = run(rel=[[0, .85, 0, 0]], irr=[[0, .95, 0, 0]])  # supported by both sets: cancels
    assert both.changes == ()


def test_penalty_clips_to_range():
    D = D4.copy()
    D[0, 1] = D[1, 0] = 0.05
    D[2, 3] = D[3, 2] = 0.95
    r = run(D=D, rel=[[0, .9, 0, 0]], irr=[[0, 0, 0, .8]])
    assert r.dissimilarity[0, 1] == pytest.approx(1e-3) and r.dissimilarity[2, 3] == 1.0


def test_regularised_decay_and_trust_region():
    r = run(rel=[[0, .85, 0, 0]], algorithm="regularised", t=2, accept_check=False)  # rho / 2
    assert r.dissimilarity[0, 1] == pytest.approx(0.45)
    D = D4.copy()
    D[0, 1] = D[1, 0] = 0.25                                # already kappa below D0 = 0.5
    r = run(D=D, rel=[[0, .85, 0, 0]], algorithm="regularised", kappa=0.25, accept_check=False)
    assert r.dissimilarity[0, 1] == pytest.approx(0.25)
    r = run(rel=[[0, .85, 0, 0]], algorithm="regularised", kappa=0.04, accept_check=False)
    assert r.dissimilarity[0, 1] == pytest.approx(0.46)


def test_rocchio_hand_computed():
    r = apply_feedback(D4, D4, [.5, .5, 0, 0], [[0, 0, 1, 0]], [[0, 1, 0, 0]], CATS, round_number=2,
                       params=FeedbackParams(algorithm="rocchio"), history_relevant=[[1, 0, 0, 0]])
    # 0.5 + 0.75 * mean([1,0,0,0],[0,0,1,0]) - 0.15 * [0,1,0,0]
    np.testing.assert_allclose(r.query, [0.875, 0.35, 0.375, 0.0])
    np.testing.assert_array_equal(r.dissimilarity, D4)
    assert r.changes == ()
    clipped = apply_feedback(D4, D4, [1, 0, 0, 0], [[1, 0, 0, 0]], [[0, 1, 0, 0]], CATS, round_number=1,
                             params=FeedbackParams(algorithm="rocchio"))
    np.testing.assert_allclose(clipped.query, [1, 0, 0, 0])


def test_combination_changes_both():
    r = run(rel=[[0, .85, 0, 0]], algorithm="penalty+rocchio")
    assert r.dissimilarity[0, 1] == pytest.approx(0.4)
    np.testing.assert_allclose(r.query, np.clip(np.array(Q) + 0.75 * np.array([0, .85, 0, 0]), 0, 1))


@pytest.mark.parametrize("name", ["", "bogus", "penalty+bogus", "rocchio+rocchio", "penalty+regularised"])
def test_unknown_algorithms(name):
    with pytest.raises(ValueError):
        parse_algorithm(name)
    with pytest.raises(ValueError):
        FeedbackParams(algorithm=name)


@pytest.mark.parametrize("kwargs", [
    {"D": D4[:3, :3]}, {"D": D4 * 2}, {"q": [0.5, 0.5]}, {"q": [2, 0, 0, 0]}, {"rel": [[0, 1, 0]]},
    {"irr": [[np.nan, 0, 0, 0]]}, {"t": 0}, {"D0": np.zeros((3, 3))},
])
def test_bad_inputs(kwargs):
    with pytest.raises(InvalidInput):
        run(**kwargs)


def test_bad_params_and_categories():
    with pytest.raises(InvalidInput):
        FeedbackParams(rho=0)
    with pytest.raises(InvalidInput):
        FeedbackParams(tau=1.5)
    with pytest.raises(InvalidInput):
        apply_feedback(D4, D4, Q, [], [], ["a", "b"], round_number=1)
    with pytest.raises(InvalidInput, match="non-empty category"):  # "" would pair every uncategorised term
        apply_feedback(D4, D4, Q, [], [], ["a", "a", "", ""], round_number=1)


def test_as_dict():
    d = FeedbackParams(algorithm="regularised+rocchio", rho=0.2).as_dict()
    assert d["algorithm"] == "regularised+rocchio" and d["rho"] == 0.2 and d["kappa"] == 0.3


# ---------------------------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------------------------


@st.composite
def rounds(draw, relevant_only=False):
    k = draw(st.integers(2, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cats = [draw(st.sampled_from("abc")) for _ in range(k)]
    D0 = rng.uniform(1e-3, 1, (k, k))
    D0 = np.triu(D0, 1)
    D0 = D0 + D0.T
    shift = np.triu(rng.uniform(-0.3, 0.3, (k, k)), 1)
    D = np.clip(D0 + shift + shift.T, np.maximum(D0 - 0.3, 1e-3), np.minimum(D0 + 0.3, 1))
    np.fill_diagonal(D, 0)
    q = rng.uniform(0, 1, k)
    rel = rng.uniform(0, 1, (draw(st.integers(0, 3)), k))
    irr = np.zeros((0, k)) if relevant_only else rng.uniform(0, 1, (draw(st.integers(0, 3)), k))
    t = draw(st.integers(1, 5))
    eps = draw(st.sampled_from([0.05, 0.15, 0.5]))
    return D, D0, q, rel, irr, cats, t, eps


def check_matrix(new, d_min=1e-3):
    assert np.array_equal(new, new.T)
    assert np.all(np.diag(new) == 0)
    off = new[~np.eye(len(new), dtype=bool)]
    assert off.min() >= d_min - 1e-15 and off.max() <= 1


@settings(max_examples=150, deadline=None)
@given(rounds())
def test_penalty_properties(data):
    D, D0, q, rel, irr, cats, t, eps = data
    r = apply_feedback(D, D0, q, rel, irr, cats, round_number=t, params=FeedbackParams(eps=eps))
    new = r.dissimilarity
    check_matrix(new)
    diff = np.abs(new - D)
    same = np.array(cats)[:, None] == np.array(cats)[None, :]
    assert np.all(diff[~same] == 0)                   # only same-category entries change
    assert diff.max() <= 0.1 + 1e-12                  # by at most rho
    for c in r.changes:
        assert c.i < c.j and c.before == D[c.i, c.j] and c.after == new[c.i, c.j]
    assert len(r.changes) == int(np.count_nonzero(np.triu(diff, 1)))


@settings(max_examples=150, deadline=None)
@given(rounds())
def test_regularised_trust_region_and_consistency(data):
    D, D0, q, rel, irr, cats, t, eps = data
    p = FeedbackParams(algorithm="regularised", eps=eps, rho=0.3)
    new = apply_feedback(D, D0, q, rel, irr, cats, round_number=t, params=p).dissimilarity
    check_matrix(new)
    assert np.all(np.abs(new - D0)[~np.eye(len(D), dtype=bool)] <= 0.3 + 1e-12)

    def fraction(M):  # computed with the reference HSBD, pair by pair
        if not len(rel) or not len(irr):
            return 1.0
        ok = []
        for a in rel:
            for b in irr:
                da, db = hsbd.reference_distance(q, a, M), hsbd.reference_distance(q, b, M)
                ok.append(1.0 if da < db - 1e-9 else 0.0 if da > db + 1e-9 else 0.5)
        return np.mean(ok)

    assert fraction(new) >= fraction(D) - 1e-6


@settings(max_examples=100, deadline=None)
@given(rounds(), st.sampled_from(["penalty", "regularised", "rocchio", "regularised+rocchio"]))
def test_empty_marks_change_nothing(data, algorithm):
    D, D0, q, _, _, cats, t, _eps = data
    empty = np.zeros((0, len(q)))
    r = apply_feedback(D, D0, q, empty, empty, cats, round_number=t, params=FeedbackParams(algorithm=algorithm))
    np.testing.assert_array_equal(r.dissimilarity, D)
    assert r.changes == ()
    if algorithm == "rocchio" or "rocchio" not in algorithm:
        np.testing.assert_array_equal(r.query, np.clip(q, 0, 1))


@settings(max_examples=150, deadline=None)
@given(rounds(relevant_only=True), st.sampled_from(["penalty", "regularised"]))
def test_relevant_only_never_increases(data, algorithm):
    D, D0, q, rel, irr, cats, t, eps = data
    r = apply_feedback(D, D0, q, rel, irr, cats, round_number=t, params=FeedbackParams(algorithm=algorithm, eps=eps))
    assert np.all(r.dissimilarity <= D + 1e-15)


@settings(max_examples=100, deadline=None)
@given(rounds(), st.floats(0, 3), st.floats(0, 3), st.floats(0, 3))
def test_rocchio_in_unit_interval(data, alpha, beta, gamma):
    D, D0, q, rel, irr, cats, t, _ = data
    p = FeedbackParams(algorithm="rocchio", alpha=alpha, beta=beta, gamma=gamma)
    r = apply_feedback(D, D0, q, rel, irr, cats, round_number=t, params=p, history_relevant=rel[:1])
    assert r.query.shape == q.shape and r.query.min() >= 0 and r.query.max() <= 1


def _ordered(D, q, a, b):
    return hsbd.reference_distance(q, a, D) < hsbd.reference_distance(q, b, D)


def test_accept_check_rejects_a_step_that_misorders_the_marks():
    D = np.array([[0, 1, .6, .4], [1, 0, .2, .2], [.6, .2, 0, .6], [.4, .2, .6, 0]])
    q, rel, irr = [.9, 0, .9, 0], [[0, .9, 0, .9]], [[0, .9, .9, 0]]
    plain = apply_feedback(D, D, q, rel, irr, CATS, round_number=1, params=FeedbackParams(rho=0.3))
    assert plain.changes  # the paper's step moves (0,1) and (2,3) ...
    assert hsbd.reference_distance(q, rel[0], D) == pytest.approx(hsbd.reference_distance(q, irr[0], D))
    assert not _ordered(plain.dissimilarity, q, rel[0], irr[0])  # ... and ranks the irrelevant case first
    guarded = apply_feedback(D, D, q, rel, irr, CATS, round_number=1,
                             params=FeedbackParams(algorithm="regularised", rho=0.3, decay=False))
    assert guarded.changes == ()  # rho, rho/2, rho/4 all misorder: the round is rejected
    unchecked = apply_feedback(D, D, q, rel, irr, CATS, round_number=1,
                               params=FeedbackParams(algorithm="regularised", rho=0.3, decay=False,
                                                     accept_check=False))
    assert unchecked.changes


def test_accept_check_halves_the_step():
    D = np.array([[0, .6, .2, 1], [.6, 0, 1, .4], [.2, 1, 0, .8], [1, .4, .8, 0]])
    q, rel, irr = [.9, .9, .9, 0], [[.9, 0, .9, .9]], [[.9, 0, .9, 0]]
    guarded = apply_feedback(D, D, q, rel, irr, CATS, round_number=1,
                             params=FeedbackParams(algorithm="regularised", rho=0.3, decay=False))
    # the full step 0.8 - 0.3 misorders the pair; the half step 0.8 - 0.15 does not
    assert [(c.i, c.j) for c in guarded.changes] == [(2, 3)]
    assert guarded.changes[0].after == pytest.approx(0.65)
    assert _ordered(guarded.dissimilarity, q, rel[0], irr[0])
