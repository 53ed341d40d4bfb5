"""Term models: estimator conventions, calibrated likelihoods, signatures, persistence, LOPO evaluation."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput, NotFound
from semgraph.features import FeatureConfig
from semgraph.terms.calibration import platt_fit
from semgraph.terms.evaluation import lopo_auc, per_term_auc
from semgraph.terms.models import (
    SingleClassTermWarning,
    TermModels,
    paper_patch_kinds,
)

TERMS = ["http://e/t/margin-term", "http://e/t/texture-term", "http://e/t/never"]
KINDS = {TERMS[0]: "margin", TERMS[1]: "internal", TERMS[2]: "all"}


def toy(n=40, d=28, seed=0):
    """ROIs whose margin patches carry term 0 in feature 0 and internal patches carry term 1 in feature 1."""
    rng = np.random.default_rng(seed)
    Y = np.zeros((n, 3))
    Y[:, 0] = np.arange(n) % 2
    Y[:, 1] = (np.arange(n) // 2) % 2
    X = rng.normal(size=(n, d))
    X[:, 0] += 5 * Y[:, 0]
    X[:, 1] += 5 * Y[:, 1]
    patches, kinds, case = [], [], []
    for i in range(n):
        for kind in ("margin", "margin", "internal", "internal"):
            p = rng.normal(size=d)
            if kind == "margin":
                p[0] += 5 * Y[i, 0]
            else:
                p[1] += 5 * Y[i, 1]
            patches.append(p)
            kinds.append(kind)
            case.append(i)
    groups = np.arange(n) // 2  # two ROIs per patient
    return X, Y, np.array(patches), np.array(kinds), np.array(case), groups


def fitted(**params):
    X, Y, P, K, C, G = toy()
    model = TermModels(terms=TERMS, patch_kinds=KINDS, **params)
    with pytest.warns(SingleClassTermWarning, match="never"):
        out = model.fit(X, Y, patches=P, patch_kinds=K, patch_case=C, groups=G)
    assert out is model
    return model, X, Y


def test_unfitted_model_raises_not_fitted():
    with pytest.raises(NotFittedError):
        TermModels().predict_proba(np.zeros((1, 28)))
    with pytest.raises(NotFittedError):
        TermModels().save("/nonexistent/model")


def test_params_round_trip_and_clone():
    model = TermModels(terms=TERMS, Cs=(0.1, 1.0), calibration="isotonic", max_patches=100)
    params = model.get_params()
    assert params["Cs"] == (0.1, 1.0) and params["calibration"] == "isotonic" and params["max_patches"] == 100
    assert TermModels(**params).get_params() == params
    assert clone(model).get_params() == params
    with pytest.raises(TypeError):
        TermModels(TERMS)  # keyword-only


def test_likelihoods_in_unit_interval_and_learn_the_terms():
    model, X, Y = fitted()
    proba = model.predict_proba(X)
    assert proba.shape == (40, 3)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert model.kinds_ == ["margin", "internal", "constant"]
    # the learnt terms separate the training ROIs; the constant term is the Laplace prior (0 + 1) / (40 + 2)
    assert per_term_auc(Y[:, :2], proba[:, :2]).min() > 0.9
    np.testing.assert_allclose(proba[:, 2], 1 / 42)
    assert model.predict(X).shape == (40, 3)
    assert set(np.unique(model.predict(X))) <= {0, 1}


@pytest.mark.parametrize("calibration", ["platt", "isotonic"])
def test_likelihood_is_monotone_in_the_raw_score(calibration):
    model, X, _ = fitted(calibration=calibration)
    rng = np.random.default_rng(1)
    Xs = rng.normal(size=(300, X.shape[1])) * 3
    z, p = model.decision_function(Xs), model.predict_proba(Xs)
    for i in range(2):
        order = np.argsort(z[:, i])
        assert (np.diff(p[order, i]) >= -1e-12).all()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=4, max_size=40), st.integers(0, 2**31 - 1))
def test_platt_is_non_decreasing_and_bounded(scores, seed):
    scores = np.array(scores)
    labels = np.random.default_rng(seed).integers(0, 2, size=len(scores))
    labels[0], labels[1] = 0, 1
    a, b = platt_fit(scores, labels)
    assert a >= 0
    grid = np.linspace(-100, 100, 201)
    p = expit(a * grid + b)
    assert ((p >= 0) & (p <= 1)).all() and (np.diff(p) >= 0).all()


def test_platt_on_reversed_scores_is_flat():
    # scores that rank every positive below every negative: the slope is clamped at 0
    a, _ = platt_fit(np.array([3.0, 2.0, 1.0, -1.0, -2.0, -3.0]), np.array([0, 0, 0, 1, 1, 1]))
    assert a == 0.0


def test_signatures_are_unit_vectors_over_texture_dims():
    X, Y, P, K, C, G = toy()
    model = TermModels(terms=TERMS, patch_kinds=KINDS, feature_config=FeatureConfig())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingleClassTermWarning)
        model.fit(X, Y, patches=P, patch_kinds=K, patch_case=C, groups=G)
    assert model.signatures_.shape == (3, 20)  # (N + 1) J = 5 * 4 Riesz energies; histogram dropped
    np.testing.assert_allclose(np.linalg.norm(model.signatures_[:2], axis=1), 1.0)
    assert not model.signatures_[2].any()  # constant term: zero signature
    # term 0 is carried by feature 0, term 1 by feature 1
    assert np.argmax(np.abs(model.signatures_[0])) == 0
    assert np.argmax(np.abs(model.signatures_[1])) == 1


def test_save_load_round_trip(tmp_path):
    X, Y, P, K, C, G = toy()
    model = TermModels(terms=TERMS, patch_kinds=KINDS, feature_config=FeatureConfig())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingleClassTermWarning)
        model.fit(X, Y, patches=P, patch_kinds=K, patch_case=C, groups=G, case_ids=[f"c{i}" for i in range(40)])
    path = model.save(tmp_path / "m")
    assert path.name == "m.npz" and (tmp_path / "m.json").is_file()
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["version"] == model.version_ and meta["terms"] == TERMS
    assert meta["training_cases"][:2] == ["c0", "c1"] and "scikit-learn" in meta["libraries"]
    assert meta["feature_config"]["order"] == 4
    loaded = TermModels.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.signatures_, model.signatures_)
    assert loaded.version_ == model.version_ and loaded.get_params() == model.get_params()
    assert TermModels.load(tmp_path / "m.npz", feature_config=FeatureConfig()).version_ == model.version_
    with pytest.raises(InvalidInput, match="trained on features"):
        TermModels.load(tmp_path / "m", feature_config=FeatureConfig(bins=16))
    with pytest.raises(NotFound):
        TermModels.load(tmp_path / "other")
    # a sidecar that does not belong to the arrays
    meta["terms"] = list(reversed(TERMS))
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInput, match="content hash"):
        TermModels.load(tmp_path / "m")


def test_bad_input_is_rejected():
    X, Y, P, *_ = toy()
    with pytest.raises(InvalidInput, match="3 term columns"):
        TermModels().fit(X, Y)  # default vocabulary = 19 paper terms
    with pytest.raises(InvalidInput, match="calibration"):
        TermModels(terms=TERMS, calibration="sigmoid").fit(X, Y)
    with pytest.raises(InvalidInput, match="patch_case"):
        TermModels(terms=TERMS).fit(X, Y, patches=P)
    with pytest.raises(InvalidInput, match="Y must be"):
        TermModels(terms=TERMS).fit(X, Y[:5])
    model, X, _ = fitted()
    with pytest.raises(InvalidInput, match="28"):
        model.predict_proba(X[:, :5])


def test_paper_patch_kinds():
    kinds = paper_patch_kinds()
    assert len(kinds) == len(paper_terms())
    assert kinds["http://radlex.org/RID/RID5707"] == "margin"  # circumscribed margin
    assert kinds["http://radlex.org/RID/RID43327"] == "margin"  # abuts capsule of liver
    assert kinds["http://radlex.org/RID/RID6042"] == "internal"  # hypodense
    assert kinds["http://radlex.org/RID/RID6059"] == "internal"  # homogeneous


def test_per_term_auc_by_hand():
    Y = np.array([[0, 1], [0, 1], [1, 1], [1, 1]])
    S = np.array([[0.1, 0], [0.4, 0], [0.35, 0], [0.8, 0]])
    auc = per_term_auc(Y, S)
    assert auc[0] == pytest.approx(0.75)  # 3 of the 4 (positive, negative) pairs are ordered
    assert np.isnan(auc[1])  # one class only


def test_lopo_auc_out_of_fold():
    X, Y, P, K, C, G = toy()
    template = TermModels(terms=TERMS, patch_kinds=KINDS)
    res = lopo_auc(X, Y, G, patches=P, patch_kinds=K, patch_case=C, estimator=template)
    assert res.scheme == "leave-one-patient-out" and res.n_folds == 20
    assert res.likelihoods.shape == (40, 3) and np.isfinite(res.likelihoods).all()
    assert res.auc[0] > 0.8 and res.auc[1] > 0.8 and np.isnan(res.auc[2])
    assert list(res.positives) == [20, 20, 0]
    grouped = lopo_auc(X, Y, G, patches=P, patch_kinds=K, patch_case=C, estimator=template, n_splits=4)
    assert grouped.n_folds == 4 and grouped.scheme == "GroupKFold(4)"
    with pytest.raises(InvalidInput, match="n_splits"):
        lopo_auc(X, Y, G, estimator=template, n_splits=100)


# ---------------------------------------------------------------------- patch-mean ROI scores
def _toy(seed=0, n=24, per=6, d=5):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    patches = rng.normal(size=(n * per, d)) + np.repeat(y, per)[:, None] * np.array([1.5, 0, 0, 0, 0])
    case = np.repeat(np.arange(n), per)
    kinds = np.where(np.arange(n * per) % 2 == 0, "margin", "internal")
    X = rng.normal(size=(n, d))
    return X, y[:, None].astype(float), patches, kinds, case, np.arange(n) // 2


def test_patch_mean_score_is_the_mean_of_patch_decisions():
    from semgraph.terms.models import TermModels

    X, Y, P, K, case, groups = _toy()
    model = TermModels(terms=["t"], patch_kinds={"t": "margin"}, Cs=(1.0,)).fit(
        X, Y, patches=P, patch_kinds=K, patch_case=case, groups=groups)
    z = model.decision_function(X, patches=P, patch_kinds=K, patch_case=case)
    w, b = model.coef_[0], model.intercept_[0]
    for i in (0, 5, 11):
        rows = P[(case == i) & (K == "margin")]
        expected = np.mean(((rows - model.mean_) / model.scale_) @ w + b)  # by hand: mean of the patch scores
        assert z[i, 0] == pytest.approx(expected)
    # without patches (or roi_score='roi') the ROI vector is scored
    np.testing.assert_allclose(model.decision_function(X)[:, 0], ((X - model.mean_) / model.scale_) @ w + b)
    # one ROI with its patches, through likelihoods()
    sel = case == 3
    lik = model.likelihoods(X[3], P[sel], K[sel])
    assert lik["t"] == pytest.approx(model.calibrate(z[3:4])[0, 0])
    # an ROI with no patch of the term's kind falls back to its ROI vector
    only_internal = model.decision_function(X[3:4], patches=P[sel & (K == "internal")],
                                            patch_kinds=K[sel & (K == "internal")])
    assert only_internal[0, 0] == pytest.approx(((X[3] - model.mean_) / model.scale_) @ w + b)
    with pytest.raises(InvalidInput, match="roi_score"):
        TermModels(terms=["t"], roi_score="median").fit(X, Y, patches=P, patch_kinds=K, patch_case=case)


def test_patch_mean_beats_roi_vector_when_only_patches_carry_the_signal():
    from semgraph.terms.evaluation import lopo_auc
    from semgraph.terms.models import TermModels

    X, Y, P, K, case, groups = _toy(seed=1, n=40)
    est = {"terms": ["t"], "patch_kinds": {"t": "margin"}, "Cs": (1.0,)}
    a = lopo_auc(X, Y, groups, patches=P, patch_kinds=K, patch_case=case, estimator=TermModels(**est), n_splits=5)
    b = lopo_auc(X, Y, groups, patches=P, patch_kinds=K, patch_case=case,
                 estimator=TermModels(**est, roi_score="roi"), n_splits=5)
    assert a.auc_raw[0] > 0.9 and b.auc_raw[0] < 0.8  # X is pure noise here


def test_models_saved_before_roi_score_load_as_roi(tmp_path):
    import json as _json

    from semgraph.terms.models import TermModels

    X, Y, P, K, case, groups = _toy()
    model = TermModels(terms=["t"], Cs=(1.0,)).fit(X, Y, patches=P, patch_kinds=K, patch_case=case, groups=groups)
    path = model.save(tmp_path / "m")
    sidecar = path.with_suffix(".json")
    meta = _json.loads(sidecar.read_text())
    del meta["params"]["roi_score"]
    sidecar.write_text(_json.dumps(meta))
    assert TermModels.load(path).roi_score == "roi"
