"""The radiologists' pages: pick a query (a case or an uploaded image with a drawn region), see the results as
thumbnails, mark them, apply feedback rounds, undo, look at the term dendrogram, open a case, run background jobs.

Every page needs a login; starting sessions, giving feedback and uploading need the radiologist role (admins
pass), background jobs the radiologist or curator role (training the shared term models: curators only). Any logged-in user may look at a session (read-only
unless it is theirs), but an uploaded image, its token and its file name only its owner and admins
(:func:`webapp.web_sessions.may_see_private`). Each page has a JSON twin in :mod:`webapp.api_retrieval`.
The logic shared with the API lives in :mod:`webapp.engines`, :mod:`webapp.web_sessions`, :mod:`webapp.uploads`,
:mod:`webapp.params` and :mod:`webapp.views`.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput
from semgraph.feedback.replay import list_sessions

from . import jobs as jobs_mod
from . import thumbnails, web_sessions
from .auth import current_user, login_required
from .engines import engine
from .params import (
    check_id,
    filters_from_form,
    parse_hu_range,
    parse_k,
    parse_round,
    parse_shown_round,
)
from .services import services
from .uploads import (
    IMAGE_SUFFIXES,
    MAX_UPLOAD_BYTES,
    get_upload,
    image_query,
    image_warnings,
    parse_roi,
    save_upload,
)
from .views import case_detail, change_views, filter_choices, list_cases, session_view

bp = Blueprint("radiology", __name__)

JOB_ROLES = ("radiologist", "curator")


def _group_arg() -> str | None:
    value = request.args.get("group", "").strip()
    return value or None


@bp.route("/cases")
@login_required
def cases():
    """Case list with search by id / patient and diagnosis; each row starts a query (with the filters)."""
    q = request.args.get("q", "")
    diagnosis = request.args.get("diagnosis", "")
    raw_page = request.args.get("page", "1")
    page = max(1, int(raw_page) if raw_page.isascii() and raw_page.isdigit() else 1)
    per_page = 40
    total, rows = list_cases(q, diagnosis, per_page, (page - 1) * per_page)
    eng = engine()
    return render_template("radiology/cases.html", rows=rows, total=total, q=q, diagnosis=diagnosis, page=page,
                           pages=max(1, -(-total // per_page)), choices=filter_choices(eng),
                           default_k=DEFAULT_K)


@bp.route("/cases/<case_id>")
@login_required
def case_page(case_id: str):
    detail = case_detail(case_id)
    return render_template("radiology/case.html", case=detail)


@bp.route("/sessions", methods=["GET"])
@login_required
def sessions():
    return render_template("radiology/sessions.html", sessions=list_sessions(services().store))


@bp.route("/sessions", methods=["POST"])
@login_required(role="radiologist")
def start():
    """Start a session from a case (form field ``case_id``) with the filters of the form."""
    case_id = request.form.get("case_id", "").strip()
    if not case_id:
        raise InvalidInput("choose a query case")
    check_id(case_id, "case")
    entry = web_sessions.create_session(case_id, current_user().name, k=parse_k(request.form.get("k")),
                                        filters=filters_from_form(request.form))
    return redirect(url_for("radiology.session_page", session_id=entry.id, group=request.form.get("group") or None))


@bp.route("/sessions/<session_id>")
@login_required
def session_page(session_id: str):
    entry = web_sessions.get_session(session_id)
    view = session_view(entry, group_by=_group_arg())
    user = current_user()
    return render_template("radiology/session.html", s=view, can_write=user.name == entry.session.user,
                           marks_data={"session": entry.id, "round": view["round"]},
                           warnings=entry.meta.get("warnings") or [])


@bp.route("/sessions/<session_id>/feedback", methods=["POST"])
@login_required(role="radiologist")
def feedback(session_id: str):
    seen = parse_round(request.form.get("round"))
    entry = web_sessions.get_session(session_id, seen=seen)
    # neutral is the default of every card: only the results the user actually judged are recorded
    marks = {key[len("mark-"):]: value for key, value in request.form.items()
             if key.startswith("mark-") and value != "neutral"}
    web_sessions.apply_marks(entry, marks, current_user(), seen=seen)
    return redirect(url_for("radiology.session_page", session_id=session_id, group=_form_group()))


def _form_group() -> str | None:
    return request.form.get("group") or None


@bp.route("/sessions/<session_id>/undo", methods=["POST"])
@login_required(role="radiologist")
def undo(session_id: str):
    seen = parse_round(request.form.get("round"))
    entry = web_sessions.get_session(session_id, seen=seen)
    web_sessions.undo(entry, current_user(), seen=seen)
    return redirect(url_for("radiology.session_page", session_id=session_id, group=_form_group()))


@bp.route("/sessions/<session_id>/dendrogram")
@login_required
def dendrogram(session_id: str):
    entry = web_sessions.get_session(session_id)
    n, _, _ = web_sessions.round_dissimilarity(entry, parse_shown_round(request.args.get("round")))
    round_ = entry.session.rounds[n - 1] if n else None
    return render_template("radiology/dendrogram.html", session_id=entry.id, round=n, rounds=entry.round,
                           changes=change_views(round_), label=web_sessions.private_parts(entry)["label"])


@bp.route("/sessions/<session_id>/query.png")
@login_required
def query_image(session_id: str):
    """The uploaded image of an image-query session, with the drawn region outlined."""
    entry = web_sessions.get_session(session_id)
    token = entry.meta.get("upload")
    if not token:
        raise InvalidInput("this session's query is not an uploaded image")
    record, folder = get_upload(token)
    roi = entry.meta.get("roi")
    if roi and "mask" in roi:
        roi = {"mask": roi["mask"]}
    data = thumbnails.upload_preview(folder, record, roi, size=256)
    return Response(data, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})


# ------------------------------------------------------------------------------------------- image queries


@bp.route("/query/image", methods=["GET"])
@login_required(role="radiologist")
def image_form():
    return render_template("radiology/upload.html", max_mb=MAX_UPLOAD_BYTES // (1024 * 1024), suffixes=IMAGE_SUFFIXES)


@bp.route("/query/image", methods=["POST"])
@login_required(role="radiologist")
def image_upload():
    hu_range = parse_hu_range(request.form.get("hu_min"), request.form.get("hu_max"))
    record = save_upload(request.files.get("image"), current_user().name, hu_range=hu_range,
                         slice_index=request.form.get("slice_index"))
    return redirect(url_for("radiology.image_region", token=record["token"]))


@bp.route("/query/image/<token>", methods=["GET"])
@login_required(role="radiologist")
def image_region(token: str):
    record, _ = get_upload(token)
    eng = engine()
    return render_template("radiology/region.html", upload=record, choices=filter_choices(eng), default_k=DEFAULT_K)


@bp.route("/query/image/<token>", methods=["POST"])
@login_required(role="radiologist")
def image_search(token: str):
    record, folder = get_upload(token)
    roi = parse_roi(request.form.get("roi_kind", ""), request.form.get("roi_points", ""), request.files.get("mask"),
                    folder)
    user = current_user().name
    vector = image_query(token, roi, user)
    entry = web_sessions.create_session(vector, user, k=parse_k(request.form.get("k")),
                                        filters=filters_from_form(request.form),
                                        label=f"uploaded image {record['filename']}", upload=token, roi=roi,
                                        warnings=image_warnings(record, roi))
    return redirect(url_for("radiology.session_page", session_id=entry.id, group=request.form.get("group") or None))


# ------------------------------------------------------------------------------------------- jobs


@bp.route("/jobs", methods=["GET"])
@login_required(role=JOB_ROLES)
def jobs_page():
    runner = jobs_mod.runner(services())
    return render_template("radiology/jobs.html", jobs=[j.as_dict() for j in runner.list()],
                           may_train=jobs_mod.may_train(current_user()))


@bp.route("/jobs/ingest", methods=["POST"])
@login_required(role=JOB_ROLES)
def jobs_ingest():
    jobs_mod.start_ingest(services(), request.files.get("archive"), current_user().name)
    return redirect(url_for("radiology.jobs_page"))


@bp.route("/jobs/train", methods=["POST"])
@login_required(role=JOB_ROLES)
def jobs_train():
    jobs_mod.start_training(services(), current_user().name)
    return redirect(url_for("radiology.jobs_page"))
