"""A region of interest as a binary DICOM Segmentation (highdicom), referencing its source image.

The segmentation has one segment, "lesion" (category SCT *Morphologically abnormal structure*, type SCT *Lesion*,
algorithm type MANUAL: the ROI was drawn or supplied, not computed by semgraph), in a new series of the source
image's study. highdicom checks the object against the Segmentation IOD while building it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.exchange.dicom_source import DicomSource

__all__ = ["SEGMENT_LABEL", "SEGMENT_NUMBER", "roi_segmentation", "software_version"]

SEGMENT_NUMBER = 1
SEGMENT_LABEL = "lesion"
MANUFACTURER = "semgraph"


def software_version() -> str:
    """semgraph's installed version (recorded as the Software Versions of every exported object)."""
    try:
        return version("semgraph")
    except PackageNotFoundError:
        return "unknown"


def roi_segmentation(source: DicomSource, *, series_number: int = 901):
    """``source.mask`` as a binary ``highdicom.seg.Segmentation`` of ``source.dataset``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    mask = np.asarray(source.mask, dtype=bool)
    if not mask.any():
        raise InvalidInput("the region of interest is empty: there is no segment to export")
    description = hd.seg.SegmentDescription(
        segment_number=SEGMENT_NUMBER, segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    return hd.seg.Segmentation(
        source_images=[source.dataset], pixel_array=mask[None].astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=[description],
        series_instance_uid=generate_uid(), series_number=series_number, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name="semgraph",
        software_versions=software_version(), device_serial_number="none",
        series_description="semgraph ROI")
