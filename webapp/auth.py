"""Login, logout, the current user and the ``login_required`` decorator.

The session cookie (signed with the app's secret key) holds only the user name; the user's role is read from the
user list on every request, so a removed user or a changed role takes effect at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from rdflib import URIRef

from semgraph.casegraph import user_iri
from semgraph.errors import SemgraphError
from semgraph.users import User

from .errors import wants_json
from .services import get_users

bp = Blueprint("auth", __name__)
_SESSION_USER = "user"


class NotLoggedIn(SemgraphError):
    status = 401
    title = "Login required"


class Forbidden(SemgraphError):
    status = 403
    title = "Forbidden"


def current_user() -> User | None:
    """The logged-in user of this request, or None."""
    if "user" not in g:
        name = session.get(_SESSION_USER)
        g.user = get_users().get(name) if isinstance(name, str) else None
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
    """Only local paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """GET: the login form. POST: check the name and password (CSRF-checked), then go to ``next``."""
    error = None
    status = 200
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        user = get_users().authenticate(name, request.form.get("password", ""))
        if user is not None:
            session.clear()  # a fresh session (and CSRF token) after login
            session[_SESSION_USER] = user.name
            return redirect(_safe_next(request.form.get("next")))
        error, status = "Wrong user name or password.", 401
    return render_template("login.html", error=error, next=request.values.get("next", "")), status


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session (a POST with the CSRF token, so another site cannot log you out)."""
    session.clear()
    return redirect(url_for("pages.home"))
