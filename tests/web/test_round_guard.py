"""The round guard over real HTTP (docs/algorithms.md §5.6): the JSON of a round carries the guard's outcome, a
reduced round says so on the session page, and a round that changes nothing says so and asks for more marks."""

from __future__ import annotations

import re

import numpy as np
import pytest
import radiology_fixture
import requests

from semgraph.feedback import algorithms as fb
from semgraph.feedback.algorithms import (
    GUARD_OUTCOMES,
    Algorithm,
    Step,
    penalty_votes,
    register_algorithm,
)

USERS = {"rita": ("radiologist", "rita-password-1")}


@pytest.fixture(scope="module")
def rsite(tmp_path_factory):
    site = radiology_fixture.build_cohort_site(tmp_path_factory, USERS)
    yield site
    site.stop()


class Api:
    """A logged-in client of /api/v1 (as in test_api_retrieval.py)."""

    def __init__(self, base: str, name: str):
        self.base, self.http = base, requests.Session()
        page = self.http.get(base + "/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = self.http.post(base + "/login", data={"name": name, "password": USERS[name][1], "csrf_token": token},
                           allow_redirects=False)
        assert r.status_code == 302
        self.token = self.http.get(base + "/api/v1/me").json()["csrf_token"]

    def get(self, path, **kw):
        return self.http.get(self.base + "/api/v1" + path, timeout=60, **kw)

    def post(self, path, **kw):
        return self.http.post(self.base + "/api/v1" + path, headers={"X-CSRF-Token": self.token}, timeout=60, **kw)

    def page(self, path):
        r = self.http.get(self.base + path, timeout=60)
        assert r.status_code == 200, r.text
        return r.text


@pytest.fixture
def contrary():
    """A registered algorithm that does the opposite of the paper's penalty step, all the way to the ends of
    [d_min, 1]: the guard must cut it down."""
    def step(r):
        S = penalty_votes(r.query, r.relevant, r.irrelevant, r.categories, tau=r.params.tau, eps=r.params.eps)
        out = np.where(S < 0, 1.0, np.where(S > 0, r.params.d_min, r.dissimilarity))
        np.fill_diagonal(out, 0.0)
        return Step(dissimilarity=out)

    register_algorithm(Algorithm("contrary", "test only", step, changes_dissimilarity=True, moves_query=False,
                                 parameters=("tau", "eps", "d_min")))
    yield "contrary"
    fb._ALGORITHMS.pop("contrary", None)


def _check_outcome(view: dict) -> dict:
    outcome = view["round_outcome"]
    assert outcome["number"] == view["round"] and outcome["guard"] in GUARD_OUTCOMES
    assert view["rounds"][-1]["guard"] == outcome["guard"] and view["rounds"][-1]["step"] == outcome["step"]
    assert outcome["step"] in (0.0, 0.125, 0.25, 0.5, 1.0)
    if outcome["evidence_before"] is not None:
        assert outcome["evidence_after"] >= outcome["evidence_before"]
    return outcome


def test_the_json_of_a_round_carries_the_guard_outcome(rsite):
    rita = Api(rsite.url, "rita")
    query, marks = radiology_fixture.best_feedback_query(rsite.store, k=12)
    s = rita.post("/sessions", json={"case_id": query, "k": 12}).json()
    assert s["round_outcome"] is None  # before any round
    r = rita.post(f"/sessions/{s['session_id']}/rounds", json={"marks": marks, "round": 0})
    assert r.status_code == 200, r.text
    after = r.json()
    outcome = _check_outcome(after)
    assert outcome["evidence_before"] is not None  # 3 relevant and 3 irrelevant marks: 9 pairs to judge by
    assert after["changes"] and not outcome["nothing_changed"] and outcome["nothing_text"] is None
    assert (outcome["guard_text"] is None) == (outcome["guard"] == "applied")
    assert rita.get(f"/sessions/{s['session_id']}").json()["round_outcome"] == outcome  # the GET shows the same
    doc = rita.get("/openapi.json").json()
    assert "round_outcome" in doc["components"]["schemas"]["RetrievalSession"]["properties"]


def harmful_round(store, algorithms):
    """(algorithm, query case, marks: 3 relevant and 3 irrelevant by diagnosis) of a first round that the guard
    reduces or refuses, trying ``algorithms`` in order. Test setup only: nothing is written."""
    from semgraph.feedback.algorithms import FeedbackParams
    from semgraph.feedback.sessions import start_session
    from semgraph.retrieval.engine import Engine

    engine = Engine.from_store(store)
    for algorithm in algorithms:
        for query in engine.ids:
            session = start_session(store, engine, query, "probe", k=12)
            diagnosis = engine.case(query).diagnosis
            rel = [h.case_id for h in session.ranking if h.diagnosis == diagnosis][:3]
            irr = [h.case_id for h in session.ranking if h.diagnosis != diagnosis][:3]
            if rel and irr:
                marks = {**dict.fromkeys(rel, "relevant"), **dict.fromkeys(irr, "irrelevant")}
                if session.compute_round(marks, FeedbackParams(algorithm=algorithm)).guard != "applied":
                    return algorithm, query, marks
    raise AssertionError("the guard lets every probed round through")


def test_a_harmful_round_is_reduced_and_the_page_says_so(rsite, contrary):
    rita = Api(rsite.url, "rita")
    algorithm, query, marks = harmful_round(rsite.store, ("penalty", contrary))  # the paper's step if it can hurt
    s = rita.post("/sessions", json={"case_id": query, "k": 12, "algorithm": algorithm}).json()
    sid = s["session_id"]
    assert s["algorithm"] == algorithm
    after = rita.post(f"/sessions/{sid}/rounds", json={"marks": marks, "round": 0}).json()
    outcome = _check_outcome(after)
    assert outcome["guard"] in ("reduced", "refused"), outcome
    assert after["rounds"][0]["marks"] == marks  # the marks are recorded whatever the guard decided
    html = rita.page(f"/sessions/{sid}")
    assert 'id="round-guard"' in html and f'data-guard="{outcome["guard"]}"' in html
    if outcome["guard"] == "reduced":
        percent = f"{100 * outcome['step']:g} %"
        assert outcome["guard_text"] == (f"This round was reduced to {percent} because the full step would have "
                                         "ranked the cases you marked worse.")
        assert after["changes"] and f"reduced to {percent}" in html
    else:
        assert outcome["guard_text"].startswith("This round was refused because") and after["changes"] == []
    assert outcome["guard_text"] in html.replace("&#39;", "'")
    assert "Nothing changed" not in html  # the guard's line explains the round; no second message


def test_a_round_that_changes_nothing_says_so(rsite):
    from semgraph.feedback.sessions import start_session
    from semgraph.retrieval.engine import Engine

    rita = Api(rsite.url, "rita")
    engine = Engine.from_store(rsite.store)
    query = rsite.case_ids[0]
    probe = start_session(rsite.store, engine, query, "probe", k=12)  # test setup only: nothing is written
    quiet = [h.case_id for h in probe.ranking if not probe.compute_round({h.case_id: "relevant"}).changes]
    assert quiet, "some result's terms support no pair of the query's terms"
    s = rita.post("/sessions", json={"case_id": query, "k": 12}).json()
    before = [h["case_id"] for h in s["results"]]
    after = rita.post(f"/sessions/{s['session_id']}/rounds", json={"marks": {quiet[0]: "relevant"}}).json()
    outcome = _check_outcome(after)
    assert after["changes"] == [] and [h["case_id"] for h in after["results"]] == before
    assert outcome["guard"] == "applied" and outcome["evidence_before"] is None  # one mark: no pair to judge by
    assert outcome["nothing_changed"] and not outcome["results_moved"] and not outcome["query_moved"]
    assert outcome["nothing_text"].startswith("Nothing changed: ")
    assert "at least one relevant and one irrelevant result" in outcome["nothing_text"]
    html = rita.page(f"/sessions/{s['session_id']}")
    assert 'id="nothing-changed"' in html and "Nothing changed: " in html
    assert "only the query moved" not in html and 'id="round-guard"' not in html


def test_a_reweight_round_lists_the_terms_whose_weight_moved_most(rsite):
    rita = Api(rsite.url, "rita")
    query, marks = radiology_fixture.best_feedback_query(rsite.store, k=12)
    s = rita.post("/sessions", json={"case_id": query, "k": 12, "algorithm": "rocchio+reweight"}).json()
    assert s["weight_changes"] == []  # before any round
    after = rita.post(f"/sessions/{s['session_id']}/rounds", json={"marks": marks, "round": 0}).json()
    outcome = _check_outcome(after)
    moved = after["weight_changes"]
    assert outcome["weights_moved"] and 0 < len(moved) <= 5
    assert after["changes"] == []  # reweight changes no term pair
    deltas = [abs(w["after"] - w["before"]) for w in moved]
    assert deltas == sorted(deltas, reverse=True) and all(w["before"] == 1.0 for w in moved)  # from no weights
    html = rita.page(f"/sessions/{s['session_id']}").replace("&#39;", "'")
    assert 'id="weight-changes"' in html and all(w["text"] in html for w in moved)
    assert "only the query moved" not in html
    doc = rita.get("/openapi.json").json()
    assert "weight_changes" in doc["components"]["schemas"]["RetrievalSession"]["properties"]


def test_the_ranking_of_a_reweight_round_is_recomputed_with_its_weights(rsite):
    from semgraph.feedback.algorithms import FeedbackParams
    from semgraph.feedback.sessions import start_session
    from semgraph.retrieval.engine import Engine
    from webapp.web_sessions import Entry, ranking_after

    query, marks = radiology_fixture.best_feedback_query(rsite.store, k=12)
    session = start_session(rsite.store, Engine.from_store(rsite.store), query, "probe", k=12)
    rnd = session.compute_round(marks, FeedbackParams(algorithm="reweight"))  # test setup only: nothing written
    session.rounds.append(rnd)
    session._set_state(rnd.dissimilarity, rnd.query, rnd.weights)
    unweighted = session.engine.with_dissimilarity(rnd.dissimilarity).search_vector(rnd.query, 12, exclude=(query,))
    assert [h.distance for h in unweighted] != [h.distance for h in session.ranking]  # the weights matter
    assert ranking_after(Entry(session, {}), 1) == session.ranking
