"""What one app instance shares between requests: the configuration, the open store, the users, the query slots.

The store is opened once by :func:`webapp.create_app` and shared by all threads (an embedded store folder can be
opened by one process only; pyoxigraph's store is thread-safe). Views reach it through :func:`get_store`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import current_app

import kg
from semgraph.config import Config
from semgraph.errors import SemgraphError
from semgraph.users import UserStore

T = TypeVar("T")


class QueryTimeout(SemgraphError):
    status = 503
    title = "Query timed out"


class ServerBusy(SemgraphError):
    status = 503
    title = "Server busy"


class QuerySlots:
    """Run store calls in worker threads with a time limit, at most ``size`` at once.

    pyoxigraph cannot cancel a running query: when the limit passes, the client gets :class:`QueryTimeout` while the
    worker (a daemon thread) finishes in the background and only then frees its slot. Runaway queries can therefore
    hold at most ``size`` threads; later queries wait for a slot up to their own time limit.
    """

    def __init__(self, size: int):
        self.size = size
        self._slots = threading.BoundedSemaphore(size)

    def run(self, work: Callable[[], T], timeout: float) -> T:
        if not self._slots.acquire(timeout=timeout):
            raise ServerBusy(f"all {self.size} query slots stayed busy for {timeout:g} s (long queries are still "
                             "running); try again later")
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def worker() -> None:
            try:
                outcome["value"] = work()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the request thread below
                outcome["error"] = exc
            finally:
                self._slots.release()
                done.set()

        threading.Thread(target=worker, name="semgraph-query", daemon=True).start()
        if not done.wait(timeout):
            raise QueryTimeout(f"the query ran longer than the limit of {timeout:g} s and was abandoned (it finishes "
                               "in the background). Narrow it with LIMIT, more specific patterns or fewer OPTIONALs.")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]


@dataclass
class Services:
    """The per-app shared objects, kept in ``app.extensions["semgraph"]``."""

    config: Config
    store: kg.Store
    users: UserStore
    slots: QuerySlots
    cache: dict = field(default_factory=dict)

    def close(self) -> None:
        """Release the store (call when the app is discarded; ``semgraph serve`` does it on exit)."""
        self.store.close()


def services() -> Services:
    return current_app.extensions["semgraph"]


def get_store() -> kg.Store:
    """The app's store."""
    return services().store


def get_users() -> UserStore:
    """The app's user list."""
    return services().users
