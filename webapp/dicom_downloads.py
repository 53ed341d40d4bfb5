"""A case's retrieval results as DICOM files under ``/api/v1``: the TID 1500 SR and the ROI as a SEG.

Both are built on each request by :mod:`semgraph.exchange.dicom_sr` (nothing is written to the graph or the data
folder). The SR downloaded here names the source image in its measurement group; it does not reference a SEG,
because a SEG downloaded separately is another instance (``semgraph export --dicom-sr CASE --seg`` writes an SR that
references its SEG). Any logged-in user may download; the files are API routes, so the case page links to them.
"""

from __future__ import annotations

import io

from flask import Blueprint, Response, request

from semgraph.config import DEFAULT_K
from semgraph.exchange.dicom_seg import roi_segmentation
from semgraph.exchange.dicom_source import case_source
from semgraph.exchange.dicom_sr import export_case

from .auth import login_required
from .engines import engine
from .openapi import SESSION_SECURITY, error_response, operation
from .params import check_id, parse_k
from .services import services

bp = Blueprint("dicom_downloads", __name__, url_prefix="/api/v1")

_CASE_ID = {"name": "case_id", "in": "path", "required": True, "schema": {"type": "string"}}
_DICOM = {"content": {"application/dicom": {}}}
_ERRORS = {"400": error_response("Bad case id, k, or a case whose image is not DICOM"),
           "404": error_response("Unknown case, or a case without image and mask files")}


def _dicom_file(dataset, name: str) -> Response:
    import pydicom

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return Response(buffer.getvalue(), mimetype="application/dicom",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@operation("/cases/{case_id}/dicom-sr.dcm", "get", {
    "summary": "The case as a DICOM SR (TID 1500): its RadLex terms, likelihoods, term-model version and similar cases",
    "operationId": "caseDicomSr", "security": SESSION_SECURITY,
    "parameters": [_CASE_ID, {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1},
                              "description": f"How many similar cases to reference (default {DEFAULT_K})"}],
    "responses": {"200": {"description": "A Comprehensive 3D SR object", **_DICOM}, **_ERRORS}})
@bp.route("/cases/<case_id>/dicom-sr.dcm")
@login_required
def case_sr(case_id: str):
    check_id(case_id, "case")
    svc = services()
    export = export_case(svc.store, engine(svc), svc.config.data_dir, case_id, similar=parse_k(request.args.get("k")))
    return _dicom_file(export.report, f"{case_id}-sr.dcm")


@operation("/cases/{case_id}/dicom-seg.dcm", "get", {
    "summary": "The case's region of interest as a binary DICOM Segmentation of its image",
    "operationId": "caseDicomSeg", "security": SESSION_SECURITY, "parameters": [_CASE_ID],
    "responses": {"200": {"description": "A Segmentation object", **_DICOM}, **_ERRORS}})
@bp.route("/cases/<case_id>/dicom-seg.dcm")
@login_required
def case_seg(case_id: str):
    check_id(case_id, "case")
    svc = services()
    source = case_source(svc.config.data_dir, engine(svc).case(case_id))
    return _dicom_file(roi_segmentation(source), f"{case_id}-seg.dcm")
