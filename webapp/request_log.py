"""One log line per request (logger ``semgraph.requests``, level INFO), when the ``REQUEST_LOG`` setting is on.

A line reads ``GET /cases?q&page 200 12.3 ms alice``: the method, the path with the names of the query parameters
but not their values (a value may be a secret or a patient's identifier), the status, the time the app took in
milliseconds and the user name (``-`` when nobody is logged in). :func:`webapp.serving` sends the logger to
standard error; tests read it with ``caplog``.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, g, request

from .auth import current_user

LOGGER = logging.getLogger("semgraph.requests")


def _start() -> None:
    g.request_started = time.perf_counter()


def _shown_path() -> str:
    """The request path with its query parameters' names only (in order, each once)."""
    names = "&".join(dict.fromkeys(request.args.keys()))
    return f"{request.path}?{names}" if names else request.path


def _log(response):
    if not current_app.config["REQUEST_LOG"]:
        return response
    started = g.get("request_started")
    milliseconds = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    try:
        user = current_user()
    except Exception:  # noqa: BLE001 - a damaged user file is reported by the request itself, not by its log line
        user = None
    LOGGER.info("%s %s %d %.1f ms %s", request.method, _shown_path(), response.status_code, milliseconds,
                user.name if user is not None else "-")
    return response


def init_app(app: Flask) -> None:
    """Log every request of ``app`` while its ``REQUEST_LOG`` setting is on (read per request); register before
    the other hooks so that the time includes them."""
    app.before_request(_start)
    app.after_request(_log)
