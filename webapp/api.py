"""The JSON API under ``/api/v1`` (described by :mod:`webapp.openapi`)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

import ontology
from ontology.measures import MEASURES

from . import vocabulary as vocab
from .auth import current_user, current_user_iri, login_required
from .csrf import csrf_token
from .openapi import (
    SESSION_SECURITY,
    add_path,
    add_schema,
    document,
    error_response,
    json_response,
    ref,
)
from .services import get_store
from .status import status as status_summary

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.route("/openapi.json")
def openapi():
    return jsonify(document())


@bp.route("/status")
def status():
    return jsonify(status_summary())


@bp.route("/ontologies")
def ontologies():
    return jsonify([{"name": i.name, "graph": i.graph, "root": i.root, "source": i.source, "loaded": i.loaded,
                     "triples": i.triples} for i in ontology.catalog(get_store())])


@bp.route("/terms")
def terms():
    return jsonify(vocab.vocabulary())


@bp.route("/terms/<rid>")
def term(rid: str):
    return jsonify(vocab.term(rid))


@bp.route("/terms/<rid>/dissimilarity")
def dissimilarity(rid: str):
    other = request.args.get("to")
    if not other:
        from semgraph.errors import InvalidInput

        raise InvalidInput("pass the second term as ?to=RID...")
    return jsonify(vocab.dissimilarity(rid, other, request.args.get("measure", "kurtz")))


@bp.route("/me")
@login_required
def me():
    user = current_user()
    return jsonify({"name": user.name, "role": user.role, "iri": str(current_user_iri()), "csrf_token": csrf_token()})


# -- the OpenAPI description of the routes above --------------------------------------------------------------
_RID = {"name": "rid", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^RID[0-9]+$"},
        "description": "RadLex id, e.g. RID5715"}
add_schema("Status", {"type": "object", "properties": {
    "version": {"type": ["string", "null"]},
    "store": {"type": "object", "properties": {"location": {"type": "string"}, "backend": {"type": "string"},
                                               "writable": {"type": "boolean"}, "graphs": {"type": "integer"},
                                               "triples": {"type": "integer"}}},
    "ontologies": {"type": "array", "items": {"type": "string"}}, "users": {"type": "integer"},
    "process": {"type": "integer", "description": "id of the server process that answered"}}})
add_schema("Ontology", {"type": "object", "required": ["name", "graph", "root"], "properties": {
    "name": {"type": "string"}, "graph": {"type": "string", "format": "uri"}, "root": {"type": "string", "format": "uri"},
    "source": {"type": "string"}, "loaded": {"type": "string", "format": "date-time"}, "triples": {"type": "integer"}}})
add_schema("TermRef", {"type": "object", "properties": {
    "iri": {"type": "string", "format": "uri"}, "rid": {"type": "string"}, "label": {"type": ["string", "null"]}}})
add_schema("VocabularyTerm", {"type": "object", "required": ["iri", "rid", "label", "category"], "properties": {
    "iri": {"type": "string", "format": "uri"}, "rid": {"type": "string"}, "label": {"type": "string"},
    "paper_label": {"type": "string"}, "category": {"type": "string"},
    "labels": {"type": "array", "items": {"type": "string"}, "description": "Every label of the term in the store"}}})
add_schema("Term", {"type": "object", "properties": {
    "iri": {"type": "string", "format": "uri"}, "rid": {"type": "string"}, "label": {"type": ["string", "null"]},
    "labels": {"type": "array", "items": {"type": "string"}}, "depth": {"type": "integer"},
    "parents": {"type": "array", "items": ref("TermRef")}, "children": {"type": "array", "items": ref("TermRef")},
    "category": {"type": ["string", "null"]}, "in_vocabulary": {"type": "boolean"}}})
add_schema("Dissimilarity", {"type": "object", "properties": {
    "a": ref("TermRef"), "b": ref("TermRef"), "measure": {"type": "string", "enum": sorted(MEASURES)},
    "value": {"type": ["number", "null"], "description": "Normalised over the vocabulary (the value retrieval "
                                                          "uses); null for a normalised measure and a term outside it"},
    "raw": {"type": "number"}, "normalised": {"type": "boolean"}, "normalised_over": {"type": ["string", "null"]},
    "path_length": {"type": "integer"}, "lca": ref("TermRef"), "formula": {"type": "string"},
    "reference": {"type": "string"}}})
add_schema("Me", {"type": "object", "required": ["name", "role", "iri"], "properties": {
    "name": {"type": "string"}, "role": {"type": "string", "enum": ["researcher", "radiologist", "curator", "admin"]},
    "iri": {"type": "string", "format": "uri"}, "csrf_token": {"type": "string"}}})

add_path("/openapi.json", "get", {"summary": "This OpenAPI document", "operationId": "openapi",
                                  "responses": {"200": {"description": "OpenAPI 3.1 document",
                                                        "content": {"application/json": {"schema": {"type": "object"}}}}}})
add_path("/status", "get", {"summary": "Store and app status", "operationId": "status",
                            "responses": {"200": json_response("Status", ref("Status"))}})
add_path("/ontologies", "get", {"summary": "Loaded ontologies (the catalog graph)", "operationId": "ontologies",
                                "responses": {"200": json_response("Ontologies", {"type": "array",
                                                                                  "items": ref("Ontology")})}})
add_path("/terms", "get", {"summary": "The retrieval vocabulary in vector order, with labels and categories",
                           "operationId": "terms",
                           "responses": {"200": json_response("Terms", {"type": "array",
                                                                        "items": ref("VocabularyTerm")})}})
add_path("/terms/{rid}", "get", {"summary": "One term of the loaded ontology", "operationId": "term",
                                 "parameters": [_RID],
                                 "responses": {"200": json_response("Term", ref("Term")),
                                               "400": error_response("Not a RadLex id"),
                                               "404": error_response("Not in the ontology")}})
add_path("/terms/{rid}/dissimilarity", "get", {
    "summary": "Ontological dissimilarity between two terms", "operationId": "dissimilarity",
    "parameters": [_RID,
                   {"name": "to", "in": "query", "required": True, "schema": {"type": "string"},
                    "description": "The second RadLex id"},
                   {"name": "measure", "in": "query", "required": False,
                    "schema": {"type": "string", "enum": sorted(MEASURES), "default": "kurtz"}}],
    "responses": {"200": json_response("Dissimilarity", ref("Dissimilarity")),
                  "400": error_response("Bad id or measure"), "404": error_response("Unknown term")}})
add_path("/me", "get", {"summary": "The logged-in user", "operationId": "me", "security": SESSION_SECURITY,
                        "responses": {"200": json_response("User", ref("Me")),
                                      "401": error_response("Not logged in")}})
