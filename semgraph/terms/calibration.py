"""Monotone maps from a term model's raw ROI score to a likelihood in [0, 1]: Platt's sigmoid (fitted here)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

__all__ = ["platt_fit", "sigmoid"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + e^−x)``, elementwise, without overflow."""
    out = np.empty_like(x, dtype=np.float64)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def platt_fit(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt's sigmoid ``σ(α z + β)`` fitted to (score, 0/1 label) pairs, with α ≥ 0 (so it never decreases).

    Uses Platt's smoothed targets ``(n₊ + 1)/(n₊ + 2)`` and ``1/(n₋ + 2)`` and minimises the log loss (L-BFGS-B).
    """
    z = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) >= 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    t = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    scale = float(np.std(z)) or 1.0

    def loss(p):
        m = p[0] * z / scale + p[1]
        # log(1 + e^m) − t·m, and its gradient
        value = np.logaddexp(0.0, m) - t * m
        g = sigmoid(m) - t
        return value.sum(), np.array([(g * z / scale).sum(), g.sum()])

    prior = np.log((n_pos + 1.0) / (n_neg + 1.0))
    res = minimize(loss, np.array([1.0, prior]), jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
    return float(res.x[0] / scale), float(res.x[1])
