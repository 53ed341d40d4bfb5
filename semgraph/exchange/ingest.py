"""Ingest cases into the store: images with masks (a cohort manifest) or reader ratings only (a CSV).

For an image case: load the image and mask (:mod:`semgraph.imaging`), extract the ROI vector and the patch
features (:mod:`semgraph.features`), write them to ``DATA_DIR/features/<sha1 of the case IRI>.npz`` (temp file +
``os.replace``), then write the case with its annotations in one atomic store write
(:func:`semgraph.graph.casegraph.write_case`): the reader's terms ("reader"), the generating terms when the manifest has
them ("truth") and, when a term model is given, its likelihoods ("predicted", attributed to the model version).
The feature file is complete before the case exists in the store, so a crash never leaves a half case; rerunning
skips the cases already in the store. A bad case is reported with its id and reason and skipped.

Image and mask files: the store only ever names files inside the data folder (the web app and ``semgraph check``
read nothing else, :func:`semgraph.files.data_file`). A file of the manifest that is inside the data folder
(symbolic links resolved) is recorded where it is (its absolute path); one outside it is first copied to
``DATA_DIR/images/<case id>/<file name>`` and recorded as that path relative to the data folder
(:func:`keep_in_data_folder`, the one rule for every ingest that records files). A manifest that is itself inside the
data folder (the web batch ingest unpacks uploads into ``DATA_DIR/cohorts/``) may only name files inside it.

Reader-only CSV (:func:`ingest_reader_csv`): columns ``case_id``, ``patient_id``, optional ``diagnosis``, optional
metadata (``study_id``, ``study_date``, ``age``, ``sex``, ``contrast_phase``, ``liver_segment``) and one column per
term (IRI, RadLex id or label, resolved in the loaded ontology) with values in [0, 1]. The whole file is validated
before anything is written.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import filecmp
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rdflib import Literal
from rdflib.namespace import PROV, RDF, RDFS, XSD

from kg import Store
from kg.namespaces import ANNOTATIONS_GRAPH, SG
from ontology import OntologyError
from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.features import MIN_ROI_AREA, FeatureConfig, extract_all
from semgraph.files import data_file, write_atomically
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    case_iri,
    model_iri,
    replace_annotation,
    write_case,
)
from semgraph.graph.collection import for_cases

FEATURES_DIR = "features"
#: Where ingest copies the image and mask files that are outside the data folder: ``DATA_DIR/images/<case id>/``.
IMAGES_DIR = "images"
MODELS_DIR = "models"
LATEST_MODEL = "LATEST"
READER_META_COLUMNS = ("study_id", "study_date", "age", "sex", "contrast_phase", "liver_segment")
FEATURE_FORMAT_VERSION = 1
#: Feature configuration of an ingest without a model or an explicit one: the defaults plus the margin/shape
#: descriptors (they raise the margin terms' LOPO AUC; measured in the issue 4 closing note).
INGEST_FEATURE_CONFIG = FeatureConfig(margin_features=True)


# ---------------------------------------------------------------------- feature files
@dataclass
class CaseFeatures:
    """The stored features of one case."""

    roi: np.ndarray  # (D,)
    patches: np.ndarray  # (P, D)
    kinds: np.ndarray  # (P,) 'margin' | 'internal'
    centres: np.ndarray  # (P, 2)
    config: FeatureConfig


def features_path(data_dir, case_id: str) -> Path:
    """``DATA_DIR/features/<sha1 of the case IRI>.npz``."""
    digest = hashlib.sha1(str(case_iri(case_id)).encode("utf-8")).hexdigest()
    return Path(data_dir) / FEATURES_DIR / f"{digest}.npz"


def compute_features(image_path, mask_path, config: FeatureConfig | None = None) -> CaseFeatures:
    """Load an image and its mask and extract the ROI vector and the patch features (raises InvalidInput).

    One transform per case (:func:`semgraph.features.extract_all`). A lesion narrower than one patch is accepted
    when it has at least :data:`semgraph.features.MIN_ROI_AREA` (16) pixels: its ROI vector is computed as usual
    and its patches are its margin patches only (no internal patch); smaller regions are an error.
    """
    from semgraph.imaging import load_image, roi_mask

    cfg = config or INGEST_FEATURE_CONFIG
    image = load_image(image_path)
    mask = roi_mask(image.shape, mask=str(mask_path), min_size=1)
    feats = extract_all(image.hu, mask, cfg, allow_small=True, min_area=MIN_ROI_AREA)
    p = feats.patches
    return CaseFeatures(feats.vector, p.features, p.kinds, p.centres, cfg)


def save_features(path: Path, features: CaseFeatures) -> None:
    """Write a feature file atomically (a temp file in the same folder, then ``os.replace``)."""
    write_atomically(path, lambda f: np.savez(
        f, roi=features.roi, patches=features.patches, kinds=features.kinds.astype("<U8"), centres=features.centres,
        version=np.array(FEATURE_FORMAT_VERSION), config=np.array(json.dumps(features.config.to_dict(),
                                                                              sort_keys=True))))


def load_features(path: Path) -> CaseFeatures:
    """Read a feature file written by :func:`save_features`."""
    from semgraph.terms.models import _config_from_dict

    if not path.is_file():
        raise NotFound(f"feature file {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        cfg = _config_from_dict(json.loads(str(z["config"])))
        return CaseFeatures(z["roi"], z["patches"], z["kinds"], z["centres"], cfg)


# ---------------------------------------------------------------------- image and mask files
#: A case id used as it is for its folder under ``DATA_DIR/images``; any other id gets the SHA-1 of its case IRI.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_COPY_CHUNK = 1 << 20


def case_files_dir(data_dir, case_id: str) -> Path:
    """``DATA_DIR/images/<case id>``: where :func:`keep_in_data_folder` copies a case's files (the SHA-1 of the case
    IRI instead of the id when the id is not a plain file name: letters, digits, ``.``, ``_``, ``-``)."""
    name = case_id if _PLAIN_NAME.fullmatch(case_id) else hashlib.sha1(str(case_iri(case_id)).encode()).hexdigest()
    return Path(data_dir) / IMAGES_DIR / name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_COPY_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def keep_in_data_folder(path, data_dir, case_id: str, *, what: str = "file", copy: bool = True,
                        copied: list[Path] | None = None) -> str:
    """What to record (``sg:imageFile`` / ``sg:maskFile``) for the file ``path`` of case ``case_id``: a path inside
    the data folder ``data_dir``, as :func:`semgraph.files.data_file` requires.

    * ``path`` inside the data folder (symbolic links resolved): recorded where it is, as an absolute path.
    * ``path`` outside it: copied to ``DATA_DIR/images/<case id>/<its name>`` (:func:`case_files_dir`; a temporary
      file renamed into place, so an interruption leaves no half file) and recorded relative to the data folder
      (``images/<case id>/<name>``: still valid when the data folder is moved or restored from a backup). A file of
      the same content already there is reused and nothing is written, so a re-run copies nothing; a different file
      of that name is never overwritten: the copy is then named ``<16 hex digits of its SHA-256>-<name>``. Each copy
      written is appended to ``copied``.
    * ``copy=False``: a file outside is refused (:class:`InvalidInput` "<what> ... is outside the data folder")
      before it is read.
    """
    root = Path(data_dir).resolve()
    source = Path(os.path.abspath(path))
    try:
        data_file(str(source), root)
        return str(source)
    except InvalidInput as exc:
        if not copy:
            raise InvalidInput(f"{what} {exc.message}; a manifest inside the data folder may only name files inside "
                               "it") from None
    if not source.is_file():
        raise NotFound(f"{what} {source} does not exist or is not a regular file")
    folder = case_files_dir(root, case_id)
    target = folder / source.name
    if target.exists() and not filecmp.cmp(source, target, shallow=False):
        target = folder / f"{_sha256(source)[:16]}-{source.name}"
    if not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
        with open(source, "rb") as src:
            write_atomically(target, lambda f: shutil.copyfileobj(src, f, _COPY_CHUNK))
        if copied is not None:
            copied.append(target)
    return target.relative_to(root).as_posix()


def _remove_copies(copies: Iterable[Path]) -> None:
    """Remove the files copied for a case that then failed (and its folder when that leaves it empty)."""
    for path in copies:
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:  # not empty: other files of the case are still there
            pass


def _inside(path, data_dir) -> bool:
    try:
        data_file(os.path.abspath(path), data_dir)
        return True
    except InvalidInput:
        return False


# ---------------------------------------------------------------------- models in the data folder
def models_dir(data_dir) -> Path:
    return Path(data_dir) / MODELS_DIR


def save_model(data_dir, model) -> Path:
    """Save ``model`` as ``DATA_DIR/models/<version>`` and make it the latest; return the ``.npz`` path."""
    folder = models_dir(data_dir)
    path = model.save(folder / model.version_)
    write_atomically(folder / LATEST_MODEL, lambda f: f.write((model.version_ + "\n").encode("utf-8")))
    return path


def latest_model(data_dir, *, required: bool = False):
    """The model named in ``DATA_DIR/models/LATEST`` (None if there is none, unless ``required``)."""
    from semgraph.terms.models import TermModels

    marker = models_dir(data_dir) / LATEST_MODEL
    if not marker.is_file():
        if required:
            raise NotFound(f"no term model in {models_dir(data_dir)}; run `semgraph train` first")
        return None
    return TermModels.load(models_dir(data_dir) / marker.read_text(encoding="utf-8").strip())


def record_model(store: Store, model) -> None:
    """Describe the model version in the annotations graph (``sg:TermModel``, a ``prov:SoftwareAgent``)."""
    meta = model.metadata()
    m = model_iri(model.version_)
    params = {"params": meta["params"], "feature_config": meta["feature_config"], "terms": meta["terms"],
              "libraries": meta["libraries"], "training_cases": len(meta["training_cases"])}
    triples = [
        (m, RDF.type, SG.TermModel), (m, RDF.type, PROV.SoftwareAgent), (m, RDFS.label, Literal(model.version_)),
        (m, SG.algorithm, Literal(meta["algorithm"])),
        (m, SG.parameters, Literal(json.dumps(params, sort_keys=True), datatype=RDF.JSON)),
        (m, PROV.generatedAtTime, Literal(dt.datetime.strptime(model.fitted_at_, "%Y%m%dT%H%M%SZ")
                                          .replace(tzinfo=dt.UTC).isoformat(), datatype=XSD.dateTime)),
    ]
    body = " .\n".join(f"{s.n3()} {p.n3()} {o.n3()}" for s, p, o in triples)
    store.update("DELETE WHERE { GRAPH $g { $m ?p ?o } } ;\nINSERT DATA { GRAPH $g {\n" + body + " } }",
                 {"g": ANNOTATIONS_GRAPH, "m": m})


# ---------------------------------------------------------------------- reports
@dataclass
class IngestReport:
    """What an ingest did: ids ingested, ids already in the store, (id, reason) of failed cases, and the image and
    mask files copied into the data folder because they were outside it (:func:`keep_in_data_folder`)."""

    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    copied: list[Path] = field(default_factory=list)
    collection: str | None = None

    def summary(self) -> str:
        into = f" into collection {self.collection}" if self.collection else ""
        text = (f"ingested {len(self.ingested)}{into}, skipped (already in the store) {len(self.skipped)}, "
                f"failed {len(self.failed)}")
        return text + (f", copied into the data folder {len(self.copied)}" if self.copied else "")


def existing_case_ids(store: Store) -> set[str]:
    """Ids of every case in the store (one query)."""
    rows = store.select("SELECT ?id WHERE { GRAPH $g { ?c a sg:Case ; rdfs:label ?id } }", {"g": ANNOTATIONS_GRAPH})
    return {str(r["id"]) for r in rows}


# ---------------------------------------------------------------------- manifests
def resolve_source(source) -> tuple[str, Path]:
    """('manifest' | 'reader' | 'aim', path) for a manifest file, a folder with ``manifest.json``, a reader CSV, or
    AIM XML (a ``.xml`` file or a folder of them)."""
    from semgraph.cohort.manifest import BASE_COLUMNS

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


def ingest(store: Store, source, data_dir, *, model=None, feature_config: FeatureConfig | None = None,
           progress: bool = True, hierarchy=None, on_case: Callable[[str], None] | None = None,
           copy_outside: bool | None = None, collection: str | None = None,
           new_collection: Mapping | None = None, strict: bool = False,
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
        from semgraph.exchange.aim import (
            ingest_aim,  # aim imports IngestReport from this module
        )

        return ingest_aim(store, path, hierarchy=hierarchy, strict=strict, zero_confidence=zero_confidence,
                          collection=collection, new_collection=new_collection)
    from semgraph.cohort import read_manifest

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


def ingest_manifest(store: Store, manifest, data_dir, *, model=None, feature_config: FeatureConfig | None = None,
                    progress: bool = True, on_case: Callable[[str], None] | None = None,
                    copy_outside: bool | None = None, collection: str | None = None,
                    new_collection: Mapping | None = None) -> IngestReport:
    """Ingest every case of a read manifest (:func:`semgraph.cohort.read_manifest`) into ``collection`` (default:
    the store's only one; see :func:`semgraph.graph.collection.for_cases`); resumable.

    ``model`` (a fitted :class:`semgraph.terms.models.TermModels`) adds a "predicted" annotation; its feature
    configuration is used (a different explicit ``feature_config`` is an error). ``on_case`` is called with each
    case id before its features are extracted (used by tests to simulate a crash).

    Image and mask files outside the data folder are copied into it (:func:`keep_in_data_folder`; listed in
    ``report.copied``) when ``copy_outside`` is true, and make the case fail when it is false; by default (None)
    they are copied unless the manifest itself is inside the data folder. The copies of a case that fails are
    removed; those of a run that was interrupted are reused by the next.
    """
    import time

    from tqdm import tqdm

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
        copy_outside = getattr(manifest, "path", None) is None or not _inside(manifest.path, data_dir)
    start = time.perf_counter()
    named = dict.fromkeys(t for record in manifest.cases for t in record.reader_labels)
    target = for_cases(store, collection, list(named), **dict(new_collection or {}))
    report = IngestReport(collection=target.name)
    existing = existing_case_ids(store)
    if model is not None:
        record_model(store, model)
    for record in tqdm(manifest.cases, desc="ingest", unit="case", disable=not progress, file=sys.stderr):
        case_id = record.case_id
        if case_id in existing:
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
            _remove_copies(copies)
            report.failed.append((case_id, getattr(exc, "message", None) or str(exc)))
            continue
        annotations = [Annotation("reader", {t: float(v) for t, v in record.reader_labels.items()})]
        if record.true_labels:
            annotations.append(Annotation("truth", {t: float(v) for t, v in record.true_labels.items()}))
        if model is not None:
            annotations.append(Annotation("predicted", model.likelihoods(feats.roi, feats.patches, feats.kinds),
                                          attributed_to=model_iri(model.version_)))
        save_features(features_path(data_dir, case_id), feats)
        write_case(store, case, annotations, collection=target.iri)
        existing.add(case_id)
        report.ingested.append(case_id)
        report.copied.extend(copies)
    report.seconds = time.perf_counter() - start
    return report


# ---------------------------------------------------------------------- reader-only CSV
def _reader_rows(path: Path, resolve) -> tuple[list[str], list[tuple[Case, dict[str, float]]]]:
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
    fixed = {"case_id", "patient_id", "diagnosis", *READER_META_COLUMNS}
    terms: dict[int, str] = {}
    for j, name in enumerate(header):
        if name in fixed:
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
            out.append((Case(case_id=case_id, patient_id=patient, study_id=get("study_id") or f"{patient}-{case_id}",
                             diagnosis=get("diagnosis") or None, study_date=date, age=age, sex=get("sex") or None,
                             contrast_phase=get("contrast_phase") or None,
                             liver_segment=get("liver_segment") or None), values))
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise InvalidInput(f"{path.name}: nothing was written; " + "; ".join(shown))
    if not out:
        raise InvalidInput(f"{path.name}: no case rows")
    return list(terms.values()), out


def ingest_reader_csv(store: Store, path, *, hierarchy=None, replace: bool = False, collection: str | None = None,
                      new_collection: Mapping | None = None) -> IngestReport:
    """Ingest a reader-only CSV (no pixels): each row becomes a case with a "reader" annotation.

    The whole file is checked first (unknown column, value outside [0, 1], bad date or age, duplicate case id:
    an :class:`InvalidInput` naming the row and column, and nothing is written). Term columns are resolved with
    ``hierarchy.resolve`` (default: the hierarchy of the collection's ontology, else :func:`ontology.hierarchy`).
    The cases go into ``collection`` (default: the store's only one); a new name defines it from the CSV's term
    columns in their order (:func:`semgraph.graph.collection.for_cases`, options ``new_collection``). Cases already in
    the store are skipped unless ``replace``.
    """
    import time

    start = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path} does not exist")
    options = dict(new_collection or {})
    if hierarchy is None:
        import ontology

        name = (options.get("ontology") or _collection_ontology(store, collection)
                or _ontology_of_columns(store, path))
        hierarchy = ontology.hierarchy(store, name)
        if name and collection is not None:
            options.setdefault("ontology", name)
    terms, rows = _reader_rows(path, hierarchy.resolve)
    target = for_cases(store, collection, terms, **options)
    report = IngestReport(collection=target.name)
    existing = set() if replace else existing_case_ids(store)
    for case, values in rows:
        if case.case_id in existing:
            report.skipped.append(case.case_id)
            continue
        write_case(store, case, [Annotation("reader", values)], replace=replace, collection=target.iri)
        report.ingested.append(case.case_id)
    report.seconds = time.perf_counter() - start
    return report


def _ontology_of_columns(store: Store, path: Path) -> str | None:
    """The first loaded ontology (``radlex-liver`` first, then by name) that resolves every term column of the CSV
    at ``path``; None when none does (the default ontology then reports the columns it cannot resolve)."""
    import ontology

    with open(path, encoding="utf-8-sig", newline="") as f:
        header = [h.strip() for h in next(csv.reader(f), [])]
    fixed = {"case_id", "patient_id", "diagnosis", *READER_META_COLUMNS}
    names = [h for h in header if h and h not in fixed]
    loaded = sorted(ontology.catalog(store), key=lambda i: (i.name != ontology.BUNDLED_RADLEX, i.name))
    for info in loaded:
        h = ontology.hierarchy(store, info.name)
        try:
            for name in names:
                h.resolve(name)
        except OntologyError:
            continue
        return info.name
    return None


def _collection_ontology(store: Store, name: str | None) -> str | None:
    """The ontology of an existing collection ``name`` (None: unknown yet, or the default ontology)."""
    from semgraph.graph.collection import resolve

    try:
        return resolve(store, name).ontology if name else None
    except NotFound:
        return None


# ---------------------------------------------------------------------- training data and annotation
@dataclass
class TrainingSet:
    """Features and reader labels of the ingested image cases."""

    case_ids: list[str]
    groups: np.ndarray  # patient id per case
    X: np.ndarray  # (N, D)
    Y: np.ndarray  # (N, k)
    patches: np.ndarray
    kinds: np.ndarray
    case: np.ndarray
    terms: list[str]
    config: FeatureConfig


def _image_cases(store: Store, data_dir) -> list[tuple[Case, Path]]:
    from semgraph.graph.casegraph import read_cases

    out = []
    for case in read_cases(store):
        path = features_path(data_dir, case.case_id)
        if case.image_file is not None and path.is_file():
            out.append((case, path))
    return out


def training_set(store: Store, data_dir, terms: Iterable[str] | None = None, *, kind: str = "reader") -> TrainingSet:
    """Stack the stored features and the ``kind`` labels ("reader" or "truth") of every ingested image case."""
    from ontology.paper_terms import paper_terms
    from semgraph.graph.casegraph import read_likelihoods

    terms = [t.iri for t in paper_terms()] if terms is None else list(terms)
    cases = _image_cases(store, data_dir)
    ids, matrix = read_likelihoods(store, terms, kinds=(kind,))
    labels = dict(zip(ids, matrix))
    cases = [(c, p) for c, p in cases if c.case_id in labels]
    if len(cases) < 2:
        raise NotFound(f"fewer than two ingested image cases with {kind} labels in the store; "
                       "run `semgraph ingest MANIFEST` first")
    X, Y, P, K, idx, groups, config = [], [], [], [], [], [], None
    for i, (case, path) in enumerate(cases):
        f = load_features(path)
        if config is None:
            config = f.config
        elif f.config != config:
            raise InvalidInput(f"case {case.case_id}: its features were extracted with {f.config.to_dict()}, "
                               f"other cases with {config.to_dict()}; re-ingest with one configuration")
        X.append(f.roi)
        Y.append(labels[case.case_id])
        P.append(f.patches)
        K.append(f.kinds)
        idx.append(np.full(len(f.patches), i))
        groups.append(case.patient_id)
    return TrainingSet([c.case_id for c, _ in cases], np.array(groups), np.vstack(X), np.vstack(Y),
                       np.vstack(P), np.concatenate(K), np.concatenate(idx), terms, config)


def train(store: Store, data_dir, *, estimator=None, data: TrainingSet | None = None, save: bool = True):
    """Fit term models on the ingested cases (patch features + reader labels); save them as the latest model.

    Returns ``(model, data)``. ``data`` defaults to :func:`training_set` of the store.
    """
    from semgraph.terms.models import TermModels

    if data is None:
        data = training_set(store, data_dir, None if estimator is None or estimator.terms is None else estimator.terms)
    model = estimator if estimator is not None else TermModels(feature_config=data.config)
    if model.feature_config is None:
        model.set_params(feature_config=data.config)
    model.fit(data.X, data.Y, patches=data.patches, patch_kinds=data.kinds, patch_case=data.case,
              groups=data.groups, case_ids=data.case_ids)
    if save:
        save_model(data_dir, model)
        record_model(store, model)
    return model, data


def annotate(store: Store, data_dir, model, *, progress: bool = True) -> IngestReport:
    """Re-predict the likelihoods of every ingested image case from its stored features and rewrite its
    "predicted" annotation, attributed to ``model``'s version. Other annotations are kept."""
    import time

    from tqdm import tqdm

    start = time.perf_counter()
    record_model(store, model)
    report = IngestReport()
    agent = model_iri(model.version_)
    for case, path in tqdm(_image_cases(store, data_dir), desc="annotate", unit="case", disable=not progress,
                           file=sys.stderr):
        f = load_features(path)
        if model.feature_config_ is not None and f.config != model.feature_config_:
            report.failed.append((case.case_id, "features extracted with another configuration than the model's"))
            continue
        annotation = Annotation("predicted", model.likelihoods(f.roi, f.patches, f.kinds), attributed_to=agent)
        replace_annotation(store, case.case_id, annotation)
        report.ingested.append(case.case_id)
    report.seconds = time.perf_counter() - start
    return report


def store_crossval(store: Store, case_ids, terms, likelihoods, model) -> None:
    """Store out-of-fold likelihoods (``crossval`` annotations, attributed to ``model``'s version) of ``case_ids``,
    replacing earlier ones; the evaluation protocol ranks these (``semgraph evaluate --likelihoods crossval``)."""
    agent = model_iri(model.version_)
    for case_id, row in zip(case_ids, np.asarray(likelihoods, dtype=np.float64)):
        values = {t: float(np.clip(v, 0.0, 1.0)) for t, v in zip(terms, row)}
        replace_annotation(store, case_id, Annotation("crossval", values, attributed_to=agent))



__all__ = [
    "IMAGES_DIR", "CaseFeatures", "IngestReport", "TrainingSet", "annotate", "case_files_dir", "compute_features",
    "existing_case_ids", "features_path", "ingest", "ingest_manifest", "ingest_reader_csv", "keep_in_data_folder",
    "latest_model", "load_features",
    "record_model", "save_features", "save_model", "store_crossval", "train", "training_set",
]
