"""Login, logout, API tokens, the current user and the ``login_required`` decorator.

The session cookie (signed with the app's secret key) holds the user name and the user's session epoch
(:class:`semgraph.users.User`); the role is read from the user list on every request, so a removed user or a
changed role takes effect at once. A cookie whose epoch is not the user's current one is logged out: logout, a new
password and a new role change the epoch in ``DATA_DIR/users.json``, which ends every session of the user in
every worker process, including copies of the cookie.

A request with ``Authorization: Bearer <API token>`` (``semgraph user token``) acts as the token's user with that
user's current role, whatever cookie it carries, and needs no CSRF token (a browser never adds that header to a
request another site makes); a malformed, unknown, revoked or expired token is a 401 that says which. This holds
for ``/sparql`` too (a curator's token runs updates there), except for the endpoint's own ``SPARQL_UPDATE_TOKEN``,
which :mod:`webapp.sparql` checks itself.

Failed logins are throttled per user name and per client address (:class:`semgraph.users.LoginThrottle`, settings
``LOGIN_FAILURES_PER_USER``, ``LOGIN_FAILURES_PER_ADDRESS``, ``LOGIN_FAILURE_WINDOW``). The address is the one the
server sees: behind a reverse proxy, that is the proxy's unless the server trusts its forwarded headers.
"""

from __future__ import annotations

import functools
import secrets
import unicodedata
from collections.abc import Callable

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from rdflib import URIRef

from semgraph.errors import SemgraphError
from semgraph.graph.casegraph import user_iri
from semgraph.users import InvalidToken, LoginThrottle, User

from . import csrf
from .errors import wants_json
from .services import get_users, services

bp = Blueprint("auth", __name__)
_SESSION_USER = "user"
_SESSION_EPOCH = "epoch"


class NotLoggedIn(SemgraphError):
    status = 401
    title = "Login required"


class Forbidden(SemgraphError):
    status = 403
    title = "Forbidden"


def _bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def is_update_token(token: str) -> bool:
    """Whether ``token`` is the SPARQL endpoint's configured ``SPARQL_UPDATE_TOKEN`` (not a user's API token)."""
    expected = current_app.config.get("SPARQL_UPDATE_TOKEN") or ""
    return bool(expected) and secrets.compare_digest(token.encode(), expected.encode())


def authenticate_bearer() -> None:
    """Before every request: a user's API token decides the user, or answers 401 at once (the endpoint's update
    token on ``/sparql`` is left to :mod:`webapp.sparql`)."""
    token = _bearer_token()
    if token is None or (request.blueprint == "sparql" and is_update_token(token)):
        return
    g.user = None
    try:
        g.user = get_users().authenticate_token(token)
    except InvalidToken as exc:
        exc.headers = {"WWW-Authenticate": 'Bearer realm="semgraph", error="invalid_token"'}
        raise
    csrf.exempt_request()


def init_app(app) -> None:
    """Register the bearer-token check (before :func:`webapp.csrf.init_app`, so that it runs first)."""
    app.before_request(authenticate_bearer)


def current_user() -> User | None:
    """The logged-in user of this request, or None (also for a cookie of an ended session: see the module)."""
    if "user" not in g:
        name = session.get(_SESSION_USER)
        user = get_users().get(name) if isinstance(name, str) else None
        g.user = user if user is not None and session.get(_SESSION_EPOCH) == user.epoch else None
    return g.user


def current_user_iri() -> URIRef:
    """The IRI (``prov:Person``) that writes of this request are attributed to; 401 if nobody is logged in."""
    user = current_user()
    if user is None:
        raise NotLoggedIn("log in first: writes are attributed to the logged-in user")
    return user_iri(user.name)


def login_required(view: Callable | None = None, *, role: str | tuple[str, ...] | None = None) -> Callable:
    """Let the view run only for a logged-in user holding ``role`` (one of them if a tuple; admin always passes).

    Anonymous browsers are sent to the login page; JSON clients get 401. A user without the role gets 403.
    Use as ``@login_required`` or ``@login_required(role="curator")``.
    """
    roles = (role,) if isinstance(role, str) else tuple(role or ())

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                if wants_json():
                    raise NotLoggedIn("this needs a logged-in user")
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if roles and not user.has_role(*roles):
                raise Forbidden(f"this needs the role {' or '.join(roles)}; you are logged in as {user.name} "
                                f"({user.role})")
            return func(*args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the home page (no open redirect).

    A path starts with exactly one "/" and holds no backslash, control, format or space character: browsers drop
    tabs and line breaks from a URL and read "\\" as "/", so "/<tab>/evil.example" or "/\\evil.example" would
    lead to another host. Such a path has neither a scheme nor a host, however a browser cleans it up.
    """
    if (isinstance(target, str) and target.startswith("/") and not target.startswith("//")
            and not any(ch == "\\" or unicodedata.category(ch)[0] in "CZ" for ch in target)):
        return target
    return url_for("pages.home")


def _throttle() -> LoginThrottle:
    """The failed-login counts of this app's data folder, with the app's limits."""
    config = current_app.config
    return LoginThrottle.in_data_dir(services().config.data_dir, per_user=int(config["LOGIN_FAILURES_PER_USER"]),
                                     per_address=int(config["LOGIN_FAILURES_PER_ADDRESS"]),
                                     window=float(config["LOGIN_FAILURE_WINDOW"]))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """GET: the login form. POST: check the name and password (CSRF-checked), then go to ``next``.

    A name or address with too many recent failures gets 429 with Retry-After before the password is looked at."""
    error = None
    status = 200
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        address = request.remote_addr or "unknown"
        throttle = _throttle()
        throttle.check(name, address)
        user = get_users().authenticate(name, request.form.get("password", ""))
        if user is not None:
            throttle.succeeded(name)
            csrf.clear_session()  # a fresh session; the form's CSRF token stays valid for scripts that posted it
            session[_SESSION_USER] = user.name
            session[_SESSION_EPOCH] = user.epoch
            return redirect(_safe_next(request.form.get("next")))
        throttle.failed(name, address)
        error, status = "Wrong user name or password.", 401
    return render_template("login.html", error=error, next=request.values.get("next", "")), status


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session, on the server too: every session of the user ends (other browsers, copies of the cookie).

    A POST with the CSRF token, so another site cannot log you out."""
    user = current_user()
    if user is not None:
        get_users().end_sessions(user.name)
    session.clear()
    return redirect(url_for("pages.home"))
