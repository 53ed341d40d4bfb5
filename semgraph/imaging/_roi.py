"""Regions of interest: a mask file, a polygon or a rectangle, turned into a boolean mask of the image's shape.

Coordinates: ``x`` is the column and ``y`` the row. Pixel ``(row r, column c)`` covers the unit square
``[c, c+1) × [r, r+1)`` and its centre is ``(c + 0.5, r + 0.5)``; the image spans ``[0, N] × [0, M]``.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.imaging._checks import (
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_ROI,
    check_int,
    check_mask,
    check_path,
    check_shape,
)
from semgraph.imaging._load import detect_format, nifti_slice, open_nifti, open_raster


def rectangle_mask(box, shape) -> np.ndarray:
    """Rasterise the half-open rectangle ``x0 <= x < x1``, ``y0 <= y < y1``.

    Parameters
    ----------
    box : (int, int, int, int)
        ``(x0, y0, x1, y1)`` in pixel units, i.e. ``mask[y0:y1, x0:x1] = True``.
    shape : (int, int)
        Image shape ``(M, N)``.

    Returns
    -------
    ndarray (M, N) of bool

    Raises
    ------
    InvalidInput
        Not four integers, empty rectangle, or a corner outside ``[0, N] × [0, M]``.
    """
    rows, cols = check_shape(shape)
    if isinstance(box, (str, bytes)) or not hasattr(box, "__len__") or len(box) != 4:
        raise InvalidInput(f"rectangle must be four integers (x0, y0, x1, y1), got {box!r}.")
    x0, y0, x1, y1 = (check_int(v, f"rectangle[{i}]") for i, v in enumerate(box))
    if x1 <= x0 or y1 <= y0:
        raise InvalidInput(f"rectangle {tuple(box)} is empty: it needs x0 < x1 and y0 < y1.")
    if x0 < 0 or y0 < 0 or x1 > cols or y1 > rows:
        raise InvalidInput(
            f"rectangle {tuple(box)} lies (partly) outside the image, which spans x in [0, {cols}] and y in [0, {rows}]."
        )
    mask = np.zeros((rows, cols), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def parse_polygon(polygon) -> np.ndarray:
    """Return polygon vertices as a float array (K, 2) of ``(x, y)``.

    ``polygon`` is a sequence of ``(x, y)`` pairs, a JSON text of ``[[x, y], ...]`` or ``{"points": [[x, y], ...]}``,
    or a path to a JSON file holding either.
    """
    if isinstance(polygon, (str, os.PathLike)):
        text = os.fspath(polygon)
        if not text.lstrip().startswith(("[", "{")):
            path = check_path(polygon, "polygon")
            text = path.read_text(encoding="utf-8", errors="replace")
        try:
            polygon = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"polygon is not valid JSON ({exc}); expected [[x, y], ...].") from exc
        if isinstance(polygon, dict):
            if "points" not in polygon:
                raise InvalidInput('polygon JSON object must have a "points" key holding [[x, y], ...].')
            polygon = polygon["points"]
    if isinstance(polygon, np.ndarray):
        polygon = polygon.tolist()
    if isinstance(polygon, (str, bytes, dict)) or not hasattr(polygon, "__len__"):
        raise InvalidInput(f"polygon must be a list of (x, y) points, got {type(polygon).__name__}.")
    points = []
    for i, point in enumerate(polygon):
        if isinstance(point, (str, bytes)) or not hasattr(point, "__len__") or len(point) != 2:
            raise InvalidInput(f"polygon point {i} must be a pair (x, y), got {point!r}.")
        for v in point:
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise InvalidInput(f"polygon point {i} must hold two finite numbers, got {point!r}.")
        points.append((float(point[0]), float(point[1])))
    if len(points) < 3:
        raise InvalidInput(f"polygon needs at least 3 points, got {len(points)}.")
    return np.asarray(points, dtype=np.float64)


def polygon_mask(polygon, shape) -> np.ndarray:
    """Rasterise a polygon: a pixel is inside when its centre is (even-odd rule).

    Parameters
    ----------
    polygon : sequence of (x, y), JSON text or JSON file path
        Vertices in pixel units (see :func:`parse_polygon`); the polygon is closed implicitly.
    shape : (int, int)
        Image shape ``(M, N)``.

    Returns
    -------
    ndarray (M, N) of bool

    Raises
    ------
    InvalidInput
        Malformed points, fewer than 3 points, or a vertex outside ``[0, N] × [0, M]``.

    Notes
    -----
    Scan-line parity test: for the centre ``y = r + 0.5`` of row ``r``, every edge with
    ``min(y_a, y_b) <= y < max(y_a, y_b)`` crosses the row at ``x* = x_a + (y − y_a)(x_b − x_a)/(y_b − y_a)``;
    pixel ``c`` is inside if an odd number of crossings satisfy ``c + 0.5 < x*``. The rectangle
    ``[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]`` with integer corners gives exactly ``mask[y0:y1, x0:x1]``.
    """
    rows, cols = check_shape(shape)
    pts = parse_polygon(polygon)
    outside = (pts[:, 0] < 0) | (pts[:, 0] > cols) | (pts[:, 1] < 0) | (pts[:, 1] > rows)
    if outside.any():
        x, y = pts[np.argmax(outside)]
        raise InvalidInput(
            f"polygon vertex ({x:g}, {y:g}) lies outside the image, which spans x in [0, {cols}] and y in [0, {rows}]."
        )
    diff = np.zeros((rows, cols + 1), dtype=np.int32)
    start, end = pts, np.roll(pts, -1, axis=0)
    for (xa, ya), (xb, yb) in zip(start, end):
        if ya == yb:
            continue
        r_first = max(math.ceil(min(ya, yb) - 0.5), 0)
        r_stop = min(math.ceil(max(ya, yb) - 0.5), rows)
        if r_first >= r_stop:
            continue
        r = np.arange(r_first, r_stop)
        x_cross = xa + (r + 0.5 - ya) * (xb - xa) / (yb - ya)
        k = np.clip(np.ceil(x_cross - 0.5), 0, cols).astype(np.intp)
        diff[r, 0] += 1
        np.subtract.at(diff, (r, k), 1)
    return (np.cumsum(diff[:, :cols], axis=1) & 1).astype(bool)


def mask_from_file(path, shape, *, slice_index: int | None = None, max_size: int = DEFAULT_MAX_SIZE) -> np.ndarray:
    """Read a mask image (PNG/TIFF or NIfTI); non-zero pixels are inside.

    Parameters
    ----------
    path : str or os.PathLike
        PNG/TIFF (any grayscale or colour mode; colour is converted to luminance first) or NIfTI (2-D or 3-D).
    shape : (int, int)
        Image shape ``(M, N)``; the mask must have the same shape (NIfTI: the first two voxel axes).
    slice_index : int, optional
        Slice of a 3-D NIfTI mask (or page of a multi-page TIFF). **Default for a 3-D NIfTI: the slice with the
        largest lesion area** (most non-zero voxels; the lowest index on a tie). Pass the index explicitly when the
        image was read from a given slice of a matching volume.

    Returns
    -------
    ndarray (M, N) of bool
    """
    rows, cols = check_shape(shape)
    path = check_path(path, "mask")
    if slice_index is not None:
        slice_index = check_int(slice_index, "slice_index", minimum=0)
    fmt = detect_format(path)
    if fmt == "nifti":
        return _nifti_mask(path, (rows, cols), slice_index, max_size)
    if fmt in ("png", "tiff"):
        im, _ = open_raster(path, slice_index, max_size)
        if im.mode in ("P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "PA"):
            im = im.convert("L")
        mask = np.asarray(im) != 0
    else:
        raise InvalidInput(f"{path.name} is not a mask file: expected PNG, TIFF or NIfTI.")
    if mask.shape != (rows, cols):
        raise _mismatch(path, mask.shape, (rows, cols))
    return mask


def _mismatch(path: Path, mask_shape: tuple[int, ...], shape: tuple[int, int]) -> InvalidInput:
    return InvalidInput(f"mask {path.name} has shape {mask_shape} but the image has shape {shape}; they must match.")


def _nifti_mask(path: Path, shape: tuple[int, int], slice_index: int | None, max_size: int) -> np.ndarray:
    """The mask in slice ``slice_index`` of a NIfTI mask, or in its slice with the most non-zero voxels.

    The shape is checked from the header, and the slices are read one at a time (never the whole volume).
    """
    with open_nifti(path, max_size) as (img, vshape):
        if tuple(vshape[:2]) != shape:
            raise _mismatch(path, tuple(vshape[:2]), shape)
        depth = vshape[2] if len(vshape) == 3 else 1
        if slice_index is not None and slice_index >= depth:
            raise InvalidInput(f"slice_index {slice_index} is out of range: {path.name} has {depth} slices.")
        best, most = None, -1
        for index in range(depth) if slice_index is None else (slice_index,):
            inside = nifti_slice(img, index, path) != 0
            count = int(inside.sum())
            if count > most:
                best, most = inside, count
        return best


def roi_mask(shape, *, mask=None, polygon=None, rectangle=None, slice_index: int | None = None,
             min_size: int = DEFAULT_MIN_ROI) -> np.ndarray:
    """Build the boolean ROI mask of an image from exactly one of a mask, a polygon or a rectangle.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(M, N)``.
    mask : ndarray (M, N) or str or os.PathLike, optional
        A boolean (or 0/1) array, or a mask file (see :func:`mask_from_file`).
    polygon : sequence of (x, y), JSON text or JSON file path, optional
        See :func:`polygon_mask`.
    rectangle : (int, int, int, int), optional
        ``(x0, y0, x1, y1)``, half-open; see :func:`rectangle_mask`.
    slice_index : int, optional
        Slice of a 3-D mask file; only with ``mask`` given as a file.
    min_size : int, default 12
        Smallest bounding-box side in pixels (one texture patch).

    Returns
    -------
    ndarray (M, N) of bool

    Raises
    ------
    InvalidInput
        Not exactly one ROI given, malformed ROI, ROI outside the image, empty ROI, ROI smaller than
        ``min_size`` × ``min_size``, or a shape that does not match the image.

    Examples
    --------
    >>> roi_mask((64, 64), rectangle=(10, 20, 40, 50)).sum()
    np.int64(900)
    """
    shape = check_shape(shape)
    min_size = check_int(min_size, "min_size", minimum=1)
    given = [name for name, v in (("mask", mask), ("polygon", polygon), ("rectangle", rectangle)) if v is not None]
    if len(given) != 1:
        raise InvalidInput(f"Give exactly one of mask, polygon or rectangle for the ROI (got {given or 'none'}).")
    if slice_index is not None and (mask is None or isinstance(mask, np.ndarray)):
        raise InvalidInput("slice_index applies only to a mask file.")
    if mask is not None:
        if not isinstance(mask, np.ndarray):
            mask = mask_from_file(mask, shape, slice_index=slice_index)
    elif polygon is not None:
        mask = polygon_mask(polygon, shape)
    else:
        mask = rectangle_mask(rectangle, shape)
    return check_mask(mask, shape, min_size=min_size)
