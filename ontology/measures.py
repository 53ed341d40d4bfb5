"""Ontological dissimilarities between terms of a :class:`~ontology.hierarchy.Hierarchy` (δ_Θ).

Every measure here is a *dissimilarity*: 0 for identical terms, larger for terms that are further apart in
the is-a hierarchy. :func:`dissimilarity_matrix` computes the k×k matrix of one measure over a vocabulary;
:data:`MEASURES` lists the measures by name.

Conventions shared by all measures (see :class:`~ontology.hierarchy.Hierarchy`): depth(root) = 1; path lengths
count edges; LCA = deepest common ancestor-or-self; clusters are the children of the root and
D_c is the largest depth in cluster c.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ontology.errors import OntologyError
from ontology.hierarchy import Hierarchy

__all__ = ["MEASURES", "Measure", "dissimilarity_matrix"]


def _common_specificity(h: Hierarchy, a: str, b: str, lca: str) -> int:
    """CS(a, b): D_c − depth(LCA) within a cluster, max(D_c(a), D_c(b)) − depth(root) across clusters.

    A root term belongs to no cluster and takes the rule across clusters. CS is clamped at 0, which only
    matters for multi-parent hierarchies where the LCA can lie in a deeper cluster than the terms.
    """
    root = h.root
    ca = None if a == root else h.cluster(a)
    cb = None if b == root else h.cluster(b)
    if ca is not None and ca == cb:
        cs = h.cluster_depth(ca) - h.depth(lca)
    else:
        cs = max(h.cluster_depth(c) for c in (ca, cb) if c is not None) - h.depth(root)
    return max(cs, 0)


def _kurtz_raw(h: Hierarchy, a: str, b: str, gamma: float) -> float:
    """Unnormalised Kurtz dissimilarity ln(sqrt(path · CS) + γ)."""
    path, lca = h.path_and_lca(a, b)
    return math.log(math.sqrt(path * _common_specificity(h, a, b, lca)) + gamma)


def _al_mubaid(h: Hierarchy, a: str, b: str, gamma: float) -> float:
    """Al-Mubaid & Nguyen SemDist with α = β = 1: ln(path · CS + k), k = γ."""
    path, lca = h.path_and_lca(a, b)
    return math.log(path * _common_specificity(h, a, b, lca) + gamma)


def _wu_palmer(h: Hierarchy, a: str, b: str, gamma: float) -> float:
    """Wu-Palmer dissimilarity 1 − 2·depth(LCA) / (depth(a) + depth(b)), clamped at 0."""
    lca = h.lca(a, b)
    return max(1.0 - 2.0 * h.depth(lca) / (h.depth(a) + h.depth(b)), 0.0)


def _path(h: Hierarchy, a: str, b: str, gamma: float) -> float:
    """Shortest path length in edges (normalised afterwards)."""
    return float(h.path_length(a, b))


@dataclass(frozen=True)
class Measure:
    """One named term dissimilarity.

    Attributes
    ----------
    name : str
        Registry name.
    pair : callable
        ``pair(hierarchy, a, b, gamma) -> float`` for two *different* terms (identical terms are 0 by definition).
    normalised : bool
        If true, :func:`dissimilarity_matrix` divides the matrix by its largest entry.
    uses_gamma : bool
        Whether ``gamma`` enters the formula.
    value_range : str
        The documented range of the matrix entries.
    formula : str
        The formula, for documentation and the web interface.
    reference : str
        The publication that defines it.
    """

    name: str
    pair: Callable[[Hierarchy, str, str, float], float]
    normalised: bool
    uses_gamma: bool
    value_range: str
    formula: str
    reference: str


MEASURES: Mapping[str, Measure] = MappingProxyType({
    m.name: m
    for m in (
        Measure(
            name="kurtz",
            pair=_kurtz_raw,
            normalised=True,
            uses_gamma=True,
            value_range="[0, 1]",
            formula="ln(sqrt(path·CS) + γ) / ω, ω = max over the vocabulary pairs",
            reference="Kurtz et al., Medical Image Analysis 18(7), 2014, doi:10.1016/j.media.2014.06.009",
        ),
        Measure(
            name="al-mubaid",
            pair=_al_mubaid,
            normalised=False,
            uses_gamma=True,
            value_range="[0, inf)",
            formula="ln(path·CS + γ)",
            reference=(
                "Al-Mubaid & Nguyen, IEEE EMBS 2006; IEEE Trans. SMC-C 39(4), 2009, "
                "doi:10.1109/TSMCC.2009.2020689"
            ),
        ),
        Measure(
            name="wu-palmer",
            pair=_wu_palmer,
            normalised=False,
            uses_gamma=False,
            value_range="[0, 1)",
            formula="1 − 2·depth(LCA) / (depth(a) + depth(b))",
            reference="Wu & Palmer, Verb semantics and lexical selection, ACL 1994",
        ),
        Measure(
            name="path",
            pair=_path,
            normalised=True,
            uses_gamma=False,
            value_range="[0, 1]",
            formula="path / max over the vocabulary pairs",
            reference="Rada, Mili, Bicknell & Blettner, IEEE Trans. Systems, Man and Cybernetics 19(1), 1989",
        ),
    )
})


def dissimilarity_matrix(
    hierarchy: Hierarchy,
    terms: Sequence[str],
    measure: str = "kurtz",
    *,
    gamma: float = 1.0,
) -> np.ndarray:
    """Return the k×k matrix of ontological dissimilarities δ_Θ between ``terms``.

    Parameters
    ----------
    hierarchy : Hierarchy
        The is-a hierarchy holding the terms.
    terms : sequence of str, length k
        The vocabulary, in the order of the matrix rows. Each entry is resolved with
        :meth:`Hierarchy.resolve`, so IRIs, bare identifiers (``"RID5715"``) and labels are accepted.
        A term may appear several times; its copies are at distance 0.
    measure : {'kurtz', 'al-mubaid', 'wu-palmer', 'path'}, optional
        The dissimilarity (see :data:`MEASURES` and Notes). Default ``'kurtz'``.
    gamma : float, optional
        The additive constant γ of ``'kurtz'`` and ``'al-mubaid'`` (k in Al-Mubaid's paper), ≥ 1 so that every
        entry is non-negative. Default 1. Must stay 1 for the other measures, which do not use it.

    Returns
    -------
    ndarray of float64, shape (k, k)
        Symmetric, zero diagonal, non-negative.

    Raises
    ------
    OntologyError
        If ``measure`` is unknown (the message lists the valid names), ``terms`` is a single string,
        ``gamma`` is invalid, or a term is not below the root.
    UnknownTermError
        If a term is not in the hierarchy (with close labels as suggestions).

    Notes
    -----
    With path(a, b) the shortest path in edges through a common ancestor, LCA the deepest common
    ancestor-or-self, and the common specificity

    - CS = D_c − depth(LCA) if a and b are in the same cluster c,
    - CS = max(D_c(a), D_c(b)) − depth(root) otherwise,

    the measures are, for a ≠ b (identical terms get 0):

    - ``'kurtz'`` (default): raw(a, b) = ln(√(path · CS) + γ); ω = max_{i≠j} raw(x_i, x_j) over the requested
      terms; δ = raw / ω ∈ [0, 1], with max exactly 1 (all zeros if ω = 0). This is the normalised
      cluster-based measure of Kurtz et al. (2014), i.e. Al-Mubaid & Nguyen's SemDist with α = β = ½, k = γ.
    - ``'al-mubaid'``: ln(path · CS + γ) ∈ [0, ∞), Al-Mubaid & Nguyen's SemDist with α = β = 1, k = γ;
      not normalised.
    - ``'wu-palmer'``: 1 − 2·depth(LCA) / (depth(a) + depth(b)) ∈ [0, 1).
    - ``'path'``: path / max_{i≠j} path(x_i, x_j) ∈ [0, 1].

    A root term has no cluster; it takes the rule across clusters. In hierarchies with several parents per
    term, CS and Wu-Palmer are clamped at 0 (an LCA can then be deeper than one of the terms).

    References
    ----------
    .. [1] H. Al-Mubaid and H. A. Nguyen, "A cluster-based approach for semantic similarity in the biomedical
           domain", IEEE EMBS 2006; "Measuring semantic similarity between biomedical concepts within multiple
           ontologies", IEEE Trans. SMC-C 39(4), 2009, doi:10.1109/TSMCC.2009.2020689.
    .. [2] C. Kurtz, A. Depeursinge, S. Napel, C. F. Beaulieu, D. L. Rubin, "On combining image-based and
           ontological semantic dissimilarities for medical image retrieval applications", Medical Image
           Analysis 18(7), 2014, doi:10.1016/j.media.2014.06.009.
    .. [3] Z. Wu and M. Palmer, "Verb semantics and lexical selection", ACL 1994.

    Examples
    --------
    >>> h = Hierarchy.from_edges([("b", "a"), ("c", "a"), ("d", "b"), ("e", "b")])
    >>> dissimilarity_matrix(h, ["d", "e", "b"], "path")
    array([[0. , 1. , 0.5],
           [1. , 0. , 0.5],
           [0.5, 0.5, 0. ]])
    """
    if not isinstance(measure, str) or measure not in MEASURES:
        raise OntologyError(f"unknown measure {measure!r}; valid measures are {', '.join(sorted(MEASURES))}")
    spec = MEASURES[measure]
    if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not math.isfinite(gamma):
        raise OntologyError(f"gamma must be a finite number, got {gamma!r}")
    if spec.uses_gamma and gamma < 1:
        raise OntologyError(f"gamma must be >= 1 for measure {measure!r}, got {gamma!r}")
    if not spec.uses_gamma and gamma != 1:
        raise OntologyError(f"measure {measure!r} does not use gamma; leave it at 1 (got {gamma!r})")
    if isinstance(terms, str):
        raise OntologyError("terms must be a sequence of terms, not a single string")
    resolved = [hierarchy.resolve(t) for t in terms]

    k = len(resolved)
    out = np.zeros((k, k), dtype=np.float64)
    pair, gamma = spec.pair, float(gamma)
    for i in range(k):
        a = resolved[i]
        for j in range(i + 1, k):
            b = resolved[j]
            if a != b:
                out[i, j] = out[j, i] = pair(hierarchy, a, b, gamma)
    if spec.normalised and k:
        omega = out.max()
        if omega > 0:
            out /= omega
    return out
