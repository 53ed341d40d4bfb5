"""Thumbnails of a case's CT slice for figures: a square around the lesion, in a display window, with its mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semgraph.errors import SemgraphError
from semgraph.files import data_file
from semgraph.imaging._load import load_image
from semgraph.imaging._roi import mask_from_file

#: Liver soft-tissue display window as (level, width) in HU.
LIVER_WINDOW = (40.0, 400.0)
#: The smallest side of a lesion crop in pixels, so that a tiny lesion is not blown up into a few pixels.
MIN_CROP = 32


@dataclass(frozen=True)
class Thumbnail:
    """A crop of a CT slice: ``grey`` levels in [0, 1] and the lesion ``mask`` of the same shape (None: no mask)."""

    grey: np.ndarray
    mask: np.ndarray | None


def apply_window(hu, level: float = LIVER_WINDOW[0], width: float = LIVER_WINDOW[1]) -> np.ndarray:
    """``hu`` mapped linearly to [0, 1]: ``level − width/2`` HU and below → 0, ``level + width/2`` and above → 1."""
    return np.clip((np.asarray(hu, dtype=np.float64) - (level - width / 2.0)) / width, 0.0, 1.0)


def lesion_box(mask, *, min_side: int = MIN_CROP) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), bottom and right exclusive, of a square around the bounding box of ``mask``.

    Its side is twice the box's longer side (a margin of half of it on every side), at least ``min_side`` and at
    most the image's longer side; centred on the box, moved inside the image where it would cross an edge and then
    clipped to it. None for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = min(max(2 * max(bottom - top, right - left), min_side), max(mask.shape))

    def span(centre: int, length: int) -> tuple[int, int]:
        start = min(max(centre - side // 2, 0), max(length - side, 0))
        return int(start), int(min(start + side, length))

    (r0, r1), (c0, c1) = span((top + bottom) // 2, mask.shape[0]), span((left + right) // 2, mask.shape[1])
    return r0, r1, c0, c1


def lesion_thumbnail(image_path, mask_path=None, *, display: tuple[float, float] = LIVER_WINDOW) -> Thumbnail:
    """The :class:`Thumbnail` of a single-slice image file (DICOM or NIfTI) and its mask file: the square of
    :func:`lesion_box` (the whole slice without a mask) in the window ``display`` = (level, width).

    Raises what :func:`~semgraph.imaging.load_image` and :func:`~semgraph.imaging.mask_from_file` raise.
    """
    hu = load_image(image_path).hu
    mask = mask_from_file(mask_path, hu.shape) if mask_path is not None else None
    box = lesion_box(mask) if mask is not None else None
    if box is not None:
        r0, r1, c0, c1 = box
        hu, mask = hu[r0:r1, c0:c1], mask[r0:r1, c0:c1]
    return Thumbnail(apply_window(hu, *display), mask)


def case_thumbnail(image_file: str | None, mask_file: str | None, data_dir,
                   *, display: tuple[float, float] = LIVER_WINDOW) -> Thumbnail | None:
    """:func:`lesion_thumbnail` of a case's recorded ``sg:imageFile`` / ``sg:maskFile`` (relative to ``data_dir`` or
    absolute, inside it: :func:`semgraph.files.data_file`).

    None when no image is recorded, or it lies outside the data folder, is missing or cannot be read (a figure
    then shows a plain tile); a recorded mask whose file is missing gives the image without an outline.
    """
    if not image_file:
        return None
    try:
        image = data_file(image_file, data_dir)
        mask = data_file(mask_file, data_dir) if mask_file else None
        return lesion_thumbnail(image, mask if mask is not None and mask.is_file() else None, display=display)
    except (SemgraphError, OSError, ValueError):
        return None
