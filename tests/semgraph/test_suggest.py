"""Diagnosis suggestion: the vote by hand, LOPO evaluation on a tiny hand-made cohort."""

from __future__ import annotations

import numpy as np
import pytest

from semgraph.errors import InvalidInput
from semgraph.retrieval import hsbd
from semgraph.retrieval.suggest import (
    DISCLAIMER,
    evaluate_suggestion,
    suggest,
    suggest_for_vector,
)


def test_vote_by_hand():
    s = suggest(["a", "b", "c", "d"], [0.9, 0.6, 0.5, 0.4],
                {"a": "cyst", "b": "hemangioma", "c": "hemangioma", "d": "cyst"}, k=3)
    # cyst 0.9, hemangioma 1.1 of 2.0
    assert s.diagnosis == "hemangioma" and s.confidence == pytest.approx(0.55)
    assert s.votes == pytest.approx({"hemangioma": 0.55, "cyst": 0.45}) and s.evidence == ("b", "c")
    assert "Decision support" in s.disclaimer == DISCLAIMER


def test_tie_goes_to_the_best_ranked_and_zero_similarities_vote_equally():
    s = suggest(["a", "b"], [0.5, 0.5], {"a": "cyst", "b": "abscess"})
    assert s.diagnosis == "cyst" and s.confidence == pytest.approx(0.5)
    s = suggest(["a", "b", "c"], [0, 0, 0], {"a": "cyst", "b": "abscess", "c": "abscess"})
    assert s.diagnosis == "abscess" and s.confidence == pytest.approx(2 / 3)
    assert suggest(["a"], [1.0], {}).diagnosis is None


def test_suggest_rejects_bad_input():
    for args in ((["a"], [1.0, 2.0], {}), (["a"], [-1.0], {}), (["a"], [float("nan")], {})):
        with pytest.raises(InvalidInput):
            suggest(*args)
    with pytest.raises(InvalidInput):
        suggest(["a"], [1.0], {}, k=0)


def tiny():
    """Two well-separated diagnoses over 2 terms; patients P0..P5, two cases each."""
    ids = [f"c{i}" for i in range(12)]
    vectors = np.array([[1, 0]] * 6 + [[0, 1]] * 6, dtype=float) + 0.01 * np.arange(12)[:, None]
    diagnoses = {i: ("cyst" if n < 6 else "metastasis") for n, i in enumerate(ids)}
    patients = {i: f"P{n // 2}" for n, i in enumerate(ids)}
    return ids, vectors, diagnoses, patients, hsbd.projection([[0, 1], [1, 0]])


def test_suggest_for_vector_excludes_cases():
    ids, A, dx, _, M = tiny()
    s = suggest_for_vector(A[0], A, ids, dx, M, k=3, exclude=["c0", "c1"])
    assert s.diagnosis == "cyst" and set(s.evidence) <= {"c2", "c3", "c4", "c5"} and "c0" not in s.evidence


def test_lopo_evaluation_by_hand():
    ids, A, dx, pt, M = tiny()
    r = evaluate_suggestion(ids, A, dx, pt, M, k=3)
    assert r["n"] == 12 and r["accuracy"] == 1.0 and r["macro_f1"] == 1.0
    # majority among the other patients' cases is always the *other* diagnosis (6 vs 4): baseline accuracy 0
    assert r["baseline_accuracy"] == 0.0 and r["baseline_macro_f1"] == 0.0
    assert r["per_class"] == {"cyst": {"n": 6, "recall": 1.0}, "metastasis": {"n": 6, "recall": 1.0}}


def test_lopo_needs_diagnosis_and_patient():
    ids, A, dx, pt, M = tiny()
    del pt["c3"]
    with pytest.raises(InvalidInput, match="c3"):
        evaluate_suggestion(ids, A, dx, pt, M)
