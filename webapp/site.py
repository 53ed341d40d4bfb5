"""What every page shares besides the layout: the site icon and how times and sessions are shown to people.

``/favicon.ico`` answers the SVG icon (browsers ask for that path whatever the page links). The Jinja filter
``readable_time`` turns an ISO 8601 time into "5 Dec 2026 14:03 UTC" (pages put the ISO text in the
``datetime`` attribute of a ``<time>`` element); ``session_title`` names a row of
:func:`semgraph.feedback.replay.list_sessions` by its query rather than its hex id. The JSON twins keep the ISO
times and ids. ``demo_password_hint()`` tells the login and home pages where the demo password is kept.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask, current_app, send_from_directory

from semgraph.users import demo_password_file

from .services import get_users
from .web_sessions import text_label

ICON = "favicon.svg"


def readable_time(iso: str | None) -> str:
    """``2026-12-05T14:03:27+00:00`` → ``5 Dec 2026 14:03 UTC`` (a time without zone is taken as UTC); text
    that is not an ISO time is returned as it is."""
    if not iso:
        return ""
    try:
        moment = dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return f"{moment.day} {moment:%b %Y %H:%M} UTC"


def session_title(row: dict) -> str:
    """A person's name for a listed session: its query case, its query text, or what else it searched with."""
    if row.get("query_case"):
        return f"case {row['query_case']}"
    if row.get("query_text"):
        return text_label(row["query_text"])
    return "uploaded image or term vector"


def demo_password_hint() -> str | None:
    """Where ``semgraph demo`` left the demo users' password, while that file and a demo user exist (else None)."""
    path = demo_password_file(get_users())
    return None if path is None else str(path)


def favicon():
    return send_from_directory(current_app.static_folder, ICON, mimetype="image/svg+xml", max_age=86400)


def init_app(app: Flask) -> None:
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    app.jinja_env.filters["readable_time"] = readable_time
    app.jinja_env.filters["session_title"] = session_title
    app.jinja_env.globals["demo_password_hint"] = demo_password_hint
