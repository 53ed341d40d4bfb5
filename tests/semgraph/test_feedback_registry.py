"""The feedback-algorithm registry: every registered algorithm runs a round, is compared by the evaluation protocol
and is offered by the command line, the web app and the OpenAPI document; adding one is one registry entry."""

from __future__ import annotations

import numpy as np
import pytest

from semgraph.errors import InvalidInput
from semgraph.evaluation import FEEDBACKS, ProtocolConfig, compare, run_protocol
from semgraph.feedback import algorithms as fb
from semgraph.feedback.algorithms import (
    Algorithm,
    FeedbackParams,
    Step,
    apply_feedback,
    available_algorithms,
)

CATS = ["a", "a", "b", "b"]
D4 = np.array([[0, .5, .8, .8], [.5, 0, .8, .8], [.8, .8, 0, .5], [.8, .8, .5, 0]])
Q = np.array([0.9, 0.0, 0.8, 0.0])
REL = [[0, .85, 0, 0]]  # term 1 present and comparable to query term 0 (|0.85 - 0.9| <= 0.15)

#: One round (round 1, default parameters, REL marked relevant, nothing irrelevant): δ(0, 1) and the query after it.
#: penalty: 0.5 - ρ = 0.4. regularised: the same step (ρ/1, inside κ = 0.3 of D0; no irrelevant mark, so no
#: acceptance check). rocchio: D unchanged, q = 1.0·q + 0.75·REL = [0.9, 0.6375, 0.8, 0].
#: reweight: D and query unchanged; its weights are checked in test_feedback_reweight.py.
EXPECTED = {
    "penalty": (0.4, [0.9, 0.0, 0.8, 0.0]),
    "regularised": (0.4, [0.9, 0.0, 0.8, 0.0]),
    "rocchio": (0.5, [0.9, 0.6375, 0.8, 0.0]),
    "reweight": (0.5, [0.9, 0.0, 0.8, 0.0]),
}


def test_every_registered_algorithm_has_a_hand_computed_round():
    assert set(EXPECTED) == set(available_algorithms()), "add the new algorithm's expected round to EXPECTED"


@pytest.mark.parametrize("name", available_algorithms())
def test_every_algorithm_runs_one_round_as_its_entry_declares(name):
    entry = fb.get_algorithm(name)
    r = apply_feedback(D4, D4, Q, REL, [], CATS, round_number=1, params=FeedbackParams(algorithm=name))
    d01, query = EXPECTED[name]
    assert r.dissimilarity[0, 1] == pytest.approx(d01) and r.dissimilarity[1, 0] == pytest.approx(d01)
    np.testing.assert_allclose(r.query, query)
    assert bool(r.changes) == entry.changes_dissimilarity
    assert (not np.array_equal(r.query, Q)) == entry.moves_query
    assert (r.weights is not None) == entry.sets_weights
    assert entry.description and set(entry.parameters) <= set(FeedbackParams().as_dict())


def _inputs(params: FeedbackParams) -> fb.RoundInputs:
    empty = np.zeros((0, 4))
    return fb.RoundInputs(D4, D4, Q, np.array(REL, dtype=float), empty, empty, empty, tuple(CATS), 1, params)


@pytest.mark.parametrize("name", available_algorithms())
def test_a_step_returns_exactly_what_its_entry_declares(name):
    entry = fb.get_algorithm(name)
    step = entry.step(_inputs(FeedbackParams(algorithm=name)))
    assert (step.dissimilarity is not None) == entry.changes_dissimilarity
    assert (step.query is not None) == entry.moves_query
    assert (step.weights is not None) == entry.sets_weights


def test_the_protocol_compares_every_algorithm():
    assert FEEDBACKS == ("none", *available_algorithms())
    # 6 cases: diagnosis x (patients p0, p0, p1) and y (p2, p3, p4)
    vectors = [[.9, 0, .8, 0], [.9, .1, .8, 0], [0, .85, 0, 0], [.1, .9, .1, 0], [0, 0, .1, .9], [0, 0, 0, .8]]
    diagnoses, patients = ["x", "x", "x", "y", "y", "y"], ["p0", "p0", "p1", "p2", "p3", "p4"]
    out = compare(vectors, diagnoses, patients, CATS, {"D": D4}, seeds=[0], config=ProtocolConfig(
        n_queries=1, rounds=1, max_k=3))
    query_only = [n for n in available_algorithms() if not fb.get_algorithm(n).changes_dissimilarity]
    assert query_only == ["rocchio", "reweight"]
    assert set(out["settings"]) == ({f"likelihoods/D/{f}" for f in FEEDBACKS}
                                    | {f"likelihoods/l1/{f}" for f in ("none", *query_only)})
    assert set(out["feedback_params"]) == set(available_algorithms())
    for name in available_algorithms():
        run = run_protocol(vectors, diagnoses, patients, CATS, D4, feedback=name, queries=[0], keep_trace=True,
                           config=ProtocolConfig(n_queries=1, rounds=1, max_k=3))
        # query case 0 is ranked against cases 2..5 (other patients); the reader marks the x case relevant and
        # the three y cases irrelevant. Its round changes D exactly when the entry says so.
        (marks,), = run["marks"]
        assert marks["relevant"] == ["2"] and sorted(marks["irrelevant"]) == ["3", "4", "5"]
        moved = not np.allclose(run["trace"][0]["dissimilarity_after"], D4)
        assert moved == fb.get_algorithm(name).changes_dissimilarity


@pytest.mark.parametrize("name", [n for n in available_algorithms() if fb.get_algorithm(n).changes_dissimilarity])
def test_plain_l1_refuses_algorithms_that_change_d(name):
    with pytest.raises(InvalidInput, match="use feedback 'none' or 'rocchio' or 'reweight'"):
        run_protocol([[1, 0, 0, 0], [1, 0, 0, 0]], ["x", "x"], ["p", "q"], CATS, None, feedback=name)


def test_default_choice_of_a_session():
    from webapp import web_sessions

    assert web_sessions.session_algorithm is fb.session_algorithm
    assert fb.session_algorithm(None, text=False) == fb.DEFAULT_ALGORITHM == "penalty"
    assert fb.session_algorithm("", text=True) == fb.TEXT_ALGORITHM == "regularised+rocchio"
    assert FeedbackParams().algorithm == fb.DEFAULT_ALGORITHM
    for name in available_algorithms():
        assert fb.session_algorithm(f" {name} ", text=True) == name
    for bad in ("bogus", "penalty+regularised", 3):
        with pytest.raises(InvalidInput):
            fb.session_algorithm(bad, text=False)


def test_the_cli_and_the_openapi_document_offer_every_algorithm():
    from click.testing import CliRunner

    from semgraph.cli import load_commands
    from webapp import api_retrieval  # noqa: F401  (registers the session paths)
    from webapp.openapi import document

    help_text = " ".join(CliRunner().invoke(load_commands(), ["feedback", "--help"]).output.split())
    body = document()["paths"]["/sessions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    described = body["properties"]["algorithm"]["description"]
    for name in available_algorithms():
        assert name in help_text and name in described
    assert "[default: regularised+rocchio for a text session, else penalty]" in help_text
    assert "(default: regularised+rocchio for a text, penalty otherwise)" in described


def _halve(r: fb.RoundInputs) -> Step:
    return Step(query=r.query / 2)


def test_adding_an_algorithm_is_one_registry_entry(monkeypatch):
    monkeypatch.setattr(fb, "_ALGORITHMS", dict(fb._ALGORITHMS))
    fb.register_algorithm(Algorithm("halve", "Halve the query.", _halve, changes_dissimilarity=False,
                                    moves_query=True, parameters=()))
    r = apply_feedback(D4, D4, Q, REL, [], CATS, round_number=1, params=FeedbackParams(algorithm="penalty+halve"))
    assert r.dissimilarity[0, 1] == pytest.approx(0.4)
    np.testing.assert_allclose(r.query, [0.45, 0.0, 0.4, 0.0])
    with pytest.raises(ValueError, match="each moves the query"):
        FeedbackParams(algorithm="halve+rocchio")
    with pytest.raises(ValueError, match="each updates the term dissimilarities"):
        FeedbackParams(algorithm="penalty+regularised")


@pytest.mark.parametrize("entry, message", [
    (Algorithm("a+b", "", _halve, changes_dissimilarity=False, moves_query=True, parameters=()), "identifier"),
    (Algorithm("penalty", "", _halve, changes_dissimilarity=False, moves_query=True, parameters=()), "already"),
    (Algorithm("idle", "", _halve, changes_dissimilarity=False, moves_query=False, parameters=()), "must change"),
    (Algorithm("odd", "", _halve, changes_dissimilarity=False, moves_query=True, parameters=("nu",)), "unknown"),
])
def test_bad_registrations_are_refused(monkeypatch, entry, message):
    monkeypatch.setattr(fb, "_ALGORITHMS", dict(fb._ALGORITHMS))
    with pytest.raises(ValueError, match=message):
        fb.register_algorithm(entry)
