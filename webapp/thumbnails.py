"""PNG thumbnails of CT slices in a display window, with the region of interest outlined.

Where the files are: a case's ``sg:imageFile`` / ``sg:maskFile`` as recorded by ingest (absolute paths: the
manifest's paths resolved against its folder) or relative to the data folder. Only files inside the data folder are
read (:func:`semgraph.files.data_file`, symbolic links resolved). A case whose image or mask path points elsewhere,
or without a readable image, gets a grey placeholder (header ``X-Thumbnail: placeholder``); a recorded mask whose
file is missing gives the image without an outline. ``semgraph check`` lists the cases whose files are outside the
data folder or missing.

``crop="lesion"`` shows a square around the region of interest instead of the whole slice
(:func:`semgraph.imaging.lesion_box`: the mask's bounding box with a margin of half its longer side on every side, at least 32
pixels across), so that a small thumbnail in a list shows the lesion; without a mask the whole slice is shown.

Rendered thumbnails are cached in ``DATA_DIR/thumbnails/`` under a key made of the case id, the files' paths,
sizes and modification times, the window and the size, so a changed file gives a new thumbnail. Delete the folder
to clear the cache.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from semgraph.errors import InvalidInput, SemgraphError
from semgraph.files import data_file, write_atomically

THUMBNAILS_DIR = "thumbnails"
#: Display windows as (level, width) in HU.
WINDOWS = {"abdomen": (40.0, 400.0), "liver": (60.0, 160.0), "wide": (40.0, 1000.0)}
DEFAULT_WINDOW = "abdomen"
DEFAULT_SIZE = 192
SIZES = (96, 128, 192, 256, 384, 512)
OUTLINE = (255, 214, 0)  # the ROI outline colour (yellow)
CROPS = ("slice", "lesion")


def check_size(value) -> int:
    if value in (None, ""):
        return DEFAULT_SIZE
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"size must be one of {SIZES}, got {value!r}") from None
    if size not in SIZES:
        raise InvalidInput(f"size must be one of {', '.join(map(str, SIZES))}, got {size}")
    return size


def check_window(value) -> str:
    if value in (None, ""):
        return DEFAULT_WINDOW
    if value not in WINDOWS:
        raise InvalidInput(f"window must be one of {', '.join(WINDOWS)}, got {value!r}")
    return value


def check_crop(value) -> str:
    if value in (None, ""):
        return "slice"
    if value not in CROPS:
        raise InvalidInput(f"crop must be one of {', '.join(CROPS)}, got {value!r}")
    return value


def resolve_file(text: str | None, data_dir) -> Path | None:
    """The file inside the data folder that a recorded ``sg:imageFile``/``sg:maskFile`` path names; None when no path
    is recorded or the file does not exist; :class:`InvalidInput` when the path leads outside the data folder."""
    if not text:
        return None
    path = data_file(text, data_dir)
    return path if path.is_file() else None


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with at least one 4-neighbour outside it."""
    m = np.asarray(mask, dtype=bool)
    padded = np.pad(m, 1, constant_values=False)
    inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return m & ~inner


def render(hu: np.ndarray, mask: np.ndarray | None = None, *, size: int = DEFAULT_SIZE,
           window: str = DEFAULT_WINDOW) -> bytes:
    """A PNG of ``hu`` in ``window`` scaled to fit ``size`` × ``size``, with ``mask``'s outline drawn over it."""
    from PIL import Image

    from semgraph.imaging import apply_window

    grey = (apply_window(hu, *WINDOWS[check_window(window)]) * 255.0).astype(np.uint8)
    rows, cols = grey.shape
    scale = size / max(rows, cols)
    shape = (max(1, round(cols * scale)), max(1, round(rows * scale)))  # PIL: (width, height)
    picture = Image.fromarray(grey, mode="L").resize(shape, Image.Resampling.BILINEAR).convert("RGB")
    if mask is not None and np.any(mask):
        small = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255, mode="L").resize(
            shape, Image.Resampling.NEAREST)
        edge = outline(np.asarray(small) > 127)
        if scale > 2:  # thicken the line on strongly enlarged images
            edge = outline(np.asarray(small) > 127) | outline(_erode(np.asarray(small) > 127))
        pixels = np.asarray(picture).copy()
        pixels[edge] = OUTLINE
        picture = Image.fromarray(pixels, mode="RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _erode(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1, constant_values=False)
    return padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def placeholder(size: int = DEFAULT_SIZE) -> bytes:
    """A grey square with a diagonal cross: 'no image'."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (size, size), (60, 64, 70))
    draw = ImageDraw.Draw(picture)
    draw.line((0, 0, size, size), fill=(110, 114, 120), width=2)
    draw.line((0, size, size, 0), fill=(110, 114, 120), width=2)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _stamp(path: Path | None) -> str:
    if path is None:
        return "-"
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def _write(path: Path, data: bytes) -> None:
    write_atomically(path, lambda handle: handle.write(data))


def case_thumbnail(data_dir, case, *, size: int = DEFAULT_SIZE, window: str = DEFAULT_WINDOW,
                   crop: str = "slice") -> tuple[bytes, bool]:
    """(PNG bytes, is_placeholder) of a case's image with its ROI outline (the whole slice, or with
    ``crop="lesion"`` the square of :func:`semgraph.imaging.lesion_box`), from the cache when possible."""
    from semgraph.imaging import lesion_box, load_image, mask_from_file

    size, window, crop = check_size(size), check_window(window), check_crop(crop)
    try:
        image, mask = resolve_file(case.image_file, data_dir), resolve_file(case.mask_file, data_dir)
    except InvalidInput:  # a path outside the data folder: nothing is read
        return placeholder(size), True
    if image is None:
        return placeholder(size), True
    key = hashlib.sha256("|".join([case.case_id, _stamp(image), _stamp(mask), window, str(size), crop])
                         .encode("utf-8")).hexdigest()
    cached = Path(data_dir) / THUMBNAILS_DIR / key[:2] / f"{key}.png"
    if cached.is_file():
        return cached.read_bytes(), False
    try:
        loaded = load_image(image)
        roi = mask_from_file(mask, loaded.hu.shape) if mask is not None else None
    except (SemgraphError, OSError, ValueError):
        return placeholder(size), True
    hu = loaded.hu
    box = lesion_box(roi) if crop == "lesion" and roi is not None else None
    if box is not None:
        r0, r1, c0, c1 = box
        hu, roi = hu[r0:r1, c0:c1], roi[r0:r1, c0:c1]
    data = render(hu, roi, size=size, window=window)
    _write(cached, data)
    return data, False


def upload_preview(folder: Path, record: dict, roi: dict | None = None, *, size: int = 512,
                   window: str = DEFAULT_WINDOW) -> bytes:
    """PNG of an uploaded query image (and its ROI when given), for drawing on and for the session page."""
    from semgraph.imaging import load_image, roi_mask

    hu_range = tuple(record["hu_range"]) if record.get("hu_range") else None
    loaded = load_image(folder / record["file"], slice_index=record.get("slice_index"), hu_range=hu_range)
    mask = None
    if roi:
        try:
            mask = roi_mask(loaded.hu.shape, **roi)
        except SemgraphError:
            mask = None
    return render(loaded.hu, mask, size=size, window=window)
