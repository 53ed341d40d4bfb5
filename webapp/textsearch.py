"""Free-text search page: live term chips, fused ranking with group headers, timeline and suggestion panels.

HTML: ``/search?q=...&group=diagnosis|patient|cluster&k=&w_img=&case=`` (``case`` opens the timeline and
diagnosis-suggestion panels of one result); ``POST /search/session`` (form ``q``, ``k``, ``csrf_token``; radiologists)
starts a feedback session whose query is the parsed term vector of the text and redirects to its page. JSON: ``/api/v1/parse?text=`` (the chips), ``/api/v1/search/text``,
``/api/v1/cases/<id>/timeline``, ``/api/v1/cases/<id>/suggestion``. Logged-in users only. The parsing, ranking,
grouping, timeline and vote are :mod:`semgraph.text.textquery`, :mod:`semgraph.retrieval.fusion`, :mod:`semgraph.retrieval.grouping`,
:mod:`semgraph.retrieval.timeline` and :mod:`semgraph.retrieval.suggest`; this module only wires them to HTTP.
"""

from __future__ import annotations

import threading

import numpy as np
from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from kg.namespaces import VOCABULARY_GRAPH
from semgraph.config import DEFAULT_K, setting
from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.graph.casegraph import annotation_stamps
from semgraph.retrieval.fusion import Corpus, rank_noted_query, rank_text_query
from semgraph.retrieval.grouping import GROUPINGS, group
from semgraph.retrieval.suggest import DISCLAIMER, suggest, suggest_for_vector
from semgraph.retrieval.timeline import patient_timeline
from semgraph.text.textquery import MAX_TEXT_LENGTH, Vocabulary, parse_text

from . import workbench as wb
from .auth import current_user, login_required
from .openapi import add_path, add_schema, error_response, json_response, ref
from .services import get_store, services

bp = Blueprint("textsearch", __name__)
api_bp = Blueprint("textsearch_api", __name__, url_prefix="/api/v1")

MAX_K = setting("MAX_K").default
_CACHE_KEY = "textsearch.corpus"
_lock = threading.Lock()


# --------------------------------------------------------------------------------------------------- domain glue


def _state():
    """(vocabulary, corpus) of the store, rebuilt when the annotations, baseline or synonyms change.

    Annotations are tracked by their graph's version stamp (every write of cases, likelihoods or captions replaces
    it; counting the triples took 5 s per request at 100,000 cases), the two small graphs by their size.
    """
    store = get_store()
    collection = services().collection()
    key = (tuple(annotation_stamps(store)), collection, store.count(str(collection.baseline_graph)),
           store.count(str(VOCABULARY_GRAPH)))
    cache = services().cache
    with _lock:
        hit = cache.get(_CACHE_KEY)
        if hit is not None and hit[0] == key:
            return hit[1], hit[2]
    vocab = Vocabulary.from_store(store, collection=collection)
    corpus = Corpus.from_store(store, vocab, collection=collection)  # NotFound when the store has no case yet
    with _lock:
        cache[_CACHE_KEY] = (key, vocab, corpus)
    return vocab, corpus


def _vocabulary() -> Vocabulary:
    try:
        return _state()[0]
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


def _int(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise InvalidInput(f"{name} must be an integer from {lo} to {hi}, got {raw!r}")
    return int(raw)


def _weight() -> float:
    raw = request.args.get("w_img", "").strip()
    if not raw:
        return 0.7
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"w_img must be a number in [0, 1], got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(f"w_img must be a number in [0, 1], got {raw!r}")
    return value


def _grouping() -> str | None:
    by = request.args.get("group", "").strip() or None
    if by is not None and by not in GROUPINGS:
        raise InvalidInput(f"group must be one of {', '.join(GROUPINGS)} (or empty), got {by!r}")
    return by


def _noted_query(corpus, like: str | None, session: str | None) -> tuple[np.ndarray, str | None]:
    """The query vector a text note refines: a case's likelihoods (``like``) or a retrieval session's query
    (``session``, for example an uploaded image region); and the case to leave out of the ranking."""
    if like:
        if like not in corpus.ids:
            raise NotFound(f"no case {like!r} with term likelihoods")
        return corpus.vectors[list(corpus.ids).index(like)], like
    entry = wb.get_session(session)
    return np.asarray(entry.session.query0, dtype=np.float64), entry.session.query_case


def search(text: str, *, k: int = DEFAULT_K, by: str | None = None, w_img: float = 0.7, like: str | None = None,
           session: str | None = None) -> dict:
    """The fused ranking of ``text`` with captions, groups and the suggestion for the query (JSON-ready).

    With ``like`` (a case id) or ``session`` (a retrieval session, e.g. of an uploaded image region) the query is
    that case's or session's term vector with ``text`` as a note on it: HSBD to the vector fused with the note's
    caption similarity; the query case itself is left out.
    """
    vocab, corpus = _state()
    w_txt = round(1.0 - w_img, 12)
    if like or session:
        vector, leave_out = _noted_query(corpus, like, session)
        ranking = rank_noted_query(vector, text, corpus, vocab, w_img=w_img, w_txt=w_txt, k=k,
                                   candidates=[i for i in corpus.ids if i != leave_out])
    else:
        ranking = rank_text_query(text, corpus, vocab, w_img=w_img, w_txt=w_txt, k=k)
    captions = dict(zip(corpus.ids, corpus.captions))
    ids = ranking.ids
    hits = []
    for h in ranking.hits:
        case = corpus.cases.get(h.case_id)
        hits.append({**h.as_dict(), "diagnosis": getattr(case, "diagnosis", None),
                     "patient_id": getattr(case, "patient_id", None),
                     "study_date": case.study_date.isoformat() if getattr(case, "study_date", None) else None,
                     "caption": captions.get(h.case_id, "")})
    groups = None
    if by is not None and ids:
        row = {i: r for r, i in enumerate(corpus.ids)}
        projected = corpus.vectors[[row[i] for i in ids]] @ corpus.projection.T
        groups = [g.as_dict() for g in group(ids, by, scores=[h.score for h in ranking.hits], cases=corpus.cases,
                                               projected=projected, top=len(ids))]
    diagnoses = {i: c.diagnosis for i, c in corpus.cases.items() if getattr(c, "diagnosis", None)}
    advice = suggest(ids, [h.score for h in ranking.hits], diagnoses, k=min(10, max(1, len(ids))))
    return {"query": ranking.query.as_dict(), "chips": chips(ranking.query), "w_img": ranking.w_img,
            "w_txt": ranking.w_txt, "masked": ranking.masked, "group": by, "like": like, "session": session,
            "hits": hits,
            "groups": groups, "suggestion": advice.as_dict()}


def case_suggestion(case_id: str, k: int = 10, include_same_patient: bool = False) -> dict:
    """Diagnosis suggestion for a stored case from its most similar cases (other patients by default)."""
    _, corpus = _state()
    if case_id not in corpus.cases:
        raise NotFound(f"no case {case_id!r} with term likelihoods in the store")
    focus = corpus.cases[case_id]
    exclude = [case_id] if include_same_patient else \
        [i for i, c in corpus.cases.items() if c.patient_id == focus.patient_id]
    diagnoses = {i: c.diagnosis for i, c in corpus.cases.items() if c.diagnosis}
    s = suggest_for_vector(corpus.vectors[corpus.ids.index(case_id)], corpus.vectors, list(corpus.ids), diagnoses,
                           corpus.projection, k=k, exclude=exclude)
    return {"case_id": case_id, "diagnosis_known": focus.diagnosis, "include_same_patient": include_same_patient,
            **s.as_dict()}


def case_timeline(case_id: str) -> dict:
    """The patient timeline of a case, each entry with its caption and its terms above 0.5."""
    vocab = _vocabulary()
    timeline = patient_timeline(get_store(), case_id, list(vocab.iris))
    labels = {t.iri: t.label for t in vocab.terms}
    try:
        captions = dict(zip(_state()[1].ids, _state()[1].captions))
    except NotFound:
        captions = {}
    data = timeline.as_dict()
    for entry in [data["focus"], *data["earlier"], *data["same_day"], *data["later"], *data["undated"]]:
        entry["caption"] = captions.get(entry["case_id"], "")
        entry["terms"] = [labels[t] for t, v in entry["likelihoods"].items() if v > 0.5 and t in labels]
    return data


# --------------------------------------------------------------------------------------------------- pages


@bp.route("/search")
@login_required
def search_page():
    text = request.args.get("q", "")
    like = request.args.get("like", "").strip() or None
    session = request.args.get("session", "").strip() or None
    context = {"q": text, "like": like, "session": session, "group": request.args.get("group", ""), "k": DEFAULT_K, "w_img": 0.7,
               "result": None,
               "error": None, "case": None, "timeline": None, "case_suggestion": None, "groupings": GROUPINGS,
               "disclaimer": DISCLAIMER, "max_length": MAX_TEXT_LENGTH}
    status = 200
    try:
        context["k"] = k = _int("k", DEFAULT_K, 1, MAX_K)
        context["w_img"] = w_img = _weight()
        by = _grouping()
        if text.strip():
            result = search(text, k=k, by=by, w_img=w_img, like=like, session=session)
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
    """Start a feedback session from the text query of the form and open it (round 1 = the session's ranking)."""
    text = request.form.get("q", "")
    if not text.strip():
        raise InvalidInput("type a query text first, then start a feedback session with it")
    entry = wb.create_session(None, current_user().name, k=wb.parse_k(request.form.get("k")), text=text,
                              algorithm=request.form.get("algorithm") or None)
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
    return jsonify(search(text, k=_int("k", DEFAULT_K, 1, MAX_K), by=_grouping(), w_img=_weight(),
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
    return jsonify(case_suggestion(case_id, _int("k", 10, 1, MAX_K), include in ("true", "1")))


# --------------------------------------------------------------------------------------------------- OpenAPI
_SECURITY = [{"session": []}]
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
add_path("/parse", "get", {
    "summary": "Parse a free-text query into terms (the search box's live chips)", "operationId": "parseText",
    "security": _SECURITY,
    "parameters": [{"name": "text", "in": "query", "required": True,
                    "schema": {"type": "string", "maxLength": MAX_TEXT_LENGTH}}],
    "responses": {"200": json_response("Parsed query", ref("ParsedText")),
                  "400": error_response("Empty or too long"), **_AUTH}})
add_path("/search/text", "get", {
    "summary": "Fused text search: w_img · HSBD similarity + (1 − w_img) · caption similarity, with groups and a "
               "diagnosis suggestion for the query (decision support)", "operationId": "searchText",
    "security": _SECURITY,
    "parameters": [{"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}, _K,
                   {"name": "group", "in": "query", "schema": {"type": "string", "enum": list(GROUPINGS)}},
                   {"name": "w_img", "in": "query", "schema": {"type": "number", "minimum": 0, "maximum": 1,
                                                               "default": 0.7}},
                   {"name": "like", "in": "query", "schema": {"type": "string"},
                    "description": "A case id: query by that case with the text as a note on it"},
                   {"name": "session", "in": "query", "schema": {"type": "string"},
                    "description": "A retrieval session id (e.g. of an uploaded image region): query by its "
                                   "query vector with the text as a note on it"}],
    "responses": {"200": json_response("Ranking", {"type": "object", "properties": {
        "query": ref("ParsedText"), "chips": {"type": "array", "items": ref("Chip")}, "w_img": {"type": "number"},
        "w_txt": {"type": "number"}, "masked": {"type": "boolean"}, "group": {"type": ["string", "null"]},
        "like": {"type": ["string", "null"]}, "session": {"type": ["string", "null"]},
        "hits": {"type": "array", "items": ref("TextHit")},
        "groups": {"type": ["array", "null"], "items": {"type": "object"}}, "suggestion": ref("Suggestion")}}),
        "400": error_response("Bad parameter"), "404": error_response("No case in the store"), **_AUTH}})
add_path("/cases/{case_id}/timeline", "get", {
    "summary": "The patient's earlier, same-day and later studies around a case", "operationId": "caseTimeline",
    "security": _SECURITY, "parameters": [_CASE],
    "responses": {"200": json_response("Timeline", {"type": "object", "properties": {
        "focus": {"type": "object"}, "earlier": {"type": "array"}, "same_day": {"type": "array"},
        "later": {"type": "array"}, "undated": {"type": "array"}}}),
        "404": error_response("Unknown case"), **_AUTH}})
add_path("/cases/{case_id}/suggestion", "get", {
    "summary": "Diagnosis suggestion from the most similar cases (decision support only, not a diagnosis)",
    "operationId": "caseSuggestion", "security": _SECURITY,
    "parameters": [_CASE, _K, {"name": "include_same_patient", "in": "query",
                               "schema": {"type": "boolean", "default": False}}],
    "responses": {"200": json_response("Suggestion", ref("Suggestion")),
                  "404": error_response("Unknown case"), **_AUTH}})
