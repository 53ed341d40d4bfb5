"""What one app instance shares between requests: the configuration, the open store, the users, the query gate.

The store is opened once by :func:`webapp.create_app` and shared by all threads (an embedded store folder can be
opened by one process only; pyoxigraph's store is thread-safe). Views reach it through :func:`get_store`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from flask import current_app

import kg
from kg.replica import QueryReplica
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


class TooManyQueries(SemgraphError):
    status = 429
    title = "Too many queries"


def _retry_after(error: SemgraphError, seconds: float) -> SemgraphError:
    error.headers = {"Retry-After": str(max(1, math.ceil(seconds)))}
    return error


def _timed_out(timeout: float) -> QueryTimeout:
    return QueryTimeout(f"the query ran longer than the limit of {timeout:g} s and was stopped. Narrow it with LIMIT, "
                        "more specific patterns or fewer OPTIONALs.")


class QueryGate:
    """Admission and time limit of the public ``/sparql`` queries, apart from the app's own store calls.

    At most ``size`` queries run at once, at most ``per_client`` of them (running or waiting) for one client (a
    user name or an IP address; more: :class:`TooManyQueries`, 429). A query waits at most ``wait`` seconds for a
    slot, and at most ``size`` queries wait at once (else, or after the wait: :class:`ServerBusy`, 503); both carry
    ``Retry-After``. So public queries never hold more than ``2 * size`` of the server's request threads.

    The query itself must stop at its time limit: the app runs it on a store process that it can stop
    (:class:`kg.replica.QueryReplica`), never in this process, whose pyoxigraph cannot be interrupted.
    """

    def __init__(self, size: int, per_client: int, wait: float):
        self.size, self.per_client, self.wait = size, per_client, wait
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._clients: dict[str, int] = {}
        self._waiting = 0

    def run(self, client: str, work: Callable[[], T], timeout: float) -> T:
        """``work()`` once admitted. An answer or a store failure that came after ``timeout`` seconds is reported as
        :class:`QueryTimeout` (the query's server stopped it, or the query ran past the limit all the same)."""
        self._enter(client)
        try:
            self._acquire()
        except BaseException:
            self._leave(client)
            raise
        started = time.monotonic()
        try:
            result = work()
        except (SemgraphError, kg.StoreError) as exc:
            if time.monotonic() - started >= 0.95 * timeout:
                raise _timed_out(timeout) from exc
            raise
        finally:
            self._slots.release()
            self._leave(client)
        if time.monotonic() - started > timeout:
            raise _timed_out(timeout)
        return result

    def _enter(self, client: str) -> None:
        with self._lock:
            if self._clients.get(client, 0) >= self.per_client:
                raise _retry_after(TooManyQueries(
                    f"you already have {self.per_client} /sparql quer{'y' if self.per_client == 1 else 'ies'} "
                    "running (a query past its time limit counts until it has stopped); wait for the answer "
                    "before sending the next one"), 1)
            self._clients[client] = self._clients.get(client, 0) + 1

    def _leave(self, client: str) -> None:
        with self._lock:
            left = self._clients[client] - 1
            if left:
                self._clients[client] = left
            else:
                del self._clients[client]

    def _acquire(self) -> None:
        if self._slots.acquire(blocking=False):
            return
        with self._lock:
            if self._waiting >= self.size:
                raise _retry_after(ServerBusy(f"all {self.size} query slots are busy and {self._waiting} queries "
                                              "wait for one; try again later"), self.wait)
            self._waiting += 1
        try:
            if not self._slots.acquire(timeout=self.wait):
                raise _retry_after(ServerBusy(f"all {self.size} query slots stayed busy for {self.wait:g} s; try "
                                              "again later"), self.wait)
        finally:
            with self._lock:
                self._waiting -= 1


@dataclass
class Services:
    """The per-app shared objects, kept in ``app.extensions["semgraph"]``."""

    config: Config
    store: kg.Store
    users: UserStore
    #: Admission of /sparql queries: one gate for anonymous clients (keyed by address), one for logged-in users
    #: (keyed by name), so that no number of anonymous queries keeps a logged-in user's query out.
    gates: dict[str, QueryGate]
    #: Where public /sparql queries run: replicas of the store in stoppable processes, or (a store on another
    #: SPARQL server, which enforces its own limits) a read-only connection to it. Both have ``query(text,
    #: max_rows=)``.
    public: QueryReplica | kg.Store
    cache: dict = field(default_factory=dict)

    def collection(self):
        """The collection the app works on: the ``collection`` setting, else the store's only one
        (:func:`semgraph.graph.collection.resolve`)."""
        from semgraph.graph.collection import resolve

        return resolve(self.store, self.config.collection or None)

    def close(self) -> None:
        """Stop the query replicas and release the store (call when the app is discarded; ``semgraph serve`` does
        it on exit)."""
        self.public.close()
        self.store.close()


def services() -> Services:
    return current_app.extensions["semgraph"]


def get_store() -> kg.Store:
    """The app's store."""
    return services().store


def get_users() -> UserStore:
    """The app's user list."""
    return services().users
