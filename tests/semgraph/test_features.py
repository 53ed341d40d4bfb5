"""Tests of semgraph.features: Riesz/Simoncelli identities, feature invariances and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from semgraph.errors import InvalidInput
from semgraph.features import (
    FeatureConfig,
    available_extractors,
    extract,
    extract_patches,
    feature_names,
    histogram,
    histogram_edges,
    register_extractor,
    registry,
    riesz_filters,
    riesz_transform,
    riesz_wavelet_transform,
    simoncelli_filters,
)
from semgraph.features.riesz import frequency_grid
from semgraph.imaging import load_image, roi_mask

sizes = st.integers(min_value=4, max_value=40)
orders = st.integers(min_value=0, max_value=6)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
DOUBLE = FeatureConfig(precision="double")


def noise(seed, shape, mean=0.0):
    return np.random.default_rng(seed).normal(mean, 1.0, size=shape)


def disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def padded_box(box, pad=16):
    """Mirror-pad ``box`` as the pipeline documents: ``pad`` px, then an FFT-friendly size, excess split evenly."""
    from scipy.fft import next_fast_len

    def fit(n):
        m = next_fast_len(n, real=True)
        while (m - n) % 2:
            m = next_fast_len(m + 1, real=True)
        return m

    h, w = box.shape
    th, tw = fit(h + 2 * pad), fit(w + 2 * pad)
    top, left = pad + (th - h - 2 * pad) // 2, pad + (tw - w - 2 * pad) // 2
    return top, left, np.pad(box, ((top, th - h - top), (left, tw - w - left)), mode="symmetric")


def lesion_image(seed, shape=(96, 112), centre=(48, 52), radius=26):
    """Liver-like background (60 HU) with a darker textured lesion."""
    rng = np.random.default_rng(seed)
    image = 60 + 15 * rng.normal(size=shape)
    mask = disk(shape, centre, radius)
    image[mask] = 20 + 30 * rng.normal(size=mask.sum())
    return image, mask


# --- Riesz transform --------------------------------------------------------------------------------------------


@given(rows=sizes, cols=sizes, order=orders, seed=seeds, mean=st.floats(-100, 100))
@settings(max_examples=60, deadline=None)
def test_riesz_parseval_including_dc(rows, cols, order, seed, mean):
    f = noise(seed, (rows, cols), mean)
    r = riesz_transform(f, order)
    assert r.shape == (order + 1, rows, cols) and r.dtype == np.float64
    np.testing.assert_allclose((r**2).sum(), (f**2).sum(), rtol=1e-10)


@given(rows=sizes, cols=sizes, order=orders)
@settings(max_examples=40, deadline=None)
def test_riesz_filters_energy_one_and_hermitian(rows, cols, order):
    full = riesz_filters((rows, cols), order, half=False)
    np.testing.assert_allclose((np.abs(full) ** 2).sum(axis=0), 1.0, atol=1e-12)
    mirror = np.roll(full[:, ::-1, ::-1], shift=(1, 1), axis=(1, 2))  # H(-ω) on the DFT grid
    np.testing.assert_allclose(full, np.conj(mirror), atol=1e-12)
    np.testing.assert_array_equal(riesz_filters((rows, cols), order), full[:, :, : cols // 2 + 1])


@given(rows=sizes, cols=sizes, order=orders, seed=seeds)
@settings(max_examples=60, deadline=None)
def test_riesz_rot90_swaps_channel_energies(rows, cols, order, seed):
    f = noise(seed, (rows, cols))
    energy = (riesz_transform(f, order) ** 2).sum(axis=(1, 2))
    rotated = (riesz_transform(np.rot90(f), order) ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(rotated, energy[::-1], rtol=1e-9, atol=1e-12)


def test_riesz_order1_is_hilbert_pair():
    """N = 1: R_0² + R_1² = −Id on zero-mean images (docs/algorithms.md §4.2)."""
    f = noise(3, (31, 33))  # odd sizes: no Nyquist bin, where the convention keeps the outputs real instead
    f -= f.mean()
    r = riesz_transform(f, 1)
    twice = sum(riesz_transform(r[n], 1)[n] for n in range(2))
    np.testing.assert_allclose(twice, -f, atol=1e-10)


# --- Simoncelli frame -------------------------------------------------------------------------------------------


@given(rows=sizes, cols=sizes, scales=st.integers(1, 5))
@settings(max_examples=60, deadline=None)
def test_partition_of_unity(rows, cols, scales):
    with_hp = simoncelli_filters((rows, cols), scales, initial_highpass=True)
    total = (with_hp.bandpass**2).sum(axis=0) + with_hp.lowpass**2 + with_hp.highpass**2
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    without = simoncelli_filters((rows, cols), scales)
    assert without.highpass is None
    total = (without.bandpass**2).sum(axis=0) + without.lowpass**2
    w1, w2 = frequency_grid((rows, cols))
    inner = np.hypot(w1, w2) <= np.pi / 2
    np.testing.assert_allclose(total[inner], 1.0, atol=1e-12)


def test_without_highpass_the_outer_ring_loses_energy():
    frame = simoncelli_filters((64, 64), 3)
    total = (frame.bandpass**2).sum(axis=0) + frame.lowpass**2
    w1, w2 = frequency_grid((64, 64))
    outer = np.hypot(w1, w2) > np.pi / 2
    assert total[outer].min() < 0.5 and np.abs(total[outer] - 1).max() == pytest.approx(1.0)


@given(rows=st.integers(8, 40), cols=st.integers(8, 40), order=orders, scales=st.integers(1, 4), seed=seeds)
@settings(max_examples=40, deadline=None)
def test_riesz_wavelet_frame_energy(rows, cols, order, scales, seed):
    f = noise(seed, (rows, cols), 5.0)
    t = riesz_wavelet_transform(f, order, scales, initial_highpass=True)
    assert t.bandpass.shape == (scales, order + 1, rows, cols)
    total = (t.bandpass**2).sum() + (t.lowpass**2).sum() + (t.highpass**2).sum()
    np.testing.assert_allclose(total, (f**2).sum(), rtol=1e-10)


@given(rows=st.integers(8, 40), cols=st.integers(8, 40), order=orders, seed=seeds)
@settings(max_examples=40, deadline=None)
def test_riesz_wavelet_rot90_swaps_channels_per_scale(rows, cols, order, seed):
    f = noise(seed, (rows, cols))
    energy = (riesz_wavelet_transform(f, order, 3).bandpass ** 2).sum(axis=(2, 3))
    rotated = (riesz_wavelet_transform(np.rot90(f), order, 3).bandpass ** 2).sum(axis=(2, 3))
    np.testing.assert_allclose(rotated, energy[:, ::-1], rtol=1e-9, atol=1e-12)


# --- features ---------------------------------------------------------------------------------------------------


def test_default_layout():
    names = feature_names()
    assert len(names) == 28 and names[:2] == ["riesz_s0_n0", "riesz_s0_n1"] and names[19] == "riesz_s3_n4"
    assert names[20:] == [f"hist_{k}" for k in range(8)]
    np.testing.assert_allclose(histogram_edges(), np.linspace(-100, 200, 9))


@pytest.mark.parametrize(
    "config",
    [
        FeatureConfig(),
        FeatureConfig(order=1, scales=2, bins=4),
        FeatureConfig(initial_highpass=True),
        FeatureConfig(method="wavelet"),
        FeatureConfig(method="wavelet", wavelet="db2", scales=3, bins=16),
    ],
)
def test_vector_matches_names(config):
    image, mask = lesion_image(0)
    vector = extract(image, mask, config)
    assert vector.shape == (len(feature_names(config)),) and vector.dtype == np.float64
    assert np.isfinite(vector).all()
    assert vector[-config.bins :].sum() == pytest.approx(1.0)


def test_roi_energies_match_direct_transform():
    """The pipeline's energies equal the RMS of riesz_wavelet_transform on the same padded box."""
    image, mask = lesion_image(1)
    cfg = DOUBLE
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    r0, r1, c0, c1 = rows[0] - 6, rows[-1] + 7, cols[0] - 6, cols[-1] + 7
    box = image[r0:r1, c0:c1]
    h, w = box.shape
    top, left, padded = padded_box(box)
    coeffs = riesz_wavelet_transform(padded, cfg.order, cfg.scales).bandpass[:, :, top : top + h, left : left + w]
    inside = mask[r0:r1, c0:c1]
    expected = np.sqrt((coeffs[:, :, inside] ** 2).mean(axis=-1)).ravel()
    np.testing.assert_allclose(extract(image, mask, cfg)[:20], expected, rtol=1e-9)
    np.testing.assert_allclose(extract(image, mask)[:20], expected, rtol=1e-4)  # single precision


@given(seed=seeds)
@settings(max_examples=15, deadline=None)
def test_rot90_of_image_and_roi_swaps_feature_channels(seed):
    image, mask = lesion_image(seed)
    cfg = DOUBLE
    v = extract(image, mask, cfg)
    vr = extract(np.rot90(image), np.rot90(mask), cfg)
    energies = v[:20].reshape(4, 5)
    np.testing.assert_allclose(vr[:20].reshape(4, 5), energies[:, ::-1], rtol=1e-9)
    np.testing.assert_allclose(vr[20:], v[20:])


@given(seed=seeds, dy=st.integers(0, 60), dx=st.integers(0, 60), method=st.sampled_from(["riesz", "wavelet"]))
@settings(max_examples=25, deadline=None)
def test_translation_invariance(seed, dy, dx, method):
    rng = np.random.default_rng(seed)
    texture = 30 + 25 * rng.normal(size=(40, 36))
    lesion = disk((40, 36), (20, 18), 15)
    field = np.full((140, 140), 55.0)

    def place(oy, ox):
        image, mask = field.copy(), np.zeros(field.shape, bool)
        image[oy : oy + 40, ox : ox + 36] = np.where(lesion, texture, 55.0)
        mask[oy : oy + 40, ox : ox + 36] = lesion
        return image, mask

    cfg = FeatureConfig(method=method)
    a = extract(*place(20, 20), cfg)
    b = extract(*place(20 + dy, 20 + dx), cfg)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    pa, pb = extract_patches(*place(20, 20), cfg), extract_patches(*place(20 + dy, 20 + dx), cfg)
    np.testing.assert_allclose(pa.features, pb.features, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(pb.centres - pa.centres, np.broadcast_to([dy, dx], pa.centres.shape))


@given(seed=seeds, gain=st.floats(0.1, 10), offset=st.floats(-500, 500))
@settings(max_examples=20, deadline=None)
def test_energies_scale_with_contrast_and_ignore_offset(seed, gain, offset):
    image, mask = lesion_image(seed)
    a = extract(image, mask, DOUBLE)
    b = extract(gain * image + offset, mask, DOUBLE)
    np.testing.assert_allclose(b[:20], gain * a[:20], rtol=1e-8)


def test_determinism():
    image, mask = lesion_image(7)
    for cfg in (FeatureConfig(), FeatureConfig(method="wavelet")):
        first = extract(image.copy(), mask.copy(), cfg)
        from semgraph.features import riesz

        riesz._subband_filters.cache_clear()
        np.testing.assert_array_equal(first, extract(image, mask, cfg))
        p1, p2 = extract_patches(image, mask, cfg), extract_patches(image, mask, cfg)
        np.testing.assert_array_equal(p1.features, p2.features)
        np.testing.assert_array_equal(p1.kinds, p2.kinds)


def test_inputs_are_not_modified():
    image, mask = lesion_image(8)
    image0, mask0 = image.copy(), mask.copy()
    extract(image, mask)
    extract_patches(image, mask)
    np.testing.assert_array_equal(image, image0)
    np.testing.assert_array_equal(mask, mask0)


# --- patches ----------------------------------------------------------------------------------------------------


def test_patch_sampling():
    image, mask = lesion_image(2)
    cfg = DOUBLE
    patches = extract_patches(image, mask, cfg)
    assert set(patches.kinds) == {"margin", "internal"}
    assert patches.features.shape == (len(patches.kinds), 28)
    margin = patches.centres[patches.kinds == "margin"]
    internal = patches.centres[patches.kinds == "internal"]
    # margin centres lie on the contour, about `step` apart
    assert mask[margin[:, 0], margin[:, 1]].all()
    d = np.sqrt(((margin[:, None] - margin[None]) ** 2).sum(-1)) + np.eye(len(margin)) * 99
    assert d.min() >= 6 and np.median(d.min(axis=1)) < 8
    perimeter = 2 * np.pi * 26
    assert perimeter / 8 < len(margin) < perimeter / 5
    # internal patches lie entirely inside the lesion, on a 6-px grid
    for r, c in internal:
        assert mask[r - 6 : r + 6, c - 6 : c + 6].all()
    assert (np.diff(np.unique(internal[:, 0])) % 6 == 0).all()
    np.testing.assert_allclose(patches.features[:, 20:].sum(axis=1), 1.0)
    assert patches.select("internal").shape == (len(internal), 28)
    with pytest.raises(InvalidInput, match="patch kind"):
        patches.select("core")


def test_patch_energy_matches_direct_transform():
    image, mask = lesion_image(4)
    patches = extract_patches(image, mask, DOUBLE)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    r0, c0 = rows[0] - 6, cols[0] - 6
    box = image[r0 : rows[-1] + 7, c0 : cols[-1] + 7]
    h, w = box.shape
    top, left, padded = padded_box(box)
    coeffs = riesz_wavelet_transform(padded, 4, 4).bandpass
    for k in (0, len(patches.kinds) - 1):
        r, c = patches.centres[k] - (r0, c0) + (top, left) - 6
        window = coeffs[:, :, r : r + 12, c : c + 12]
        np.testing.assert_allclose(patches.features[k, :20], np.sqrt((window**2).mean(axis=(2, 3))).ravel(), rtol=1e-9)
        hu = padded[r : r + 12, c : c + 12]
        np.testing.assert_allclose(patches.features[k, 20:], histogram(hu.ravel(), 8, (-100.0, 200.0)))


def test_small_roi_has_margin_patches_only():
    image = np.full((40, 40), 40.0)
    image[10:22, 10:22] += np.random.default_rng(0).normal(size=(12, 12))
    mask = np.zeros((40, 40), bool)
    mask[10:22, 10:22] = True
    patches = extract_patches(image, mask)
    assert set(patches.kinds) == {"margin"}


def test_roi_at_image_edge_uses_mirrored_pixels():
    image, mask = lesion_image(5, shape=(64, 64), centre=(14, 14), radius=14)
    assert mask[0].any() and mask[:, 0].any()
    patches = extract_patches(image, mask)
    assert np.isfinite(patches.features).all()
    assert np.isfinite(extract(image, mask)).all()


# --- histogram --------------------------------------------------------------------------------------------------


def test_histogram_clips_into_end_bins():
    values = np.array([-1000.0, -100.0, -62.5, 0.0, 199.9, 200.0, 3000.0, 50.0])
    h = histogram(values, 8, (-100.0, 200.0))
    np.testing.assert_allclose(h * 8, [2, 1, 1, 0, 1, 0, 0, 3])


@given(values=st.lists(st.floats(-2000, 3000), min_size=1, max_size=200), bins=st.integers(1, 32))
@settings(max_examples=50, deadline=None)
def test_histogram_is_normalised(values, bins):
    h = histogram(np.array(values), bins, (-100.0, 200.0))
    assert h.shape == (bins,) and (h >= 0).all()
    assert h.sum() == pytest.approx(1.0)


# --- real data --------------------------------------------------------------------------------------------------


def test_real_ct_slice():
    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom test data not available")
    image = load_image(path)
    mask = roi_mask(image.shape, polygon=[(30, 30), (90, 35), (80, 95), (35, 85)])
    for method in available_extractors():
        vector = extract(image.hu, mask, FeatureConfig(method=method))
        assert np.isfinite(vector).all() and vector[: -8].max() > 0
    patches = extract_patches(image.hu, mask)
    assert len(patches.kinds) > 20


# --- registry ---------------------------------------------------------------------------------------------------


class GradientExtractor:
    """A test extractor: absolute finite differences along rows and columns."""

    def __init__(self, config):
        self.config = config

    def channel_names(self):
        return ["grad_rows", "grad_cols"]

    def fit_shape(self, shape):
        return shape

    def maps(self, box):
        return np.stack([np.gradient(box, axis=0), np.gradient(box, axis=1)])


def test_register_custom_extractor():
    register_extractor("gradient_test", f"{__name__}:GradientExtractor")
    try:
        cfg = FeatureConfig(method="gradient_test")
        assert feature_names(cfg)[:2] == ["grad_rows", "grad_cols"]
        image, mask = lesion_image(0)
        assert extract(image, mask, cfg).shape == (10,)
        with pytest.raises(InvalidInput, match="already registered"):
            register_extractor("gradient_test", "other.module:Class")
    finally:
        registry._EXTRACTORS.pop("gradient_test", None)


@pytest.mark.parametrize("name, target", [("bad name", "a:B"), ("ok", "no_colon"), (3, "a:B")])
def test_register_rejects_bad_entries(name, target):
    with pytest.raises(InvalidInput):
        register_extractor(name, target)


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "gabor"}, "available methods are riesz, wavelet"),
        ({"order": -1}, "order"),
        ({"order": 2.0}, "order must be an integer"),
        ({"scales": 0}, "scales"),
        ({"align": True}, "not implemented"),
        ({"initial_highpass": "yes"}, "True or False"),
        ({"patch_size": 1}, "patch_size"),
        ({"step": 0}, "step"),
        ({"bins": 0}, "bins"),
        ({"hu_range": (200, -100)}, "lo < hi"),
        ({"padding": 4}, "padding must be >= 6"),
        ({"precision": "half"}, "single, double"),
        ({"wavelet": ""}, "wavelet"),
    ],
)
def test_invalid_config(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        FeatureConfig(**kwargs)


def test_invalid_wavelet_name():
    image, mask = lesion_image(0)
    with pytest.raises(InvalidInput, match="Invalid wavelet 'nope'"):
        extract(image, mask, FeatureConfig(method="wavelet", wavelet="nope"))


@pytest.mark.parametrize("func", [extract, extract_patches])
def test_bad_inputs(func):
    image, mask = lesion_image(0)
    cases = [
        ((image.tolist(), mask), "numpy array"),
        ((image, mask.tolist()), "numpy array"),
        ((image[None], mask), "2-D"),
        ((image, mask[:-1]), "must match"),
        ((image, np.zeros_like(mask)), "empty"),
        ((image, np.pad(np.ones((8, 30), bool), ((10, 78), (10, 72)))), "smaller than one 12x12 patch"),
        ((np.where(mask, np.nan, image), mask), "NaN"),
        ((image.astype(complex), mask), "real numbers"),
        ((image, mask.astype(float)), "boolean"),
        ((np.zeros((4100, 20)), np.ones((4100, 20), bool)), "size limit"),
    ]
    for args, message in cases:
        with pytest.raises(InvalidInput, match=message):
            func(*args)
    with pytest.raises(InvalidInput, match="FeatureConfig"):
        func(image, mask, {"order": 2})


# ---------------------------------------------------------------------- single-transform path (extract_all)
from bench import legacy_features as _legacy
from semgraph.features import (
    MARGIN_FEATURE_NAMES,
    extract_all,
    margin_descriptors,
    patch_centres,
)


def _greedy_reference(mask, step):
    """The documented margin sampling, written as the plain distance loop."""
    from scipy import ndimage

    contour = mask & ~ndimage.binary_erosion(mask, ndimage.generate_binary_structure(2, 1), border_value=0)
    kept = []
    for r, c in np.argwhere(contour):
        if all((r - a) ** 2 + (c - b) ** 2 >= step**2 for a, b in kept):
            kept.append((int(r), int(c)))
    return kept


@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(12, 40), st.integers(12, 40), st.integers(-20, 20), st.integers(-20, 20),
       st.sampled_from([FeatureConfig(), DOUBLE, FeatureConfig(step=5), FeatureConfig(method="wavelet")]))
def test_extract_all_equals_the_old_two_call_path(seed, rh, rw, dy, dx, cfg):
    rng = np.random.default_rng(seed)
    image = rng.normal(40.0, 25.0, size=(96, 96))
    yy, xx = np.mgrid[:96, :96]
    mask = ((yy - 48 - dy) / rh) ** 2 + ((xx - 48 - dx) / rw) ** 2 <= 1.0
    mask &= rng.random((96, 96)) > 0.05  # ragged outline, holes
    mask[48 + dy, 48 + dx - 6 : 48 + dx + 6] = True
    mask[48 + dy - 6 : 48 + dy + 6, 48 + dx] = True
    new = extract_all(image, mask, cfg)
    np.testing.assert_allclose(new.vector, _legacy.extract(image, mask, cfg), rtol=1e-9, atol=1e-12)
    old = _legacy.extract_patches(image, mask, cfg)
    np.testing.assert_array_equal(new.patches.centres, old.centres)
    np.testing.assert_array_equal(new.patches.kinds, old.kinds)
    np.testing.assert_allclose(new.patches.features, old.features, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(extract(image, mask, cfg), new.vector, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(2, 9))
def test_margin_sampling_matches_the_distance_loop(seed, step):
    rng = np.random.default_rng(seed)
    mask = rng.random((30, 30)) > 0.3
    centres, kinds = patch_centres(mask, FeatureConfig(step=step))
    assert [tuple(c) for c in centres[kinds == "margin"]] == _greedy_reference(mask, step)


def test_margin_sampling_small_case_by_hand():
    mask = np.zeros((6, 6), dtype=bool)
    mask[1:4, 1:5] = True  # 3×4 block: every pixel but (2,2), (2,3) is on the contour
    centres, kinds = patch_centres(mask, FeatureConfig(step=2))
    # raster order (1,1) kept; (1,2) at distance 1 < 2 rejected; (1,3) kept; (1,4) rejected; (2,1) rejected
    # (distance 1 to (1,1)); (2,4) rejected (1 from (1,3)... sqrt2 < 2); (3,1) kept; (3,3) kept
    assert [tuple(c) for c in centres] == [(1, 1), (1, 3), (3, 1), (3, 3)]
    assert list(kinds) == ["margin"] * 4


def test_small_roi_falls_back_to_margin_patches_and_tiny_roi_is_an_error():
    image = noise(3, (64, 64), mean=40.0)
    mask = np.zeros((64, 64), dtype=bool)
    mask[30:36, 28:36] = True  # 6×8 = 48 px, narrower than a 12×12 patch
    with pytest.raises(InvalidInput, match="smaller than one 12x12 patch"):
        extract(image, mask)
    out = extract_all(image, mask, allow_small=True)
    assert out.small and out.vector.shape == (28,) and np.isfinite(out.vector).all()
    assert len(out.patches.features) > 0 and set(out.patches.kinds) == {"margin"}
    tiny = np.zeros((64, 64), dtype=bool)
    tiny[30:33, 30:35] = True  # 15 px
    with pytest.raises(InvalidInput, match="15 pixels"):
        extract_all(image, tiny, allow_small=True)
    assert not extract_all(image, disk((64, 64), (32, 32), 12), allow_small=True).small


def test_margin_descriptors_by_hand():
    # a 10×10 square of 100 HU in 0 HU background: convex, contour of 36 pixels, sharp edge
    image = np.zeros((40, 40))
    mask = np.zeros((40, 40), dtype=bool)
    mask[15:25, 15:25] = True
    image[mask] = 100.0
    compact, solid, rough, contrast, sharp, sd_in, sd_out = margin_descriptors(image, mask)
    assert compact == pytest.approx(4 * np.pi * 100 / 36**2)
    assert solid == pytest.approx(1.0)
    assert contrast == pytest.approx(1.0)  # (100 − 0) / 100
    assert sd_in == pytest.approx(0.0) and sd_out == pytest.approx(0.0)
    # central differences on the contour: 50 HU/px across the edge (corner pixels: hypot(50, 50))
    grad = (32 * 50.0 + 4 * np.hypot(50.0, 50.0)) / 36
    assert sharp == pytest.approx(grad / 110.0)
    assert rough > 0
    # an L shape is not convex: solidity = 75 / (100 − 12.5) for this 10×10 box minus a 5×5 corner
    mask2 = mask.copy()
    mask2[15:20, 20:25] = False
    assert margin_descriptors(image, mask2)[1] == pytest.approx(75 / 87.5)


def test_margin_features_are_appended_to_vector_and_patches():
    image = noise(5, (80, 80), mean=40.0)
    mask = disk((80, 80), (40, 40), 15)
    cfg = FeatureConfig(margin_features=True)
    names = feature_names(cfg)
    assert len(names) == 35 and names[-7:] == list(MARGIN_FEATURE_NAMES)
    out = extract_all(image, mask, cfg)
    plain = extract_all(image, mask)
    np.testing.assert_allclose(out.vector[:28], plain.vector)
    np.testing.assert_allclose(out.vector[28:], margin_descriptors(image, mask))
    assert (out.patches.features[:, 28:] == out.vector[28:]).all()
    with pytest.raises(InvalidInput, match="margin_features"):
        FeatureConfig(margin_features="yes")
