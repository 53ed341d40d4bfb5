"""Term models: one-vs-all linear SVMs on texture patches, calibrated term likelihoods, term signatures.

docs/algorithms.md §4.5, §3.1. For each vocabulary term a linear SVM separates the patches of the ROIs annotated with
the term from the patches of the other ROIs. Margin-like terms learn from *margin* patches, the other terms from
*internal* patches. The ROI-level raw score of term i is the decision function on the ROI feature vector,
``z_i = <w_i, (x_ROI − μ)/σ> + b_i``, and its likelihood ``a_i = σ(α_i z_i + β_i)`` (Platt scaling) or an isotonic
map of ``z_i``. Both maps are fitted on out-of-fold ROI scores of an inner cross-validation over patients, and
both are non-decreasing in ``z_i``. The terms of an exclusive group (at most one of them applies to a case; by default
the paper's groups, :func:`ontology.paper_terms.paper_exclusive_groups`) get their likelihoods jointly from a
multinomial model over the group's raw scores (:mod:`semgraph.terms.joint`), fitted on the same out-of-fold scores,
so that they sum to at most 1 and at most one exceeds 0.5. The term signature ``Γ^i`` is ``w_i`` (in the z-scored feature space) restricted
to the texture dimensions and unit-normalised.

Everything the models need to predict is held in plain arrays, so :meth:`TermModels.save` writes a ``.npz`` with a
JSON sidecar and no pickle (:mod:`semgraph.terms.model_files`). Platt scaling is :mod:`semgraph.terms.calibration`;
the leave-one-patient-out evaluation is :mod:`semgraph.terms.evaluation`.

Our choices (marked "ours" in docs/algorithms.md §4), made here:

- SVM: ``sklearn.svm.LinearSVC(loss="squared_hinge", dual=False, class_weight="balanced")`` (primal L2-SVM,
  fast and deterministic when patches far outnumber features). C comes from ``Cs`` by the ROI-level AUC of an
  inner ``GroupKFold`` over patients (ties go to the smallest C).
- One z-score (mean, sd per feature) fitted on all training patches and shared by every term, so that the signatures
  of margin and internal terms live in the same space.
- Labels: an ROI is positive for a term when its label is ≥ 0.5 (reader ratings in [0, 1] are thresholded).
- Patch kinds (:func:`paper_patch_kinds`): the categories "lesion margin and contour", "perilesional tissue" and
  "lesion effect on liver" use margin patches, the others internal patches. A term whose positive ROIs have no
  patch of its kind falls back to all patches. A term with a single class among the training ROIs gets a constant
  likelihood (the Laplace-smoothed prior ``(n₊ + 1)/(n + 2)``), a zero signature, and a warning.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from ontology.paper_terms import paper_exclusive_groups, paper_terms
from semgraph.errors import InvalidInput
from semgraph.features import (
    INTERNAL,
    MARGIN,
    MARGIN_FEATURE_NAMES,
    MIN_ROI_AREA,
    FeatureConfig,
    extract_all,
    feature_names,
)
from semgraph.terms.calibration import platt_fit, sigmoid
from semgraph.terms.joint import fit_group, group_likelihoods
from semgraph.terms.model_files import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    feature_config_from_dict,
    library_versions,
    model_paths,
    read_metadata,
    write_model,
)
from semgraph.terms.ood import FeatureSummary, fit_feature_summary, texture_dims

__all__ = ["ALL", "CALIBRATIONS", "MARGIN_CATEGORIES", "ROI_SCORES", "PreparedData", "SingleClassTermWarning",
           "TermModels", "apply_calibrations", "fit_calibrations", "paper_patch_kinds", "prepare_data", "roi_likelihoods"]

#: Patch kind meaning "every patch of the ROI".
ALL = "all"
#: Paper categories whose terms are learnt from margin patches.
MARGIN_CATEGORIES = frozenset({"lesion margin and contour", "perilesional tissue", "lesion effect on liver"})
CALIBRATIONS = ("platt", "isotonic")
ROI_SCORES = ("patch_mean", "roi")


class SingleClassTermWarning(UserWarning):
    """A term has a single class in the training data; it gets a constant (prior) likelihood."""


def paper_patch_kinds() -> dict[str, str]:
    """Patch kind ('margin' or 'internal') of each paper term IRI, from its Table 1 category."""
    return {t.iri: MARGIN if t.category in MARGIN_CATEGORIES else INTERNAL for t in paper_terms()}


@dataclass
class PreparedData:
    """Validated training data of :class:`TermModels` (labels thresholded at 0.5)."""

    X: np.ndarray  # (N, D) ROI features
    Y: np.ndarray  # (N, k) bool
    patches: np.ndarray  # (P, D)
    kinds: np.ndarray  # (P,) str
    case: np.ndarray  # (P,) int index into X
    groups: np.ndarray  # (N,)


def prepare_data(X, Y, patches=None, patch_kinds=None, patch_case=None, groups=None) -> PreparedData:
    """The checked arrays of :meth:`TermModels.fit` (InvalidInput naming the first bad one); without
    ``patches`` the ROI vectors stand in for them and each ROI is its own group unless ``groups``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or not np.isfinite(X).all():
        raise InvalidInput(f"X must be a finite (N, D) array with N ≥ 2, got shape {X.shape}")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != X.shape[0] or not np.isfinite(Y).all():
        raise InvalidInput(f"Y must be an (N, k) array with N = {X.shape[0]}, got shape {Y.shape}")
    if patches is None:
        if patch_kinds is not None or patch_case is not None:
            raise InvalidInput("patch_kinds and patch_case need patches")
        P, kinds, case = X, np.full(len(X), ALL), np.arange(len(X))
    else:
        P = np.asarray(patches, dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != X.shape[1] or not np.isfinite(P).all():
            raise InvalidInput(f"patches must be a finite (P, {X.shape[1]}) array, got shape {P.shape}")
        if patch_case is None:
            raise InvalidInput("patch_case (the ROI index of each patch) is required with patches")
        case = np.asarray(patch_case)
        if case.shape != (len(P),) or not np.issubdtype(case.dtype, np.integer) or \
                (len(case) and (case.min() < 0 or case.max() >= len(X))):
            raise InvalidInput(f"patch_case must hold {len(P)} ROI indices in [0, {len(X)})")
        kinds = np.full(len(P), ALL) if patch_kinds is None else np.asarray(patch_kinds).astype(str)
        if kinds.shape != (len(P),) or not set(np.unique(kinds)) <= {MARGIN, INTERNAL, ALL}:
            raise InvalidInput("patch_kinds must give 'margin', 'internal' or 'all' for every patch")
    g = np.arange(len(X)) if groups is None else np.asarray(groups)
    if g.shape != (len(X),):
        raise InvalidInput(f"groups must have one entry per ROI ({len(X)}), got shape {g.shape}")
    return PreparedData(X, Y >= 0.5, P, kinds, case, g)


class TermModels(BaseEstimator):
    """One-vs-all linear-SVM term models with calibrated likelihoods (scikit-learn estimator).

    Parameters
    ----------
    terms : sequence of str, optional
        Term IRIs, one per column of ``Y``. Default: the paper's 19 terms (then ``Y`` must have 19 columns).
    patch_kinds : mapping of str to {'margin', 'internal', 'all'}, optional
        Patch kind each term learns from. Default: :func:`paper_patch_kinds` for paper terms, 'all' for others.
    Cs : sequence of float, default (0.01, 0.1, 1, 10)
        Candidate SVM C values, chosen per term by inner cross-validation.
    inner_folds : int, default 3
        Folds of the inner ``GroupKFold`` over patients (C choice and calibration data).
    calibration : {'platt', 'isotonic'}, default 'platt'
        Map from ROI score to likelihood.
    feature_config : FeatureConfig, optional
        The feature configuration the inputs were computed with; recorded with the model and checked on load.
        Default ``FeatureConfig()`` when the data has its width, else none (generic features).
    signature : {'texture', 'all'}, default 'texture'
        Dimensions of the signatures: texture energies only (histogram and margin/shape descriptors dropped) or
        every feature.
    max_patches : int or None, default 20000
        Per term, at most this many training patches (a class-stratified random subsample); None = all.
    random_state : int, default 0
        Seed of the subsampling.
    roi_score : {'patch_mean', 'roi'}, default 'patch_mean'
        How an ROI is scored. 'patch_mean': the mean of the decision function over the ROI's patches of the
        term's kind, which for a linear SVM is the decision function at the mean patch vector of that kind
        (an ROI without such a patch falls back to its ROI vector). 'roi': the decision function on the ROI
        vector (the behaviour of format-1 models saved before this option; loaded as such). Patches are then
        needed at prediction time for 'patch_mean' (``patches=``, ``patch_kinds=``, ``patch_case=`` of
        :meth:`decision_function`); without them the ROI vector is used. On the 72-case cohort 'patch_mean'
        raised the mean LOPO AUC (measured in the issue 4 closing note).
    exclusive_groups : mapping of str to sequence of str, optional
        Group name → term IRIs of which a case has at most one; their likelihoods come from a joint model. Default
        (None): the paper's groups (:func:`ontology.paper_terms.paper_exclusive_groups`) as far as their terms are
        among ``terms``; ``{}``: every term on its own. A group needs two terms and a term is in at most one group.

    Attributes
    ----------
    terms_ : list of str
    kinds_ : list of str
        Patch kind actually used per term ('margin', 'internal', 'all' or 'constant').
    mean_, scale_ : ndarray (D,)
        Feature standardisation fitted on the training patches.
    coef_ : ndarray (k, D)
        SVM weights in the standardised space (zero rows for constant terms).
    intercept_ : ndarray (k,)
    C_ : ndarray (k,)
        Chosen C per term (NaN for constant terms).
    calibration_ : list of dict
        Per term: ``{"kind": "platt", "a": α, "b": β}``, ``{"kind": "isotonic", "x": [...], "y": [...]}`` or
        ``{"kind": "constant", "p": prior}``.
    groups_ : list of dict
        Per exclusive group: ``{"name", "terms": [IRIs], ...}`` with the joint model of
        :func:`semgraph.terms.joint.fit_group`; it replaces the members' ``calibration_`` entries. Empty for models
        saved before groups existed.
    signatures_ : ndarray (k, U)
        Unit-normalised ``coef_`` restricted to the signature dimensions (zero rows for constant terms).
    signature_dims_ : ndarray (U,) of int
    feature_config_ : FeatureConfig or None
    n_features_in_ : int
    training_cases_ : list of str
        Ids of the training ROIs when given to :meth:`fit` (``case_ids``), else their indices.
    version_ : str
        ``<UTC time>-<12 hex digits of a hash of the learned arrays>``.
    ood_ : semgraph.terms.ood.FeatureSummary or None
        Where the training ROI vectors lie (Mahalanobis summary and threshold of the image-query feature check,
        :mod:`semgraph.terms.ood`); None with fewer than 10 training ROIs or 3 patients, and for models saved before it.
        Saved as extra ``ood_*`` arrays and an ``"ood"`` sidecar entry with its own hash (not part of ``version_``).
    """

    def __init__(self, *, terms: Sequence[str] | None = None, patch_kinds: Mapping[str, str] | None = None,
                 Cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0), inner_folds: int = 3, calibration: str = "platt",
                 feature_config: FeatureConfig | None = None, signature: str = "texture",
                 max_patches: int | None = 20000, random_state: int = 0, roi_score: str = "patch_mean",
                 exclusive_groups: Mapping[str, Sequence[str]] | None = None):
        self.terms = terms
        self.patch_kinds = patch_kinds
        self.Cs = Cs
        self.inner_folds = inner_folds
        self.calibration = calibration
        self.feature_config = feature_config
        self.signature = signature
        self.max_patches = max_patches
        self.random_state = random_state
        self.roi_score = roi_score
        self.exclusive_groups = exclusive_groups

    # ------------------------------------------------------------------ validation
    def exclusive_positions(self, terms: list[str]) -> list[tuple[str, list[int]]]:
        """``[(name, term positions)]`` of the exclusive groups (see the ``exclusive_groups`` parameter)."""
        if self.exclusive_groups is None:
            chosen = {name: [t for t in members if t in terms] for name, members in paper_exclusive_groups().items()}
            chosen = {name: members for name, members in chosen.items() if len(members) >= 2}
        else:
            chosen = {str(name): [str(t) for t in members] for name, members in dict(self.exclusive_groups).items()}
        out, seen = [], set()
        for name, members in chosen.items():
            outside = [t for t in members if t not in terms]
            if outside or len(set(members)) < 2 or seen & set(members):
                raise InvalidInput(f"exclusive group {name!r} must name at least two distinct terms of the model, "
                                   f"none of them in another group (got {members})")
            seen |= set(members)
            out.append((name, [terms.index(t) for t in members]))
        return out

    def _check_params(self, k: int, D: int) -> tuple[list[str], dict[str, str], FeatureConfig | None]:
        if self.calibration not in CALIBRATIONS:
            raise InvalidInput(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {self.calibration!r}")
        if self.roi_score not in ROI_SCORES:
            raise InvalidInput(f"roi_score must be one of {', '.join(ROI_SCORES)}, got {self.roi_score!r}")
        if self.signature not in ("texture", "all"):
            raise InvalidInput(f"signature must be 'texture' or 'all', got {self.signature!r}")
        Cs = list(self.Cs)
        if not Cs or any(not isinstance(c, (int, float)) or not np.isfinite(c) or c <= 0 for c in Cs):
            raise InvalidInput(f"Cs must be positive numbers, got {self.Cs!r}")
        if isinstance(self.inner_folds, bool) or not isinstance(self.inner_folds, int) or self.inner_folds < 2:
            raise InvalidInput(f"inner_folds must be an integer ≥ 2, got {self.inner_folds!r}")
        if self.max_patches is not None and (not isinstance(self.max_patches, int) or self.max_patches < 10):
            raise InvalidInput(f"max_patches must be None or an integer ≥ 10, got {self.max_patches!r}")
        terms = [t.iri for t in paper_terms()] if self.terms is None else [str(t) for t in self.terms]
        if len(terms) != k:
            raise InvalidInput(f"Y has {k} term columns but there are {len(terms)} terms"
                               + (" (the default is the paper's terms; pass terms=...)" if self.terms is None else ""))
        if len(set(terms)) != len(terms):
            raise InvalidInput("terms must be distinct")
        defaults = paper_patch_kinds()
        given = dict(self.patch_kinds or {})
        kinds = {}
        for t in terms:
            kind = given.get(t, defaults.get(t, ALL))
            if kind not in (MARGIN, INTERNAL, ALL):
                raise InvalidInput(f"patch kind of {t} must be 'margin', 'internal' or 'all', got {kind!r}")
            kinds[t] = kind
        cfg = self.feature_config
        if cfg is not None:
            if not isinstance(cfg, FeatureConfig):
                raise InvalidInput(f"feature_config must be a FeatureConfig, got {type(cfg).__name__}")
            if len(feature_names(cfg)) != D:
                raise InvalidInput(f"the data has {D} features but feature_config gives {len(feature_names(cfg))}")
        elif len(feature_names(FeatureConfig())) == D:
            cfg = FeatureConfig()
        return terms, kinds, cfg

    # ------------------------------------------------------------------ fitting
    def fit(self, X, Y, *, patches=None, patch_kinds=None, patch_case=None, groups=None, case_ids=None):
        """Fit one model per term.

        Parameters
        ----------
        X : array (N, D)
            ROI feature vectors (:func:`semgraph.features.extract`); used for C choice and calibration.
        Y : array (N, k)
            Term labels of the ROIs (≥ 0.5 = positive).
        patches : array (P, D), optional
            Patch feature vectors (:func:`semgraph.features.extract_patches`) of all ROIs, stacked. Without them
            the SVMs learn from the ROI vectors directly.
        patch_kinds : array (P,) of {'margin', 'internal'}, optional
        patch_case : array (P,) of int
            Index in ``X`` of the ROI each patch comes from; required with ``patches``.
        groups : array (N,), optional
            Patient of each ROI (inner folds never split a patient). Default: each ROI alone.
        case_ids : sequence of str, optional
            Recorded as :attr:`training_cases_`.

        Returns
        -------
        self
        """
        data = prepare_data(X, Y, patches, patch_kinds, patch_case, groups)
        N, D = data.X.shape
        terms, kinds, cfg = self._check_params(data.Y.shape[1], D)
        self.n_features_in_ = D
        self.terms_ = terms
        self.feature_config_ = cfg
        self.mean_ = data.patches.mean(axis=0)
        sd = data.patches.std(axis=0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        Zp = (data.patches - self.mean_) / self.scale_
        Zx = (data.X - self.mean_) / self.scale_
        means = _kind_means(Zp, data.kinds, data.case, Zx) if self.roi_score == "patch_mean" else None
        k = len(terms)
        self.coef_ = np.zeros((k, D))
        self.intercept_ = np.zeros(k)
        self.C_ = np.full(k, np.nan)
        self.calibration_ = []
        self.kinds_ = []
        groups = self.exclusive_positions(terms)
        rng = np.random.default_rng(self.random_state)
        oof = np.zeros((N, k))
        for i, term in enumerate(terms):
            result = self._fit_term(i, term, kinds[term], data, Zp, Zx, rng, means)
            self.kinds_.append(result[0])
            self.coef_[i], self.intercept_[i], self.C_[i] = result[1], result[2], result[3]
            oof[:, i] = result[4]
        self.calibration_, self.groups_ = fit_calibrations(oof, data.Y, self.calibration, terms, groups,
                                                           constant=[kd == "constant" for kd in self.kinds_])
        if cfg is not None and self.signature == "texture":
            names = feature_names(cfg)
            dims = [j for j, n in enumerate(names) if not n.startswith("hist_") and n not in MARGIN_FEATURE_NAMES]
        else:
            dims = list(range(D))
        self.signature_dims_ = np.array(dims, dtype=np.intp)
        W = self.coef_[:, self.signature_dims_]
        norms = np.linalg.norm(W, axis=1, keepdims=True)
        self.signatures_ = np.divide(W, norms, out=np.zeros_like(W), where=norms > 0)
        self.training_cases_ = [str(c) for c in case_ids] if case_ids is not None else [str(j) for j in range(N)]
        if len(self.training_cases_) != N:
            raise InvalidInput(f"case_ids must have {N} entries, got {len(self.training_cases_)}")
        self.ood_ = fit_feature_summary(data.X, data.groups, texture_dims=texture_dims(cfg, D))
        self.fitted_at_ = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.version_ = f"{self.fitted_at_}-{self._content_hash()[:12]}"
        return self

    def _constant(self, term: str, y: np.ndarray, why: str):
        p = (y.sum() + 1.0) / (len(y) + 2.0)
        warnings.warn(f"term {term}: {why}; it gets the constant prior likelihood {p:.3f}",
                      SingleClassTermWarning, stacklevel=3)
        return "constant", np.zeros(len(self.mean_)), 0.0, np.nan, np.zeros(len(y))

    def _fit_term(self, i, term, kind, data: PreparedData, Zp, Zx, rng, means=None):
        y_roi = data.Y[:, i]
        if y_roi.all() or not y_roi.any():
            return self._constant(term, y_roi, f"a single class ({int(y_roi[0])}) in the {len(y_roi)} training ROIs")
        used = kind
        sel = np.ones(len(Zp), dtype=bool) if kind == ALL else data.kinds == kind
        y_patch = y_roi[data.case]
        if not (y_patch[sel].any() and (~y_patch[sel]).any()):
            used, sel = ALL, np.ones(len(Zp), dtype=bool)
        idx = np.flatnonzero(sel)
        if self.max_patches is not None and len(idx) > self.max_patches:
            idx = _stratified_subsample(idx, y_patch[idx], self.max_patches, rng)
        Zr = Zx if means is None else means[used]  # what an ROI is scored on
        Cs = sorted(float(c) for c in self.Cs)
        # inner CV over patients: out-of-fold ROI scores per C
        oof = np.full((len(Cs), len(y_roi)), np.nan)
        n_groups = len(np.unique(data.groups))
        if n_groups >= 2:
            splitter = GroupKFold(n_splits=min(self.inner_folds, n_groups))
            for train_rois, test_rois in splitter.split(Zx, y_roi, data.groups):
                in_train = np.zeros(len(y_roi), dtype=bool)
                in_train[train_rois] = True
                fold_idx = idx[in_train[data.case[idx]]]
                yf = y_patch[fold_idx]
                if not (yf.any() and (~yf).any()):
                    continue
                for c_i, C in enumerate(Cs):
                    w, b = _svm(Zp[fold_idx], yf, C)
                    oof[c_i, test_rois] = Zr[test_rois] @ w + b
        best, best_auc = 0, -np.inf
        for c_i in range(len(Cs)):
            ok = np.isfinite(oof[c_i])
            if ok.sum() >= 2 and y_roi[ok].any() and (~y_roi[ok]).any():
                auc = roc_auc_score(y_roi[ok], oof[c_i, ok])
                if auc > best_auc + 1e-12:
                    best, best_auc = c_i, auc
        C = Cs[best]
        w, b = _svm(Zp[idx], y_patch[idx], C)
        scores = oof[best]
        ok = np.isfinite(scores)
        if ok.sum() < 2 or not (y_roi[ok].any() and (~y_roi[ok]).any()):
            scores = Zr @ w + b  # too little data for inner CV: in-sample
        return used, w, b, C, scores

    # ------------------------------------------------------------------ prediction
    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_features_in_ or not np.isfinite(X).all():
            raise InvalidInput(f"X must be a finite (N, {self.n_features_in_}) array, got shape {X.shape}")
        return X

    def decision_function(self, X, *, patches=None, patch_kinds=None, patch_case=None) -> np.ndarray:
        """Raw ROI scores ``z`` (N, k), 0 for constant terms.

        With ``roi_score='patch_mean'`` and the ROIs' patches (``patches`` (P, D), ``patch_kinds`` (P,),
        ``patch_case`` (P,) = row of ``X`` of each patch), the score of term i is the mean decision function over
        the ROI's patches of the term's kind (ROI vector when it has none); otherwise the decision function on
        the standardised ROI vectors.
        """
        X = self._check_X(X)
        Zx = (X - self.mean_) / self.scale_
        if getattr(self, "roi_score", "roi") != "patch_mean" or patches is None:
            return Zx @ self.coef_.T + self.intercept_
        P = np.asarray(patches, dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != self.n_features_in_ or not np.isfinite(P).all():
            raise InvalidInput(f"patches must be a finite (P, {self.n_features_in_}) array, got shape {P.shape}")
        case = np.zeros(len(P), dtype=int) if patch_case is None and len(X) == 1 else patch_case
        case = np.asarray(case) if case is not None else None
        if case is None or case.shape != (len(P),) or not np.issubdtype(case.dtype, np.integer) or \
                (len(case) and (case.min() < 0 or case.max() >= len(X))):
            raise InvalidInput(f"patch_case must hold {len(P)} ROI indices in [0, {len(X)})")
        kinds = np.full(len(P), ALL) if patch_kinds is None else np.asarray(patch_kinds).astype(str)
        if kinds.shape != (len(P),) or not set(np.unique(kinds)) <= {MARGIN, INTERNAL, ALL}:
            raise InvalidInput("patch_kinds must give 'margin', 'internal' or 'all' for every patch")
        means = _kind_means((P - self.mean_) / self.scale_, kinds, case, Zx)
        out = np.empty((len(X), len(self.terms_)))
        for i, kind in enumerate(self.kinds_):
            Z = Zx if kind == "constant" else means[kind]
            out[:, i] = Z @ self.coef_[i] + self.intercept_[i]
        return out

    def calibrate(self, Z) -> np.ndarray:
        """Map raw scores (N, k) to likelihoods in [0, 1]: each term's own calibration (non-decreasing), then the
        joint model of each exclusive group over its members' scores (their likelihoods sum to at most 1)."""
        check_is_fitted(self, "coef_")
        return apply_calibrations(Z, self.calibration_, getattr(self, "groups_", []), self.terms_)

    def predict_proba(self, X, **patches) -> np.ndarray:
        """Term likelihoods (N, k) in [0, 1], columns in :attr:`terms_` order (``patches`` as for
        :meth:`decision_function`)."""
        return self.calibrate(self.decision_function(X, **patches))

    def predict(self, X) -> np.ndarray:
        """0/1 term presence (N, k): likelihood ≥ 0.5."""
        return (self.predict_proba(X) >= 0.5).astype(int)

    def likelihoods(self, x, patches=None, patch_kinds=None) -> dict[str, float]:
        """``{term IRI: likelihood}`` of one ROI vector (and its patches, used with ``roi_score='patch_mean'``)."""
        extra = {}
        if patches is not None:
            patches = np.asarray(patches, dtype=np.float64).reshape(-1, self.n_features_in_)
            extra = {"patches": patches, "patch_kinds": patch_kinds, "patch_case": np.zeros(len(patches), dtype=int)}
        return {t: float(v) for t, v in zip(self.terms_, self.predict_proba(x, **extra)[0])}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # ------------------------------------------------------------------ persistence
    _ARRAYS = ("mean_", "scale_", "coef_", "intercept_", "C_", "signatures_", "signature_dims_")

    def _content_hash(self) -> str:
        h = hashlib.sha256()
        for name in self._ARRAYS[:-2]:
            h.update(np.ascontiguousarray(getattr(self, name), dtype=np.float64).tobytes())
        content = {"terms": self.terms_, "kinds": self.kinds_, "cal": self.calibration_}
        if getattr(self, "groups_", []):  # models saved before groups existed keep their hash
            content["groups"] = self.groups_
        h.update(json.dumps(content, sort_keys=True).encode())
        return h.hexdigest()

    def metadata(self) -> dict:
        """The JSON sidecar: version, parameters, feature configuration, vocabulary, training cases, versions."""
        check_is_fitted(self, "coef_")
        params = self.get_params()
        params["feature_config"] = None if self.feature_config is None else self.feature_config.to_dict()
        params["Cs"] = [float(c) for c in self.Cs]
        params["terms"] = None if self.terms is None else list(self.terms)
        params["patch_kinds"] = None if self.patch_kinds is None else dict(self.patch_kinds)
        params["exclusive_groups"] = None if self.exclusive_groups is None else {
            str(g): [str(t) for t in members] for g, members in dict(self.exclusive_groups).items()}
        return {
            "format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "version": self.version_,
            "fitted_at": self.fitted_at_, "content_sha256": self._content_hash(), "algorithm": "linear SVM one-vs-all "
            "(sklearn LinearSVC, squared hinge, primal, class_weight=balanced) + " + self.calibration
            + (" + multinomial per exclusive group" if self.groups_ else ""),
            "params": params,
            "feature_config": None if self.feature_config_ is None else self.feature_config_.to_dict(),
            "feature_names": None if self.feature_config_ is None else feature_names(self.feature_config_),
            "n_features": int(self.n_features_in_), "terms": list(self.terms_), "kinds": list(self.kinds_),
            "calibration": self.calibration_, "groups": self.groups_, "training_cases": list(self.training_cases_),
            "ood": None if getattr(self, "ood_", None) is None else self.ood_.metadata(),
            "libraries": library_versions(),
        }

    def save(self, path) -> Path:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (metadata), each atomically; return the ``.npz`` path."""
        check_is_fitted(self, "coef_")
        arrays = {n: getattr(self, n) for n in self._ARRAYS}
        if getattr(self, "ood_", None) is not None:
            arrays.update(self.ood_.arrays())
        return write_model(path, arrays, self.metadata())

    @classmethod
    def load(cls, path, *, feature_config: FeatureConfig | None = None) -> TermModels:
        """Read a model written by :meth:`save`.

        Raises
        ------
        NotFound
            Either file is missing.
        InvalidInput
            Not a term-model file, a content hash that does not match, or (with ``feature_config``) a model
            trained on other features.
        """
        npz, meta = read_metadata(path, feature_config=feature_config)
        p = dict(meta["params"])
        p["feature_config"] = None if p["feature_config"] is None else feature_config_from_dict(p["feature_config"])
        p["Cs"] = tuple(p["Cs"])
        p.setdefault("roi_score", "roi")  # saved before the option existed
        p.setdefault("exclusive_groups", {})  # saved before groups existed: every term on its own
        model = cls(**p)
        with np.load(npz, allow_pickle=False) as arrays:
            for name in cls._ARRAYS:
                setattr(model, name, arrays[name])
            model.ood_ = None  # saved before the feature summary existed: the image-query feature check is skipped
            if meta.get("ood") is not None:
                model.ood_ = FeatureSummary.from_saved(arrays, meta["ood"], npz.name)
        model.terms_, model.kinds_ = list(meta["terms"]), list(meta["kinds"])
        model.calibration_ = meta["calibration"]
        model.groups_ = meta.get("groups", [])
        model.feature_config_ = None if meta["feature_config"] is None else feature_config_from_dict(
            meta["feature_config"])
        model.n_features_in_ = int(meta["n_features"])
        model.training_cases_ = list(meta["training_cases"])
        model.fitted_at_, model.version_ = meta["fitted_at"], meta["version"]
        if model._content_hash() != meta["content_sha256"]:
            raise InvalidInput(f"{npz} does not match its sidecar {model_paths(npz)[1].name} "
                               "(content hash differs)")
        return model


def fit_calibrations(scores, labels, method: str, terms: Sequence[str], groups: Sequence[tuple[str, list[int]]],
                     constant: Sequence[bool] | None = None) -> tuple[list[dict], list[dict]]:
    """``(calibration_, groups_)`` fitted on out-of-fold raw scores (N, k) and 0/1 labels (N, k): per term a
    ``method`` map ('platt' or 'isotonic'; the Laplace prior for a term with one class or marked ``constant``),
    per exclusive group ``(name, positions)`` its joint model. NaN scores (ROIs no fold scored) are left out."""
    S = np.asarray(scores, dtype=np.float64)
    Y = np.asarray(labels) >= 0.5
    constant = [False] * S.shape[1] if constant is None else list(constant)
    calibrations = []
    for i in range(S.shape[1]):
        ok = np.isfinite(S[:, i])
        y = Y[ok, i]
        if constant[i] or not (y.any() and (~y).any()):
            calibrations.append({"kind": "constant", "p": float((Y[:, i].sum() + 1.0) / (len(Y) + 2.0))})
        elif method == "platt":
            a, b = platt_fit(S[ok, i], y)
            calibrations.append({"kind": "platt", "a": a, "b": b})
        else:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            iso.fit(S[ok, i], y.astype(np.float64))
            calibrations.append({"kind": "isotonic", "x": [float(v) for v in iso.X_thresholds_],
                                 "y": [float(v) for v in iso.y_thresholds_]})
    joint = [{"name": name, "terms": [terms[i] for i in members], **fit_group(S[:, members], Y[:, members])}
             for name, members in groups]
    return calibrations, joint


def apply_calibrations(Z, calibrations: Sequence[dict], groups: Sequence[dict], terms: Sequence[str]) -> np.ndarray:
    """Likelihoods (N, k) in [0, 1] of raw scores (N, k) under :func:`fit_calibrations`' maps."""
    Z = np.atleast_2d(np.asarray(Z, dtype=np.float64))
    out = np.empty_like(Z)
    for i, cal in enumerate(calibrations):
        if cal["kind"] == "platt":
            out[:, i] = sigmoid(cal["a"] * Z[:, i] + cal["b"])
        elif cal["kind"] == "isotonic":
            out[:, i] = np.interp(Z[:, i], cal["x"], cal["y"])
        else:
            out[:, i] = cal["p"]
    position = {t: i for i, t in enumerate(terms)}
    for group in groups:
        members = [position[t] for t in group["terms"]]
        out[:, members] = group_likelihoods(group, Z[:, members])
    return np.clip(out, 0.0, 1.0)


def _kind_means(Zp: np.ndarray, kinds: np.ndarray, case: np.ndarray, Zx: np.ndarray) -> dict[str, np.ndarray]:
    """Per patch kind ('margin', 'internal', 'all'): the (N, D) mean patch vector of each ROI, its ROI vector
    ``Zx`` where it has no patch of that kind."""
    N = len(Zx)
    out = {}
    for kind in (MARGIN, INTERNAL, ALL):
        sel = np.ones(len(Zp), dtype=bool) if kind == ALL else kinds == kind
        idx, rows = case[sel], Zp[sel]
        counts = np.bincount(idx, minlength=N).astype(np.float64)
        sums = np.stack([np.bincount(idx, weights=rows[:, j], minlength=N) for j in range(Zx.shape[1])], axis=1)
        has = counts > 0
        mean = Zx.copy()
        mean[has] = sums[has] / counts[has, None]
        out[kind] = mean
    return out


def _svm(Z: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    svm = LinearSVC(C=C, loss="squared_hinge", dual=False, class_weight="balanced", max_iter=2000, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm.fit(Z, y.astype(int))
    return svm.coef_[0].copy(), float(svm.intercept_[0])


def _stratified_subsample(idx: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    keep = []
    for cls_ in (False, True):
        members = idx[y == cls_]
        share = max(1, round(size * len(members) / len(idx)))
        keep.append(members if len(members) <= share else rng.choice(members, share, replace=False))
    return np.sort(np.concatenate(keep))


def roi_likelihoods(model, image_hu, mask) -> dict[str, float]:
    """Term likelihoods of one region, predicted exactly as ingest predicts them (the model's feature
    configuration, one transform, ROI vector plus patch scores); ``{term IRI: likelihood}``."""
    config = getattr(model, "feature_config_", None)
    if config is None:
        raise InvalidInput(f"model {model.version_} has no feature configuration; it cannot predict from images")
    feats = extract_all(image_hu, mask, config, allow_small=True, min_area=MIN_ROI_AREA)
    return model.likelihoods(feats.vector, feats.patches.features, feats.patches.kinds)
