"""Texture features of a lesion ROI: Riesz-wavelet (or baseline wavelet) energies plus a gray-level histogram."""

from semgraph.features.config import FeatureConfig
from semgraph.features.extract import (
    INTERNAL,
    MARGIN,
    MARGIN_FEATURE_NAMES,
    MIN_ROI_AREA,
    PatchFeatures,
    ROIFeatures,
    extract,
    extract_all,
    extract_patches,
    feature_names,
    histogram,
    histogram_edges,
    margin_descriptors,
    patch_centres,
)
from semgraph.features.registry import (
    available_extractors,
    get_extractor,
    register_extractor,
)
from semgraph.features.riesz import (
    riesz_filters,
    riesz_transform,
    riesz_wavelet_transform,
    simoncelli_filters,
)

__all__ = [
    "INTERNAL",
    "MARGIN",
    "MARGIN_FEATURE_NAMES",
    "MIN_ROI_AREA",
    "FeatureConfig",
    "PatchFeatures",
    "ROIFeatures",
    "available_extractors",
    "extract",
    "extract_all",
    "extract_patches",
    "feature_names",
    "get_extractor",
    "histogram",
    "histogram_edges",
    "margin_descriptors",
    "patch_centres",
    "register_extractor",
    "riesz_filters",
    "riesz_transform",
    "riesz_wavelet_transform",
    "simoncelli_filters",
]
