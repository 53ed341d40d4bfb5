"""The one error handler: every error becomes JSON (for /api/, /sparql and JSON clients) or an HTML page.

Known errors keep their message and status; a request over one of werkzeug's body limits is a 413 that names the
limits; anything else is logged and answered with a generic 500, never a stack trace. The JSON shape is
``{"error": {"status": 404, "title": "Not found", "message": "..."}}``.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from kg import (
    QueryError,
    ReadOnlyStoreError,
    RemoteEndpointError,
    StoreError,
    StoreLockedError,
)
from ontology import OntologyError, UnknownTermError
from semgraph.errors import SemgraphError

# (exception class, status, title), most specific first.
_STORE_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (QueryError, 400, "Invalid query"),
    (ReadOnlyStoreError, 403, "Read-only store"),
    (StoreLockedError, 503, "Store locked"),
    (RemoteEndpointError, 502, "Store unreachable"),
    (StoreError, 500, "Store error"),
    (UnknownTermError, 404, "Unknown term"),
    (OntologyError, 500, "Ontology error"),
)


def wants_json() -> bool:
    """True for /api/ and /sparql, and for clients that prefer JSON to HTML."""
    if request.path.startswith("/api/") or request.path == "/sparql":
        return True
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", "application/json"]) == "application/json" and \
        accept["application/json"] > accept["text/html"]


def _too_large() -> SemgraphError:
    """A request over one of werkzeug's body limits, on any page or endpoint (uploads come through the pages and the
    API alike), as a 413 naming the limits instead of werkzeug's generic text."""
    # imported here, not at the top: uploads imports auth, which imports this module
    from .uploads import MAX_UPLOAD_BYTES, PayloadTooLarge, megabytes

    config = current_app.config
    limits = ((config.get("MAX_CONTENT_LENGTH"), "for the whole request (MAX_CONTENT_LENGTH)"),
              (MAX_UPLOAD_BYTES, "per uploaded file"), (config.get("MAX_FORM_MEMORY_SIZE"), "per form field"))
    named = ", ".join(f"{megabytes(size)} {what}" for size, what in limits if size)
    return PayloadTooLarge(f"the request is larger than the server accepts ({named}); nothing was kept")


def describe(exc: BaseException) -> tuple[int, str, str, dict[str, str]]:
    """(status, title, message, extra headers) for an exception; unknown ones give a generic 500."""
    if isinstance(exc, RequestEntityTooLarge):
        exc = _too_large()
    if isinstance(exc, HTTPException):
        headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "www-authenticate", "retry-after")}
        return exc.code or 500, exc.name, exc.description or exc.name, headers
    if isinstance(exc, SemgraphError):
        return exc.status, exc.title, exc.message, dict(getattr(exc, "headers", {}) or {})
    for cls, status, title in _STORE_ERRORS:
        if isinstance(exc, cls):
            return status, title, str(exc), {}
    return 500, "Internal error", "Something went wrong on the server; the error was logged.", {}


def handle(exc: BaseException):
    status, title, message, headers = describe(exc)
    if status == 503:  # overload or a time limit: expected, one line without a traceback
        current_app.logger.warning("%s %s: %s: %s", request.method, request.path, title, message)
    elif status >= 500:
        current_app.logger.error("%s %s failed", request.method, request.path, exc_info=exc)
    if wants_json():
        response = jsonify(error={"status": status, "title": title, "message": message})
    else:
        response = render_template("error.html", status=status, title=title, message=message)
    return response, status, headers


def init_app(app: Flask) -> None:
    app.register_error_handler(Exception, handle)
