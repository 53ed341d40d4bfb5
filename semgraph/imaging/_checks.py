"""Shared input validators; each raises :class:`~semgraph.errors.InvalidInput` with a message a user can act on."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np

from semgraph.config import setting
from semgraph.errors import InvalidInput, NotFound

#: Largest accepted image side, in pixels (see ``max_size`` of :func:`semgraph.imaging.load_image`): the built-in
#: limit ``MAX_IMAGE_SIDE`` of :data:`semgraph.config.ALL_SETTINGS`.
DEFAULT_MAX_SIZE: int = setting("MAX_IMAGE_SIDE").default
#: Smallest accepted ROI bounding-box side, in pixels: one texture patch (docs/algorithms.md §4.4).
DEFAULT_MIN_ROI = 12
#: Most pixel or voxel data, in bytes once decompressed and decoded, that an image file may declare: 1 GiB (a NIfTI
#: volume of 512 x 512 x 1024 voxels of 32 bits; a DICOM of 128 frames of 2048 x 2048 pixels of 16 bits). It is
#: checked from the header before any pixel is inflated or decoded, so that a few megabytes of compressed zeros
#: cannot make a loader produce gigabytes (see :func:`check_data_size`).
MAX_IMAGE_BYTES = 1 << 30


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer (not a bool) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInput(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{name} must be <= {maximum}, got {value}.")
    return value


def check_real(value, name: str) -> float:
    """Return ``value`` as a finite ``float`` if it is a real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{name} must be a number, got {type(value).__name__} {value!r}.")
    value = float(value)
    if not np.isfinite(value):
        raise InvalidInput(f"{name} must be finite, got {value}.")
    return value


def check_range(value, name: str) -> tuple[float, float]:
    """Return ``(lo, hi)`` as floats if ``value`` is a pair of finite numbers with ``lo < hi``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise InvalidInput(f"{name} must be a pair (lo, hi) of numbers, got {value!r}.")
    lo, hi = check_real(value[0], f"{name}[0]"), check_real(value[1], f"{name}[1]")
    if not lo < hi:
        raise InvalidInput(f"{name} must satisfy lo < hi, got ({lo}, {hi}).")
    return lo, hi


def check_path(value, name: str = "path") -> Path:
    """Return ``value`` as a :class:`~pathlib.Path` to an existing regular file.

    Raises :class:`~semgraph.errors.NotFound` if the file does not exist.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidInput(f"{name} must be a file path (str or os.PathLike), got {type(value).__name__}.")
    path = Path(value)
    if not path.exists():
        raise NotFound(f"{name}: no such file: {str(path)!r}.")
    if not path.is_file():
        raise InvalidInput(f"{name}: {str(path)!r} is not a regular file.")
    return path


def check_shape(shape, name: str = "shape") -> tuple[int, int]:
    """Return ``shape`` as a pair of positive ints ``(rows, cols)``."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 2:
        raise InvalidInput(f"{name} must be a pair (rows, cols), got {shape!r}.")
    return check_int(shape[0], f"{name}[0]", minimum=1), check_int(shape[1], f"{name}[1]", minimum=1)


def check_size(shape: tuple[int, ...], max_size: int, what: str = "image") -> None:
    """Reject a 2-D shape whose rows or columns exceed ``max_size``."""
    if max(shape) > max_size:
        raise InvalidInput(
            f"The {what} is {shape[0]}x{shape[1]} pixels, over the size limit of {max_size}x{max_size}; "
            "crop it around the lesion or raise max_size."
        )


def check_data_size(size: int, what: str, limit: int = MAX_IMAGE_BYTES) -> None:
    """Reject ``size`` bytes of declared image data over ``limit`` (inclusive); ``what`` starts the message.

    Example message: ``scan.dcm declares 150 frames of 2048x2048 pixels: 1,258,291,200 bytes, 1.17 GiB of data,
    over the limit of 1 GiB; ...``.
    """
    if size > limit:
        raise InvalidInput(f"{what}: {size:,} bytes, {size / 2**30:.2f} GiB of data, over the limit of "
                           f"{limit / 2**30:g} GiB; keep the slices around the lesion.")


def check_image(image, name: str = "image_hu", *, max_size: int = DEFAULT_MAX_SIZE) -> np.ndarray:
    """Return ``image`` as a C-contiguous 2-D float64 array of finite values.

    Parameters
    ----------
    image : array_like (M, N)
        Real-valued image (Hounsfield units).
    """
    if not isinstance(image, np.ndarray):
        raise InvalidInput(f"{name} must be a numpy array, got {type(image).__name__}.")
    if image.ndim != 2:
        raise InvalidInput(f"{name} must be 2-D (rows, cols), got {image.ndim}-D with shape {image.shape}.")
    if image.dtype == bool or not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise InvalidInput(f"{name} must hold real numbers, got dtype {image.dtype}.")
    if image.size == 0:
        raise InvalidInput(f"{name} is empty (shape {image.shape}).")
    check_size(image.shape, max_size)
    out = np.ascontiguousarray(image, dtype=np.float64)
    if not np.isfinite(out).all():
        raise InvalidInput(f"{name} contains NaN or infinite values; fill or crop them before extracting features.")
    return out


def check_mask(mask, shape: tuple[int, int], *, min_size: int = DEFAULT_MIN_ROI, name: str = "roi_mask") -> np.ndarray:
    """Return ``mask`` as a boolean array of ``shape`` whose bounding box is at least ``min_size`` on each side.

    Parameters
    ----------
    mask : ndarray (M, N) of bool, or of integers in {0, 1}
        Region of interest.
    shape : (int, int)
        Shape ``(M, N)`` of the image the mask belongs to.
    min_size : int
        Smallest bounding-box side (one texture patch).
    """
    if not isinstance(mask, np.ndarray):
        raise InvalidInput(f"{name} must be a numpy array, got {type(mask).__name__}.")
    if mask.shape != tuple(shape):
        raise InvalidInput(f"{name} has shape {mask.shape} but the image has shape {tuple(shape)}; they must match.")
    if mask.dtype != bool:
        if not np.issubdtype(mask.dtype, np.integer) or not np.isin(mask, (0, 1)).all():
            raise InvalidInput(f"{name} must be boolean (or integers 0/1), got dtype {mask.dtype}.")
        mask = mask.astype(bool)
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0:
        raise InvalidInput(f"{name} is empty: no pixel is inside the region of interest.")
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    if height < min_size or width < min_size:
        raise InvalidInput(
            f"{name} is {height}x{width} pixels (bounding box), smaller than one {min_size}x{min_size} patch; "
            "draw a larger region."
        )
    return mask
