"""Figures of an evaluation (matplotlib, Agg backend), in the style of Kurtz et al. 2014 (Fig. 5 and 6).

- NDCG@K against K, one line style per feedback round: the mean over all runs of each setting with its 95 %
  bootstrap interval (:func:`ndcg_figure`), and per query of the example run (:func:`ndcg_per_query_figure`);
- the result grid of the example query, one row per round (:func:`result_grid_figure`);
- the term dendrograms before and after feedback, the merges found in one tree only highlighted
  (:func:`dendrogram_figure`).

Each ``*_figure`` function returns the matplotlib Figure; the matching ``plot_*`` function saves it as a PNG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

from semgraph.errors import InvalidInput
from semgraph.imaging import Thumbnail
from semgraph.retrieval import hsbd

__all__ = [
    "changed_merges",
    "dendrogram_figure",
    "merge_clusters",
    "ndcg_figure",
    "ndcg_per_query_figure",
    "plot_dendrograms",
    "plot_ndcg_curves",
    "plot_ndcg_per_query",
    "plot_result_grid",
    "result_grid_figure",
    "round_style",
    "scipy_linkage",
]

_LINESTYLES = ("-", "--", "-.", ":")
_MARKERS = ("", "o", "s")
#: Colour of a dendrogram merge that the other tree does not have, and of one both trees have.
CHANGED, UNCHANGED = "darkorange", "dimgray"
#: Frames of the result grid: the query, a result of its diagnosis, a result of another diagnosis.
QUERY_FRAME, RELEVANT_FRAME, IRRELEVANT_FRAME = "royalblue", "green", "red"
_OUTLINE = "#ffd600"  # the lesion outline (yellow, as in the web app)


def _save(fig: Figure, path, dpi: int = 110) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------------------
# NDCG curves
# ---------------------------------------------------------------------------------------------------------------


def round_style(t: int) -> dict:
    """Line properties of feedback round ``t`` (0..11): solid, dashed, dash-dot, dotted, then the same with circle
    and square markers; a colour of its own for every round up to 9."""
    if not 0 <= t < len(_LINESTYLES) * len(_MARKERS):
        raise InvalidInput(f"no line style for round {t}")
    return {"linestyle": _LINESTYLES[t % len(_LINESTYLES)], "marker": _MARKERS[t // len(_LINESTYLES)],
            "color": f"C{t % 10}"}


def _round_lines(ax, curves: np.ndarray) -> list[Line2D]:
    """``curves[t]`` (NDCG@1..K after round t) against K, one line per round, labelled "round t"."""
    ks = np.arange(1, curves.shape[1] + 1)
    return [ax.plot(ks, curve, label=f"round {t}", lw=1.3, markersize=3, markevery=4, **round_style(t))[0]
            for t, curve in enumerate(curves)]


def _panels(titles: Sequence[str], ylabel: str, cols: int = 4) -> tuple[Figure, list]:
    """A grid of NDCG panels, one per title (K on x, [0, 1] on y), the surplus cells hidden."""
    if not titles:
        raise InvalidInput("nothing to plot.")
    cols = min(cols, len(titles))
    rows = -(-len(titles) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, sharey=True)
    for ax, title in zip(axes.ravel(), titles):
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("K")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(titles):]:
        ax.axis("off")
    axes[0, 0].set_ylabel(ylabel)
    return fig, list(axes.ravel()[:len(titles)])


def ndcg_figure(results: dict, settings: Sequence[str] | None = None, *, residual: bool = False) -> Figure:
    """One panel per setting (default: all): the mean NDCG@K over all runs against K, one line style per round,
    and its 95 % bootstrap interval as a band for round 0 and the last round (``results["settings"][name]
    ["interval"]`` of :func:`semgraph.evaluation.compare`); ``residual``: on the residual collection."""
    names = list(settings) if settings is not None else list(results["settings"])
    unknown = [name for name in names if name not in results["settings"]]
    if unknown:
        raise InvalidInput(f"unknown setting {unknown[0]!r}.")
    key = "residual" if residual else "ndcg"
    fig, axes = _panels(names, f"mean {'residual ' if residual else ''}NDCG@K")
    for ax, name in zip(axes, names):
        interval = results["settings"][name]["interval"]
        mean, low, high = (np.array(interval[key][part], dtype=np.float64) for part in ("mean", "low", "high"))
        lines = _round_lines(ax, mean)
        for t, lo, hi in zip(interval["rounds"], low, high):
            ax.fill_between(lines[t].get_xdata(), lo, hi, color=lines[t].get_color(), alpha=0.15, lw=0)
    axes[0].legend(fontsize=7)
    fig.suptitle("mean over all runs (query × seed); bands: 95 % bootstrap intervals of round 0 and of the last "
                 "round", fontsize=8)
    fig.tight_layout()
    return fig


def plot_ndcg_curves(results: dict, path, settings: Sequence[str] | None = None, *, residual: bool = False) -> Path:
    """Save :func:`ndcg_figure` to ``path``; returns ``path``."""
    return _save(ndcg_figure(results, settings, residual=residual), path)


def ndcg_per_query_figure(example: dict, *, max_queries: int = 10) -> Figure:
    """Fig. 5 of the paper: one panel per query of the example run of :func:`semgraph.evaluation.compare` (its
    first ``max_queries``), NDCG@K against K after every round, one line style per round."""
    curves = np.array(example["ndcg_per_query"], dtype=np.float64)[:max_queries]
    fig, axes = _panels([f"query {q}" for q in example["queries"][:len(curves)]], "NDCG@K", cols=5)
    for ax, curve in zip(axes, curves):
        _round_lines(ax, curve)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{example['setting']}, seed {example['seed']}: NDCG@K per query", fontsize=9)
    fig.tight_layout()
    return fig


def plot_ndcg_per_query(example: dict, path, *, max_queries: int = 10) -> Path:
    """Save :func:`ndcg_per_query_figure` to ``path``; returns ``path``."""
    return _save(ndcg_per_query_figure(example, max_queries=max_queries), path)


# ---------------------------------------------------------------------------------------------------------------
# dendrograms
# ---------------------------------------------------------------------------------------------------------------


def scipy_linkage(dissimilarity) -> np.ndarray:
    """The :func:`semgraph.retrieval.hsbd.dendrogram` of ``dissimilarity`` as a scipy linkage matrix ``Z`` ((k−1) × 4)."""
    tree = hsbd.dendrogram(dissimilarity)
    k = tree.k
    counts = tree.membership.sum(axis=1)
    return np.array([[u, v, h, counts[k + l]] for l, ((u, v), h) in enumerate(zip(tree.merges, tree.heights))],
                    dtype=np.float64).reshape(-1, 4)


def merge_clusters(dissimilarity) -> list[frozenset[int]]:
    """The cluster of terms (leaf indices) that each merge of the HSBD dendrogram of ``dissimilarity`` forms, in
    merge order (entry ``l`` is scipy's node ``k + l``)."""
    tree = hsbd.dendrogram(dissimilarity)
    return [frozenset(np.flatnonzero(row).tolist()) for row in tree.membership[tree.k:]]


def changed_merges(before, after) -> tuple[set[frozenset[int]], set[frozenset[int]]]:
    """The clusters merged in the dendrogram of ``before`` but not in that of ``after``, and the reverse."""
    old, new = set(merge_clusters(before)), set(merge_clusters(after))
    return old - new, new - old


def _link_colour(clusters: list[frozenset[int]], changed: set[frozenset[int]]) -> Callable[[int], str]:
    """scipy's ``link_color_func``: :data:`CHANGED` for the node of a changed cluster, else :data:`UNCHANGED`."""
    k = len(clusters) + 1
    return lambda node: CHANGED if clusters[node - k] in changed else UNCHANGED


def dendrogram_figure(before, after, labels: Sequence[str], *,
                      titles: tuple[str, str] = ("before feedback", "after feedback")) -> Figure:
    """The HSBD dendrograms of two term dissimilarity matrices side by side, leaves labelled with the terms; the
    merges (clusters of terms) that only one of the trees has are drawn in :data:`CHANGED`, with a legend."""
    for D in (before, after):
        if np.asarray(D).shape[0] < 2:
            raise InvalidInput("a dendrogram needs at least two terms.")
    fig, axes = plt.subplots(1, 2, figsize=(12, max(4.0, 0.28 * len(labels) + 2.0)))
    for ax, D, title, changed in zip(axes, (before, after), titles, changed_merges(before, after)):
        scipy_dendrogram(scipy_linkage(D), labels=list(labels), orientation="right", ax=ax, leaf_font_size=7,
                         link_color_func=_link_colour(merge_clusters(D), changed))
        ax.set_title(f"{title}\n{len(changed)} merge(s) not in the other tree", fontsize=9)
        ax.set_xlabel("merge height")
    handles = [Line2D([], [], color=CHANGED, label="merge (cluster of terms) in this tree only"),
               Line2D([], [], color=UNCHANGED, label="merge in both trees")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_dendrograms(before, after, labels: Sequence[str], path, *,
                     titles: tuple[str, str] = ("before feedback", "after feedback")) -> Path:
    """Save :func:`dendrogram_figure` to ``path``; returns ``path``."""
    return _save(dendrogram_figure(before, after, labels, titles=titles), path)


# ---------------------------------------------------------------------------------------------------------------
# result grid
# ---------------------------------------------------------------------------------------------------------------


def _tile(ax, case_id: str, image: Thumbnail | None, frame: str, caption: str) -> None:
    """The case's thumbnail with its lesion outlined (a plain tile labelled with the case id without one), framed in
    the colour ``frame``."""
    if image is None:
        ax.imshow(np.full((8, 8), 0.85), cmap="gray", vmin=0, vmax=1)
        ax.text(3.5, 3.5, case_id, ha="center", va="center", fontsize=6)
    else:
        ax.imshow(image.grey, cmap="gray", vmin=0, vmax=1)
        if image.mask is not None and image.mask.any():
            ax.contour(image.mask.astype(np.float64), levels=[0.5], colors=_OUTLINE, linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(frame)
        spine.set_linewidth(4)
    ax.set_title(caption, fontsize=6)


def result_grid_figure(query_id: str, rankings: Sequence[Sequence[str]], relevant: Sequence[Sequence[bool]], *,
                       thumbnail: Callable[[str], Thumbnail | None] | None = None, n: int = 10,
                       title: str | None = None) -> Figure:
    """Fig. 6 of the paper: one row per round (``rankings[t]``, round 0 first), the query then the top ``n`` results
    of that round, each framed green when ``relevant[t][r]`` (the query's diagnosis) else red.

    ``thumbnail(case_id)`` (called once per case) gives the tile's image; without it, or when it returns None, the
    tile is a plain one labelled with the case id.
    """
    if len(rankings) != len(relevant) or any(len(r) != len(v) for r, v in zip(rankings, relevant)):
        raise InvalidInput("rankings and relevant must have the same shape.")
    if not rankings:
        raise InvalidInput("no round to draw.")
    cases = dict.fromkeys([query_id, *(c for ranking in rankings for c in ranking[:n])])
    images = {c: thumbnail(c) if thumbnail is not None else None for c in cases}
    fig, axes = plt.subplots(len(rankings), n + 1, figsize=(1.3 * (n + 1), 1.45 * len(rankings) + 0.5),
                             squeeze=False)
    for t, (row, ranking, marks) in enumerate(zip(axes, rankings, relevant)):
        for ax in row[1 + len(ranking[:n]):]:
            ax.axis("off")
        _tile(row[0], query_id, images[query_id], QUERY_FRAME, f"query {query_id}")
        row[0].set_ylabel(f"round {t}", fontsize=8)
        for r, (ax, case_id, ok) in enumerate(zip(row[1:], ranking, marks)):
            _tile(ax, case_id, images[case_id], RELEVANT_FRAME if ok else IRRELEVANT_FRAME, f"#{r + 1} {case_id}")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.text(0.5, 0.005, "frame: green = the query's diagnosis, red = another diagnosis; yellow: lesion outline",
             ha="center", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def plot_result_grid(query_id: str, rankings: Sequence[Sequence[str]], relevant: Sequence[Sequence[bool]], path, *,
                     thumbnail: Callable[[str], Thumbnail | None] | None = None, n: int = 10,
                     title: str | None = None) -> Path:
    """Save :func:`result_grid_figure` to ``path``; returns ``path``."""
    return _save(result_grid_figure(query_id, rankings, relevant, thumbnail=thumbnail, n=n, title=title), path,
                 dpi=100)
