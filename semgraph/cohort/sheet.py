"""Contact sheet: a PNG grid of lesion crops with their diagnosis and terms, for eyeballing the generator."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import numpy as np

from semgraph.errors import InvalidInput

_ENH = {"none": "nonenhancing", "enhancing": "enhancing", "hypervascular": "hypervascular"}
_PAT = {"heterogeneous": "het. enh.", "homogeneous": "homog. enh.", "peripheral nodular": "periph. nodular"}


def caption(case) -> str:
    """Three short lines: diagnosis; margin; attenuation/enhancement/uniformity and other findings."""
    t = case.terms
    dx = case.diagnosis if case.metadata.appearance_profile == case.diagnosis else f"{case.diagnosis}*"
    enh = _ENH[t.enhancement] + (f", {_PAT[t.pattern]}" if t.pattern else "")
    extra = [t.uniformity[:5] + "."]
    if t.internal_nodules:
        extra.append("int. nodules")
    if not t.normal_perilesional:
        extra.append("halo")
    if t.abuts_capsule:
        extra.append("capsule")
    return f"{dx}\n{t.shape}, {t.definition}; {t.attenuation}\n{enh}; {', '.join(extra)}"


def _crop(case, min_half: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(case.mask)
    r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
    half = max(int(0.8 * max(r1 - r0, c1 - c0)), min_half)
    cr, cc = (r0 + r1) // 2, (c0 + c1) // 2
    h, w = case.hu.shape
    top, left = int(np.clip(cr - half, 0, max(h - 2 * half, 0))), int(np.clip(cc - half, 0, max(w - 2 * half, 0)))
    sl = (slice(top, top + 2 * half), slice(left, left + 2 * half))
    return case.hu[sl], case.mask[sl]


def contact_sheet(
    path: str | Path,
    cases: Iterable | None = None,
    *,
    n: int = 36,
    seed: int = 0,
    ncols: int = 6,
    window: tuple[float, float] = (40.0, 400.0),
    outline: bool = False,
    **iter_kwargs,
) -> Path:
    """Render up to ``n`` cases as a grid of lesion crops (CT window ``(level, width)``) and save it as PNG.

    ``cases`` defaults to ``iter_cases(n, seed, **iter_kwargs)``. Captions give the diagnosis (``*`` marks a lesion
    drawn from a mimic's profile) and the ground-truth terms. ``outline`` draws the mask contour in red.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from semgraph.cohort.stream import iter_cases

    if n <= 0 or ncols <= 0:
        raise InvalidInput("n and ncols must be positive")
    chosen = list(islice(iter_cases(n, seed, **iter_kwargs) if cases is None else cases, n))
    if not chosen:
        raise InvalidInput("no cases to draw")
    nrows = -(-len(chosen) // ncols)
    level, width = window
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 3.05 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, case in zip(axes.flat, chosen):
        img, m = _crop(case)
        ax.imshow(img, cmap="gray", vmin=level - width / 2, vmax=level + width / 2, interpolation="nearest")
        if outline:
            ax.contour(m, [0.5], colors="red", linewidths=0.6)
        ax.set_title(caption(case), fontsize=6.5, loc="left")
        ax.text(2, 2, f"{case.case_id} {case.metadata.diameter_mm:.0f} mm", color="yellow", fontsize=5.5, va="top")
    fig.tight_layout(pad=0.4)
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
