"""A derived snapshot of the indexed cases and their likelihood matrix, kept beside an embedded store.

Reading every case and likelihood of a large store through SPARQL is slow (about 4 minutes for 100,000 cases:
1.9 million likelihood rows and 100,000 cases with metadata). :func:`cases_and_likelihoods` returns the same data
from a ``.npz`` file beside the store folder when that file is current, and otherwise reads the graph and rewrites
the file. The graph stays the source of truth; the file is a cache that can be deleted at any time.

"Current" means the snapshot's key equals the store's key, read before the data (so a write racing with the read
can only make the new snapshot look stale, never a stale one look current):

* the version stamp of the annotations graph (``owl:versionInfo`` of the graph itself), which every write of cases
  or likelihoods replaces in the same transaction (:func:`semgraph.graph.casegraph.update_annotations`, used by
  :func:`semgraph.graph.casegraph.write_case`, the annotation writes of :mod:`semgraph.exchange.training` and every SPARQL Update
  through the web app's ``/sparql``);
* the number, sum and sum of squares of all ``sg:value`` literals in the annotations graph
  (:func:`semgraph.graph.casegraph.value_totals`), which catches writers that do not stamp (a bulk load into the
  folder, another program) when they add, remove or change likelihood values;
* the vocabulary, the annotation kinds, the fields of :class:`semgraph.graph.casegraph.Case` and :data:`FORMAT`.

A metadata-only change (a diagnosis, a date) by a writer that bypasses the stamp is not detected; delete the file
(:func:`snapshot_path`) after such a write. A remote store gets a snapshot only at a file named by the caller
(``snapshot_file``; ``semgraph serve --workers`` names the one beside the data folder's store, which its own
``oxigraph serve`` process holds): other clients of a remote endpoint are writers of that kind.
The file holds no pickles: the key is a text array, the vectors a float64 array, the cases a UTF-8 JSON text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kg import Store
from semgraph.files import write_atomically
from semgraph.graph.casegraph import (
    Case,
    annotation_stamps,
    collection_members,
    read_cases,
    read_likelihoods,
    value_totals,
)

__all__ = ["FORMAT", "cases_and_likelihoods", "read_from_graph", "snapshot_file", "snapshot_key", "snapshot_path"]

#: Version of the file layout; part of the key, so a file of another layout is never read.
FORMAT = 1
_SUFFIX = ".engine-snapshot.npz"
_FIELDS = tuple(f.name for f in dataclasses.fields(Case))


def snapshot_file(store_folder: str | os.PathLike) -> Path:
    """``<store folder>.engine-snapshot.npz``, beside the folder (e.g. ``DATA_DIR/graph.engine-snapshot.npz``)."""
    folder = Path(store_folder)
    return folder.with_name(folder.name + _SUFFIX)


def snapshot_path(store: Store, collection: str | None = None) -> Path | None:
    """The snapshot file of an embedded store (:func:`snapshot_file` of its folder); None for a remote store.

    The cases of one collection (``collection``, an IRI) are kept in their own file beside it, named with a short
    hash of the IRI, so that engines of two collections do not overwrite each other's snapshot."""
    if not Path(store.location).is_dir():
        return None
    path = snapshot_file(store.location)
    if collection is None:
        return path
    digest = hashlib.sha256(str(collection).encode()).hexdigest()[:12]
    return path.with_name(path.name.replace(_SUFFIX, f".{digest}{_SUFFIX}"))


def snapshot_key(store: Store, terms: Sequence[str], kinds: Sequence[str], *, collection: str | None = None) -> str:
    """The store's current key (JSON text): stamp, totals of the likelihood values, vocabulary, kinds, format.

    Two native aggregate queries: about a second for 1.9 million values.
    """
    stamps = annotation_stamps(store)
    n, total, squares = value_totals(store)
    return json.dumps({"format": FORMAT, "stamps": stamps, "values": n, "sum": repr(total), "squares": repr(squares),
                       "terms": list(terms), "kinds": list(kinds), "fields": list(_FIELDS),
                       "collection": None if collection is None else str(collection)}, sort_keys=True)


def read_from_graph(store: Store, terms: Sequence[str], kinds: Sequence[str], *, collection: str | None = None
                    ) -> tuple[list[Case], np.ndarray]:
    """The cases that have likelihoods of one of ``kinds`` (sorted by id; only those of ``collection`` when given)
    and their (N, k) likelihood matrix, read through SPARQL (:func:`semgraph.graph.casegraph.read_likelihoods` and
    :func:`semgraph.graph.casegraph.read_cases` of the whole store, then the collection's members)."""
    ids, A = read_likelihoods(store, terms, kinds=tuple(kinds))
    by_id = {c.case_id: c for c in read_cases(store)}
    members = collection_members(store, collection) if collection is not None else by_id
    keep = [i for i, case_id in enumerate(ids) if case_id in by_id and case_id in members]
    return [by_id[ids[i]] for i in keep], A[keep]


def _case_row(case: Case) -> list:
    return [v.isoformat() if isinstance(v, dt.date) else v for v in (getattr(case, f) for f in _FIELDS)]


def _case_of(row: list) -> Case:
    values = dict(zip(_FIELDS, row))
    if values["study_date"] is not None:
        values["study_date"] = dt.date.fromisoformat(values["study_date"])
    return Case(**values)


def _save(path: Path, key: str, cases: Sequence[Case], A: np.ndarray) -> None:
    """Write the snapshot atomically (a temporary file in the same folder, then a rename)."""
    write_atomically(path, lambda handle: np.savez(
        handle, key=np.array(key), vectors=np.asarray(A, dtype=np.float64),
        cases=np.frombuffer(json.dumps([_case_row(c) for c in cases]).encode(), dtype=np.uint8)))


def _load(path: Path, key: str) -> tuple[list[Case], np.ndarray] | None:
    """The snapshot's cases and matrix if the file exists, is readable and has exactly ``key``; else None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            A = data["vectors"]
            cases = [_case_of(row) for row in json.loads(data["cases"].tobytes().decode())]
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile):  # missing, truncated, foreign
        return None
    if A.ndim != 2 or A.shape[0] != len(cases):
        return None
    return cases, A


def cases_and_likelihoods(store: Store, terms: Sequence[str], kinds: Sequence[str], *, use_snapshot: bool = True,
                          snapshot_file: str | os.PathLike | None = None, collection: str | None = None
                          ) -> tuple[list[Case], np.ndarray, str]:
    """:func:`read_from_graph`, from the snapshot (``snapshot_file``, else :func:`snapshot_path`) when it is current.

    Returns ``(cases, A, source)`` with ``source`` ``'snapshot'`` (read from the file) or ``'graph'`` (read through
    SPARQL; the file was then rewritten, unless ``use_snapshot`` is False, the store is remote and no
    ``snapshot_file`` is given, or the folder is not writable). Both give identical values: the vectors are the float64 values of the graph's literals.
    """
    path = (Path(snapshot_file) if snapshot_file else snapshot_path(store, collection)) if use_snapshot else None
    if path is None:
        return (*read_from_graph(store, terms, kinds, collection=collection), "graph")
    key = snapshot_key(store, terms, kinds, collection=collection)
    loaded = _load(path, key)
    if loaded is not None:
        return (*loaded, "snapshot")
    cases, A = read_from_graph(store, terms, kinds, collection=collection)
    try:
        _save(path, key, cases, A)
    except OSError:  # a read-only data folder: serve from the graph, as without a snapshot
        pass
    return cases, A, "graph"
