"""Ingest cases into the store: images with masks (a cohort manifest), reader ratings only (a CSV) or AIM XML.

:func:`ingest` tells the sources apart (:func:`resolve_source`) and hands reader CSVs to
:mod:`semgraph.exchange.reader_csv` and AIM XML to :mod:`semgraph.exchange.aim`; manifests are ingested here.

For an image case: load the image and mask and extract the ROI vector and the patch features, write them to
``DATA_DIR/features/<sha1 of the case IRI>.npz`` (:mod:`semgraph.exchange.feature_files`; temp file +
``os.replace``), then write the case with its annotations in one atomic store write
(:func:`semgraph.graph.casegraph.write_case`): the reader's terms ("reader"), the generating terms when the manifest has
them ("truth") and, when a term model is given, its likelihoods ("predicted", attributed to the model version).
The feature file is complete before the case exists in the store, so a crash never leaves a half case; rerunning
skips the cases already in the store. A bad case is reported with its id and reason and skipped; the other cases
are ingested. A case whose id the store already holds is skipped when it is the same case and refused (reported as
failed, nothing of it written) when it is a different one: another patient, study, diagnosis, study metadata, or
image or mask bytes (:func:`semgraph.exchange.case_identity.case_differences`).

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
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from kg import Store
from semgraph.cohort import read_manifest
from semgraph.cohort.manifest import BASE_COLUMNS
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
from semgraph.exchange.ingest_report import IngestReport, existing_case_ids
from semgraph.exchange.reader_csv import ingest_reader_csv
from semgraph.exchange.saved_models import record_model
from semgraph.features import FeatureConfig
from semgraph.graph.casegraph import Annotation, Case, model_iri, read_cases, write_case
from semgraph.graph.collection import for_cases
from semgraph.progress import track
from semgraph.terms.models import TermModels

__all__ = ["ingest", "ingest_manifest", "resolve_source"]


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
           zero_confidence: str = "auto") -> IngestReport:
    """Ingest a cohort manifest, a folder with ``manifest.json``, a reader-only CSV or AIM XML (see the module doc)
    into ``collection`` (default: the store's only one; a new name defines it, see
    :func:`semgraph.graph.collection.for_cases`, with the options ``new_collection``).

    Reader CSV and AIM cases have no image files; ``copy_outside`` is for manifests (:func:`ingest_manifest`),
    ``strict`` and ``zero_confidence`` for AIM (:func:`semgraph.exchange.aim.ingest_aim`).
    """
    kind, path = resolve_source(source)
    if kind == "reader":
        return ingest_reader_csv(store, path, hierarchy=hierarchy, collection=collection,
                                 new_collection=new_collection)
    if kind == "aim":
        return ingest_aim(store, path, hierarchy=hierarchy, strict=strict, zero_confidence=zero_confidence,
                          collection=collection, new_collection=new_collection)
    return ingest_manifest(store, read_manifest(path), data_dir, model=model, feature_config=feature_config,
                           progress=progress, on_case=on_case, copy_outside=copy_outside, collection=collection,
                           new_collection=new_collection)


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
                    collection: str | None = None, new_collection: Mapping | None = None) -> IngestReport:
    """Ingest every case of a read manifest (:func:`semgraph.cohort.read_manifest`) into ``collection`` (default:
    the store's only one; see :func:`semgraph.graph.collection.for_cases`); resumable.

    ``model`` (a fitted :class:`semgraph.terms.models.TermModels`) adds a "predicted" annotation; its feature
    configuration is used (a different explicit ``feature_config`` is an error). ``on_case`` is called with each
    case id before its features are extracted (used by tests to simulate a crash).

    Image and mask files outside the data folder are copied into it
    (:func:`semgraph.exchange.case_files.keep_in_data_folder`; listed in ``report.copied``) when ``copy_outside`` is
    true, and make the case fail when it is false; by default (None) they are copied unless the manifest itself is
    inside the data folder. The copies of a case that fails are
    removed; those of a run that was interrupted are reused by the next.
    """
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
    existing = existing_case_ids(store)
    stored: dict[str, Case] | None = None  # the store's cases, read at the first id it already holds
    if model is not None:
        record_model(store, model)
    for record in track(manifest.cases, desc="ingest", unit="case", enabled=progress):
        case_id = record.case_id
        if case_id in existing:
            if stored is None:
                stored = {case.case_id: case for case in read_cases(store)}
            known = stored.get(case_id)  # None: a case without a study, nothing to compare
            reason = None if known is None else _reused_id(known, _manifest_case(record), data_dir)
            if reason:
                report.failed.append((case_id, reason))
            else:
                report.skipped.append(case_id)
            continue
        if on_case is not None:
            on_case(case_id)
        copies: list[Path] = []
        try:
            case = dataclasses.replace(_manifest_case(record), **{
                field_name: keep_in_data_folder(path, data_dir, case_id, what=what, copy=copy_outside, copied=copies)
                for field_name, what, path in (("image_file", "image", record.image),
                                               ("mask_file", "mask", record.mask))})
            feats = compute_features(record.image, record.mask, cfg)
        except (SemgraphError, ValueError, OSError) as exc:
            remove_copies(copies)
            report.failed.append((case_id, getattr(exc, "message", None) or str(exc)))
            continue
        annotations = ([Annotation("reader", {t: float(v) for t, v in record.reader_labels.items()})]
                       if record.reader_labels else [])  # a PACS study has no reader terms
        if record.true_labels:
            annotations.append(Annotation("truth", {t: float(v) for t, v in record.true_labels.items()}))
        if model is not None:
            annotations.append(Annotation("predicted", model.likelihoods(feats.roi, feats.patches, feats.kinds),
                                          attributed_to=model_iri(model.version_)))
        save_features(features_path(data_dir, case_id), feats)
        write_case(store, case, annotations, collection=target.iri)
        existing.add(case_id)
        if stored is not None:
            stored[case_id] = case
        report.ingested.append(case_id)
        report.copied.extend(copies)
    report.seconds = time.perf_counter() - start
    return report


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
