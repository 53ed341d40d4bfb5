"""Ingest cases into the store: images with masks (a cohort manifest), reader ratings only (a CSV) or AIM XML.

:func:`ingest` tells the sources apart (:func:`resolve_source`) and hands reader CSVs to
:mod:`semgraph.exchange.reader_csv` and AIM XML to :mod:`semgraph.exchange.aim`; manifests are ingested here.

For an image case: load the image and mask and extract the ROI vector and the patch features, write them to
``DATA_DIR/features/<sha1 of the case IRI>.npz`` (:mod:`semgraph.exchange.feature_files`; temp file +
``os.replace``), and predict the term likelihoods when a term model is given: in worker processes, one per core by
default (``jobs``). Then the case is written with its annotations (:func:`semgraph.graph.casegraph.case_ntriples`):
the reader's terms ("reader"), the generating terms when the manifest has them ("truth") and the model's likelihoods
("predicted", attributed to the model version); ``batch`` cases in manifest order go in one atomic store write. The
feature files are complete before their cases exist in the store, so a crash never leaves a half case or a half
batch; rerunning skips the cases already in the store. A bad case is reported with its id and reason and skipped;
the other cases are ingested. A case whose id the store already holds is skipped when it is the same case and
refused (reported as failed, nothing of it written) when it is a different one: another patient, study, diagnosis,
study metadata, or image or mask bytes (:func:`semgraph.exchange.case_identity.case_differences`).

Image and mask files: a file of the manifest that is inside the data folder (symbolic links resolved) is recorded
where it is (its path relative to the data folder); one outside it is first copied to ``DATA_DIR/images/<case id>/<file name>`` and
recorded as that path relative to the data folder (:func:`semgraph.exchange.case_files.keep_in_data_folder`). A
manifest that is itself inside the data folder (the web batch ingest unpacks uploads into ``DATA_DIR/cohorts/``) may
only name files inside it.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import itertools
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from rdflib import URIRef

from kg import Store, StoreError
from semgraph.cohort import read_manifest
from semgraph.cohort.manifest import BASE_COLUMNS, CaseRecord
from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.exchange.aim import ingest_aim
from semgraph.exchange.case_files import (
    inside_data_folder,
    keep_in_data_folder,
    remove_copies,
)
from semgraph.exchange.case_identity import case_differences
from semgraph.exchange.feature_files import (
    INGEST_FEATURE_CONFIG,
    compute_features,
    features_path,
    save_features,
)
from semgraph.exchange.ingest_report import (
    DEFAULT_BATCH,
    IngestReport,
    existing_case_ids,
)
from semgraph.exchange.reader_csv import ingest_reader_csv
from semgraph.exchange.saved_models import record_model
from semgraph.features import FeatureConfig
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    case_exists,
    case_ntriples,
    model_iri,
    read_cases,
    write_cases,
)
from semgraph.graph.collection import for_cases
from semgraph.progress import track
from semgraph.terms.models import TermModels

__all__ = ["CASES_PER_WORKER", "DEFAULT_BATCH", "ingest", "ingest_manifest", "resolve_source"]

#: With ``jobs=None``, :func:`ingest_manifest` starts at most one worker process per this many cases to ingest.
CASES_PER_WORKER = 200
#: Cases started (files copied, work submitted) ahead of the one being taken, per worker process, beyond one batch.
_AHEAD_PER_WORKER = 4


def resolve_source(source) -> tuple[str, Path]:
    """('manifest' | 'reader' | 'aim', path) for a manifest file, a folder with ``manifest.json``, a reader CSV, or
    AIM XML (a ``.xml`` file or a folder of them)."""
    path = Path(source)
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return "manifest", path / "manifest.json"
        if any(p.is_file() and p.suffix.lower() == ".xml" for p in path.rglob("*")):
            return "aim", path
        raise NotFound(f"{source} has no manifest.json and no .xml (AIM) file")
    if not path.is_file():
        raise NotFound(f"{source} does not exist")
    if path.suffix.lower() == ".json":
        return "manifest", path
    if path.suffix.lower() == ".xml":
        return "aim", path
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), [])
        is_manifest = [h.strip() for h in header[: len(BASE_COLUMNS)]] == list(BASE_COLUMNS)
        return ("manifest" if is_manifest else "reader"), path
    raise InvalidInput(f"{path}: expected a manifest (.json or .csv), a folder with manifest.json, a reader CSV, "
                       "or AIM XML (a .xml file or a folder of them)")


def ingest(store: Store, source, data_dir, *, model: TermModels | None = None,
           feature_config: FeatureConfig | None = None, progress: bool = True, hierarchy=None,
           on_case: Callable[[str], None] | None = None, copy_outside: bool | None = None,
           collection: str | None = None, new_collection: Mapping | None = None, strict: bool = False,
           zero_confidence: str = "auto", jobs: int | None = None, batch: int = DEFAULT_BATCH) -> IngestReport:
    """Ingest a cohort manifest, a folder with ``manifest.json``, a reader-only CSV or AIM XML (see the module doc)
    into ``collection`` (default: the store's only one; a new name defines it, see
    :func:`semgraph.graph.collection.for_cases`, with the options ``new_collection``).

    Reader CSV and AIM cases have no image files; ``copy_outside`` and ``jobs`` are for manifests
    (:func:`ingest_manifest`), ``batch`` for manifests and reader CSV, ``strict`` and ``zero_confidence`` for AIM (:func:`semgraph.exchange.aim.ingest_aim`).
    """
    kind, path = resolve_source(source)
    if kind == "reader":
        return ingest_reader_csv(store, path, hierarchy=hierarchy, collection=collection,
                                 new_collection=new_collection, batch=batch, progress=progress)
    if kind == "aim":
        return ingest_aim(store, path, hierarchy=hierarchy, strict=strict, zero_confidence=zero_confidence,
                          collection=collection, new_collection=new_collection)
    return ingest_manifest(store, read_manifest(path), data_dir, model=model, feature_config=feature_config,
                           progress=progress, on_case=on_case, copy_outside=copy_outside, collection=collection,
                           new_collection=new_collection, jobs=jobs, batch=batch)


def _manifest_case(record) -> Case:
    meta = record.metadata
    study = meta.get("study_uid") or f"{record.patient_id}-S{meta.get('study_number', 1)}"
    date = meta.get("study_date")
    return Case(
        case_id=record.case_id, patient_id=record.patient_id, study_id=str(study), diagnosis=record.diagnosis or None,
        study_date=dt.date.fromisoformat(date) if date else None,
        age=int(meta["age"]) if meta.get("age") not in (None, "") else None, sex=meta.get("sex") or None,
        contrast_phase=meta.get("phase") or None, liver_segment=meta.get("liver_segment") or None,
        image_file=str(record.image), mask_file=str(record.mask))


def ingest_manifest(store: Store, manifest, data_dir, *, model: TermModels | None = None,
                    feature_config: FeatureConfig | None = None, progress: bool = True,
                    on_case: Callable[[str], None] | None = None, copy_outside: bool | None = None,
                    collection: str | None = None, new_collection: Mapping | None = None, jobs: int | None = None,
                    batch: int = DEFAULT_BATCH) -> IngestReport:
    """Ingest every case of a read manifest (:func:`semgraph.cohort.read_manifest`) into ``collection`` (default:
    the store's only one; see :func:`semgraph.graph.collection.for_cases`); resumable.

    ``model`` (a fitted :class:`semgraph.terms.models.TermModels`) adds a "predicted" annotation; its feature
    configuration is used (a different explicit ``feature_config`` is an error). ``on_case`` is called with each
    case id before its features are extracted (used by tests to simulate a crash).

    The work of a case (its files kept in the data folder, image and mask read, features, feature file, the model's
    likelihoods, its triples) runs in ``jobs`` worker processes (1: in this process, no worker; None: one per core,
    :func:`os.cpu_count`, but at most one per :data:`CASES_PER_WORKER` cases not yet in the store, as a worker takes
    a second or more to start); the results are taken in manifest order. The workers are started with the
    "forkserver" method: a script that ingests with more than one job must guard its entry point with
    ``if __name__ == "__main__":``.

    The cases are written ``batch`` at a time, each batch in one store update (all or nothing), so an interrupted
    ingest leaves whole batches; a rerun skips the cases in the store before extracting anything. An error of the
    store (or any other error than a bad case's) stops the ingest: the files it copied for cases it did not write
    are removed, and the feature files it wrote for them stay, unused (a rerun rewrites them).

    Image and mask files outside the data folder are copied into it
    (:func:`semgraph.exchange.case_files.keep_in_data_folder`; listed in ``report.copied``) when ``copy_outside`` is
    true, and make the case fail when it is false; by default (None) they are copied unless the manifest itself is
    inside the data folder. The copies of a case that fails are removed; those of a run that was killed are
    reused by the next.
    """
    if (jobs is not None and jobs < 1) or batch < 1:
        raise InvalidInput(f"jobs and batch must be at least 1, got jobs={jobs}, batch={batch}")
    cfg = feature_config
    if model is not None:
        model_cfg = getattr(model, "feature_config_", None)
        if model_cfg is None:
            raise InvalidInput(f"model {model.version_} has no feature configuration; it cannot predict from images")
        if cfg is not None and cfg != model_cfg:
            raise InvalidInput(f"the model {model.version_} was trained on features {model_cfg.to_dict()}, "
                               f"not {cfg.to_dict()}")
        cfg = model_cfg
    cfg = cfg or INGEST_FEATURE_CONFIG
    if copy_outside is None:
        copy_outside = getattr(manifest, "path", None) is None or not inside_data_folder(manifest.path, data_dir)
    start = time.perf_counter()
    named = dict.fromkeys(t for record in manifest.cases for t in record.reader_labels)
    target = for_cases(store, collection, list(named), **dict(new_collection or {}))
    report = IngestReport(collection=target.name)
    if model is not None:
        record_model(store, model)
    run = _ManifestRun(store, data_dir, report, work=_CaseWork(cfg, model, target.iri, data_dir, copy_outside),
                       jobs=jobs, on_case=on_case)
    for _ in track(run.steps(manifest.cases, batch), desc="ingest", unit="case", total=len(manifest.cases),
                   enabled=progress):
        pass
    report.seconds = time.perf_counter() - start
    return report


@dataclasses.dataclass
class _Worked:
    """What :class:`_CaseWork` made of a case: the case as it is written, its N-Triples
    (:func:`~semgraph.graph.casegraph.case_ntriples`) and the files copied for it; or why it cannot be ingested
    (``reason``; nothing copied)."""

    case: Case | None = None
    triples: str | None = None
    copies: list[Path] = dataclasses.field(default_factory=list)
    reason: str | None = None


class _CaseWork:
    """The work of one case that needs no store: its image and mask kept in the data folder, its features from
    them, its feature file, the model's likelihoods and the update that writes the case. Picklable: it runs in the
    ingest process or, sent once, in each worker process."""

    def __init__(self, config: FeatureConfig, model: TermModels | None, collection: URIRef, data_dir,
                 copy_outside: bool):
        self.config, self.model, self.collection = config, model, collection
        self.data_dir, self.copy_outside = data_dir, copy_outside

    def __call__(self, record: CaseRecord) -> _Worked:
        """The case with its ``INSERT DATA`` update, once its files are in the data folder and its feature file is
        written; a bad image or mask gives the reason instead (and leaves no copy); other errors are raised."""
        copies: list[Path] = []
        try:
            case = dataclasses.replace(_manifest_case(record), **{
                field_name: keep_in_data_folder(path, self.data_dir, record.case_id, what=what,
                                                copy=self.copy_outside, copied=copies)
                for field_name, what, path in (("image_file", "image", record.image),
                                               ("mask_file", "mask", record.mask))})
            feats = compute_features(record.image, record.mask, self.config)
        except (SemgraphError, ValueError, OSError) as exc:
            remove_copies(copies)
            return _Worked(reason=getattr(exc, "message", None) or str(exc))
        annotations = ([Annotation("reader", {t: float(v) for t, v in record.reader_labels.items()})]
                       if record.reader_labels else [])  # a PACS study has no reader terms
        if record.true_labels:
            annotations.append(Annotation("truth", {t: float(v) for t, v in record.true_labels.items()}))
        if self.model is not None:
            annotations.append(Annotation("predicted", self.model.likelihoods(feats.roi, feats.patches, feats.kinds),
                                          attributed_to=model_iri(self.model.version_)))
        save_features(features_path(self.data_dir, record.case_id), feats)
        return _Worked(case, case_ntriples(case, annotations, collection=self.collection), copies)


_worker_case_work: _CaseWork | None = None  # in a worker process: what its pool was started with


def _start_worker(work: _CaseWork) -> None:
    global _worker_case_work
    _worker_case_work = work


def _work_in_worker(record: CaseRecord) -> _Worked:
    return _worker_case_work(record)


@dataclasses.dataclass
class _Item:
    """A manifest case in a run: to skip, refused (``reason``), waiting until the case of its id on its way is
    written or failed (``deferred``), or on its way (the future of its :class:`_CaseWork`, then what it made)."""

    record: CaseRecord
    skipped: bool = False
    reason: str | None = None
    deferred: bool = False
    work: Future | None = None
    worked: _Worked | None = None


class _ManifestRun:
    """One :func:`ingest_manifest` run: starts cases (skip, refuse or submit their work) ahead of the case being
    taken, and takes them in manifest order, writing the worked ones in batches."""

    def __init__(self, store: Store, data_dir, report: IngestReport, *, work: _CaseWork, jobs: int | None,
                 on_case: Callable[[str], None] | None):
        self.store, self.data_dir, self.report = store, data_dir, report
        self.work, self.jobs, self.on_case = work, jobs, on_case
        self.existing = existing_case_ids(store)
        self.stored: dict[str, Case] | None = None  # the store's cases, read at the first id it already holds
        self.on_way: set[str] = set()  # ids of the cases started and neither written nor failed
        self.pool: ProcessPoolExecutor | None = None

    def steps(self, records: Sequence[CaseRecord], batch: int) -> Iterator[None]:
        """Ingest ``records``, yielding once per record taken. On an error the workers are stopped, the cases
        started and not written lose their copied files (:meth:`discard`) and the error is raised."""
        if self.jobs is None:
            new = sum(record.case_id not in self.existing for record in records)
            self.jobs = min(os.cpu_count() or 1, max(1, new // CASES_PER_WORKER))
        ahead = 1 if self.jobs == 1 else batch + _AHEAD_PER_WORKER * self.jobs
        todo = iter(records)
        queue: deque[_Item] = deque()
        pending: list[_Item] = []
        try:
            queue.extend(self.start(record) for record in itertools.islice(todo, ahead))
            while queue:
                item = queue[0]
                if item.deferred:  # the earlier case of its id is taken by now: written with the batch, or failed
                    self.write(pending)
                    item = queue[0] = self.start(item.record, here=True)
                ready = self.take(item)
                queue.popleft()
                if ready:
                    pending.append(item)
                    if len(pending) >= batch:
                        self.write(pending)
                queue.extend(self.start(record) for record in itertools.islice(todo, 1))
                yield
            self.write(pending)
        except BaseException:
            self.stop()
            self.discard(pending + list(queue))
            raise
        finally:
            self.stop()

    def start(self, record: CaseRecord, *, here: bool = False) -> _Item:
        """Skip or refuse a case whose id the store holds, defer one whose id is on its way, else submit its work
        (``here``: do it now, in this process)."""
        case_id = record.case_id
        if case_id in self.on_way:
            return _Item(record, deferred=True)
        if case_id in self.existing:
            if self.stored is None:
                self.stored = {case.case_id: case for case in read_cases(self.store)}
            known = self.stored.get(case_id)  # None: a case without a study, nothing to compare
            reason = None if known is None else _reused_id(known, _manifest_case(record), self.data_dir)
            return _Item(record, skipped=reason is None, reason=reason)
        if self.on_case is not None:
            self.on_case(case_id)
        item = _Item(record)
        if here or self.jobs == 1:
            item.work = Future()
            item.work.set_result(self.work(record))
        else:
            if self.pool is None:
                self.pool = _worker_pool(self.jobs, self.work)
            item.work = self.pool.submit(_work_in_worker, record)
        self.on_way.add(case_id)
        return item

    def take(self, item: _Item) -> bool:
        """Whether ``item`` is to be written (its work is done); a skipped or failed case goes to the report."""
        case_id = item.record.case_id
        if item.work is None:
            if item.skipped:
                self.report.skipped.append(case_id)
            else:
                self.report.failed.append((case_id, item.reason))
            return False
        item.worked = item.work.result()
        if item.worked.reason is not None:
            self.on_way.discard(case_id)
            self.report.failed.append((case_id, item.worked.reason))
            return False
        return True

    def write(self, items: list[_Item]) -> None:
        """Write the cases of ``items`` in one store update (all or nothing) and empty the list. When the update
        fails and the store holds none of them, their copied files are removed; the error is raised."""
        if not items:
            return
        try:
            write_cases(self.store, [item.worked.triples for item in items])
        except BaseException:
            if not self._maybe_written(items[0].record.case_id):
                self.discard(items)
            items.clear()
            raise
        for item in items:
            case_id = item.record.case_id
            self.existing.add(case_id)
            self.on_way.discard(case_id)
            if self.stored is not None:
                self.stored[case_id] = item.worked.case
            self.report.ingested.append(case_id)
            self.report.copied.extend(item.worked.copies)
        items.clear()

    def _maybe_written(self, case_id: str) -> bool:
        """False when the store answers that it does not hold ``case_id``."""
        try:
            return case_exists(self.store, case_id)
        except StoreError:  # no answer: keep the files, a rerun reuses them
            return True

    def stop(self) -> None:
        """Stop the workers: the work not begun is cancelled, the work under way finished."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    @staticmethod
    def discard(items: Iterable[_Item]) -> None:
        """Remove the files copied for cases that are not written (their work done; the workers stopped)."""
        for item in items:
            work = item.work
            if item.worked is None and work is not None and work.done() and not work.cancelled() \
                    and work.exception() is None:
                item.worked = work.result()
            if item.worked is not None:
                remove_copies(item.worked.copies)


def _worker_pool(jobs: int, work: _CaseWork) -> ProcessPoolExecutor:
    """``jobs`` worker processes doing ``work`` (:func:`_work_in_worker`). They are forked from a server process
    that imported this module (the "forkserver" start method), not from this process and its threads (the store's
    among them); as with any such start method, a script that ingests must guard its entry point with
    ``if __name__ == "__main__":`` (each worker imports the main module)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(work,))


def _reused_id(stored: Case, incoming: Case, data_dir) -> str | None:
    """Why ``incoming`` may not be ingested under the id of ``stored`` (a different case), or None (the same)."""
    try:
        differences = case_differences(stored, incoming, data_dir)
    except OSError as exc:
        return f"cannot compare it with the case of that id in the store: {exc}"
    if not differences:
        return None
    return (f"the store already holds a different case with the id {stored.case_id} ({'; '.join(differences)}); "
            "give the new case another id")
