"""What the radiologists' pages (:mod:`webapp.radiology`) and their JSON twin (:mod:`webapp.api_retrieval`) share.

* The retrieval engine (:class:`semgraph.retrieval.engine.Engine`) built once per app and kept in the services cache;
  :func:`invalidate` drops it (a background ingest or training job does so when it finishes, and so does a SPARQL
  Update through ``/sparql``). It also writes a new token to ``DATA_DIR/cache-generation``; every app serving
  the same data folder (``semgraph serve --workers N``) compares that token with the one its caches were built
  under and drops them when it changed, so a write through one worker process is seen by all.
* Retrieval sessions across requests. A session lives at ``/sessions/<id>``: its start (query, user, k, filters,
  a label) is kept in ``DATA_DIR/web-sessions/<id>.json`` because :mod:`semgraph.feedback.sessions` records a session only
  with its first feedback round; its rounds live in the store and are replayed with
  :func:`semgraph.feedback.sessions.load_session` when the session is not in this process's memory (after a restart).
  On a store that other processes write to (:attr:`kg.Store.shared`), a session kept in memory is checked against
  the rounds stored for it before each use and replayed when another process added or undid a round.
* Uploaded query images (``DATA_DIR/uploads/<token>/``), checked for size, type and content. An upload is
  private: only its owner and admins see the image, its token, its file name and the drawn region, on the upload
  pages and on the session pages of an image query (:func:`may_see_private`). The rest of a session (its query
  terms, rankings and rounds) is open to every logged-in user, read-only, like the feedback rounds that the shared
  graph records.
* View models: hits with captions, frames and rank moves, the query's terms by category, plain-language changes.

No retrieval math here: every number comes from :mod:`semgraph`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kg.namespaces import ANNOTATIONS_GRAPH
from semgraph.config import DEFAULT_K, setting
from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.feedback.algorithms import FeedbackParams, session_algorithm
from semgraph.feedback.sessions import (
    RELEVANCE,
    Session,
    load_session,
    start_session,
    start_text_session,
)
from semgraph.files import write_atomically
from semgraph.graph.casegraph import case_iri
from semgraph.graph.rounds import case_rounds
from semgraph.retrieval import grouping
from semgraph.retrieval.engine import Engine, Filters, Hit, parse_filter

from .auth import Forbidden, current_user
from .services import Services, services

ENGINE_KEY = "radiology.engine"
MODEL_KEY = "radiology.model"
SESSIONS_KEY = "radiology.sessions"
GENERATION_KEY = "radiology.generation"
#: File in DATA_DIR whose token changes with every :func:`invalidate`, in any process serving the folder.
GENERATION_FILE = "cache-generation"
SESSIONS_DIR = "web-sessions"
UPLOADS_DIR = "uploads"
#: Most sessions kept in memory (each holds its own index); older ones are replayed from the store on demand.
SESSION_CACHE_SIZE = 32
#: Largest uploaded image or mask in bytes (the app's MAX_CONTENT_LENGTH bounds the whole request).
MAX_UPLOAD_BYTES = setting("MAX_UPLOAD_BYTES").default
#: Largest uploaded image side in pixels.
MAX_UPLOAD_SIDE = setting("MAX_UPLOAD_SIDE").default
#: Accepted upload file names (the content is checked too).
IMAGE_SUFFIXES = (".dcm", ".dicom", ".ima", ".nii", ".nii.gz", ".png")
MASK_SUFFIXES = (".png", ".nii", ".nii.gz", ".dcm")
MAX_K = setting("MAX_K").default
WRITE_ROLES = ("radiologist",)

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_lock = threading.Lock()


class NoModel(SemgraphError):
    status = 409
    title = "No term model"


# --------------------------------------------------------------------------------------------------- engine


def engine(svc: Services | None = None) -> Engine:
    """The app's retrieval engine over the cases of the store (built on first use, rebuilt after an invalidation)."""
    svc = svc or services()
    with _lock:
        _follow_generation(svc)
        cached = svc.cache.get(ENGINE_KEY)
        if cached is None:
            cached = svc.cache[ENGINE_KEY] = Engine.from_store(svc.store, collection=svc.config.collection or None,
                                                               snapshot_file=svc.config.engine_snapshot or None)
        return cached


def _generation_path(svc: Services) -> Path:
    return Path(svc.config.data_dir) / GENERATION_FILE


def generation(data_dir: str | Path) -> str:
    """The data folder's cache generation: a token that :func:`invalidate` renews in any process ("" before)."""
    try:
        return (Path(data_dir) / GENERATION_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _follow_generation(svc: Services) -> None:
    """Drop the caches when another process (or this one) invalidated them since they were built. Hold ``_lock``."""
    token = generation(svc.config.data_dir)
    if svc.cache.get(GENERATION_KEY) != token:
        for key in (ENGINE_KEY, MODEL_KEY, SESSIONS_KEY):
            svc.cache.pop(key, None)
        svc.cache[GENERATION_KEY] = token


def invalidate(svc: Services) -> None:
    """Forget the engine, the term model and the in-memory sessions (after the store's cases or models changed),
    in this process and, through ``DATA_DIR/cache-generation``, in every other process serving the data folder."""
    token = secrets.token_hex(16).encode("utf-8")
    write_atomically(_generation_path(svc), lambda handle: handle.write(token))
    with _lock:
        _follow_generation(svc)


def term_model(svc: Services | None = None):
    """The latest trained term model of the data folder; :class:`NoModel` (409) when none was trained."""
    from semgraph.exchange.ingest import latest_model, models_dir

    svc = svc or services()
    marker = models_dir(svc.config.data_dir) / "LATEST"
    version = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
    with _lock:
        cached = svc.cache.get(MODEL_KEY)
        if cached is not None and cached[0] == version:
            return cached[1]
    model = latest_model(svc.config.data_dir) if version else None
    if model is None:
        raise NoModel("searching by image needs a trained term model, and this data folder has none yet. "
                      "Train one (Jobs → Train term models, or `semgraph train`), then try again.")
    with _lock:
        svc.cache[MODEL_KEY] = (version, model)
    return model


# --------------------------------------------------------------------------------------------------- inputs


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(f"{what} {value!r} is not a valid id (letters, digits, '-' and '_' only)")
    return value


def parse_k(value, default: int = DEFAULT_K) -> int:
    if value in (None, ""):
        return default
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"k must be a whole number, got {value!r}") from None
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be between 1 and {MAX_K}, got {k}")
    return k


def parse_filters(texts) -> tuple[list[str], Filters]:
    """Filter texts (``diagnosis=cyst``, ``term:hypodense>0.5`` ...) → (cleaned texts, Filters)."""
    if texts is None:
        return [], Filters()
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise InvalidInput("filters must be a list of texts such as ['diagnosis=cyst', 'term:hypodense>0.5']")
    clean, out = [], Filters()
    for text in texts:
        if not isinstance(text, str):
            raise InvalidInput(f"filter {text!r} is not a text")
        if text.strip():
            out = parse_filter(text.strip(), out)
            clean.append(text.strip())
    return clean, out


def filters_from_form(form) -> list[str]:
    """The search form's filter fields as filter texts (empty fields are skipped)."""
    texts = []
    diagnoses = [d for d in form.getlist("diagnosis") if d.strip()]
    if diagnoses:
        texts.append("diagnosis=" + ",".join(diagnoses))
    term, threshold = form.get("term", "").strip(), form.get("term_threshold", "").strip()
    if term:
        texts.append(f"term:{term}>{threshold or '0.5'}")
    lo, hi = form.get("age_min", "").strip(), form.get("age_max", "").strip()
    if lo or hi:
        texts.append(f"age={lo}-{hi}")
    for name, key in (("sex", "sex"), ("phase", "phase"), ("segment", "segment")):
        value = form.get(name, "").strip()
        if value:
            texts.append(f"{key}={value}")
    d0, d1 = form.get("date_from", "").strip(), form.get("date_to", "").strip()
    if d0 or d1:
        texts.append(f"date={d0}..{d1}")
    return texts


def filter_choices(eng: Engine) -> dict:
    """Values offered by the filter form (taken from the indexed cases)."""
    def values(name):
        return sorted({getattr(c, name) for c in eng.cases if getattr(c, name)})

    return {"diagnoses": values("diagnosis"), "sexes": values("sex"), "phases": values("contrast_phase"),
            "segments": values("liver_segment"),
            "terms": [{"label": lab, "category": cat} for lab, cat in zip(eng.labels, eng.categories)]}


# --------------------------------------------------------------------------------------------------- sessions


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


def _sessions(svc: Services) -> OrderedDict:
    with _lock:
        _follow_generation(svc)
        return svc.cache.setdefault(SESSIONS_KEY, OrderedDict())


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


def _meta_path(svc: Services, session_id: str) -> Path:
    return Path(svc.config.data_dir) / SESSIONS_DIR / f"{session_id}.json"


def _write_json(path: Path, value: dict) -> None:
    text = json.dumps(value, indent=1).encode("utf-8")
    write_atomically(path, lambda handle: handle.write(text))


def text_label(text: str) -> str:
    short = " ".join(text.split())
    return f"text “{short if len(short) <= 80 else short[:79] + '…'}”"


def create_session(query, user: str, *, k: int = DEFAULT_K, filters=None, label: str | None = None,
                   upload: str | None = None, roi: dict | None = None, text: str | None = None,
                   algorithm: str | None = None, warnings: list[dict] | None = None) -> Entry:
    """Start a session for ``query`` (a case id or a likelihood vector) by ``user`` and keep its start record.

    ``warnings`` (``{code, message}`` items, e.g. an uploaded image's out-of-distribution warnings) are kept in the
    record; the session page and its JSON show them.

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
    default_label = (f"case {session.query_case}" if session.query_case else
                     text_label(session.query_text) if session.query_text else "likelihood vector")
    meta = {"session_id": session.session_id, "user": session.user, "query_case": session.query_case,
            "query_text": session.query_text, "algorithm": algorithm,
            "query_vector": [float(x) for x in session.query0], "k": k, "filters": texts,
            "label": label or default_label,
            "upload": upload, "roi": _roi_record(roi), "started_at": session.started_at.isoformat()}
    if warnings:
        meta["warnings"] = list(warnings)
    _write_json(_meta_path(svc, session.session_id), meta)
    entry = Entry(session, meta)
    entry.rankings[0] = list(session.ranking)
    return _remember(svc, entry)


def _roi_record(roi: dict | None) -> dict | None:
    if not roi:
        return None
    return {k: (v if isinstance(v, str) else [list(p) if isinstance(p, (list, tuple)) else p for p in v])
            for k, v in roi.items()}


def get_session(session_id: str, *, seen: int | None = None) -> Entry:
    """The session ``session_id``: from memory, else replayed from the store and its start record.

    On a shared store the copy in memory is first checked against the stored rounds, unless the client says it saw
    the copy's last round (``seen``): a write on such a copy checks the store itself (the round claim, the undo)."""
    svc = services()
    check_id(session_id, "session")
    cache = _sessions(svc)
    with _lock:
        entry = cache.get(session_id)
    if entry is not None and (not svc.store.shared or seen == entry.round or entry.session.is_current()):
        return entry
    path = _meta_path(svc, session_id)
    meta = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    k = int(meta["k"]) if meta else 25
    parsed = parse_filters(meta.get("filters"))[1] if meta else Filters()
    eng = engine(svc)
    try:
        session = load_session(svc.store, session_id, eng, k=k, filters=parsed)
    except NotFound:
        if meta is None:
            raise NotFound(f"no retrieval session {session_id!r}") from None
        session = Session(svc.store, eng, session_id=session_id, user=meta["user"], query_case=meta["query_case"],
                          query_vector=np.array(meta["query_vector"], dtype=np.float64),
                          started_at=dt.datetime.fromisoformat(meta["started_at"]), k=k, filters=parsed,
                          query_text=meta.get("query_text"))
    if meta is None:
        meta = {"session_id": session_id, "user": session.user, "query_case": session.query_case, "k": k,
                "filters": [], "upload": None, "query_text": session.query_text,
                "algorithm": session.rounds[-1].params.algorithm if session.rounds else
                session_algorithm(None, text=session.query_text is not None),
                "label": f"case {session.query_case}" if session.query_case else
                text_label(session.query_text) if session.query_text else "likelihood vector"}
    entry = Entry(session, meta)
    entry.rankings[entry.round] = list(session.ranking)
    return _remember(svc, entry)


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


def parse_round(value) -> int | None:
    """The optional ``round`` of a request: the number of the session's last round as the client saw it."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():  # a form field
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InvalidInput(f"round must be the number of the session's last round you saw (0 before any feedback), "
                       f"got {value!r}")


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
    if not isinstance(marks, dict):
        raise InvalidInput("marks must be an object {case id: 'relevant' | 'irrelevant' | 'neutral'}")
    marks = {str(c): str(v) for c, v in marks.items()}
    for case_id, value in marks.items():
        if value not in RELEVANCE:
            raise InvalidInput(f"invalid mark {value!r} for case {case_id!r}; use one of {', '.join(RELEVANCE)}")
    if not any(v != "neutral" for v in marks.values()):
        raise InvalidInput("mark at least one result relevant or irrelevant before applying")
    algorithm = entry.meta.get("algorithm") or session_algorithm(None, text=entry.session.query_text is not None)
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
    """The ranking after round ``number`` (0: before any feedback), recomputed with that round's D and query."""
    if number in entry.rankings:
        return entry.rankings[number]
    s = entry.session
    D = s.rounds[number - 1].dissimilarity if number >= 1 else s.baseline
    q = s.rounds[number - 1].query if number >= 1 else s.query0
    exclude = (s.query_case,) if s.query_case else ()
    hits = s.engine.with_dissimilarity(D).search_vector(q, s.k, s.filters, exclude=exclude)
    entry.rankings[number] = hits
    return hits


# --------------------------------------------------------------------------------------------------- views


def terms_by_category(eng: Engine, vector) -> list[dict]:
    """Likelihood bars grouped by category, in vocabulary order."""
    out: list[dict] = []
    for iri, label, category, value in zip(eng.terms, eng.labels, eng.categories, np.asarray(vector, dtype=float)):
        if not out or out[-1]["category"] != category:
            out.append({"category": category or "other", "terms": []})
        out[-1]["terms"].append({"iri": iri, "rid": iri.rsplit("/", 1)[-1], "label": label,
                                 "value": round(float(value), 4), "percent": round(100 * float(value))})
    return out


def query_diagnosis(entry: Entry) -> str | None:
    case_id = entry.session.query_case
    if not case_id:
        return None
    try:
        return entry.session.engine.case(case_id).diagnosis
    except NotFound:
        return None


def move(rank: int, previous: dict[str, int] | None, case_id: str) -> dict:
    """How a case moved since the previous round: up/down by n places, same, or new; None before any round."""
    if previous is None:
        return {"kind": "none", "by": 0, "text": ""}
    if case_id not in previous:
        return {"kind": "new", "by": 0, "text": "new"}
    by = previous[case_id] - rank
    if by > 0:
        return {"kind": "up", "by": by, "text": f"↑{by}"}
    if by < 0:
        return {"kind": "down", "by": -by, "text": f"↓{-by}"}
    return {"kind": "same", "by": 0, "text": "="}


def hit_views(eng: Engine, hits: list[Hit], *, previous: list[Hit] | None = None, diagnosis: str | None = None,
              marks: dict | None = None) -> list[dict]:
    prev = None if previous is None else {h.case_id: i for i, h in enumerate(previous, start=1)}
    out = []
    for rank, hit in enumerate(hits, start=1):
        case = eng.case(hit.case_id)
        match = None if not diagnosis or not hit.diagnosis else (hit.diagnosis.casefold() == diagnosis.casefold())
        out.append({"case_id": hit.case_id, "rank": rank, "distance": round(hit.distance, 4),
                    "diagnosis": hit.diagnosis, "patient_id": case.patient_id,
                    "study_date": case.study_date.isoformat() if case.study_date else None,
                    "caption": eng.caption(hit.case_id), "match": match,
                    "move": move(rank, prev, hit.case_id), "mark": (marks or {}).get(hit.case_id, "neutral"),
                    "explanation": [c.label for c in hit.explanation]})
    return out


def groups_of(eng: Engine, views: list[dict], by: str | None) -> list[dict] | None:
    """Results grouped by diagnosis or patient (best group first), or None for a flat grid."""
    if not by:
        return None
    if by not in ("diagnosis", "patient"):
        raise InvalidInput(f"group results by 'diagnosis' or 'patient', not {by!r}")
    ids = [v["case_id"] for v in views]
    found = grouping.group(ids, by, scores=[v["distance"] for v in views], cases={i: eng.case(i) for i in ids})
    by_id = {v["case_id"]: v for v in views}
    return [{"key": g.key if g.key not in (None, "None") else "(unknown)", "size": g.size, "best_rank": g.best_rank,
             "members": [by_id[m.case_id] for m in g.members]} for g in found]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe_change(change, marks: dict[str, str]) -> str:
    """``water density ↔ hypodense: 0.42 → 0.32 (closer), from cases X and Y marked relevant``."""
    direction = "closer" if change.after < change.before else "farther apart"
    text = f"{change.describe()} ({direction})"
    by_mark: dict[str, list[str]] = {}
    for case_id in change.derived_from:
        by_mark.setdefault(marks.get(case_id, "marked earlier"), []).append(case_id)
    parts = [f"{'case' if len(ids) == 1 else 'cases'} {_join(ids)} marked {mark}" for mark, ids in by_mark.items()]
    return text + (", from " + "; ".join(parts) if parts else "")


def change_views(round_) -> list[dict]:
    if round_ is None:
        return []
    return [dict(c.as_dict(), text=describe_change(c, round_.marks), delta=round(c.after - c.before, 4))
            for c in round_.changes]


def moved_query(eng: Engine, session: Session, number: int) -> list[dict] | None:
    """The query vector after round ``number`` as bars when feedback moved it (Rocchio), else None."""
    if number < 1:
        return None
    q = session.rounds[number - 1].query
    if np.allclose(q, session.query0, atol=1e-9):
        return None
    return terms_by_category(eng, q)


def session_view(entry: Entry, *, group_by: str | None = None) -> dict:
    """Everything the session page and GET /api/v1/sessions/<id> show."""
    s = entry.session
    eng = s.engine
    n = entry.round
    hits = ranking_after(entry, n)
    previous = ranking_after(entry, n - 1) if n >= 1 else None
    diagnosis = query_diagnosis(entry)
    last = s.rounds[-1] if s.rounds else None
    views = hit_views(eng, hits, previous=previous, diagnosis=diagnosis)
    return {
        "session_id": s.session_id, "user": s.user, "round": n,
        "rounds": [{"round_id": r.round_id, "number": r.number, "marks": dict(r.marks),
                    "ended_at": r.ended_at.isoformat(), "changes": len(r.changes)} for r in s.rounds],
        "query_case": s.query_case, "query_diagnosis": diagnosis, **private_parts(entry),
        "query_text": s.query_text,
        "algorithm": entry.meta.get("algorithm") or session_algorithm(None, text=s.query_text is not None),
        "k": s.k, "filters": list(entry.meta.get("filters") or []),
        "query_terms": terms_by_category(eng, s.query0),
        "moved_query_terms": moved_query(eng, s, n),
        "results": views, "groups": groups_of(eng, views, group_by), "group_by": group_by or "",
        "changes": change_views(last),
        "matches": sum(1 for v in views if v["match"]) if diagnosis else None,
    }


# --------------------------------------------------------------------------------------------------- cases

_ANNOTATIONS = """
SELECT ?kind ?term ?value ?agent ?time WHERE { GRAPH $g {
  ?a sg:annotates $c ; sg:annotationKind ?kind ; sg:likelihood ?l . ?l sg:term ?term ; sg:value ?value .
  OPTIONAL { ?a prov:wasAttributedTo ?agent } OPTIONAL { ?a prov:generatedAtTime ?time } } }"""


def annotations(case_id: str) -> list[dict]:
    """Every annotation of a case (reader / predicted / truth) as bars, in vocabulary order."""
    svc = services()
    eng = engine(svc)
    kinds: dict[str, dict] = {}
    for r in svc.store.select(_ANNOTATIONS, {"g": ANNOTATIONS_GRAPH, "c": case_iri(case_id)}):
        kind = kinds.setdefault(str(r["kind"]), {"values": {}, "agent": None, "time": None})
        kind["values"][str(r["term"])] = float(r["value"])
        kind["agent"] = str(r["agent"]) if "agent" in r else None
        kind["time"] = str(r["time"]) if "time" in r else None
    order = {"reader": 0, "predicted": 1, "truth": 2}
    out = []
    for name in sorted(kinds, key=lambda k: (order.get(k, 9), k)):
        info = kinds[name]
        vector = [info["values"].get(t, 0.0) for t in eng.terms]
        out.append({"kind": name, "attributed_to": info["agent"], "generated_at": info["time"],
                    "categories": terms_by_category(eng, vector)})
    return out


def feedback_history(case_id: str) -> list[dict]:
    """The feedback rounds that involved a case (marked in them, or their session's query), newest first."""
    return [{"round_id": r.round.rsplit("/", 1)[-1], "round": r.number, "session_id": r.session.rsplit("/", 1)[-1],
             "user": r.user, "role": r.role, "relevance": r.relevance, "ended_at": r.ended,
             "learned_edges": r.learned_edges}
            for r in case_rounds(services().store, case_iri(case_id))]


def case_summary(eng: Engine, case) -> dict:
    return {"case_id": case.case_id, "patient_id": case.patient_id, "study_id": case.study_id,
            "diagnosis": case.diagnosis, "study_date": case.study_date.isoformat() if case.study_date else None,
            "age": case.age, "sex": case.sex, "contrast_phase": case.contrast_phase,
            "liver_segment": case.liver_segment, "has_image": bool(case.image_file)}


def list_cases(q: str = "", diagnosis: str = "", limit: int = 50, offset: int = 0) -> tuple[int, list[dict]]:
    """Indexed cases whose id or patient id contains ``q`` (case-insensitive), optionally of one diagnosis."""
    eng = engine()
    needle = (q or "").strip().casefold()
    wanted = (diagnosis or "").strip().casefold()
    found = [c for c in eng.cases
             if (not needle or needle in c.case_id.casefold() or needle in c.patient_id.casefold())
             and (not wanted or (c.diagnosis or "").casefold() == wanted)]
    return len(found), [case_summary(eng, c) for c in found[offset:offset + limit]]


def case_detail(case_id: str) -> dict:
    """Metadata, caption, all annotations, the patient's other studies and the feedback history of a case."""
    from semgraph.retrieval.timeline import patient_timeline

    eng = engine()
    check_id(case_id, "case")
    case = eng.case(case_id)
    timeline = patient_timeline(services().store, case_id, list(eng.terms))
    others = [dict(e.as_dict(), when=when) for when, entries in
              (("earlier", timeline.earlier), ("same day", timeline.same_day), ("later", timeline.later),
               ("undated", timeline.undated)) for e in entries]
    for other in others:
        other.pop("likelihoods", None)
    return dict(case_summary(eng, case), caption=eng.caption(case_id), annotations=annotations(case_id),
                other_studies=others, feedback=feedback_history(case_id))


# --------------------------------------------------------------------------------------------------- uploads


def _uploads(svc: Services) -> Path:
    return Path(svc.config.data_dir) / UPLOADS_DIR


def _suffix(name: str, allowed: tuple[str, ...], what: str) -> str:
    lowered = (name or "").lower()
    for suffix in sorted(allowed, key=len, reverse=True):
        if lowered.endswith(suffix):
            return suffix
    raise InvalidInput(f"the {what} {name!r} has an unsupported type; upload one of {', '.join(allowed)}")


class PayloadTooLarge(InvalidInput):
    """An uploaded file, or a whole request, over its size limit (413; nothing was kept)."""

    status = 413
    title = "Payload Too Large"


def megabytes(size: int) -> str:
    """``8 MB``, ``0.25 MB``: a byte limit as users read it."""
    return f"{size / (1024 * 1024):g} MB"


def _save_file(storage, target: Path, limit: int, what: str) -> None:
    """Write the uploaded ``storage`` to ``target``, reading at most ``limit`` + 1 bytes of it.

    Raises :class:`InvalidInput` for an empty file and :class:`PayloadTooLarge` (413) for one over ``limit``.
    """
    data = storage.stream.read(limit + 1)
    if not data:
        raise InvalidInput(f"the {what} is empty")
    if len(data) > limit:
        raise PayloadTooLarge(f"the {what} is larger than the limit of {megabytes(limit)} per uploaded file; "
                              "nothing was kept")
    target.write_bytes(data)


def parse_hu_range(lo, hi):
    if lo in (None, "") and hi in (None, ""):
        return None
    try:
        low, high = float(lo), float(hi)
    except (TypeError, ValueError):
        raise InvalidInput("give the HU range of a PNG as two numbers (darkest and brightest pixel value)") from None
    if not low < high:
        raise InvalidInput(f"the HU range must go from low to high, got {low:g} … {high:g}")
    return (low, high)


def save_upload(storage, owner: str, *, hu_range=None, slice_index=None) -> dict:
    """Keep an uploaded query image (checked by loading it) under ``DATA_DIR/uploads/<token>/``; returns its record."""
    import shutil

    from semgraph.imaging import detect_format, load_image

    svc = services()
    if storage is None or not storage.filename:
        raise InvalidInput("choose an image file to upload (DICOM, NIfTI or PNG)")
    suffix = _suffix(storage.filename, IMAGE_SUFFIXES, "image")
    token = secrets.token_hex(12)
    folder = _uploads(svc) / token
    folder.mkdir(parents=True)
    try:
        path = folder / ("image" + suffix)
        _save_file(storage, path, MAX_UPLOAD_BYTES, "image")
        fmt = detect_format(path)
        if fmt not in ("dicom", "nifti", "png"):
            raise InvalidInput(f"{storage.filename} is not a DICOM, NIfTI or PNG image (its content looks like {fmt})")
        index = None if slice_index in (None, "") else _int(slice_index, "slice index")
        if fmt == "png" and hu_range is None:
            raise InvalidInput("a PNG carries no Hounsfield units: give the HU values of its darkest and brightest "
                               "pixel (for example -160 and 240 for a W400/L40 window)")
        image = load_image(path, slice_index=index, hu_range=hu_range if fmt == "png" else None,
                           max_size=MAX_UPLOAD_SIDE)
        record = {"token": token, "owner": owner, "filename": os.path.basename(storage.filename)[:200],
                  "format": fmt, "file": path.name, "hu_range": list(hu_range) if fmt == "png" else None,
                  "slice_index": index, "shape": list(image.hu.shape),
                  "created": dt.datetime.now(dt.UTC).isoformat()}
        _write_json(folder / "upload.json", record)
        return record
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _int(value, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"the {what} must be a whole number, got {value!r}") from None


def get_upload(token: str) -> tuple[dict, Path]:
    """(record, folder) of the upload ``token``: :class:`NotFound` if there is none, :class:`Forbidden` unless the
    current user is its owner or an admin (:func:`may_see_private`)."""
    svc = services()
    if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{24}", token):
        raise NotFound("no such upload")
    folder = _uploads(svc) / token
    meta = folder / "upload.json"
    if not meta.is_file():
        raise NotFound("no such upload (uploads are kept until the data folder is cleaned)")
    record = json.loads(meta.read_text(encoding="utf-8"))
    if not may_see_private(record.get("owner"), current_user()):
        raise Forbidden("this uploaded image belongs to another user; only its owner and admins may see it")
    return record, folder


def parse_roi(kind: str, points, mask_storage=None, folder: Path | None = None) -> dict:
    """The ROI of an uploaded image: a rectangle or polygon drawn in the browser, or an uploaded mask file."""
    if mask_storage is not None and getattr(mask_storage, "filename", ""):
        suffix = _suffix(mask_storage.filename, MASK_SUFFIXES, "mask")
        path = folder / ("mask" + suffix)
        _save_file(mask_storage, path, MAX_UPLOAD_BYTES, "mask")
        return {"mask": str(path)}
    if isinstance(points, str):
        try:
            points = json.loads(points) if points.strip() else None
        except json.JSONDecodeError:
            raise InvalidInput("the drawn region is not valid JSON") from None
    if kind == "rectangle":
        if not isinstance(points, (list, tuple)) or len(points) != 4:
            raise InvalidInput("draw a rectangle on the image (or upload a mask) first")
        try:
            x0, y0, x1, y1 = (round(float(v)) for v in points)
        except (TypeError, ValueError):
            raise InvalidInput("the rectangle must be four numbers x0, y0, x1, y1") from None
        return {"rectangle": (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))}
    if kind == "polygon":
        if not isinstance(points, (list, tuple)) or len(points) < 3:
            raise InvalidInput("draw a polygon of at least three points on the image (or upload a mask) first")
        return {"polygon": [[float(p[0]), float(p[1])] for p in points]}
    raise InvalidInput("draw a region on the image (rectangle or polygon) or upload a mask")


def image_query(token: str, roi: dict, user: str) -> np.ndarray:
    """Term likelihoods of the ROI of an uploaded image, predicted with the latest term model."""
    record, folder = get_upload(token)
    if record["owner"] != user:
        raise Forbidden("this upload belongs to another user")
    model = term_model()
    hu_range = tuple(record["hu_range"]) if record.get("hu_range") else None
    vector = engine().image_vector(folder / record["file"], roi, model=model, slice_index=record.get("slice_index"),
                                   hu_range=hu_range)
    return vector


# --------------------------------------------------------------------------------------------------- dendrogram


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


def dendrogram_svg(D, labels, terms=None, highlight=(), *, title: str = "") -> str:
    """A horizontal dendrogram of the terms under ``D`` (:func:`semgraph.retrieval.hsbd.dendrogram`) as SVG text.

    Leaves are rows (labels on the right), merge heights run along x from 0 (left) to the root's height; labels of
    ``highlight`` terms are drawn bold in orange. Every text is XML-escaped.
    """
    from xml.sax.saxutils import escape

    from semgraph.retrieval import hsbd

    tree = hsbd.dendrogram(D)
    k = tree.k
    terms = list(terms) if terms is not None else list(labels)
    children = {k + i: (int(a), int(b)) for i, (a, b) in enumerate(tree.merges)}

    def leaves(node: int) -> list[int]:
        if node < k:
            return [node]
        a, b = children[node]
        return leaves(a) + leaves(b)

    root = 2 * k - 2
    order = leaves(root) if k > 1 else [0]
    row_h, left, plot_w, label_w, top = 22, 20, 360, 260, 34 if title else 14
    top_h = max(float(tree.node_heights[root]), 1e-9)
    width, height = left + plot_w + label_w, top + row_h * k + 30
    y = {leaf: top + row_h * (i + 0.5) for i, leaf in enumerate(order)}

    def x(h: float) -> float:
        return left + plot_w * (1.0 - h / top_h)

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img">')]
    if title:
        parts.append(f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>')
    for node in range(k, 2 * k - 1):
        a, b = children[node]
        y[node] = (y[a] + y[b]) / 2.0
        xn = x(float(tree.node_heights[node]))
        for child in (a, b):
            xc = x(float(tree.node_heights[child]))
            parts.append(f'<path d="M{xc:.1f},{y[child]:.1f} H{xn:.1f} V{y[node]:.1f}" fill="none" '
                         'stroke="#456" stroke-width="1.5"/>')
    marked = set(highlight)
    for leaf in order:
        bold = terms[leaf] in marked
        parts.append(f'<text x="{x(0.0) + 6:.1f}" y="{y[leaf] + 4:.1f}"'
                     + (' font-weight="bold" fill="#c05600"' if bold else ' fill="#222"')
                     + f'>{escape(str(labels[leaf]))}</text>')
    axis_y = top + row_h * k + 8
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#888"/>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        h = top_h * (1 - frac)
        xt = left + plot_w * frac
        parts.append(f'<line x1="{xt:.1f}" y1="{axis_y}" x2="{xt:.1f}" y2="{axis_y + 4}" stroke="#888"/>'
                     f'<text x="{xt:.1f}" y="{axis_y + 16}" font-size="10" text-anchor="middle" '
                     f'fill="#555">{h:.2f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
