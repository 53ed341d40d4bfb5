"""The feature file of an image case: ``DATA_DIR/features/<sha1 of the case IRI>.npz`` (ROI vector, patches).

Ingest writes it (:func:`save_features`, atomically) before the case exists in the store; training and
re-annotation read it back (:func:`load_features`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semgraph.errors import NotFound
from semgraph.features import MIN_ROI_AREA, FeatureConfig, extract_all
from semgraph.files import write_atomically
from semgraph.graph.casegraph import case_iri
from semgraph.imaging import load_image, roi_mask
from semgraph.terms.model_files import feature_config_from_dict

__all__ = ["FEATURES_DIR", "FEATURE_FORMAT_VERSION", "INGEST_FEATURE_CONFIG", "CaseFeatures", "compute_features",
           "features_path", "load_features", "save_features"]

FEATURES_DIR = "features"
FEATURE_FORMAT_VERSION = 1
#: Feature configuration of an ingest without a model or an explicit one: the defaults plus the margin/shape
#: descriptors (they raise the margin terms' LOPO AUC; measured in the issue 4 closing note).
INGEST_FEATURE_CONFIG = FeatureConfig(margin_features=True)


@dataclass
class CaseFeatures:
    """The stored features of one case."""

    roi: np.ndarray  # (D,)
    patches: np.ndarray  # (P, D)
    kinds: np.ndarray  # (P,) 'margin' | 'internal'
    centres: np.ndarray  # (P, 2)
    config: FeatureConfig


def features_path(data_dir, case_id: str) -> Path:
    """``DATA_DIR/features/<sha1 of the case IRI>.npz``."""
    digest = hashlib.sha1(str(case_iri(case_id)).encode("utf-8")).hexdigest()
    return Path(data_dir) / FEATURES_DIR / f"{digest}.npz"


def compute_features(image_path, mask_path, config: FeatureConfig | None = None) -> CaseFeatures:
    """Load an image and its mask and extract the ROI vector and the patch features (raises InvalidInput).

    One transform per case (:func:`semgraph.features.extract_all`). A lesion narrower than one patch is accepted
    when it has at least :data:`semgraph.features.MIN_ROI_AREA` (16) pixels: its ROI vector is computed as usual
    and its patches are its margin patches only (no internal patch); smaller regions are an error.
    """
    cfg = config or INGEST_FEATURE_CONFIG
    image = load_image(image_path)
    mask = roi_mask(image.shape, mask=str(mask_path), min_size=1)
    feats = extract_all(image.hu, mask, cfg, allow_small=True, min_area=MIN_ROI_AREA)
    p = feats.patches
    return CaseFeatures(feats.vector, p.features, p.kinds, p.centres, cfg)


def save_features(path: Path, features: CaseFeatures) -> None:
    """Write a feature file atomically (a temp file in the same folder, then ``os.replace``)."""
    write_atomically(path, lambda f: np.savez(
        f, roi=features.roi, patches=features.patches, kinds=features.kinds.astype("<U8"), centres=features.centres,
        version=np.array(FEATURE_FORMAT_VERSION), config=np.array(json.dumps(features.config.to_dict(),
                                                                              sort_keys=True))))


def load_features(path: Path) -> CaseFeatures:
    """Read a feature file written by :func:`save_features`; NotFound when there is none."""
    if not path.is_file():
        raise NotFound(f"feature file {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        cfg = feature_config_from_dict(json.loads(str(z["config"])))
        return CaseFeatures(z["roi"], z["patches"], z["kinds"], z["centres"], cfg)
