"""Studies of a PACS over DICOMweb: QIDO-RS search, bounded WADO-RS retrieval, and the region of interest of a slice
from a DICOM SEG, RTSTRUCT or SR (image region) object of the same study.

Every call goes through :func:`semgraph.exchange.pacs.pacs_call`, so a PACS that is down, slow or refuses the
credentials is one :class:`~semgraph.errors.PacsError` and a missing study or instance a
:class:`~semgraph.errors.NotFound`. An object with pixel data is sized from its WADO-RS metadata (rows, columns,
frames, bits) and refused before it is downloaded or decoded when it is over the image limits
(``MAX_IMAGE_SIDE``, :data:`semgraph.imaging.MAX_IMAGE_BYTES`).

Coordinates follow :mod:`semgraph.imaging`: ``x`` is the column, ``y`` the row, and the centre of pixel ``(r, c)``
is ``(c + 0.5, r + 0.5)``. An RTSTRUCT contour (patient coordinates in mm) is mapped to pixels with the image's
ImagePositionPatient, ImageOrientationPatient and PixelSpacing (``highdicom.spatial.ReferenceToPixelTransformer``) and
rasterised by :func:`semgraph.imaging.polygon_mask`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semgraph.errors import InvalidInput, NotFound
from semgraph.exchange.pacs import pacs_call
from semgraph.imaging import DEFAULT_MAX_SIZE, MAX_IMAGE_BYTES, polygon_mask
from semgraph.imaging._checks import check_data_size, check_size
from semgraph.imaging._load import dicom_pixel_bytes

__all__ = [
    "ROI_MODALITIES", "InstanceInfo", "PacsSlice", "SeriesInfo", "StudyInfo", "check_uid", "fetch_instance",
    "find_instance", "list_instances", "list_series", "parse_date_range", "roi_mask_of", "roi_slice", "rtstruct_mask",
    "save_slice", "search_studies", "seg_mask", "sr_mask", "studies_of_series", "study_slice",
]

#: Modalities of the objects that define a region of interest, in the order a study's region is looked for.
ROI_MODALITIES = ("SEG", "RTSTRUCT", "SR")
#: Closed outlines of an SR image region (SCOORD graphic types).
_SR_OUTLINES = ("POLYLINE", "POLYGON")
#: Most studies one QIDO search returns (a page).
MAX_STUDIES = 1000
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_QIDO_TEXT = re.compile(r"[^*?\\]{1,64}")


@dataclass(frozen=True)
class StudyInfo:
    """One study as a QIDO-RS search lists it."""

    study_uid: str
    patient_id: str
    patient_name: str
    study_date: dt.date | None
    description: str
    modalities: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"study_uid": self.study_uid, "patient_id": self.patient_id, "patient_name": self.patient_name,
                "study_date": self.study_date.isoformat() if self.study_date else None,
                "description": self.description, "modalities": list(self.modalities)}


@dataclass(frozen=True)
class SeriesInfo:
    """One series of a study."""

    series_uid: str
    modality: str
    description: str
    instances: int | None

    def as_dict(self) -> dict:
        return {"series_uid": self.series_uid, "modality": self.modality, "description": self.description,
                "instances": self.instances}


@dataclass(frozen=True)
class InstanceInfo:
    """One instance of a series (``rows``/``columns`` None when the object has no pixel data)."""

    sop_uid: str
    number: int | None
    rows: int | None
    columns: int | None

    def as_dict(self) -> dict:
        return {"sop_uid": self.sop_uid, "number": self.number, "rows": self.rows, "columns": self.columns}


@dataclass
class PacsSlice:
    """A CT slice retrieved from the PACS with its region of interest, and where that region came from."""

    study_uid: str
    series_uid: str
    sop_uid: str
    dataset: object  # pydicom.Dataset
    mask: np.ndarray
    roi_source: str  # "SEG" | "RTSTRUCT"
    roi_uid: str


def check_uid(value: str, what: str = "UID") -> str:
    """``value`` when it is a DICOM UID (digits and dots, at most 64 characters); else InvalidInput."""
    value = str(value or "").strip()
    if len(value) > 64 or not _UID.fullmatch(value):
        raise InvalidInput(f"{what} {value[:80]!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return value


def parse_date_range(text: str | None) -> tuple[dt.date | None, dt.date | None] | None:
    """``FROM..TO`` (ISO dates, either side may be empty) or one ISO date; None for no text."""
    if not text:
        return None
    low, sep, high = str(text).partition("..")
    if not sep:
        high = low
    try:
        dates = tuple(dt.date.fromisoformat(part.strip()) if part.strip() else None for part in (low, high))
    except ValueError:
        raise InvalidInput(f"date range {text!r}: expected YYYY-MM-DD..YYYY-MM-DD (either side may be empty)") from None
    if dates == (None, None):
        raise InvalidInput(f"date range {text!r} gives no date")
    if None not in dates and dates[0] > dates[1]:
        raise InvalidInput(f"date range {text!r} ends before it starts")
    return dates


def _value(item: dict, tag: str, default=None):
    values = item.get(tag, {}).get("Value") or []
    if not values:
        return default
    value = values[0]
    if isinstance(value, dict):  # a person name
        return value.get("Alphabetic", default)
    return value


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date() if text else None
    except ValueError:
        return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def studies_of_series(client, series_uids: Sequence[str]) -> list[str]:
    """The StudyInstanceUIDs of the studies that hold the given series (QIDO-RS series search); NotFound for a series
    the PACS does not have."""
    uids = [check_uid(uid, "series UID") for uid in series_uids]
    found = pacs_call(client, "search series", lambda: client.search_for_series(
        search_filters={"SeriesInstanceUID": "\\".join(uids)}, fields=["StudyInstanceUID"]))
    held = {_value(item, "0020000E", ""): _value(item, "0020000D", "") for item in found}
    missing = [uid for uid in uids if uid not in held]
    if missing:
        raise NotFound(f"series {missing[0]} is not on the PACS {client.base_url}")
    return sorted({held[uid] for uid in uids})


def search_studies(client, *, patient: str | None = None, date_range=None, study_uids: Sequence[str] = (),
                   limit: int = MAX_STUDIES, offset: int = 0) -> list[StudyInfo]:
    """The studies of the PACS matching every filter given: a patient id, a ``(from, to)`` date range (either may be
    None; see :func:`parse_date_range`) and study UIDs; at most ``limit`` from ``offset``, by date."""
    filters: dict[str, str] = {}
    if patient:
        if not _QIDO_TEXT.fullmatch(patient):
            raise InvalidInput("patient id: 1 to 64 characters, without the wildcards * ? or a backslash")
        filters["PatientID"] = patient
    if date_range:
        low, high = date_range
        filters["StudyDate"] = f"{low.strftime('%Y%m%d') if low else ''}-{high.strftime('%Y%m%d') if high else ''}"
    uids = [check_uid(uid, "study UID") for uid in study_uids]
    if uids:
        filters["StudyInstanceUID"] = "\\".join(uids)
    limit = max(1, min(int(limit), MAX_STUDIES))
    found = pacs_call(client, "search studies", lambda: client.search_for_studies(
        search_filters=filters, limit=limit, offset=max(0, int(offset)),
        fields=["ModalitiesInStudy", "StudyDescription"]))
    studies = [StudyInfo(study_uid=_value(item, "0020000D", ""), patient_id=_value(item, "00100020", ""),
                         patient_name=str(_value(item, "00100010", "")), study_date=_date(_value(item, "00080020")),
                         description=_value(item, "00081030", ""),
                         modalities=tuple(item.get("00080061", {}).get("Value") or ())) for item in found]
    return sorted(studies, key=lambda s: (s.study_date or dt.date.min, s.study_uid))


def list_series(client, study_uid: str) -> list[SeriesInfo]:
    """The series of a study (NotFound when the PACS has no such study)."""
    study_uid = check_uid(study_uid, "study UID")
    found = pacs_call(client, f"series of study {study_uid}", lambda: client.search_for_series(
        study_instance_uid=study_uid, fields=["SeriesDescription", "NumberOfSeriesRelatedInstances"]))
    if not found:
        raise NotFound(f"study {study_uid} is not on the PACS {client.base_url}")
    return [SeriesInfo(series_uid=_value(item, "0020000E", ""), modality=_value(item, "00080060", ""),
                       description=_value(item, "0008103E", ""), instances=_int(_value(item, "00201209")))
            for item in found]


def list_instances(client, study_uid: str, series_uid: str) -> list[InstanceInfo]:
    """The instances of a series, by instance number (NotFound when there is none)."""
    study_uid, series_uid = check_uid(study_uid, "study UID"), check_uid(series_uid, "series UID")
    found = pacs_call(client, f"instances of series {series_uid}", lambda: client.search_for_instances(
        study_instance_uid=study_uid, series_instance_uid=series_uid, fields=["Rows", "Columns"]))
    if not found:
        raise NotFound(f"series {series_uid} of study {study_uid} is not on the PACS {client.base_url}")
    instances = [InstanceInfo(sop_uid=_value(item, "00080018", ""), number=_int(_value(item, "00200013")),
                              rows=_int(_value(item, "00280010")), columns=_int(_value(item, "00280011")))
                 for item in found]
    return sorted(instances, key=lambda i: (i.number is None, i.number or 0, i.sop_uid))


def find_instance(client, study_uid: str, sop_uid: str) -> str:
    """The series UID of instance ``sop_uid`` of a study (NotFound when the study has no such instance)."""
    study_uid, sop_uid = check_uid(study_uid, "study UID"), check_uid(sop_uid, "instance UID")
    found = pacs_call(client, f"instance {sop_uid}", lambda: client.search_for_instances(
        study_instance_uid=study_uid, search_filters={"SOPInstanceUID": sop_uid}))
    if not found:
        raise NotFound(f"instance {sop_uid} is not in study {study_uid} on the PACS {client.base_url}")
    return _value(found[0], "0020000E", "")


def fetch_instance(client, study_uid: str, series_uid: str, sop_uid: str, *, max_size: int = DEFAULT_MAX_SIZE,
                   max_bytes: int = MAX_IMAGE_BYTES):
    """The instance as a pydicom Dataset; one with pixel data over ``max_size`` pixels a side or ``max_bytes`` of
    pixel data is refused (InvalidInput) from its metadata, before it is retrieved."""
    from pydicom import Dataset

    uids = check_uid(study_uid, "study UID"), check_uid(series_uid, "series UID"), check_uid(sop_uid, "instance UID")
    what = f"instance {uids[2]}"
    metadata = pacs_call(client, f"metadata of {what}", lambda: client.retrieve_instance_metadata(*uids))
    header = Dataset.from_json(metadata, bulk_data_uri_handler=lambda *_: b"")
    if "Rows" in header or "PixelData" in header:
        rows, cols = int(header.get("Rows", 0) or 0), int(header.get("Columns", 0) or 0)
        if rows < 1 or cols < 1:
            raise InvalidInput(f"{what}: its metadata gives no valid Rows/Columns ({rows}x{cols})")
        check_size((rows, cols), max_size, what)
        check_data_size(dicom_pixel_bytes(header, what), f"{what} declares {rows}x{cols} pixels", max_bytes)
    return pacs_call(client, f"retrieve {what}", lambda: client.retrieve_instance(*uids))


def seg_mask(seg_dataset, sop_uid: str) -> np.ndarray:
    """The region (every segment together) of a DICOM SEG on source instance ``sop_uid``, as a boolean array."""
    import highdicom as hd

    seg = hd.seg.Segmentation.from_dataset(seg_dataset, copy=False)
    if sop_uid not in {uid for _, _, uid in seg.get_source_image_uids()}:
        raise InvalidInput(f"the SEG {seg.SOPInstanceUID} does not segment instance {sop_uid}")
    try:
        pixels = seg.get_pixels_by_source_instance([sop_uid], combine_segments=True)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise InvalidInput(f"the SEG {seg.SOPInstanceUID} has no frame for instance {sop_uid} ({exc})") from None
    return np.asarray(pixels[0]) > 0


def _contours_on(rt_dataset, sop_uid: str) -> list[np.ndarray]:
    contours = []
    for roi in rt_dataset.get("ROIContourSequence", []):
        for contour in roi.get("ContourSequence", []):
            images = {item.ReferencedSOPInstanceUID for item in contour.get("ContourImageSequence", [])}
            if sop_uid in images and contour.get("ContourGeometricType", "CLOSED_PLANAR") == "CLOSED_PLANAR":
                contours.append(np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3))
    return contours


def rtstruct_mask(rt_dataset, image) -> np.ndarray:
    """The region of an RTSTRUCT on the slice ``image`` (a pydicom Dataset): the union of its closed planar
    contours that reference the slice, each mapped to pixel coordinates and rasterised as a polygon."""
    from highdicom.spatial import ReferenceToPixelTransformer

    contours = _contours_on(rt_dataset, image.SOPInstanceUID)
    if not contours:
        raise InvalidInput(f"the RTSTRUCT {rt_dataset.SOPInstanceUID} has no closed contour on instance "
                           f"{image.SOPInstanceUID}")
    try:
        to_pixels = ReferenceToPixelTransformer(image_position=[float(v) for v in image.ImagePositionPatient],
                                              image_orientation=[float(v) for v in image.ImageOrientationPatient],
                                              pixel_spacing=[float(v) for v in image.PixelSpacing],
                                              round_output=False)
    except (AttributeError, TypeError, ValueError) as exc:
        raise InvalidInput(f"instance {image.SOPInstanceUID} lacks the geometry an RTSTRUCT needs "
                           f"(ImagePositionPatient, ImageOrientationPatient, PixelSpacing): {exc}") from None
    shape = (int(image.Rows), int(image.Columns))
    mask = np.zeros(shape, dtype=bool)
    for points in contours:
        pixels = to_pixels(points)[:, :2] + 0.5  # (column, row) of pixel centres → semgraph's x, y
        mask ^= polygon_mask(pixels.tolist(), shape)
    return mask


def _sr_regions(items):
    """(SCOORD item, referenced SOP Instance UID) of every image region in an SR content tree."""
    for item in items:
        if item.get("ValueType") == "SCOORD" and item.get("GraphicType") in _SR_OUTLINES:
            for child in item.get("ContentSequence", []):
                for ref in child.get("ReferencedSOPSequence", []) if child.get("ValueType") == "IMAGE" else []:
                    yield item, ref.ReferencedSOPInstanceUID
        yield from _sr_regions(item.get("ContentSequence", []))


def sr_mask(sr_dataset, image) -> np.ndarray:
    """The region of a structured report (e.g. a TID 1500 measurement report) on the slice ``image``: the union of
    its image regions (SCOORD POLYLINE or POLYGON, in pixel coordinates with ``(0, 0)`` the top left corner of the
    top left pixel, as semgraph's) selected from that slice."""
    shape = (int(image.Rows), int(image.Columns))
    mask = np.zeros(shape, dtype=bool)
    found = False
    for item, sop_uid in _sr_regions(sr_dataset.get("ContentSequence", [])):
        if sop_uid == image.SOPInstanceUID:
            mask ^= polygon_mask(np.asarray(item.GraphicData, dtype=np.float64).reshape(-1, 2).tolist(), shape)
            found = True
    if not found:
        raise InvalidInput(f"the SR {sr_dataset.SOPInstanceUID} has no image region (polyline or polygon) on "
                           f"instance {image.SOPInstanceUID}")
    return mask


def roi_mask_of(roi_dataset, image) -> np.ndarray:
    """The region a SEG, RTSTRUCT or SR object ``roi_dataset`` defines on the slice ``image``."""
    modality = str(roi_dataset.get("Modality", ""))
    if modality == "SEG":
        return seg_mask(roi_dataset, image.SOPInstanceUID)
    if modality == "RTSTRUCT":
        return rtstruct_mask(roi_dataset, image)
    if modality == "SR":
        return sr_mask(roi_dataset, image)
    raise InvalidInput(f"object {roi_dataset.get('SOPInstanceUID', '?')} is a {modality or 'DICOM'} object, not a "
                       "SEG, an RTSTRUCT or an SR")


def _referenced_instance(roi_dataset) -> str:
    """The first image instance a SEG, RTSTRUCT or SR refers to (an SR: the slice of its first image region)."""
    if roi_dataset.get("Modality") == "SR":
        for _, sop_uid in _sr_regions(roi_dataset.get("ContentSequence", [])):
            return sop_uid
    if roi_dataset.get("Modality") == "SEG":
        for series in roi_dataset.get("ReferencedSeriesSequence", []):
            for item in series.get("ReferencedInstanceSequence", []):
                return item.ReferencedSOPInstanceUID
    for roi in roi_dataset.get("ROIContourSequence", []):
        for contour in roi.get("ContourSequence", []):
            for item in contour.get("ContourImageSequence", []):
                return item.ReferencedSOPInstanceUID
    raise InvalidInput(f"the {roi_dataset.get('Modality')} {roi_dataset.SOPInstanceUID} refers to no image")


def _slice_of(client, study_uid: str, roi_uid: str, roi_dataset, max_size: int) -> PacsSlice:
    sop_uid = _referenced_instance(roi_dataset)
    series_uid = find_instance(client, study_uid, sop_uid)
    image = fetch_instance(client, study_uid, series_uid, sop_uid, max_size=max_size)
    return PacsSlice(study_uid, series_uid, sop_uid, image, roi_mask_of(roi_dataset, image),
                     str(roi_dataset.get("Modality", "")), roi_uid)


def roi_slice(client, study_uid: str, roi_uid: str, *, max_size: int = DEFAULT_MAX_SIZE) -> PacsSlice:
    """The slice that the SEG, RTSTRUCT or SR ``roi_uid`` of a study refers to, with that object's region."""
    roi_series = find_instance(client, study_uid, roi_uid)
    roi_dataset = fetch_instance(client, study_uid, roi_series, roi_uid, max_size=max_size)
    return _slice_of(client, study_uid, roi_uid, roi_dataset, max_size)


def study_slice(client, study_uid: str, *, max_size: int = DEFAULT_MAX_SIZE) -> PacsSlice:
    """The slice of a study that its first SEG (else RTSTRUCT, else SR with an image region) object refers to, with
    that object's region.

    InvalidInput when the study has no such object (give a region instead); NotFound when it is not on the PACS.
    An SR without an image region (a report of numbers only) is passed over.
    """
    series = list_series(client, study_uid)
    for modality in ROI_MODALITIES:
        for roi_series in (s for s in series if s.modality == modality):
            roi_uid = list_instances(client, study_uid, roi_series.series_uid)[0].sop_uid
            roi_dataset = fetch_instance(client, study_uid, roi_series.series_uid, roi_uid, max_size=max_size)
            if modality == "SR" and next(_sr_regions(roi_dataset.get("ContentSequence", [])), None) is None:
                continue
            return _slice_of(client, study_uid, roi_uid, roi_dataset, max_size)
    raise InvalidInput(f"study {study_uid} has no SEG, RTSTRUCT or SR object defining a region of interest; "
                       "give the region (--rect or --polygon) instead")


def save_slice(client, study_uid: str, series_uid: str, sop_uid: str, folder, *, seg_uid: str | None = None,
               max_size: int = DEFAULT_MAX_SIZE) -> tuple[Path, Path | None]:
    """Retrieve an image instance into ``folder/<SOPInstanceUID>.dcm``; with ``seg_uid`` (a SEG, RTSTRUCT or SR
    with an image region, of the same study) also its region on that slice as ``folder/<SOPInstanceUID>-roi.png``.
    Returns both paths (the mask None without ``seg_uid``)."""
    from semgraph.cohort.writers import write_mask

    image = fetch_instance(client, study_uid, series_uid, sop_uid, max_size=max_size)
    image_path = Path(folder) / f"{image.SOPInstanceUID}.dcm"
    image.save_as(image_path, enforce_file_format=True)
    if seg_uid is None:
        return image_path, None
    roi_series = find_instance(client, study_uid, seg_uid)
    roi_dataset = fetch_instance(client, study_uid, roi_series, seg_uid, max_size=max_size)
    mask_path = Path(folder) / f"{image.SOPInstanceUID}-roi.png"
    write_mask(mask_path, roi_mask_of(roi_dataset, image))
    return image_path, mask_path
