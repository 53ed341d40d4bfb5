"""The term dendrogram of a session round as SVG (the dendrogram pages and ``/api/v1/sessions/<id>/dendrogram.svg``)."""

from __future__ import annotations

from xml.sax.saxutils import escape

from semgraph.retrieval import hsbd


def dendrogram_svg(D, labels, terms=None, highlight=(), *, title: str = "") -> str:
    """A horizontal dendrogram of the terms under ``D`` (:func:`semgraph.retrieval.hsbd.dendrogram`) as SVG text.

    Leaves are rows (labels on the right), merge heights run along x from 0 (left) to the root's height; labels of
    ``highlight`` terms are drawn bold in orange. Every text is XML-escaped.
    """
    tree = hsbd.dendrogram(D)
    k = tree.k
    terms = list(terms) if terms is not None else list(labels)
    children = {k + i: (int(a), int(b)) for i, (a, b) in enumerate(tree.merges)}

    def leaves(node: int) -> list[int]:
        if node < k:
            return [node]
        a, b = children[node]
        return leaves(a) + leaves(b)

    root = 2 * k - 2
    order = leaves(root) if k > 1 else [0]
    row_h, left, plot_w, label_w, top = 22, 20, 360, 260, 34 if title else 14
    top_h = max(float(tree.node_heights[root]), 1e-9)
    width, height = left + plot_w + label_w, top + row_h * k + 30
    y = {leaf: top + row_h * (i + 0.5) for i, leaf in enumerate(order)}

    def x(h: float) -> float:
        return left + plot_w * (1.0 - h / top_h)

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img">')]
    if title:
        parts.append(f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>')
    for node in range(k, 2 * k - 1):
        a, b = children[node]
        y[node] = (y[a] + y[b]) / 2.0
        xn = x(float(tree.node_heights[node]))
        for child in (a, b):
            xc = x(float(tree.node_heights[child]))
            parts.append(f'<path d="M{xc:.1f},{y[child]:.1f} H{xn:.1f} V{y[node]:.1f}" fill="none" '
                         'stroke="#456" stroke-width="1.5"/>')
    marked = set(highlight)
    for leaf in order:
        bold = terms[leaf] in marked
        parts.append(f'<text x="{x(0.0) + 6:.1f}" y="{y[leaf] + 4:.1f}"'
                     + (' font-weight="bold" fill="#c05600"' if bold else ' fill="#222"')
                     + f'>{escape(str(labels[leaf]))}</text>')
    axis_y = top + row_h * k + 8
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#888"/>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        h = top_h * (1 - frac)
        xt = left + plot_w * frac
        parts.append(f'<line x1="{xt:.1f}" y1="{axis_y}" x2="{xt:.1f}" y2="{axis_y + 4}" stroke="#888"/>'
                     f'<text x="{xt:.1f}" y="{axis_y + 16}" font-size="10" text-anchor="middle" '
                     f'fill="#555">{h:.2f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
