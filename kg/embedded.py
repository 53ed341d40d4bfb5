"""The embedded backend: a pyoxigraph (RocksDB) store in a folder on disk."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

import pyoxigraph as ox
from rdflib import Graph

from .errors import QueryError, StoreError, StoreLockedError
from .sparql import bind, solution_rows, to_rdflib
from .store import Result, Store

#: Graphs that hold a load in progress live under this prefix; one left by a crash is removed on open.
STAGING_PREFIX = "urn:semgraph:staging:"
#: Writes after which the store's write buffers are flushed to disk, in a background thread. Left alone, RocksDB
#: holds up to 64 MiB of unflushed writes per column family, about 0.8 GB for Oxigraph's before its own flush
#: (measured: a server writing feedback rounds grew from 96 MB to 845 MB in 10 minutes, then levelled off).
FLUSH_AFTER_WRITES = 500


@contextmanager
def _errors(what: str, consequence: str):
    """Map pyoxigraph's exceptions to ours: syntax and evaluation errors are the caller's, I/O errors the store's."""
    try:
        yield
    except SyntaxError as exc:
        raise QueryError(f"malformed SPARQL {what}: {exc}{consequence}") from exc
    except RuntimeError as exc:
        raise QueryError(f"the {what} failed: {exc}{consequence}") from exc
    except OSError as exc:
        raise StoreError(f"the {what} failed: {exc}{consequence}") from exc


class EmbeddedStore(Store):
    """A store folder opened by this process. Only one process may open a folder for writing.

    Queries see the union of all named graphs as their default graph (as ``oxigraph serve
    --union-default-graph`` does), so ``SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }`` works without ``GRAPH``.
    """

    def __init__(self, path: Path, *, read_only: bool = False):
        self.location = str(path)
        self.writable = not read_only
        # A read-only store is still opened with the folder lock: pyoxigraph's lock-free read-only mode is
        # undefined while another process writes, so a second process gets a clear error instead.
        if read_only and not path.is_dir():
            raise StoreError(f"no store at {path}: create it first (for example with `semgraph demo`)")
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._store = ox.Store(str(path))
        except OSError as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"the store folder {path} is already open in another process (a running `semgraph serve`?). "
                    "Stop that process, or reach the same data through its SPARQL endpoint (for example "
                    "`oxigraph serve` and --store http://.../query). Opening read-only does not help: the folder "
                    "lock is exclusive for readers too."
                ) from exc
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
        """Force pending writes to disk."""
        self._store.flush()

    def close(self) -> None:
        if getattr(self, "_store", None) is not None:
            if self._flusher is not None:
                self._flusher.join()
            if self.writable:
                self._store.flush()
            del self._store
            self._store = None

    def checkpoint(self, target: Path) -> None:
        """Write a consistent copy of the store into the new folder ``target`` (hard links where possible: cheap)."""
        with _errors("checkpoint", f" ({target} may hold a partial copy; delete it)"):
            self._store.backup(str(target))

    def _read_only_reason(self) -> str:
        return f"the store {self.location} was opened read-only; open it without read_only to write"
