"""The ``reweight`` feedback algorithm (docs/algorithms.md §5.7): per-term weights from the marks, the weighted
index and engine, the guard on weights, and the evaluation protocol with weights."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from semgraph.errors import InvalidInput
from semgraph.evaluation import ProtocolConfig, run_protocol
from semgraph.feedback.algorithms import (
    FeedbackParams,
    apply_feedback,
    discriminant_weights,
    guard_round,
    marked_evidence,
    parse_algorithm,
)
from semgraph.graph.casegraph import Case
from semgraph.retrieval import hsbd
from semgraph.retrieval import index as index_module
from semgraph.retrieval.engine import Engine
from semgraph.retrieval.index import HSBDIndex

D3 = np.array([[0, .5, .8], [.5, 0, .8], [.8, .8, 0]])
Q3 = [1.0, 0.0, 0.5]
REL3 = [[1.0, 0.0, 0.1]]
IRR3 = [[0.0, 0.0, 0.9]]


# ---------------------------------------------------------------------------------------------------- the weights


def test_the_weights_of_a_three_term_example_by_hand():
    # R = {q0, REL}: mean (1, 0, 0.3), sd (0, 0, 0.2); I: mean (0, 0, 0.9)
    # raw = (1.05 / 0.1, 0.05 / 0.1, 0.65 / 0.3) = (21/2, 1/2, 13/6), mean 79/18 -> raw / mean = (189, 9, 39) / 79
    # w = 1/2 + raw / 2 = (134, 44, 59) / 79
    r = apply_feedback(D3, D3, Q3, REL3, IRR3, ["a", "b", "c"], round_number=1,
                       params=FeedbackParams(algorithm="reweight"))
    assert_allclose(r.weights, np.array([134, 44, 59]) / 79, rtol=1e-12)
    assert r.weights.mean() == pytest.approx(1.0)
    assert_array_equal(r.query, Q3) and not r.changes  # neither the query nor D changes
    assert_allclose(discriminant_weights(Q3, REL3, IRR3, lam=1.0), np.array([189, 9, 39]) / 79, rtol=1e-12)


def test_without_irrelevant_marks_the_weights_follow_the_agreement_of_the_relevant_cases():
    # raw = 1 / (sd_R + 0.1) = (10, 10, 10/3), mean 70/9 -> (9, 9, 3) / 7; lambda = 0.5: (8, 8, 5) / 7
    assert_allclose(discriminant_weights(Q3, REL3, np.zeros((0, 3))), np.array([8, 8, 5]) / 7, rtol=1e-12)


def test_lambda_zero_gives_uniform_weights():
    assert_array_equal(discriminant_weights(Q3, REL3, IRR3, lam=0.0), np.ones(3))


def test_the_weights_are_recomputed_from_every_mark_so_far_not_accumulated():
    params = FeedbackParams(algorithm="rocchio+reweight")
    history_rel, history_irr = [[0.9, 0.2, 0.4]], [[0.1, 0.8, 0.7]]
    r = apply_feedback(D3, D3, Q3, REL3, IRR3, ["a", "b", "c"], round_number=2, params=params,
                       history_relevant=history_rel, history_irrelevant=history_irr, weights=[5.0, 0.1, 2.0])
    expected = discriminant_weights(Q3, np.vstack([history_rel, REL3]), np.vstack([history_irr, IRR3]))
    assert_allclose(r.weights, expected, rtol=1e-12)


def test_an_algorithm_without_reweight_keeps_the_current_weights():
    r = apply_feedback(D3, D3, Q3, REL3, IRR3, ["a", "a", "b"], round_number=1,
                       params=FeedbackParams(algorithm="rocchio"), weights=[2.0, 0.5, 0.5])
    assert_array_equal(r.weights, [2.0, 0.5, 0.5])
    assert apply_feedback(D3, D3, Q3, REL3, IRR3, ["a", "a", "b"], round_number=1).weights is None


@pytest.mark.parametrize("name, parts", [("reweight", {"reweight"}), ("rocchio+reweight", {"rocchio", "reweight"}),
                                         ("penalty+rocchio+reweight", {"penalty", "rocchio", "reweight"}),
                                         ("regularised+reweight", {"regularised", "reweight"})])
def test_the_combinations_parse(name, parts):
    assert parse_algorithm(name) == parts
    assert FeedbackParams(algorithm=name).parts == parts


@pytest.mark.parametrize("kwargs, error", [({"algorithm": "reweight+reweight"}, ValueError),
                                           ({"lam": 1.5}, InvalidInput), ({"lam": -0.1}, InvalidInput),
                                           ({"lam": "half"}, InvalidInput)])
def test_bad_names_and_lambdas_are_refused(kwargs, error):
    with pytest.raises(error):
        FeedbackParams(**kwargs)


# ---------------------------------------------------------------------------------------------------- the guard

# Two terms, D with one merge: HSBD is plain L1. From q = (1, 1), REL = (1, 0) and IRR = (0, 1) are tied (evidence
# 1/2); weights (1.5, 0.5) put IRR farther (1 / 2 -> evidence 1), weights (0.5, 1.5) put it closer (evidence 0).
D2 = [[0, 1], [1, 0]]
Q2, REL2, IRR2 = [1, 1], [[1, 0]], [[0, 1]]


def test_the_evidence_is_measured_with_the_weights():
    assert marked_evidence(D2, Q2, REL2, IRR2) == 0.5
    assert marked_evidence(D2, Q2, REL2, IRR2, weights=[1.5, 0.5]) == 1.0
    assert marked_evidence(D2, Q2, REL2, IRR2, weights=[0.5, 1.5]) == 0.0


def test_the_guard_applies_weights_that_order_the_marks_better():
    g = guard_round(D2, Q2, D2, Q2, REL2, IRR2, new_weights=[1.5, 0.5])
    assert (g.guard, g.step, g.before, g.after) == ("applied", 1.0, 0.5, 1.0)
    assert_array_equal(g.weights, [1.5, 0.5])


def test_the_guard_refuses_weights_that_order_the_marks_worse():
    # every step w_t = 1 + t ((0.5, 1.5) - 1) with t = 1, 1/2, 1/4, 1/8 puts IRR closer: refused, no weights
    g = guard_round(D2, Q2, D2, Q2, REL2, IRR2, new_weights=[0.5, 1.5])
    assert (g.guard, g.step, g.before, g.after, g.weights) == ("refused", 0.0, 0.5, 0.5, None)


def test_the_guard_shrinks_the_weights_with_the_step():
    # from w = (1.5, 0.5) (evidence 1) towards (0.5, 1.5): t = 1 gives 0, t = 1/2 a tie (1/2), t = 1/4 keeps 1
    g = guard_round(D2, Q2, D2, Q2, REL2, IRR2, weights=[1.5, 0.5], new_weights=[0.5, 1.5])
    assert (g.guard, g.step) == ("reduced", 0.25)
    assert_allclose(g.weights, [1.25, 0.75])


# ---------------------------------------------------------------------------------------------------- ranking


def _random_dissimilarity(rng: np.random.Generator, k: int) -> np.ndarray:
    upper = np.triu(rng.uniform(0.05, 1.0, size=(k, k)), 1)
    return upper + upper.T


def _prune_from(rows: int):
    """Searches of indexes with at least ``rows`` rows prune (1: always; more than the rows: never)."""
    return mock.patch.object(index_module, "PRUNE_MIN_ROWS", rows)


@st.composite
def weighted_databases(draw):
    """(D, ids, vectors, query, weights, mask): up to 300 rows, weights in [0, 3] with some zeros."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k, n = draw(st.integers(1, 12)), draw(st.integers(1, 300) | st.integers(60, 300))
    vectors, query = rng.random((n, k)), rng.random(k)
    if draw(st.booleans()):  # repeated rows: exact ties
        vectors[rng.integers(0, n, size=n // 2)] = vectors[0]
    weights = rng.uniform(0, 3, size=k) * (rng.random(k) > 0.2)
    mask = rng.random(n) > draw(st.sampled_from([0.0, 0.5, 0.9]))
    return _random_dissimilarity(rng, k), [f"c{i}" for i in range(n)], vectors, query, weights, mask


def _weighted_brute_force(D, vectors, query, w) -> np.ndarray:
    """||M diag(w) (x - q)||_1 of every float32-rounded row x, in float64."""
    M = hsbd.projection(D) * w
    X = vectors.astype(np.float32).astype(np.float64)
    q = np.asarray(query, dtype=np.float32).astype(np.float64)
    return np.abs((X - q) @ M.T).sum(axis=1)


@settings(max_examples=150, deadline=None)
@given(weighted_databases(), st.integers(1, 30) | st.integers(1, 5))
def test_the_weighted_search_is_the_brute_force_top_k(db, k):
    D, ids, vectors, query, w, mask = db
    ref = _weighted_brute_force(D, vectors, query, w)
    base = HSBDIndex(D, ids, vectors, term_weights=w, block_size=7)
    derived = HSBDIndex(_random_dissimilarity(np.random.default_rng(0), len(query)), ids,
                        vectors).with_dissimilarity(D, w)
    for m in (None, mask):
        allowed = np.flatnonzero(np.ones(len(ids), bool) if m is None else m)
        expected = np.sort(ref[allowed])[:k]
        with _prune_from(1):
            pruned = base.search(query, k=k, mask=m)
        for result in (pruned, base.search(query, k=k, mask=m), derived.search(query, k=k, mask=m)):
            rows = [ids.index(i) for i in result.ids]
            assert set(rows) <= set(allowed.tolist()) and len(rows) == len(expected)
            assert_allclose(result.distances, expected, rtol=1e-5, atol=1e-6)
            assert_allclose(result.distances, ref[rows], rtol=1e-5, atol=1e-6)
        with _prune_from(len(ids) + 1):
            scanned = base.search(query, k=k, mask=m)
        assert pruned.ids == scanned.ids  # pruning changes nothing, bit for bit
        assert_array_equal(pruned.distances, scanned.distances)
        with _prune_from(1):
            derived_pruned = derived.search(query, k=k, mask=m)
        assert derived_pruned.ids == scanned.ids
        assert_array_equal(derived_pruned.distances, scanned.distances)


def test_rebuild_sets_and_clears_the_weights():
    rng = np.random.default_rng(3)
    D, vectors, w = _random_dissimilarity(rng, 4), rng.random((20, 4)), np.array([2.0, 0.0, 1.0, 0.5])
    ids = [str(i) for i in range(20)]
    index = HSBDIndex(D, ids, vectors)
    index.rebuild(D, w)
    got, fresh = index.search(vectors[3], k=20), HSBDIndex(D, ids, vectors, term_weights=w).search(vectors[3], k=20)
    assert got.ids == fresh.ids
    assert_array_equal(got.distances, fresh.distances)
    index.rebuild(D)
    assert index.term_weights is None
    with pytest.raises(InvalidInput, match="term_weights"):
        index.rebuild(D, [1.0, -1.0, 1.0, 1.0])
    with pytest.raises(InvalidInput, match="term_weights"):
        HSBDIndex(D, ids, vectors, term_weights=[1.0, 1.0])


def _engine(n: int = 30, k: int = 4, seed: int = 1) -> Engine:
    rng = np.random.default_rng(seed)
    cases = [Case(f"c{i}", f"p{i}", f"s{i}") for i in range(n)]
    return Engine([f"t{j}" for j in range(k)], cases, rng.random((n, k)), _random_dissimilarity(rng, k))


def test_uniform_weights_rank_and_explain_as_no_weights():
    engine = _engine()
    weighted = engine.with_dissimilarity(engine.dissimilarity, term_weights=np.ones(4))
    q = engine.vector("c0")
    assert weighted.search_vector(q, 10) == engine.search_vector(q, 10)


def test_explanations_are_the_shares_of_the_weighted_distance():
    engine = _engine()
    w = np.array([3.0, 0.2, 1.0, 0.0])
    weighted = engine.with_dissimilarity(engine.dissimilarity, term_weights=w)
    a, b = engine.vector("c0"), engine.vector("c1")
    shares = weighted.contributions(a, b)
    assert sum(c.value for c in shares) == pytest.approx(hsbd.distance(w * a, w * b, engine.dissimilarity))
    top = weighted.explain(a, b, top=2)
    assert [c.value for c in top] == sorted((c.value for c in shares if c.value > 0), reverse=True)[:2]
    for hit in weighted.search_vector(a, 30, explain=2):  # a search explains its hits the same way
        assert hit.explanation == weighted.explain(a, engine.vector(hit.case_id), top=2)


# ---------------------------------------------------------------------------------------------------- evaluation

VECTORS = [[.9, 0, .8, 0], [.9, .1, .8, 0], [0, .85, 0, 0], [.1, .9, .1, 0], [0, 0, .1, .9], [0, 0, 0, .8],
           [.8, .2, .7, .1], [.2, .1, .9, .3]]
DIAGNOSES = ["x", "x", "x", "y", "y", "y", "x", "y"]
PATIENTS = [f"p{i}" for i in range(8)]
CATS = ["a", "a", "b", "b"]


def test_with_lambda_zero_the_protocol_ranks_as_without_weights():
    config = ProtocolConfig(n_queries=3, rounds=2, max_k=5)
    plain = run_protocol(VECTORS, DIAGNOSES, PATIENTS, CATS, None, feedback="rocchio", seed=1, config=config)
    uniform = run_protocol(VECTORS, DIAGNOSES, PATIENTS, CATS, None, seed=1, config=config,
                           feedback=FeedbackParams(algorithm="rocchio+reweight", lam=0.0))
    assert_array_equal(plain["ndcg"], uniform["ndcg"])
    assert plain["marks"] == uniform["marks"]


def test_the_protocol_ranks_with_the_weights():
    config = ProtocolConfig(n_queries=1, rounds=1, max_k=5)
    run = run_protocol(VECTORS, DIAGNOSES, PATIENTS, CATS, None, feedback="reweight", queries=[0], config=config,
                       keep_trace=True)
    (marks,), = run["marks"]
    A = np.asarray(VECTORS)
    rows = [int(c) for c in marks["relevant"]], [int(c) for c in marks["irrelevant"]]
    w = discriminant_weights(A[0], A[rows[0]], A[rows[1]])
    assert_allclose(run["trace"][0]["weights_after"], w)
    pool = np.arange(1, 8)
    dist = np.abs((A[pool] - A[0]) * w).sum(axis=1)
    assert run["trace"][0]["rankings"][1] == [str(c) for c in pool[np.lexsort((pool, np.round(dist, 12)))]]
