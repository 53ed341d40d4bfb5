"""JSON API of the radiologists' pages under ``/api/v1``: cases, searches, sessions with feedback rounds,
dendrograms, thumbnails and background jobs (all described in the OpenAPI document).

Reads need a login; writes (sessions, rounds, uploads) need the radiologist role, jobs the radiologist or curator
role; unsafe methods need the ``X-CSRF-Token`` header (``GET /api/v1/me`` gives it). An uploaded image's token and
file name are shown only to its owner and admins (:func:`webapp.web_sessions.may_see_private`).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request, url_for

from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput
from semgraph.feedback.algorithms import (
    DEFAULT_ALGORITHM,
    TEXT_ALGORITHM,
    available_algorithms,
)
from semgraph.feedback.replay import list_sessions

from . import jobs as jobs_mod
from . import thumbnails, web_sessions
from .auth import current_user, login_required
from .dendrogram import dendrogram_svg
from .engines import engine
from .openapi import (
    SESSION_SECURITY,
    add_schema,
    error_response,
    json_response,
    operation,
    ref,
)
from .params import (
    check_id,
    parse_filters,
    parse_hu_range,
    parse_json_filters,
    parse_k,
    parse_round,
    parse_shown_round,
    whole_number,
)
from .services import services
from .uploads import get_upload, image_query, image_warnings, parse_roi, save_upload
from .views import (
    case_detail,
    groups_of,
    hit_views,
    list_cases,
    session_view,
    terms_by_category,
)

bp = Blueprint("api_retrieval", __name__, url_prefix="/api/v1")
JOB_ROLES = ("radiologist", "curator")


# ------------------------------------------------------------------------------------------- OpenAPI parts
# (shared by the operations described next to their handlers below)

_CASE_ID = {"name": "case_id", "in": "path", "required": True, "schema": {"type": "string"}}
_SESSION_ID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
_FILTERS = {"type": "array", "items": {"type": "string"},
            "description": "Filter texts: diagnosis=cyst,hemangioma · term:hypodense>0.5 · age=40-70 · sex=F · "
                           "date=2020-01-01..2021-12-31 · phase=portal venous · segment=VI · exclude-patient=P1"}
_IMAGE_FORM = {"type": "object", "required": ["image"], "properties": {
    "image": {"type": "string", "format": "binary", "description": "DICOM, NIfTI or PNG, at most 8 MB"},
    "hu_min": {"type": "number", "description": "PNG only: HU of pixel value 0"},
    "hu_max": {"type": "number", "description": "PNG only: HU of the largest pixel value"},
    "slice_index": {"type": "integer"},
    "roi": {"type": "string", "description": 'JSON {"rectangle": [x0, y0, x1, y1]} or {"polygon": [[x, y], ...]} '
                                             "in image pixels"},
    "mask": {"type": "string", "format": "binary", "description": "A mask file instead of roi (PNG 0/255)"},
    "k": {"type": "integer"}, "filters": {"type": "string", "description": "JSON list of filter texts"}}}
_401 = error_response("Not logged in")
_403 = error_response("Missing role")
_413 = error_response("Upload too large (a file over 8 MB, or the whole request over MAX_CONTENT_LENGTH)")
_SEEN_ROUND = {"type": "integer", "minimum": 0,
               "description": "The session's last round as the client saw it (0: before any feedback); when given "
                              "and the session has moved on (a round added or undone in another window), 409 and "
                              "nothing is changed"}


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object (Content-Type: application/json)")
    return body


def _session_json(entry, group_by=None) -> dict:
    view = session_view(entry, group_by=group_by)
    view["warnings"] = list(entry.meta.get("warnings") or [])
    view["links"] = {"self": url_for("api_retrieval.session", session_id=entry.id),
                     "page": url_for("radiology.session_page", session_id=entry.id),
                     "dendrogram": url_for("api_retrieval.dendrogram", session_id=entry.id)}
    add_thumbnails(view["results"])
    return view


def add_thumbnails(hits: list[dict]) -> None:
    """Set each hit's ``thumbnail`` URL: one ``url_for`` per response (about 35 µs each) and the quoted case id."""
    marker = "0case0"
    prefix, suffix = url_for("api_retrieval.thumbnail", case_id=marker).split(marker)
    for hit in hits:
        hit["thumbnail"] = prefix + quote(hit["case_id"], safe="") + suffix


def _query_from(body: dict):
    """A case id or a likelihood vector (list in vocabulary order, or {term: value})."""
    case_id, vector = body.get("case_id"), body.get("vector")
    if (case_id is None) == (vector is None):
        raise InvalidInput("give exactly one of case_id, vector or text")
    if case_id is not None:
        return check_id(case_id, "case")
    if isinstance(vector, dict):
        return engine().vector_from_terms(vector)
    if isinstance(vector, list):
        return vector
    raise InvalidInput("vector must be a list of likelihoods in vocabulary order or an object {term: value}")


def _image_vector(user: str):
    """Save the multipart upload (image, roi or mask, hu_min/hu_max, slice_index) and predict its vector."""
    form = request.form
    hu_range = parse_hu_range(form.get("hu_min"), form.get("hu_max"))
    record = save_upload(request.files.get("image"), user, hu_range=hu_range, slice_index=form.get("slice_index"))
    roi_text = form.get("roi", "")
    kind, points = "", None
    if roi_text.strip():
        try:
            roi = json.loads(roi_text)
        except json.JSONDecodeError:
            raise InvalidInput("roi must be JSON: {\"rectangle\": [x0, y0, x1, y1]} or {\"polygon\": [[x, y], ...]}") \
                from None
        if not isinstance(roi, dict) or len(roi) != 1 or next(iter(roi)) not in ("rectangle", "polygon"):
            raise InvalidInput("roi must be {\"rectangle\": [x0, y0, x1, y1]} or {\"polygon\": [[x, y], ...]}")
        kind, points = next(iter(roi.items()))
    _, folder = get_upload(record["token"])
    parsed = parse_roi(kind, points, request.files.get("mask"), folder)
    return record, parsed, image_query(record["token"], parsed, user)


# ------------------------------------------------------------------------------------------- cases


@operation("/cases", "get", {
    "summary": "Indexed cases, searched by id, patient id or diagnosis", "operationId": "listCases",
    "security": SESSION_SECURITY,
    "parameters": [{"name": "q", "in": "query", "description": "part of the case id, patient id or diagnosis",
                    "schema": {"type": "string"}},
                   {"name": "diagnosis", "in": "query", "description": "exactly this diagnosis",
                    "schema": {"type": "string"}},
                   {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50, "maximum": 500}},
                   {"name": "offset", "in": "query", "schema": {"type": "integer", "default": 0}}],
    "responses": {"200": json_response("Cases", {"type": "object", "properties": {
        "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
        "cases": {"type": "array", "items": ref("CaseSummary")}}}), "401": _401}})
@bp.route("/cases")
@login_required
def cases():
    limit = min(500, max(1, whole_number(request.args.get("limit", "50"), "limit")))
    offset = max(0, whole_number(request.args.get("offset", "0"), "offset"))
    total, rows = list_cases(request.args.get("q", ""), request.args.get("diagnosis", ""), limit, offset)
    return jsonify({"total": total, "limit": limit, "offset": offset, "cases": rows})


@operation("/cases/{case_id}", "get", {
    "summary": "One case: metadata, caption, all annotations, the patient's other studies, feedback history",
    "operationId": "getCase", "security": SESSION_SECURITY, "parameters": [_CASE_ID],
    "responses": {"200": json_response("Case", ref("CaseDetail")), "401": _401,
                  "404": error_response("Unknown case")}})
@bp.route("/cases/<case_id>")
@login_required
def case(case_id: str):
    detail = case_detail(case_id)
    detail["thumbnail"] = url_for("api_retrieval.thumbnail", case_id=case_id)
    return jsonify(detail)


@operation("/cases/{case_id}/thumbnail.png", "get", {
    "summary": "PNG thumbnail of the case's image in a CT window with the ROI outlined (cached)",
    "operationId": "caseThumbnail", "security": SESSION_SECURITY,
    "parameters": [_CASE_ID,
                   {"name": "size", "in": "query", "schema": {"type": "integer", "enum": list(thumbnails.SIZES),
                                                             "default": thumbnails.DEFAULT_SIZE}},
                   {"name": "window", "in": "query", "schema": {"type": "string", "enum": list(thumbnails.WINDOWS),
                                                               "default": thumbnails.DEFAULT_WINDOW}},
                   {"name": "crop", "in": "query", "description": "lesion: a square around the region of interest",
                    "schema": {"type": "string", "enum": list(thumbnails.CROPS), "default": "slice"}}],
    "responses": {"200": {"description": "PNG (a grey placeholder with X-Thumbnail: placeholder when the image "
                                         "file is missing)", "content": {"image/png": {}}},
                  "400": error_response("Bad size, window or crop"), "404": error_response("Unknown case")}})
@bp.route("/cases/<case_id>/thumbnail.png")
@login_required
def thumbnail(case_id: str):
    check_id(case_id, "case")
    case = engine().case(case_id)
    data, is_placeholder = thumbnails.case_thumbnail(services().config.data_dir, case,
                                                     size=request.args.get("size"),
                                                     window=request.args.get("window"),
                                                     crop=request.args.get("crop"))
    headers = {"Cache-Control": "private, max-age=3600"}
    if is_placeholder:
        headers["X-Thumbnail"] = "placeholder"
    return Response(data, mimetype="image/png", headers=headers)


# ------------------------------------------------------------------------------------------- search


@operation("/search", "post", {
    "summary": "Search by an indexed case or a likelihood vector (nothing is recorded)", "operationId": "search",
    "security": SESSION_SECURITY,
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "properties": {
        "case_id": {"type": "string"},
        "vector": {"oneOf": [{"type": "array", "items": {"type": "number"}},
                             {"type": "object", "additionalProperties": {"type": "number"}}]},
        "k": {"type": "integer", "default": DEFAULT_K}, "filters": _FILTERS,
        "group_by": {"type": "string", "enum": ["diagnosis", "patient"]},
        "exclude_same_patient": {"type": "boolean"}}}}}},
    "responses": {"200": json_response("Results", ref("SearchResult")), "400": error_response("Bad query"),
                  "401": _401, "404": error_response("Unknown case")}})
@bp.route("/search", methods=["POST"])
@login_required
def search():
    body = _json_body()
    eng = engine()
    k = parse_k(body.get("k"))
    _, filters = parse_filters(body.get("filters"))
    query = _query_from(body)
    if isinstance(query, str):
        hits = eng.search_case(query, k, filters, exclude_same_patient=bool(body.get("exclude_same_patient")))
        diagnosis = eng.case(query).diagnosis
    else:
        hits = eng.search_vector(query, k, filters)
        diagnosis = None
    views = hit_views(eng, hits, diagnosis=diagnosis)
    return jsonify({"k": k, "query_case": query if isinstance(query, str) else None, "query_diagnosis": diagnosis,
                    "results": views, "groups": groups_of(eng, views, body.get("group_by") or None)})


@operation("/search/image", "post", {
    "summary": "Search by an uploaded image and a region (rectangle, polygon or mask), through the latest term "
               "model", "operationId": "searchImage", "security": SESSION_SECURITY,
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _IMAGE_FORM}}},
    "responses": {"200": json_response("Results", ref("ImageSearchResult")),
                  "400": error_response("Bad image, region or type"), "401": _401, "403": _403,
                  "409": error_response("No term model trained yet"),
                  "413": _413}})
@bp.route("/search/image", methods=["POST"])
@login_required(role="radiologist")
def search_image():
    record, roi, vector = _image_vector(current_user().name)
    eng = engine()
    _, filters = parse_filters(parse_json_filters(request.form.get("filters")))
    hits = eng.search_vector(vector, parse_k(request.form.get("k")), filters)
    return jsonify({"upload": record["token"], "query_terms": terms_by_category(eng, vector),
                    "vector": [float(x) for x in vector], "results": hit_views(eng, hits),
                    "warnings": image_warnings(record, roi)})


# ------------------------------------------------------------------------------------------- sessions


@operation("/sessions", "get", {
    "summary": "Recorded retrieval sessions (those with at least one round), newest first",
    "operationId": "listSessions", "security": SESSION_SECURITY,
    "responses": {"200": json_response("Sessions", {"type": "array", "items": {"type": "object"}}), "401": _401}})
@bp.route("/sessions", methods=["GET"])
@login_required
def sessions():
    return jsonify(list_sessions(services().store))


@operation("/sessions", "post", {
    "summary": "Start a retrieval session from a case, a vector or a free text (JSON), or an uploaded image "
               "(multipart)", "operationId": "createSession", "security": SESSION_SECURITY,
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "properties": {
            "case_id": {"type": "string"}, "vector": {"type": ["array", "object"]},
            "text": {"type": "string", "maxLength": 2000,
                     "description": "A free-text query; its parsed term vector (as GET /parse shows it) is the "
                                    "session's query, and the text is recorded with the session"},
            "algorithm": {"type": "string", "examples": [DEFAULT_ALGORITHM, TEXT_ALGORITHM],
                          "description": f"Feedback algorithm of every round: {', '.join(available_algorithms())} "
                                         f"or a '+'-joined combination (default: {TEXT_ALGORITHM} for a text, "
                                         f"{DEFAULT_ALGORITHM} otherwise)"},
            "k": {"type": "integer"}, "filters": _FILTERS}}},
        "multipart/form-data": {"schema": _IMAGE_FORM}}},
    "responses": {"200": json_response("The new session (Location: its URL)", ref("RetrievalSession")),
                  "400": error_response("Bad query"), "401": _401, "403": _403,
                  "409": error_response("No term model (image queries)"),
                  "413": _413}})
@bp.route("/sessions", methods=["POST"])
@login_required(role="radiologist")
def create_session():
    user = current_user().name
    if request.mimetype == "multipart/form-data":
        record, roi, vector = _image_vector(user)
        filters = parse_json_filters(request.form.get("filters"))
        entry = web_sessions.create_session(vector, user, k=parse_k(request.form.get("k")), filters=filters,
                                            label=f"uploaded image {record['filename']}", upload=record["token"],
                                            roi=roi, warnings=image_warnings(record, roi))
    else:
        body = _json_body()
        text = body.get("text")
        if text is not None:
            if body.get("case_id") is not None or body.get("vector") is not None:
                raise InvalidInput("give exactly one of case_id, vector or text")
            if not isinstance(text, str):
                raise InvalidInput("text must be a string (a free-text description of the lesion)")
            query = None
        else:
            query = _query_from(body)
        entry = web_sessions.create_session(query, user, k=parse_k(body.get("k")), filters=body.get("filters"),
                                            text=text, algorithm=body.get("algorithm"))
    return jsonify(_session_json(entry)), 200, {"Location": url_for("api_retrieval.session", session_id=entry.id)}


@operation("/sessions/{session_id}", "get", {
    "summary": "A session's current round: ranking with moves, query terms, the last round's changes",
    "operationId": "getSession", "security": SESSION_SECURITY,
    "parameters": [_SESSION_ID, {"name": "group", "in": "query",
                                 "schema": {"type": "string", "enum": ["diagnosis", "patient"]}}],
    "responses": {"200": json_response("Session", ref("RetrievalSession")), "401": _401,
                  "404": error_response("Unknown session")}})
@bp.route("/sessions/<session_id>")
@login_required
def session(session_id: str):
    return jsonify(_session_json(web_sessions.get_session(session_id), request.args.get("group") or None))


@operation("/sessions/{session_id}/rounds", "post", {
    "summary": "Apply one feedback round (only the session's owner; recorded with the user's attribution)",
    "operationId": "addRound", "security": SESSION_SECURITY, "parameters": [_SESSION_ID],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["marks"], "properties": {
            "marks": {"type": "object", "additionalProperties": {"type": "string",
                                                                 "enum": ["relevant", "irrelevant", "neutral"]}},
            "group_by": {"type": "string"}, "round": _SEEN_ROUND}}}}},
    "responses": {"200": json_response("The session after the round", ref("RetrievalSession")),
                  "400": error_response("Bad marks"), "401": _401, "403": error_response("Not your session"),
                  "404": error_response("Unknown session"),
                  "409": error_response("Round recorded concurrently, or the session is no longer at `round`")}})
@bp.route("/sessions/<session_id>/rounds", methods=["POST"])
@login_required(role="radiologist")
def add_round(session_id: str):
    body = _json_body()
    seen = parse_round(body.get("round"))
    entry = web_sessions.get_session(session_id, seen=seen)
    web_sessions.apply_marks(entry, body.get("marks"), current_user(), seen=seen)
    return jsonify(_session_json(entry, body.get("group_by") or None))


@operation("/sessions/{session_id}/undo", "post", {
    "summary": "Undo the last round (drops its named graph)", "operationId": "undoRound", "security": SESSION_SECURITY,
    "parameters": [_SESSION_ID],
    "requestBody": {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"round": _SEEN_ROUND}}}}},
    "responses": {"200": json_response("The session after the undo", ref("RetrievalSession")),
                  "400": error_response("No round to undo"), "401": _401, "403": error_response("Not your session"),
                  "404": error_response("Unknown session"),
                  "409": error_response("The session changed meanwhile (a round added or undone in another window "
                                        "or server process); nothing undone")}})
@bp.route("/sessions/<session_id>/undo", methods=["POST"])
@login_required(role="radiologist")
def undo(session_id: str):
    body = request.get_json(silent=True)
    seen = parse_round(body.get("round") if isinstance(body, dict) else None)
    entry = web_sessions.get_session(session_id, seen=seen)
    undone = web_sessions.undo(entry, current_user(), seen=seen)
    return jsonify(dict(_session_json(entry), undone=undone))


@operation("/sessions/{session_id}/dendrogram.svg", "get", {
    "summary": "SVG dendrogram of the session's term dissimilarity after a round (terms changed in it in bold)",
    "operationId": "sessionDendrogram", "security": SESSION_SECURITY,
    "parameters": [_SESSION_ID, {"name": "round", "in": "query", "schema": {"type": "integer", "minimum": 0},
                                 "description": "0 = baseline; default: the current round"}],
    "responses": {"200": {"description": "SVG", "content": {"image/svg+xml": {}}}, "401": _401,
                  "404": error_response("Unknown session or round")}})
@bp.route("/sessions/<session_id>/dendrogram.svg")
@login_required
def dendrogram(session_id: str):
    entry = web_sessions.get_session(session_id)
    n, D, changed = web_sessions.round_dissimilarity(entry, parse_shown_round(request.args.get("round")))
    eng = entry.session.engine
    svg = dendrogram_svg(D, eng.labels, eng.terms, changed,
                         title=f"Term dendrogram, session {entry.id}, " + (f"after round {n}" if n else "baseline"))
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "no-cache"})


# ------------------------------------------------------------------------------------------- jobs


@operation("/jobs", "get", {
    "summary": "Background jobs, newest first", "operationId": "listJobs", "security": SESSION_SECURITY,
    "responses": {"200": json_response("Jobs", {"type": "array", "items": ref("Job")}), "401": _401,
                  "403": _403}})
@bp.route("/jobs", methods=["GET"])
@login_required(role=JOB_ROLES)
def jobs():
    return jsonify([j.as_dict() for j in jobs_mod.runner(services()).list()])


@operation("/jobs", "post", {
    "summary": "Start a background job: ingest an uploaded cohort zip (multipart kind=ingest, archive=ZIP) or "
               "train term models (kind=train)", "operationId": "startJob", "security": SESSION_SECURITY,
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["kind"], "properties": {
            "kind": {"type": "string", "enum": list(jobs_mod.KINDS)},
            "archive": {"type": "string", "format": "binary"}}}},
        "application/json": {"schema": {"type": "object", "required": ["kind"], "properties": {
            "kind": {"type": "string", "enum": ["train"]}}}}}},
    "responses": {"200": json_response("Job queued (Location: its URL)", ref("Job")),
                  "400": error_response("Bad kind or archive"), "401": _401, "403": _403,
                  "413": _413}})
@bp.route("/jobs", methods=["POST"])
@login_required(role=JOB_ROLES)
def start_job():
    kind = request.form.get("kind") if request.mimetype == "multipart/form-data" else _json_body().get("kind")
    user = current_user().name
    if kind == "ingest":
        job = jobs_mod.start_ingest(services(), request.files.get("archive"), user)
    elif kind == "train":
        job = jobs_mod.start_training(services(), user)
    else:
        raise InvalidInput(f"kind must be one of {', '.join(jobs_mod.KINDS)}, got {kind!r}")
    return jsonify(job.as_dict()), 200, {"Location": url_for("api_retrieval.job", job_id=job.job_id)}


@operation("/jobs/{job_id}", "get", {
    "summary": "One job's state and progress", "operationId": "getJob", "security": SESSION_SECURITY,
    "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
    "responses": {"200": json_response("Job", ref("Job")), "401": _401, "403": _403,
                  "404": error_response("Unknown job")}})
@bp.route("/jobs/<job_id>")
@login_required(role=JOB_ROLES)
def job(job_id: str):
    return jsonify(jobs_mod.runner(services()).get(job_id).as_dict())


# ------------------------------------------------------------------------------------------- OpenAPI schemas
# (of the requests and responses above)

add_schema("CaseSummary", {"type": "object", "required": ["case_id", "patient_id"], "properties": {
    "case_id": {"type": "string"}, "patient_id": {"type": "string"}, "study_id": {"type": "string"},
    "diagnosis": {"type": ["string", "null"]}, "study_date": {"type": ["string", "null"], "format": "date"},
    "age": {"type": ["integer", "null"]}, "sex": {"type": ["string", "null"]},
    "contrast_phase": {"type": ["string", "null"]}, "liver_segment": {"type": ["string", "null"]},
    "has_image": {"type": "boolean"}}})
add_schema("TermBars", {"type": "array", "items": {"type": "object", "properties": {
    "category": {"type": "string"}, "terms": {"type": "array", "items": {"type": "object", "properties": {
        "iri": {"type": "string"}, "rid": {"type": "string"}, "label": {"type": "string"},
        "value": {"type": "number"}, "percent": {"type": "integer"}}}}}}})
add_schema("CaseDetail", {"allOf": [ref("CaseSummary"), {"type": "object", "properties": {
    "caption": {"type": "string"}, "thumbnail": {"type": "string"},
    "annotations": {"type": "array", "items": {"type": "object", "properties": {
        "kind": {"type": "string", "enum": ["reader", "predicted", "truth"]},
        "attributed_to": {"type": ["string", "null"]}, "generated_at": {"type": ["string", "null"]},
        "categories": ref("TermBars")}}},
    "other_studies": {"type": "array", "items": {"type": "object"}},
    "feedback": {"type": "array", "items": {"type": "object", "properties": {
        "round_id": {"type": "string"}, "round": {"type": "integer"}, "session_id": {"type": "string"},
        "user": {"type": ["string", "null"]}, "role": {"type": "string", "enum": ["marked", "query"]},
        "relevance": {"type": ["string", "null"]}, "ended_at": {"type": "string"},
        "learned_edges": {"type": "integer"}}}}}}]})
add_schema("Hit", {"type": "object", "required": ["case_id", "rank", "distance"], "properties": {
    "case_id": {"type": "string"}, "rank": {"type": "integer"}, "distance": {"type": "number"},
    "diagnosis": {"type": ["string", "null"]}, "patient_id": {"type": "string"},
    "study_date": {"type": ["string", "null"]}, "caption": {"type": "string"},
    "match": {"type": ["boolean", "null"], "description": "Same diagnosis as the query case (null: unknown)"},
    "move": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["none", "new", "up", "down",
                                                                                   "same"]},
                                              "by": {"type": "integer"}, "text": {"type": "string"}}},
    "mark": {"type": "string"}, "explanation": {"type": "array", "items": {"type": "string"}},
    "thumbnail": {"type": "string"}}})
add_schema("Groups", {"type": ["array", "null"], "items": {"type": "object", "properties": {
    "key": {"type": "string"}, "size": {"type": "integer"}, "best_rank": {"type": "integer"},
    "members": {"type": "array", "items": ref("Hit")}}}})
add_schema("SearchResult", {"type": "object", "properties": {
    "k": {"type": "integer"}, "query_case": {"type": ["string", "null"]},
    "query_diagnosis": {"type": ["string", "null"]}, "results": {"type": "array", "items": ref("Hit")},
    "groups": ref("Groups")}})
add_schema("QueryWarning", {"type": "object", "required": ["code", "message"], "properties": {
    "code": {"type": "string", "enum": ["modality", "intensity", "features"]}, "message": {"type": "string"}},
    "description": "Why an image query may be unlike the liver-CT lesions the term models learnt from (not a DICOM "
                   "CT, values not plausibly HU, ROI features far from the training lesions'); the search ran anyway"})
add_schema("ImageSearchResult", {"type": "object", "properties": {
    "upload": {"type": "string"}, "vector": {"type": "array", "items": {"type": "number"}},
    "query_terms": ref("TermBars"), "results": {"type": "array", "items": ref("Hit")},
    "warnings": {"type": "array", "items": ref("QueryWarning")}}})
add_schema("Change", {"type": "object", "properties": {
    "term_a": {"type": "string"}, "term_b": {"type": "string"}, "label_a": {"type": "string"},
    "label_b": {"type": "string"}, "before": {"type": "number"}, "after": {"type": "number"},
    "delta": {"type": "number"}, "derived_from": {"type": "array", "items": {"type": "string"}},
    "text": {"type": "string", "description": "Plain language, e.g. 'water density ↔ hypodense: 0.42 → 0.32 "
                                              "(closer), from cases X and Y marked relevant'"}}})
_GUARD = {"type": ["string", "null"], "enum": ["applied", "reduced", "refused", None],
          "description": "The round guard (docs/algorithms.md §5.6): the full step was applied, reduced, or refused "
                         "because it would have ranked the marked cases worse; null when not known (a round read "
                         "back from the graph)"}
add_schema("WeightChange", {"type": "object", "properties": {
    "term": {"type": "string"}, "label": {"type": "string"}, "before": {"type": "number"},
    "after": {"type": "number"},
    "text": {"type": "string", "description": "Plain language, e.g. 'hypodense: weight 1.00 → 1.62 (counts more)'"}},
    "description": "A term whose weight the last round moved (docs/algorithms.md §5.7)"})
add_schema("RoundOutcome", {"type": "object", "required": ["number", "guard", "step", "nothing_changed"], "properties": {
    "number": {"type": "integer"}, "guard": _GUARD,
    "step": {"type": ["number", "null"], "description": "Fraction of the algorithm's step taken: 1, 0.5, ... or 0"},
    "evidence_before": {"type": ["number", "null"], "description": "Fraction of (relevant, irrelevant) marked pairs "
                                                                   "ranked correctly before the round"},
    "evidence_after": {"type": ["number", "null"], "description": "... and after it"},
    "guard_text": {"type": ["string", "null"], "description": "Plain language for a reduced or refused round"},
    "query_moved": {"type": "boolean"}, "results_moved": {"type": "boolean"},
    "weights_moved": {"type": "boolean", "description": "The round changed the term weights (reweight)"},
    "nothing_changed": {"type": "boolean", "description": "No term pair or weight changed and no result moved"},
    "nothing_text": {"type": ["string", "null"], "description": "The hint shown when nothing changed"}}})
add_schema("RetrievalSession", {"type": "object", "required": ["session_id", "round", "results"], "properties": {
    "session_id": {"type": "string"}, "user": {"type": "string"}, "label": {"type": ["string", "null"]},
    "round": {"type": "integer"}, "rounds": {"type": "array", "items": {"type": "object"}},
    "query_case": {"type": ["string", "null"]}, "query_diagnosis": {"type": ["string", "null"]},
    "upload": {"type": ["string", "null"], "description": "Token of the uploaded query image of an image query; "
                                                          "null for users other than its owner and admins"},
    "query_text": {"type": ["string", "null"], "description": "The free-text query of a text session"},
    "algorithm": {"type": "string", "description": "Feedback algorithm of the session's rounds"},
    "k": {"type": "integer"}, "filters": _FILTERS,
    "query_terms": ref("TermBars"),
    "moved_query_terms": {"oneOf": [ref("TermBars"), {"type": "null"}],
                          "description": "The query after the current round when feedback moved it (Rocchio)"}, "results": {"type": "array", "items": ref("Hit")}, "groups": ref("Groups"),
    "group_by": {"type": "string"}, "changes": {"type": "array", "items": ref("Change")},
    "weight_changes": {"type": "array", "items": ref("WeightChange"),
                       "description": "The terms whose weight the last round moved most, largest change first"},
    "round_outcome": {"oneOf": [ref("RoundOutcome"), {"type": "null"}],
                      "description": "What the last round did: the round guard's decision and whether anything "
                                     "changed (null before any round)"},
    "matches": {"type": ["integer", "null"]}, "undone": {"type": "integer"},
    "warnings": {"type": "array", "items": ref("QueryWarning"),
                 "description": "Warnings of an image query (empty for other queries)"},
    "links": {"type": "object", "additionalProperties": {"type": "string"}}}})
add_schema("Job", {"type": "object", "required": ["job_id", "kind", "state"], "properties": {
    "job_id": {"type": "string"}, "kind": {"type": "string", "enum": list(jobs_mod.KINDS)},
    "user": {"type": "string"},
    "state": {"type": "string", "enum": ["queued", "running", "done", "failed", "interrupted"]},
    "done": {"type": "integer"}, "total": {"type": "integer"}, "percent": {"type": ["integer", "null"]},
    "message": {"type": "string"}, "result": {"type": "object"}, "error": {"type": ["string", "null"]},
    "created_at": {"type": "string"}, "started_at": {"type": ["string", "null"]},
    "finished_at": {"type": ["string", "null"]}}})
