"""Out-of-fold evaluation of the term models: leave-one-patient-out (or grouped k-fold) ROC AUC per term.

Each fold's model gives raw scores of its held-out ROIs; the scores of all folds are pooled and one calibration
(per term, and the joint model of each exclusive group) is fitted on them and applied to them. A calibration fitted
per fold follows its training fold's prevalence, which with one patient per fold is lower exactly when the
held-out ROI is positive, so it drags the pooled AUC of a weak term below 0.5 (``auc_fold`` keeps that number).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput
from semgraph.progress import track
from semgraph.terms.models import (
    SingleClassTermWarning,
    TermModels,
    apply_calibrations,
    fit_calibrations,
    prepare_data,
)

__all__ = ["LopoResult", "lopo_auc", "per_term_auc"]


@dataclass
class LopoResult:
    """Out-of-fold evaluation of term models.

    Attributes
    ----------
    terms : list of str
    auc : ndarray (k,)
        Per-term ROC AUC of the out-of-fold likelihoods against the labels (NaN when a term has one class).
    likelihoods : ndarray (N, k)
        Out-of-fold likelihoods: the raw scores of models that never saw the ROI's patient, under the calibration
        fitted on the pooled out-of-fold scores (monotone per term outside exclusive groups, joint within them).
    auc_raw : ndarray (k,)
        The same AUC on the raw (uncalibrated) out-of-fold decision scores.
    scores : ndarray (N, k)
        Out-of-fold raw decision scores.
    positives : ndarray (k,) of int
        Positive ROIs per term.
    scheme : str
        'leave-one-patient-out' or 'GroupKFold(n)'.
    n_folds : int
    calibration, groups : list of dict
        The pooled calibration (``calibration_`` and ``groups_`` of :func:`semgraph.terms.models.fit_calibrations`).
    auc_fold : ndarray (k,)
        The AUC of the likelihoods each fold's model calibrated itself (the protocol before pooling).
    """

    terms: list[str]
    auc: np.ndarray
    likelihoods: np.ndarray
    auc_raw: np.ndarray
    scores: np.ndarray
    positives: np.ndarray
    scheme: str
    n_folds: int
    calibration: list[dict]
    groups: list[dict]
    auc_fold: np.ndarray

    @property
    def mean_auc(self) -> float:
        return float(np.nanmean(self.auc)) if np.isfinite(self.auc).any() else float("nan")


def per_term_auc(Y, scores) -> np.ndarray:
    """ROC AUC per column (NaN for a column whose labels have a single class)."""
    Y = np.asarray(Y) >= 0.5
    S = np.asarray(scores, dtype=np.float64)
    out = np.full(Y.shape[1], np.nan)
    for i in range(Y.shape[1]):
        if Y[:, i].any() and (~Y[:, i]).any():
            out[i] = roc_auc_score(Y[:, i], S[:, i])
    return out


def lopo_auc(X, Y, groups, *, patches=None, patch_kinds=None, patch_case=None, estimator: TermModels | None = None,
             n_splits: int | None = None, n_jobs: int = 1, progress: bool = False) -> LopoResult:
    """Leave-one-patient-out (or grouped k-fold) cross-validation of :class:`TermModels`.

    Parameters
    ----------
    X, Y, patches, patch_kinds, patch_case
        As for :meth:`TermModels.fit`, for the whole cohort.
    groups : array (N,)
        Patient of each ROI; a patient's ROIs are always in the same fold.
    estimator : TermModels, optional
        Unfitted template (cloned per fold). Default ``TermModels()``.
    n_splits : int, optional
        None: one fold per patient. An integer: ``GroupKFold(n_splits)`` (for large cohorts).
    n_jobs : int
        Folds fitted in parallel (joblib).

    Returns
    -------
    LopoResult
    """
    template = TermModels() if estimator is None else estimator
    data = prepare_data(X, Y, patches, patch_kinds, patch_case, groups)
    if groups is None:
        raise InvalidInput("lopo_auc needs the patient of each ROI (groups)")
    n_groups = len(np.unique(data.groups))
    if n_groups < 2:
        raise InvalidInput("cross-validation needs at least two patients")
    if n_splits is None:
        splitter, scheme = LeaveOneGroupOut(), "leave-one-patient-out"
    else:
        if not isinstance(n_splits, int) or not 2 <= n_splits <= n_groups:
            raise InvalidInput(f"n_splits must be an integer in [2, {n_groups}], got {n_splits!r}")
        splitter, scheme = GroupKFold(n_splits=n_splits), f"GroupKFold({n_splits})"
    splits = list(splitter.split(data.X, groups=data.groups))

    def run(train, test):
        in_train = np.zeros(len(data.X), dtype=bool)
        in_train[train] = True
        keep = in_train[data.case]
        remap = np.full(len(data.X), -1)
        remap[train] = np.arange(len(train))
        model = clone(template)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SingleClassTermWarning)
            model.fit(data.X[train], data.Y[train], patches=data.patches[keep], patch_kinds=data.kinds[keep],
                      patch_case=remap[data.case[keep]], groups=data.groups[train])
        in_test = np.zeros(len(data.X), dtype=bool)
        in_test[test] = True
        sel = in_test[data.case]
        back = np.full(len(data.X), -1)
        back[test] = np.arange(len(test))
        z = model.decision_function(data.X[test], patches=data.patches[sel], patch_kinds=data.kinds[sel],
                                    patch_case=back[data.case[sel]])
        return test, model.calibrate(z), z

    jobs = (delayed(run)(tr, te) for tr, te in track(splits, desc="folds", unit="fold", enabled=progress))
    out = np.full(data.Y.shape, np.nan)
    raw = np.full(data.Y.shape, np.nan)
    for test, proba, z in Parallel(n_jobs=n_jobs)(jobs):
        out[test], raw[test] = proba, z
    terms = [t.iri for t in paper_terms()] if template.terms is None else list(template.terms)
    calibration, groups = fit_calibrations(raw, data.Y, template.calibration, terms, template.exclusive_positions(terms))
    pooled = apply_calibrations(raw, calibration, groups, terms)
    return LopoResult(terms, per_term_auc(data.Y, pooled), pooled, per_term_auc(data.Y, raw), raw,
                      data.Y.sum(axis=0).astype(int), scheme, len(splits), calibration, groups,
                      per_term_auc(data.Y, out))
