"""Write (and read back) one synthetic case as DICOM or NIfTI plus a PNG mask.

DICOM files are CT Image Storage objects, explicit VR little endian, stored as unsigned 16-bit values with
RescaleIntercept −1024 and RescaleSlope 1 (HU = stored value − 1024). Nothing time-dependent is written, so the
same case always gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from semgraph.errors import InvalidInput

FORMATS = {"dicom": ".dcm", "nifti": ".nii"}
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
INTERCEPT = -1024
SLICE_THICKNESS_MM = 5.0
WINDOW = (40, 400)  # centre, width: soft-tissue / liver window


def check_format(image_format: str) -> str:
    """Normalise an image format name; raise :class:`InvalidInput` for an unknown one."""
    fmt = str(image_format).lower()
    if fmt in {"dcm", "dicom"}:
        return "dicom"
    if fmt in {"nii", "nifti"}:
        return "nifti"
    raise InvalidInput(f"unknown image format {image_format!r}; use one of {sorted(FORMATS)}")


def write_dicom(path: Path, case) -> None:
    """Write ``case.hu`` as a single-frame CT DICOM file with the case's patient and study tags."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import (
        PYDICOM_IMPLEMENTATION_UID,
        ExplicitVRLittleEndian,
        generate_uid,
    )

    m = case.metadata
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = m.sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    date = m.study_date.replace("-", "")
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = m.sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "semgraph synthetic cohort"
    ds.StudyDescription = "CT abdomen with contrast (synthetic)"
    ds.SeriesDescription = f"{m.phase} phase"
    ds.PatientName = f"Synthetic^{m.patient_id}"
    ds.PatientID = m.patient_id
    ds.PatientSex = m.sex
    ds.PatientAge = f"{m.age:03d}Y"
    ds.PatientIdentityRemoved = "YES"
    ds.BodyPartExamined = "ABDOMEN"
    ds.ContrastBolusAgent = "IV iodinated contrast"
    ds.ContrastBolusRoute = "IV"
    ds.KVP = "120"
    ds.SliceThickness = f"{SLICE_THICKNESS_MM:.1f}"
    ds.StudyInstanceUID = m.study_uid
    ds.SeriesInstanceUID = m.series_uid
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[m.series_uid, "frame of reference"])
    ds.StudyID = str(m.study_number)
    ds.SeriesNumber = 1
    ds.InstanceNumber = m.lesion_number
    rows, cols = case.hu.shape
    sp = float(m.pixel_spacing_mm)
    z = float(m.lesion_number - 1) * SLICE_THICKNESS_MM
    ds.ImagePositionPatient = [f"{-(cols - 1) * sp / 2:.3f}", f"{-(rows - 1) * sp / 2:.3f}", f"{z:.1f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = f"{z:.1f}"
    ds.ImageComments = f"liver segment {m.liver_segment}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.PixelSpacing = [f"{sp:.4g}", f"{sp:.4g}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.WindowCenter = str(WINDOW[0])
    ds.WindowWidth = str(WINDOW[1])
    ds.RescaleIntercept = str(INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    stored = (case.hu.astype(np.int32) - INTERCEPT).astype("<u2")
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)


def write_nifti(path: Path, case) -> None:
    """Write ``case.hu`` as an uncompressed NIfTI-1 volume of shape (W, H, 1) (x along the first axis), int16 HU."""
    import nibabel as nib

    sp = float(case.metadata.pixel_spacing_mm)
    affine = np.diag([-sp, -sp, SLICE_THICKNESS_MM, 1.0])  # RAS: x to the patient's left, y posterior
    img = nib.Nifti1Image(np.ascontiguousarray(case.hu.T[:, :, None]), affine)
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = b"semgraph synthetic CT, HU"
    img.header.set_slope_inter(1.0, 0.0)
    nib.save(img, str(path))


def write_mask(path: Path, mask: np.ndarray) -> None:
    """Write a lesion mask as an 8-bit PNG with values 0 and 255."""
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(path, format="PNG")


def read_image(path: str | Path) -> np.ndarray:
    """Read a written image back as int16 HU, shape (H, W)."""
    path = Path(path)
    if path.suffix == ".dcm":
        import pydicom

        ds = pydicom.dcmread(path)
        hu = ds.pixel_array.astype(np.int32) * int(float(ds.RescaleSlope)) + int(float(ds.RescaleIntercept))
        return hu.astype(np.int16)
    if path.name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        return np.asarray(nib.load(str(path)).dataobj)[:, :, 0].T.astype(np.int16)
    raise InvalidInput(f"cannot read image {path}: expected .dcm or .nii")


def read_mask(path: str | Path) -> np.ndarray:
    """Read a PNG mask back as a boolean array."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127
