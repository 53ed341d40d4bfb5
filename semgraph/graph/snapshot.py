"""A derived snapshot of the indexed cases and their likelihood matrix, kept beside an embedded store.

Reading every case and likelihood of a large store takes seconds (:func:`read_from_graph`: the totals of the
``sg:value`` literals, one query row per annotation's compact copy and per case and field, hash-joined by the store;
``bench/README.md``, ``bench.engine_load``). :func:`cases_and_likelihoods` returns the same data from a ``.npz`` file
beside the store folder when that file is current, and otherwise reads the graph and rewrites the file. The graph
stays the source of truth; the file is a cache that can be deleted at any time.

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
from kg.namespaces import ANNOTATIONS_GRAPH
from semgraph.files import write_atomically
from semgraph.graph.casegraph import (
    _TERM_VALUES,
    Case,
    _totals_agree,
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
_DATE = _FIELDS.index("study_date")


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
    return _key_and_totals(store, terms, kinds, collection)[0]


def _key_and_totals(store: Store, terms: Sequence[str], kinds: Sequence[str], collection: str | None
                    ) -> tuple[str, tuple[int, float, float]]:
    """:func:`snapshot_key` and the value totals in it (:func:`semgraph.graph.casegraph.value_totals`), which a
    read of the graph right after can use instead of adding up the values again."""
    stamps = annotation_stamps(store)
    totals = n, total, squares = value_totals(store)
    key = json.dumps({"format": FORMAT, "stamps": stamps, "values": n, "sum": repr(total), "squares": repr(squares),
                      "terms": list(terms), "kinds": list(kinds), "fields": list(_FIELDS),
                      "collection": None if collection is None else str(collection)}, sort_keys=True)
    return key, totals


def read_from_graph(store: Store, terms: Sequence[str], kinds: Sequence[str], *, collection: str | None = None
                    ) -> tuple[list[Case], np.ndarray]:
    """The cases that have likelihoods of one of ``kinds`` (sorted by id; only those of ``collection`` when given)
    and their (N, k) likelihood matrix, read through SPARQL: the same cases and float64 values as
    :func:`semgraph.graph.casegraph.read_likelihoods` and :func:`semgraph.graph.casegraph.read_cases` of the whole
    store, then the collection's members.

    The likelihoods come from the compact copies (``sg:termValues``), one query row per annotation, turned into the
    matrix in bulk (:func:`_likelihoods_from_copies`); when the copies do not add up to the graph's ``sg:value``
    literals, or hold anything but JSON objects of numbers, :func:`~semgraph.graph.casegraph.read_likelihoods`
    reads them (it logs why and reads the likelihood nodes)."""
    return _read(store, terms, kinds, collection, None)


def _read(store: Store, terms: Sequence[str], kinds: Sequence[str], collection: str | None,
          totals: tuple[int, float, float] | None) -> tuple[list[Case], np.ndarray]:
    """:func:`read_from_graph`, with the value totals already read (``totals``; None: read them)."""
    read = _likelihoods_from_copies(store, terms, kinds, value_totals(store) if totals is None else totals)
    ids, A = read if read is not None else read_likelihoods(store, terms, kinds=tuple(kinds))
    by_id = {c.case_id: c for c in read_cases(store)}
    members = collection_members(store, collection) if collection is not None else by_id
    keep = [i for i, case_id in enumerate(ids) if case_id in by_id and case_id in members]
    return [by_id[ids[i]] for i in keep], A[keep]


def _likelihoods_from_copies(store: Store, terms: Sequence[str], kinds: Sequence[str],
                             totals: tuple[int, float, float]) -> tuple[list[str], np.ndarray] | None:
    """What :func:`semgraph.graph.casegraph.read_likelihoods` returns when the copies are trusted, built in bulk; None
    when it would not trust them (their count, sum and sum of squares differ from ``totals``, the graph's) or a copy
    is not a JSON object of numbers (read_likelihoods then decides, and says why).

    One query row per annotation (:data:`semgraph.graph.casegraph._TERM_VALUES`), one JSON parse of all copies; the
    copies with the same terms in the same order (all of them, when one program wrote the store) become one float64
    array, added up for the check and copied into the matrix with one numpy assignment.
    """
    rows = store.select_values(_TERM_VALUES, {"g": ANNOTATIONS_GRAPH})
    try:
        parsed = json.loads("[" + ",".join(text for _, _, text in rows) + "]")
    except ValueError:
        return None
    if not all(type(values) is dict for values in parsed):
        return None
    layouts: dict[tuple, list[int]] = {}  # the terms of a copy, in order → the rows of the copies that have them
    for i, values in enumerate(parsed):
        layouts.setdefault(tuple(values), []).append(i)
    blocks = []
    n, total, squares = 0, 0.0, 0.0
    for layout, members in layouts.items():
        if not layout:
            continue
        try:
            block = np.array([list(parsed[i].values()) for i in members])
        except ValueError:
            return None
        if block.dtype.kind not in "biuf" or block.shape != (len(members), len(layout)):
            return None  # text, null or nested values: read_likelihoods gives them the meaning it gives them
        block = block.astype(np.float64)
        n, total, squares = n + block.size, total + float(block.sum()), squares + float(np.vdot(block, block))
        blocks.append((layout, np.asarray(members), block))
    if not _totals_agree(totals, (n, total, squares)):
        return None
    rank = {k: r for r, k in enumerate(kinds)}
    # read_annotations' dict: one annotation per (case, kind), the last row of each; empty copies left out
    latest = {(case_id, kind): i for i, (case_id, kind, _) in enumerate(rows) if parsed[i]}
    best: dict[str, tuple[int, int]] = {}
    for (case_id, kind), i in latest.items():
        r = rank.get(kind)
        if r is not None and (case_id not in best or r < best[case_id][0]):
            best[case_id] = (r, i)
    ids = sorted(best)
    target = np.full(len(rows), -1, dtype=np.int64)  # the matrix row of each query row, -1 when not used
    target[[best[case_id][1] for case_id in ids]] = np.arange(len(ids))
    index = {t: i for i, t in enumerate(terms)}
    matrix = np.zeros((len(ids), len(terms)))
    for layout, members, block in blocks:
        at = target[members]
        used = at >= 0
        columns = [(j, index[term]) for j, term in enumerate(layout) if term in index]
        if used.any() and columns:
            source, column = (np.asarray(c) for c in zip(*columns))
            matrix[np.ix_(at[used], column)] = block[used][:, source]
    return ids, matrix


def _case_row(case: Case) -> list:
    return [v.isoformat() if isinstance(v, dt.date) else v for v in (getattr(case, f) for f in _FIELDS)]


def _case_of(row: list) -> Case:
    """The case of a :func:`_case_row` (positional: three times faster than by name for 100,000 cases)."""
    if len(row) != len(_FIELDS):
        raise ValueError("a case row of another layout")
    if row[_DATE] is not None:
        row[_DATE] = dt.date.fromisoformat(row[_DATE])
    return Case(*row)


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
    key, totals = _key_and_totals(store, terms, kinds, collection)
    loaded = _load(path, key)
    if loaded is not None:
        return (*loaded, "snapshot")
    cases, A = _read(store, terms, kinds, collection, totals)
    try:
        _save(path, key, cases, A)
    except OSError:  # a read-only data folder: serve from the graph, as without a snapshot
        pass
    return cases, A, "graph"
