"""Test data for the PACS tests: ROI objects (a DICOM SEG made with highdicom, a hand-built RTSTRUCT) over the
synthetic cohort's CT slices, and a data folder with a trained term model.

Importable as ``pacs_fixture`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


def make_seg(image_path: Path, mask: np.ndarray, out: Path) -> str:
    """Write a binary DICOM SEG of ``mask`` on the CT slice ``image_path`` to ``out``; returns its SOP UID."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    source = pydicom.dcmread(image_path)
    for keyword in ("PatientBirthDate", "ReferringPhysicianName"):  # type 2 elements the cohort leaves out
        setattr(source, keyword, "")
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="lesion", segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=[source], pixel_array=mask.astype(np.uint8), segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=generate_uid(), series_number=90,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="semgraph tests",
        manufacturer_model_name="pacs fixture", software_versions="1", device_serial_number="0")
    seg.save_as(out)
    return str(seg.SOPInstanceUID)


def rectangle_contour(image: Dataset, box: tuple[int, int, int, int]) -> list[float]:
    """Patient coordinates (x, y, z per point) of the pixel rectangle ``box`` = (x0, y0, x1, y1) of an axial slice:
    its corners are pixel-edge points, so the contour covers exactly ``mask[y0:y1, x0:x1]``."""
    x_first, y_first, z = (float(v) for v in image.ImagePositionPatient)
    row_mm, col_mm = (float(v) for v in image.PixelSpacing)
    x0, y0, x1, y1 = box
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    # pixel (r, c) centre is semgraph (c + 0.5, r + 0.5) and patient (x_first + c·col_mm, y_first + r·row_mm)
    return [v for x, y in corners for v in (x_first + (x - 0.5) * col_mm, y_first + (y - 0.5) * row_mm, z)]


def make_rtstruct(image_path: Path, contour: list[float], out: Path) -> str:
    """Write an RTSTRUCT with one closed planar contour (patient coordinates) on the CT slice ``image_path``."""
    image = pydicom.dcmread(image_path)
    uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(out), {}, file_meta=meta, preamble=b"\0" * 128)
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID"):
        setattr(ds, keyword, getattr(image, keyword))
    ds.SOPClassUID, ds.SOPInstanceUID = RT_STRUCTURE_SET_STORAGE, uid
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "RTSTRUCT", generate_uid(), 91, 1
    ds.StructureSetLabel = "lesion"
    referenced = Dataset()
    referenced.ReferencedSOPClassUID, referenced.ReferencedSOPInstanceUID = image.SOPClassUID, image.SOPInstanceUID
    roi = Dataset()
    roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = 1, image.FrameOfReferenceUID, "lesion"
    ds.StructureSetROISequence = Sequence([roi])
    item = Dataset()
    item.ContourImageSequence = Sequence([referenced])
    item.ContourGeometricType = "CLOSED_PLANAR"
    item.NumberOfContourPoints = len(contour) // 3
    item.ContourData = [f"{v:.4f}" for v in contour]
    roi_contour = Dataset()
    roi_contour.ReferencedROINumber = 1
    roi_contour.ContourSequence = Sequence([item])
    ds.ROIContourSequence = Sequence([roi_contour])
    ds.save_as(out, enforce_file_format=True)
    return uid


@dataclass
class PacsStudy:
    """A cohort case uploaded to the PACS: its UIDs, its files and its known mask."""

    case_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    patient_id: str
    study_date: str
    image: Path
    mask: np.ndarray
    roi_uid: str | None = None


def one_case_per_study(manifest) -> list:
    """The manifest's first case of each study (a study of the cohort may hold several lesions)."""
    seen, records = set(), []
    for record in manifest.cases:
        if record.metadata["study_uid"] not in seen:
            seen.add(record.metadata["study_uid"])
            records.append(record)
    return records


def pacs_study(record) -> PacsStudy:
    from semgraph.cohort.writers import read_mask

    meta = record.metadata
    return PacsStudy(record.case_id, meta["study_uid"], meta["series_uid"], meta["sop_uid"], record.patient_id,
                     meta["study_date"], Path(record.image), read_mask(record.mask))


def make_sr(image_path: Path, outline: list[tuple[float, float]], out: Path) -> str:
    """Write a TID 1500 measurement report (Comprehensive 3D SR, highdicom) with one planar ROI: the closed
    ``outline`` (pixel coordinates (x, y), corner of the top left pixel at (0, 0)) on the CT slice ``image_path``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    image = pydicom.dcmread(image_path)
    for keyword in ("PatientBirthDate", "ReferringPhysicianName"):  # type 2 elements the cohort leaves out
        setattr(image, keyword, "")
    points = np.array([*outline, outline[0]], dtype=np.float32)  # a closed polyline
    region = hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE, graphic_data=points,
                               source_image=hd.sr.SourceImageForRegion.from_source_image(image))
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="lesion"),
        referenced_region=region, finding_type=codes.SCT.Lesion)
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person, observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name="Reader^Test"))),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=[group])
    sr = hd.sr.Comprehensive3DSR(
        evidence=[image], content=report, series_number=92, series_instance_uid=generate_uid(),
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="semgraph tests")
    sr.save_as(out)
    return str(sr.SOPInstanceUID)
