"""Grouping a ranked list by key or by clustering; groups ordered by best rank."""

from __future__ import annotations

import numpy as np
import pytest

from semgraph.errors import InvalidInput
from semgraph.graph.casegraph import Case
from semgraph.retrieval.grouping import group, group_by_cluster, group_by_key

IDS = ["a", "b", "c", "d", "e"]
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5]


def test_group_by_key_by_hand():
    keys = {"a": "cyst", "b": "hemangioma", "c": "cyst", "d": "metastasis", "e": "hemangioma"}
    groups = group_by_key(IDS, keys, SCORES)
    assert [(g.key, g.size, g.best_rank, g.best_score) for g in groups] == [
        ("cyst", 2, 1, 0.9), ("hemangioma", 2, 2, 0.8), ("metastasis", 1, 4, 0.6)]
    assert [m.case_id for m in groups[1].members] == ["b", "e"]
    assert group_by_key(["x"], {}, [1.0])[0].key == "unknown"


def test_group_by_patient_and_diagnosis_from_cases():
    cases = {i: Case(i, f"P{n % 2}", f"S{n}", diagnosis="cyst" if n < 2 else "abscess") for n, i in enumerate(IDS)}
    by_patient = group(IDS, "patient", scores=SCORES, cases=cases)
    assert [(g.key, [m.case_id for m in g.members]) for g in by_patient] == [("P0", ["a", "c", "e"]),
                                                                              ("P1", ["b", "d"])]
    assert [g.key for g in group(IDS, "diagnosis", cases=cases)] == ["cyst", "abscess"]
    with pytest.raises(ValueError, match="diagnosis"):
        group(IDS, "colour", cases=cases)
    with pytest.raises(InvalidInput):
        group(IDS, "patient")


def test_group_by_cluster_separates_two_obvious_clusters():
    Y = np.array([[0, 0], [10, 10], [0.1, 0], [10, 10.2], [0, 0.2]])
    groups = group_by_cluster(IDS, Y, SCORES, n_clusters=2)
    assert [(g.key, [m.case_id for m in g.members]) for g in groups] == [
        ("cluster 1", ["a", "c", "e"]), ("cluster 2", ["b", "d"])]
    top3 = group_by_cluster(IDS, Y, SCORES, top=3, n_clusters=2)
    assert sum(g.size for g in top3) == 3


def test_grouping_rejects_bad_input():
    with pytest.raises(InvalidInput):
        group_by_key(["a", "a"], {}, [1, 2])
    with pytest.raises(InvalidInput):
        group_by_key(["a"], {}, [1, 2])
    with pytest.raises(InvalidInput):
        group_by_cluster(IDS, np.zeros((4, 2)))
    with pytest.raises(InvalidInput):
        group_by_cluster(IDS, np.zeros((5, 2)), top=0)
