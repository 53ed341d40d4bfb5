"""Hierarchical Semantic-Based Distance (HSBD) between term-likelihood vectors.

HSBD compares two vectors of term likelihoods through a dendrogram built on the terms' dissimilarity matrix: at
every level of the dendrogram both vectors are coarsened (the bins of each cluster are summed) and compared with
the Manhattan distance, and the per-level distances are fused by a weighted sum. Because every step is linear,
the whole distance is an L1 distance between linear projections,

.. math:: \\mathrm{HSBD}(a, b) = \\lVert M a - M b \\rVert_1, \\qquad M = W P,

where ``P`` is the (2k-1) x k node-membership matrix of the dendrogram and ``W`` the diagonal matrix of node
weights (docs/algorithms.md section 1). :func:`projection` returns ``M``; a database of vectors can then
be searched with any L1 nearest-neighbour index (see :mod:`semgraph.retrieval.index`).

Errors: malformed data (a dissimilarity matrix or a vector) raises :class:`semgraph.errors.InvalidInput`; an
unknown option value (``linkage``, ``weights``, ``eps``) raises :class:`ValueError` naming the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from semgraph.errors import InvalidInput

__all__ = [
    "LINKAGES",
    "WEIGHTS",
    "Dendrogram",
    "clamp",
    "dendrogram",
    "distance",
    "level_weights",
    "projection",
    "reference_distance",
]

#: Allowed values of the ``linkage`` option (both give monotone merge heights).
LINKAGES = ("average", "complete")
#: Allowed values of the ``weights`` option (level weights of docs/algorithms.md section 1.2).
WEIGHTS = ("gap", "height", "uniform")

# Two candidate merges whose linkage values differ by at most _TIE_RTOL * max(D) are a tie. The relative
# tolerance absorbs the rounding of the linkage updates, so that ties in D stay ties in c*D or in a permuted D.
_TIE_RTOL = 1e-12
# Symmetry and zero-diagonal checks accept rounding noise of this size relative to max|D|.
_CHECK_RTOL = 1e-12


# ----------------------------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------------------------


def _check_option(value: str, allowed: tuple[str, ...], name: str) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"Invalid {name}: {value!r}. The supported values are {', '.join(map(repr, allowed))}.")
    return value


def _as_dissimilarity(dissimilarity) -> np.ndarray:
    """Validate a k x k dissimilarity matrix and return it as a symmetric float64 array with an exact zero diagonal."""
    try:
        D = np.array(dissimilarity, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"The dissimilarity matrix must be a numeric k x k array ({exc}).") from None
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise InvalidInput(f"The dissimilarity matrix must be square (k x k); got shape {D.shape}.")
    if D.shape[0] == 0:
        raise InvalidInput("The dissimilarity matrix must have at least one term (k >= 1); got k = 0.")
    if not np.all(np.isfinite(D)):
        raise InvalidInput("The dissimilarity matrix contains NaN or infinite values.")
    if np.any(D < 0):
        i, j = np.argwhere(D < 0)[0]
        raise InvalidInput(f"The dissimilarity matrix must be non-negative; D[{i}, {j}] = {D[i, j]!r}.")
    tol = _CHECK_RTOL * max(1.0, float(D.max()))
    asym = np.abs(D - D.T)
    if np.any(asym > tol):
        i, j = np.unravel_index(int(np.argmax(asym)), D.shape)
        raise InvalidInput(
            f"The dissimilarity matrix must be symmetric; D[{i}, {j}] = {D[i, j]!r} but D[{j}, {i}] = {D[j, i]!r}."
        )
    diag = np.diag(D)
    if np.any(diag > tol):
        i = int(np.argmax(diag))
        raise InvalidInput(f"The dissimilarity matrix must have a zero diagonal; D[{i}, {i}] = {diag[i]!r}.")
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    return D


def _as_vector(x, k: int, name: str) -> np.ndarray:
    """Validate a length-k finite vector and return it as float64."""
    try:
        v = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"Vector {name} must be numeric ({exc}).") from None
    if v.shape != (k,):
        raise InvalidInput(f"Vector {name} must have shape ({k},) to match the {k} x {k} dissimilarity; got {v.shape}.")
    if not np.all(np.isfinite(v)):
        raise InvalidInput(f"Vector {name} contains NaN or infinite values.")
    return v


# ----------------------------------------------------------------------------------------------------------------
# dendrogram
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dendrogram:
    """A dendrogram of k terms built by agglomerative hierarchical clustering (AHC), with HSBD node weights.

    Nodes are numbered as in :func:`scipy.cluster.hierarchy.linkage`: leaves ``0..k-1``, and the node created by
    merge ``l`` (0-based) is ``k + l``; the root is ``2k - 2``.

    Attributes
    ----------
    k : int
        Number of terms (leaves).
    linkage : {'average', 'complete'}
        Linkage used to build the tree.
    weights : {'gap', 'height', 'uniform'}
        Level-weight scheme used for :attr:`level_weights` and :attr:`node_weights`.
    merges : ndarray of int, shape (k-1, 2)
        ``merges[l] = (u, v)``: the two nodes joined by merge ``l``; ``u`` is the one holding the smaller leaf index.
    heights : ndarray of float, shape (k-1,)
        Merge heights ``h_1 <= ... <= h_{k-1}`` (non-decreasing by construction).
    membership : ndarray of float, shape (2k-1, k)
        Node-membership matrix ``P``: ``P[v, i] = 1`` iff leaf ``i`` belongs to node ``v``; rows ``0..k-1`` are the
        identity.
    parent : ndarray of int, shape (2k-1,)
        Parent node of every node, ``-1`` for the root.
    node_heights : ndarray of float, shape (2k-1,)
        Height of every node (0 for leaves).
    level_weights : ndarray of float, shape (k,)
        Weights ``w_0..w_{k-1}`` of the levels (partitions after 0..k-1 merges).
    node_weights : ndarray of float, shape (2k-1,)
        Node weights ``W_v = sum_{l=birth(v)}^{death(v)-1} w_l``.
    cophenetic : ndarray of float, shape (k, k)
        ``coph[i, j]`` = height of the lowest common ancestor of leaves ``i`` and ``j`` (0 on the diagonal).

    All arrays are read-only.
    """

    k: int
    linkage: str
    weights: str
    merges: np.ndarray
    heights: np.ndarray
    membership: np.ndarray
    parent: np.ndarray
    node_heights: np.ndarray
    level_weights: np.ndarray
    node_weights: np.ndarray
    cophenetic: np.ndarray
    _projection: np.ndarray = field(repr=False)

    @property
    def projection(self) -> np.ndarray:
        """The (2k-1) x k matrix ``M = W P`` (a read-only view; copy it before changing it)."""
        return self._projection

    def project_rows(self, X: np.ndarray, dtype=np.float64) -> np.ndarray:
        """The projections ``M x`` of the rows ``x`` of ``X`` (n, k), as the columns of a (2k-1, n) array.

        Node sums ``S_v(x) = sum_{i in leaves(v)} x_i`` are built bottom-up along the merges
        (``S_{k+l} = S_u + S_w`` for merge ``l = (u, w)``) and scaled by ``W_v``, element-wise in float64; the
        products are rounded once to ``dtype``. Unlike the matrix product ``X @ M.T`` (whose summation order may
        change with the number of rows), a row's projection therefore never depends on the rows projected with it.
        """
        k = self.k
        sums = np.empty((2 * k - 1, X.shape[0]), dtype=np.float64)
        sums[:k] = X.T
        for step, (u, w) in enumerate(self.merges):
            np.add(sums[u], sums[w], out=sums[k + step])
        out = sums if dtype == np.float64 else np.empty(sums.shape, dtype=dtype)
        np.multiply(sums, self.node_weights[:, None], out=out, casting="same_kind")  # computed in float64
        return out


def _ahc(D: np.ndarray, linkage: str):
    """Run AHC on a validated D; return merges (node ids), heights and the leaf sets of the merged clusters.

    Clusters live in "slots" named after their smallest leaf, so scanning the upper triangle of the slot-by-slot
    linkage matrix in row-major order visits candidate pairs (C, C') in increasing (min C, min C') order: the
    first pair within tolerance of the minimum is the deterministic tie-break winner.
    """
    k = D.shape[0]
    tol = _TIE_RTOL * float(D.max())
    full = D.copy()  # symmetric linkage values between active slots
    upper = np.where(np.triu(np.ones((k, k), dtype=bool), 1), D, np.inf)  # i < j only, inf elsewhere
    size = np.ones(k, dtype=np.int64)
    node_of = np.arange(k)
    members = [[i] for i in range(k)]
    merges = np.zeros((max(k - 1, 0), 2), dtype=np.int64)
    heights = np.zeros(max(k - 1, 0), dtype=np.float64)
    merged_sets = []
    active = np.ones(k, dtype=bool)
    previous = 0.0
    for step in range(k - 1):
        best = upper.min()
        flat = int(np.flatnonzero(upper.ravel() <= best + tol)[0])
        i, j = divmod(flat, k)
        h = max(float(upper[i, j]), previous)  # clip rounding noise so heights never decrease
        previous = h
        merges[step] = (node_of[i], node_of[j])
        heights[step] = h
        merged_sets.append((members[i], members[j]))
        # Lance-Williams update of slot i (the union keeps the smaller representative i).
        with np.errstate(invalid="ignore"):  # inf - inf on retired slots; overwritten just below
            if linkage == "average":
                # d_i + (d_j - d_i) * n_j / (n_i + n_j) is exactly d_i when d_i == d_j (keeps exact ties exact)
                new = full[i] + (full[j] - full[i]) * (size[j] / (size[i] + size[j]))
            else:  # complete
                new = np.maximum(full[i], full[j])
        active[j] = False
        new[~active] = np.inf
        new[i] = 0.0
        full[i, :] = new
        full[:, i] = new
        full[j, :] = np.inf
        full[:, j] = np.inf
        upper[j, :] = np.inf
        upper[:, j] = np.inf
        upper[i, i + 1 :] = new[i + 1 :]
        upper[:i, i] = new[:i]
        size[i] += size[j]
        members[i] = members[i] + members[j]
        members[j] = []
        node_of[i] = k + step
    return merges, heights, merged_sets


def level_weights(heights, weights: str = "gap") -> np.ndarray:
    """Weights ``w_0..w_{k-1}`` of the k dendrogram levels from the k-1 merge heights.

    Parameters
    ----------
    heights : array_like, shape (k-1,)
        Non-decreasing merge heights ``h_1..h_{k-1}``; ``h_0 = 0`` is implied.
    weights : {'gap', 'height', 'uniform'}, default 'gap'
        ``'gap'``: ``w_l = (h_{l+1} - h_l) / Z`` for ``l < k-1`` and ``w_{k-1} = 0``, with ``Z = h_{k-1}``;
        ``'height'``: ``w_l = h_l / sum_m h_m``; ``'uniform'``: ``w_l = 1 / k``.

    Returns
    -------
    w : ndarray, shape (k,)
        Non-negative level weights summing to 1 (``'gap'`` and ``'height'`` give all zeros when ``k = 1``).

    Notes
    -----
    Heights enter only through ``h / Z`` (hence HSBD does not change when D is scaled). When ``Z = 0`` (k >= 2 and
    every off-diagonal dissimilarity is 0) the normalised heights are taken to be all 1, which is the limit of
    ``c * D'`` as ``c -> 0`` for a D' with all off-diagonal entries equal: ``'gap'`` then gives plain L1.
    """
    _check_option(weights, WEIGHTS, "weights")
    h = np.asarray(heights, dtype=np.float64)
    k = h.size + 1
    if weights == "uniform":
        return np.full(k, 1.0 / k)
    if k == 1:
        return np.zeros(1)
    Z = h[-1]
    hn = h / Z if Z > 0 else np.ones_like(h)
    levels = np.concatenate(([0.0], hn))  # normalised h_0..h_{k-1}
    if weights == "gap":
        return np.concatenate((np.diff(levels), [0.0]))
    return levels / levels.sum()  # 'height'


def dendrogram(dissimilarity, *, linkage: str = "average", weights: str = "gap") -> Dendrogram:
    """Build the AHC dendrogram of a term dissimilarity matrix and its HSBD node weights.

    Parameters
    ----------
    dissimilarity : array_like, shape (k, k)
        Symmetric, non-negative, finite, zero-diagonal term dissimilarities (``Mtsim``).
    linkage : {'average', 'complete'}, default 'average'
        Cluster linkage: mean (UPGMA) or maximum of the pairwise dissimilarities between two clusters.
    weights : {'gap', 'height', 'uniform'}, default 'gap'
        Level-weight scheme, see :func:`level_weights`.

    Returns
    -------
    Dendrogram

    Raises
    ------
    semgraph.errors.InvalidInput
        If ``dissimilarity`` is not a valid dissimilarity matrix.
    ValueError
        If ``linkage`` or ``weights`` is not one of the allowed values.

    Notes
    -----
    At each of the k-1 steps the pair of clusters ``(C, C')`` with the smallest linkage is merged; candidates within
    ``1e-12 * max(D)`` of the minimum are ties, and the pair with the smallest ``(min C, min C')`` wins. Average
    linkage is updated with the Lance-Williams rule ``d(C u C', X) = (|C| d(C, X) + |C'| d(C', X)) / (|C| + |C'|)``,
    complete linkage with ``max``. A node ``v`` born at level ``birth(v)`` (0 for leaves, ``l + 1`` for merge ``l``)
    and absorbed at level ``death(v)`` (``k`` for the root) gets ``W_v = sum_{l=birth(v)}^{death(v)-1} w_l``.

    Examples
    --------
    >>> tree = dendrogram([[0, 1, 4], [1, 0, 4], [4, 4, 0]])
    >>> tree.merges.tolist(), tree.heights.tolist()
    ([[0, 1], [3, 2]], [1.0, 4.0])
    >>> tree.node_weights.tolist()
    [0.25, 0.25, 1.0, 0.75, 0.0]
    """
    _check_option(linkage, LINKAGES, "linkage")
    _check_option(weights, WEIGHTS, "weights")
    D = _as_dissimilarity(dissimilarity)
    k = D.shape[0]
    merges, heights, merged_sets = _ahc(D, linkage)

    n_nodes = 2 * k - 1
    P = np.zeros((n_nodes, k), dtype=np.float64)
    P[np.arange(k), np.arange(k)] = 1.0
    parent = np.full(n_nodes, -1, dtype=np.int64)
    node_heights = np.zeros(n_nodes, dtype=np.float64)
    birth = np.zeros(n_nodes, dtype=np.int64)
    death = np.full(n_nodes, k, dtype=np.int64)
    coph = np.zeros((k, k), dtype=np.float64)
    for step, ((u, v), h, (left, right)) in enumerate(zip(merges, heights, merged_sets)):
        node = k + step
        P[node] = P[u] + P[v]
        parent[u] = parent[v] = node
        node_heights[node] = h
        birth[node] = step + 1
        death[u] = death[v] = step + 1
        coph[np.ix_(left, right)] = h
        coph[np.ix_(right, left)] = h

    w = level_weights(heights, weights)
    W = np.array([w[birth[v] : death[v]].sum() for v in range(n_nodes)])
    M = W[:, None] * P
    for array in (merges, heights, P, parent, node_heights, w, W, coph, M):
        array.setflags(write=False)  # the tree is immutable; copy an array before changing it
    return Dendrogram(
        k=k,
        linkage=linkage,
        weights=weights,
        merges=merges,
        heights=heights,
        membership=P,
        parent=parent,
        node_heights=node_heights,
        level_weights=w,
        node_weights=W,
        cophenetic=coph,
        _projection=M,
    )


# ----------------------------------------------------------------------------------------------------------------
# distances
# ----------------------------------------------------------------------------------------------------------------


def projection(dissimilarity, *, linkage: str = "average", weights: str = "gap") -> np.ndarray:
    """The HSBD projection matrix ``M = W P`` of a term dissimilarity matrix.

    Parameters
    ----------
    dissimilarity : array_like, shape (k, k)
        Symmetric, non-negative, finite, zero-diagonal term dissimilarities.
    linkage : {'average', 'complete'}, default 'average'
        AHC linkage, see :func:`dendrogram`.
    weights : {'gap', 'height', 'uniform'}, default 'gap'
        Level-weight scheme, see :func:`level_weights`.

    Returns
    -------
    M : ndarray, shape (2k-1, k)
        Row ``v`` is ``W_v`` times the membership indicator of dendrogram node ``v``; rows ``0..k-1`` are the
        leaves (``M[i, i] = W_i``), rows ``k..2k-2`` the merges in order (the last row is the root).

    Notes
    -----
    For any vectors ``a, b``: ``HSBD(a, b) = sum_v W_v |(P a)_v - (P b)_v| = ||M a - M b||_1``, so projecting a
    database once (``Y = A M^T``) turns HSBD retrieval into L1 nearest-neighbour search.

    Examples
    --------
    >>> M = projection([[0, 1, 4], [1, 0, 4], [4, 4, 0]])
    >>> M.shape
    (5, 3)
    >>> float(abs(M @ [1, 0, 0] - M @ [0, 1, 0]).sum())  # 2 * coph(0, 1) / Z = 2 * 1 / 4
    0.5
    """
    return dendrogram(dissimilarity, linkage=linkage, weights=weights).projection.copy()


def distance(a, b, dissimilarity, *, linkage: str = "average", weights: str = "gap") -> float:
    """Hierarchical Semantic-Based Distance between two term-likelihood vectors.

    Parameters
    ----------
    a, b : array_like, shape (k,)
        Finite term likelihoods (typically in [0, 1]; any real values are accepted).
    dissimilarity : array_like, shape (k, k)
        Symmetric, non-negative, finite, zero-diagonal term dissimilarities.
    linkage : {'average', 'complete'}, default 'average'
        AHC linkage, see :func:`dendrogram`.
    weights : {'gap', 'height', 'uniform'}, default 'gap'
        Level-weight scheme, see :func:`level_weights`.

    Returns
    -------
    float
        ``HSBD(a, b) = sum_{l=0}^{k-1} w_l ||coarsen(a, pi_l) - coarsen(b, pi_l)||_1 = ||M (a - b)||_1``.

    Raises
    ------
    semgraph.errors.InvalidInput
        If the matrix or a vector is malformed (wrong shape, NaN, asymmetric, negative, non-zero diagonal).
    ValueError
        If ``linkage`` or ``weights`` is not one of the allowed values.

    Notes
    -----
    HSBD is a pseudo-metric for every scheme (an L1 norm of a linear map); it is a metric when every leaf weight is
    positive, which with ``'gap'`` weights holds iff no term is merged at height 0 (see :func:`clamp`). With
    ``'gap'`` weights it is the tree-Wasserstein distance on the dendrogram with edge lengths
    ``(h(parent) - h(v)) / Z``, e.g. ``HSBD(e_i, e_j) = 2 coph(i, j) / Z``; it never exceeds ``||a - b||_1`` and
    equals it when all off-diagonal dissimilarities are equal (or all zero). With ``k = 1`` it is 0 for ``'gap'``
    and ``'height'`` and ``|a_0 - b_0|`` for ``'uniform'``.

    References
    ----------
    .. [1] C. Kurtz, P. Gancarski, N. Passat, A. Puissant, "A hierarchical semantic-based distance for nominal
       histogram comparison", Data & Knowledge Engineering 87 (2013) 206-225, doi:10.1016/j.datak.2013.06.002.

    Examples
    --------
    >>> D = [[0, 1, 4], [1, 0, 4], [4, 4, 0]]
    >>> distance([1, 0, 0], [0, 1, 0], D)
    0.5
    >>> distance([1, 0, 0], [0, 0, 1], D)
    2.0
    """
    tree = dendrogram(dissimilarity, linkage=linkage, weights=weights)
    va = _as_vector(a, tree.k, "a")
    vb = _as_vector(b, tree.k, "b")
    return float(np.abs(tree.projection @ (va - vb)).sum())


def reference_distance(a, b, dissimilarity, *, linkage: str = "average", weights: str = "gap") -> float:
    """HSBD computed literally, level by level (slow O(k^2) reference for tests).

    Parameters and returns are those of :func:`distance`.

    Notes
    -----
    Replays the merges of the dendrogram: at level ``l`` (after ``l`` merges, ``k - l`` clusters) each vector is
    coarsened by summing its bins over every cluster, the Manhattan distance of the two coarse vectors is taken, and
    the results are summed with the level weights ``w_l``. It never uses the node form ``M = W P``.
    """
    tree = dendrogram(dissimilarity, linkage=linkage, weights=weights)
    va = _as_vector(a, tree.k, "a")
    vb = _as_vector(b, tree.k, "b")
    k = tree.k
    clusters = [[i] for i in range(k)]  # the partition pi_l, one list of leaves per cluster
    total = 0.0
    for level in range(k):
        coarse_a = [sum(va[i] for i in c) for c in clusters]
        coarse_b = [sum(vb[i] for i in c) for c in clusters]
        total += tree.level_weights[level] * sum(abs(x - y) for x, y in zip(coarse_a, coarse_b))
        if level < k - 1:
            left, right = tree.merges[level]
            leaves_l = set(np.flatnonzero(tree.membership[left]).tolist())
            leaves_r = set(np.flatnonzero(tree.membership[right]).tolist())
            kept = [c for c in clusters if not (set(c) <= leaves_l or set(c) <= leaves_r)]
            clusters = kept + [sorted(leaves_l | leaves_r)]
    return float(total)


def clamp(dissimilarity, eps: float = 1e-3) -> np.ndarray:
    """Force every off-diagonal dissimilarity to be at least ``eps`` (keeps HSBD a metric).

    Parameters
    ----------
    dissimilarity : array_like, shape (k, k)
        A valid dissimilarity matrix (it is validated first).
    eps : float, default 1e-3
        Positive lower bound for ``D[i, j]``, ``i != j``.

    Returns
    -------
    ndarray, shape (k, k)
        A new matrix ``max(D, eps)`` off the diagonal, 0 on the diagonal.

    Raises
    ------
    ValueError
        If ``eps`` is not a positive finite number.
    semgraph.errors.InvalidInput
        If ``dissimilarity`` is malformed.

    Notes
    -----
    With gap weights a leaf merged at height 0 gets weight 0 and HSBD is then only a pseudo-metric
    (``HSBD(e_i, e_j) = 0``). With every ``D[i, j] >= eps > 0`` (average or complete linkage) every merge height is
    ``>= eps``, every leaf weight is positive and HSBD is a metric.

    Examples
    --------
    >>> clamp([[0, 0], [0, 0]], eps=0.01).tolist()
    [[0.0, 0.01], [0.01, 0.0]]
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise ValueError(f"Invalid eps: {eps!r}. eps must be a positive finite number.")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"Invalid eps: {eps!r}. eps must be a positive finite number.")
    D = _as_dissimilarity(dissimilarity)
    out = np.maximum(D, float(eps))
    np.fill_diagonal(out, 0.0)
    return out
