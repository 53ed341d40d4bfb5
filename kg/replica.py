"""Read-only copies of an embedded store for untrusted queries, served by a process that can be killed.

A query on Oxigraph cannot be stopped from outside its process, and ``oxigraph serve --timeout-s`` checks its
deadline only when the evaluation reads from the store: a product of three patterns over N triples computes N²
joins between two checks (measured: 19 s past a 2 s limit on 11,000 triples; never, in practice, on millions).
Public queries therefore run on a **replica**: a read-only view of the store served by ``oxigraph serve-read-only
--timeout-s`` on a loopback port. For a store open in this process the view is a checkpoint (RocksDB hard links,
cheap, independent of the store). For a folder that another process writes (``oxigraph serve`` for ``semgraph serve
--workers``) it is the folder itself opened read-only, which shows the data written up to its opening (a checkpoint
made from such an opening would miss the writes not yet flushed; the writer is never touched either way). A query past its limit is cut by that server; one that
its server does not cut is ended by :meth:`QueryReplica.kill`, which kills the replica's server and nothing else.
The servers run at a lower CPU priority (:data:`NICENESS`), so that queries slow the app as little as possible.

A replica is renewed on use, at most once every ``min_age`` seconds and in the background (a renewal costs ~0.1 s:
under a stream of writes queries would otherwise wait for renewals; ``min_age=0``: at once and before the query, so
that every query sees every write), when the store changed since it was made: for an open
:class:`EmbeddedStore` after any write through it, for a folder held by another process (``oxigraph serve`` for
``semgraph serve --workers``) once the replica is ``max_age`` seconds old or ``version()`` (a marker that writers
in several processes bump) changed. After :meth:`invalidate` (a write in this process whose result the next query
must see) the next query gets a new replica at once. Queries that hold a :meth:`lease` keep their
replica alive until they end; a retired replica's server is stopped and its folder deleted once unused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .embedded import EmbeddedStore
from .errors import RemoteEndpointError
from .remote import RemoteStore
from .server import StoreServer
from .store import Result

__all__ = ["QueryReplica"]

#: Seconds past the time limit that a query's client waits for the replica's server to stop it by itself.
GRACE = 3.0
#: CPU priority of the replicas' servers (``nice``): their queries yield the cores to the app's own work.
NICENESS = 10


class _Copy:
    """A read-only server over ``folder`` (deleted with the server when ``owned``: a checkpoint)."""

    def __init__(self, folder: Path, log: Path, timeout: float, changes: object, owned: bool):
        self.folder, self.owned = folder, owned
        self.made, self.changes = time.monotonic(), changes
        self.server = StoreServer(folder, query_timeout=timeout, read_only=True, log=log, niceness=NICENESS)
        self.leases = 0
        self.retired = False

    def close(self) -> None:
        self.server.kill()
        if self.owned:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.server.log.unlink(missing_ok=True)


class QueryReplica:
    """Replicas of ``source`` (an open :class:`EmbeddedStore`, or the folder of a store that another process such
    as ``oxigraph serve`` holds) in ``folder``, each served with the query time limit ``timeout`` (seconds)."""

    def __init__(self, source: EmbeddedStore | str | os.PathLike, folder: str | os.PathLike, *, timeout: float,
                 max_age: float = 5.0, min_age: float = 1.0, version: Callable[[], object] | None = None):
        self.source, self.version = source, version
        self.folder = Path(folder)
        self.timeout, self.max_age, self.min_age = timeout, max_age, min_age
        self._lock = threading.Lock()
        self._current: _Copy | None = None
        self._retired: list[_Copy] = []
        self._serial = 0
        self._stale = self._renewing = self._closed = False
        self._remove_leftovers()

    @contextlib.contextmanager
    def lease(self) -> Iterator[str]:
        """The query URL of a current replica, kept alive until the block ends."""
        with self._lock:
            copy = self._fresh()
            copy.leases += 1
        try:
            yield copy.server.query_url
        finally:
            with self._lock:
                copy.leases -= 1
                self._reap()

    def query(self, text: str, *, max_rows: int | None = None) -> Result:
        """Run a read-only query (SPARQL text, no parameters) on a current replica.

        A query that its server has not stopped ``GRACE`` seconds past the time limit is ended by killing that
        server (:class:`~kg.errors.RemoteEndpointError`, like any query that failed on the replica's side; after
        such a failure the next query gets a new replica).
        """
        with self.lease() as url:
            started = time.monotonic()
            try:
                return RemoteStore(url, update_url=None, timeout=self.timeout + GRACE).query(text, max_rows=max_rows)
            except RemoteEndpointError:
                if time.monotonic() - started >= self.timeout + GRACE * 0.9:
                    self.kill(url)  # the server did not stop the query: end it now
                else:
                    self.invalidate()  # failed on the server's side (a read-only view of a folder whose writer
                    # compacted it meanwhile can miss files): the next query gets a new replica
                raise

    def invalidate(self) -> None:
        """Make the next lease see the store as it is now (after a write its client will read back)."""
        with self._lock:
            self._stale = True

    def kill(self, url: str) -> None:
        """Kill the server of the replica at ``url`` (a query it did not stop in time, or one that failed on its
        side); its queries fail at once, the next lease starts a new replica."""
        with self._lock:
            for copy in [self._current, *self._retired]:
                if copy is not None and copy.server.query_url == url:
                    copy.server.kill()
                    self._retire(copy)
            self._reap()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for copy in [self._current, *self._retired]:
                if copy is not None:
                    copy.close()
            self._current, self._retired = None, []

    # -- internals (called with the lock held) -----------------------------------------------------------
    def _usable(self, copy: _Copy | None) -> bool:
        if copy is None or self._stale or copy.server.process.poll() is not None:
            return False
        age = time.monotonic() - copy.made
        if age < self.min_age:
            return True
        if copy.changes != self._changes():
            return False
        return isinstance(self.source, EmbeddedStore) or age < self.max_age

    def _changes(self) -> object:
        """What must stay equal for a copy to be current: the embedded store's write count, else ``version()``."""
        if isinstance(self.source, EmbeddedStore):
            return self.source.changes
        return self.version() if self.version is not None else None

    def _fresh(self) -> _Copy:
        """A current copy. One that is merely out of date keeps answering while its successor is made in the
        background (queries never wait for a renewal); a dead, invalidated or missing one is replaced now."""
        current = self._current
        if self._usable(current):
            return current
        if self.min_age > 0 and current is not None and not self._stale and current.server.process.poll() is None:
            if not self._renewing:
                self._renewing = True
                threading.Thread(target=self._renew, args=self._next(), name="kg-replica", daemon=True).start()
            return current
        return self._install(self._make(*self._next()))

    def _next(self) -> tuple[str, object]:
        """(name, change marker) of the next copy: the marker is read before the copy is made."""
        self._serial += 1
        return f"{os.getpid()}-{self._serial}", self._changes()

    def _make(self, name: str, changes: object) -> _Copy:
        """A new copy and its server (the lock need not be held)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log = self.folder / f"{name}.server.log"
        if not isinstance(self.source, EmbeddedStore):
            return _Copy(Path(self.source), log, self.timeout, changes, owned=False)
        target = self.folder / name
        self.source.checkpoint(target)
        try:
            return _Copy(target, log, self.timeout, changes, owned=True)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    def _install(self, copy: _Copy) -> _Copy:
        if self._current is not None:
            self._retire(self._current)
        self._current, self._stale = copy, False
        self._reap()
        return copy

    def _renew(self, name: str, changes: object) -> None:
        """Make a copy in the background and put it in place (a failure leaves the old one; the next query
        tries again)."""
        try:
            copy = self._make(name, changes)
        except Exception:  # noqa: BLE001 - the current copy goes on answering; the next use retries
            with self._lock:
                self._renewing = False
            return
        with self._lock:
            self._renewing = False
            if self._closed:
                copy.close()
            else:
                self._install(copy)

    def _retire(self, copy: _Copy) -> None:
        if copy is self._current:
            self._current = None
        if not copy.retired:
            copy.retired = True
            self._retired.append(copy)

    def _reap(self) -> None:
        for copy in [c for c in self._retired if c.leases == 0]:
            copy.close()
            self._retired.remove(copy)

    def _remove_leftovers(self) -> None:
        """Delete replica folders of processes that no longer run (a crash leaves them behind)."""
        if not self.folder.is_dir():
            return
        for entry in self.folder.iterdir():
            pid = entry.name.split("-", 1)[0]
            if pid.isdigit() and not _running(int(pid)):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
