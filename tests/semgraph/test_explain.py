"""Tests of semgraph.retrieval.explain: the vectorised top contributions agree with sorting every node's share."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from semgraph.retrieval import hsbd
from semgraph.retrieval.explain import contributions, node_groups, top_contributions


@st.composite
def problems(draw):
    """(tree, query, rows): D and vectors on a coarse grid half of the time, so that shares tie or are zero."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k, n = draw(st.integers(1, 12)), draw(st.integers(0, 30))
    coarse = draw(st.booleans())
    upper = rng.integers(1, 4, k * (k - 1) // 2).astype(float) if coarse else rng.uniform(0.05, 1, k * (k - 1) // 2)
    D = np.zeros((k, k))
    D[np.triu_indices(k, 1)] = upper
    tree = hsbd.dendrogram(D + D.T, linkage=draw(st.sampled_from(hsbd.LINKAGES)),
                           weights=draw(st.sampled_from(hsbd.WEIGHTS)))
    values = (lambda size: rng.integers(0, 3, size) / 2) if coarse else rng.random
    query, rows = values(k), values((n, k))
    if n and draw(st.booleans()):
        rows[0] = query  # distance 0: no share is positive
    return tree, query, rows


def _reference(tree, groups, query, row, top):
    """The slow way: every node's share, positive ones sorted by (-value, node), the first ``top``."""
    parts = [c for c in contributions(tree, groups, query, row) if c.value > 0]
    return tuple(sorted(parts, key=lambda c: (-c.value, c.node))[:top])


@settings(max_examples=150, deadline=None)
@given(problems(), st.integers(0, 40))
def test_top_contributions_equal_sorted_shares(problem, top):
    tree, query, rows = problem
    terms = [f"t{i}" for i in range(tree.k)]
    groups = node_groups(tree, terms, [f"label {i}" for i in range(tree.k)])
    fast = top_contributions(tree, groups, query, rows, top)
    assert len(fast) == len(rows)
    for row, got in zip(rows, fast):
        assert got == _reference(tree, groups, query, row, top)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_shares_sum_to_hsbd_and_name_the_terms_under_each_node(problem):
    tree, query, rows = problem
    terms = [f"t{i}" for i in range(tree.k)]
    groups = node_groups(tree, terms, [t.upper() for t in terms])
    for row in rows:
        parts = contributions(tree, groups, query, row)
        assert [c.node for c in parts] == list(range(2 * tree.k - 1))
        assert abs(sum(c.value for c in parts) - float(np.abs(tree.projection @ (query - row)).sum())) <= 1e-9
        for c in parts:
            assert c.terms == tuple(terms[i] for i in np.flatnonzero(tree.membership[c.node]))
            assert c.labels == tuple(t.upper() for t in c.terms) and c.label == " + ".join(c.labels)
