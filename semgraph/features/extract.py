"""ROI- and patch-level texture features: subband energies (RMS) plus a gray-level histogram.

The transform is computed once per ROI, on the lesion bounding box enlarged by half a patch (image pixels) and
mirror-padded by ``config.padding``; energies are then read inside the ROI mask or inside each 12×12 patch. A
patch is never transformed on its own (docs/algorithms.md §4.3–4.4).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from semgraph.errors import InvalidInput
from semgraph.features.config import FeatureConfig
from semgraph.features.registry import get_extractor
from semgraph.imaging._checks import check_image, check_mask

MARGIN, INTERNAL = "margin", "internal"


def _config(config) -> FeatureConfig:
    if config is None:
        return FeatureConfig()
    if not isinstance(config, FeatureConfig):
        raise InvalidInput(f"config must be a FeatureConfig or None, got {type(config).__name__}.")
    return config


def histogram_edges(config: FeatureConfig | None = None) -> np.ndarray:
    """Bin edges (bins + 1,) in HU of the gray-level histogram."""
    cfg = _config(config)
    return np.linspace(cfg.hu_range[0], cfg.hu_range[1], cfg.bins + 1)


def histogram(values, bins: int, hu_range: tuple[float, float]) -> np.ndarray:
    """Normalised gray-level histogram with out-of-range values clipped into the end bins.

    Parameters
    ----------
    values : ndarray (..., P)
        HU values; the histogram is taken over the last axis.
    bins : int
    hu_range : (float, float)

    Returns
    -------
    ndarray (..., bins) of float64
        Each row sums to 1.

    Notes
    -----
    Bin of value v: ``clip(floor(bins · (v − lo) / (hi − lo)), 0, bins − 1)``; bins are half-open except the last.
    """
    values = np.asarray(values, dtype=np.float64)
    lo, hi = hu_range
    index = np.clip(np.floor((values - lo) * (bins / (hi - lo))), 0, bins - 1).astype(np.intp)
    lead = index.shape[:-1]
    flat = index.reshape(-1, index.shape[-1])
    offsets = (np.arange(flat.shape[0]) * bins)[:, None]
    counts = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * bins).reshape(lead + (bins,))
    return counts / values.shape[-1]


def feature_names(config: FeatureConfig | None = None) -> list[str]:
    """Names of the entries of the feature vector, in order.

    Layout: first the K texture energies of the extractor, then the ``bins`` histogram bins.

    - ``riesz``: ``riesz_s{s}_n{n}`` for s = 0..J−1 (0 finest), n = 0..N (channel ``(n, N−n)``, n = power of the
      row-frequency factor), scale-major; with ``initial_highpass`` also ``riesz_hp_n{n}``. K = (N + 1)·J
      (+ N + 1); defaults N = J = 4 give K = 20.
    - ``wavelet``: ``{wavelet}_s{s}_{h|v|d}`` for s = 0..J−1; K = 3J.
    - histogram: ``hist_{k}`` for k = 0..bins−1, bin k covering ``[edges[k], edges[k+1])`` of
      :func:`histogram_edges` (defaults: 8 bins of 37.5 HU on [−100, 200]).

    - with ``margin_features``: then the 7 names of :data:`MARGIN_FEATURE_NAMES`.

    The default vector has 28 entries (35 with ``margin_features``).
    """
    cfg = _config(config)
    names = get_extractor(cfg.method)(cfg).channel_names() + [f"hist_{k}" for k in range(cfg.bins)]
    return names + list(MARGIN_FEATURE_NAMES) if cfg.margin_features else names


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


#: Smallest ROI area (pixels) :func:`extract_all` accepts when ``allow_small`` (a lesion narrower than a patch).
MIN_ROI_AREA = 16


def _contour(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask (pixels beyond the array count as outside)."""
    p = np.pad(mask, 1)
    interior = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return mask & ~interior


@functools.lru_cache(maxsize=16)
def _blocking_disk(step: int) -> np.ndarray:
    """Offsets ``(dr, dc)`` with ``dr² + dc² < step²`` as a (2R+1)² boolean stencil, R = step − 1."""
    r = np.arange(-(step - 1), step)
    disk = r[:, None] ** 2 + r[None, :] ** 2 < step**2
    disk.flags.writeable = False
    return disk


def _margin_centres(mask: np.ndarray, step: int) -> np.ndarray:
    """Greedy contour sampling of :func:`patch_centres` with an occupancy image instead of distance checks.

    A contour pixel is rejected exactly when some kept centre lies at squared distance ``< step²``; each kept
    centre stamps that disk into ``blocked``, so the test per pixel is one lookup (same result, same order).
    """
    points = np.argwhere(_contour(mask))
    disk = _blocking_disk(int(step))
    reach = disk.shape[0] // 2
    blocked = np.zeros((mask.shape[0] + 2 * reach, mask.shape[1] + 2 * reach), dtype=bool)
    kept = []
    for r, c in points.tolist():
        if not blocked[r + reach, c + reach]:
            kept.append((r, c))
            blocked[r : r + 2 * reach + 1, c : c + 2 * reach + 1] |= disk
    return np.array(kept, dtype=np.intp).reshape(-1, 2)


def _internal_centres(mask: np.ndarray, step: int, half: int) -> np.ndarray:
    """Grid points whose (2·half + 1)² square lies inside the mask (an erosion read only at the grid points)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.empty((0, 2), dtype=np.intp)
    gr, gc = np.meshgrid(np.arange(rows[0], rows[-1] + 1, step), np.arange(cols[0], cols[-1] + 1, step), indexing="ij")
    side = 2 * half + 1
    table = np.zeros((mask.shape[0] + 2 * half + 1, mask.shape[1] + 2 * half + 1), dtype=np.int64)
    table[1:, 1:] = np.pad(mask, half).cumsum(axis=0).cumsum(axis=1)
    counts = table[gr + side, gc + side] - table[gr, gc + side] - table[gr + side, gc] + table[gr, gc]
    on = counts == side * side
    return np.stack([gr[on], gc[on]], axis=1).astype(np.intp)


def _patch_sums(squares: np.ndarray, corners: np.ndarray, kinds: np.ndarray, size: int, step: int) -> np.ndarray:
    """Sums of ``squares`` (K, H, W) over the ``size``² windows with top-left ``corners`` (P, 2): (K, P).

    Internal patches sit on a grid of pitch ``step``; when ``size`` is a multiple of ``step`` their windows are
    unions of ``step``² blocks, so the blocks are summed once (one pass over the maps) and each window adds
    ``(size/step)²`` block sums. Other windows (margin patches, other sizes) are gathered and summed directly.
    """
    out = np.empty((squares.shape[0], len(corners)))
    gathered = np.ones(len(corners), dtype=bool)
    grid = np.flatnonzero(kinds == INTERNAL)
    if grid.size and size % step == 0:
        origin = corners[grid].min(axis=0)
        local = (corners[grid] - origin) // step
        n = size // step
        nb_r, nb_c = local[:, 0].max() + n, local[:, 1].max() + n
        region = squares[:, origin[0] : origin[0] + nb_r * step, origin[1] : origin[1] + nb_c * step]
        blocks = np.add.reduceat(region, np.arange(0, nb_r * step, step), axis=1)
        blocks = np.add.reduceat(blocks, np.arange(0, nb_c * step, step), axis=2)
        total = np.zeros((squares.shape[0], len(grid)))
        for i in range(n):
            for j in range(n):
                total += blocks[:, local[:, 0] + i, local[:, 1] + j]
        out[:, grid] = total
        gathered[grid] = False
    rest = np.flatnonzero(gathered)
    if rest.size:
        windows = sliding_window_view(squares, (size, size), axis=(1, 2))[:, corners[rest, 0], corners[rest, 1]]
        out[:, rest] = windows.sum(axis=(2, 3))
    return out


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
    return extract_all(image_hu, roi_mask, config, patches=False).vector


@dataclass(frozen=True)
class PatchFeatures:
    """Per-patch features of one ROI, for training term models.

    Attributes
    ----------
    features : ndarray (P, D) of float64
        One row per patch, layout of :func:`feature_names`.
    kinds : ndarray (P,) of str
        ``'margin'`` or ``'internal'``.
    centres : ndarray (P, 2) of int
        Patch centres ``(row, col)`` in image coordinates.
    """

    features: np.ndarray
    kinds: np.ndarray
    centres: np.ndarray

    def select(self, kind: str) -> np.ndarray:
        """Rows of :attr:`features` of one kind."""
        if kind not in (MARGIN, INTERNAL):
            raise InvalidInput(f"Invalid patch kind {kind!r}; choose '{MARGIN}' or '{INTERNAL}'.")
        return self.features[self.kinds == kind]


@dataclass(frozen=True)
class ROIFeatures:
    """Output of :func:`extract_all`: the ROI vector and the patch features from one transform.

    Attributes
    ----------
    vector : ndarray (D,) of float64
        ROI-level features, identical to :func:`extract`.
    patches : PatchFeatures
        Identical to :func:`extract_patches` (empty when ``patches=False`` was asked for).
    small : bool
        The ROI's bounding box is narrower than one patch (accepted with ``allow_small``): its patches are the
        margin patches only, there is no internal patch.
    """

    vector: np.ndarray
    patches: PatchFeatures
    small: bool = False


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
    cfg = _config(config)
    mask = np.asarray(mask, dtype=bool)
    margin = _margin_centres(mask, cfg.step)
    internal = _internal_centres(mask, cfg.step, cfg.patch_size // 2)
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
    return extract_all(image_hu, roi_mask, config).patches


def _check_roi(image_hu, roi_mask, cfg: FeatureConfig, allow_small: bool, min_area: int):
    image = check_image(image_hu)
    if not allow_small:
        return image, check_mask(roi_mask, image.shape, min_size=cfg.patch_size), False
    mask = check_mask(roi_mask, image.shape, min_size=1)
    area = int(np.count_nonzero(mask))
    if area < min_area:
        raise InvalidInput(f"roi_mask has {area} pixels; a region needs at least {min_area} pixels for texture "
                           "features. Draw a larger region.")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    small = min(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) < cfg.patch_size
    return image, mask, bool(small)


def extract_all(image_hu, roi_mask, config: FeatureConfig | None = None, *, patches: bool = True,
                allow_small: bool = False, min_area: int = MIN_ROI_AREA) -> ROIFeatures:
    """ROI vector and patch features from a single transform of the lesion box (the ingest path).

    Same results as :func:`extract` followed by :func:`extract_patches` (to float rounding: sums are taken in
    another order), at about the cost of one of them.

    Parameters
    ----------
    image_hu : ndarray (M, N)
    roi_mask : ndarray (M, N) of bool
    config : FeatureConfig, optional
    patches : bool, default True
        False: the ROI vector only (``patches`` of the result is empty).
    allow_small : bool, default False
        Accept an ROI whose bounding box is narrower than ``patch_size`` when it has at least ``min_area`` pixels.
        Its ROI vector is computed as for any ROI (the transformed box always extends half a patch around the
        lesion); its patches are the margin patches only (``patch_size`` squares centred on its contour, which
        cover the whole lesion and its surroundings): a small lesion has no internal patch. ``small`` is set.
    min_area : int, default 16
        Smallest accepted area in pixels with ``allow_small``.

    Returns
    -------
    ROIFeatures

    Raises
    ------
    InvalidInput
        As :func:`extract`; with ``allow_small``, an ROI of fewer than ``min_area`` pixels.

    Notes
    -----
    Speed-ups over two separate calls: one transform; float64 squares of the coefficient maps summed over the
    ROI with one matrix-vector product and over the internal patches with ``step``² block sums; patch centres
    from an occupancy image (one lookup per contour pixel); the internal-patch erosion read from an integral
    image of the mask at the grid points only.
    """
    cfg = _config(config)
    min_area = int(min_area)
    image, mask, small = _check_roi(image_hu, roi_mask, cfg, allow_small, min_area)
    box = _transform_box(image, mask, cfg)
    h, w = box.mask.shape
    top, left = box.pad
    size = cfg.patch_size
    if patches:
        centres, kinds = patch_centres(box.mask, cfg)
    else:
        centres, kinds = np.empty((0, 2), dtype=np.intp), np.empty(0, dtype="<U8")
    corners = centres - size // 2 + np.array(box.pad)
    # one region of the maps covers the ROI box and every patch window
    r0 = min(top, int(corners[:, 0].min(initial=top)))
    c0 = min(left, int(corners[:, 1].min(initial=left)))
    r1 = max(top + h, int(corners[:, 0].max(initial=top)) + size)
    c1 = max(left + w, int(corners[:, 1].max(initial=left)) + size)
    squares = box.maps[:, r0:r1, c0:c1].astype(np.float64)
    np.multiply(squares, squares, out=squares)
    K = squares.shape[0]
    inside = np.zeros((r1 - r0, c1 - c0))
    inside[top - r0 : top - r0 + h, left - c0 : left - c0 + w] = box.mask
    area = np.count_nonzero(box.mask)
    energies = np.sqrt(squares.reshape(K, -1) @ inside.ravel() / area)
    values = image[box.origin[0] : box.origin[0] + h, box.origin[1] : box.origin[1] + w][box.mask]
    vector = np.concatenate([energies, histogram(values, cfg.bins, cfg.hu_range)])
    shape = margin_descriptors(image, mask) if cfg.margin_features else np.empty(0)
    vector = np.concatenate([vector, shape])
    if len(centres) == 0:
        empty = PatchFeatures(np.empty((0, len(vector))), kinds, centres.reshape(0, 2) + np.array(box.origin))
        return ROIFeatures(vector, empty, small)
    patch_energy = np.sqrt(_patch_sums(squares, corners - (r0, c0), kinds, size, cfg.step) / (size * size)).T
    hu = sliding_window_view(box.hu, (size, size))[corners[:, 0], corners[:, 1]].reshape(len(corners), -1)
    features = np.concatenate([patch_energy, histogram(hu, cfg.bins, cfg.hu_range),
                               np.broadcast_to(shape, (len(corners), shape.size))], axis=1)
    return ROIFeatures(vector, PatchFeatures(features, kinds, centres + np.array(box.origin)), small)


#: Names of the margin/shape descriptors appended with ``FeatureConfig(margin_features=True)``.
MARGIN_FEATURE_NAMES = ("shape_compactness", "shape_solidity", "shape_roughness", "edge_contrast",
                        "edge_sharpness", "ring_in_sd", "ring_out_sd")


def margin_descriptors(image_hu, roi_mask, ring: int = 3) -> np.ndarray:
    """Margin and shape descriptors of an ROI (our addition beyond the paper; texture + shape, not in TMI 2014).

    Returns the 7 values of :data:`MARGIN_FEATURE_NAMES`:

    - ``shape_compactness``: ``4π · area / perimeter²`` (1 for a disk, less for elongated or ragged outlines),
      perimeter = number of contour pixels (4-neighbour contour of :func:`patch_centres`) — a pixel-count proxy.
    - ``shape_solidity``: area / area of the convex hull of the mask pixels' corners (1 for convex, lower for
      lobulated or irregular outlines).
    - ``shape_roughness``: sd / mean of the contour pixels' distances to the centroid.
    - ``edge_contrast``: (mean HU of the inner ring − mean HU of the outer ring) / 100; rings are ``ring`` px
      wide (square erosion / dilation).
    - ``edge_sharpness``: mean gradient magnitude (HU/px, central differences) on the contour divided by
      ``|inner − outer mean| + 10`` — high for a crisp boundary, low for an indistinct one.
    - ``ring_in_sd``, ``ring_out_sd``: HU standard deviation in the inner and outer rings / 100.
    """
    from scipy import ndimage
    from scipy.spatial import ConvexHull, QhullError

    image = np.asarray(image_hu, dtype=np.float64)
    mask = np.asarray(roi_mask, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise InvalidInput("roi_mask is empty: no pixel is inside the region of interest.")
    crop = (slice(max(rows[0] - ring - 1, 0), rows[-1] + ring + 2), slice(max(cols[0] - ring - 1, 0), cols[-1] + ring + 2))
    image, mask = image[crop], mask[crop]
    area = float(np.count_nonzero(mask))
    contour = _contour(mask)
    perimeter = float(np.count_nonzero(contour))
    compact = min(4 * np.pi * area / perimeter**2, 1.5) if perimeter else 0.0
    edge = np.argwhere(contour)  # the hull of the mask's pixel squares = the hull of its contour pixels' corners
    corners = (edge[:, None, :] + np.array([[0, 0], [0, 1], [1, 0], [1, 1]])[None]).reshape(-1, 2)
    try:
        hull = ConvexHull(corners).volume
    except QhullError:
        hull = area
    solidity = min(area / hull, 1.0) if hull > 0 else 1.0
    centroid = np.array([mask.sum(axis=1) @ np.arange(mask.shape[0]), mask.sum(axis=0) @ np.arange(mask.shape[1])]) / area
    radii = np.hypot(*(edge - centroid).T)
    rough = float(radii.std() / radii.mean()) if radii.size and radii.mean() > 0 else 0.0
    row, col = np.ones((2 * ring + 1, 1), dtype=bool), np.ones((1, 2 * ring + 1), dtype=bool)  # separable square
    inner = mask & ~ndimage.binary_erosion(ndimage.binary_erosion(mask, row, border_value=0), col, border_value=0)
    outer = ndimage.binary_dilation(ndimage.binary_dilation(mask, row), col) & ~mask
    hu_in, hu_out = image[inner], image[outer] if outer.any() else image[inner]
    diff = hu_in.mean() - hu_out.mean()
    g0, g1 = np.gradient(image)
    sharp = float(np.hypot(g0, g1)[contour].mean() / (abs(diff) + 10.0))
    return np.array([compact, solidity, rough, diff / 100.0, sharp, hu_in.std() / 100.0, hu_out.std() / 100.0])
