"""Ingest reader annotations exported as AIM (Annotation and Image Markup) XML, e.g. by ePAD.

Each ``ImageAnnotation`` becomes one case with a "reader" annotation, exactly as a row of a reader CSV does
(:func:`semgraph.ingest.ingest_reader_csv`). Two layouts are read (element names are matched by local name, so the
AIM namespace, ``gme://caCORE.caCORE/4.4/edu.northwestern.radiology.AIM`` or ``.../3.2/...``, may vary):

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

A coded entity counts when its code system is RadLex (``codeSystemName``/``codingSchemeDesignator`` "RadLex",
any case); other code systems (ePAD's private codes, SNOMED, ...) are ignored. Its value is ``annotatorConfidence``
when given, else 1.0, and 0.0 when ``isPresent`` is false; a term named twice in one annotation keeps the larger
value. ``RIDnnnn`` maps to ``http://radlex.org/RID/RIDnnnn`` and must be a term of the loaded ontology.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kg import Store
from ontology import OntologyError

from .casegraph import Annotation, Case, case_exists, write_case
from .errors import InvalidInput, NotFound
from .ingest import IngestReport

RADLEX_BASE = "http://radlex.org/RID/"
#: Files larger than this are refused (an AIM export of one study is a few hundred kilobytes).
MAX_FILE_BYTES = 32 * 1024 * 1024
_RID = re.compile(r"^RID\d+$", re.IGNORECASE)
_MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class AimCase:
    """One parsed ``ImageAnnotation``: the case, its reader values (term IRI → [0, 1]) and where it came from."""

    case: Case
    values: dict[str, float]
    source: str  # "file.xml, ImageAnnotation 'name'"
    series_uid: str | None = None
    reader: str | None = None  # user/loginName of the annotating reader, when present
    ignored_codes: tuple[str, ...] = field(default=())  # non-RadLex codes that were skipped


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


def parse_aim(path, resolve: Callable[[str], str]) -> tuple[list[AimCase], list[tuple[str, str]]]:
    """Parse one AIM file: (cases, [(annotation, reason) of annotations without any RadLex term]).

    ``resolve`` maps a term IRI to the IRI of a loaded ontology term (``Hierarchy.resolve``) and raises
    :class:`ontology.OntologyError` for unknown ones. Every problem of the file is collected and raised as one
    :class:`InvalidInput` naming the file, the annotation and the element.
    """
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
    errors: list[str] = []
    cases: list[AimCase] = []
    empty: list[tuple[str, str]] = []
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
        ignored: list[str] = []
        for c in raw.coded:
            if (c.scheme or "").casefold() != "radlex":
                if c.code:
                    ignored.append(f"{c.scheme or '?'}:{c.code}")
                continue
            if not c.code or not _RID.match(c.code):
                problems.append(f"{c.element} typeCode {c.code!r} is not a RadLex id (RID followed by digits)")
                continue
            rid = "RID" + c.code[3:]
            try:
                term = resolve(RADLEX_BASE + rid)
            except OntologyError as exc:
                problems.append(f"{c.element} typeCode {rid}: not a term of the loaded ontology ({exc})")
                continue
            value = 1.0
            if c.confidence is not None:
                try:
                    value = float(c.confidence)
                except ValueError:
                    value = float("nan")
                if not 0.0 <= value <= 1.0:  # also rejects NaN
                    problems.append(f"{c.element} {rid}: annotatorConfidence {c.confidence!r} is not a number "
                                    "in [0, 1]")
                    continue
            if _is_false(c.present):
                value = 0.0
            values[term] = max(value, values.get(term, 0.0))
        if problems:
            errors.extend(f"{where}: {p}" for p in problems)
            continue
        if not values:
            empty.append((raw.case_id, f"{where}: no RadLex imaging observation or physical entity; not ingested"))
            continue
        study_id = raw.study_uid or f"{raw.patient_id}-{raw.case_id}"
        case = Case(case_id=raw.case_id, patient_id=raw.patient_id, study_id=study_id, study_date=date,
                    sex=raw.sex)
        cases.append(AimCase(case, values, where, raw.series_uid, raw.reader, tuple(ignored)))
    if errors:
        raise InvalidInput("; ".join(errors))
    return cases, empty


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


def read_aim(source, resolve: Callable[[str], str]) -> tuple[list[AimCase], list[tuple[str, str]]]:
    """Parse and check every file of ``source`` (:func:`aim_files`); raise one :class:`InvalidInput` for all.

    Also rejects a case id given twice (within or across files). Returns (cases, annotations left out).
    """
    errors: list[str] = []
    cases: list[AimCase] = []
    empty: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for path in aim_files(source):
        try:
            parsed, left_out = parse_aim(path, resolve)
        except InvalidInput as exc:
            errors.append(exc.message)
            continue
        empty.extend(left_out)
        for item in parsed:
            cid = item.case.case_id
            if cid in seen:
                errors.append(f"{item.source}: case id {cid!r} already used by {seen[cid]}")
            else:
                seen[cid] = item.source
                cases.append(item)
    if errors:
        shown = errors[:_MAX_ERRORS_SHOWN]
        if len(errors) > _MAX_ERRORS_SHOWN:
            shown.append(f"... and {len(errors) - _MAX_ERRORS_SHOWN} more")
        raise InvalidInput("AIM import: nothing was written; " + "; ".join(shown))
    return cases, empty


def ingest_aim(store: Store, source, *, hierarchy=None, replace: bool = False) -> IngestReport:
    """Ingest AIM XML reader annotations (a file or a folder of ``.xml`` files); see the module doc.

    Every file is parsed and checked before anything is written (malformed XML, a DTD, a wrong root element,
    missing ids, an unknown RadLex code, a confidence outside [0, 1], a repeated case id: one
    :class:`InvalidInput` listing them, nothing written). Then each case is written in its own atomic
    :func:`semgraph.casegraph.write_case` with a "reader" annotation. Cases already in the store are skipped
    unless ``replace``; annotations without any RadLex term are listed in ``report.failed``.
    """
    start = time.perf_counter()
    if hierarchy is None:
        import ontology

        hierarchy = ontology.hierarchy(store)
    cases, left_out = read_aim(source, hierarchy.resolve)
    report = IngestReport(failed=list(left_out))
    for item in cases:
        cid = item.case.case_id
        if not replace and case_exists(store, cid):
            report.skipped.append(cid)
            continue
        write_case(store, item.case, [Annotation("reader", item.values)], replace=replace)
        report.ingested.append(cid)
    report.seconds = time.perf_counter() - start
    return report


__all__ = ["MAX_FILE_BYTES", "AimCase", "aim_files", "ingest_aim", "parse_aim", "read_aim", "safe_parse"]

