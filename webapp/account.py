"""The account page: who you are, and your API tokens, created and revoked by yourself.

HTML: ``/account`` shows the logged-in user's name and role, their tokens (label, created, expires) and a form to
create one; ``POST /account/tokens`` (``label``, ``days``) creates a token and answers with the page showing the new
token once (never in a URL, a flash message or a cookie); ``POST /account/tokens/<label>/revoke`` revokes one.
JSON twins: ``GET /api/v1/me/tokens``, ``POST /api/v1/me/tokens`` ``{label, days}`` (201 with the token) and
``DELETE /api/v1/me/tokens/<label>``. Any logged-in user, for their own tokens only; a request signed with an API
token may manage its user's tokens too. The tokens themselves are kept by :class:`semgraph.users.UserStore`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Blueprint,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from semgraph.errors import InvalidInput
from semgraph.users import MAX_TOKEN_DAYS, TokenInfo, validate_name

from .auth import current_user, login_required
from .openapi import (
    SESSION_SECURITY,
    add_schema,
    error_response,
    json_response,
    operation,
    ref,
)
from .params import whole_number
from .services import get_users

bp = Blueprint("account", __name__)
api_bp = Blueprint("account_api", __name__, url_prefix="/api/v1")

#: Lifetime of a new token when none is given, in days (as `semgraph user token`).
DEFAULT_TOKEN_DAYS = 90
_NO_STORE = {"Cache-Control": "no-store"}


def check_label(value: Any) -> str:
    """``value`` as a token label (1–64 letters, digits, ``_ . -``, starting with a letter or digit), else
    :class:`InvalidInput`."""
    label = value.strip() if isinstance(value, str) else value
    if not label:
        raise InvalidInput("give the token a label, for example the name of the script or notebook that uses it")
    try:
        return validate_name(label)
    except InvalidInput:
        raise InvalidInput(f"invalid token label {label!r}: use 1-64 letters, digits, '_', '.' or '-', starting "
                           "with a letter or digit") from None


def check_days(value: Any) -> int:
    """``value`` as a token lifetime in days (1 to :data:`MAX_TOKEN_DAYS`; :data:`DEFAULT_TOKEN_DAYS` if empty)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_TOKEN_DAYS
    if isinstance(value, (bool, float)):
        raise InvalidInput(f"days must be a whole number, got {value!r}")
    return whole_number(value, "days", minimum=1, maximum=MAX_TOKEN_DAYS)


def _as_dict(info: TokenInfo, now: str) -> dict:
    return {"label": info.label, "created": info.created, "expires": info.expires, "expired": info.expires <= now}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def my_tokens() -> list[dict]:
    """The current user's API tokens (label, created, expires, expired), never the tokens themselves."""
    now = _now()
    return [_as_dict(info, now) for info in get_users().tokens(current_user().name)]


def create_my_token(values) -> tuple[dict, str]:
    """Create an API token for the current user from ``values`` (``label``, ``days``): (its entry, the token)."""
    label, days = check_label(values.get("label")), check_days(values.get("days"))
    name = current_user().name
    users = get_users()
    token = users.create_token(name, label, days)
    info = next(info for info in users.tokens(name) if info.label == label)
    return _as_dict(info, _now()), token


def revoke_my_token(label: str) -> None:
    """Revoke the current user's token ``label`` (:class:`semgraph.errors.NotFound` if they have none by that
    label, also when another user has one)."""
    get_users().revoke_token(current_user().name, label)


def _page(new: dict | None = None, token: str | None = None) -> Response:
    html = render_template("account.html", user=current_user(), tokens=my_tokens(), new=new, new_token=token,
                           max_days=MAX_TOKEN_DAYS, default_days=DEFAULT_TOKEN_DAYS)
    return Response(html, headers=_NO_STORE)


# ------------------------------------------------------------------------------------------- pages

@bp.route("/account")
@login_required
def page():
    return _page()


@bp.route("/account/tokens", methods=["POST"])
@login_required
def create_token():
    """Create a token and show it in this answer, once."""
    new, token = create_my_token(request.form)
    return _page(new, token)


@bp.route("/account/tokens/<label>/revoke", methods=["POST"])
@login_required
def revoke_token(label: str):
    revoke_my_token(label)
    return redirect(url_for("account.page"), code=303)


# ------------------------------------------------------------------------------------------- JSON twins

add_schema("ApiToken", {"type": "object", "required": ["label", "created", "expires", "expired"], "properties": {
    "label": {"type": "string"}, "created": {"type": "string", "format": "date-time"},
    "expires": {"type": "string", "format": "date-time"}, "expired": {"type": "boolean"}}})
_LABEL = {"name": "label", "in": "path", "required": True,
          "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}}


@operation("/me/tokens", "get", {
    "summary": "The caller's API tokens (label, created, expires), never the tokens themselves (as /account shows)",
    "operationId": "myTokens", "security": SESSION_SECURITY,
    "responses": {"200": json_response("The tokens", {"type": "object", "properties": {
        "tokens": {"type": "array", "items": ref("ApiToken")}}}), "401": error_response("Not logged in")}})
@api_bp.route("/me/tokens")
@login_required
def api_tokens():
    return jsonify({"tokens": my_tokens()}), 200, _NO_STORE


@operation("/me/tokens", "post", {
    "summary": "Create an API token for the caller; the answer holds the token, the only time it is shown",
    "operationId": "createMyToken", "security": SESSION_SECURITY,
    "requestBody": {"content": {"application/json": {"schema": {
        "type": "object", "required": ["label"], "properties": {
            "label": _LABEL["schema"],
            "days": {"type": "integer", "minimum": 1, "maximum": MAX_TOKEN_DAYS, "default": DEFAULT_TOKEN_DAYS}}}}}},
    "responses": {"201": json_response("The new token", {"allOf": [ref("ApiToken"), {
        "type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}]}),
        "400": error_response("Bad label or days, or a token with this label exists"),
        "401": error_response("Not logged in")}})
@api_bp.route("/me/tokens", methods=["POST"])
@login_required
def api_create_token():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object {label, days}")
    new, token = create_my_token(body)
    return jsonify({**new, "token": token}), 201, _NO_STORE


@operation("/me/tokens/{label}", "delete", {
    "summary": "Revoke one of the caller's API tokens: it stops working with the next request",
    "operationId": "revokeMyToken", "security": SESSION_SECURITY, "parameters": [_LABEL],
    "responses": {"200": json_response("Revoked", {"type": "object", "properties": {
        "label": {"type": "string"}, "revoked": {"type": "boolean"}}}),
        "401": error_response("Not logged in"), "404": error_response("The caller has no token with this label")}})
@api_bp.route("/me/tokens/<label>", methods=["DELETE"])
@login_required
def api_revoke_token(label: str):
    revoke_my_token(label)
    return jsonify({"label": label, "revoked": True})
