"""Texture features of a lesion ROI: Riesz-wavelet (or baseline wavelet) energies plus a gray-level histogram."""

from semgraph.features.config import FeatureConfig
from semgraph.features.extract import (
    INTERNAL,
    MARGIN,
    PatchFeatures,
    extract,
    extract_patches,
    feature_names,
    histogram,
    histogram_edges,
    patch_centres,
)
from semgraph.features.registry import available_extractors, get_extractor, register_extractor
from semgraph.features.riesz import (
    riesz_filters,
    riesz_transform,
    riesz_wavelet_transform,
    simoncelli_filters,
)

__all__ = [
    "INTERNAL",
    "MARGIN",
    "FeatureConfig",
    "PatchFeatures",
    "available_extractors",
    "extract",
    "extract_patches",
    "feature_names",
    "get_extractor",
    "histogram",
    "histogram_edges",
    "patch_centres",
    "register_extractor",
    "riesz_filters",
    "riesz_transform",
    "riesz_wavelet_transform",
    "simoncelli_filters",
]
