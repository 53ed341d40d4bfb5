"""Researchers' pages: the learned-relations table, downloads with provenance, and their JSON twins.

HTML: ``/research/relations`` (filter by term, minimum change, minimum sessions, user and date range, all as query
parameters; sort by clicking a column header: ``sort`` and ``order`` parameters, done on the server). Downloads with
the same filters, one per export format of :mod:`semgraph.exchange.export` (``/research/<stem><extension>``, e.g.
``/research/export.ttl``, ``/research/report.md``).
The page also shows, when asked (``evidence=1``: it ranks up to 200 held-out queries twice, seconds on a large
store), the evidence for promoting the current candidates (:mod:`semgraph.evaluation.evidence`; the candidates need
the ``min_sessions`` filter's number of agreeing sessions, the other filters do not apply).
JSON: ``/api/v1/relations``, ``/api/v1/relations/proposals`` and ``/api/v1/relations/evidence``. Researchers,
curators and admins only. All domain logic is in :mod:`semgraph.exchange.export` and :mod:`semgraph.evaluation`.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify, render_template, request, url_for

from semgraph.errors import InvalidInput
from semgraph.evaluation.evidence import promotion_evidence, signed
from semgraph.exchange import export as ex

from .auth import login_required
from .openapi import (
    SESSION_SECURITY,
    add_path,
    add_schema,
    error_response,
    json_response,
    ref,
)
from .params import iso_date, number, whole_number
from .services import get_store, services

bp = Blueprint("research", __name__, url_prefix="/research")
api_bp = Blueprint("research_api", __name__, url_prefix="/api/v1")

#: Roles that see the researchers' pages (admin always passes).
ROLES = ("researcher", "curator")

#: The downloads: one per export format of :mod:`semgraph.exchange.export`, by its download file name.
_DOWNLOADS = {f.download: f for f in map(ex.get_format, ex.available_formats())}
_COLUMNS = (("pair", "Term pair"), ("baseline", "Baseline"), ("learned", "Learned"), ("change", "Change"),
            ("rounds", "Rounds"), ("sessions", "Sessions"), ("users", "Users"), ("first", "First"),
            ("last", "Last"))


def _text(name: str, limit: int = 200) -> str | None:
    value = request.args.get(name, "").strip()
    if len(value) > limit:
        raise InvalidInput(f"{name} is too long (at most {limit} characters)")
    return value or None


def filters() -> dict:
    """The filters of this request's query string, checked (InvalidInput on a bad value)."""
    out: dict = {"term": _text("term"), "user": _text("user", 64), "since": _text("since", 10),
                 "until": _text("until", 10), "min_change": None, "min_sessions": 1}
    raw = _text("min_change", 20)
    if raw is not None:
        out["min_change"] = number(raw, "min_change")
    raw = _text("min_sessions", 10)
    if raw is not None:
        out["min_sessions"] = whole_number(raw, "min_sessions", minimum=1)
    for name in ("since", "until"):
        if out[name] is not None:
            iso_date(out[name], name)  # checked here; the export reads the text
    return out


def _sorting() -> tuple[str, bool]:
    sort = request.args.get("sort", "change")
    order = request.args.get("order", "asc")
    if sort not in ex.SORT_KEYS:
        raise InvalidInput(f"cannot sort by {sort!r}; use one of {', '.join(ex.SORT_KEYS)}")
    if order not in ("asc", "desc"):
        raise InvalidInput(f"order must be 'asc' or 'desc', got {order!r}")
    return sort, order == "desc"


def _active(f: dict) -> dict:
    """The filters as query parameters (only those set), for links."""
    return {k: v for k, v in f.items() if v is not None and not (k == "min_sessions" and v == 1)}


def evidence(f: dict) -> dict:
    """The evidence for promoting the candidates of the app's collection (agreeing in ``f``'s minimum of
    sessions), as a dict."""
    return promotion_evidence(get_store(), services().collection(), min_sessions=f["min_sessions"]).as_dict()


@bp.route("/relations")
@login_required(role=ROLES)
def relations():
    f = filters()
    sort, descending = _sorting()
    rows = ex.learned_relations(get_store(), **f, collection=services().collection(), sort=sort, descending=descending)
    active = _active(f)
    headers = []
    for key, title in _COLUMNS:
        next_order = "desc" if key == sort and not descending else "asc"
        headers.append({"key": key, "title": title, "sorted": key == sort,
                        "order": "desc" if descending else "asc",
                        "href": url_for("research.relations", **active, sort=key, order=next_order)})
    downloads = [(name, url_for("research.download", name=name, **active), fmt.label)
                 for name, fmt in _DOWNLOADS.items()]
    shown = request.args.get("evidence") == "1"
    return render_template("research/relations.html", rows=rows, filters=f, headers=headers, downloads=downloads,
                           sort=sort, order="desc" if descending else "asc", active=active,
                           evidence=evidence(f) if shown else None, signed=signed,
                           measure=url_for("research.relations", evidence="1", sort=sort,
                                           order="desc" if descending else "asc", **active) + "#promotion-evidence")


@bp.route(f"/<any({', '.join(map(repr, _DOWNLOADS))}):name>")
@login_required(role=ROLES)
def download(name: str):
    fmt = _DOWNLOADS[name]
    text = ex.export(get_store(), fmt.name, **filters(), collection=services().collection())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    stem = "learned-export" if fmt.stem == "export" else fmt.stem
    filename = f"semgraph-{stem}-{stamp}{fmt.extension}"
    return Response(text, content_type=fmt.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@api_bp.route("/relations")
@login_required(role=ROLES)
def api_relations():
    f = filters()
    sort, descending = _sorting()
    rows = ex.learned_relations(get_store(), **f, collection=services().collection(), sort=sort, descending=descending)
    return jsonify({"filters": _active(f), "sort": sort, "order": "desc" if descending else "asc",
                    "count": len(rows), "relations": [r.as_dict() for r in rows]})


@api_bp.route("/relations/proposals")
@login_required(role=ROLES)
def api_proposals():
    f = filters()
    found = ex.proposals(get_store(), **f, collection=services().collection())
    return jsonify({"filters": _active(f), "rule": ex.RULE, "count": len(found),
                    "proposals": [p.as_dict() for p in found]})


@api_bp.route("/relations/evidence")
@login_required(role=ROLES)
def api_evidence():
    f = filters()
    return jsonify({"filters": _active(f), **evidence(f)})


# -- OpenAPI ----------------------------------------------------------------------------------------------------
_FILTERS = [
    {"name": "term", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "Keep pairs where a term's label contains this text, or whose RadLex id is it"},
    {"name": "min_change", "in": "query", "schema": {"type": "number", "minimum": 0},
     "description": "Keep pairs with |learned − baseline| ≥ this"},
    {"name": "min_sessions", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "user", "in": "query", "schema": {"type": "string"}, "description": "Count only this user's rounds"},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date"}},
]
_SORT = [
    {"name": "sort", "in": "query", "schema": {"type": "string", "enum": list(ex.SORT_KEYS), "default": "change"}},
    {"name": "order", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}},
]
add_schema("LearnedRelation", {"type": "object", "properties": {
    "term_a": {"type": "string", "format": "uri"}, "term_b": {"type": "string", "format": "uri"},
    "label_a": {"type": "string"}, "label_b": {"type": "string"}, "baseline": {"type": "number"},
    "baseline_source": {"type": "string", "enum": ["baseline graph", "before first round"]},
    "learned": {"type": "number", "description": "Value of the most recent learned edge"},
    "change": {"type": "number"}, "session_mean": {"type": "number"}, "rounds": {"type": "integer"},
    "sessions": {"type": "integer"}, "users": {"type": "array", "items": {"type": "string"}},
    "first": {"type": "string", "format": "date-time"}, "last": {"type": "string", "format": "date-time"},
    "sessions_closer": {"type": "integer"}, "sessions_farther": {"type": "integer"},
    "round_ids": {"type": "array", "items": {"type": "string"}}}})
add_schema("Proposal", {"type": "object", "properties": {
    "iri": {"type": "string", "format": "uri"}, "kind": {"type": "string", "enum": ["closeMatch", "related", "reparent"]},
    "term_a": {"type": "string"}, "term_b": {"type": "string"}, "label_a": {"type": "string"},
    "label_b": {"type": "string"}, "baseline": {"type": "number"}, "learned": {"type": "number"},
    "ontological": {"type": ["number", "null"]}, "sessions": {"type": "integer"}, "users": {"type": "integer"},
    "against": {"type": "integer"}, "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    "rounds": {"type": "array", "items": {"type": "string", "format": "uri"}}, "subject": {"type": "string"},
    "new_parent": {"type": "string"}, "current_parents": {"type": "array", "items": {"type": "string"}},
    "rationale": {"type": "string"}}})
_ERRORS = {"400": error_response("Bad filter"), "401": error_response("Not logged in"),
           "403": error_response("Needs the researcher, curator or admin role")}
add_path("/relations", "get", {
    "summary": "Learned term relations: baseline and learned dissimilarity, change, supporting rounds, sessions, "
               "users and dates per term pair", "operationId": "relations", "security": SESSION_SECURITY,
    "parameters": _FILTERS + _SORT,
    "responses": {"200": json_response("Relations", {"type": "object", "properties": {
        "filters": {"type": "object"}, "sort": {"type": "string"}, "order": {"type": "string"},
        "count": {"type": "integer"}, "relations": {"type": "array", "items": ref("LearnedRelation")}}}),
        **_ERRORS}})
add_path("/relations/proposals", "get", {
    "summary": "Ontology-update proposals (skos:related / skos:closeMatch / re-parenting) with confidence and "
               "supporting rounds", "operationId": "relationProposals", "security": SESSION_SECURITY,
    "parameters": _FILTERS,
    "responses": {"200": json_response("Proposals", {"type": "object", "properties": {
        "filters": {"type": "object"}, "rule": {"type": "object"}, "count": {"type": "integer"},
        "proposals": {"type": "array", "items": ref("Proposal")}}}), **_ERRORS}})
_NUMBERS = {"type": "array", "items": {"type": "number"}}
_ESTIMATE = {"type": "object", "properties": {"mean": {"type": "number"}, "low": {"type": "number"},
                                               "high": {"type": "number"}, "n": {"type": "integer"}}}
add_schema("PromotionEvidence", {"type": "object", "properties": {
    "filters": {"type": "object"}, "collection": {"type": "string"}, "k": {"type": "integer"},
    "min_sessions": {"type": "integer"},
    "pairs": {"type": "array", "items": {"type": "object", "properties": {
        "term_a": {"type": "string", "format": "uri"}, "term_b": {"type": "string", "format": "uri"},
        "old": {"type": "number"}, "new": {"type": "number"}}}},
    "n_queries": {"type": "integer"}, "queries": {"type": "array", "items": {"type": "string"}},
    "ndcg_before": _NUMBERS, "ndcg_after": _NUMBERS,
    "mean_before": {"type": ["number", "null"]}, "mean_after": {"type": ["number", "null"]},
    "difference": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
        "difference": _ESTIMATE, "better": {"type": "number"}, "worse": {"type": "number"},
        "ties": {"type": "number"}}}]},
    "counts": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
        "better": {"type": "integer"}, "worse": {"type": "integer"}, "unchanged": {"type": "integer"}}}]},
    "reason": {"type": ["string", "null"], "description": "Why nothing was measured"},
    "reading": {"type": "string"}}})
add_path("/relations/evidence", "get", {
    "summary": "Evidence for promoting the current promotion candidates: round-0 NDCG@10 of held-out queries (never "
               "marked nor a session's query) with the baseline and with the candidates promoted, the mean "
               "difference with its 95 % bootstrap interval and the queries made better, worse or unchanged",
    "operationId": "relationEvidence", "security": SESSION_SECURITY,
    "parameters": [{"name": "min_sessions", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1},
                    "description": "Candidates: pairs moved the same way by at least this many independent "
                                   "sessions"}],
    "responses": {"200": json_response("Evidence", ref("PromotionEvidence")), **_ERRORS}})
