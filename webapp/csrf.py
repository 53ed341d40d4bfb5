"""CSRF protection, written here (no Flask-WTF): one random token per session, checked on every unsafe request.

Forms carry it in a hidden ``csrf_token`` field (templates call ``csrf_token()``); scripts send it in the
``X-CSRF-Token`` header. Views marked :func:`csrf_exempt` check what they need themselves (``/sparql`` accepts
queries from any client and demands the token only for updates authorised by a session cookie). A request
authenticated by an API token (:func:`webapp.auth.authenticate_bearer` calls :func:`exempt_request`) needs none: a
browser sends a cookie on its own, never an ``Authorization`` header.

The token outlives a login (:func:`clear_session`): a script that read it from the login form and posted the form
goes on sending it. It is random, bound to the signed session cookie and never shown to another origin, so it
proves a request came from our pages as well before the login as after.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from flask import Flask, current_app, g, request, session

from semgraph.errors import SemgraphError

_SESSION_KEY = "_csrf"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


class CSRFError(SemgraphError):
    status = 400
    title = "Form expired"


def csrf_token() -> str:
    """This session's token (created on first use)."""
    token = session.get(_SESSION_KEY)
    if not token:
        token = session[_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Raise :class:`CSRFError` unless the request carries this session's token."""
    expected = session.get(_SESSION_KEY)
    sent = request.headers.get(HEADER) or request.form.get(FIELD)
    if not expected or not sent or not secrets.compare_digest(str(expected), str(sent)):
        raise CSRFError("the form's security token is missing or does not match your session (it may have "
                        "expired, or the request came from another site). Reload the page and try again.")


def exempt_request() -> None:
    """Let this request through without a token (called once its API token has authenticated it)."""
    g.csrf_exempt = True


def clear_session() -> None:
    """Empty the session (at login) but keep its CSRF token."""
    token = csrf_token()
    session.clear()
    session[_SESSION_KEY] = token


def csrf_exempt(view: Callable) -> Callable:
    """Mark a view as checking CSRF itself."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def _protect() -> None:
    if request.method not in _UNSAFE or g.get("csrf_exempt"):
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "csrf_exempt", False):
        return
    check_csrf()


def init_app(app: Flask) -> None:
    app.before_request(_protect)
    app.jinja_env.globals["csrf_token"] = csrf_token
