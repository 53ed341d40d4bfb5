"""The pixel data behind the lesion viewer (``webapp/static/viewer.js``): a slice as 16-bit Hounsfield units and
its metadata (shape, spacing, HU range, the ROI outline), for an indexed case and for an uploaded query image.

``GET …/slice`` is the JSON metadata with the URL of the data; ``GET …/slice.raw`` is the data itself: rows × cols
signed 16-bit little-endian integers, row by row, each the pixel's HU rounded to the nearest integer. A case's files
are found and bounded as for its thumbnail (:mod:`webapp.thumbnails`: only files inside the data folder, at most
``DEFAULT_MAX_SIZE`` pixels a side); an upload is visible to its owner and admins only (:func:`uploads.get_upload`).
The ROI outline is the list of pixel edges between the region and the rest, in pixel-corner coordinates, so it is
exact for a drawn rectangle or polygon and for a mask file alike.
"""

from __future__ import annotations

import numpy as np
from flask import Blueprint, Response, jsonify, request, url_for

from semgraph.errors import InvalidInput, NotFound, SemgraphError

from . import web_sessions
from .auth import login_required
from .engines import engine
from .openapi import (
    SESSION_SECURITY,
    add_schema,
    error_response,
    json_response,
    operation,
    ref,
)
from .params import check_id
from .services import services
from .thumbnails import resolve_file
from .uploads import get_upload

bp = Blueprint("viewer", __name__, url_prefix="/api/v1")

#: Most outline edges sent for one ROI (a 512 × 512 slice has at most about 525,000; a lesion has hundreds).
MAX_OUTLINE_EDGES = 200_000
_CASE_ID = {"name": "case_id", "in": "path", "required": True, "schema": {"type": "string"}}
_TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{24}$"}}
_RAW = {"description": "rows × cols int16 little-endian HU values, row by row",
        "content": {"application/octet-stream": {}}}


def roi_outline(mask: np.ndarray | None) -> dict | None:
    """``{"box": [x0, y0, x1, y1], "edges": [[x0, y0, x1, y1], …], "pixels": n}`` of a boolean mask (x = column,
    y = row; the box and edges in pixel-corner coordinates, so a one-pixel ROI at (x, y) has box [x, y, x+1, y+1]);
    None for no mask or an empty one."""
    if mask is None or not np.any(mask):
        return None
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    vertical = np.argwhere(m[1:-1, 1:] != m[1:-1, :-1])  # (row, x): an edge from (x, row) to (x, row + 1)
    horizontal = np.argwhere(m[1:, 1:-1] != m[:-1, 1:-1])  # (y, col): an edge from (col, y) to (col + 1, y)
    if len(vertical) + len(horizontal) > MAX_OUTLINE_EDGES:
        raise InvalidInput("the region's outline is too long to send")
    edges = [[int(x), int(r), int(x), int(r) + 1] for r, x in vertical]
    edges += [[int(c), int(y), int(c) + 1, int(y)] for y, c in horizontal]
    rows, cols = np.nonzero(mask)
    return {"box": [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1], "edges": edges,
            "pixels": int(rows.size)}


def slice_meta(hu: np.ndarray, spacing, spacing_known: bool, mask: np.ndarray | None, data_url: str) -> dict:
    """The metadata the viewer needs to draw ``hu`` (see the module docstring)."""
    return {"shape": list(hu.shape), "spacing": [float(s) for s in spacing], "spacing_known": bool(spacing_known),
            "hu_range": [float(np.min(hu)), float(np.max(hu))], "dtype": "int16", "byte_order": "little",
            "roi": roi_outline(mask), "data": data_url}


def slice_bytes(hu: np.ndarray) -> Response:
    """``hu`` as the raw int16 little-endian response of ``…/slice.raw``."""
    data = np.clip(np.rint(hu), -32768, 32767).astype("<i2").tobytes()
    rows, cols = hu.shape
    return Response(data, mimetype="application/octet-stream",
                    headers={"Cache-Control": "private, max-age=3600", "X-Slice-Shape": f"{rows},{cols}"})


def _case_slice(case_id: str):
    """(LoadedImage, mask or None) of an indexed case; :class:`NotFound` when it has no readable image."""
    from semgraph.imaging import load_image, mask_from_file

    check_id(case_id, "case")
    case = engine().case(case_id)
    data_dir = services().config.data_dir
    try:
        image, mask = resolve_file(case.image_file, data_dir), resolve_file(case.mask_file, data_dir)
    except InvalidInput:
        raise NotFound(f"case {case_id!r} has no image file inside the data folder") from None
    if image is None:
        raise NotFound(f"case {case_id!r} has no readable image file")
    try:
        loaded = load_image(image)
        roi = mask_from_file(mask, loaded.hu.shape) if mask is not None else None
    except (SemgraphError, OSError, ValueError) as error:
        raise NotFound(f"the image of case {case_id!r} cannot be read: {error}") from None
    return loaded, roi


def _upload_slice(token: str):
    """(LoadedImage, upload record) of an uploaded query image the current user may see."""
    from semgraph.imaging import load_image

    record, folder = get_upload(token)
    hu_range = tuple(record["hu_range"]) if record.get("hu_range") else None
    return load_image(folder / record["file"], slice_index=record.get("slice_index"), hu_range=hu_range), record


def _session_roi(session_id: str, token: str, shape) -> np.ndarray | None:
    """The region drawn on upload ``token`` in session ``session_id`` (which must query that upload)."""
    from semgraph.imaging import roi_mask

    entry = web_sessions.get_session(session_id)
    if entry.meta.get("upload") != token:
        raise InvalidInput(f"session {session_id} does not query this upload")
    roi = entry.meta.get("roi") or {}
    return roi_mask(shape, **roi) if roi else None


add_schema("SliceMeta", {
    "type": "object", "required": ["shape", "spacing", "hu_range", "dtype", "byte_order", "roi", "data"],
    "properties": {
        "shape": {"type": "array", "items": {"type": "integer"}, "description": "[rows, cols]"},
        "spacing": {"type": "array", "items": {"type": "number"}, "description": "mm between rows, between cols"},
        "spacing_known": {"type": "boolean"},
        "hu_range": {"type": "array", "items": {"type": "number"}, "description": "[lowest, highest] HU"},
        "dtype": {"const": "int16"}, "byte_order": {"const": "little"},
        "roi": {"type": ["object", "null"], "properties": {
            "box": {"type": "array", "items": {"type": "integer"}, "description": "[x0, y0, x1, y1] pixel corners"},
            "edges": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
            "pixels": {"type": "integer"}}},
        "data": {"type": "string", "description": "URL of the raw int16 data"}}})


@operation("/cases/{case_id}/slice", "get", {
    "summary": "Metadata of a case's slice for the viewer: shape, spacing, HU range, ROI outline, data URL",
    "operationId": "caseSlice", "security": SESSION_SECURITY, "parameters": [_CASE_ID],
    "responses": {"200": json_response("Slice metadata", ref("SliceMeta")),
                  "404": error_response("Unknown case, or no readable image")}})
@bp.route("/cases/<case_id>/slice")
@login_required
def case_slice(case_id: str):
    loaded, mask = _case_slice(case_id)
    return jsonify(slice_meta(loaded.hu, loaded.spacing, loaded.spacing_known, mask,
                              url_for("viewer.case_slice_raw", case_id=case_id)))


@operation("/cases/{case_id}/slice.raw", "get", {
    "summary": "A case's slice as int16 HU values", "operationId": "caseSliceRaw", "security": SESSION_SECURITY,
    "parameters": [_CASE_ID],
    "responses": {"200": _RAW, "404": error_response("Unknown case, or no readable image")}})
@bp.route("/cases/<case_id>/slice.raw")
@login_required
def case_slice_raw(case_id: str):
    loaded, _ = _case_slice(case_id)
    return slice_bytes(loaded.hu)


@operation("/uploads/{token}/slice", "get", {
    "summary": "Metadata of an uploaded query image for the viewer (its owner and admins only); with session=, the "
               "ROI drawn on it in that session",
    "operationId": "uploadSlice", "security": SESSION_SECURITY,
    "parameters": [_TOKEN, {"name": "session", "in": "query", "schema": {"type": "string"}}],
    "responses": {"200": json_response("Slice metadata", ref("SliceMeta")),
                  "400": error_response("The session does not query this upload"),
                  "403": error_response("Another user's upload"), "404": error_response("No such upload")}})
@bp.route("/uploads/<token>/slice")
@login_required
def upload_slice(token: str):
    loaded, _ = _upload_slice(token)
    session_id = request.args.get("session", "")
    mask = _session_roi(session_id, token, loaded.hu.shape) if session_id else None
    return jsonify(slice_meta(loaded.hu, loaded.spacing, loaded.spacing_known, mask,
                              url_for("viewer.upload_slice_raw", token=token)))


@operation("/uploads/{token}/slice.raw", "get", {
    "summary": "An uploaded query image as int16 HU values (its owner and admins only)",
    "operationId": "uploadSliceRaw", "security": SESSION_SECURITY, "parameters": [_TOKEN],
    "responses": {"200": _RAW, "403": error_response("Another user's upload"),
                  "404": error_response("No such upload")}})
@bp.route("/uploads/<token>/slice.raw")
@login_required
def upload_slice_raw(token: str):
    loaded, _ = _upload_slice(token)
    return slice_bytes(loaded.hu)
