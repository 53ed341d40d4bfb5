"""Joint likelihoods of an exclusive group of terms (docs/algorithms.md §4.6).

A case has at most one term of an exclusive group (one attenuation, one margin contour ...). The group's m terms
are predicted together by a multinomial logistic regression over m + 1 outcomes, "none of them" and each term,
whose inputs are the m raw ROI scores of the terms' own models. Its probabilities sum to 1, so the group's
likelihoods sum to at most 1 and at most one of them can exceed 0.5. It is fitted on out-of-fold raw scores (the
same pooled inner cross-validation scores that calibrate the other terms), so it is a joint calibration.

Training targets: an ROI with no positive term of the group counts for "none"; one whose labels name several
terms of the group (reader disagreement) counts for each of them with weight 1/n, so the weights of every ROI sum
to 1. Everything is kept as plain lists, so the model files stay JSON + arrays (:mod:`semgraph.terms.model_files`).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

__all__ = ["fit_group", "group_likelihoods", "group_targets"]


def group_targets(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, outcomes, weights)``: the weighted training rows of the group model; outcome 0 is "none", outcome
    j + 1 is the group's term j (``labels`` (N, m) bool)."""
    labels = np.asarray(labels, dtype=bool)
    rows, outcomes, weights = [], [], []
    for r, row in enumerate(labels):
        positive = np.flatnonzero(row)
        if len(positive) == 0:
            rows.append(r), outcomes.append(0), weights.append(1.0)
        for j in positive:
            rows.append(r), outcomes.append(int(j) + 1), weights.append(1.0 / len(positive))
    return np.array(rows, dtype=np.intp), np.array(outcomes, dtype=np.intp), np.array(weights)


def fit_group(scores, labels, C: float = 1.0) -> dict:
    """Fit the group model on raw scores (N, m) and labels (N, m); rows with a missing (NaN) score are left out.

    Returns ``{"kind": "multinomial", "outcomes": [...], "coef": [[...]], "intercept": [...]}`` (one row per
    outcome seen in training), or ``{"kind": "prior", "p": [...]}`` (the weighted share of each outcome, Laplace
    smoothed) when fewer than two outcomes occur.
    """
    S = np.asarray(scores, dtype=np.float64)
    Y = np.asarray(labels, dtype=bool)
    m = S.shape[1]
    ok = np.isfinite(S).all(axis=1)
    rows, outcomes, weights = group_targets(Y[ok])
    if len(np.unique(outcomes)) < 2:
        counts = np.bincount(outcomes, weights=weights, minlength=m + 1)
        p = (counts[1:] + 1.0) / (counts.sum() + m + 1.0)
        return {"kind": "prior", "p": [float(v) for v in p]}
    model = LogisticRegression(C=C, max_iter=1000)
    model.fit(S[ok][rows], outcomes, sample_weight=weights)
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # sklearn keeps one row w; the softmax rows ±w/2 give the same probabilities
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    return {"kind": "multinomial", "outcomes": [int(o) for o in model.classes_], "coef": coef.tolist(),
            "intercept": intercept.tolist()}


def group_likelihoods(params: dict, scores) -> np.ndarray:
    """The group's term likelihoods (N, m) from raw scores (N, m); each row sums to at most 1."""
    S = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    m = S.shape[1]
    if params["kind"] == "prior":
        return np.tile(np.asarray(params["p"], dtype=np.float64), (len(S), 1))
    logits = S @ np.asarray(params["coef"]).T + np.asarray(params["intercept"])
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    out = np.zeros((len(S), m + 1))
    out[:, params["outcomes"]] = p
    return out[:, 1:]
