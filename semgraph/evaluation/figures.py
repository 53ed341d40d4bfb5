"""Figures of an evaluation (matplotlib, Agg backend): NDCG curves, dendrograms, a result grid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

from semgraph.errors import InvalidInput
from semgraph.retrieval import hsbd

__all__ = ["plot_dendrograms", "plot_ndcg_curves", "plot_result_grid", "scipy_linkage"]


def plot_ndcg_curves(results: dict, path, settings: Sequence[str] | None = None, *, residual: bool = False) -> Path:
    """One panel per setting: mean NDCG@K (± sd band over seeds) against K, one line per round. Returns ``path``."""
    names = list(settings) if settings is not None else list(results["settings"])
    if not names:
        raise InvalidInput("no setting to plot.")
    key = "residual" if residual else "ndcg"
    cols = min(4, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, sharey=True)
    for ax, name in zip(axes.ravel(), names):
        if name not in results["settings"]:
            raise InvalidInput(f"unknown setting {name!r}.")
        summary = results["settings"][name][key]
        mean = np.array(summary["mean"], dtype=float)
        sd = np.array(summary["sd"], dtype=float)
        ks = np.arange(1, mean.shape[1] + 1)
        for t in range(mean.shape[0]):
            ax.plot(ks, mean[t], label=f"round {t}", lw=1.4)
            ax.fill_between(ks, mean[t] - sd[t], mean[t] + sd[t], alpha=0.12)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("K")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("residual NDCG@K" if residual else "NDCG@K")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scipy_linkage(dissimilarity) -> np.ndarray:
    """The :func:`semgraph.retrieval.hsbd.dendrogram` of ``dissimilarity`` as a scipy linkage matrix ``Z`` ((k−1) × 4)."""
    tree = hsbd.dendrogram(dissimilarity)
    k = tree.k
    counts = tree.membership.sum(axis=1)
    return np.array([[u, v, h, counts[k + l]] for l, ((u, v), h) in enumerate(zip(tree.merges, tree.heights))],
                    dtype=np.float64).reshape(-1, 4)


def plot_dendrograms(before, after, labels: Sequence[str], path, *, titles=("before feedback", "after feedback")
                     ) -> Path:
    """The HSBD dendrograms of two term dissimilarity matrices side by side, leaves labelled with the terms."""
    fig, axes = plt.subplots(1, 2, figsize=(12, max(4.0, 0.28 * len(labels) + 1.5)))
    for ax, D, title in zip(axes, (before, after), titles):
        if np.asarray(D).shape[0] < 2:
            raise InvalidInput("a dendrogram needs at least two terms.")
        scipy_dendrogram(scipy_linkage(D), labels=list(labels), orientation="right", ax=ax, leaf_font_size=7,
                         color_threshold=0)
        ax.set_title(title)
        ax.set_xlabel("merge height")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_result_grid(query_id: str, ranked_ids: Sequence[str], relevant: Sequence[bool], path, *,
                     thumbnail: Callable[[str], np.ndarray | None] | None = None, n: int = 10, cols: int = 5,
                     title: str | None = None) -> Path:
    """The query and its top ``n`` results, framed green (same diagnosis) or red (different).

    ``thumbnail(case_id)`` returns a 2-D (grey) or H×W×3 array, or None; without it (or when it returns None) a
    grey tile with the case id is drawn, so the figure works without image files.
    """
    if len(ranked_ids) != len(relevant):
        raise InvalidInput("ranked_ids and relevant must have the same length.")
    shown = list(zip(ranked_ids, relevant))[:n]
    rows = 1 + int(np.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")

    def tile(ax, case_id, colour, caption):
        image = thumbnail(case_id) if thumbnail is not None else None
        if image is None:
            ax.imshow(np.full((8, 8), 0.85), cmap="gray", vmin=0, vmax=1)
            ax.text(3.5, 3.5, case_id, ha="center", va="center", fontsize=7)
        else:
            ax.imshow(np.asarray(image), cmap="gray" if np.asarray(image).ndim == 2 else None)
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(4)
        ax.set_title(caption, fontsize=7)

    tile(axes[0, 0], query_id, "royalblue", f"query {query_id}")
    for r, (case_id, ok) in enumerate(shown):
        tile(axes[1 + r // cols, r % cols], case_id, "green" if ok else "red", f"#{r + 1} {case_id}")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
