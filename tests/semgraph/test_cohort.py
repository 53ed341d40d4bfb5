"""Tests of the synthetic liver-lesion cohort (semgraph.cohort)."""

from __future__ import annotations

import collections
import hashlib
import tracemalloc
import types
import weakref
from itertools import islice
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from ontology.paper_terms import paper_terms
from semgraph.cohort import (
    PAPER_COUNTS,
    contact_sheet,
    generate,
    iter_cases,
    iter_labels,
    read_image,
    read_manifest,
    read_mask,
    split_counts,
)
from semgraph.cohort.profiles import HYPODENSE, SOFT_TISSUE, WATER
from semgraph.errors import InvalidInput

IRIS = tuple(t.iri for t in paper_terms())
SMALL = {"size": 128, "spacing": 1.4}  # same field of view as the default, 4x fewer pixels


@pytest.fixture(scope="module")
def cohort72():
    return list(iter_cases(72, seed=0))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    return generate(n=12, seed=3, out_dir=out, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- determinism --------------------------------------------------------------------------------------------------


def test_same_seed_same_arrays():
    a, b = list(iter_cases(6, seed=11, **SMALL)), list(iter_cases(6, seed=11, **SMALL))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.hu, y.hu)
        np.testing.assert_array_equal(x.mask, y.mask)
        np.testing.assert_array_equal(x.reader_labels, y.reader_labels)
        assert x.metadata == y.metadata and x.diagnosis == y.diagnosis


def test_same_seed_same_bytes(tmp_path):
    generate(n=5, seed=4, out_dir=tmp_path / "a", progress=False)
    generate(n=5, seed=4, out_dir=tmp_path / "b", progress=False)
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert fa.keys() == fb.keys() and len(fa) == 5 * 2 + 2
    assert fa == fb


def test_different_seeds_differ():
    a, b = next(iter_cases(3, seed=1, **SMALL)), next(iter_cases(3, seed=2, **SMALL))
    assert not np.array_equal(a.hu, b.hu)
    la = [tuple(c.true_labels) for c in iter_labels(50, seed=1)]
    lb = [tuple(c.true_labels) for c in iter_labels(50, seed=2)]
    assert la != lb


def test_no_two_cases_identical(cohort72):
    digests = {hashlib.sha1(c.hu.tobytes()).hexdigest() for c in cohort72}
    assert len(digests) == 72
    assert len({c.case_id for c in cohort72}) == 72
    assert len({c.metadata.sop_uid for c in cohort72}) == 72


def test_labels_do_not_depend_on_rendering():
    fast = list(iter_labels(30, seed=5))
    full = list(iter_cases(30, seed=5, **SMALL))
    for f, c in zip(fast, full):
        assert f.case_id == c.case_id and f.diagnosis == c.diagnosis
        np.testing.assert_array_equal(f.reader_labels, c.reader_labels)
        np.testing.assert_array_equal(f.true_labels, c.true_labels)


# --- cohort composition -------------------------------------------------------------------------------------------


def test_paper_counts_for_72(cohort72):
    assert collections.Counter(c.diagnosis for c in cohort72) == dict(PAPER_COUNTS)
    assert split_counts(72) == dict(PAPER_COUNTS)


@pytest.mark.parametrize("n", [1, 7, 100, 1000, 12345])
def test_counts_proportional(n):
    counts = split_counts(n)
    assert sum(counts.values()) == n
    for d, c in counts.items():
        assert abs(c - n * PAPER_COUNTS[d] / 72) < 1.0
    m = min(n, 1500)
    expected = {d: c for d, c in split_counts(m).items() if c}
    assert collections.Counter(x.diagnosis for x in iter_labels(m, 0)) == expected


def test_every_term_takes_both_values_in_200_cases():
    truth = np.stack([c.true_labels for c in iter_labels(200, seed=0)])
    reader = np.stack([c.reader_labels for c in iter_labels(200, seed=0)])
    for labels in (truth, reader):
        assert labels.shape == (200, 19)
        for j, iri in enumerate(IRIS):
            assert set(np.unique(labels[:, j])) == {0, 1}, iri


def test_mutual_exclusion_in_ground_truth():
    idx = {t.rid: j for j, t in enumerate(paper_terms())}
    truth = np.stack([c.true_labels for c in iter_labels(300, seed=9)])

    def col(rid):
        return truth[:, idx[rid]]

    assert np.all(col("RID5714") + col("RID5711") + col("RID5715") == 1)  # one contour
    assert np.all(col("RID5707") + col("RID5709") == 1)  # circumscribed xor indistinct
    assert np.all(col(WATER) + col(HYPODENSE) + col(SOFT_TISSUE) == 1)
    assert np.all(col("RID6055") + col("RID6056") == 1)  # enhancing xor nonenhancing
    assert np.all(col("RID34389") <= col("RID6055"))  # hypervascular implies enhancing
    patterns = col("RID39457") + col("RID39563") + col("RID43319")
    assert np.all(patterns == col("RID6055"))  # exactly one spatial pattern iff enhancing
    assert np.all(col("RID6060") + col("RID6059") == 1)


def test_diagnosis_is_not_a_function_of_the_terms():
    for which in ("true_labels", "reader_labels"):
        seen = collections.defaultdict(set)
        for c in iter_labels(500, seed=0):
            seen[tuple(getattr(c, which))].add(c.diagnosis)
        assert any(len(d) > 1 for d in seen.values()), which


def test_typical_appearances():
    by_dx = collections.defaultdict(list)
    for c in iter_labels(1000, seed=2, reader_noise=0.0):
        by_dx[c.diagnosis].append(c.true_labels)
    p = {d: np.mean(v, axis=0) for d, v in by_dx.items()}
    j = {t.rid: k for k, t in enumerate(paper_terms())}
    assert p["cyst"][j[WATER]] > 0.75 and p["cyst"][j["RID6056"]] > 0.8
    assert p["hemangioma"][j["RID43319"]] > 0.5
    assert p["metastasis"][j[HYPODENSE]] > 0.6 and p["metastasis"][j["RID6060"]] > 0.6
    assert p["focal nodular hyperplasia"][j["RID39563"]] > 0.5
    assert p["abscess"][j["RID5709"]] > 0.6


def test_characteristic_terms_discriminate():
    """Each diagnosis' hallmark term is most frequent in that diagnosis; the classic overlaps remain."""
    by_dx = collections.defaultdict(list)
    for c in iter_labels(1000, seed=2, reader_noise=0.0):
        by_dx[c.diagnosis].append(c.true_labels)
    p = {d: np.mean(v, axis=0) for d, v in by_dx.items()}
    t = {x.rid: k for k, x in enumerate(paper_terms())}
    hallmarks = {
        WATER: "cyst", "RID6056": "cyst",  # nonenhancing
        "RID43319": "hemangioma",  # peripheral nodular enhancement
        "RID39563": "focal nodular hyperplasia",  # homogeneous enhancement
        "RID43335": "abscess", "RID5709": "abscess",  # internal nodules, poorly-defined margin
        "RID5715": "metastasis",  # irregular margin
    }
    for rid, dx in hallmarks.items():
        others = max(p[d][t[rid]] for d in p if d != dx)
        assert p[dx][t[rid]] > others + 0.1, (rid, dx)
    assert p["abscess"][t["RID43298"]] < min(p[d][t["RID43298"]] for d in p if d != "abscess") - 0.1
    # overlaps a radiologist expects: heterogeneous enhancement in metastases and HCC alike ...
    assert p["metastasis"][t["RID39457"]] > 0.5 and p["hepatocellular carcinoma"][t["RID39457"]] > 0.5
    # ... soft tissue and hypervascular in HCC and FNH alike, hypodense in metastases and hemangiomas alike
    for rid in (SOFT_TISSUE, "RID34389"):
        assert p["hepatocellular carcinoma"][t[rid]] > 0.5 and p["focal nodular hyperplasia"][t[rid]] > 0.5
    assert p["metastasis"][t[HYPODENSE]] > 0.6 and p["hemangioma"][t[HYPODENSE]] > 0.6
    # ... and some metastases are hypodense and well circumscribed, like a cyst
    mets = np.array(by_dx["metastasis"])
    assert np.mean(mets[:, t[HYPODENSE]] * mets[:, t["RID5707"]]) > 0.2


def test_mimics_are_rare_but_present():
    from semgraph.cohort.profiles import DIAGNOSES, choose_profile

    rng = np.random.default_rng(7)
    for d in DIAGNOSES:
        drawn = collections.Counter(choose_profile(rng, d) for _ in range(20000))
        own = drawn[d] / 20000
        assert 0.88 < own < 0.995, (d, own)  # mostly its own appearance, never always
        assert set(drawn) - {d}, d


def test_reader_noise_knob():
    zero = [c for c in iter_labels(100, seed=1, reader_noise=0.0)]
    assert all(np.array_equal(c.true_labels, c.reader_labels) for c in zero)
    noisy = np.stack([c.reader_labels != c.true_labels for c in iter_labels(400, seed=1, reader_noise=0.2)])
    assert 0.17 < noisy.mean() < 0.23


# --- pixels -------------------------------------------------------------------------------------------------------


def test_pixels_and_masks(cohort72):
    for c in cohort72:
        assert c.hu.shape == (256, 256) and c.hu.dtype == np.int16
        assert c.mask.shape == c.hu.shape and c.mask.dtype == bool
        assert c.mask.sum() >= 20
        rows, cols = np.nonzero(c.mask)
        assert rows.min() > 0 and cols.min() > 0 and rows.max() < 255 and cols.max() < 255
        assert c.hu.min() >= -1024 and c.hu.max() <= 3071
        assert (c.hu < -900).any()  # air outside the body
        assert c.mask[c.metadata.centre_row, c.metadata.centre_col]


def test_rendered_attenuation_follows_term():
    means = collections.defaultdict(list)
    for c in iter_cases(200, seed=0, **SMALL):
        att = c.terms.attenuation
        means[att].append(float(c.hu[c.mask].mean()))
    water, hypo, soft = (np.mean(means[k]) for k in ("water", "hypodense", "soft tissue"))
    assert water < 30 and water < hypo < soft
    assert np.median(means["water"]) < np.median(means["hypodense"]) < np.median(means["soft tissue"])


def test_enhancement_and_uniformity_are_visible():
    stats = collections.defaultdict(list)
    for c in iter_cases(120, seed=6, **SMALL):
        inner = c.hu[c.mask].astype(float)
        if c.mask.sum() < 60:
            continue
        stats[c.terms.uniformity].append(inner.std())
        if c.terms.pattern == "peripheral nodular":
            stats["nodular_max"].append(np.percentile(inner, 98) - np.median(inner))
        if c.terms.enhancement == "none":
            stats["none_max"].append(np.percentile(inner, 98) - np.median(inner))
    assert np.median(stats["heterogeneous"]) > np.median(stats["homogeneous"])
    assert np.median(stats["nodular_max"]) > np.median(stats["none_max"])


def test_capsule_contact_touches_liver_edge():
    from scipy import ndimage

    for c in iter_cases(40, seed=8, **SMALL):
        outside = c.hu < 0  # fat / air around the liver
        near_edge = (ndimage.binary_dilation(c.mask, iterations=3) & outside).any()
        if c.terms.abuts_capsule:
            assert near_edge, c.case_id


# --- metadata -----------------------------------------------------------------------------------------------------


def test_metadata(cohort72):
    segments = {"I", "II", "III", "IV", "V", "VI", "VII", "VIII"}
    per_patient = collections.defaultdict(list)
    for c in cohort72:
        m = c.metadata
        assert m.sex in {"F", "M"} and 18 <= m.age <= 99
        assert m.liver_segment in segments
        assert m.phase in {"portal venous", "late arterial", "delayed"}
        per_patient[m.patient_id].append(c)
    assert sum(c.metadata.phase == "portal venous" for c in cohort72) > 50
    multi = [v for v in per_patient.values() if len(v) > 1]
    assert multi, "some patients should have several lesions or follow-up studies"
    for cases in multi:
        assert len({c.diagnosis for c in cases}) == 1
        dates = [c.metadata.study_date for c in cases]
        assert dates == sorted(dates)
        if len({c.metadata.study_uid for c in cases}) > 1:  # follow-up: later date, same lesion terms
            assert len(set(dates)) == len(dates)
            assert len({c.terms for c in cases}) == 1


def test_follow_ups_exist_in_a_larger_cohort():
    studies = collections.defaultdict(set)
    for c in iter_cases(150, seed=0, size=128, spacing=1.4):
        studies[c.metadata.patient_id].add((c.metadata.study_number, c.metadata.study_date))
    assert any(len(s) > 1 for s in studies.values())


# --- files --------------------------------------------------------------------------------------------------------


def test_dicom_round_trip(written):
    manifest = read_manifest(written)
    cases = {c.case_id: c for c in iter_cases(12, seed=3)}
    for rec in manifest.cases:
        case = cases[rec.case_id]
        ds = pydicom.dcmread(rec.image)
        hu = ds.pixel_array.astype(np.int32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(hu, case.hu)
        np.testing.assert_array_equal(read_image(rec.image), case.hu)
        np.testing.assert_array_equal(read_mask(rec.mask), case.mask)
        assert ds.Modality == "CT"
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert ds.SOPInstanceUID == case.metadata.sop_uid
        assert ds.StudyInstanceUID == case.metadata.study_uid
        assert ds.SeriesInstanceUID == case.metadata.series_uid
        assert ds.PatientID == rec.patient_id == case.metadata.patient_id
        assert ds.StudyDate == case.metadata.study_date.replace("-", "")
        assert ds.PatientAge == f"{case.metadata.age:03d}Y" and ds.PatientSex == case.metadata.sex
        assert [float(x) for x in ds.PixelSpacing] == [0.7, 0.7]
        assert float(ds.WindowCenter) == 40 and float(ds.WindowWidth) == 400
        assert ds.ContrastBolusAgent and case.metadata.phase in ds.SeriesDescription
        assert (ds.Rows, ds.Columns) == case.hu.shape


def test_mask_png_is_0_255(written):
    from PIL import Image

    rec = read_manifest(written).cases[0]
    with Image.open(rec.mask) as im:
        assert im.mode == "L"
        assert set(np.unique(np.asarray(im))) == {0, 255}


def test_nifti_round_trip(tmp_path):
    path = generate(n=3, seed=1, out_dir=tmp_path, image_format="nifti", progress=False)
    recs = read_manifest(path).cases
    for rec, case in zip(recs, iter_cases(3, seed=1)):
        assert rec.image.suffix == ".nii"
        np.testing.assert_array_equal(read_image(rec.image), case.hu)
        img = nib.load(str(rec.image))
        assert img.header.get_zooms()[:2] == pytest.approx((0.7, 0.7))


def test_manifest_round_trip(written):
    js = read_manifest(written)
    cs = read_manifest(written.with_suffix(".csv"))
    assert js.term_iris == cs.term_iris == IRIS
    assert js.params["n"] == 12 and js.params["seed"] == 3
    assert len(js.cases) == len(cs.cases) == 12
    for a, b, case in zip(js.cases, cs.cases, iter_cases(12, seed=3, **SMALL)):
        assert a == b
        assert a.case_id == case.case_id and a.diagnosis == case.diagnosis
        assert a.reader_labels == case.labels("reader") and a.true_labels == case.labels("true")
        assert a.image.is_file() and a.mask.is_file()
    raw = written.read_text()
    assert '"images/0000/' in raw  # stored relative to the manifest


def test_manifest_errors(tmp_path):
    with pytest.raises(InvalidInput):
        read_manifest(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(InvalidInput):
        read_manifest(bad)
    txt = tmp_path / "m.txt"
    txt.write_text("x")
    with pytest.raises(InvalidInput):
        read_manifest(txt)


@pytest.mark.slow
def test_streaming_2000_cases(tmp_path, monkeypatch):
    from semgraph.cohort import build

    it = iter_cases(2000, seed=0, **SMALL)
    assert isinstance(it, types.GeneratorType)
    alive_max = 0

    def watched(*args, **kwargs):  # yields the real cases and counts how many earlier ones are still alive
        nonlocal alive_max
        refs = []
        for case in iter_cases(*args, **kwargs):
            refs = [r for r in refs if r() is not None]
            alive_max = max(alive_max, len(refs))
            refs.append(weakref.ref(case.hu))
            yield case

    monkeypatch.setattr(build, "iter_cases", watched)
    path = generate(n=2000, seed=0, out_dir=tmp_path, progress=False, **SMALL)
    assert alive_max <= 1  # each case is written and dropped before the next is made
    assert len(list((tmp_path / "images").rglob("*.dcm"))) == 2000
    assert len(path.with_suffix(".csv").read_text().splitlines()) == 2001
    assert len(list((tmp_path / "images").iterdir())) == 2  # sharded: 1000 cases per folder


def test_streaming_memory(tmp_path):
    tracemalloc.start()
    try:
        generate(n=300, seed=0, out_dir=tmp_path, progress=False, **SMALL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak  # holding 300 slices + masks would take > 14 MB


def test_progress_bar(tmp_path, capsys):
    generate(n=2, seed=0, out_dir=tmp_path, progress=True, **SMALL)
    assert "cohort" in capsys.readouterr().err


# --- bad arguments ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, -1, 1.5, "72", True, 10**9])
def test_bad_n(n, tmp_path):
    with pytest.raises(InvalidInput):
        iter_cases(n)
    with pytest.raises(InvalidInput):
        generate(n=n, out_dir=tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_bad_format_writes_nothing(tmp_path):
    with pytest.raises(InvalidInput, match="format"):
        generate(n=2, out_dir=tmp_path / "x", image_format="png", progress=False)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "kwargs", [{"seed": -1}, {"seed": 1.0}, {"size": 16}, {"spacing": 0.0}, {"reader_noise": 0.9}]
)
def test_bad_options(kwargs):
    with pytest.raises(InvalidInput):
        iter_cases(5, **{"seed": 0, **kwargs})


def test_out_dir_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InvalidInput):
        generate(n=1, out_dir=f, progress=False)


# --- contact sheet ------------------------------------------------------------------------------------------------


def test_contact_sheet(tmp_path, cohort72):
    out = contact_sheet(tmp_path / "grid.png", islice(cohort72, 8), n=8, ncols=4, outline=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidInput):
        contact_sheet(tmp_path / "none.png", [], n=3)
