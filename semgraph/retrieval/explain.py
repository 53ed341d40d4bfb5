"""Explanations of HSBD distances: the dendrogram nodes (groups of terms) that contribute most to a distance.

HSBD is a sum over the 2k-1 dendrogram nodes (docs/algorithms.md section 1.3),

.. math:: \\mathrm{HSBD}(a, b) = \\sum_v c_v(a, b), \\qquad c_v(a, b) = |(M a)_v - (M b)_v| = W_v |S_v(a) - S_v(b)|,

with ``S_v(x)`` the sum of ``x`` over the leaves of node ``v``. :func:`contributions` lists every share of one pair
(the reference); :func:`top_contributions` gives the largest non-zero shares of one query against many rows in one
vectorised pass (one projection of all rows, one sort), which is what a search needs for its hits.
Projections are :meth:`semgraph.retrieval.hsbd.Dendrogram.project_rows` (element-wise float64), so both give the same values.
With term weights ``w`` (docs/algorithms.md §5.7) the distance is HSBD(w ⊙ a, w ⊙ b): the callers
(:meth:`semgraph.retrieval.engine.Engine.explain`) pass the weighted vectors, whose shares then sum to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semgraph.retrieval.hsbd import Dendrogram

__all__ = ["Contribution", "NodeGroups", "contributions", "node_groups", "top_contributions"]


@dataclass(frozen=True)
class Contribution:
    """One dendrogram node's share ``W_v |(Pa)_v - (Pb)_v|`` of an HSBD distance."""

    node: int
    terms: tuple[str, ...]  # term IRIs under the node
    labels: tuple[str, ...]  # their labels
    value: float

    @property
    def label(self) -> str:
        """The node as text: one term's label, or the labels of a group joined by ' + '."""
        return " + ".join(self.labels)

    def as_dict(self) -> dict:
        return {"node": self.node, "terms": list(self.terms), "labels": list(self.labels), "value": self.value}


#: Per dendrogram node: (term IRIs under it, their labels), in node order.
NodeGroups = tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]


def node_groups(tree: Dendrogram, terms: Sequence[str], labels: Sequence[str]) -> NodeGroups:
    """The terms and labels under every node of ``tree`` (leaf order inside a node), computed once per tree."""
    out = []
    for row in tree.membership:
        members = np.flatnonzero(row)
        out.append((tuple(terms[i] for i in members), tuple(labels[i] for i in members)))
    return tuple(out)


def contributions(tree: Dendrogram, groups: NodeGroups, a, b) -> list[Contribution]:
    """Every node's contribution ``|(M a)_v - (M b)_v|`` to HSBD(a, b), in node order; they sum to HSBD(a, b)."""
    Y = tree.project_rows(np.asarray([a, b], dtype=np.float64))
    diff = np.abs(Y[:, 0] - Y[:, 1])
    return [Contribution(v, *groups[v], float(value)) for v, value in enumerate(diff)]


def top_contributions(tree: Dendrogram, groups: NodeGroups, query, rows, top: int
                      ) -> list[tuple[Contribution, ...]]:
    """For every row ``b`` of ``rows`` (n, k): the ``top`` largest non-zero contributions to HSBD(query, b).

    Each tuple is sorted by decreasing value, ties by increasing node number, i.e. exactly the first ``top``
    entries of ``sorted((c for c in contributions(tree, groups, query, b) if c.value > 0), key=lambda c:
    (-c.value, c.node))``. Cost: one projection of the n rows, O(n k), and one sort of an n x (2k-1) array.
    """
    B = np.asarray(rows, dtype=np.float64).reshape(-1, tree.k)
    if top < 1 or B.shape[0] == 0:
        return [()] * B.shape[0]
    q = tree.project_rows(np.asarray(query, dtype=np.float64)[None, :])[:, 0]
    C = np.abs(tree.project_rows(B) - q[:, None]).T  # (n, 2k-1): C[r, v] = c_v(query, row r)
    order = np.argsort(-C, axis=1, kind="stable")[:, :top]  # stable: equal values keep node order
    values = np.take_along_axis(C, order, axis=1)
    return [tuple(Contribution(int(v), *groups[v], float(x)) for v, x in zip(nodes, vals) if x > 0)
            for nodes, vals in zip(order.tolist(), values.tolist())]
