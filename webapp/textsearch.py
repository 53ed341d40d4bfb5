"""Free-text search page: live term chips, filters, fused ranking with group headers, timeline and suggestion panels.

HTML: ``/search?q=...&group=diagnosis|patient|cluster&k=&w_img=&case=`` plus the filters of the case search as
query parameters (``diagnosis`` (repeatable), ``term`` and ``term_threshold``, ``age_min``, ``age_max``, ``sex``,
``date_from``, ``date_to``, ``phase``, ``segment``, and ``filter`` for any filter text as ``semgraph query --filter``
takes it; ``case`` opens the timeline and diagnosis-suggestion panels of one result); ``POST /search/session`` (form
``q``, ``k``, ``csrf_token``; radiologists) starts a feedback session whose query is the parsed term vector of the
text and redirects to its page. JSON: ``/api/v1/parse?text=`` (the chips), ``/api/v1/search/text`` (same parameters
as the page), ``/api/v1/cases/<id>/timeline``, ``/api/v1/cases/<id>/suggestion``. Logged-in users only.

The search, the case suggestion and the timeline are the use cases of :mod:`semgraph.usecases.text_search` (the
command line's ``semgraph search`` calls the same function) over the app's retrieval engine; this module only reads
the request and renders the result.
"""

from __future__ import annotations

import threading

import numpy as np
from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from kg.namespaces import VOCABULARY_GRAPH
from semgraph.config import DEFAULT_K, setting
from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.graph.casegraph import annotation_stamps
from semgraph.retrieval.engine import Filters
from semgraph.retrieval.grouping import GROUPINGS
from semgraph.retrieval.suggest import DISCLAIMER
from semgraph.text.textquery import MAX_TEXT_LENGTH, Vocabulary, parse_text
from semgraph.usecases import text_search as usecase

from .auth import current_user, login_required
from .engines import engine
from .openapi import (
    SESSION_SECURITY,
    add_path,
    add_schema,
    error_response,
    json_response,
    ref,
)
from .params import (
    FILTER_FIELDS,
    filters_from_form,
    parse_filters,
    parse_k,
)
from .services import get_store, services
from .views import filter_choices
from .web_sessions import create_session, get_session

bp = Blueprint("textsearch", __name__)
api_bp = Blueprint("textsearch_api", __name__, url_prefix="/api/v1")

MAX_K = setting("MAX_K").default
_CACHE_KEY = "textsearch.index"
_lock = threading.Lock()


# --------------------------------------------------------------------------------------------------- domain glue


def _index() -> usecase.TextIndex:
    """The text index over the app's engine, rebuilt when the engine, the annotations or the synonyms change.

    Annotations (and so captions) are tracked by their graph's version stamp (counting the triples took 5 s per
    request at 100,000 cases), the synonyms by the size of their graph. NotFound when the store has no case yet.
    """
    store = get_store()
    eng = engine()
    key = (tuple(annotation_stamps(store)), store.count(str(VOCABULARY_GRAPH)))
    cache = services().cache
    with _lock:
        hit = cache.get(_CACHE_KEY)
        if hit is not None and hit[0] is eng and hit[1] == key:
            return hit[2]
    index = usecase.TextIndex.from_store(store, eng)
    with _lock:
        cache[_CACHE_KEY] = (eng, key, index)
    return index


def _vocabulary() -> Vocabulary:
    try:
        return _index().vocabulary
    except NotFound:
        return Vocabulary.from_store(get_store(), collection=services().collection())


def chips(query) -> list[dict]:
    """What the search box shows under the text: matched terms, negated terms, derived terms, ignored words."""
    out = []
    for m in query.matches:
        kind = "negated" if m.negated else ("derived" if m.source in ("complement", "implied") else "term")
        out.append({"kind": kind, "words": m.words, "label": m.label, "term": m.term, "source": m.source,
                    "start": m.span[0]})
    for word in query.ignored:
        out.append({"kind": "ignored", "words": word, "label": word, "term": None, "source": "ignored",
                    "start": None})
    return out


def filter_params(args) -> tuple[dict, list[str]]:
    """The filter parameters of a request: (the values to show in the form, the filter texts).

    Each field is checked first so that a bad value is an InvalidInput naming its parameter; the texts are then
    parsed by the engine's :func:`semgraph.retrieval.engine.parse_filter` (in :func:`usecase.text_search`).
    """
    values = {name: args.get(name, "").strip() for name in FILTER_FIELDS if name != "diagnosis"}
    values["diagnosis"] = [d.strip() for d in args.getlist("diagnosis") if d.strip()]
    values["filter"] = [f.strip() for f in args.getlist("filter") if f.strip()]
    texts = filters_from_form(args) + parse_filters(values["filter"])[0]
    return values, texts


def _note_query(session: str | None) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """The query vector of a retrieval session whose query a text note refines (for example an uploaded image
    region), and the case it started from (left out of the ranking)."""
    if not session:
        return None, ()
    entry = get_session(session)
    query_case = entry.session.query_case
    return np.asarray(entry.session.query0, dtype=np.float64), (query_case,) if query_case else ()


def search(text: str, *, k=DEFAULT_K, by=None, w_img=usecase.DEFAULT_W_IMG, like: str | None = None,
           session: str | None = None, filters=()) -> dict:
    """The use case :func:`semgraph.usecases.text_search.text_search` over the app's index, JSON-ready, with the
    chips of the parsed query.

    With ``like`` (a case id) or ``session`` (a retrieval session, e.g. of an uploaded image region) the query is
    that case's or session's term vector with ``text`` as a note on it; the query case itself is left out.
    """
    if like and session:
        raise InvalidInput("give like (a case) or session, not both")
    vector, exclude = _note_query(session)
    result = usecase.text_search(_index(), text, w_img=w_img, k=k, max_k=MAX_K, group_by=by, filters=list(filters),
                                 like=like or None, vector=vector, exclude=exclude)
    return {**result.as_dict(), "chips": chips(result.query), "like": like, "session": session}


def case_suggestion(case_id: str, k=10, include_same_patient: bool = False) -> dict:
    """Diagnosis suggestion for a stored case from its most similar cases (other patients by default)."""
    return usecase.case_suggestion(_index(), case_id, k=k, include_same_patient=include_same_patient).as_dict()


def case_timeline(case_id: str) -> dict:
    """The patient timeline of a case, each entry with its caption and its terms above 0.5."""
    return usecase.case_timeline(_index(), get_store(), case_id)


def _k(name: str = "k", default: int = DEFAULT_K) -> int:
    return usecase.parse_k(request.args.get(name), default=default, maximum=MAX_K, name=name)


def _filter_args(values: dict) -> dict:
    """The filter parameters that are set, to carry into the links of the page."""
    return {name: value for name, value in values.items() if value}


def _choices() -> dict:
    try:
        return filter_choices(engine())
    except NotFound:
        return {"diagnoses": [], "sexes": [], "phases": [], "segments": [], "terms": []}


# --------------------------------------------------------------------------------------------------- pages


@bp.route("/search")
@login_required
def search_page():
    text = request.args.get("q", "")
    like = request.args.get("like", "").strip() or None
    session = request.args.get("session", "").strip() or None
    values = {name: request.args.get(name, "").strip() for name in FILTER_FIELDS}
    values["diagnosis"] = request.args.getlist("diagnosis")
    values["filter"] = request.args.getlist("filter")
    context = {"q": text, "like": like, "session": session, "group": request.args.get("group", ""), "k": DEFAULT_K,
               "w_img": usecase.DEFAULT_W_IMG, "result": None, "error": None, "case": None, "timeline": None,
               "case_suggestion": None, "groupings": GROUPINGS, "disclaimer": DISCLAIMER,
               "max_length": MAX_TEXT_LENGTH, "filters": values, "filter_args": _filter_args(values),
               "choices": _choices()}
    status = 200
    try:
        context["k"] = k = _k()
        context["w_img"] = w_img = usecase.parse_weight(request.args.get("w_img"))
        by = usecase.parse_grouping(request.args.get("group"))
        context["filters"], texts = filter_params(request.args)
        context["filter_args"] = _filter_args(context["filters"])
        if text.strip():
            result = search(text, k=k, by=by, w_img=w_img, like=like, session=session, filters=texts)
            result["filter_texts"] = usecase.describe_filters(Filters.coerce(texts))
            by_id = {h["case_id"]: h for h in result["hits"]}
            if result["groups"] is not None:
                result["sections"] = [{"key": g["key"], "size": g["size"], "best_rank": g["best_rank"],
                                       "best_score": g["best_score"],
                                       "hits": [by_id[m["case_id"]] for m in g["members"]]} for g in result["groups"]]
            else:
                result["sections"] = [{"key": None, "hits": result["hits"]}]
            context["result"] = result
        case_id = request.args.get("case", "").strip()
        if case_id:
            context["case"] = case_id
            context["timeline"] = case_timeline(case_id)
            context["case_suggestion"] = case_suggestion(case_id)
    except SemgraphError as exc:
        from .errors import describe

        status, title, message, _ = describe(exc)
        context["error"] = {"title": title, "message": message}
    return render_template("search/text.html", **context), status


@bp.route("/search/session", methods=["POST"])
@login_required(role="radiologist")
def start_session():
    """Start a feedback session from the text query of the form, with its filters (the fields of the search form),
    and open it (round 1 = the session's ranking)."""
    text = request.form.get("q", "")
    if not text.strip():
        raise InvalidInput("type a query text first, then start a feedback session with it")
    entry = create_session(None, current_user().name, k=parse_k(request.form.get("k")), text=text,
                           filters=filter_params(request.form)[1], algorithm=request.form.get("algorithm") or None)
    return redirect(url_for("radiology.session_page", session_id=entry.id))


# --------------------------------------------------------------------------------------------------- JSON


@api_bp.route("/parse")
@login_required
def api_parse():
    query = parse_text(request.args.get("text", ""), _vocabulary())
    return jsonify({**query.as_dict(), "chips": chips(query)})


@api_bp.route("/search/text")
@login_required
def api_search_text():
    text = request.args.get("q", "")
    if not text.strip():
        raise InvalidInput("give the query text as ?q=...")
    k, w_img = _k(), usecase.parse_weight(request.args.get("w_img"))
    by = usecase.parse_grouping(request.args.get("group"))
    return jsonify(search(text, k=k, by=by, w_img=w_img, filters=filter_params(request.args)[1],
                          like=request.args.get("like", "").strip() or None,
                          session=request.args.get("session", "").strip() or None))


@api_bp.route("/cases/<case_id>/timeline")
@login_required
def api_timeline(case_id: str):
    return jsonify(case_timeline(case_id))


@api_bp.route("/cases/<case_id>/suggestion")
@login_required
def api_suggestion(case_id: str):
    include = request.args.get("include_same_patient", "false").lower()
    if include not in ("true", "false", "1", "0"):
        raise InvalidInput("include_same_patient must be true or false")
    return jsonify(case_suggestion(case_id, _k("k", 10), include in ("true", "1")))


# --------------------------------------------------------------------------------------------------- OpenAPI
_CASE = {"name": "case_id", "in": "path", "required": True, "schema": {"type": "string"}}
_K = {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_K}}
add_schema("Chip", {"type": "object", "properties": {
    "kind": {"type": "string", "enum": ["term", "negated", "derived", "ignored"]}, "words": {"type": "string"},
    "label": {"type": "string"}, "term": {"type": ["string", "null"]}, "source": {"type": "string"},
    "start": {"type": ["integer", "null"]}}})
add_schema("ParsedText", {"type": "object", "properties": {
    "text": {"type": "string"}, "vector": {"type": "object", "additionalProperties": {"type": "number"}},
    "matches": {"type": "array", "items": {"type": "object"}}, "ignored": {"type": "array", "items": {"type": "string"}},
    "mentioned_terms": {"type": "array", "items": {"type": "string"}},
    "chips": {"type": "array", "items": ref("Chip")}}})
add_schema("TextHit", {"type": "object", "properties": {
    "case_id": {"type": "string"}, "rank": {"type": "integer"}, "score": {"type": "number"},
    "sim_img": {"type": "number", "description": "Rescaled HSBD similarity of the term vector"},
    "sim_txt": {"type": "number", "description": "Rescaled TF-IDF similarity to the caption"},
    "distance": {"type": "number"}, "diagnosis": {"type": ["string", "null"]},
    "patient_id": {"type": ["string", "null"]}, "study_date": {"type": ["string", "null"]},
    "caption": {"type": "string"}}})
add_schema("Suggestion", {"type": "object", "properties": {
    "diagnosis": {"type": ["string", "null"]}, "confidence": {"type": "number"},
    "votes": {"type": "object", "additionalProperties": {"type": "number"}},
    "evidence": {"type": "array", "items": {"type": "string"}}, "k": {"type": "integer"},
    "disclaimer": {"type": "string"}}})
_AUTH = {"401": error_response("Not logged in")}
_FILTER_PARAMETERS = [
    {"name": "diagnosis", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
     "style": "form", "explode": True, "description": "Only cases with one of these diagnoses (repeatable)"},
    {"name": "term", "in": "query", "schema": {"type": "string"},
     "description": "Only cases whose likelihood of this term (label, RadLex id or IRI) is above term_threshold"},
    {"name": "term_threshold", "in": "query", "schema": {"type": "number", "minimum": 0, "maximum": 1,
                                                         "default": 0.5}},
    {"name": "age_min", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "age_max", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "sex", "in": "query", "schema": {"type": "string"}},
    {"name": "date_from", "in": "query", "schema": {"type": "string", "format": "date"},
     "description": "Only studies on or after this date"},
    {"name": "date_to", "in": "query", "schema": {"type": "string", "format": "date"},
     "description": "Only studies on or before this date"},
    {"name": "phase", "in": "query", "schema": {"type": "string"}, "description": "Contrast phase"},
    {"name": "segment", "in": "query", "schema": {"type": "string"}, "description": "Liver segment"},
    {"name": "filter", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
     "style": "form", "explode": True,
     "description": "Any filter text as `semgraph query --filter` takes it, e.g. exclude-patient=P1 (repeatable)"}]
add_path("/parse", "get", {
    "summary": "Parse a free-text query into terms (the search box's live chips)", "operationId": "parseText",
    "security": SESSION_SECURITY,
    "parameters": [{"name": "text", "in": "query", "required": True,
                    "schema": {"type": "string", "maxLength": MAX_TEXT_LENGTH}}],
    "responses": {"200": json_response("Parsed query", ref("ParsedText")),
                  "400": error_response("Empty or too long"), **_AUTH}})
add_path("/search/text", "get", {
    "summary": "Fused text search: w_img · HSBD similarity + (1 − w_img) · caption similarity, with groups and a "
               "diagnosis suggestion for the query (decision support)", "operationId": "searchText",
    "security": SESSION_SECURITY,
    "parameters": [{"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}, _K,
                   {"name": "group", "in": "query", "schema": {"type": "string", "enum": list(GROUPINGS)}},
                   {"name": "w_img", "in": "query", "schema": {"type": "number", "minimum": 0, "maximum": 1,
                                                               "default": 0.7}},
                   {"name": "like", "in": "query", "schema": {"type": "string"},
                    "description": "A case id: query by that case with the text as a note on it"},
                   {"name": "session", "in": "query", "schema": {"type": "string"},
                    "description": "A retrieval session id (e.g. of an uploaded image region): query by its "
                                   "query vector with the text as a note on it"}, *_FILTER_PARAMETERS],
    "responses": {"200": json_response("Ranking", {"type": "object", "properties": {
        "query": ref("ParsedText"), "chips": {"type": "array", "items": ref("Chip")}, "w_img": {"type": "number"},
        "w_txt": {"type": "number"}, "masked": {"type": "boolean"}, "group": {"type": ["string", "null"]},
        "like": {"type": ["string", "null"]}, "session": {"type": ["string", "null"]},
        "caption_text": {"type": ["string", "null"], "description": "What the text channel compared with the captions"},
        "filters": {"type": "object", "description": "The filters applied (only those set)"},
        "candidates": {"type": "integer", "description": "Number of cases ranked (those the filters allow)"},
        "hits": {"type": "array", "items": ref("TextHit")},
        "groups": {"type": ["array", "null"], "items": {"type": "object"}}, "suggestion": ref("Suggestion"),
        "warnings": {"type": "array", "items": {"type": "string"}}}}),
        "400": error_response("Bad parameter"), "404": error_response("No case in the store"), **_AUTH}})
add_path("/cases/{case_id}/timeline", "get", {
    "summary": "The patient's earlier, same-day and later studies around a case", "operationId": "caseTimeline",
    "security": SESSION_SECURITY, "parameters": [_CASE],
    "responses": {"200": json_response("Timeline", {"type": "object", "properties": {
        "focus": {"type": "object"}, "earlier": {"type": "array"}, "same_day": {"type": "array"},
        "later": {"type": "array"}, "undated": {"type": "array"}}}),
        "404": error_response("Unknown case"), **_AUTH}})
add_path("/cases/{case_id}/suggestion", "get", {
    "summary": "Diagnosis suggestion from the most similar cases (decision support only, not a diagnosis)",
    "operationId": "caseSuggestion", "security": SESSION_SECURITY,
    "parameters": [_CASE, _K, {"name": "include_same_patient", "in": "query",
                               "schema": {"type": "boolean", "default": False}}],
    "responses": {"200": json_response("Suggestion", ref("Suggestion")),
                  "404": error_response("Unknown case"), **_AUTH}})
