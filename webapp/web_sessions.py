"""Retrieval sessions across requests: start, find, feedback rounds, undo, and who may do what with them.

A session lives at ``/sessions/<id>``. It starts in the graph: its start record (query, user, k, filters, the
feedback algorithm, warnings, a title; :meth:`semgraph.feedback.sessions.Session.record_start`) and then its rounds
are in the store, and a session not in this process's memory (after a restart, or started by another worker) is
replayed from there (:func:`semgraph.feedback.replay.load_session`). What is private to the owner of an uploaded
query image (the upload's token, its file name, the region drawn on it) is never written to the shared graph: it
is kept in ``DATA_DIR/web-sessions/<id>.json``. On a store that other processes write to
(:attr:`kg.Store.shared`), a session kept in memory is checked against the rounds stored for it before each use and
replayed when another process added or undid a round.

Only the user who started a session adds or undoes its rounds. The rest of a session (its query terms, rankings and
rounds) is open to every logged-in user, read-only, like the feedback rounds that the shared graph records, except
what is private to the owner of an uploaded query image (:func:`may_see_private`, :func:`private_parts`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.feedback.algorithms import FeedbackParams, session_algorithm
from semgraph.feedback.replay import load_session, session_start
from semgraph.feedback.sessions import (
    Session,
    start_session,
    start_text_session,
)
from semgraph.files import write_atomically
from semgraph.retrieval.engine import Hit

from .auth import Forbidden, current_user
from .engines import SESSIONS_KEY, cached, engine
from .params import check_id, parse_filters
from .services import Services, services

SESSIONS_DIR = "web-sessions"
#: Most sessions kept in memory (each holds its own index); older ones are replayed from the store on demand.
SESSION_CACHE_SIZE = 32

_lock = threading.Lock()  # guards the sessions kept in memory


@dataclass
class Entry:
    """A session kept in memory, with its start record and the ranking after each round (0 = before feedback)."""

    session: Session
    meta: dict
    rankings: dict[int, list[Hit]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def id(self) -> str:
        return self.session.session_id

    @property
    def round(self) -> int:
        return len(self.session.rounds)


# --------------------------------------------------------------------------------------------------- memory


def _sessions(svc: Services) -> OrderedDict:
    return cached(svc, SESSIONS_KEY, OrderedDict)


def _remember(svc: Services, entry: Entry) -> Entry:
    cache = _sessions(svc)
    with _lock:
        cache[entry.id] = entry
        cache.move_to_end(entry.id)
        while len(cache) > SESSION_CACHE_SIZE:
            cache.popitem(last=False)
    return entry


def _forget(svc: Services, entry: Entry) -> None:
    """Drop ``entry`` from memory (if it is still the cached one), so the next request replays it from the store."""
    cache = _sessions(svc)
    with _lock:
        if cache.get(entry.id) is entry:
            del cache[entry.id]


# --------------------------------------------------------------------------------------------------- start, find


def _private_path(svc: Services, session_id: str) -> Path:
    return Path(svc.config.data_dir) / SESSIONS_DIR / f"{session_id}.json"


def text_label(text: str) -> str:
    short = " ".join(text.split())
    return f"text “{short if len(short) <= 80 else short[:79] + '…'}”"


def create_session(query, user: str, *, k: int = DEFAULT_K, filters=None, label: str | None = None,
                   upload: str | None = None, roi: dict | None = None, text: str | None = None,
                   algorithm: str | None = None, warnings: list[dict] | None = None) -> Entry:
    """Start a session for ``query`` (a case id or a likelihood vector) by ``user`` and record its start.

    ``warnings`` (``{code, message}`` items, e.g. an uploaded image's out-of-distribution warnings) are kept in the
    start record; the session page and its JSON show them. ``upload``, ``roi`` and ``label`` of an image query are
    private to its owner and kept in the data folder, not in the graph (whose title for it is "uploaded image").

    With ``text`` (and ``query=None``) the query is the parsed term vector of a free-text query
    (:func:`semgraph.feedback.sessions.start_text_session`). ``algorithm`` is the feedback algorithm of every round of the
    session (default: :func:`session_algorithm`).
    """
    svc = services()
    texts, parsed = parse_filters(filters)
    algorithm = session_algorithm(algorithm, text=text is not None)
    if text is not None:
        if query is not None:
            raise InvalidInput("give a query case, a vector or a text, not several")
        session = start_text_session(svc.store, engine(svc), text, user, k=k, filters=parsed)
    else:
        session = start_session(svc.store, engine(svc), query, user, k=k, filters=parsed)
    title = UPLOAD_TITLE if upload else (label or _default_title(session))  # an image's own label is private
    parameters = {"k": k, "filters": texts, "algorithm": algorithm, "warnings": list(warnings or [])}
    private = {"upload": upload, "roi": _roi_record(roi), "label": label or title} if upload else None
    if private is not None:
        data = json.dumps(private, indent=1).encode("utf-8")
        write_atomically(_private_path(svc, session.session_id), lambda handle: handle.write(data))
    session.record_start(title=title, parameters=parameters)
    entry = Entry(session, _meta(session, {"title": title, **parameters}, private))
    entry.rankings[0] = list(session.ranking)
    return _remember(svc, entry)


#: The graph's title of a session whose query is an uploaded image (its file name is private to its owner).
UPLOAD_TITLE = "uploaded image"


def _default_title(session: Session) -> str:
    return (f"case {session.query_case}" if session.query_case else
            text_label(session.query_text) if session.query_text else "likelihood vector")


def _meta(session: Session, start: dict | None, private: dict | None) -> dict:
    """What the pages show of a session's start: its start record (or defaults for a session recorded with its
    first round only) and, for an image query, the private parts."""
    start = start or {}
    meta = {"user": session.user, "query_case": session.query_case, "query_text": session.query_text,
            "k": session.k, "filters": list(start.get("filters") or []), "warnings": list(start.get("warnings") or []),
            "algorithm": start.get("algorithm") or (session.rounds[-1].params.algorithm if session.rounds else None),
            "label": start.get("title") or _default_title(session), "upload": None, "roi": None}
    if private:
        meta.update(upload=private.get("upload"), roi=private.get("roi"), label=private.get("label") or meta["label"])
    return meta


def _roi_record(roi: dict | None) -> dict | None:
    if not roi:
        return None
    return {k: (v if isinstance(v, str) else [list(p) if isinstance(p, (list, tuple)) else p for p in v])
            for k, v in roi.items()}


def get_session(session_id: str, *, seen: int | None = None) -> Entry:
    """The session ``session_id``: from memory, else replayed from the store (its start record and rounds).

    On a shared store the copy in memory is first checked against the stored rounds, unless the client says it saw
    the copy's last round (``seen``): a write on such a copy checks the store itself (the round claim, the undo)."""
    svc = services()
    check_id(session_id, "session")
    cache = _sessions(svc)
    with _lock:
        entry = cache.get(session_id)
    if entry is not None and (not svc.store.shared or seen == entry.round or entry.session.is_current()):
        return entry
    start = session_start(svc.store, session_id)
    path = _private_path(svc, session_id)
    private = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    k = int(start["k"]) if start and "k" in start else DEFAULT_K
    parsed = parse_filters((start or {}).get("filters"))[1]
    session = load_session(svc.store, session_id, engine(svc), k=k, filters=parsed)
    entry = Entry(session, _meta(session, start, private))
    entry.rankings[entry.round] = list(session.ranking)
    return _remember(svc, entry)


# --------------------------------------------------------------------------------------------------- who may


def may_see_private(owner: str | None, user) -> bool:
    """True if ``user`` may see what is private to the user ``owner`` (an uploaded image, its token, file name and
    region): the owner and admins may."""
    return user is not None and (user.name == owner or user.role == "admin")


def private_parts(entry: Entry) -> dict:
    """The ``label`` and ``upload`` (token) of a session as the current user may see them: an image query's token
    and file name only for its owner and admins (others get no token and the label "uploaded image")."""
    upload, label = entry.meta.get("upload"), entry.meta.get("label")
    if upload and not may_see_private(entry.session.user, current_user()):
        return {"label": "uploaded image", "upload": None}
    return {"label": label, "upload": upload}


def check_owner(entry: Entry, user) -> None:
    """Only the user who started a session may add or undo its rounds (marks are attributed to that user)."""
    if user is None or user.name != entry.session.user:
        raise Forbidden(f"session {entry.id} belongs to {entry.session.user}; start your own session from the same "
                        "query to give feedback (every mark is attributed to the user who gives it)")


# --------------------------------------------------------------------------------------------------- rounds


def _expect_round(entry: Entry, seen: int | None, nothing: str) -> None:
    """409 when the client saw another round than the session's last one (a round added or undone elsewhere)."""
    if seen is not None and seen != entry.round:
        change = (f"round {entry.round} was added" if entry.round > seen else f"round {seen} was undone")
        raise SemgraphError(f"{change} to session {entry.id} meanwhile (in another window or by another user of "
                            f"the same account), so the page you acted on is out of date; {nothing}; reload the "
                            "session and try again", title="Conflict", status=409)


def apply_marks(entry: Entry, marks: dict, user, *, seen: int | None = None) -> None:
    """One feedback round by the session's owner (marks: case id → relevant | irrelevant | neutral) on the results
    the client saw after round ``seen`` (409 if the session has moved on since; None: no check)."""
    check_owner(entry, user)
    marks = entry.session.check_marks(marks, decisive=True)
    algorithm = session_algorithm(entry.meta.get("algorithm"), text=entry.session.query_text is not None)
    with entry.lock:
        _expect_round(entry, seen, "no feedback was applied")
        before = list(entry.session.ranking)
        with _replay_after_conflict(entry):
            new = entry.session.feedback(marks, FeedbackParams(algorithm=algorithm))
        entry.rankings.setdefault(new.number - 1, before)
        entry.rankings[new.number] = list(entry.session.ranking)


@contextmanager
def _replay_after_conflict(entry: Entry) -> Iterator[None]:
    """On a 409 (another process changed the session in the store) forget ``entry``, so that the next request
    replays the session from the store instead of answering 409 from a stale copy forever."""
    try:
        yield
    except SemgraphError as exc:
        if exc.status == 409:
            _forget(services(), entry)
        raise


def undo(entry: Entry, user, *, seen: int | None = None) -> int:
    """Undo the last round (the client saw round ``seen``: 409 if that is no longer the last one; None: no check);
    returns the number of the round that was undone.

    The round is dropped only while it is the session's last round in the store (see
    :meth:`semgraph.feedback.sessions.Session.undo`): when another window or server process added or undid a round
    meanwhile, the 409 leaves the store as it is and the next request works on the session as stored.
    """
    check_owner(entry, user)
    with entry.lock:
        _expect_round(entry, seen, "nothing was undone")
        with _replay_after_conflict(entry):
            last = entry.session.undo()
        entry.rankings.pop(last.number, None)
        entry.rankings[entry.round] = list(entry.session.ranking)
        return last.number


def ranking_after(entry: Entry, number: int) -> list[Hit]:
    """The ranking after round ``number`` (0: before any feedback), recomputed with that round's D, query and term
    weights."""
    if number in entry.rankings:
        return entry.rankings[number]
    s = entry.session
    D = s.rounds[number - 1].dissimilarity if number >= 1 else s.baseline
    q = s.rounds[number - 1].query if number >= 1 else s.query0
    w = s.rounds[number - 1].weights if number >= 1 else None
    exclude = (s.query_case,) if s.query_case else ()
    hits = s.engine.with_dissimilarity(D, term_weights=w).search_vector(q, s.k, s.filters, exclude=exclude)
    entry.rankings[number] = hits
    return hits


def round_dissimilarity(entry: Entry, number: int | None) -> tuple[int, np.ndarray, set[str]]:
    """(round number, D after it, terms whose pairs changed in it); ``None`` = the current round."""
    s = entry.session
    n = entry.round if number is None else number
    if not 0 <= n <= entry.round:
        raise NotFound(f"session {entry.id} has rounds 0 to {entry.round}, not {n}")
    if n == 0:
        return 0, s.baseline, set()
    r = s.rounds[n - 1]
    return n, r.dissimilarity, {t for c in r.changes for t in (c.term_a, c.term_b)}
