"""'Query from PACS': browse the studies of the configured DICOMweb server, pick a slice, and hand it to the image
query (the region page of :mod:`webapp.radiology`, where the region is drawn and the search started).

HTML: ``/query/pacs`` lists studies (paged; ``patient``, ``date_from``, ``date_to``, ``page``) or, with ``study``,
the series of one study with a thumbnail per slice; ``POST /query/pacs/slice`` (``study``, ``series``, ``instance``)
retrieves the slice into an upload (:func:`webapp.uploads.save_upload`, with its size and content checks) and
redirects to its region page; ``POST /query/pacs/region`` (``study``, ``roi``) searches at once with the region of a
SEG, RTSTRUCT or SR object, on its slice. JSON twins: ``GET /api/v1/pacs/studies`` (same parameters, same dict),
``POST /api/v1/pacs/slice`` and ``POST /api/v1/pacs/region``. Radiologists and admins only. Without a
``dicomweb_url`` setting the page says how to set one. The PACS calls are in :mod:`semgraph.exchange.pacs_studies`.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.datastructures import FileStorage

from semgraph.errors import InvalidInput
from semgraph.exchange import pacs_studies
from semgraph.exchange.pacs import connect

from . import thumbnails, web_sessions
from .auth import current_user, login_required
from .openapi import SESSION_SECURITY, error_response, json_response, operation
from .params import iso_date, parse_k, whole_number
from .services import services
from .uploads import (
    MAX_UPLOAD_SIDE,
    get_upload,
    image_query,
    image_warnings,
    save_upload,
)

bp = Blueprint("pacs", __name__)
api_bp = Blueprint("pacs_api", __name__, url_prefix="/api/v1")

#: Studies per page of the list.
PAGE_SIZE = 20
#: Most slices of one series shown on the study page.
MAX_SLICES = 200
_SETUP = ("Set the DICOMweb root of the PACS (SEMGRAPH_DICOMWEB_URL, for example http://pacs:8042/dicom-web) "
          "and, when it asks for them, SEMGRAPH_DICOMWEB_USER and SEMGRAPH_DICOMWEB_PASSWORD; then restart "
          "semgraph serve (docs/pacs.md in the source tells more).")


def _client():
    """The DICOMweb client of the configured PACS, or None when no ``dicomweb_url`` is set."""
    config = services().config
    return connect(config) if config.dicomweb_url else None


def _arg(name: str, limit: int = 64) -> str | None:
    value = request.args.get(name, "").strip()
    if len(value) > limit:
        raise InvalidInput(f"{name} is too long (at most {limit} characters)")
    return value or None


def _study_list(client) -> dict:
    patient, since, until = _arg("patient"), _arg("date_from", 10), _arg("date_to", 10)
    page = whole_number(request.args.get("page", 1), "page", minimum=1, maximum=10_000)
    dates = (iso_date(since, "date_from") if since else None, iso_date(until, "date_to") if until else None)
    found = pacs_studies.search_studies(client, patient=patient, date_range=dates if any(dates) else None,
                                        limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    return {"configured": True, "filters": {"patient": patient, "date_from": since, "date_to": until},
            "page": page, "page_size": PAGE_SIZE, "more": len(found) > PAGE_SIZE,
            "studies": [s.as_dict() for s in found[:PAGE_SIZE]]}


def _study(client, study_uid: str) -> dict:
    series, rois = [], []
    for item in pacs_studies.list_series(client, study_uid):
        if item.modality in pacs_studies.ROI_MODALITIES:
            objects = pacs_studies.list_instances(client, study_uid, item.series_uid)
            rois.append({**item.as_dict(), "objects": [i.sop_uid for i in objects[:MAX_SLICES]]})
            continue
        instances = pacs_studies.list_instances(client, study_uid, item.series_uid)
        slices = [{**i.as_dict(), "thumbnail": url_for("pacs.thumbnail", study=study_uid, series=item.series_uid,
                                                       instance=i.sop_uid)}
                  for i in instances[:MAX_SLICES] if i.rows]
        series.append({**item.as_dict(), "slices": slices, "more_slices": len(instances) > MAX_SLICES})
    return {"configured": True, "study_uid": study_uid, "series": series, "roi_series": rois}


def pacs_view() -> dict:
    """What the 'Query from PACS' page shows for this request: the setup hint, a page of studies, or one study."""
    client = _client()
    if client is None:
        return {"configured": False, "setup": _SETUP}
    study = _arg("study")
    return _study(client, pacs_studies.check_uid(study, "study UID")) if study else _study_list(client)


def _slice_uids(values) -> tuple[str, str, str]:
    return tuple(pacs_studies.check_uid(values.get(name, ""), f"{name} UID")
                 for name in ("study", "series", "instance"))


def _configured_client():
    client = _client()
    if client is None:
        raise InvalidInput(f"no PACS is configured. {_SETUP}")
    return client


def _upload(image) -> dict:
    """A retrieved slice (a pydicom Dataset) as an upload of the current user, with the checks of any upload."""
    data = io.BytesIO()
    image.save_as(data, enforce_file_format=True)
    data.seek(0)
    storage = FileStorage(stream=data, filename=f"{image.SOPInstanceUID}.dcm", content_type="application/dicom")
    return save_upload(storage, current_user().name)


def slice_upload(values) -> dict:
    """Retrieve the slice named by ``values`` (``study``, ``series``, ``instance``) into an upload of the current
    user (refused before retrieval when over the upload size limit); returns the upload record."""
    image = pacs_studies.fetch_instance(_configured_client(), *_slice_uids(values), max_size=MAX_UPLOAD_SIDE)
    return _upload(image)


def region_session(values):
    """Search with the region of a SEG, RTSTRUCT or SR of the PACS (``values``: ``study``, ``roi`` UIDs, optional
    ``k``): its slice becomes an upload of the current user, its region the upload's mask; returns the new
    session's entry."""
    from semgraph.cohort.writers import write_mask

    study = pacs_studies.check_uid(values.get("study", ""), "study UID")
    roi_uid = pacs_studies.check_uid(values.get("roi", ""), "region object UID")
    found = pacs_studies.roi_slice(_configured_client(), study, roi_uid, max_size=MAX_UPLOAD_SIDE)
    record = _upload(found.dataset)
    _, folder = get_upload(record["token"])
    write_mask(folder / "mask.png", found.mask)
    roi = {"mask": str(folder / "mask.png")}
    user = current_user().name
    vector = image_query(record["token"], roi, user)
    return web_sessions.create_session(vector, user, k=parse_k(values.get("k")),
                                       label=f"PACS slice {record['filename']} ({found.roi_source} region)",
                                       upload=record["token"], roi=roi, warnings=image_warnings(record, roi))


# ------------------------------------------------------------------------------------------- pages

@bp.route("/query/pacs")
@login_required(role="radiologist")
def studies():
    view = pacs_view()
    return render_template("radiology/pacs.html", view=view)


@bp.route("/query/pacs/slice", methods=["POST"])
@login_required(role="radiologist")
def pick_slice():
    record = slice_upload(request.form)
    return redirect(url_for("radiology.image_region", token=record["token"]))


@bp.route("/query/pacs/region", methods=["POST"])
@login_required(role="radiologist")
def search_region():
    entry = region_session(request.form)
    return redirect(url_for("radiology.session_page", session_id=entry.id))


@bp.route("/query/pacs/thumbnail.png")
@login_required(role="radiologist")
def thumbnail():
    from semgraph.imaging import load_image

    client = _client()
    if client is None:
        raise InvalidInput(f"no PACS is configured. {_SETUP}")
    image = pacs_studies.fetch_instance(client, *_slice_uids(request.args), max_size=MAX_UPLOAD_SIDE)
    with tempfile.TemporaryDirectory(prefix="semgraph-pacs-") as folder:
        path = Path(folder) / "slice.dcm"
        image.save_as(path, enforce_file_format=True)
        png = thumbnails.render(load_image(path, max_size=MAX_UPLOAD_SIDE).hu, size=128)
    return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})


# ------------------------------------------------------------------------------------------- JSON twins

_UID_PARAM = {"in": "query", "schema": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)*$", "maxLength": 64}}


@operation("/pacs/studies", "get", {
    "summary": "Studies of the configured PACS (DICOMweb), paged and filtered; or, with study, its series and "
               "slices. Without a configured PACS: {configured: false, setup}", "operationId": "pacsStudies",
    "security": SESSION_SECURITY,
    "parameters": [{"name": "patient", "in": "query", "schema": {"type": "string", "maxLength": 64}},
                   {"name": "date_from", "in": "query", "schema": {"type": "string", "format": "date"}},
                   {"name": "date_to", "in": "query", "schema": {"type": "string", "format": "date"}},
                   {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                   {"name": "study", **_UID_PARAM}],
    "responses": {"200": json_response("Studies, or one study's series", {"type": "object", "properties": {
        "configured": {"type": "boolean"}, "studies": {"type": "array"}, "series": {"type": "array"}}}),
        "400": error_response("Bad filter"), "404": error_response("Unknown study"),
        "502": error_response("The PACS cannot be reached or refused the request")}})
@api_bp.route("/pacs/studies")
@login_required(role="radiologist")
def api_studies():
    return jsonify(pacs_view())


@operation("/pacs/slice", "post", {
    "summary": "Retrieve a slice of the PACS into an upload of the caller (as POST /query/pacs/slice does); its "
               "region page is where the region is drawn and the search started", "operationId": "pacsSlice",
    "security": SESSION_SECURITY,
    "requestBody": {"content": {"application/json": {"schema": {
        "type": "object", "required": ["study", "series", "instance"],
        "properties": {"study": {"type": "string"}, "series": {"type": "string"}, "instance": {"type": "string"}}}}}},
    "responses": {"201": json_response("The upload", {"type": "object", "properties": {
        "token": {"type": "string"}, "shape": {"type": "array"}, "region_page": {"type": "string"}}}),
        "400": error_response("Bad UID, no PACS configured, or an image over the limits"),
        "404": error_response("Unknown instance"), "502": error_response("The PACS cannot be reached")}})
@api_bp.route("/pacs/slice", methods=["POST"])
@login_required(role="radiologist")
def api_slice():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object {study, series, instance}")
    record = slice_upload(body)
    return jsonify({"token": record["token"], "filename": record["filename"], "shape": record["shape"],
                    "region_page": url_for("radiology.image_region", token=record["token"])}), 201


@operation("/pacs/region", "post", {
    "summary": "Search with the region of a SEG, RTSTRUCT or SR object of the PACS: its slice becomes an upload of "
               "the caller and a session starts (as POST /query/pacs/region does)", "operationId": "pacsRegion",
    "security": SESSION_SECURITY,
    "requestBody": {"content": {"application/json": {"schema": {
        "type": "object", "required": ["study", "roi"],
        "properties": {"study": {"type": "string"}, "roi": {"type": "string"}, "k": {"type": "integer"}}}}}},
    "responses": {"201": json_response("The new session", {"type": "object", "properties": {
        "session_id": {"type": "string"}, "session": {"type": "string"}}}),
        "400": error_response("Bad UID, no PACS configured, no region on a slice, or an image over the limits"),
        "404": error_response("Unknown study or object"), "502": error_response("The PACS cannot be reached")}})
@api_bp.route("/pacs/region", methods=["POST"])
@login_required(role="radiologist")
def api_region():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object {study, roi, k}")
    entry = region_session(body)
    return jsonify({"session_id": entry.id, "session": url_for("api_retrieval.session", session_id=entry.id)}), 201
