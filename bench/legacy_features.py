"""The original two-call feature path (``extract`` + ``extract_patches``, each transforming the lesion box), kept
unchanged as the reference for tests and for ``bench/ingest.py`` ("old path" rows). Not part of the public API.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from semgraph.features.config import FeatureConfig
from semgraph.features.extract import (
    INTERNAL,
    MARGIN,
    PatchFeatures,
    _config,
    histogram,
)
from semgraph.features.registry import get_extractor
from semgraph.imaging._checks import check_image, check_mask


@dataclass(frozen=True)
class _Box:
    """The lesion box: padded image, its coefficient maps and where the box sits."""

    hu: np.ndarray  # (M', N') float64, padded HU
    maps: np.ndarray  # (K, M', N')
    mask: np.ndarray  # (h, w) bool, ROI inside the (unpadded) box
    origin: tuple[int, int]  # image (row, col) of box pixel (0, 0)
    pad: tuple[int, int]  # (rows, cols) of padding before the box


def _transform_box(image: np.ndarray, mask: np.ndarray, cfg: FeatureConfig) -> _Box:
    extractor = get_extractor(cfg.method)(cfg)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    half = cfg.patch_size // 2
    r0, r1 = max(rows[0] - half, 0), min(rows[-1] + half + 1, image.shape[0])
    c0, c1 = max(cols[0] - half, 0), min(cols[-1] + half + 1, image.shape[1])
    box = image[r0:r1, c0:c1]
    h, w = box.shape
    pad = cfg.padding
    target = extractor.fit_shape((h + 2 * pad, w + 2 * pad))
    extra_r, extra_c = target[0] - h - 2 * pad, target[1] - w - 2 * pad
    top, left = pad + extra_r // 2, pad + extra_c // 2
    padded = np.pad(box, ((top, target[0] - h - top), (left, target[1] - w - left)), mode="symmetric")
    dtype = np.float32 if cfg.precision == "single" else np.float64
    centred = (padded - box.mean()).astype(dtype)  # every subband ignores DC; centring helps single precision
    return _Box(padded, extractor.maps(centred), mask[r0:r1, c0:c1], (int(r0), int(c0)), (top, left))


def _rms(values: np.ndarray) -> np.ndarray:
    """Root mean square over the last axis, accumulated in float64."""
    return np.sqrt(np.einsum("...i,...i->...", values, values, dtype=np.float64) / values.shape[-1])


def extract(image_hu, roi_mask, config: FeatureConfig | None = None) -> np.ndarray:
    """ROI-level feature vector: texture energies over the whole ROI plus its gray-level histogram.

    Parameters
    ----------
    image_hu : ndarray (M, N)
        Image in Hounsfield units (e.g. :attr:`semgraph.imaging.LoadedImage.hu`).
    roi_mask : ndarray (M, N) of bool
        Lesion mask; its bounding box must be at least ``patch_size`` on each side.
    config : FeatureConfig, optional
        Defaults to ``FeatureConfig()``.

    Returns
    -------
    ndarray (D,) of float64
        Layout given by :func:`feature_names` (D = 28 by default).

    Raises
    ------
    InvalidInput
        Wrong types, non-finite values, mismatched shapes, empty or too small ROI, image over 4096 × 4096.

    Notes
    -----
    ``E_{s,n} = sqrt( mean_{p ∈ ROI} c_{s,n}(p)² )`` with ``c_{s,n} = IDFT(ψ̂_s · R̂_n · f̂)`` computed on the
    mirror-padded lesion box; the histogram is :func:`histogram` of the ROI's HU values.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(40.0, 20.0, size=(64, 64))
    >>> mask = np.zeros((64, 64), dtype=bool); mask[16:48, 16:48] = True
    >>> extract(image, mask).shape
    (28,)
    """
    cfg = _config(config)
    image = check_image(image_hu)
    mask = check_mask(roi_mask, image.shape, min_size=cfg.patch_size)
    box = _transform_box(image, mask, cfg)
    h, w = box.mask.shape
    (top, left) = box.pad
    inside = box.maps[:, top : top + h, left : left + w][:, box.mask]
    values = image[box.origin[0] : box.origin[0] + h, box.origin[1] : box.origin[1] + w][box.mask]
    return np.concatenate([_rms(inside), histogram(values, cfg.bins, cfg.hu_range)])


def patch_centres(mask: np.ndarray, config: FeatureConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centres (P, 2) and kinds (P,) of the margin and internal patches of a mask.

    Notes
    -----
    - Margin: contour pixels (mask pixels with a 4-neighbour outside the mask), visited in raster order and kept
      when at least ``step`` px (Euclidean) from every centre kept so far, i.e. about one every ``step`` px along
      the contour; the patch straddles the boundary.
    - Internal: the grid ``(r_min + step·i, c_min + step·j)`` anchored at the mask's bounding-box corner, kept
      where the mask eroded by ``patch_size // 2`` px (square structuring element) is set, so the patch lies
      inside the lesion. A small ROI may have none.
    """
    from scipy import ndimage

    cfg = _config(config)
    mask = np.asarray(mask, dtype=bool)
    contour = mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1), border_value=0)
    kept: list[tuple[int, int]] = []
    points = np.argwhere(contour)
    chosen = np.empty((len(points), 2), dtype=np.float64)
    limit = float(cfg.step) ** 2
    for r, c in points:
        n = len(kept)
        if n == 0 or (((chosen[:n] - (r, c)) ** 2).sum(axis=1) >= limit).all():
            chosen[n] = (r, c)
            kept.append((int(r), int(c)))
    margin = np.array(kept, dtype=np.intp).reshape(-1, 2)
    half = cfg.patch_size // 2
    eroded = ndimage.binary_erosion(mask, structure=np.ones((2 * half + 1,) * 2, dtype=bool), border_value=0)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    internal = np.empty((0, 2), dtype=np.intp)
    if rows.size:
        gr, gc = np.meshgrid(np.arange(rows[0], rows[-1] + 1, cfg.step), np.arange(cols[0], cols[-1] + 1, cfg.step), indexing="ij")
        on = eroded[gr, gc]
        internal = np.stack([gr[on], gc[on]], axis=1).astype(np.intp)
    kinds = np.array([MARGIN] * len(margin) + [INTERNAL] * len(internal), dtype="<U8")
    return np.concatenate([margin, internal]), kinds


def extract_patches(image_hu, roi_mask, config: FeatureConfig | None = None) -> PatchFeatures:
    """Per-patch features (energies over each patch plus its histogram) with the patch kind.

    Parameters
    ----------
    image_hu : ndarray (M, N)
    roi_mask : ndarray (M, N) of bool
    config : FeatureConfig, optional

    Returns
    -------
    PatchFeatures
        ``features`` (P, D), ``kinds`` (P,) in {'margin', 'internal'}, ``centres`` (P, 2).

    Notes
    -----
    Patch q (``patch_size`` × ``patch_size``): ``E_{s,n}(q) = sqrt( mean_{p ∈ q} c_{s,n}(p)² )``, with the maps of the
    single transform of the padded lesion box (see :func:`extract`); sampling as in :func:`patch_centres`.
    Pixels of a patch beyond the image edge are mirrored.
    """
    cfg = _config(config)
    image = check_image(image_hu)
    mask = check_mask(roi_mask, image.shape, min_size=cfg.patch_size)
    box = _transform_box(image, mask, cfg)
    centres, kinds = patch_centres(box.mask, cfg)
    top = centres - cfg.patch_size // 2 + np.array(box.pad)
    size = (cfg.patch_size, cfg.patch_size)
    windows = sliding_window_view(box.maps, size, axis=(1, 2))[:, top[:, 0], top[:, 1]]
    energies = _rms(windows.reshape(windows.shape[0], windows.shape[1], -1)).T
    hu = sliding_window_view(box.hu, size)[top[:, 0], top[:, 1]].reshape(len(top), -1)
    features = np.concatenate([energies, histogram(hu, cfg.bins, cfg.hu_range)], axis=1)
    return PatchFeatures(features, kinds, centres + np.array(box.origin))
