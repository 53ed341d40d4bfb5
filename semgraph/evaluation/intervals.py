"""Uncertainty of evaluation figures: percentile-bootstrap intervals over queries, and paired comparisons.

A figure of the protocol is a mean over runs (one run = one query of one seed, possibly of one cohort). The 95 %
interval of that mean is the 2.5th and 97.5th percentile of the means of ``resamples`` resamples of the runs drawn
with replacement (percentile bootstrap; the runs are treated as exchangeable, so queries drawn again under
another seed count as separate runs). Two settings run on the same queries are compared run by run: the share of
runs where one is better (above the other by more than ``tol``), worse, or tied, and the interval of the mean paired
difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semgraph.errors import InvalidInput

__all__ = ["Estimate", "PairedComparison", "bootstrap_mean", "bootstrap_means", "compare_paired"]

#: Differences of NDCG smaller than this count as ties.
TIE = 1e-9


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` runs and its bootstrap interval ``[low, high]`` (``level``, default 95 %)."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict:
        return {"mean": round(self.mean, 6), "low": round(self.low, 6), "high": round(self.high, 6), "n": self.n}

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class PairedComparison:
    """``a`` against ``b`` on the same runs: the mean difference a − b with its interval, and the share of runs
    where a is better, worse or tied."""

    difference: Estimate
    better: float
    worse: float
    ties: float

    def as_dict(self) -> dict:
        return {"difference": self.difference.as_dict(), "better": round(self.better, 6),
                "worse": round(self.worse, 6), "ties": round(self.ties, 6)}


def _values(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        raise InvalidInput("no defined value to summarise")
    return v


def _percentile_interval(columns: np.ndarray, level: float, resamples: int, seed: int) -> np.ndarray:
    """(low, high) of every column of ``columns`` (runs × m, no NaN): percentiles of the column means of
    ``resamples`` resamples of the rows, the same resamples for every column."""
    if not 0.0 < level < 1.0:
        raise InvalidInput(f"level must be in (0, 1), got {level}")
    n = columns.shape[0]
    rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    counts = np.bincount((np.arange(resamples)[:, None] * n + rows).ravel(), minlength=resamples * n)
    means = counts.reshape(resamples, n) @ columns / n
    tail = (1.0 - level) / 2.0 * 100.0
    return np.percentile(means, [tail, 100.0 - tail], axis=0)


def bootstrap_mean(values, *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> Estimate:
    """The mean of ``values`` (NaN left out) with its percentile-bootstrap interval."""
    v = _values(values)
    (low,), (high,) = _percentile_interval(v[:, None], level, resamples, seed)
    return Estimate(float(v.mean()), float(low), float(high), int(v.size))


def bootstrap_means(values, *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """:func:`bootstrap_mean` of every column of ``values`` (runs along axis 0, any shape after it) at once.

    Returns an array of shape ``(3, *values.shape[1:])``: the means, lows and highs; NaN where a column has no
    defined value. Each column is resampled as :func:`bootstrap_mean` resamples it alone (columns with the same
    undefined runs share their resamples), so it gets the same interval up to rounding.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 1 or v.shape[0] == 0:
        raise InvalidInput("need at least one run")
    flat = v.reshape(v.shape[0], -1)
    out = np.full((3, flat.shape[1]), np.nan)
    defined = ~np.isnan(flat)
    patterns, group = np.unique(defined.T, axis=0, return_inverse=True)
    for g, keep in enumerate(patterns):
        if keep.any():
            cols = np.flatnonzero(group.ravel() == g)
            sub = flat[keep][:, cols]
            out[0, cols] = sub.mean(axis=0)
            out[1:, cols] = _percentile_interval(sub, level, resamples, seed)
    return out.reshape((3, *v.shape[1:]))


def compare_paired(a, b, *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> PairedComparison:
    """``a`` against ``b``, two arrays of the same runs (NaN in either: that run left out)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InvalidInput(f"paired values need the same runs, got {a.size} and {b.size}")
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    if d.size == 0:
        raise InvalidInput("no run has both values")
    return PairedComparison(bootstrap_mean(d, level=level, resamples=resamples, seed=seed),
                            float(np.mean(d > TIE)), float(np.mean(d < -TIE)), float(np.mean(np.abs(d) <= TIE)))
