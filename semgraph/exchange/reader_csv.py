"""Reader-only CSV ingest (no pixels): each row becomes a case with a "reader" annotation.

Columns ``case_id``, ``patient_id``, optional ``diagnosis``, optional metadata (``study_id``, ``study_date``, ``age``,
``sex``, ``contrast_phase``, ``liver_segment``) and one column per term (IRI, RadLex id or label, resolved in the
loaded ontology) with values in [0, 1]. The whole file is validated before anything is written, including that no
row reuses the id of a different case of the store (:func:`semgraph.exchange.case_identity.case_differences`; the
fields a row leaves empty are not compared).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import ontology
from kg import Store
from ontology import OntologyError
from semgraph.errors import InvalidInput, NotFound
from semgraph.exchange.case_identity import case_differences
from semgraph.exchange.ingest_report import (
    DEFAULT_BATCH,
    IngestReport,
    existing_case_ids,
)
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    case_ntriples,
    read_cases,
    write_case,
    write_cases,
)
from semgraph.graph.collection import for_cases
from semgraph.graph.collection import resolve as resolve_collection
from semgraph.progress import track

__all__ = ["READER_META_COLUMNS", "ingest_reader_csv"]

READER_META_COLUMNS = ("study_id", "study_date", "age", "sex", "contrast_phase", "liver_segment")
_FIXED_COLUMNS = frozenset({"case_id", "patient_id", "diagnosis", *READER_META_COLUMNS})


def _reader_rows(path: Path, resolve: Callable[[str], str]) -> tuple[list[str], list[tuple[Case, dict[str, float]]]]:
    """(the term IRIs of the columns, (case, its values) of each row) of the CSV at ``path``; InvalidInput naming
    every bad row and column (at most 20) when anything is wrong."""
    errors: list[str] = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise InvalidInput(f"{path.name}: empty file; the first row must name the columns")
        header = [h.strip() for h in header]
        rows = list(reader)
    for required in ("case_id", "patient_id"):
        if required not in header:
            errors.append(f"missing column {required!r}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        errors.append(f"duplicate columns {', '.join(dupes)}")
    terms: dict[int, str] = {}
    for j, name in enumerate(header):
        if name in _FIXED_COLUMNS:
            continue
        try:
            terms[j] = resolve(name)
        except OntologyError as exc:  # UnknownTermError is one
            errors.append(f"column {j + 1} {name!r}: not a known column or term ({exc})")
    if len(set(terms.values())) != len(terms):
        errors.append("two columns name the same term")
    if not terms and not errors:
        errors.append("no term column")
    if errors:
        raise InvalidInput(f"{path.name}: " + "; ".join(errors))
    col = {name: j for j, name in enumerate(header)}
    out: list[tuple[Case, dict[str, float]]] = []
    seen: dict[str, int] = {}
    for r, row in enumerate(rows, start=2):  # row 1 is the header
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            errors.append(f"row {r}: {len(row)} cells, expected {len(header)}")
            continue
        def get(name, row=row):
            return row[col[name]].strip() if name in col else ""

        case_id, patient = get("case_id"), get("patient_id")
        if not case_id:
            errors.append(f"row {r}, column case_id: empty")
        elif case_id in seen:
            errors.append(f"row {r}, column case_id: {case_id!r} already on row {seen[case_id]}")
        else:
            seen[case_id] = r
        if not patient:
            errors.append(f"row {r}, column patient_id: empty")
        values: dict[str, float] = {}
        for j, term in terms.items():
            cell = row[j].strip()
            if cell == "":
                continue
            try:
                v = float(cell)
            except ValueError:
                v = float("nan")
            if not (0.0 <= v <= 1.0):
                errors.append(f"row {r}, column {header[j]!r}: {cell!r} is not a number in [0, 1]")
            else:
                values[term] = v
        date = age = None
        if get("study_date"):
            try:
                date = dt.date.fromisoformat(get("study_date"))
            except ValueError:
                errors.append(f"row {r}, column study_date: {get('study_date')!r} is not a YYYY-MM-DD date")
        if get("age"):
            try:
                age = int(get("age"))
                if not 0 <= age <= 150:
                    raise ValueError
            except ValueError:
                errors.append(f"row {r}, column age: {get('age')!r} is not an age in years")
        if case_id and patient:
            out.append((Case(case_id=case_id, patient_id=patient, study_id=get("study_id") or _default_study(patient, case_id),
                             diagnosis=get("diagnosis") or None, study_date=date, age=age, sex=get("sex") or None,
                             contrast_phase=get("contrast_phase") or None,
                             liver_segment=get("liver_segment") or None), values))
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise InvalidInput(f"{path.name}: nothing was written; " + "; ".join(shown))
    if not out:
        raise InvalidInput(f"{path.name}: no case rows")
    return list(terms.values()), out


def ingest_reader_csv(store: Store, path, *, hierarchy: ontology.Hierarchy | None = None, replace: bool = False,
                      collection: str | None = None, new_collection: Mapping | None = None,
                      batch: int = DEFAULT_BATCH, progress: bool = False) -> IngestReport:
    """Ingest a reader-only CSV (no pixels): each row becomes a case with a "reader" annotation.

    The whole file is checked first (unknown column, value outside [0, 1], bad date or age, duplicate case id:
    an :class:`InvalidInput` naming the row and column, and nothing is written). Term columns are resolved with
    ``hierarchy.resolve`` (default: the hierarchy of the collection's ontology, else the first loaded ontology that
    resolves every term column (:func:`ontology.find_ontology`), else :func:`ontology.hierarchy`).
    The cases go into ``collection`` (default: the store's only one); a new name defines it from the CSV's term
    columns in their order (:func:`semgraph.graph.collection.for_cases`, options ``new_collection``). Cases already in
    the store are skipped unless ``replace``.

    New cases are written ``batch`` at a time, each batch in one store transaction
    (:func:`semgraph.graph.casegraph.write_cases`): an interrupted ingest leaves whole batches, and a rerun skips
    them. With ``replace`` each case is one transaction that removes its old description first. ``progress``
    reports the cases written on standard error.
    """
    start = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path} does not exist")
    options = dict(new_collection or {})
    if hierarchy is None:
        name = (options.get("ontology") or _collection_ontology(store, collection)
                or _ontology_of_columns(store, path))
        hierarchy = ontology.hierarchy(store, name)
        if name and collection is not None:
            options.setdefault("ontology", name)
    terms, rows = _reader_rows(path, hierarchy.resolve)
    existing = set() if replace else existing_case_ids(store)
    _refuse_reused_ids(store, path, [case for case, _ in rows if case.case_id in existing])
    target = for_cases(store, collection, terms, **options)
    report = IngestReport(collection=target.name)
    pending: list[tuple[str, str]] = []  # (case id, its triples) of the batch being gathered
    for case, values in track(rows, desc="ingest", unit="case", enabled=progress):
        if case.case_id in existing:
            report.skipped.append(case.case_id)
        elif replace:
            write_case(store, case, [Annotation("reader", values)], replace=True, collection=target.iri)
            report.ingested.append(case.case_id)
        else:
            pending.append((case.case_id, case_ntriples(case, [Annotation("reader", values)], collection=target.iri)))
            if len(pending) >= batch:
                _write_batch(store, pending, report)
    _write_batch(store, pending, report)
    report.seconds = time.perf_counter() - start
    return report


def _write_batch(store: Store, pending: list[tuple[str, str]], report: IngestReport) -> None:
    """Write the cases of ``pending`` in one transaction, record them in ``report`` and empty the list."""
    write_cases(store, [triples for _, triples in pending])
    report.ingested.extend(case_id for case_id, _ in pending)
    pending.clear()


def _default_study(patient: str, case_id: str) -> str:
    """The study id of a row without one."""
    return f"{patient}-{case_id}"


def _refuse_reused_ids(store: Store, path: Path, cases: list[Case]) -> None:
    """:class:`InvalidInput` when one of ``cases`` (rows whose id the store holds) is a different case than the
    stored one; a row's empty fields, and its study when it names none, are not compared."""
    if not cases:
        return
    stored = {case.case_id: case for case in read_cases(store)}
    clashes = []
    for case in cases:
        known = stored.get(case.case_id)
        if known is None:
            continue
        if case.study_id == _default_study(case.patient_id, case.case_id):
            case = dataclasses.replace(case, study_id=known.study_id)
        if found := case_differences(known, case, None, only_given=True):
            clashes.append(f"{case.case_id} ({'; '.join(found)})")
    if clashes:
        more = f" and {len(clashes) - 20} more" if len(clashes) > 20 else ""
        raise InvalidInput(f"{path.name}: nothing was written; the store already holds different cases with the ids "
                           f"{', '.join(clashes[:20])}{more}; give the new cases other ids")


def _ontology_of_columns(store: Store, path: Path) -> str | None:
    """The first loaded ontology in :func:`ontology.find_ontology` order that resolves every term column of the CSV
    at ``path``; None when none does (the default ontology then reports the columns it cannot resolve)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        header = [h.strip() for h in next(csv.reader(f), [])]
    try:
        return ontology.find_ontology(store, [h for h in header if h and h not in _FIXED_COLUMNS], resolve=True)
    except OntologyError:
        return None


def _collection_ontology(store: Store, name: str | None) -> str | None:
    """The ontology of an existing collection ``name`` (None: unknown yet, or the default ontology)."""
    try:
        return resolve_collection(store, name).ontology if name else None
    except NotFound:
        return None
