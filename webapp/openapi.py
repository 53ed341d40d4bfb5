"""The OpenAPI 3.1 document of the JSON API (served at ``/api/v1/openapi.json``).

It is assembled from :data:`PATHS` and :data:`SCHEMAS`; a module that adds endpoints registers them with
:func:`operation` (a decorator of the view function), :func:`add_path` and :func:`add_schema` at import time (paths are
relative to the ``/api/v1`` server URL).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

PATHS: dict[str, dict[str, Any]] = {}
SCHEMAS: dict[str, dict[str, Any]] = {}
V = TypeVar("V", bound=Callable)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_response(description: str) -> dict:
    return json_response(description, ref("Error"))


def add_schema(name: str, schema: dict) -> None:
    if name in SCHEMAS and SCHEMAS[name] != schema:
        raise ValueError(f"OpenAPI schema {name!r} is already defined differently")
    SCHEMAS[name] = schema


def add_path(path: str, method: str, operation: dict) -> None:
    """Register one operation (``method`` in lower case) of ``path`` (relative to /api/v1)."""
    entry = PATHS.setdefault(path, {})
    if method in entry:
        raise ValueError(f"OpenAPI operation {method.upper()} {path} is already registered")
    entry[method] = operation


#: The ``security`` of an operation open to logged-in users (a session cookie, or an API token: see :func:`_with_token`).
SESSION_SECURITY: list[dict[str, list]] = [{"session": []}]


def operation(path: str, method: str, description: dict) -> Callable[[V], V]:
    """Decorator of a view function: register ``description`` as the operation ``method`` of ``path`` (see
    :func:`add_path`), so that an endpoint's description stands next to the code that serves it."""
    def register(view: V) -> V:
        add_path(path, method, description)
        return view

    return register


def _with_token(paths: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``paths`` where every operation open to a session also accepts an API token (the same users may call it)."""
    for operations in paths.values():
        for op in operations.values():
            if {"session": []} in op.get("security", ()) and {"token": []} not in op["security"]:
                op["security"] = [*op["security"], {"token": []}]
    return paths


def document() -> dict:
    """The complete OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "semgraph API", "version": "1",
                 "description": "JSON API of semgraph: knowledge-graph backed retrieval of liver-lesion CT images. "
                                "The SPARQL 1.1 Protocol endpoint is at /sparql (outside this API). Errors are "
                                "{\"error\": {\"status\", \"title\", \"message\"}}."},
        "servers": [{"url": "/api/v1"}],
        "paths": _with_token(copy.deepcopy(PATHS)),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "session",
                                            "description": "The session cookie set by POST /login; unsafe "
                                                           "methods also need the X-CSRF-Token header."},
                                "token": {"type": "http", "scheme": "bearer",
                                          "description": "An API token from `semgraph user token NAME`: the request "
                                                         "acts as that user, without cookie or CSRF token."}},
        },
    }


add_schema("Error", {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["status", "title", "message"], "properties": {
        "status": {"type": "integer"}, "title": {"type": "string"}, "message": {"type": "string"}}}},
})
