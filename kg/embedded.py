"""The embedded backend: a pyoxigraph (RocksDB) store in a folder on disk.

Who may open a folder at once: one writer (RocksDB write-locks the folder's ``LOCK`` file with a POSIX lock), or
any number of read-only openers, in any processes. A read-only open holds a shared lock on that ``LOCK`` file (an
open file description lock, Linux) while it is open: it fails while a writer holds the folder, and a writer's open
(ours, a plain pyoxigraph ``Store``, ``oxigraph serve``) fails while it holds it. So a reader never reads a folder
that is being written, for which pyoxigraph's read-only mode is undefined: RocksDB may delete files the reader still
needs. Where the system has no open file description locks, a read-only open takes the writer's exclusive lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyoxigraph as ox
from rdflib import Graph

from .errors import QueryError, StoreError, StoreLockedError
from .sparql import bind, solution_rows, to_rdflib, user_position
from .store import Result, Store, rdf_format

#: Graphs that hold a load in progress live under this prefix; one left by a crash is removed on open.
STAGING_PREFIX = "urn:semgraph:staging:"
#: Writes after which the store's write buffers are flushed to disk, in a background thread. Left alone, RocksDB
#: holds up to 64 MiB of unflushed writes per column family, about 0.8 GB for Oxigraph's before its own flush
#: (measured: a server writing feedback rounds grew from 96 MB to 845 MB in 10 minutes, then levelled off).
FLUSH_AFTER_WRITES = 500
#: Linux's ``struct flock``, for the open file description locks (``F_OFD_*``) of read-only opens.
_FLOCK = struct.Struct("hhqqi4x")
#: Whether read-only opens can share the folder (open file description locks exist: Linux).
SHARED_READERS = hasattr(fcntl, "F_OFD_SETLK")
#: How RocksDB says that it could not lock a folder (held by another process; by this process).
_LOCK_ERRORS = ("While lock file", "lock hold by current process")


@contextmanager
def _errors(what: str, consequence: str):
    """Map pyoxigraph's exceptions to ours: syntax and evaluation errors are the caller's, I/O errors the store's."""
    try:
        yield
    except SyntaxError as exc:
        raise QueryError(f"malformed SPARQL {what}: {user_position(str(exc))}{consequence}") from exc
    except RuntimeError as exc:
        raise QueryError(f"the {what} failed: {exc}{consequence}") from exc
    except OSError as exc:
        raise StoreError(f"the {what} failed: {exc}{consequence}") from exc


def _conflict(fd: int, kind: int) -> tuple[int, int] | None:
    """The lock held on the file of ``fd`` that conflicts with a ``kind`` lock (``F_RDLCK``/``F_WRLCK``) on it:
    (its type, its holder's pid: -1 for a read-only opener's lock), or None.

    Closes ``fd``, unless the holder is this process: closing any descriptor of a file releases every POSIX lock
    that the process holds on it (a pyoxigraph writer's lock included), so that descriptor is left open.
    """
    found = _FLOCK.unpack(fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _FLOCK.pack(kind, os.SEEK_SET, 0, 0, 0)))
    conflict = None if found[0] == fcntl.F_UNLCK else (found[0], found[4])
    if conflict is None or conflict[1] != os.getpid():
        os.close(fd)
    return conflict


def _holder_of(path: Path) -> tuple[int, int] | None:
    """The lock that kept this process from write-locking the folder ``path`` (see :func:`_conflict`); None when
    unknown."""
    if not SHARED_READERS:
        return None
    try:
        fd = os.open(path / "LOCK", os.O_RDONLY)
    except OSError:
        return None
    return _conflict(fd, fcntl.F_WRLCK)


def _process(pid: int) -> str:
    """``process PID: its command line`` (on one line, cut at 200 characters; as far as the system shows it)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return f"process {pid}"
    return f"process {pid}: {' '.join(command.split())[:200]}"


def _locked(path: Path, holder: tuple[int, int] | None, *, reading: bool) -> StoreLockedError:
    """The error for an open of ``path`` (``reading``: read-only) that the lock ``holder`` (see :func:`_conflict`;
    None: unknown) excludes. The message says who holds the folder and what to do."""
    if holder is not None and holder[0] == fcntl.F_RDLCK:
        return StoreLockedError(
            f"the store folder {path} is already open in another process (or this one), read-only, and a writer "
            "needs the folder to itself. Retry once the readers have closed it.")
    if holder is not None and holder[1] == os.getpid():
        return StoreLockedError(f"the store folder {path} is already open for writing in this process: use that "
                                "store object (or close it first)")
    who = f", for writing ({_process(holder[1])})" if holder is not None else ""
    endpoint = ("query its SPARQL endpoint instead: for `semgraph serve`, `semgraph sparql --endpoint "
                "http://HOST:PORT/sparql QUERY` (in Python: kg.open_store('http://HOST:PORT/sparql'))")
    if reading:
        return StoreLockedError(
            f"the store folder {path} is already open in another process{who}, and a folder that is being written "
            f"cannot be read from outside the writing process. To read its data, {endpoint}; or retry once that "
            "process has closed the folder.")
    return StoreLockedError(
        f"the store folder {path} is already open in another process{who} (a running `semgraph serve`?), and only "
        f"one process at a time may write to it. Stop that process and retry; to read its data meanwhile, "
        f"{endpoint}.")


def _share(path: Path) -> BinaryIO:
    """Take a shared lock on the ``LOCK`` file of the store folder ``path``, held until the returned file is closed;
    :class:`StoreLockedError` if a writer holds the folder."""
    try:
        fd = os.open(path / "LOCK", os.O_RDONLY | os.O_CREAT, 0o644)  # a checkpoint's folder has no LOCK yet
    except OSError as exc:
        raise StoreError(f"cannot open the store folder {path} read-only: {exc}") from exc
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0))
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise StoreError(f"cannot lock the store folder {path} for reading: {exc}") from exc
        raise _locked(path, _conflict(fd, fcntl.F_RDLCK), reading=True) from None
    return os.fdopen(fd, "rb")


class EmbeddedStore(Store):
    """A store folder opened by this process: by one writer at a time, or by any number of read-only openers.

    A writable open fails with :class:`StoreLockedError` while any other open of the folder lasts (a writer or a
    read-only opener, in another process or in this one). A read-only open fails with :class:`StoreLockedError`
    while a writer holds the folder (read the data of a running ``semgraph serve`` through its ``/sparql``
    endpoint), otherwise it succeeds at once and sees the folder as it is, unchanged until :meth:`close`: no writer
    can open it meanwhile. See the module's docstring for how.

    Queries see the union of all named graphs as their default graph (as ``oxigraph serve
    --union-default-graph`` does), so ``SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }`` works without ``GRAPH``.
    """

    def __init__(self, path: Path, *, read_only: bool = False):
        self.location = str(path)
        self.writable = not read_only
        self._shared: BinaryIO | None = None
        if read_only and not (path / "CURRENT").is_file():
            raise StoreError(f"no store at {path}: create it first (for example with `semgraph demo`)")
        if read_only and SHARED_READERS:
            self._shared = _share(path)
            try:
                self._store = ox.Store.read_only(str(path))
            except OSError as exc:
                self._shared.close()
                raise StoreError(f"cannot open the store folder {path}: {exc}") from exc
        else:
            try:
                path.mkdir(parents=True, exist_ok=True)
                self._store = ox.Store(str(path))
            except OSError as exc:
                if any(sign in str(exc) for sign in _LOCK_ERRORS):
                    raise _locked(path, _holder_of(path), reading=read_only) from exc
                raise StoreError(f"cannot open the store folder {path}: {exc}") from exc
        self._flush_lock = threading.Lock()
        #: Writes made through this object since it was opened (a cheap "has anything changed?" for copies).
        self.changes = 0
        self._writes_since_flush = 0
        self._flusher: threading.Thread | None = None
        if self.writable:
            self._remove_staging_graphs()

    def _remove_staging_graphs(self) -> None:
        for name in list(self._store.named_graphs()):
            if isinstance(name, ox.NamedNode) and name.value.startswith(STAGING_PREFIX):
                self._store.remove_graph(name)

    def _query(self, form: str, query: str, bindings, max_rows: int | None = None) -> Result:
        with _errors("query", ""):
            answer = self._store.query(bind(query, bindings), use_default_graph_as_union=True)
            if form == "ask":
                return Result(form, boolean=bool(answer))
            if form == "select":
                return self._solutions(answer, max_rows)
            # CONSTRUCT/DESCRIBE: pyoxigraph yields triples lazily; stop once max_rows distinct ones are kept.
            graph, truncated = Graph(), False
            for triple in answer:
                item = (to_rdflib(triple.subject), to_rdflib(triple.predicate), to_rdflib(triple.object))
                if max_rows is not None and len(graph) >= max_rows and item not in graph:
                    truncated = True
                    break
                graph.add(item)
            return Result(form, graph=graph, truncated=truncated)

    def _values(self, query: str, bindings) -> list[tuple[str | None, ...]]:
        with _errors("query", ""):
            answer = self._store.query(bind(query, bindings), use_default_graph_as_union=True)
            return [tuple(None if term is None else term.value for term in solution) for solution in answer]

    @staticmethod
    def _solutions(answer, max_rows: int | None) -> Result:
        """Rows of a SELECT answer; with ``max_rows`` the iteration stops at the first solution beyond it."""
        variables, rows, truncated = solution_rows(answer, max_rows)
        return Result("select", variables=variables, rows=rows, truncated=truncated)

    def _update(self, update: str, bindings) -> None:
        with _errors("update", "; nothing was written"):
            self._store.update(bind(update, bindings))
        self._written()

    def _written(self) -> None:
        """Count a write; every :data:`FLUSH_AFTER_WRITES` writes, flush in the background (one flush at a time)."""
        with self._flush_lock:
            self.changes += 1
            self._writes_since_flush += 1
            if self._writes_since_flush < FLUSH_AFTER_WRITES or (self._flusher and self._flusher.is_alive()):
                return
            self._writes_since_flush = 0
            self._flusher = threading.Thread(target=self._store.flush, name="kg-flush", daemon=True)
            self._flusher.start()

    def _load(self, quads: list[ox.Quad], replace_graph: str | None) -> None:
        target = None if replace_graph is None else ox.NamedNode(replace_graph)
        if target is None or not self._store.contains_named_graph(target) or not any(
                True for _ in self._store.quads_for_pattern(None, None, None, target)):
            self._store.extend(quads)
        else:
            # Stage in a scratch graph (one transaction), then swap it in with one MOVE (a second transaction).
            staging = ox.NamedNode(STAGING_PREFIX + uuid.uuid4().hex)
            self._store.extend(ox.Quad(q.subject, q.predicate, q.object, staging) for q in quads)
            self._store.update(f"MOVE SILENT GRAPH {staging} TO GRAPH {target}")
        self._written()

    def graphs(self) -> list[str]:
        return sorted(
            name.value for name in self._store.named_graphs()
            if isinstance(name, ox.NamedNode) and any(True for _ in self._store.quads_for_pattern(None, None, None, name))
        )

    def flush(self) -> None:
        """Force pending writes to disk (a read-only store has none)."""
        if self.writable:
            self._store.flush()

    def close(self) -> None:
        if getattr(self, "_store", None) is not None:
            if self._flusher is not None:
                self._flusher.join()
            if self.writable:
                self._store.flush()
            del self._store
            self._store = None
        if self._shared is not None:  # after the store: no writer may open the folder while it is still open
            self._shared.close()
            self._shared = None

    def dump_quads(self, out: str | os.PathLike) -> dict[str, int]:
        """As :meth:`Store.dump_quads`, written by Oxigraph from one snapshot and counted by reading the file
        back as a stream (no quad list in memory; the default graph holds nothing: every write names a graph)."""
        with _errors("dump", f" ({out} may hold a partial file; delete it)"):
            self._store.dump(output=str(out), format=ox.RdfFormat.N_QUADS)
            counts: dict[str, int] = {}
            for quad in ox.parse(path=str(out), format=ox.RdfFormat.N_QUADS):
                name = quad.graph_name
                if isinstance(name, ox.NamedNode):
                    counts[name.value] = counts.get(name.value, 0) + 1
        return dict(sorted(counts.items()))

    def bulk_load(self, path: str | os.PathLike, format: str) -> None:
        """Load the file ``path`` with Oxigraph's bulk loader: fast and in bounded memory, but not one transaction
        (a failure leaves part of it written). Only for a new store that nothing else uses yet and that is thrown
        away when this fails, as :func:`semgraph.graph.backup.restore` builds one."""
        self._check_writable()
        with _errors("bulk load", "; the store holds part of the file"):
            self._store.bulk_load(path=str(path), format=rdf_format(format))
        self._written()

    def checkpoint(self, target: Path) -> None:
        """Write a consistent copy of the store into the new folder ``target`` (hard links where possible: cheap)."""
        with _errors("checkpoint", f" ({target} may hold a partial copy; delete it)"):
            self._store.backup(str(target))

    def _read_only_reason(self) -> str:
        return f"the store {self.location} was opened read-only; open it without read_only to write"
