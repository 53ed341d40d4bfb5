"""NDCG, the feedback evaluation protocol, its figures and `semgraph evaluate`."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import nibabel
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_hex
from PIL import Image

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
    changed_merges,
    dendrogram_figure,
    merge_clusters,
    ndcg_figure,
    ndcg_per_query_figure,
    plot_dendrograms,
    plot_ndcg_curves,
    plot_ndcg_per_query,
    plot_result_grid,
    result_grid_figure,
    round_style,
    scipy_linkage,
)
from semgraph.evaluation.intervals import bootstrap_mean, bootstrap_means
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    read_likelihoods,
    replace_annotation,
    write_case,
)
from semgraph.imaging import Thumbnail, case_thumbnail, lesion_box

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
    assert len(trace["rankings"]) == 3 and all(len(r) == 13 for r in trace["rankings"])  # every round, whole pool
    assert "1" not in trace["rankings"][0] and "0" not in trace["rankings"][0]  # same patient, query
    assert trace["relevant"][0] == [True] * 5 + [False] * 8  # the 5 other x cases first: a perfect ranking
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
    example = res["example"]
    assert example["setting"] == "likelihoods/combined/regularised" and example["seed"] == 0
    # the top max_k of the example query's ranking in every round, with the relevance of each case
    assert len(example["rankings"]) == 3 and all(len(r) == 10 for r in example["rankings"])
    for ranking, relevant in zip(example["rankings"], example["relevant"]):
        assert relevant == [diagnoses[ids.index(c)] == diagnoses[ids.index(example["query"])] for c in ranking]
    # NDCG@K per query and round of the example run: the first query's NDCG@1 is the relevance of its top case
    curves = np.array(example["ndcg_per_query"], float)
    assert curves.shape == (4, 3, 10) and example["queries"][0] == example["query"] and len(example["queries"]) == 4
    assert curves[0, :, 0].tolist() == [float(r[0]) for r in example["relevant"]]
    # the same runs as the setting's per-run NDCG@10 (seed 0 first)
    at10 = np.array(res["settings"]["likelihoods/combined/regularised"]["at10"], float)
    np.testing.assert_allclose(curves[:, :, 9], at10[:4], atol=1e-6)
    # the mean over runs with the bootstrap interval of round 0 and of the last round
    interval = res["settings"]["likelihoods/combined/regularised"]["interval"]
    assert interval["rounds"] == [0, 2]
    mean, low, high = (np.array(interval["ndcg"][part], float) for part in ("mean", "low", "high"))
    assert mean.shape == (3, 10) and low.shape == high.shape == (2, 10)
    np.testing.assert_allclose(mean[:, 9], at10.mean(axis=0), atol=1e-6)
    assert np.all(low <= mean[[0, 2]] + 1e-9) and np.all(mean[[0, 2]] <= high + 1e-9)
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


def test_bootstrap_means_column_by_column():
    # column 0 constant: no spread; column 1 has an undefined run: as bootstrap_mean leaves it out; column 2 is
    # undefined everywhere
    values = np.array([[1.0, 0.0, np.nan], [1.0, np.nan, np.nan], [1.0, 1.0, np.nan]])
    mean, low, high = bootstrap_means(values)
    assert (mean[0], low[0], high[0]) == (1.0, 1.0, 1.0)
    alone = bootstrap_mean([0.0, np.nan, 1.0])
    assert (mean[1], low[1], high[1]) == pytest.approx((0.5, alone.low, alone.high))
    assert np.isnan([mean[2], low[2], high[2]]).all()
    assert bootstrap_means(np.zeros((4, 2, 3))).shape == (3, 2, 3)


def band(mean):
    """An ``interval`` entry of compare's result: ``mean`` (rounds x K), a ±0.05 band at the first and last round."""
    mean = np.asarray(mean, float)
    ends = [0, len(mean) - 1]
    curves = {"mean": mean.tolist(), "low": (mean[ends] - .05).tolist(), "high": (mean[ends] + .05).tolist()}
    return {"rounds": ends, "ndcg": curves, "residual": dict(curves)}


def styles(ax):
    return [(line.get_linestyle(), line.get_marker()) for line in ax.get_lines()]


def test_rounds_have_distinct_line_styles():
    assert len({(s["linestyle"], s["marker"]) for s in map(round_style, range(12))}) == 12
    assert [round_style(t)["linestyle"] for t in range(4)] == ["-", "--", "-.", ":"]
    fig = ndcg_figure({"settings": {"s": {"interval": band(np.linspace(.2, .8, 20).reshape(4, 5))}}})
    ax = fig.axes[0]
    assert styles(ax) == [("-", ""), ("--", ""), ("-.", ""), (":", "")]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["round 0", "round 1", "round 2", "round 3"]
    assert len(ax.collections) == 2  # bands: round 0 and the last round, no sd band per round
    plt.close(fig)
    # the per-query figure: one panel per query (at most max_queries), the same line styles
    example = {"setting": "s", "seed": 0, "queries": ["q1", "q2", "q3"], "ndcg_per_query": np.ones((3, 4, 5)).tolist()}
    fig = ndcg_per_query_figure(example, max_queries=2)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert [ax.get_title() for ax in panels] == ["query q1", "query q2"]
    assert all(styles(ax) == [("-", ""), ("--", ""), ("-.", ""), (":", "")] for ax in panels)
    assert panels[0].get_legend() is not None
    plt.close(fig)


def test_changed_merges_hand_computed():
    # before: a-b at .1, c joins them at .4, d last; after: a-b at .1, d joins them at .4, c last
    before = np.array([[0, .1, .4, .9], [.1, 0, .4, .9], [.4, .4, 0, .9], [.9, .9, .9, 0]])
    after = before[[0, 1, 3, 2]][:, [0, 1, 3, 2]]
    assert merge_clusters(before) == [{0, 1}, {0, 1, 2}, {0, 1, 2, 3}]
    assert changed_merges(before, after) == ({frozenset({0, 1, 2})}, {frozenset({0, 1, 3})})
    assert changed_merges(before, before) == (set(), set())
    fig = dendrogram_figure(before, after, ["a", "b", "c", "d"])
    for ax in fig.axes:  # one highlighted link (the changed merge) and two grey ones per tree
        links = {to_hex(c.get_colors()[0]): len(c.get_segments()) for c in ax.collections}
        assert links == {to_hex("darkorange"): 1, to_hex("dimgray"): 2}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["merge (cluster of terms) in this tree only", "merge in both trees"]
    plt.close(fig)


def frame(ax):
    return to_hex(ax.spines["top"].get_edgecolor())


def test_result_grid_rows_and_frames():
    rankings = [["a", "b", "c"], ["b", "a", "c"], ["b", "c", "a"]]
    relevant = [[True, False, True], [False, True, True], [False, True, True]]
    grey = np.linspace(0, 1, 16).reshape(4, 4)
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    seen = []

    def thumb(case_id):
        seen.append(case_id)
        return None if case_id == "b" else Thumbnail(grey, mask)

    fig = result_grid_figure("q", rankings, relevant, thumbnail=thumb, n=2)
    axes = np.array(fig.axes).reshape(3, 3)  # rounds 0, 1, 2 x (query + top 2)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["round 0", "round 1", "round 2"]
    assert all(frame(ax) == to_hex("royalblue") for ax in axes[:, 0])
    assert [[frame(ax) for ax in row[1:]] for row in axes] == [
        [to_hex("green"), to_hex("red")], [to_hex("red"), to_hex("green")], [to_hex("red"), to_hex("green")]]
    assert [ax.get_title() for ax in axes[1]] == ["query q", "#1 b", "#2 a"]
    assert sorted(seen) == ["a", "b", "c", "q"]  # each case once; "a" of round 2 is beyond n and not drawn
    np.testing.assert_array_equal(axes[0, 1].images[0].get_array(), grey)
    assert len(axes[0, 1].collections) == 1  # the lesion outline
    assert [t.get_text() for t in axes[0, 2].texts] == ["b"]  # no thumbnail: a plain tile with the case id
    plt.close(fig)
    with pytest.raises(InvalidInput):
        result_grid_figure("q", [["a"]], [[True, False]])


def test_figures_are_written(tmp_path):
    D = np.array([[0, .2, .9], [.2, 0, .7], [.9, .7, 0]])
    assert plot_dendrograms(D, D[[0, 2, 1]][:, [0, 2, 1]], ["a", "b", "c"], tmp_path / "d.png").read_bytes()[:4] == PNG
    res = {"settings": {"s": {"interval": band([[1, .5], [1, .7]])}}}
    res["settings"]["s"]["interval"]["residual"]["mean"] = [[1, None], [1, .7]]
    assert plot_ndcg_curves(res, tmp_path / "n.png").read_bytes()[:4] == PNG
    assert plot_ndcg_curves(res, tmp_path / "r.png", residual=True).read_bytes()[:4] == PNG
    with pytest.raises(InvalidInput):
        plot_ndcg_curves(res, tmp_path / "x.png", ["missing"])
    example = {"setting": "s", "seed": 0, "queries": ["q"], "ndcg_per_query": [[[1, .5], [1, .7]]]}
    assert plot_ndcg_per_query(example, tmp_path / "p.png").read_bytes()[:4] == PNG
    assert plot_result_grid("q", [["a"], ["a"]], [[True], [True]], tmp_path / "g.png").read_bytes()[:4] == PNG


def write_slice(folder, hu, mask):
    """A NIfTI slice of ``hu`` and a 0/255 PNG of ``mask`` in ``folder``; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    nibabel.Nifti1Image(np.asarray(hu, np.float32), np.eye(4)).to_filename(folder / "image.nii")
    Image.fromarray(np.asarray(mask, np.uint8) * 255).save(folder / "mask.png")
    return "image.nii", "mask.png"


def test_lesion_thumbnail_crop_and_window(tmp_path):
    hu = np.full((64, 64), 40.0)  # the window's level: mid grey
    hu[9, 17], hu[25, 33], hu[20, 30] = -1000.0, 240.0, 140.0
    mask = np.zeros((64, 64), bool)
    mask[20:30, 30:36] = True  # 10 x 6, centre (25, 33)
    image_name, mask_name = write_slice(tmp_path / "data" / "case", hu, mask)
    # the square's side is twice the longer side of the box, but at least 32: rows 25 ± 16, columns 33 ± 16
    assert lesion_box(mask) == (9, 41, 17, 49)
    thumb = case_thumbnail(f"case/{image_name}", f"case/{mask_name}", tmp_path / "data")
    assert thumb.grey.shape == thumb.mask.shape == (32, 32)
    # W 400 / L 40: -160 HU and below -> 0, 240 HU and above -> 1, 140 HU -> 300 / 400
    assert (thumb.grey[0, 0], thumb.grey[16, 16], thumb.grey[11, 13], thumb.grey[5, 5]) == (0.0, 1.0, 0.75, 0.5)
    assert thumb.mask.sum() == 60 and thumb.mask[11:21, 13:19].all()
    corner = np.zeros((64, 64), bool)
    corner[0:4, 60:64] = True
    assert lesion_box(corner) == (0, 32, 32, 64)  # moved inside the image
    assert lesion_box(np.zeros((8, 8), bool)) is None
    # a recorded mask that is missing: the whole slice without an outline; no usable image: no thumbnail
    whole = case_thumbnail(f"case/{image_name}", "case/gone.png", tmp_path / "data")
    assert whole.grey.shape == (64, 64) and whole.mask is None
    assert case_thumbnail(None, None, tmp_path / "data") is None
    assert case_thumbnail("case/gone.nii", None, tmp_path / "data") is None
    assert case_thumbnail(f"../data/case/{image_name}", None, tmp_path / "data" / "case") is None  # outside


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


FIGURES = ("ndcg.png", "ndcg_residual.png", "ndcg_per_query.png", "dendrogram.png", "results_grid.png")


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
    for name in FIGURES:
        assert (out / name).read_bytes()[:4] == PNG
    assert f"and {', '.join(FIGURES)}" in result.output
    # the example: per query of seed 0, NDCG@1..25 after every round; the query's ranking of every round
    example = data["example"]
    assert example["setting"] == "predicted/combined/regularised" and len(example["queries"]) == 3
    assert np.array(example["ndcg_per_query"], float).shape == (3, 3, 25)
    assert len(example["rankings"]) == 3 and all(len(r) == 25 for r in example["relevant"])
    assert "ndcg_per_query" not in data["settings"]["predicted/combined/regularised"]  # only the example's
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


def test_evaluate_computes_out_of_fold_likelihoods_from_the_images(tmp_path, monkeypatch):
    import semgraph.imaging
    from semgraph.cohort import generate
    from semgraph.exchange import ingest, training

    thumbnails = []

    def spy(*args, **kwargs):
        thumbnails.append(case_thumbnail(*args, **kwargs))
        return thumbnails[-1]

    monkeypatch.setattr(semgraph.imaging, "case_thumbnail", spy)

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
    # the result grid shows the ingested CT slices, cropped around the lesion with its mask
    assert all((out / name).read_bytes()[:4] == PNG for name in FIGURES)
    shown = {example_case for ranking in data["example"]["rankings"] for example_case in ranking[:10]}
    assert len(thumbnails) == len(shown | {data["example"]["query"]})
    assert all(t is not None and t.mask is not None and t.mask.any() for t in thumbnails)
