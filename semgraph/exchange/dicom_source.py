"""The DICOM image and region of interest a DICOM export describes (:mod:`dicom_sr`, :mod:`dicom_seg`).

An exported SR or SEG must reference a real DICOM instance (its patient, study and SOP instance UIDs). A case whose
image is NIfTI, PNG or TIFF is therefore refused with :class:`InvalidInput`: semgraph does not invent a DICOM
secondary-capture object with made-up patient and study identifiers. The image is loaded through
:func:`semgraph.imaging.load_image` first, which bounds its size before anything is decoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semgraph import imaging
from semgraph.errors import InvalidInput, NotFound
from semgraph.files import data_file
from semgraph.graph.casegraph import Case

__all__ = ["DicomSource", "case_source", "dicom_header", "query_source"]


@dataclass(frozen=True)
class DicomSource:
    """A single-frame DICOM image (``dataset``, pixel data included) and its ROI (``mask``, boolean, image shape)."""

    dataset: object  # pydicom.Dataset
    mask: np.ndarray


def _dicom_path(path: Path, what: str) -> Path:
    if not path.is_file():
        raise NotFound(f"{what} {path} does not exist")
    fmt = imaging.detect_format(path)
    if fmt != "dicom":
        raise InvalidInput(f"{what} {path.name} is {fmt.upper()}, not DICOM: a DICOM SR or SEG must reference a DICOM "
                           "image, and semgraph does not make one up (ingest the case's DICOM file instead)")
    return path


#: Type 2 patient and study attributes (present, possibly empty) that derived objects copy from their source.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


def _read(path: Path, what: str, roi: Mapping) -> DicomSource:
    import pydicom

    image = imaging.load_image(path)  # refuses multi-frame, oversized or pixel-less files before decoding
    mask = imaging.roi_mask(image.shape, **roi, min_size=1)  # exported as given, however small
    dataset = pydicom.dcmread(path)
    missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID") if k not in dataset]
    if missing:
        raise InvalidInput(f"the DICOM image of {what} lacks {', '.join(missing)}")
    for keyword in _TYPE2:  # a source may leave them out; the copies in the SR and SEG must be there, if empty
        if keyword not in dataset:
            setattr(dataset, keyword, "")
    return DicomSource(dataset, np.asarray(mask, dtype=bool))


def case_source(data_dir, case: Case) -> DicomSource:
    """The DICOM image and mask files of a stored case (both must be inside the data folder)."""
    if not case.image_file or not case.mask_file:
        raise NotFound(f"case {case.case_id!r} has no image and mask file, so there is nothing to export as DICOM")
    image = _dicom_path(data_file(case.image_file, data_dir), f"the image of case {case.case_id!r}")
    return _read(image, f"case {case.case_id!r}", {"mask": data_file(case.mask_file, data_dir)})


def query_source(image_path, roi: Mapping) -> DicomSource:
    """A query's DICOM image (a file not in the store) and its region (``{"mask"|"polygon"|"rectangle": ...}``, as
    :func:`semgraph.imaging.roi_mask` takes it)."""
    if not isinstance(roi, Mapping) or len(roi) != 1 or set(roi) - {"mask", "polygon", "rectangle"}:
        raise InvalidInput("roi must be exactly one of {'mask': ...}, {'polygon': ...}, {'rectangle': ...}")
    return _read(_dicom_path(Path(image_path), "the query image"), "the query", roi)


def dicom_header(data_dir, case: Case):
    """The header (no pixel data) of a stored case's DICOM image, or None when it has no DICOM image."""
    import pydicom

    if not case.image_file:
        return None
    try:
        path = data_file(case.image_file, data_dir)
        if not path.is_file() or imaging.detect_format(path) != "dicom":
            return None
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidInput, OSError, pydicom.errors.InvalidDicomError):
        return None
