"""The evidence for promoting learned term relations (semgraph.evaluation.evidence) and the promoted matrix it shares
with `promote` (semgraph.feedback.promotion.promoted_matrix), on a hand-made three-term collection."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from rdflib import Literal
from rdflib.namespace import RDF

from kg.namespaces import feedback_graph
from semgraph.errors import NotFound
from semgraph.evaluation.evidence import promotion_evidence
from semgraph.evaluation.intervals import bootstrap_mean
from semgraph.exchange.export import report
from semgraph.feedback.promotion import promoted_matrix
from semgraph.graph import rounds
from semgraph.graph.casegraph import Annotation, Case, user_iri, write_case
from semgraph.graph.collection import Collection, define
from semgraph.retrieval.similarity import write_baseline

T = ("urn:t:0", "urn:t:1", "urn:t:2")
TINY = Collection("tiny_set", T, ("t0", "t1", "t2"), ("c", "c", "c"))
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# D0 merges t0 and t2 first (0.2), then t1 at 0.8; the candidate makes t0 and t1 close (0.1), so D1 merges t0 and t1
# first, then t2 at (0.2 + 0.8) / 2 = 0.5.
D0 = np.array([[0.0, 0.8, 0.2], [0.8, 0.0, 0.8], [0.2, 0.8, 0.0]])
# Each case its own patient: (patient, diagnosis, likelihoods of t0, t1, t2).
CASES = {"Q": ("P1", "x", (1.0, 0.0, 0.0)), "A": ("P2", "x", (0.0, 0.8, 0.2)),
         "B": ("P3", "y", (0.0, 0.0, 1.0)), "E": ("P4", "y", (0.6, 0.0, 0.4))}
C = 1 / math.log2(3)  # NDCG@3 (J&K) of a ranking whose one relevant case is third: DCG 1/log2(3), IDCG 1


def fill(store, cases=CASES) -> Collection:
    collection = define(store, TINY)
    write_baseline(store, T, D0, kind="combined", graph=collection.baseline_graph)
    for case_id, (patient, diagnosis, values) in cases.items():
        write_case(store, Case(case_id, patient, "S" + case_id, diagnosis=diagnosis),
                   [Annotation("reader", dict(zip(T, values)))], collection=collection.case_filter)
    return collection


def learned(store, session_id: str, value: float, *, previous: float = 0.8, user: str = "u1",
            query: str = "elsewhere", marked: tuple[str, ...] = ()) -> None:
    """A recorded one-round session on ``query`` (marks ``marked`` relevant) that set t0 / t1 from ``previous`` to
    ``value``."""
    s, r, u = rounds.session_iri(session_id), rounds.round_iri(session_id + "-1"), user_iri(user)
    triples = rounds.session_triples(s, session_id=session_id, user=u, user_name=user, started=T0,
                                     query_vector=Literal("[]", datatype=RDF.JSON), query_case=query,
                                     collection=TINY.iri)
    triples += rounds.round_triples(r, session=s, number=1, user=u, started=T0, ended=T0, algorithm="penalty",
                                    parameters="{}", marks=[(m, "relevant") for m in marked])
    triples += rounds.pair_triples(rounds.pair_iri(r, T[0], T[1]), round_=r, term_a=T[0], term_b=T[1], value=value,
                                   previous=previous, user=u, generated_at=T0)
    rounds.insert_round(store, r, feedback_graph(session_id + "-1"), triples, pending=False)


def test_promoted_matrix_sets_each_changed_pair_symmetrically_and_skips_unchanged_ones():
    D1, changes = promoted_matrix(D0, T, {(T[0], T[1]): 0.1, (T[0], T[2]): 0.2})
    assert changes == [(T[0], T[1], 0.8, 0.1)]  # t0 / t2 already is 0.2
    assert D1.tolist() == [[0.0, 0.1, 0.2], [0.1, 0.0, 0.8], [0.2, 0.8, 0.0]]
    assert D0[0, 1] == 0.8  # the input is not changed
    with pytest.raises(NotFound, match="no value for urn:t:1 / urn:t:0"):
        promoted_matrix(D0, T, {(T[1], T[0]): 0.1})  # pairs are keyed by their sorted terms, as stored


def test_ndcg_before_and_after_promotion_by_hand(store):
    # Node weights (docs/algorithms.md §1.3, gap weights): under D0 (Z = 0.8) the leaves t0, t2 weigh 0.25, the
    # node {t0, t2} 0.75 and the leaf t1 1; under D1 (Z = 0.5) the leaves t0, t1 weigh 0.2, {t0, t1} 0.8, t2 1.
    # HSBD = Σ_v W_v |S_v(a) − S_v(b)|:
    #   D0: Q–E 0.2, Q–B 0.5, Q–A 1.7, A–B 1.6, A–E 1.6, B–E 0.3
    #   D1: Q–A 0.72, Q–E 0.8, Q–B 2.0, A–E 0.64, A–B 1.6, B–E 1.2
    # Rankings (relevant = same diagnosis) and NDCG@3:
    #   Q (x): D0 E, B, A → C;   D1 A, E, B → 1    (better)
    #   A (x): D0 B/E, Q → C;    D1 E, Q, B → 1    (better; rank 2 is not discounted)
    #   B (y): D0 E, Q, A → 1;   D1 E, A, Q → 1    (unchanged)
    #   E (y): D0 Q, B, A → 1;   D1 A, Q, B → C    (worse)
    fill(store)
    learned(store, "s1", 0.1)
    ev = promotion_evidence(store, TINY, min_sessions=1, k=3)
    assert ev.reason is None and ev.pairs == ((T[0], T[1], 0.8, 0.1),)
    before = {"Q": C, "A": C, "B": 1.0, "E": 1.0}
    after = {"Q": 1.0, "A": 1.0, "B": 1.0, "E": C}
    assert sorted(ev.queries) == ["A", "B", "E", "Q"]
    assert dict(zip(ev.queries, ev.before)) == pytest.approx(before)
    assert dict(zip(ev.queries, ev.after)) == pytest.approx(after)
    assert ev.counts() == {"better": 2, "worse": 1, "unchanged": 1}
    d = ev.as_dict()
    assert d["mean_before"] == pytest.approx((2 * C + 2) / 4, abs=1e-6)
    assert d["mean_after"] == pytest.approx((3 + C) / 4, abs=1e-6)
    diff = ev.difference
    assert diff.difference.mean == pytest.approx((1 - C) / 4)
    assert (diff.better, diff.worse, diff.ties) == (0.5, 0.25, 0.25)
    expected = bootstrap_mean([after[q] - before[q] for q in ev.queries], seed=0)
    assert (diff.difference.low, diff.difference.high) == pytest.approx((expected.low, expected.high))
    assert ev.reading().startswith("Promoting the 1 candidate pair would change mean NDCG@3 on 4 held-out queries "
                                   "by +0.092 (95 % CI ")
    assert ev.reading().endswith("; 25 % of queries would rank worse.")


def test_marked_and_query_cases_are_not_held_out(store):
    cases = dict(CASES, Q2=("P5", "x", (0.9, 0.1, 0.0)), M=("P6", "y", (0.1, 0.0, 0.9)))
    fill(store, cases)
    learned(store, "s1", 0.1, query="Q2", marked=("M",))
    ev = promotion_evidence(store, TINY, min_sessions=1, k=3)
    assert sorted(ev.queries) == ["A", "B", "E", "Q"]
    assert ev.reason is None


def test_a_pair_that_is_a_candidate_both_ways_is_promoted_the_way_most_sessions_agree(store):
    fill(store)
    learned(store, "s1", 0.1, user="u1")
    learned(store, "s2", 0.2, user="u2")
    learned(store, "s3", 0.9, user="u3")  # farther: a candidate too with min_sessions=1, but outvoted 2 to 1
    ((a, b, old, new),) = promotion_evidence(store, TINY, min_sessions=1).pairs
    assert (a, b, old, new) == (T[0], T[1], 0.8, pytest.approx(0.15))


def test_held_out_queries_beyond_max_queries_are_a_seeded_sample(store):
    fill(store)
    learned(store, "s1", 0.1)
    first = promotion_evidence(store, TINY, min_sessions=1, k=3, max_queries=3, seed=4)
    assert len(first.queries) == 3 and set(first.queries) < {"A", "B", "E", "Q"}
    assert promotion_evidence(store, TINY, min_sessions=1, k=3, max_queries=3, seed=4).queries == first.queries


def test_nothing_to_measure_says_why(store):
    fill(store)
    ev = promotion_evidence(store, TINY, min_sessions=1)
    assert ev.difference is None and "nothing to promote" in ev.reason
    assert ev.as_dict()["n_queries"] == 0 and ev.as_dict()["mean_before"] is None
    assert ev.reading() == f"Nothing to measure: {ev.reason}."
    learned(store, "s1", 0.8, previous=0.5)  # a candidate (farther) whose value is the baseline's own
    ev = promotion_evidence(store, TINY, min_sessions=1)
    assert ev.pairs == () and "changes nothing" in ev.reason
    learned(store, "s2", 0.1, user="u2")  # a candidate both ways, one session each: a tie, not promoted
    assert "nothing to promote" in promotion_evidence(store, TINY, min_sessions=1).reason
    assert "nothing to promote" in promotion_evidence(store, TINY, min_sessions=2).reason


def test_without_diagnoses_nothing_is_measured_and_the_report_escapes_why(store):
    fill(store, {cid: (p, None, v) for cid, (p, _, v) in CASES.items()})
    learned(store, "s1", 0.1)
    ev = promotion_evidence(store, TINY, min_sessions=1)
    assert ev.pairs and ev.reason == "no case of collection tiny_set has a diagnosis, so relevance is unknown"
    text = report(store, collection=TINY, min_sessions=1)
    assert "Nothing to measure: no case of collection tiny\\_set has a diagnosis" in text
    assert "| figure | value |" not in text


def test_the_change_report_has_the_evidence_section(store):
    # the figures of test_ndcg_before_and_after_promotion_by_hand (NDCG@10 = NDCG@3 when 3 cases are ranked)
    fill(store)
    learned(store, "s1", 0.1)
    text = report(store, collection=TINY, min_sessions=1)
    section = text[text.index("## Evidence for promotion"):text.index("## All learned relations")]
    assert "on 4 held-out queries by +0.092 (95 % CI " in section
    for row in ("| candidate pairs promoted | 1 |", "| held-out queries | 4 |",
                "| mean NDCG@10, current baseline | 0.815 |", "| mean NDCG@10, candidates promoted | 0.908 |",
                "| queries ranked better | 2 (50 %) |", "| queries ranked worse | 1 (25 %) |",
                "| queries unchanged | 1 (25 %) |"):
        assert row in section
    assert "(the min\\_sessions filter;" in section


def test_fewer_than_two_held_out_queries(store):
    fill(store)
    learned(store, "s1", 0.1, query="Q", marked=("A", "B"))  # only E is held out (B is still ranked)
    ev = promotion_evidence(store, TINY, min_sessions=1)
    assert ev.queries == () and "only 1 case(s)" in ev.reason
