"""The round guard (docs/algorithms.md §5.6): the evidence measure by hand, a harmful step reduced, a harmful step
refused, the property that a guarded round never ranks the marked cases worse, and the guard in a session."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import write_synthetic_cases

import ontology
from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput
from semgraph.feedback import algorithms as fb
from semgraph.feedback.algorithms import (
    GUARD_HALVINGS,
    GUARD_OUTCOMES,
    Algorithm,
    FeedbackParams,
    Step,
    apply_feedback,
    guard_round,
    marked_evidence,
    penalty_votes,
    register_algorithm,
)
from semgraph.feedback.replay import load_session
from semgraph.feedback.sessions import start_session
from semgraph.graph.casegraph import Annotation, Case, write_case
from semgraph.retrieval import hsbd
from semgraph.retrieval.engine import Engine

# ---------------------------------------------------------------------------------------------------------------
# the evidence measure, by hand
# ---------------------------------------------------------------------------------------------------------------

# Three terms; 0 and 1 merge at 0.2, then all at 0.8 (Z = 0.8). Gap node weights (§1.3): leaves 0 and 1 get 1/4,
# leaf 2 gets 1, node {0, 1} gets 3/4, so
#     HSBD(a, b) = ¼|a0 − b0| + ¼|a1 − b1| + |a2 − b2| + ¾|(a0 + a1) − (b0 + b1)|.
D01 = [[0, .2, .8], [.2, 0, .8], [.8, .8, 0]]
# the same with 0 and 2 close: leaves 0 and 2 get 1/4, leaf 1 gets 1, node {0, 2} gets 3/4
D02 = [[0, .8, .2], [.8, 0, .8], [.2, .8, 0]]
Q = [1, 0, 0]
R1, R2 = [0, 1, 0], [0, 0, 1]        # D01: HSBD to Q 0.5 and 2.0;  D02: 2.0 and 0.5
I1, I2 = [0, .5, 0], [1, 0, .5]      # D01: 0.75 and 0.5;           D02: 1.5 and 0.5


def test_evidence_by_hand_three_terms():
    # D01: (R1, I1) .5 < .75 right; (R1, I2) .5 = .5 a tie, 1/2; (R2, I1) 2 > .75 and (R2, I2) 2 > .5 wrong
    assert marked_evidence(D01, Q, [R1, R2], [I1, I2]) == pytest.approx(1.5 / 4)
    assert marked_evidence(D01, Q, [R1], [I1]) == 1.0
    assert marked_evidence(D01, Q, [R2], [I1]) == 0.0
    assert marked_evidence(D01, Q, [R1], [I2]) == 0.5
    # D02: (R1, I1) 2 > 1.5 and (R1, I2) 2 > .5 wrong; (R2, I1) .5 < 1.5 right; (R2, I2) .5 = .5 a tie
    assert marked_evidence(D02, Q, [R1, R2], [I1, I2]) == pytest.approx(1.5 / 4)
    assert marked_evidence(D02, Q, [R2], [I1]) == 1.0
    assert marked_evidence(D02, Q, [R1], [I1]) == 0.0
    # the reference (level by level) HSBD agrees with the hand values
    assert hsbd.reference_distance(Q, I1, np.array(D01)) == pytest.approx(0.75)
    assert hsbd.reference_distance(Q, I1, np.array(D02)) == pytest.approx(1.5)


def test_evidence_by_hand_two_terms_is_plain_l1():
    # two terms: one merge, gap weights (1, 0): HSBD is the L1 distance. |1−.8| + |0−.1| = .3 < |1−.5| + |0−.5| = 1
    assert marked_evidence([[0, .5], [.5, 0]], [1, 0], [[.8, .1]], [[.5, .5]]) == 1.0
    assert marked_evidence([[0, .5], [.5, 0]], [0, 1], [[.8, .1]], [[.5, .5]]) == 0.0


def test_evidence_without_a_pair_is_none_and_bad_input_is_refused():
    assert marked_evidence(D01, Q, [R1], []) is None
    assert marked_evidence(D01, Q, [], [I1]) is None
    with pytest.raises(InvalidInput):
        marked_evidence(D01, Q, [[0, 1]], [I1])
    with pytest.raises(InvalidInput):
        guard_round(D01, Q, D01, Q, [R1], [I1], halvings=-1)


# ---------------------------------------------------------------------------------------------------------------
# reduce, refuse, apply
# ---------------------------------------------------------------------------------------------------------------


def test_a_harmful_step_of_d_is_halved():
    # D: 0-1 merge at .4, then 2 at .6: HSBD(e0, e1) = 2·.4/.6 < HSBD(e0, e2) = 2: relevant e1 first, E = 1.
    D = np.array([[0, .4, .6], [.4, 0, .6], [.6, .6, 0]])
    new = D.copy()
    new[0, 1] = new[1, 0] = .7  # full step: 0-2 merge first (at .6), e2 is closer than e1: E = 0
    assert marked_evidence(new, Q, [R1], [R2]) == 0.0
    g = guard_round(D, Q, new, Q, [R1], [R2])
    # half step (.55): 0-1 still merge first, E = 1
    assert (g.guard, g.step, g.before, g.after) == ("reduced", 0.5, 1.0, 1.0)
    assert g.dissimilarity[0, 1] == g.dissimilarity[1, 0] == pytest.approx(0.55)
    assert g.dissimilarity[0, 2] == 0.6 and np.array_equal(g.query, Q)


def test_a_harmful_query_move_is_shrunk_to_a_quarter():
    # two terms (plain L1); relevant r = (.9, .1), irrelevant i = (.2, .8); the query moves from (1, 0) to (0, 1).
    # t = 1: q = (0, 1): |r − q| = 1.8 > |i − q| = .4;  t = 1/2: q = (.5, .5): .8 > .6;  t = 1/4: q = (.75, .25):
    # .3 < 1.1. E = 1 before, so the step is 1/4.
    D = [[0, .5], [.5, 0]]
    g = guard_round(D, [1, 0], D, [0, 1], [[.9, .1]], [[.2, .8]])
    assert (g.guard, g.step, g.before, g.after) == ("reduced", 0.25, 1.0, 1.0)
    assert g.query == pytest.approx([.75, .25])


def test_a_step_that_hurts_at_every_size_is_refused():
    # all pairs .6: every merge at .6, gap weights (1, 0, 0): plain L1, HSBD(e0, e1) = HSBD(e0, e2) = 2: E = 1/2.
    D = np.full((3, 3), .6)
    np.fill_diagonal(D, 0)
    new = D.copy()
    new[0, 1] = new[1, 0] = .9  # any t > 0 makes 0-1 farther than 0-2: e2 (irrelevant) closer, E = 0
    g = guard_round(D, Q, new, [.5, 0, .5], [R1], [R2])  # the query also moves towards the irrelevant e2
    assert (g.guard, g.step, g.before, g.after) == ("refused", 0.0, 0.5, 0.5)
    assert np.array_equal(g.dissimilarity, D) and np.array_equal(g.query, Q)
    # with no halving allowed, the half step that would do is not tried: the 3-term reduce case is refused
    D = np.array([[0, .4, .6], [.4, 0, .6], [.6, .6, 0]])
    new = D.copy()
    new[0, 1] = new[1, 0] = .7
    assert guard_round(D, Q, new, Q, [R1], [R2], halvings=0).guard == "refused"


def test_a_helpful_or_neutral_step_and_a_round_without_a_pair_are_applied():
    D = np.array([[0, .4, .6], [.4, 0, .6], [.6, .6, 0]])
    new = D.copy()
    new[0, 1] = new[1, 0] = .2  # e1 even closer
    g = guard_round(D, Q, new, Q, [R1], [R2])
    assert (g.guard, g.step) == ("applied", 1.0) and np.array_equal(g.dissimilarity, new)
    g = guard_round(D, Q, D, Q, [R1], [R2])  # no step at all
    assert (g.guard, g.step, g.before, g.after) == ("applied", 1.0, 1.0, 1.0)
    worse = D.copy()
    worse[0, 1] = worse[1, 0] = .7
    g = guard_round(D, Q, worse, Q, [R1], [])  # nothing to judge by
    assert (g.guard, g.step, g.before, g.after) == ("applied", 1.0, None, None)


# ---------------------------------------------------------------------------------------------------------------
# property: a guarded round never ranks the marked cases worse
# ---------------------------------------------------------------------------------------------------------------


@st.composite
def guarded_rounds(draw):
    k = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    grid = draw(st.booleans())  # values on a coarse grid make ties (and tie-breaking) frequent

    def values(shape):
        x = rng.random(shape)
        return np.round(x * 4) / 4 if grid else x

    D = values((k, k))
    D = np.clip((D + D.T) / 2, 0.05, 1.0)
    np.fill_diagonal(D, 0)
    cats = [f"c{c}" for c in rng.integers(0, max(1, k // 2), size=k)]
    q0 = values(k)
    rel = values((draw(st.integers(1, 3)), k))
    irr = values((draw(st.integers(0, 3)), k))
    hist_rel = values((draw(st.integers(0, 2)), k))
    hist_irr = values((draw(st.integers(0, 2)), k))
    algorithm = draw(st.sampled_from(["penalty", "regularised", "rocchio", "regularised+rocchio", "random"]))
    rho = draw(st.sampled_from([0.1, 0.3, 0.6]))
    return D, cats, q0, rel, irr, hist_rel, hist_irr, algorithm, rho, rng


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(guarded_rounds())
def test_a_guarded_round_never_ranks_the_marked_cases_worse(case):
    D, cats, q0, rel, irr, hist_rel, hist_irr, algorithm, rho, rng = case
    k = D.shape[0]
    q = q0.copy() if algorithm in ("penalty", "regularised") else rng.random(k)  # a query moved by earlier rounds
    if algorithm == "random":  # any valid candidate state, not only those the algorithms make
        new_D = np.clip(D + rng.normal(0, .3, (k, k)), 1e-3, 1)
        new_D = (new_D + new_D.T) / 2
        np.fill_diagonal(new_D, 0)
        new_q = rng.random(k)
    else:
        result = apply_feedback(D, D, q0, rel, irr, cats, round_number=1, history_relevant=hist_rel,
                                history_irrelevant=hist_irr, params=FeedbackParams(algorithm=algorithm, rho=rho))
        new_D, new_q = result.dissimilarity, result.query
    evidence_rel, evidence_irr = np.vstack([hist_rel, rel]), np.vstack([hist_irr, irr])
    g = guard_round(D, q, new_D, new_q, evidence_rel, evidence_irr)
    before = marked_evidence(D, q, evidence_rel, evidence_irr)
    after = marked_evidence(g.dissimilarity, g.query, evidence_rel, evidence_irr)
    assert g.guard in GUARD_OUTCOMES
    assert g.step in {0.0} | {0.5 ** n for n in range(GUARD_HALVINGS + 1)}
    if before is None:
        assert (g.guard, g.step) == ("applied", 1.0)
    else:
        assert after >= before - 1e-12
        assert g.before == pytest.approx(before) and g.after == pytest.approx(after)
    # the guarded state is valid, and it is the old one, the new one, or on the segment between them
    out = g.dissimilarity
    assert np.array_equal(out, out.T) and np.all(np.diag(out) == 0)
    off = out[~np.eye(k, dtype=bool)]
    assert np.all(off >= 1e-3 - 1e-15) and np.all(off <= 1) and np.all((g.query >= 0) & (g.query <= 1))
    if g.guard == "applied":
        assert np.array_equal(out, new_D) and np.array_equal(g.query, new_q)
    elif g.guard == "refused":
        old = np.clip(D, 1e-3, 1)
        np.fill_diagonal(old, 0)
        assert np.array_equal(out, old)
        assert np.array_equal(g.query, q)
    else:
        assert g.step < 1 and np.allclose(g.query, q + g.step * (new_q - q))


# ---------------------------------------------------------------------------------------------------------------
# the guard in a session
# ---------------------------------------------------------------------------------------------------------------

TERMS = [t.iri for t in paper_terms()]
R = "http://radlex.org/RID/"
HYPO, WATER, SOFT = R + "RID6042", R + "RID43336", R + "RID43337"


@pytest.fixture
def engine(store):
    """The bundled RadLex subset, synthetic cases and 4 hand-made ones (Q: hypodense 0.9; REL: water density 0.85;
    IRR: soft tissue density 0.9; OTHER: hypodense 0.2), as in test_sessions.py."""
    ontology.load(store, "radlex-liver")
    write_synthetic_cases(store, 30, 5, lambda i: {"study_date": dt.date(2021, 1, 1) + dt.timedelta(days=9 * i),
                                                   "age": 40 + i, "sex": "FM"[i % 2]})
    hand = {"Q": {HYPO: 0.9}, "REL": {WATER: 0.85}, "IRR": {SOFT: 0.9}, "OTHER": {HYPO: 0.2}}
    for j, (cid, vals) in enumerate(hand.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis="cyst"), [Annotation("reader", vals)])
    return Engine.from_store(store)


@pytest.fixture
def contrary():
    """A registered algorithm that does the opposite of the paper's penalty step, all the way (for the guard to
    catch)."""
    def step(r):
        S = penalty_votes(r.query, r.relevant, r.irrelevant, r.categories, tau=r.params.tau, eps=r.params.eps)
        out = np.where(S < 0, 1.0, np.where(S > 0, r.params.d_min, r.dissimilarity))  # to the far ends
        np.fill_diagonal(out, 0.0)
        return Step(dissimilarity=out)

    register_algorithm(Algorithm("contrary", "test only", step, changes_dissimilarity=True, moves_query=False,
                                 parameters=("rho", "tau", "eps", "d_min")))
    yield "contrary"
    fb._ALGORITHMS.pop("contrary", None)


def _evidence(session):
    marks = session.evidence_marks()
    vec = {c: session.engine.vectors[session.engine._row[c]] for c in marks}
    return marked_evidence(session.dissimilarity, session.query, [vec[c] for c, v in marks.items() if v == "relevant"],
                           [vec[c] for c, v in marks.items() if v == "irrelevant"])


def test_a_session_round_records_the_guard_and_a_harmful_one_is_reduced(store, engine, contrary):
    session = start_session(store, engine, "Q", "alice")
    first = session.feedback({"REL": "relevant", "IRR": "irrelevant"})  # the paper's step: REL closer, IRR farther
    assert (first.guard, first.step) == ("applied", 1.0) and first.changes
    assert first.evidence_after >= first.evidence_before
    assert first.as_dict()["guard"] == "applied" and first.as_dict()["step"] == 1.0
    evidence, q = _evidence(session), session.query.copy()
    assert evidence == 1.0
    unguarded = session.compute_round({"REL": "relevant", "IRR": "irrelevant"}, FeedbackParams(algorithm=contrary),
                                      guard=False)
    assert unguarded.guard is None and unguarded.changes  # water ↔ hypodense farther, soft tissue closer
    second = session.feedback({"REL": "relevant", "IRR": "irrelevant"}, FeedbackParams(algorithm=contrary))
    # the full step (and the half one) would rank IRR before REL; a quarter of it does not
    assert (second.guard, second.step, second.evidence_before, second.evidence_after) == ("reduced", .25, 1.0, 1.0)
    assert _evidence(session) == evidence
    full = {(c.term_a, c.term_b): c.after - c.before for c in unguarded.changes}
    assert {(c.term_a, c.term_b): c.after - c.before for c in second.changes} == pytest.approx(
        {pair: delta / 4 for pair, delta in full.items()})
    assert np.array_equal(session.query, q) and second.marks == {"REL": "relevant", "IRR": "irrelevant"}
    # replayed from the graph: the same state (the guarded D is what was written) and the guard's outcome
    again = load_session(store, session.session_id, engine)
    assert np.allclose(again.dissimilarity, session.dissimilarity)
    assert [(r.guard, r.step) for r in again.rounds] == [("applied", 1.0), ("reduced", 0.25)]
    assert [r.marks for r in again.rounds] == [r.marks for r in session.rounds]
    stored = store.select("SELECT ?g ?s WHERE { $r sg:guard ?g ; sg:guardStep ?s }", {"r": second.iri})
    assert [(str(row["g"]), float(row["s"])) for row in stored] == [("reduced", 0.25)]


def test_the_evidence_marks_keep_the_last_mark_of_each_case(store, engine):
    session = start_session(store, engine, "Q", "alice")
    session.feedback({"REL": "relevant", "IRR": "irrelevant", "OTHER": "relevant"}, guard=False)
    assert session.evidence_marks({"REL": "irrelevant", "OTHER": "neutral"}) == {"REL": "irrelevant",
                                                                                   "IRR": "irrelevant"}
    assert session.evidence_marks() == {"REL": "relevant", "IRR": "irrelevant", "OTHER": "relevant"}
