"""Load CT slices as Hounsfield units (DICOM, NIfTI, PNG/TIFF) and turn regions of interest into masks."""

from semgraph.imaging._checks import (
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_ROI,
    MAX_IMAGE_BYTES,
    check_image,
    check_mask,
)
from semgraph.imaging._load import LoadedImage, detect_format, load_image
from semgraph.imaging._roi import (
    mask_from_file,
    parse_polygon,
    polygon_mask,
    rectangle_mask,
    roi_mask,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MIN_ROI",
    "MAX_IMAGE_BYTES",
    "LoadedImage",
    "check_image",
    "check_mask",
    "detect_format",
    "load_image",
    "mask_from_file",
    "parse_polygon",
    "polygon_mask",
    "rectangle_mask",
    "roi_mask",
]
