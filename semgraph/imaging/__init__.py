"""Load CT slices as Hounsfield units (DICOM, NIfTI, PNG/TIFF), turn regions of interest into masks, and crop a
case's slice around its lesion as a windowed thumbnail."""

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
from semgraph.imaging._thumbnail import (
    LIVER_WINDOW,
    Thumbnail,
    apply_window,
    case_thumbnail,
    lesion_box,
    lesion_thumbnail,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MIN_ROI",
    "LIVER_WINDOW",
    "MAX_IMAGE_BYTES",
    "LoadedImage",
    "Thumbnail",
    "apply_window",
    "case_thumbnail",
    "check_image",
    "check_mask",
    "detect_format",
    "lesion_box",
    "lesion_thumbnail",
    "load_image",
    "mask_from_file",
    "parse_polygon",
    "polygon_mask",
    "rectangle_mask",
    "roi_mask",
]
