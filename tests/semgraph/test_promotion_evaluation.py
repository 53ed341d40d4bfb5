"""Learning across sessions (semgraph.evaluation.promotion): patient split, the promotion rule on matrices, no
leakage of training queries into the held-out figures, determinism."""

import numpy as np
import pytest

from semgraph.errors import InvalidInput
from semgraph.evaluation.promotion import (
    Session,
    cross_session,
    promote_matrices,
    split_patients,
)


def _cohort(n=60, k=8, seed=0):
    rng = np.random.default_rng(seed)
    diag = [f"d{i % 3}" for i in range(n)]
    pat = [f"p{i // 2}" for i in range(n)]
    y = (rng.random((n, k)) < 0.25).astype(float)
    for i in range(n):
        y[i, 2 * (i % 3)] = 1.0
    vectors = np.clip(0.15 + 0.7 * y + rng.normal(0, 0.1, y.shape), 0, 1)
    cats = [f"c{j // 2}" for j in range(k)]
    D0 = np.ones((k, k)) - np.eye(k)
    return vectors, diag, pat, cats, D0


def _tiny():
    """2 terms of one category, 12 one-case patients. Diagnosis X shows as term 0 or as term 1 (kinds A, B); Y
    has neither. A query of kind A finds kind B cases relevant, so every session pulls the two terms together."""
    A, B, Y = [0.9, 0.1], [0.1, 0.9], [0.3, 0.3]
    vectors = np.array([A, A, A, B, B, B, Y, Y, Y, Y, Y, Y])
    diag = ["X"] * 6 + ["Y"] * 6
    pat = [f"p{i:02d}" for i in range(12)]
    D0 = np.array([[0.0, 1.0], [1.0, 0.0]])
    return vectors, diag, pat, ["shape", "shape"], D0


@pytest.mark.parametrize("seed", range(5))
def test_split_never_shares_a_patient(seed):
    pat = [f"p{i // 3}" for i in range(40)] + ["q"] * 5
    train, held = split_patients(pat, train_fraction=0.5, seed=seed)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(len(pat)))
    assert not {pat[i] for i in train} & {pat[i] for i in held}
    assert {pat[i] for i in train} and {pat[i] for i in held}


def test_split_rejects_a_single_patient():
    with pytest.raises(InvalidInput):
        split_patients(["p", "p"])


def test_promotion_rule_on_matrices():
    D0 = np.ones((3, 3)) - np.eye(3)
    closer = D0.copy()
    closer[0, 1] = closer[1, 0] = 0.8
    closer2 = D0.copy()
    closer2[0, 1] = closer2[1, 0] = 0.6
    farther = D0.copy()
    farther[1, 2] = farther[2, 1] = 0.9  # only two sessions: not a candidate
    sessions = [Session("r1", "c1", closer), Session("r2", "c1", closer2), Session("r1", "c2", closer),
                Session("r3", "c3", farther), Session("r3", "c4", farther)]
    D, pairs = promote_matrices(D0, sessions, min_sessions=3)
    assert D[0, 1] == D[1, 0] == pytest.approx((0.8 + 0.6 + 0.8) / 3)
    assert D[1, 2] == 1.0 and D[0, 2] == 1.0
    assert [(p["term_a"], p["term_b"], p["sign"], p["agree"], p["against"]) for p in pairs] == [("0", "1", -1, 3, 0)]
    # one reader's sessions on one query count once (the latest)
    same = [Session("r1", "c1", closer)] * 3
    assert promote_matrices(D0, same, min_sessions=3)[1] == []
    assert promote_matrices(D0, same, min_sessions=1)[0][0, 1] == pytest.approx(0.8)
    # a session that moved a pair back to D0 abstains
    back = D0.copy()
    assert promote_matrices(D0, sessions[:3] + [Session("z", "cz", back)], min_sessions=3)[1][0]["against"] == 0


def test_promotion_rule_majority():
    D0 = np.full((2, 2), 0.5) - 0.5 * np.eye(2)
    lo, hi = D0.copy(), D0.copy()
    lo[0, 1] = lo[1, 0] = 0.3
    hi[0, 1] = hi[1, 0] = 0.7
    sessions = [Session(f"r{i}", f"c{i}", lo) for i in range(3)] + [Session(f"s{i}", f"d{i}", hi) for i in range(4)]
    D, pairs = promote_matrices(D0, sessions, min_sessions=3)
    assert pairs[0]["sign"] == 1 and pairs[0]["agree"] == 4 and pairs[0]["against"] == 3
    assert D[0, 1] == pytest.approx(0.7)
    sessions = sessions[:6]  # 3 against 3: candidate both ways, nothing promoted
    assert promote_matrices(D0, sessions, min_sessions=3)[1] == []
    assert promote_matrices(D0, sessions, min_sessions=3, majority=False)[1] == []


def test_sessions_that_pull_two_terms_together_bring_them_closer():
    vectors, diag, pat, cats, D0 = _tiny()
    train = ["p00", "p01", "p03", "p04", "p06", "p07", "p08"]  # kinds A and B and some Y in training
    r = cross_session(vectors, diag, pat, cats, D0, readers=3, sessions_per_reader=2, rounds=2, k=5,
                      feedback="penalty", train_patients=train, seed=0)
    D = np.array(r["dissimilarity"])
    assert D[0, 1] < D0[0, 1] and D[0, 1] == D[1, 0]
    assert r["promoted"] and r["promoted"][0]["sign"] == -1
    assert set(r["training_queries"]) <= {str(i) for i, p in enumerate(pat) if p in train}
    assert set(r["heldout_queries"]) == {"2", "5", "9", "10", "11"}


@pytest.mark.parametrize("feedback", ["penalty", "regularised+rocchio"])
def test_heldout_queries_are_never_training_queries(feedback):
    vectors, diag, pat, cats, D0 = _cohort()
    for seed in range(3):
        r = cross_session(vectors, diag, pat, cats, D0, feedback=feedback, readers=2, sessions_per_reader=20,
                          seed=seed, case_ids=[f"case{i}" for i in range(len(pat))])
        held, trained = set(r["heldout_queries"]), set(r["training_queries"])
        assert held and trained and not held & trained
        patient_of = {f"case{i}": p for i, p in enumerate(pat)}
        assert {patient_of[c] for c in held} <= set(r["heldout_patients"])
        assert {patient_of[c] for c in trained} <= set(r["train_patients"])
        assert not set(r["train_patients"]) & set(r["heldout_patients"])
        assert len(r["before"]) == len(r["after"]) == len(held) == r["summary"]["difference"]["difference"]["n"]


def test_deterministic_with_a_seed():
    vectors, diag, pat, cats, D0 = _cohort(seed=3)
    a = cross_session(vectors, diag, pat, cats, D0, seed=7)
    b = cross_session(vectors, diag, pat, cats, D0, seed=7)
    assert a == b
    c = cross_session(vectors, diag, pat, cats, D0, seed=8)
    assert (c["train_patients"], c["training_queries"]) != (a["train_patients"], a["training_queries"])


def test_nothing_to_promote_without_dissimilarity_learning():
    vectors, diag, pat, cats, D0 = _cohort()
    with pytest.raises(InvalidInput):
        cross_session(vectors, diag, pat, cats, D0, feedback="rocchio")
