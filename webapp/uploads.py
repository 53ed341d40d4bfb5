"""Uploaded query images (``DATA_DIR/uploads/<token>/``), checked for size, type and content, and the query vector of
a region drawn on one.

An upload is private: only its owner and admins see the image, its token, its file name and the drawn region
(:func:`webapp.web_sessions.may_see_private`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
from pathlib import Path

import numpy as np

from semgraph.config import setting
from semgraph.errors import InvalidInput, NotFound
from semgraph.files import write_atomically

from .auth import Forbidden, current_user
from .engines import engine, term_model
from .params import parse_slice_index
from .services import Services, services
from .web_sessions import may_see_private

UPLOADS_DIR = "uploads"
#: Largest uploaded image or mask in bytes (the app's MAX_CONTENT_LENGTH bounds the whole request).
MAX_UPLOAD_BYTES = setting("MAX_UPLOAD_BYTES").default
#: Largest uploaded image side in pixels.
MAX_UPLOAD_SIDE = setting("MAX_UPLOAD_SIDE").default
#: Accepted upload file names (the content is checked too).
IMAGE_SUFFIXES = (".dcm", ".dicom", ".ima", ".nii", ".nii.gz", ".png")
MASK_SUFFIXES = (".png", ".nii", ".nii.gz", ".dcm")


class PayloadTooLarge(InvalidInput):
    """An uploaded file, or a whole request, over its size limit (413; nothing was kept)."""

    status = 413
    title = "Payload Too Large"


def megabytes(size: int) -> str:
    """``8 MB``, ``0.25 MB``: a byte limit as users read it."""
    return f"{size / (1024 * 1024):g} MB"


def _uploads(svc: Services) -> Path:
    return Path(svc.config.data_dir) / UPLOADS_DIR


def _suffix(name: str, allowed: tuple[str, ...], what: str) -> str:
    lowered = (name or "").lower()
    for suffix in sorted(allowed, key=len, reverse=True):
        if lowered.endswith(suffix):
            return suffix
    raise InvalidInput(f"the {what} {name!r} has an unsupported type; upload one of {', '.join(allowed)}")


def _save_file(storage, target: Path, limit: int, what: str) -> None:
    """Write the uploaded ``storage`` to ``target``, reading at most ``limit`` + 1 bytes of it.

    Raises :class:`InvalidInput` for an empty file and :class:`PayloadTooLarge` (413) for one over ``limit``.
    """
    data = storage.stream.read(limit + 1)
    if not data:
        raise InvalidInput(f"the {what} is empty")
    if len(data) > limit:
        raise PayloadTooLarge(f"the {what} is larger than the limit of {megabytes(limit)} per uploaded file; "
                              "nothing was kept")
    target.write_bytes(data)


def save_upload(storage, owner: str, *, hu_range=None, slice_index=None) -> dict:
    """Keep an uploaded query image (checked by loading it) under ``DATA_DIR/uploads/<token>/``; returns its record."""
    from semgraph.imaging import detect_format, load_image

    svc = services()
    if storage is None or not storage.filename:
        raise InvalidInput("choose an image file to upload (DICOM, NIfTI or PNG)")
    suffix = _suffix(storage.filename, IMAGE_SUFFIXES, "image")
    token = secrets.token_hex(12)
    folder = _uploads(svc) / token
    folder.mkdir(parents=True)
    try:
        path = folder / ("image" + suffix)
        _save_file(storage, path, MAX_UPLOAD_BYTES, "image")
        fmt = detect_format(path)
        if fmt not in ("dicom", "nifti", "png"):
            raise InvalidInput(f"{storage.filename} is not a DICOM, NIfTI or PNG image (its content looks like {fmt})")
        index = parse_slice_index(slice_index)
        if fmt == "png" and hu_range is None:
            raise InvalidInput("a PNG carries no Hounsfield units: give the HU values of its darkest and brightest "
                               "pixel (for example -160 and 240 for a W400/L40 window)")
        image = load_image(path, slice_index=index, hu_range=hu_range if fmt == "png" else None,
                           max_size=MAX_UPLOAD_SIDE)
        record = {"token": token, "owner": owner, "filename": os.path.basename(storage.filename)[:200],
                  "format": fmt, "file": path.name, "hu_range": list(hu_range) if fmt == "png" else None,
                  "slice_index": index, "shape": list(image.hu.shape),
                  "created": dt.datetime.now(dt.UTC).isoformat()}
        text = json.dumps(record, indent=1).encode("utf-8")
        write_atomically(folder / "upload.json", lambda handle: handle.write(text))
        return record
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def get_upload(token: str) -> tuple[dict, Path]:
    """(record, folder) of the upload ``token``: :class:`NotFound` if there is none, :class:`Forbidden` unless the
    current user is its owner or an admin (:func:`may_see_private`)."""
    svc = services()
    if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{24}", token):
        raise NotFound("no such upload")
    folder = _uploads(svc) / token
    meta = folder / "upload.json"
    if not meta.is_file():
        raise NotFound("no such upload (uploads are kept until the data folder is cleaned)")
    record = json.loads(meta.read_text(encoding="utf-8"))
    if not may_see_private(record.get("owner"), current_user()):
        raise Forbidden("this uploaded image belongs to another user; only its owner and admins may see it")
    return record, folder


def parse_roi(kind: str, points, mask_storage=None, folder: Path | None = None) -> dict:
    """The ROI of an uploaded image: a rectangle or polygon drawn in the browser, or an uploaded mask file."""
    if mask_storage is not None and getattr(mask_storage, "filename", ""):
        suffix = _suffix(mask_storage.filename, MASK_SUFFIXES, "mask")
        path = folder / ("mask" + suffix)
        _save_file(mask_storage, path, MAX_UPLOAD_BYTES, "mask")
        return {"mask": str(path)}
    if isinstance(points, str):
        try:
            points = json.loads(points) if points.strip() else None
        except json.JSONDecodeError:
            raise InvalidInput("the drawn region is not valid JSON") from None
    if kind == "rectangle":
        if not isinstance(points, (list, tuple)) or len(points) != 4:
            raise InvalidInput("draw a rectangle on the image (or upload a mask) first")
        try:
            x0, y0, x1, y1 = (round(float(v)) for v in points)
        except (TypeError, ValueError):
            raise InvalidInput("the rectangle must be four numbers x0, y0, x1, y1") from None
        return {"rectangle": (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))}
    if kind == "polygon":
        if not isinstance(points, (list, tuple)) or len(points) < 3:
            raise InvalidInput("draw a polygon of at least three points on the image (or upload a mask) first")
        return {"polygon": [[float(p[0]), float(p[1])] for p in points]}
    raise InvalidInput("draw a region on the image (rectangle or polygon) or upload a mask")


def image_query(token: str, roi: dict, user: str) -> np.ndarray:
    """Term likelihoods of the ROI of an uploaded image, predicted with the latest term model."""
    record, folder = get_upload(token)
    if record["owner"] != user:
        raise Forbidden("this upload belongs to another user")
    model = term_model()
    hu_range = tuple(record["hu_range"]) if record.get("hu_range") else None
    return engine().image_vector(folder / record["file"], roi, model=model, slice_index=record.get("slice_index"),
                                 hu_range=hu_range)


def image_warnings(record: dict, roi: dict) -> list[dict]:
    """Out-of-distribution warnings (:func:`semgraph.terms.ood.check_image_query`: modality, intensity, features) of the
    uploaded image ``record`` with region ``roi``, as ``{code, message}``; run after :func:`image_query`, which fails
    first on a bad image. Warnings never stop the search."""
    from semgraph.terms.ood import check_image_query

    _, folder = get_upload(record["token"])
    hu_range = tuple(record["hu_range"]) if record.get("hu_range") else None
    found = check_image_query(folder / record["file"], roi, term_model(), slice_index=record.get("slice_index"),
                              hu_range=hu_range)
    return [w.as_dict() for w in found]
