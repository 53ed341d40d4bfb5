"""NDCG, the feedback evaluation protocol, its figures and `semgraph evaluate`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import kg
import ontology
from ontology.paper_terms import paper_terms
from semgraph.cli import load_commands
from semgraph.cohort import iter_labels
from semgraph.errors import InvalidInput
from semgraph.evaluation import (
    ProtocolConfig,
    compare,
    dcg,
    eligible_queries,
    ndcg,
    ndcg_curve,
    proxy_signatures,
    run_protocol,
    simulate_likelihoods,
)
from semgraph.evaluation.figures import (
    plot_dendrograms,
    plot_ndcg_curves,
    plot_result_grid,
    scipy_linkage,
)
from semgraph.graph.casegraph import Annotation, Case, read_likelihoods, replace_annotation, write_case

L3 = math.log2(3)

# ---------------------------------------------------------------------------------------------------------------
# NDCG
# ---------------------------------------------------------------------------------------------------------------


def test_ndcg_jk_hand_computed():
    # DCG of [0,1,1,0]: 0, 1, 1 + 1/log2(3), same; ideal [1,1,0,0]: 1, 2, 2, 2
    np.testing.assert_allclose(ndcg_curve([0, 1, 1, 0], max_k=4), [0, 0.5, (1 + 1 / L3) / 2, (1 + 1 / L3) / 2])
    assert dcg([3, 2, 1, 1], form="jk") == pytest.approx(3 + 2 + 1 / L3 + 1 / 2)


def test_ndcg_burges_hand_computed():
    # (2^g - 1) / log2(r + 1): ranked [0,1,1,0] -> 0, 1/log2 3, 1/2; ideal -> 1, 1/log2 3
    idcg = 1 + 1 / L3
    np.testing.assert_allclose(ndcg_curve([0, 1, 1, 0], max_k=3, form="burges"),
                               [0, (1 / L3) / idcg, (1 / L3 + 0.5) / idcg])


def test_ndcg_pool_and_short_lists():
    # the ranked list misses a relevant item of the pool: the ideal ordering comes from the pool
    assert ndcg([1, 0], 2, pool_gains=[1, 0, 1]) == pytest.approx(1 / 2)
    # K beyond the list: DCG and IDCG stop growing
    np.testing.assert_allclose(ndcg_curve([0, 1], max_k=4), [0, 1, 1, 1])
    assert np.isnan(ndcg_curve([0, 0, 0], max_k=2)).all()  # no relevant item: undefined


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=30), st.floats(0.1, 100), st.integers(1, 30),
       st.sampled_from(["jk", "burges"]))
def test_ndcg_properties(gains, scale, k, form):
    g = np.array(gains, dtype=float)
    curve = ndcg_curve(g, max_k=k, form=form)
    if g.max() == 0:
        assert np.isnan(curve).all()
        return
    assert np.all((curve >= 0) & (curve <= 1))
    np.testing.assert_allclose(ndcg_curve(np.sort(g)[::-1], max_k=k, form=form), 1.0)
    if form == "jk":  # positive scaling of all gains
        np.testing.assert_allclose(ndcg_curve(g * scale, max_k=k), curve, atol=1e-12)


def test_burges_is_not_scale_invariant():
    assert ndcg([1, 2], 1, form="burges") != pytest.approx(ndcg([2, 4], 1, form="burges"))


@pytest.mark.parametrize("bad", [[-1, 0], [[1, 0]], [np.inf]])
def test_ndcg_rejects(bad):
    with pytest.raises(InvalidInput):
        ndcg_curve(bad)
    with pytest.raises(ValueError):
        ndcg_curve([1, 0], form="modern")


# ---------------------------------------------------------------------------------------------------------------
# protocol
# ---------------------------------------------------------------------------------------------------------------


def test_eligible_queries():
    # case 2 (z) has no other z; case 3 (y) only shares its diagnosis with its own patient
    assert eligible_queries(["x", "x", "z", "y", "y"], ["p1", "p2", "p3", "p4", "p4"]).tolist() == [0, 1]


def separable():
    """5 relevant cases [1, 0] (+ a same-patient twin of the query) and 8 irrelevant [0, 1]."""
    vectors = [[1, 0]] * 7 + [[0, 1]] * 8
    diagnoses = ["x"] * 7 + ["y"] * 8
    patients = ["p0", "p0"] + [f"p{i}" for i in range(2, 15)]
    return np.array(vectors, float), diagnoses, patients


def test_run_protocol_reader_marks_and_pool():
    A, diagnoses, patients = separable()
    cfg = ProtocolConfig(rounds=2, max_k=5)
    out = run_protocol(A, diagnoses, patients, ["c", "c"], None, feedback="none", queries=[0], config=cfg,
                       keep_trace=True)
    trace = out["trace"][0]
    assert "1" not in trace["ranking_before"] and "0" not in trace["ranking_before"]  # same patient, query
    assert len(trace["ranking_before"]) == 13
    # round 1: top 10 = 5 relevant + 5 irrelevant; round 2: the 2 relevant left and 3 more irrelevant
    assert out["marks"][0][0] == {"relevant": ["2", "3", "4"], "irrelevant": ["7", "8", "9"]}
    assert out["marks"][0][1] == {"relevant": ["5", "6"], "irrelevant": ["10", "11", "12"]}
    np.testing.assert_allclose(out["ndcg"][0], 1.0)                 # perfect ranking every round
    np.testing.assert_allclose(out["residual"][0, :2], 1.0)
    assert np.isnan(out["residual"][0, 2]).all()                    # no relevant case left after round 2


def test_run_protocol_rejects_learning_without_d():
    A, diagnoses, patients = separable()
    with pytest.raises(InvalidInput, match="L1"):
        run_protocol(A, diagnoses, patients, ["c", "c"], None, feedback="penalty")


def labels(n=30, seed=3):
    rows = list(iter_labels(n, seed=seed))
    truth = np.array([r.true_labels for r in rows], float)
    return truth, [r.diagnosis for r in rows], [r.patient_id for r in rows], [r.case_id for r in rows]


def test_simulated_inputs():
    truth, *_ = labels()
    a = simulate_likelihoods(truth, seed=1)
    assert a.shape == truth.shape and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, simulate_likelihoods(truth, seed=1))
    assert np.mean(a[truth == 1]) > np.mean(a[truth == 0]) + 0.4
    sig = proxy_signatures([[0, 1, 5], [1, 0, 5], [1, 1, 5]])
    assert sig.shape == (3, 4)  # 3 z-scored cases + 1 extra direction for the constant term
    np.testing.assert_allclose(sig[2], [0, 0, 0, 1])
    np.testing.assert_allclose(sig[0], [-math.sqrt(2), math.sqrt(2) / 2, math.sqrt(2) / 2, 0])


def test_compare_synthetic():
    truth, diagnoses, patients, ids = labels()
    a = simulate_likelihoods(truth, seed=0)
    k = truth.shape[1]
    cats = [t.category for t in paper_terms()]
    rng = np.random.default_rng(0)
    r = rng.uniform(0.2, 1, (k, k))
    D = np.triu(r, 1) + np.triu(r, 1).T
    cfg = ProtocolConfig(n_queries=4, rounds=2, max_k=10)
    res = compare(a, diagnoses, patients, cats, {"combined": D}, truth=truth, seeds=[0, 1], config=cfg,
                  case_ids=ids)
    json.dumps(res, allow_nan=False)
    names = set(res["settings"])
    assert {"likelihoods/combined/none", "likelihoods/combined/penalty", "likelihoods/combined/regularised",
            "likelihoods/combined/rocchio", "likelihoods/l1/none", "likelihoods/l1/rocchio",
            "truth/combined/penalty", "truth/l1/none"} <= names
    for s in res["settings"].values():
        mean = np.array(s["ndcg"]["mean"], float)
        assert mean.shape == (3, 10) and np.all((mean >= 0) & (mean <= 1))
    base = res["settings"]["likelihoods/combined/none"]
    assert base["gain"]["mean"] == 0 and base["worse"]["total"] == 0
    for fb in ("penalty", "regularised", "rocchio"):  # same queries: identical round 0
        assert res["settings"][f"likelihoods/combined/{fb}"]["ndcg"]["mean"][0] == base["ndcg"]["mean"][0]
    assert set(res["regularisation"]) == {"likelihoods/combined", "truth/combined"}
    assert res["example"]["setting"] == "likelihoods/combined/regularised"
    again = compare(a, diagnoses, patients, cats, {"combined": D}, seeds=[0, 1], config=cfg, case_ids=ids)
    assert again["settings"]["likelihoods/combined/penalty"] == res["settings"]["likelihoods/combined/penalty"]


def test_compare_rejects():
    truth, diagnoses, patients, _ = labels()
    cats = [t.category for t in paper_terms()]
    with pytest.raises(InvalidInput):
        compare(truth, diagnoses[:-1], patients, cats, {})
    with pytest.raises(InvalidInput, match="reserved"):
        compare(truth, diagnoses, patients, cats, {"l1": np.zeros((19, 19))})
    with pytest.raises(ValueError):
        compare(truth, diagnoses, patients, cats, {}, feedbacks=("none", "magic"))
    with pytest.raises(InvalidInput):
        ProtocolConfig(rounds=11)


# ---------------------------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------------------------

PNG = b"\x89PNG"


def test_scipy_linkage_hand_computed():
    np.testing.assert_array_equal(scipy_linkage([[0, 1, 4], [1, 0, 4], [4, 4, 0]]), [[0, 1, 1, 2], [3, 2, 4, 3]])


def test_figures(tmp_path):
    D = np.array([[0, .2, .9], [.2, 0, .7], [.9, .7, 0]])
    path = plot_dendrograms(D, D[[0, 2, 1]][:, [0, 2, 1]], ["a", "b", "c"], tmp_path / "d.png")
    assert path.read_bytes()[:4] == PNG
    res = {"settings": {"s": {"ndcg": {"mean": [[1, .5], [1, .7]], "sd": [[0, .1], [0, .1]]},
                              "residual": {"mean": [[1, None], [1, .7]], "sd": [[0, None], [0, 0]]}}}}
    assert plot_ndcg_curves(res, tmp_path / "n.png").read_bytes()[:4] == PNG
    assert plot_ndcg_curves(res, tmp_path / "r.png", residual=True).read_bytes()[:4] == PNG
    with pytest.raises(InvalidInput):
        plot_ndcg_curves(res, tmp_path / "x.png", ["missing"])
    seen = []

    def thumb(case_id):
        seen.append(case_id)
        return None if case_id == "b" else np.eye(4)

    grid = plot_result_grid("q", ["a", "b", "c"], [True, False, True], tmp_path / "g.png", thumbnail=thumb)
    assert grid.read_bytes()[:4] == PNG and seen == ["q", "a", "b", "c"]
    assert plot_result_grid("q", ["a"], [True], tmp_path / "h.png").read_bytes()[:4] == PNG
    with pytest.raises(InvalidInput):
        plot_result_grid("q", ["a"], [True, False], tmp_path / "i.png")


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def filled_store(tmp_path):
    location = tmp_path / "graph"
    store = kg.open_store(location)
    terms = [t.iri for t in paper_terms()]
    rows = list(iter_labels(40, seed=5))
    truth = np.array([r.true_labels for r in rows], float)
    noisy = simulate_likelihoods(truth, seed=2)
    for n, r in enumerate(rows):
        write_case(store, Case(r.case_id, r.patient_id, r.case_id, diagnosis=r.diagnosis), [
            Annotation("predicted", dict(zip(terms, map(float, noisy[n])))),
            Annotation("truth", dict(zip(terms, map(float, truth[n]))))])
    yield store, location
    store.close()


def invoke(location, *args):
    return CliRunner().invoke(load_commands(), ["--store", str(location), "evaluate", *args])


def test_evaluate_command(filled_store, tmp_path):
    store, location = filled_store
    ontology.load(store, "radlex-liver")
    store.close()
    out = tmp_path / "out"
    result = invoke(location, "--queries", "3", "--rounds", "2", "--seeds", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads((out / "evaluation.json").read_text())
    assert data["n_cases"] == 40 and data["config"]["rounds"] == 2 and data["seeds"] == [0, 1]
    assert "truth/combined/regularised" in data["settings"] and data["ceiling"] == "truth"
    for name in ("ndcg.png", "ndcg_residual.png", "dendrogram.png", "results_grid.png"):
        assert (out / name).read_bytes()[:4] == PNG
    assert "predicted/combined/penalty" in result.output and "@25" in result.output
    mean = data["settings"]["predicted/combined/penalty"]["ndcg"]["mean"]
    assert f"{mean[0][0]:6.3f}" in result.output
    # no images to compute out-of-fold likelihoods from, no reader labels: the stored predictions, said to be in-sample
    assert "likelihoods: predicted" in result.output and "in-sample" in result.output
    assert any("in-sample" in w for w in data["warnings"])
    # the summary: 3 queries x 2 seeds = 6 runs per setting, each setting against plain L1 + Rocchio
    row = data["summary"]["predicted/combined/penalty"]
    assert row["round0"]["n"] == 6 and row["round0"]["low"] <= row["round0"]["mean"] <= row["round0"]["high"]
    at10 = np.array(data["settings"]["predicted/combined/penalty"]["at10"])
    assert at10.shape == (6, 3) and row["last"]["mean"] == pytest.approx(at10[:, -1].mean(), abs=1e-6)
    assert data["summary"]["predicted/l1/rocchio"]["versus_reference"]["difference"]["mean"] == 0
    assert "| predicted/combined/penalty |" in result.output


def test_evaluate_prefers_out_of_fold_likelihoods(filled_store, tmp_path):
    store, location = filled_store
    ontology.load(store, "radlex-liver")
    terms = [t.iri for t in paper_terms()]
    ids, predicted = read_likelihoods(store, terms, kinds=("predicted",))
    for case_id, row in zip(ids, predicted):  # stand-in out-of-fold values: the predictions, shrunk
        replace_annotation(store, case_id, Annotation("crossval", dict(zip(terms, map(float, row * 0.5)))))
    store.close()
    out = tmp_path / "out"
    result = invoke(location, "--queries", "2", "--rounds", "1", "--seeds", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "likelihoods: crossval, out-of-fold likelihoods stored by `semgraph train --lopo`" in result.output
    data = json.loads((out / "evaluation.json").read_text())
    assert data["likelihoods"] == "crossval" and "crossval/l1/rocchio" in data["summary"]
    assert not any("in-sample" in w for w in data["warnings"])


def test_evaluate_needs_an_ontology(filled_store, tmp_path):
    store, location = filled_store
    store.close()
    result = invoke(location, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "semgraph ontology load radlex-liver" in result.output
    assert not (tmp_path / "out").exists()


def test_evaluate_without_the_requested_likelihoods(filled_store, tmp_path):
    store, location = filled_store
    ontology.load(store, "radlex-liver")
    store.close()
    result = invoke(location, "--likelihoods", "reader", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "'reader'" in result.output


def test_evaluate_computes_out_of_fold_likelihoods_from_the_images(tmp_path):
    from semgraph.cohort import generate
    from semgraph.exchange import ingest, training

    data_dir = tmp_path / "data"
    manifest = generate(16, seed=4, out_dir=tmp_path / "cohort", size=128, progress=False)
    with kg.open_store(data_dir / "graph") as store:
        ontology.load(store, "radlex-liver")
        ingest.ingest(store, manifest, data_dir, progress=False)
        model, _ = training.train(store, data_dir)
        training.annotate(store, data_dir, model, progress=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(load_commands(), ["--data-dir", str(data_dir), "evaluate", "--queries", "2",
                                                  "--rounds", "1", "--seeds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "likelihoods: crossval, out-of-fold likelihoods computed now (GroupKFold(5)" in result.output
    data = json.loads((out / "evaluation.json").read_text())
    with kg.open_store(data_dir / "graph", read_only=True) as store:
        terms = [t.iri for t in paper_terms()]
        _, in_sample = read_likelihoods(store, terms, kinds=("predicted",))
        assert not read_likelihoods(store, terms, kinds=("crossval",))[0]  # evaluate stored nothing
    # the ranked vectors are not the in-sample predictions (models that saw the case would give those)
    assert data["likelihoods"] == "crossval" and data["n_cases"] == in_sample.shape[0]
    assert "crossval/combined/penalty" in data["settings"]
