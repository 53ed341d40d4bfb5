"""What the web app builds from the data folder and keeps between requests: the retrieval engine, the term model
and (for :mod:`webapp.web_sessions`) the retrieval sessions held in memory.

* The retrieval engine (:class:`semgraph.retrieval.engine.Engine`) is built once per app and kept in the services
  cache; :func:`invalidate` drops it (a background ingest or training job does so when it finishes, and so does a
  SPARQL Update through ``/sparql``).
* :func:`invalidate` also writes a new token to ``DATA_DIR/cache-generation``; every app serving the same data folder
  (``semgraph serve --workers N``) compares that token with the one its caches were built under and drops them when
  it changed, so a write through one worker process is seen by all.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from semgraph.errors import SemgraphError
from semgraph.files import write_atomically
from semgraph.retrieval.engine import Engine

from .services import Services, services

ENGINE_KEY = "radiology.engine"
MODEL_KEY = "radiology.model"
#: The sessions kept in memory by :mod:`webapp.web_sessions`.
SESSIONS_KEY = "radiology.sessions"
GENERATION_KEY = "radiology.generation"
#: File in DATA_DIR whose token changes with every :func:`invalidate`, in any process serving the folder.
GENERATION_FILE = "cache-generation"

_lock = threading.Lock()
T = TypeVar("T")


class NoModel(SemgraphError):
    status = 409
    title = "No term model"


def cached(svc: Services, key: str, build: Callable[[], T]) -> T:
    """The services-cache entry ``key``, built with ``build()`` on first use and after an invalidation (in this
    process or another one serving the data folder)."""
    with _lock:
        _follow_generation(svc)
        value = svc.cache.get(key)
        if value is None:
            value = svc.cache[key] = build()
        return value


def engine(svc: Services | None = None) -> Engine:
    """The app's retrieval engine over the cases of the store (built on first use, rebuilt after an invalidation)."""
    svc = svc or services()
    return cached(svc, ENGINE_KEY, lambda: Engine.from_store(svc.store, collection=svc.config.collection or None,
                                                             snapshot_file=svc.config.engine_snapshot or None))


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
    write_atomically(Path(svc.config.data_dir) / GENERATION_FILE, lambda handle: handle.write(token))
    with _lock:
        _follow_generation(svc)


def term_model(svc: Services | None = None):
    """The latest trained term model of the data folder; :class:`NoModel` (409) when none was trained."""
    from semgraph.exchange.saved_models import latest_model, models_dir

    svc = svc or services()
    marker = models_dir(svc.config.data_dir) / "LATEST"
    version = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
    with _lock:
        found = svc.cache.get(MODEL_KEY)
        if found is not None and found[0] == version:
            return found[1]
    model = latest_model(svc.config.data_dir) if version else None
    if model is None:
        raise NoModel("searching by image needs a trained term model, and this data folder has none yet. "
                      "A curator or admin trains one (Jobs → Train term models, or `semgraph train`); then try again.")
    with _lock:
        svc.cache[MODEL_KEY] = (version, model)
    return model
