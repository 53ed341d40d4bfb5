"""Out-of-distribution checks of image queries (semgraph.terms.ood): modality, intensities, ROI features; the feature
summary saved with the term models; the CLI warning. One module-scoped data folder: a 30-case synthetic cohort
(128 px) ingested, with term models trained and the cases annotated."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import kg
import ontology
from semgraph import cohort
from semgraph.cohort import read_manifest
from semgraph.errors import InvalidInput
from semgraph.exchange import ingest, training
from semgraph.features import FeatureConfig
from semgraph.imaging import LoadedImage, load_image, rectangle_mask
from semgraph.terms import ood
from semgraph.terms.models import SingleClassTermWarning, TermModels


def _mr_small() -> str:
    from pydicom.data import get_testdata_file

    return get_testdata_file("MR_small.dcm")


def _mr_brain_nifti() -> str:
    """nibabel's test volume ``anatomical.nii``: an SPM-normalised T1 MR of a brain, 33×41×25 voxels."""
    from nibabel.testing import data_path

    return str(Path(data_path) / "anatomical.nii")


def _nifti(path: Path, hu: np.ndarray) -> Path:
    import nibabel

    nibabel.save(nibabel.Nifti1Image(hu.astype(np.float32), np.eye(4)), str(path))
    return path


def _bbox(mask_path) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(np.asarray(Image.open(mask_path)) > 0)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """(data folder, manifest records, trained model) over a 30-case cohort."""
    data_dir = tmp_path_factory.mktemp("ood-data")
    manifest = cohort.generate(n=30, size=128, out_dir=data_dir / "cohort", progress=False)
    store = kg.open_store(data_dir / "graph")
    try:
        ontology.load(store, ontology.BUNDLED_RADLEX)
        report = ingest.ingest(store, manifest, data_dir, progress=False)
        assert len(report.ingested) >= 25, report.summary()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SingleClassTermWarning)
            model, _ = training.train(store, data_dir)
        training.annotate(store, data_dir, model, progress=False)
    finally:
        store.close()
    return data_dir, read_manifest(manifest).cases, model


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Eight cases of another seed: CT lesions the model never saw."""
    out = tmp_path_factory.mktemp("ood-held-out")
    return read_manifest(cohort.generate(n=8, seed=1, size=128, out_dir=out, progress=False)).cases


# ------------------------------------------------------------------------------------------- the three checks


def test_ct_queries_from_the_cohort_give_no_warning(folder, held_out):
    _, records, model = folder
    assert model.ood_ is not None and model.ood_.n_train == len(model.training_cases_)
    for record in records[:10]:  # training lesions: in-sample distances, far below the out-of-fold threshold
        found = ood.check_image_query(record.image, {"mask": str(record.mask)}, model)
        assert found == [], (record.case_id, found)
    # lesions the model never saw: no modality or intensity warning; the feature check may flag a few (its
    # false-alarm rate is about 1 - 0.99 for a large training set, higher for 30 ROIs: 3 of 40 measured)
    codes = [[w.code for w in ood.check_image_query(r.image, {"mask": str(r.mask)}, model)] for r in held_out]
    assert all(c in ([], ["features"]) for c in codes) and sum(map(bool, codes)) <= 2, codes
    # the same HU saved as NIfTI (no modality recorded): the values alone pass as CT
    record = held_out[0]
    path = _nifti(Path(record.mask).with_name("same.nii"), load_image(record.image).hu)
    assert ood.check_image_query(path, {"mask": str(record.mask)}, model) == []


def test_mr_small_dicom_gives_a_modality_warning(folder):
    _, _, model = folder
    found = ood.check_image_query(_mr_small(), {"rectangle": (16, 16, 48, 48)}, model)
    codes = [w.code for w in found]
    assert codes[0] == "modality" and "intensity" not in codes  # the modality explains the values
    assert "DICOM MR image, not CT" in found[0].message
    assert load_image(_mr_small()).modality == "MR"
    assert ood.modality_warning("CT") is None and ood.modality_warning(None) is None


def test_mr_brain_nifti_gives_an_intensity_warning(folder):
    _, _, model = folder
    found = {w.code: w.message for w in ood.check_image_query(_mr_brain_nifti(), {"rectangle": (8, 8, 28, 28)},
                                                              model, slice_index=12)}
    assert set(found) == {"intensity", "features"}
    assert "their median is 8890" in found["intensity"] and "above 3071 HU" in found["intensity"]
    assert "does not record its modality" in found["intensity"]


def test_intensity_rule_median_and_ct_range():
    rng = np.random.default_rng(0)
    ct = rng.normal(110, 15, (64, 64))  # a crop of enhanced liver: no air, no fat, plausible HU
    assert ood.intensity_warning(LoadedImage(ct, (1.0, 1.0), True, "nifti")) is None
    shifted = LoadedImage(ct + 1024, (1.0, 1.0), True, "dicom")  # a CT stored without its rescale intercept
    assert "their median is 113" in ood.intensity_warning(shifted).message  # 110 + 1024
    hot = ct.copy()
    hot[:2] = 4000.0  # 3 % beyond the CT range, median unchanged
    assert "3.1 % of the pixels are above 3071 HU" in ood.intensity_warning(LoadedImage(hot, (1.0, 1.0), True,
                                                                                       "nifti")).message
    hot[:1] = ct[:1]  # 1.6 %
    hot[1, :40] = ct[1, :40]  # 0.9 %: a small metal artefact is tolerated
    assert ood.intensity_warning(LoadedImage(hot, (1.0, 1.0), True, "nifti")) is None
    # PNG/TIFF values are the HU range the user declared: not judged
    assert ood.intensity_warning(LoadedImage(ct + 1024, (1.0, 1.0), False, "png")) is None


def test_noise_and_constant_rois_give_a_feature_warning(folder):
    _, records, model = folder
    rng = np.random.default_rng(1)
    roi = rectangle_mask((40, 40, 80, 80), (128, 128))
    noise = rng.normal(50, 300, (128, 128))  # median 50 HU: passes the intensity check
    found = ood.check_loaded(LoadedImage(noise, (0.7, 0.7), True, "nifti"), roi, model)
    assert [w.code for w in found] == ["features"]
    assert f"threshold {model.ood_.threshold:.1f}" in found[0].message
    constant = np.full((128, 128), 50.0)  # no texture at all: energy 0, far below on the log scale
    assert "features" in [w.code for w in ood.check_loaded(LoadedImage(constant, (0.7, 0.7), True, "nifti"), roi,
                                                          model)]
    # the same ROI of a real cohort image stays below the threshold
    image = load_image(records[0].image)
    assert ood.feature_warning(model, image.hu, np.asarray(Image.open(records[0].mask)) > 0) is None


# ------------------------------------------------------------------------------------------- the summary


def test_summary_threshold_false_alarm_rate_on_gaussian_data():
    """Fresh draws of the training distribution exceed τ (the 0.99 quantile of out-of-fold distances) about 1 %
    of the time; a point 8 sd out along one axis always does."""
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 4.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, size=300)
    summary = ood.fit_feature_summary(X)
    assert summary.folds == 10 and summary.oof_quantiles["0.99"] == pytest.approx(summary.threshold)
    fresh = rng.multivariate_normal(np.zeros(3), cov, size=20000)
    rate = float(np.mean(summary.distance(fresh) > summary.threshold))
    assert 0.003 < rate < 0.03, rate
    # correlation is used: (2, -2, 0) is 2 sd out per axis but against the 0.8 correlation
    assert summary.distance([2.0, -2.0, 0.0])[0] > summary.threshold > summary.distance([2.0, 2.0, 0.0])[0]
    assert summary.distance([0.0, 0.0, 16.0])[0] > summary.threshold
    assert ood.fit_feature_summary(X[:9]) is None  # too few ROIs: no summary, the check is skipped
    with pytest.raises(InvalidInput):
        summary.distance([1.0, 2.0])


def test_log_scale_of_texture_energies():
    """With energies on the log scale a zero energy is far out; on the linear scale it is not."""
    rng = np.random.default_rng(2)
    X = np.exp(rng.normal(1.5, 0.3, (80, 4)))  # positive "energies"
    zero = np.zeros(4)
    linear = ood.fit_feature_summary(X)
    logged = ood.fit_feature_summary(X, texture_dims=[True] * 4)
    assert logged.log_dims.all() and not linear.log_dims.any()
    assert linear.distance(zero)[0] < 3 * linear.threshold < logged.distance(zero)[0]


def test_summary_is_saved_with_the_model_and_old_files_skip_the_check(folder, tmp_path):
    _, _, model = folder
    path = model.save(tmp_path / "m")
    loaded = TermModels.load(path)
    assert loaded.ood_.threshold == model.ood_.threshold
    x = np.ones((1, model.n_features_in_))
    np.testing.assert_allclose(loaded.ood_.distance(x), model.ood_.distance(x))
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["ood"]["quantile"] == ood.QUANTILE and set(meta["ood"]["oof_quantiles"]) == {"0.5", "0.9", "0.95",
                                                                                               "0.99", "1"}
    # a tampered summary is refused
    with np.load(path) as z:
        arrays = dict(z)
    arrays["ood_center"] = arrays["ood_center"] + 1.0
    np.savez(path, **arrays)
    with pytest.raises(InvalidInput, match="feature summary"):
        TermModels.load(path)
    # a model file from before the summary: no ood_ arrays, no "ood" entry; it loads and the check is skipped
    np.savez(path, **{k: v for k, v in arrays.items() if not k.startswith("ood_")})
    del meta["ood"]
    (tmp_path / "m.json").write_text(json.dumps(meta))
    old = TermModels.load(path)
    assert old.ood_ is None and old.version_ == model.version_
    noise = np.random.default_rng(1).normal(50, 300, (128, 128))
    assert ood.feature_warning(old, noise, rectangle_mask((40, 40, 80, 80), (128, 128))) is None
    assert [w.code for w in ood.check_image_query(_mr_small(), {"rectangle": (16, 16, 48, 48)}, old)] == ["modality"]


def test_small_training_sets_fit_without_a_summary():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 28)), np.tile([[1.0], [0.0]], (4, 1))
    model = TermModels(terms=["t"], Cs=(1.0,), feature_config=FeatureConfig()).fit(X, Y)
    assert model.ood_ is None and model.metadata()["ood"] is None


# ------------------------------------------------------------------------------------------- command line


def test_cli_prints_the_warning_and_still_searches(folder, monkeypatch):
    from semgraph.cli import load_commands

    data_dir, records, _ = folder
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    cli = load_commands()

    def query(*args):
        result = runner.invoke(cli, ["--data-dir", str(data_dir), "query", *args, "--k", "3", "--format", "json"],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output + result.stderr
        return json.loads(result.stdout), result.stderr

    hits, err = query("--image", _mr_small(), "--rect", "16,16,48,48")
    assert len(hits["results"]) == 3  # the search ran
    assert "warning (modality): The image is a DICOM MR image, not CT" in err
    assert "warning (features)" in err
    hits, err = query("--image", str(records[0].image), "--mask", str(records[0].mask))
    assert len(hits["results"]) == 3 and "warning" not in err
