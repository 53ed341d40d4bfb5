"""Term dissimilarities: δΓ from signatures, the combination, and the baseline in the graph (both backends)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ontology
from kg.namespaces import BASELINE_GRAPH
from semgraph.errors import InvalidInput, NotFound
from semgraph.retrieval.similarity import (
    combine,
    image_dissimilarity,
    read_baseline,
    read_baseline_info,
    term_dissimilarity,
    write_baseline,
)

T = [f"http://radlex.org/RID/RID{n}" for n in (5715, 5711, 5707)]


def test_image_dissimilarity_hand_computed():
    # unit rows (1,0), (0,1), (-1,0): distances sqrt2, 2, sqrt2; max 2
    D = image_dissimilarity([[2, 0], [0, 5], [-1, 0]])
    s = math.sqrt(2) / 2
    np.testing.assert_allclose(D, [[0, s, 1], [s, 0, s], [1, s, 0]], atol=1e-12)


def test_image_dissimilarity_ignores_norm_and_handles_identical_directions():
    np.testing.assert_allclose(image_dissimilarity([[1, 1], [3, 3]]), [[0, 0], [0, 0]])
    assert image_dissimilarity([[4.0, 1.0]]).tolist() == [[0.0]]


@pytest.mark.parametrize("bad", [[[0, 0], [1, 0]], [[np.nan, 1], [1, 0]], [1, 2, 3], [[]]])
def test_image_dissimilarity_rejects_bad_signatures(bad):
    with pytest.raises(InvalidInput):
        image_dissimilarity(bad)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 8), st.integers(1, 6)), elements=st.floats(-5, 5)))
def test_image_dissimilarity_properties(w):
    if np.any(np.linalg.norm(w, axis=1) < 1e-6):
        return
    D = image_dissimilarity(w)
    assert np.allclose(D, D.T) and np.all(np.diag(D) == 0)
    assert D.min() >= 0 and D.max() <= 1 + 1e-12
    off = D[~np.eye(len(D), dtype=bool)]
    assert off.max() == pytest.approx(1.0) or off.max() == 0.0


def test_combine_weights():
    g = [[0, 1], [1, 0]]
    t = [[0, 0.5], [0.5, 0]]
    assert combine(g, t, 1).tolist() == g
    assert combine(g, t, 0).tolist() == t
    assert combine(g, t).tolist() == [[0, 0.75], [0.75, 0]]
    assert combine(g, t, 0.25).tolist() == [[0, 0.625], [0.625, 0]]


@pytest.mark.parametrize("g, t, w, match", [
    ([[0, 1], [1, 0]], [[0, 1, 1], [1, 0, 1], [1, 1, 0]], 0.5, "same shape"),
    ([[0, 1], [0.5, 0]], [[0, 1], [1, 0]], 0.5, "symmetric"),
    ([[0.1, 1], [1, 0]], [[0, 1], [1, 0]], 0.5, "zero diagonal"),
    ([[0, 1.5], [1.5, 0]], [[0, 1], [1, 0]], 0.5, r"\[0, 1\]"),
    ([[0, 1], [1, 0]], [[0, 1], [1, 0]], 1.5, "weight"),
])
def test_combine_rejects(g, t, w, match):
    with pytest.raises(InvalidInput, match=match):
        combine(g, t, w)


def test_term_dissimilarity_modes(store):
    ontology.load(store, "radlex-liver")
    theta = term_dissimilarity(store, T, mode="ontology")
    np.testing.assert_allclose(theta, ontology.dissimilarity_matrix(store, T))
    # irregular (5715) and lobulated (5711) are siblings: closer than either to circumscribed (5707)
    assert theta[0, 1] < theta[0, 2]
    sig = [[1, 0], [0, 1], [-1, 0]]
    gamma = term_dissimilarity(store, T, signatures=sig, mode="image")
    np.testing.assert_allclose(gamma, image_dissimilarity(sig))
    both = term_dissimilarity(store, T, signatures=sig, weight=0.25)
    np.testing.assert_allclose(both, 0.25 * gamma + 0.75 * theta)
    with pytest.raises(InvalidInput, match="signatures"):
        term_dissimilarity(store, T)
    with pytest.raises(InvalidInput, match="rows"):
        term_dissimilarity(store, T, signatures=[[1, 0], [0, 1]], mode="image")
    with pytest.raises(ValueError, match="mode"):
        term_dissimilarity(store, T, mode="text")


def test_baseline_round_trip_and_replace(store):
    D = np.array([[0, 0.2, 0.7], [0.2, 0, 0.4], [0.7, 0.4, 0]])
    n = write_baseline(store, T, D, kind="combined", provenance={"measure": "kurtz", "model_version": "v1",
                                                                "weight": 0.5, "ontology": "radlex-liver"})
    assert n == store.count(str(BASELINE_GRAPH))
    np.testing.assert_allclose(read_baseline(store, T), D)
    # another order of the same terms gives the permuted matrix
    np.testing.assert_allclose(read_baseline(store, T[::-1]), D[::-1, ::-1])
    rows = store.select("SELECT ?a ?b ?d ?m ?who WHERE { GRAPH $g { ?s a sg:TermSimilarity ; sg:termA ?a ; "
                        "sg:termB ?b ; sg:dissimilarity ?d ; sg:measure ?m ; sg:kind 'combined' ; "
                        "prov:wasAttributedTo ?who ; prov:generatedAtTime ?t } }", {"g": BASELINE_GRAPH})
    assert len(rows) == 3
    assert all(str(r["a"]) < str(r["b"]) and str(r["m"]) == "kurtz" for r in rows)
    assert {str(r["who"]) for r in rows} == {"https://w3id.org/semgraph/id/model/v1"}
    info = read_baseline_info(store)
    assert info["kind"] == "combined" and info["parameters"]["weight"] == 0.5 and info["parameters"]["terms"] == T
    # a new baseline replaces the old one entirely
    write_baseline(store, T[:2], [[0, 0.9], [0.9, 0]], kind="ontology")
    assert read_baseline(store, T[:2]).tolist() == [[0, 0.9], [0.9, 0]]
    assert len(store.select("SELECT ?s WHERE { GRAPH $g { ?s a sg:TermSimilarity } }", {"g": BASELINE_GRAPH})) == 1
    with pytest.raises(NotFound, match="RID5707"):
        read_baseline(store, T)


def test_read_baseline_without_one(store):
    with pytest.raises(NotFound, match="write_baseline"):
        read_baseline(store, T)
    with pytest.raises(NotFound):
        read_baseline_info(store)


@pytest.mark.parametrize("terms, D, kind, prov", [
    (T, [[0, 1], [1, 0]], "combined", {}),                              # shape mismatch
    ([T[0], T[0]], [[0, 1], [1, 0]], "combined", {}),                   # duplicate term
    (T[:2], [[0, 1], [0.5, 0]], "combined", {}),                         # asymmetric
    (T[:2], [[0, 1], [1, 0]], "", {}),                                   # empty kind
    (T[:2], [[0, 1], [1, 0]], "image", {"x": object()}),                 # not JSON
    (T[:2], [[0, 1], [1, 0]], "image", {"measure": 3}),                  # bad measure
])
def test_write_baseline_rejects_and_writes_nothing(store, terms, D, kind, prov):
    with pytest.raises(InvalidInput):
        write_baseline(store, terms, D, kind=kind, provenance=prov)
    assert store.count() == 0
