"""Out-of-distribution checks of image queries: does the query look like the liver-CT lesions the term models
learnt from? Each check gives a :class:`QueryWarning`, never an error: the search runs all the same.

``modality``
    A DICOM query whose Modality (0008,0060) is given and is not ``CT``.
``intensity``
    Pixel values that are not plausibly Hounsfield units of a liver CT slice: a slice median above
    :data:`MAX_MEDIAN_HU` (300 HU; air, fat, liver and lesions lie below it in every contrast phase, the slices of
    the synthetic cohort have medians of 37 to 119 HU) or more than :data:`MAX_HIGH_FRACTION` (1 %) of the pixels
    above :data:`MAX_CT_HU` (3071 HU, the top of the 12-bit CT range). Air is not required: a CT cropped to the
    liver has none (the 128-px synthetic slices). Checked for DICOM (unless the modality check fired; a CT stored
    without its rescale intercept is caught here) and NIfTI. A NIfTI header has no modality field, so for NIfTI
    the values are all that can be known, and they can only refute HU: an MR volume in scanner units (medians of
    327 to 9000 in pydicom's and nibabel's MR test files) is caught, one rescaled into the CT range is left to the
    feature check. Not checked for PNG/TIFF: their HU are the range the user declared.
``features``
    The ROI feature vector is far from the training ROIs of the term model (:class:`FeatureSummary`, fitted in
    :meth:`semgraph.terms.models.TermModels.fit` and saved with the model; models saved without it skip this check).

Feature distance (:func:`fit_feature_summary`). With x the ROI vector of :func:`semgraph.features.extract_all`:

- ``φ(x)``: x with each texture energy (non-negative in training) replaced by ``log(x_j + ε_j)``,
  ``ε_j = 10⁻³ · median`` of the training energies j. Energies are scales: a region without texture (a constant
  image) has energy 0, a few standard deviations below the mean on the linear scale, far below on the log scale.
- ``z = (φ(x) − m) / s``, m and s the training mean and standard deviation of φ, each ``s_j`` at least
  :data:`SCALE_FLOOR` (5 %) of the median ``s_k``: a feature that barely varies in training (the share of ROI pixels
  in the lowest histogram bins) does not turn a negligible deviation into an extreme one.
- ``d(x) = sqrt(zᵀ Σ̂⁻¹ z)``, Σ̂ the Ledoit–Wolf shrunk covariance of the training z (``sklearn.covariance``).
- Threshold τ: the :data:`QUANTILE` (0.99) quantile of the training ROIs' *out-of-fold* distances: a
  ``GroupKFold`` over patients (at most :data:`MAX_FOLDS` folds), each held-out ROI measured by a summary fitted
  (ε, m, s, Σ̂) on the other folds. A new ROI drawn like the training ones exceeds τ with probability about
  ``1 − q``, a little less since the saved summary is fitted on every training ROI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from semgraph.errors import InvalidInput

if TYPE_CHECKING:
    from semgraph.features import FeatureConfig
    from semgraph.imaging import LoadedImage

#: Modality (0008,0060) of the images the term models learn from.
EXPECTED_MODALITY = "CT"
#: Highest median HU of a plausible liver CT slice.
MAX_MEDIAN_HU = 300.0
#: Top of the 12-bit CT range (4095 − 1024).
MAX_CT_HU = 3071.0
#: Largest share of pixels above :data:`MAX_CT_HU` (metal can reach it, over a small area).
MAX_HIGH_FRACTION = 0.01
#: Quantile of the out-of-fold training distances taken as the feature threshold.
QUANTILE = 0.99
#: Each feature's scale is at least this share of the median feature scale.
SCALE_FLOOR = 0.05
#: Offset of the log of texture energy j, as a share of its training median.
LOG_OFFSET = 1e-3
#: Folds of the out-of-fold distances (fewer when there are fewer patients).
MAX_FOLDS = 10
#: Fewest training ROIs (and patients) for which a summary is fitted; below, the feature check is skipped.
MIN_ROIS = 10
MIN_GROUPS = 3
WARNING_CODES = ("modality", "intensity", "features")
_ARRAY_NAMES = ("log_dims", "log_offset", "center", "scale", "precision")
_PREFIX = "ood_"
_QUANTILES_REPORTED = (0.5, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class QueryWarning:
    """A reason to distrust an image query's ranking: ``code`` is one of :data:`WARNING_CODES`."""

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """``{"code": ..., "message": ...}`` (the JSON API's ``warnings`` items)."""
        return {"code": self.code, "message": self.message}


# ------------------------------------------------------------------------------------------- feature summary


@dataclass(frozen=True)
class FeatureSummary:
    """Where the training ROI feature vectors lie, and how far is too far (module docstring for the math).

    Attributes
    ----------
    log_dims : ndarray (D,) of bool
        Features taken on the log scale (texture energies).
    log_offset : ndarray (D,)
        ``ε_j`` of the log dims (0 elsewhere).
    center, scale : ndarray (D,)
        Mean and floored standard deviation of ``φ`` over the training ROIs.
    precision : ndarray (D, D)
        Inverse of the Ledoit–Wolf covariance of the standardised training vectors.
    threshold : float
        τ, the ``quantile`` of the out-of-fold training distances.
    quantile : float
    n_train : int
        Training ROIs.
    shrinkage : float
        Ledoit–Wolf shrinkage of the saved covariance.
    folds : int
        Folds of the out-of-fold distances.
    oof_quantiles : dict of str to float
        Quantiles 0.5, 0.9, 0.95, 0.99 and 1 (max) of the out-of-fold distances, for the record.
    """

    log_dims: np.ndarray
    log_offset: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    precision: np.ndarray
    threshold: float
    quantile: float
    n_train: int
    shrinkage: float
    folds: int
    oof_quantiles: dict[str, float]

    @property
    def n_features(self) -> int:
        return len(self.center)

    def standardise(self, X) -> np.ndarray:
        """``z = (φ(X) − center) / scale``, rows of X (N, D) or one vector (D,) → (N, D)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.n_features or not np.isfinite(X).all():
            raise InvalidInput(f"feature vectors must be finite with {self.n_features} entries, got shape {X.shape}")
        return (_phi(X, self.log_dims, self.log_offset) - self.center) / self.scale

    def distance(self, X) -> np.ndarray:
        """Mahalanobis distances ``sqrt(zᵀ Σ̂⁻¹ z)`` (N,) of the rows of X (or of one vector)."""
        Z = self.standardise(X)
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Z, self.precision, Z), 0.0))

    # ------------------------------------------------------------------ persistence
    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays to save beside the model's (names prefixed ``ood_``)."""
        return {_PREFIX + name: getattr(self, name) for name in _ARRAY_NAMES}

    def _sha256(self) -> str:
        h = hashlib.sha256()
        for name in _ARRAY_NAMES:
            h.update(np.ascontiguousarray(getattr(self, name), dtype=np.float64).tobytes())
        return h.hexdigest()

    def metadata(self) -> dict[str, Any]:
        """The JSON part (threshold, how it was chosen, a hash of :meth:`arrays`)."""
        return {"method": "Mahalanobis distance, Ledoit-Wolf covariance of standardised ROI vectors "
                          "(log texture energies); threshold = quantile of out-of-fold training distances",
                "threshold": self.threshold, "quantile": self.quantile, "n_train": self.n_train,
                "shrinkage": self.shrinkage, "folds": self.folds, "scale_floor": SCALE_FLOOR,
                "oof_quantiles": dict(self.oof_quantiles), "sha256": self._sha256()}

    @classmethod
    def from_saved(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], name: str = "model") -> FeatureSummary:
        """Rebuild from :meth:`arrays` and :meth:`metadata`; :class:`InvalidInput` when they are missing or differ."""
        missing = [_PREFIX + n for n in _ARRAY_NAMES if _PREFIX + n not in arrays]
        if missing:
            raise InvalidInput(f"{name}: its sidecar describes a feature summary but {', '.join(missing)} is missing")
        values = {n: np.asarray(arrays[_PREFIX + n]) for n in _ARRAY_NAMES}
        values["log_dims"] = values["log_dims"].astype(bool)
        try:
            summary = cls(**values, threshold=float(meta["threshold"]), quantile=float(meta["quantile"]),
                          n_train=int(meta["n_train"]), shrinkage=float(meta["shrinkage"]), folds=int(meta["folds"]),
                          oof_quantiles={str(k): float(v) for k, v in dict(meta["oof_quantiles"]).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{name}: its feature summary is incomplete ({exc})") from exc
        if summary._sha256() != meta.get("sha256"):
            raise InvalidInput(f"{name}: the feature summary arrays do not match the sidecar (hash differs)")
        return summary


def _phi(X: np.ndarray, log_dims: np.ndarray, log_offset: np.ndarray) -> np.ndarray:
    """``φ``: log(x_j + ε_j) on the log dims (x_j clipped at 0), x_j elsewhere."""
    out = X.copy()
    if log_dims.any():
        out[:, log_dims] = np.log(np.maximum(X[:, log_dims], 0.0) + log_offset[log_dims])
    return out


def _fit_core(X: np.ndarray, log_dims: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(ε, m, s, Σ̂⁻¹, shrinkage) of the training rows X (module docstring)."""
    from sklearn.covariance import LedoitWolf

    median = np.median(X, axis=0)
    offset = np.where(log_dims, LOG_OFFSET * median, 0.0)
    offset = np.where(log_dims & (offset <= 0), 1e-12, offset)
    T = _phi(X, log_dims, offset)
    center, sd = T.mean(axis=0), T.std(axis=0)
    floor = SCALE_FLOOR * float(np.median(sd))
    scale = np.maximum(sd, floor) if floor > 0 else np.where(sd > 0, sd, 1.0)
    lw = LedoitWolf().fit((T - center) / scale)
    return offset, center, scale, lw.precision_, float(lw.shrinkage_)


def fit_feature_summary(X, groups=None, *, texture_dims: Sequence[bool] | np.ndarray | None = None,
                        quantile: float = QUANTILE) -> FeatureSummary | None:
    """Fit a :class:`FeatureSummary` of the training ROI vectors X (N, D), patients ``groups`` (N,).

    ``texture_dims`` (D,) marks the texture energies (log scale where they are ≥ 0 in training); default none.
    The threshold comes from out-of-fold distances (``GroupKFold`` over ``groups``, each ROI its own group when
    None). None when there are fewer than :data:`MIN_ROIS` ROIs or :data:`MIN_GROUPS` patients.
    """
    from sklearn.model_selection import GroupKFold

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise InvalidInput(f"X must be a finite (N, D) array, got shape {X.shape}")
    if not 0.0 < quantile <= 1.0:
        raise InvalidInput(f"quantile must be in (0, 1], got {quantile!r}")
    g = np.arange(len(X)) if groups is None else np.asarray(groups)
    n_groups = len(np.unique(g))
    if len(X) < MIN_ROIS or n_groups < MIN_GROUPS:
        return None
    tex = np.zeros(X.shape[1], dtype=bool) if texture_dims is None else np.asarray(texture_dims, dtype=bool)
    if tex.shape != (X.shape[1],):
        raise InvalidInput(f"texture_dims must have {X.shape[1]} entries, got {tex.shape}")
    log_dims = tex & (X.min(axis=0) >= 0)
    folds = min(MAX_FOLDS, n_groups)
    oof = np.empty(len(X))
    for train, test in GroupKFold(n_splits=folds).split(X, groups=g):
        offset, center, scale, precision, _ = _fit_core(X[train], log_dims)
        Z = (_phi(X[test], log_dims, offset) - center) / scale
        oof[test] = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Z, precision, Z), 0.0))
    offset, center, scale, precision, shrinkage = _fit_core(X, log_dims)
    return FeatureSummary(log_dims, offset, center, scale, precision, threshold=float(np.quantile(oof, quantile)),
                          quantile=float(quantile), n_train=len(X), shrinkage=shrinkage, folds=folds,
                          oof_quantiles={f"{q:g}": float(np.quantile(oof, q)) for q in _QUANTILES_REPORTED})


def texture_dims(config: FeatureConfig | None, n_features: int) -> np.ndarray:
    """(D,) bool: the texture energies of ``config``'s vector (not ``hist_*``, not the margin descriptors); all
    False without a configuration."""
    from semgraph.features import MARGIN_FEATURE_NAMES, feature_names

    if config is None:
        return np.zeros(n_features, dtype=bool)
    names = feature_names(config)
    return np.array([not n.startswith("hist_") and n not in MARGIN_FEATURE_NAMES for n in names], dtype=bool)


# ------------------------------------------------------------------------------------------- the checks


def modality_warning(modality: str | None) -> QueryWarning | None:
    """A ``modality`` warning when a DICOM Modality is given and is not :data:`EXPECTED_MODALITY`."""
    if modality is None or modality.upper() == EXPECTED_MODALITY:
        return None
    return QueryWarning("modality", f"The image is a DICOM {modality} image, not CT. The term models learnt from "
                                    "liver CT, so the predicted terms and the ranking are not meaningful for it.")


def intensity_warning(image: LoadedImage) -> QueryWarning | None:
    """An ``intensity`` warning when ``image.hu`` is not plausibly HU: median above :data:`MAX_MEDIAN_HU` or more
    than :data:`MAX_HIGH_FRACTION` of the pixels above :data:`MAX_CT_HU`; None for PNG/TIFF (module docstring)."""
    if image.format in ("png", "tiff"):
        return None
    hu = image.hu
    median = float(np.median(hu))
    high = float(np.mean(hu > MAX_CT_HU))
    reasons = []
    if median > MAX_MEDIAN_HU:
        reasons.append(f"their median is {median:.0f}, while a liver CT slice has a median below "
                       f"{MAX_MEDIAN_HU:.0f} HU")
    if high > MAX_HIGH_FRACTION:
        reasons.append(f"{100 * high:.1f} % of the pixels are above {MAX_CT_HU:.0f} HU, beyond the CT range")
    if not reasons:
        return None
    where = (" A NIfTI file does not record its modality; only its values can be checked." if image.format == "nifti"
             else "")
    return QueryWarning("intensity", "The pixel values do not look like CT Hounsfield units: " + "; ".join(reasons)
                        + f" (values {hu.min():.0f} to {hu.max():.0f}).{where} The term models learnt from liver CT "
                        "in HU, so the predicted terms may not be meaningful (an MR image? a CT stored without its "
                        "rescale slope and intercept?).")


def feature_warning(model, image_hu: np.ndarray, mask: np.ndarray) -> QueryWarning | None:
    """A ``features`` warning when the ROI vector's distance exceeds the model's threshold; None when the model has
    no :class:`FeatureSummary` (saved before it existed, or too few training ROIs) or no feature configuration.

    The ROI vector is computed as :func:`semgraph.terms.models.roi_likelihoods` computes it (the model's feature
    configuration, small ROIs allowed).
    """
    from semgraph.features import MIN_ROI_AREA, extract_all

    summary: FeatureSummary | None = getattr(model, "ood_", None)
    config = getattr(model, "feature_config_", None)
    if summary is None or config is None:
        return None
    vector = extract_all(image_hu, mask, config, patches=False, allow_small=True, min_area=MIN_ROI_AREA).vector
    d = float(summary.distance(vector)[0])
    if d <= summary.threshold:
        return None
    return QueryWarning("features", f"The region's texture and intensity features are far from those of the "
                                    f"{summary.n_train} training lesions (Mahalanobis distance {d:.1f}, threshold "
                                    f"{summary.threshold:.1f}, the {100 * summary.quantile:g} % quantile of the "
                                    "training lesions' own distances), so the predicted terms are extrapolated. "
                                    "Check that the image is a liver CT and that the region follows the lesion.")


def check_loaded(image: LoadedImage, mask: np.ndarray, model=None, *, modality: str | None = None
                 ) -> list[QueryWarning]:
    """Every warning of a loaded query image, its ROI mask and (for the feature check) the term model.

    ``modality`` is the DICOM Modality when known; a modality warning replaces the intensity one.
    """
    out = [w for w in (modality_warning(modality),) if w is not None]
    if not out:
        out += [w for w in (intensity_warning(image),) if w is not None]
    if model is not None:
        out += [w for w in (feature_warning(model, image.hu, mask),) if w is not None]
    return out


def check_image_query(image_path, roi: Mapping, model=None, *, slice_index: int | None = None,
                      hu_range=None) -> list[QueryWarning]:
    """Warnings of an image query, loaded as :meth:`semgraph.retrieval.engine.Engine.image_vector` loads it
    (``roi`` one of ``{'mask': ...}``, ``{'polygon': ...}``, ``{'rectangle': ...}``).

    Raises what loading the image and the ROI raises (:class:`InvalidInput`); run it after the query vector,
    which fails first on a bad image.
    """
    from semgraph import imaging

    image = imaging.load_image(image_path, slice_index=slice_index, hu_range=hu_range)
    mask = imaging.roi_mask(image.hu.shape, **dict(roi))
    return check_loaded(image, mask, model, modality=image.modality)


__all__ = [
    "EXPECTED_MODALITY", "MAX_CT_HU", "MAX_HIGH_FRACTION", "MAX_MEDIAN_HU", "QUANTILE", "SCALE_FLOOR",
    "WARNING_CODES", "FeatureSummary", "QueryWarning", "check_image_query", "check_loaded",
    "feature_warning", "fit_feature_summary", "intensity_warning", "modality_warning", "texture_dims",
]
