"""Ingest reader annotations exported as AIM (Annotation and Image Markup) XML, e.g. by ePAD.

Each ``ImageAnnotation`` becomes one case with a "reader" annotation, exactly as a row of a reader CSV does
(:func:`semgraph.exchange.reader_csv.ingest_reader_csv`). Two layouts are read (element names are matched by local
name, so the AIM namespace, ``gme://caCORE.caCORE/4.4/edu.northwestern.radiology.AIM`` or ``.../3.2/...``, may vary):

AIM 4.0 (root ``ImageAnnotationCollection``)::

    person/id/@value                                    -> patient id (required)   person/sex/@value -> sex
    imageAnnotations/ImageAnnotation                    -> one case
      uniqueIdentifier/@root, else name/@value          -> case id (required)
      imageReferenceEntityCollection/ImageReferenceEntity/imageStudy
        instanceUid/@root -> study id;  startDate/@value -> study date (YYYYMMDD or ISO)
        imageSeries/instanceUid/@root -> series UID (parsed, see AimCase.series_uid)
      imagingObservationEntityCollection/ImagingObservationEntity            (typeCode, annotatorConfidence, isPresent)
        imagingObservationCharacteristicCollection/ImagingObservationCharacteristic  (typeCode, annotatorConfidence)
      imagingPhysicalEntityCollection/ImagingPhysicalEntity                  (typeCode, annotatorConfidence, isPresent)
        imagingPhysicalEntityCharacteristicCollection/ImagingPhysicalEntityCharacteristic

AIM 3.0 (root ``ImageAnnotation``, values in attributes): ``@uniqueIdentifier`` / ``@name``,
``person/Person/@id`` and ``@sex``, ``imageReferenceCollection/ImageReference/imageStudy/ImageStudy/@instanceUID``
and ``@startDate`` (``imageSeries/ImageSeries/@instanceUID``), ``imagingObservationCollection/ImagingObservation``
(+ ``imagingObservationCharacteristicCollection/ImagingObservationCharacteristic``) and
``anatomicEntityCollection/AnatomicEntity`` (+ ``anatomicEntityCharacteristicCollection/...``) with
``@codeValue``, ``@codingSchemeDesignator``, ``@annotatorConfidence``, ``@isPresent``.

Codes: a coded entity names its term by code system and code (``typeCode/@codeSystemName`` and ``@code`` in AIM 4,
``@codingSchemeDesignator`` and ``@codeValue`` in AIM 3); :class:`semgraph.exchange.aim_codes.CodeResolver` finds
the term of the loaded ontology (the rules are in :mod:`semgraph.exchange.aim_codes`).

A code that gives no term (or several) is skipped with a warning (:class:`SkippedCode`: file, annotation, element,
code, reason; listed per file in :class:`AimIngestReport`); with ``strict`` it is a problem that rejects the import.

Values: a kept term's value is ``annotatorConfidence`` when given, else 1.0, and 0.0 when ``isPresent`` is false; a
term named twice in one annotation keeps the larger value. A confidence of exactly 0 is read by ``zero_confidence``:
"absent" keeps 0.0 (the AIM meaning), "selected" reads it as "not given", 1.0 (``isPresent`` false still gives 0.0),
and "auto" (the default) is "selected" for a collection whose ``aimVersion`` is ``AIMv4_2`` or ``AIMv4_3``
(:data:`EPAD_AIM_VERSIONS`) and "absent" otherwise. Those versions are written by ePAD's web client (RubinLab's
``aimapi``: ``AIMv4_2``, ``AIMv4_3`` since 2022, schema ``AIM_v4.2_rv2_XML.xsd``), whose template editor writes a
selected term with ``annotatorConfidence`` 0 unless the reader set the confidence slider (RubinLab/epadjs,
``aimEditor/parseClass.js``). ePAD's older server (RubinLab/epad-ws) also writes 0.0 in the ``AIMv4_0`` files it
makes, but ``AIMv4_0`` is the AIM 4 version other tools write too, so there 0 stays 0.0 unless
``zero_confidence="selected"``, and likewise in AIM 3 files (``aimVersion`` "3.0").

Safety: files are parsed with the standard library only. A document type declaration (``<!DOCTYPE``), and so any
entity declaration, is refused before the tree is built (a first expat pass aborts at the declaration), so entity
expansion ("billion laughs") and external entities (no network or file access) cannot happen; files over
:data:`MAX_FILE_BYTES` are refused.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import xml.etree.ElementTree as ET
import xml.parsers.expat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import ontology
from kg import Store
from ontology import Hierarchy
from semgraph.errors import InvalidInput, NotFound
from semgraph.exchange.aim_codes import CodeResolver, Resolve
from semgraph.exchange.ingest_report import IngestReport
from semgraph.graph.casegraph import Annotation, Case, case_exists, write_case
from semgraph.graph.collection import for_cases
from semgraph.graph.collection import resolve as resolve_collection

#: How ``annotatorConfidence`` 0 may be read (``zero_confidence``; see the module doc).
ZERO_CONFIDENCE = ("auto", "absent", "selected")
#: ``aimVersion`` of the collections ePAD's web client writes, where ``annotatorConfidence`` 0 means "not given".
EPAD_AIM_VERSIONS = frozenset({"AIMv4_2", "AIMv4_3"})
#: Files larger than this are refused (an AIM export of one study is a few hundred kilobytes).
MAX_FILE_BYTES = 32 * 1024 * 1024
_MAX_ERRORS_SHOWN = 20
_MAX_ANNOTATIONS_SHOWN = 3


@dataclass(frozen=True)
class AimCase:
    """One parsed ``ImageAnnotation``: the case, its reader values (term IRI → [0, 1]) and where it came from."""

    case: Case
    values: dict[str, float]
    source: str  # "file.xml, ImageAnnotation 'name'"
    series_uid: str | None = None
    reader: str | None = None  # user/loginName of the annotating reader, when present


@dataclass(frozen=True)
class SkippedCode:
    """A code that was not ingested: where it was, the code (``SYSTEM:CODE``) and why."""

    file: str
    annotation: str  # "ImageAnnotation 'name'"
    element: str  # e.g. "ImagingPhysicalEntity"
    code: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, {self.annotation}: {self.element} {self.code} skipped: {self.reason}"


@dataclass
class AimFile:
    """What one AIM file gave: its cases, the annotations left out (case id, reason), the codes skipped, its
    ``aimVersion`` and how many ``annotatorConfidence`` 0 were read as "selected" (1.0)."""

    name: str
    cases: list[AimCase]
    left_out: list[tuple[str, str]]
    skipped: list[SkippedCode]
    aim_version: str | None = None
    zero_as_selected: int = 0


# ---------------------------------------------------------------------- safe XML
class _Refused(Exception):
    pass


def _refuse_doctype(*_args):
    raise _Refused("a document type declaration (<!DOCTYPE ...>) is not allowed in AIM files")


def _refuse_entity(*_args):
    raise _Refused("entity declarations (<!ENTITY ...>) are not allowed in AIM files")


def safe_parse(data: bytes, name: str) -> ET.Element:
    """Parse XML bytes into an element tree, refusing DTDs, entity declarations and oversized input.

    Raises :class:`InvalidInput` naming ``name`` for anything that is not well-formed, safe XML.
    """
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{name}: {len(data)} bytes is more than the {MAX_FILE_BYTES} allowed for one AIM file")
    checker = xml.parsers.expat.ParserCreate()
    checker.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    checker.StartDoctypeDeclHandler = _refuse_doctype
    checker.EntityDeclHandler = _refuse_entity
    checker.UnparsedEntityDeclHandler = _refuse_entity
    checker.ExternalEntityRefHandler = _refuse_entity
    try:
        checker.Parse(data, True)
    except _Refused as exc:
        raise InvalidInput(f"{name}: {exc}") from None
    except xml.parsers.expat.ExpatError as exc:
        raise InvalidInput(f"{name}: not well-formed XML ({exc})") from None
    # Only a document without any DTD reaches this point, so the tree builder has no entity to expand.
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:  # pragma: no cover - the expat pass above already rejected it
        raise InvalidInput(f"{name}: not well-formed XML ({exc})") from None


# ---------------------------------------------------------------------- element helpers (local names)
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(el: ET.Element | None, name: str) -> ET.Element | None:
    if el is None:
        return None
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if el is None else [c for c in el if _local(c.tag) == name]


def _path(el: ET.Element | None, *names: str) -> ET.Element | None:
    for name in names:
        el = _child(el, name)
    return el


def _items(el: ET.Element | None, collection: str, item: str) -> list[ET.Element]:
    """``el/collection/item`` for every item (AIM wraps repeated elements in a ``...Collection``)."""
    return [i for coll in _children(el, collection) for i in _children(coll, item)]


def _attr(el: ET.Element | None, name: str) -> str | None:
    """An attribute value, stripped; None when absent or blank (attributes are not namespaced in AIM)."""
    if el is None:
        return None
    value = el.get(name)
    return value.strip() if value and value.strip() else None


def _value(el: ET.Element | None, name: str, attribute: str = "value") -> str | None:
    """AIM 4 style ``<name value="..."/>`` (or ``root=`` for identifiers) under ``el``."""
    return _attr(_child(el, name), attribute)


# ---------------------------------------------------------------------- parsing
@dataclass
class _Coded:
    """One coded entity of an annotation, version-neutral."""

    element: str  # e.g. "ImagingObservationCharacteristic"
    code: str | None
    scheme: str | None
    confidence: str | None
    present: str | None


def _parse_date(text: str) -> dt.date:
    text = text.strip()
    if re.fullmatch(r"\d{8}", text):
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    return dt.date.fromisoformat(text[:10])


def _is_false(text: str | None) -> bool:
    return text is not None and text.strip().lower() in ("false", "0")


@dataclass
class _Raw:
    """What one annotation says, before term resolution."""

    label: str
    case_id: str | None
    patient_id: str | None
    sex: str | None
    study_uid: str | None
    series_uid: str | None
    start_date: str | None
    reader: str | None
    coded: list[_Coded]


def _aim4_coded(annotation: ET.Element) -> list[_Coded]:
    out: list[_Coded] = []

    def add(el: ET.Element, element: str) -> None:
        for type_code in _children(el, "typeCode") or [None]:
            out.append(_Coded(element, _attr(type_code, "code"), _attr(type_code, "codeSystemName"),
                              _value(el, "annotatorConfidence"), _value(el, "isPresent")))

    for entity in _items(annotation, "imagingObservationEntityCollection", "ImagingObservationEntity"):
        add(entity, "ImagingObservationEntity")
        for ch in _items(entity, "imagingObservationCharacteristicCollection", "ImagingObservationCharacteristic"):
            add(ch, "ImagingObservationCharacteristic")
    for entity in _items(annotation, "imagingPhysicalEntityCollection", "ImagingPhysicalEntity"):
        add(entity, "ImagingPhysicalEntity")
        for ch in _items(entity, "imagingPhysicalEntityCharacteristicCollection",
                         "ImagingPhysicalEntityCharacteristic"):
            add(ch, "ImagingPhysicalEntityCharacteristic")
    return out


def _aim4(root: ET.Element) -> list[_Raw]:
    person = _child(root, "person")
    patient, sex = _value(person, "id"), _value(person, "sex")
    reader = _value(_child(root, "user"), "loginName")
    out = []
    for n, ann in enumerate(_items(root, "imageAnnotations", "ImageAnnotation"), start=1):
        uid, name = _value(ann, "uniqueIdentifier", "root"), _value(ann, "name")
        study = _path(ann, "imageReferenceEntityCollection", "ImageReferenceEntity", "imageStudy")
        label = f"ImageAnnotation {name or uid or f'#{n}'!r}"
        out.append(_Raw(label, uid or name, patient, sex, _value(study, "instanceUid", "root"),
                        _value(_child(study, "imageSeries"), "instanceUid", "root"), _value(study, "startDate"),
                        reader, _aim4_coded(ann)))
    return out


def _aim3(root: ET.Element) -> list[_Raw]:
    person = _path(root, "person", "Person")
    study = _path(root, "imageReferenceCollection", "ImageReference", "imageStudy", "ImageStudy")
    series = _path(study, "imageSeries", "ImageSeries")
    uid, name = _attr(root, "uniqueIdentifier"), _attr(root, "name")
    coded: list[_Coded] = []

    def add(el: ET.Element, element: str) -> None:
        coded.append(_Coded(element, _attr(el, "codeValue"), _attr(el, "codingSchemeDesignator"),
                            _attr(el, "annotatorConfidence"), _attr(el, "isPresent")))

    for obs in _items(root, "imagingObservationCollection", "ImagingObservation"):
        add(obs, "ImagingObservation")
        for ch in _items(obs, "imagingObservationCharacteristicCollection", "ImagingObservationCharacteristic"):
            add(ch, "ImagingObservationCharacteristic")
    for ent in _items(root, "anatomicEntityCollection", "AnatomicEntity"):
        add(ent, "AnatomicEntity")
        for ch in _items(ent, "anatomicEntityCharacteristicCollection", "AnatomicEntityCharacteristic"):
            add(ch, "AnatomicEntityCharacteristic")
    reader = _attr(_path(root, "user", "User"), "loginName")
    label = f"ImageAnnotation {name or uid or '#1'!r}"
    return [_Raw(label, uid or name, _attr(person, "id"), _attr(person, "sex"), _attr(study, "instanceUID"),
                 _attr(series, "instanceUID"), _attr(study, "startDate"), reader, coded)]


def parse_aim(path, resolve: Resolve, *, strict: bool = False, zero_confidence: str = "auto") -> AimFile:
    """Parse one AIM file: its cases, the annotations without any term (left out) and the codes skipped.

    ``resolve`` finds the term of a code (:class:`CodeResolver`). A code without a term is skipped and listed, or with
    ``strict`` is a problem; ``zero_confidence`` ("auto", "absent" or "selected") says how ``annotatorConfidence`` 0 is
    read (module doc). Every problem of the file is collected and raised as one :class:`InvalidInput` naming the file,
    the annotation and the element.
    """
    if zero_confidence not in ZERO_CONFIDENCE:
        raise ValueError(f"zero_confidence must be one of {', '.join(ZERO_CONFIDENCE)}, not {zero_confidence!r}")
    path = Path(path)
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{name}: cannot be read ({exc.strerror})") from None
    root = safe_parse(data, name)
    kind = _local(root.tag)
    if kind == "ImageAnnotationCollection":
        raws = _aim4(root)
    elif kind == "ImageAnnotation":
        raws = _aim3(root)
    else:
        raise InvalidInput(f"{name}: the root element is <{kind}>; expected an AIM 4 <ImageAnnotationCollection> "
                           "or an AIM 3 <ImageAnnotation>")
    if not raws:
        raise InvalidInput(f"{name}: no ImageAnnotation in imageAnnotations")
    version = _attr(root, "aimVersion")
    zero_selected = zero_confidence == "selected" or (zero_confidence == "auto" and version in EPAD_AIM_VERSIONS)
    read = AimFile(name, [], [], [], version)
    errors: list[str] = []
    for raw in raws:
        where = f"{name}, {raw.label}"
        problems: list[str] = []
        if not raw.case_id:
            problems.append("missing id: neither uniqueIdentifier nor name is given")
        if not raw.patient_id:
            problems.append("missing patient id (person id)")
        date = None
        if raw.start_date:
            try:
                date = _parse_date(raw.start_date)
            except ValueError:
                problems.append(f"imageStudy startDate {raw.start_date!r} is not a date (YYYYMMDD or YYYY-MM-DD)")
        values: dict[str, float] = {}
        skipped: list[SkippedCode] = []
        for c in raw.coded:
            code = f"{c.scheme or '?'}:{c.code or '?'}"
            term, why = resolve(c.scheme, c.code)
            if term is None:
                if strict:
                    problems.append(f"{c.element} {code}: {why}")
                else:
                    skipped.append(SkippedCode(name, raw.label, c.element, code, why))
                continue
            value = 1.0
            if c.confidence is not None:
                try:
                    value = float(c.confidence)
                except ValueError:
                    value = float("nan")
                if not 0.0 <= value <= 1.0:  # also rejects NaN
                    problems.append(f"{c.element} {code}: annotatorConfidence {c.confidence!r} is not a number "
                                    "in [0, 1]")
                    continue
            if _is_false(c.present):
                value = 0.0
            elif value == 0.0 and zero_selected:
                value = 1.0
                read.zero_as_selected += 1
            values[term] = max(value, values.get(term, 0.0))
        read.skipped.extend(skipped)
        if problems:
            errors.extend(f"{where}: {p}" for p in problems)
            continue
        if not values:
            codes = f" (codes skipped: {len(skipped)})" if skipped else ""
            reason = f"{where}: no imaging observation or physical entity with a term of the loaded ontology{codes}"
            read.left_out.append((raw.case_id, reason + "; not ingested"))
            continue
        study_id = raw.study_uid or f"{raw.patient_id}-{raw.case_id}"
        case = Case(case_id=raw.case_id, patient_id=raw.patient_id, study_id=study_id, study_date=date,
                    sex=raw.sex)
        read.cases.append(AimCase(case, values, where, raw.series_uid, raw.reader))
    if errors:
        raise InvalidInput("; ".join(errors))
    return read


def aim_files(source) -> list[Path]:
    """The AIM files of ``source``: the file itself, or every ``*.xml`` below a folder (sorted)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")
        if not files:
            raise NotFound(f"{source} has no .xml file")
        return files
    if not path.is_file():
        raise NotFound(f"{source} does not exist")
    return [path]


def read_aim(source, resolve: Resolve, *, strict: bool = False, zero_confidence: str = "auto") -> list[AimFile]:
    """Parse and check every file of ``source`` (:func:`aim_files`, :func:`parse_aim`); raise one
    :class:`InvalidInput` for all problems.

    Also rejects a case id given twice (within or across files). Returns what each file gave.
    """
    errors: list[str] = []
    files: list[AimFile] = []
    seen: dict[str, str] = {}
    for path in aim_files(source):
        try:
            read = parse_aim(path, resolve, strict=strict, zero_confidence=zero_confidence)
        except InvalidInput as exc:
            errors.append(exc.message)
            continue
        files.append(read)
        for item in read.cases:
            cid = item.case.case_id
            if cid in seen:
                errors.append(f"{item.source}: case id {cid!r} already used by {seen[cid]}")
            else:
                seen[cid] = item.source
    if errors:
        shown = errors[:_MAX_ERRORS_SHOWN]
        if len(errors) > _MAX_ERRORS_SHOWN:
            shown.append(f"... and {len(errors) - _MAX_ERRORS_SHOWN} more")
        raise InvalidInput("AIM import: nothing was written; " + "; ".join(shown))
    return files


@dataclass
class AimIngestReport(IngestReport):
    """An :class:`IngestReport` that also keeps what each AIM file gave (:class:`AimFile`)."""

    files: list[AimFile] = field(default_factory=list)
    #: Terms of the ontology found in the files but outside the collection: term IRI → annotations naming it.
    outside: dict[str, int] = field(default_factory=dict)

    @property
    def codes_skipped(self) -> list[SkippedCode]:
        """Every code skipped, file by file."""
        return [s for f in self.files for s in f.skipped]

    def summary(self) -> str:
        return super().summary() + f", codes skipped {len(self.codes_skipped)}"

    def file_lines(self) -> list[str]:
        """Per file: cases written, already in the store and left out, terms kept, codes skipped, and how many
        ``annotatorConfidence`` 0 were read as 1.0; then one line per skipped code, element and reason."""
        written, present = set(self.ingested), set(self.skipped)
        lines = []
        for f in self.files:
            ids = [c.case.case_id for c in f.cases]
            line = (f"{f.name}: cases written {sum(i in written for i in ids)}, already in the store "
                    f"{sum(i in present for i in ids)}, left out {len(f.left_out)}; terms kept "
                    f"{sum(len(c.values) for c in f.cases)}; codes skipped {len(f.skipped)}")
            if f.zero_as_selected:
                line += (f"; annotatorConfidence 0 read as 'selected' (1.0) {f.zero_as_selected} times "
                         f"(aimVersion {f.aim_version})")
            lines.append(line)
            groups: dict[tuple[str, str, str], list[str]] = {}
            for s in f.skipped:
                annotations = groups.setdefault((s.code, s.element, s.reason), [])
                if s.annotation not in annotations:
                    annotations.append(s.annotation)
            for (code, element, reason), annotations in groups.items():
                shown = ", ".join(annotations[:_MAX_ANNOTATIONS_SHOWN])
                if len(annotations) > _MAX_ANNOTATIONS_SHOWN:
                    shown += f" and {len(annotations) - _MAX_ANNOTATIONS_SHOWN} more"
                lines.append(f"  skipped {code} on {element} ({shown}): {reason}")
        for term, n in self.outside.items():
            lines.append(f"  left out {term} ({n} annotation{'s' * (n != 1)}): not a term of collection "
                         f"{self.collection!r}")
        return lines


def ingest_aim(store: Store, source, *, hierarchy: Hierarchy | None = None, replace: bool = False,
               strict: bool = False, zero_confidence: str = "auto", collection: str | None = None,
               new_collection: Mapping | None = None) -> AimIngestReport:
    """Ingest AIM XML reader annotations (a file or a folder of ``.xml`` files); see the module doc.

    Every file is parsed and checked before anything is written (malformed XML, a DTD, a wrong root element,
    missing ids, a confidence outside [0, 1], a repeated case id, and with ``strict`` a code without a term of the
    loaded ontology: one :class:`InvalidInput` listing them, nothing written). Without ``strict`` such codes are
    skipped and listed per file (``report.files``, :meth:`AimIngestReport.file_lines`). Then each case is written in
    its own atomic :func:`semgraph.graph.casegraph.write_case` with a "reader" annotation. Cases already in the store are
    skipped unless ``replace``; annotations left without any term are listed in ``report.failed``.
    ``zero_confidence`` says how ``annotatorConfidence`` 0 is read.

    The cases go into ``collection`` (default: the store's only one; a new name is defined from the terms found,
    with the options ``new_collection``, see :func:`semgraph.graph.collection.for_cases`). Terms of the ontology that are
    not terms of an existing collection are left out of the cases and listed in ``report.outside`` (with
    ``strict``: an :class:`InvalidInput`, nothing written).
    """
    start = time.perf_counter()
    try:
        target = resolve_collection(store, collection)
    except NotFound:
        target = None
    if hierarchy is None:
        hierarchy = ontology.hierarchy(store, (new_collection or {}).get("ontology") or
                                       (target.ontology if target is not None and target.stored else None))
    files = read_aim(source, CodeResolver(hierarchy, store), strict=strict, zero_confidence=zero_confidence)
    found = list(dict.fromkeys(t for f in files for c in f.cases for t in c.values))
    outside = {} if target is None else {t: sum(t in c.values for f in files for c in f.cases)
                                         for t in found if t not in set(target.terms)}
    if outside and strict:
        raise InvalidInput(f"{len(outside)} term(s) of these annotations are not terms of collection "
                           f"{target.name!r}, e.g. {next(iter(outside))}; nothing was written")
    target = for_cases(store, collection, [t for t in found if t not in outside], **dict(new_collection or {}))
    report = AimIngestReport(failed=[item for f in files for item in f.left_out], files=files,
                             collection=target.name, outside=outside)
    for item in (c for f in files for c in f.cases):
        cid = item.case.case_id
        if not replace and case_exists(store, cid):
            report.skipped.append(cid)
            continue
        values = {t: v for t, v in item.values.items() if t not in outside}
        if not values:
            report.failed.append((cid, f"no term of collection {target.name!r}"))
            continue
        write_case(store, item.case, [Annotation("reader", values)], replace=replace, collection=target.iri)
        report.ingested.append(cid)
    report.seconds = time.perf_counter() - start
    return report


__all__ = ["EPAD_AIM_VERSIONS", "MAX_FILE_BYTES", "ZERO_CONFIDENCE", "AimCase", "AimFile",
           "AimIngestReport", "SkippedCode", "aim_files", "ingest_aim", "parse_aim", "read_aim",
           "safe_parse"]
