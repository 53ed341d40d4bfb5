"""In-memory HSBD retrieval index: HSBD top-K search as L1 search over projected vectors.

HSBD is an L1 distance between linear projections, ``HSBD(a, b) = ||M a - M b||_1`` with ``M = W P`` from
:func:`semgraph.retrieval.hsbd.projection`. :class:`HSBDIndex` stores ``Y = A M^T`` (one projected row per case) and answers a
query by an exact L1 scan in memory-bounded blocks. After relevance feedback changes the term dissimilarities,
:meth:`HSBDIndex.rebuild` recomputes ``M`` and ``Y`` from the stored likelihood vectors, and
:meth:`HSBDIndex.with_dissimilarity` gives an index for the new ``D`` that shares the vectors and projects them while
it scans (no O(N) work until a search). Optional non-negative term weights ``w`` (the ``reweight`` feedback,
docs/algorithms.md §5.7) make the projection ``M diag(w)``: the index then ranks by ``||M diag(w) (x − a)||_1``.

Errors: malformed data (vectors, ids, masks, ``k``) raises :class:`semgraph.errors.InvalidInput`; an invalid option
(``backend``, ``block_size``, ``linkage``, ``weights``) raises :class:`ValueError` naming the allowed values; the
``'faiss'`` backend raises :class:`ImportError` with an install hint when faiss is missing.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import NamedTuple

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.retrieval import hsbd

__all__ = ["BACKENDS", "HSBDIndex", "SearchResult", "check_term_weights"]

#: Allowed values of the ``backend`` option.
BACKENDS = ("numpy", "faiss")

#: Rows per block when the projections are computed while scanning: the block's float64 node sums (about 4.7 MB)
#: stay in cache between projecting and scanning, which is faster than larger blocks.
STREAM_BLOCK = 16384

#: From this many rows on, a numpy search prunes (see :meth:`HSBDIndex.search`); smaller indexes are scanned.
PRUNE_MIN_ROWS = 16384
#: After a search whose bounds pruned too little, this many searches of the index scan without trying.
SCANS_AFTER_WEAK_BOUNDS = 31
#: The pruning threshold is the k-th exact distance among about this many times k rows with the smallest bounds.
CANDIDATES_PER_RESULT = 4
# Rows of the bounds' strided sample used to find those candidate rows without a partition of all N bounds.
_BOUND_SAMPLE = 4096
# Margin of the pruning test relative to sum_i c_i (max|x_i| + |a_i|): 2^-17 = 128 float32 unit roundoffs, twice
# what the float32 rounding of the bounds and of the distances can take away together (see _search_pruned).
_PRUNE_MARGIN = 2.0 ** -17
# Pruning is skipped for vectors this large, whose float32 differences could overflow.
_MAX_SCALE = 1e30

_FAISS_HINT = "The 'faiss' backend needs the faiss package; install it with: pip install semgraph[fast]"


class SearchResult(NamedTuple):
    """Result of :meth:`HSBDIndex.search`: ids and HSBD distances, nearest first."""

    ids: list
    distances: np.ndarray


def check_term_weights(value, k: int, name: str = "term_weights") -> np.ndarray | None:
    """``value`` as k finite, non-negative float64 term weights (a read-only copy), or None for None; InvalidInput
    otherwise."""
    if value is None:
        return None
    try:
        w = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric ({exc}).") from None
    if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InvalidInput(f"{name} must be {k} finite numbers >= 0; got shape {w.shape}.")
    w.flags.writeable = False
    return w


def _import_faiss():
    """Import faiss at call time, or raise ImportError with the install hint."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(_FAISS_HINT) from exc
    return faiss


class HSBDIndex:
    """Exact HSBD k-nearest-neighbour index over term-likelihood vectors.

    Parameters
    ----------
    dissimilarity : array_like, shape (k, k)
        Term dissimilarity matrix (``Mtsim``), validated as in :func:`semgraph.retrieval.hsbd.dendrogram`.
    ids : iterable of hashable, optional
        Case identifiers of the initial ``vectors`` (unique).
    vectors : array_like, shape (n, k), optional
        Initial term-likelihood vectors, one row per id.
    linkage : {'average', 'complete'}, default 'average'
        AHC linkage of the HSBD dendrogram.
    weights : {'gap', 'height', 'uniform'}, default 'gap'
        HSBD level weights.
    block_size : int, default 65536
        Rows scanned per block; a search allocates about ``4 * block_size`` bytes of scratch memory (numpy backend),
        plus ``12 * (2k-1) * min(block_size, STREAM_BLOCK)`` bytes for the block's projections when the index
        stores none (it then scans blocks of at most :data:`STREAM_BLOCK` rows). A pruned search (see Notes)
        allocates ``4 * N`` bytes for the bounds plus ``4 * k * STREAM_BLOCK`` of scratch memory instead.
    backend : {'numpy', 'faiss'}, default 'numpy'
        ``'numpy'``: exact search, pruned by lower bounds from :data:`PRUNE_MIN_ROWS` rows on; ``'faiss'``:
        ``faiss.IndexFlat(d, faiss.METRIC_L1)`` (needs ``pip install semgraph[fast]``).
    term_weights : array_like, shape (k,), optional
        Non-negative weights ``w`` of the terms: the projection is ``M diag(w)``, so the index ranks by
        ``HSBD(w ⊙ x, w ⊙ a)``; None (default) for ``w = 1``.

    Notes
    -----
    Likelihood vectors are stored as float32 (``A``, shape (N, k)) together with their projections
    ``Y = A M^T`` (float32), both feature-major internally (shapes (k, N) and (2k-1, N)): a block of rows is then
    one contiguous slice per term, which makes projecting it cheap. Projections are always computed in
    float64 from float32-rounded vectors with element-wise operations, so :meth:`add`, :meth:`rebuild` and a query
    give bit-identical projections for the same vector (a stored case is at distance exactly 0 from itself). Distances
    are accumulated in float32 over the ``2k - 1`` projected coordinates in a fixed order, hence they do not depend
    on ``block_size``; their relative error is about ``1e-6``.

    An index made by :meth:`with_dissimilarity` stores no ``Y``: every search projects the rows block by block
    with the same element-wise rule and scans them in the same order, so its results are bit-identical to those of
    a new index built from the same ids and vectors with that ``D``.

    Search (numpy backend): an index of at least :data:`PRUNE_MIN_ROWS` rows first computes, for every row, the
    lower bound ``L(x) = sum_i W_i |x_i - a_i|`` of ``HSBD(x, a)`` (the leaf coordinates of the projection; about
    three quarters of the distance on the synthetic cohort), a weighted L1 distance of the raw vectors. The exact
    distances of the :data:`CANDIDATES_PER_RESULT` x k rows with the smallest bounds give a threshold ``t`` (their
    k-th distance, never below the final k-th); only rows with ``L(x) <= t + margin`` get their exact distance,
    with the same arithmetic as a full scan. The margin covers the float32 rounding of both, so the result is the
    full scan's bit for bit; on 100k cohort-like cases 0.2-0.5 % of the rows are computed exactly. When the bounds
    are weak (most of the distance in inner nodes, e.g. random D and uniform vectors) the search falls back to the
    full scan, and the next :data:`SCANS_AFTER_WEAK_BOUNDS` searches scan without trying.

    Ties are broken by row order (insertion order): the result is sorted by ``(distance, row)``. With the
    ``'faiss'`` backend the returned rows are sorted the same way, but which of several rows tied at the k-th
    distance make the cut is up to faiss.

    Examples
    --------
    >>> D = [[0, 1, 4], [1, 0, 4], [4, 4, 0]]
    >>> index = HSBDIndex(D, ids=["a", "b", "c"], vectors=[[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    >>> result = index.search([1, 0, 0], k=2)
    >>> result.ids, result.distances.tolist()
    (['a', 'b'], [0.0, 0.5])
    """

    def __init__(
        self,
        dissimilarity,
        ids: Iterable[Hashable] | None = None,
        vectors=None,
        *,
        linkage: str = "average",
        weights: str = "gap",
        block_size: int = 65536,
        backend: str = "numpy",
        term_weights=None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"Invalid backend: {backend!r}. The supported values are 'numpy', 'faiss'.")
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"Invalid block_size: {block_size!r}. block_size must be a positive integer.")
        if backend == "faiss":
            _import_faiss()
        self.linkage = linkage
        self.weights = weights
        self.block_size = int(block_size)
        self.backend = backend
        self._set_dendrogram(dissimilarity)
        self.term_weights = check_term_weights(term_weights, self.n_terms)
        k, d = self.n_terms, self.dim
        self._n = 0
        self._At = np.zeros((k, 0), dtype=np.float32)  # k x capacity (feature-major), columns [:n] used
        # d x capacity, columns [:n] used; None: projections are computed while scanning (with_dissimilarity)
        self._Yt: np.ndarray | None = np.zeros((d, 0), dtype=np.float32)
        self._amax = np.zeros(k)  # max |x_i| over the stored rows, per term (bounds the float32 rounding errors)
        self._scans_before_pruning = 0  # inherited by with_dissimilarity: bounds of a nearby D prune alike
        self._ids: list = []
        self._row_of: dict = {}
        self._shares_ids = False  # _ids and _row_of are shared with an index derived from this one, or its source
        self._faiss_index = None
        if (ids is None) != (vectors is None):
            raise InvalidInput("Give both ids and vectors, or neither.")
        if ids is not None:
            self.add(ids, vectors)

    # ------------------------------------------------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @property
    def n_terms(self) -> int:
        """Number of terms k (length of a likelihood vector)."""
        return self.tree.k

    @property
    def dim(self) -> int:
        """Dimension ``2k - 1`` of the projected vectors."""
        return 2 * self.tree.k - 1

    @property
    def ids(self) -> list:
        """Case ids in row order (a copy)."""
        return list(self._ids)

    @property
    def projection(self) -> np.ndarray:
        """The current projection matrix ``M diag(w)``, shape (2k-1, k) (a copy; ``M`` without term weights)."""
        return self.tree.projection * self._weights()

    def _weights(self) -> np.ndarray:
        """The term weights ``w`` (ones when the index has none)."""
        return np.ones(self.n_terms) if self.term_weights is None else self.term_weights

    @property
    def vectors(self) -> np.ndarray:
        """Stored likelihood vectors ``A``, shape (N, k), float32 (read-only, non-contiguous view)."""
        view = self._At[:, : self._n].T
        view.flags.writeable = False
        return view

    @property
    def projected(self) -> np.ndarray:
        """Projected vectors ``Y = A M^T``, shape (N, 2k-1), float32 (read-only, non-contiguous; computed on the
        fly when the index stores no projections)."""
        view = self._projected_columns(0, self._n).T
        view.flags.writeable = False
        return view

    @property
    def stores_projections(self) -> bool:
        """Whether ``Y`` is kept in memory (False for an index made by :meth:`with_dissimilarity`)."""
        return self._Yt is not None

    @property
    def nbytes(self) -> int:
        """Bytes used by the stored projected vectors ``Y`` of the N cases (excluding spare capacity; 0 when the
        index stores no projections)."""
        return self._n * self.dim * np.dtype(np.float32).itemsize if self.stores_projections else 0

    # ------------------------------------------------------------------------------------------------------------
    # building
    # ------------------------------------------------------------------------------------------------------------

    def _set_dendrogram(self, dissimilarity) -> None:
        self.tree = hsbd.dendrogram(dissimilarity, linkage=self.linkage, weights=self.weights)

    def _as_matrix(self, vectors, name: str) -> np.ndarray:
        try:
            X = np.asarray(vectors, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{name} must be numeric ({exc}).") from None
        if X.ndim != 2 or X.shape[1] != self.n_terms:
            raise InvalidInput(f"{name} must have shape (n, {self.n_terms}); got {X.shape}.")
        if not np.all(np.isfinite(X)):
            raise InvalidInput(f"{name} contain NaN or infinite values.")
        return X

    def _project_rows(self, A32: np.ndarray) -> np.ndarray:
        """Project float32 rows (n, k) to float32 ``(M diag(w) a)`` columns, shape (2k-1, n).

        :meth:`semgraph.retrieval.hsbd.Dendrogram.project_rows` of ``w ⊙ a`` (float64, element-wise), rounded once to
        float32: a row's projection does not depend on how many rows are projected with it.
        """
        rows = A32 if self.term_weights is None else A32 * self.term_weights
        return self.tree.project_rows(rows, np.float32)

    def _projected_columns(self, start: int, stop: int) -> np.ndarray:
        """Projected rows [start, stop) as float32 columns (2k-1, stop - start): stored, or computed now."""
        if self._Yt is not None:
            return self._Yt[:, start:stop]
        return self._project_rows(self._At[:, start:stop].T)

    def _reserve(self, n_total: int) -> None:
        capacity = self._At.shape[1]
        if n_total <= capacity:
            return
        new_capacity = max(n_total, 2 * capacity, 16)
        At = np.zeros((self.n_terms, new_capacity), dtype=np.float32)
        At[:, : self._n] = self._At[:, : self._n]
        self._At = At
        if self._Yt is not None:
            Yt = np.zeros((self.dim, new_capacity), dtype=np.float32)
            Yt[:, : self._n] = self._Yt[:, : self._n]
            self._Yt = Yt

    def add(self, ids: Iterable[Hashable], vectors) -> None:
        """Append cases to the index.

        Parameters
        ----------
        ids : iterable of hashable, length n
            New case ids; they must be unique and not already in the index.
        vectors : array_like, shape (n, k)
            Finite term-likelihood vectors.

        Raises
        ------
        semgraph.errors.InvalidInput
            On a shape mismatch, non-finite values, unhashable or duplicate ids. Nothing is added then.
        """
        ids = list(ids)
        X = self._as_matrix(vectors, "vectors")
        if len(ids) != X.shape[0]:
            raise InvalidInput(f"Got {len(ids)} ids for {X.shape[0]} vectors.")
        seen = set()
        for case_id in ids:
            if not isinstance(case_id, Hashable):
                raise InvalidInput(f"Case id {case_id!r} is not hashable.")
            if case_id in seen or case_id in self._row_of:
                raise InvalidInput(f"Duplicate case id {case_id!r}.")
            seen.add(case_id)
        A32 = X.astype(np.float32)
        if not np.all(np.isfinite(A32)):
            raise InvalidInput("vectors contain values too large for float32.")
        n_new = A32.shape[0]
        if self._shares_ids:  # copy on write: the other indexes sharing the ids keep theirs
            self._ids, self._row_of, self._shares_ids = list(self._ids), dict(self._row_of), False
        self._reserve(self._n + n_new)
        start = self._n
        if self._Yt is not None:
            for s in range(0, n_new, self.block_size):
                e = min(n_new, s + self.block_size)
                self._Yt[:, start + s : start + e] = self._project_rows(A32[s:e])
        self._At[:, start : start + n_new] = A32.T
        if n_new:  # a new array, not an update in place: an index derived from this one keeps its own maximum
            self._amax = np.maximum(self._amax, np.abs(A32).max(axis=0))
        for offset, case_id in enumerate(ids):
            self._row_of[case_id] = start + offset
        self._ids.extend(ids)
        self._n += n_new
        self._faiss_index = None

    def rebuild(self, dissimilarity, term_weights=None) -> None:
        """Recompute the dendrogram, ``M`` and every projected row ``Y = A M^T`` for a new dissimilarity matrix.

        Parameters
        ----------
        dissimilarity : array_like, shape (k, k)
            The new term dissimilarities (same k as before), e.g. after a relevance-feedback round.
        term_weights : array_like, shape (k,), optional
            The new term weights (None: none, ``w = 1``).

        Raises
        ------
        semgraph.errors.InvalidInput
            If the matrix or the weights are malformed or the size differs from the index's k; the index is left
            unchanged.
        """
        old = self.tree
        self._set_dendrogram(dissimilarity)
        if self.tree.k != old.k:
            new_k = self.tree.k
            self.tree = old
            raise InvalidInput(f"The new dissimilarity matrix is {new_k} x {new_k}; the index holds {old.k} terms.")
        try:
            self.term_weights = check_term_weights(term_weights, old.k)
        except InvalidInput:
            self.tree = old
            raise
        if self._Yt is not None:
            for s in range(0, self._n, self.block_size):
                e = min(self._n, s + self.block_size)
                self._Yt[:, s:e] = self._project_rows(self._At[:, s:e].T)
        self._faiss_index = None

    def with_dissimilarity(self, dissimilarity, term_weights=None) -> HSBDIndex:
        """An index over the same cases for another dissimilarity matrix, without copying or projecting them.

        Parameters
        ----------
        dissimilarity : array_like, shape (k, k)
            The other term dissimilarities (same k), e.g. a session's after a feedback round.
        term_weights : array_like, shape (k,), optional
            Its term weights ``w`` (None: none); the projection is then ``M diag(w)``.

        Returns
        -------
        HSBDIndex
            It shares this index's stored vectors and ids (read-only: the first :meth:`add` on either index
            copies them) and stores no projections: building it costs one dendrogram, O(k^3), independent of N, and each search
            projects the rows while scanning (O(N k), about twice a search of an index that stores ``Y``). Its
            results equal those of ``HSBDIndex(dissimilarity, ids, vectors, term_weights=term_weights)`` bit for
            bit. :meth:`rebuild` on it only changes its dendrogram and weights.

        Raises
        ------
        semgraph.errors.InvalidInput
            If the matrix or the weights are malformed or the size differs from the index's k.
        """
        other = object.__new__(HSBDIndex)
        other.__dict__.update(self.__dict__)
        other._set_dendrogram(dissimilarity)
        if other.tree.k != self.tree.k:
            raise InvalidInput(f"The new dissimilarity matrix is {other.tree.k} x {other.tree.k}; the index holds "
                               f"{self.tree.k} terms.")
        other.term_weights = check_term_weights(term_weights, self.tree.k)
        other._At = self._At[:, : self._n]  # capacity n: the derived index's first add() reallocates (copies) it
        other._Yt = None
        self._shares_ids = other._shares_ids = True
        other._faiss_index = None
        return other

    # ------------------------------------------------------------------------------------------------------------
    # searching
    # ------------------------------------------------------------------------------------------------------------

    def project(self, query_vector) -> np.ndarray:
        """Projection ``M diag(w) a`` of one likelihood vector, shape (2k-1,), float64."""
        return self.projection @ hsbd._as_vector(query_vector, self.n_terms, "query_vector")

    def search(self, query_vector, k: int = 25, *, mask=None) -> SearchResult:
        """The ``k`` stored cases nearest to a query in HSBD.

        Parameters
        ----------
        query_vector : array_like, shape (n_terms,)
            Term likelihoods of the query.
        k : int, default 25
            Number of results (fewer are returned when fewer rows are stored or allowed by ``mask``).
        mask : array_like of bool, shape (N,), optional
            Rows to consider; rows where ``mask`` is False are never returned (the filter is applied during the
            scan, so ``k`` results are returned whenever ``k`` rows are allowed).

        Returns
        -------
        SearchResult
            ``ids`` (list) and ``distances`` (float64 array), sorted by ascending distance, then by row order.

        Raises
        ------
        semgraph.errors.InvalidInput
            If the query, ``k`` or ``mask`` is malformed.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInput(f"k must be a positive integer; got {k!r}.")
        a = hsbd._as_vector(query_vector, self.n_terms, "query_vector").astype(np.float32)
        q = self._project_rows(a[None, :])[:, 0]  # same float32 rounding as a stored row
        if not np.all(np.isfinite(q)):
            raise InvalidInput("query_vector is too large for float32.")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != np.bool_ or mask.shape != (self._n,):
                raise InvalidInput(
                    f"mask must be a boolean array of shape ({self._n},); got dtype {mask.dtype}, shape {mask.shape}."
                )
        k = int(min(k, self._n))
        if k == 0:
            return SearchResult([], np.zeros(0))
        if self.backend == "faiss":
            rows, dist = self._search_faiss(q, k, mask)
        else:
            rows, dist = self._search_numpy(q, a, k, mask)
        return SearchResult([self._ids[r] for r in rows], dist.astype(np.float64))

    @staticmethod
    def _block_distances(q: np.ndarray, Yt: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
        """L1 distances of the projected columns ``Yt`` to q, accumulated coordinate by coordinate into ``out``
        (float32)."""
        np.subtract(Yt[0], q[0], out=out)
        np.abs(out, out=out)
        for j in range(1, q.size):
            np.subtract(Yt[j], q[j], out=tmp)
            np.abs(tmp, out=tmp)
            out += tmp

    def _search_numpy(self, q: np.ndarray, a: np.ndarray, k: int, mask):
        want = CANDIDATES_PER_RESULT * k
        if self._n >= PRUNE_MIN_ROWS and want < (self._n if mask is None else np.count_nonzero(mask)):
            if self._scans_before_pruning > 0:  # pruning did not pay off lately on this index (or its source)
                self._scans_before_pruning -= 1
            else:
                found = self._search_pruned(q, a, k, mask)
                if found is not None:
                    return found
                self._scans_before_pruning = SCANS_AFTER_WEAK_BOUNDS
        return self._search_scan(q, k, mask)

    def _leaf_bounds(self, a: np.ndarray, mask) -> np.ndarray:
        """``L(x) = sum_i W_i w_i |x_i - a_i|`` for every stored row x, float32 (inf where ``mask`` is False)."""
        n = self._n
        # |W_i w_i x_i - W_i w_i a_i|: the leaf coordinates of M diag(w)
        weights = np.abs(self.tree.node_weights[: self.n_terms] * self._weights()).astype(np.float32)
        bounds = np.empty(n, dtype=np.float32)
        scratch = np.empty((self.n_terms, min(n, STREAM_BLOCK)), dtype=np.float32)
        for start in range(0, n, STREAM_BLOCK):
            stop = min(n, start + STREAM_BLOCK)
            diff = scratch[:, : stop - start]
            np.subtract(self._At[:, start:stop], a[:, None], out=diff)
            np.abs(diff, out=diff)
            np.dot(weights, diff, out=bounds[start:stop])
        if mask is not None:
            bounds[~mask] = np.inf
        return bounds

    def _exact_distances(self, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Distances of the given rows to q, float32, computed as a full scan computes them."""
        out = np.empty(rows.size, dtype=np.float32)
        tmp = np.empty(min(rows.size, STREAM_BLOCK), dtype=np.float32)
        for start in range(0, rows.size, STREAM_BLOCK):
            part = rows[start : start + STREAM_BLOCK]
            columns = self._Yt[:, part] if self._Yt is not None else self._project_rows(self._At[:, part].T)
            self._block_distances(q, columns, out[start : start + part.size], tmp[: part.size])
        return out

    def _search_pruned(self, q: np.ndarray, a: np.ndarray, k: int, mask):
        """Top k by bound-and-refine (class notes), or None when the bounds prune too little to pay off.

        Why it is exact, with u = 2^-24: a row's projection rounded to float32 and the float32 subtractions and
        sums lose at most about 37 u (Y(x) + Y(a)) of its distance D, where Y(x) = sum_i c_i |x_i| >= ||M x||_1
        (c: column sums of M) and D <= Y(x) + Y(a); the float32 bound exceeds the exact sum by at most 24 u L.
        A row with bound > t + margin, margin = 128 u (max Y(x) + Y(a)), therefore has distance > t >= the final
        k-th distance; every row with distance <= t, ties included, is computed exactly. With term weights the same
        holds for ``M diag(w)``: the leaf weights are ``W_i w_i`` and the column sums ``c_i w_i``.
        """
        n, want = self._n, CANDIDATES_PER_RESULT * k
        c = self.projection.sum(axis=0)
        scale = self._amax + np.abs(a)
        if scale.max() >= _MAX_SCALE or c @ scale >= _MAX_SCALE:  # float32 bounds could overflow: scan instead
            return None
        bounds = self._leaf_bounds(a, mask)
        sample = bounds[:: max(1, n // _BOUND_SAMPLE)]
        nth = max(1, round(want * sample.size / n))
        cut = np.partition(sample, nth - 1)[nth - 1]
        candidates = np.flatnonzero(bounds <= cut) if np.isfinite(cut) else np.zeros(0, dtype=np.intp)
        if candidates.size < k:  # the sample missed the allowed rows: take the smallest bounds exactly
            candidates = np.flatnonzero(bounds <= np.partition(bounds, want - 1)[want - 1])
        if candidates.size > n // 4:
            return None
        threshold = np.partition(self._exact_distances(q, candidates), k - 1)[k - 1]
        # compared in float32: rounding the limit costs one more u, well inside the margin
        rows = np.flatnonzero(bounds <= float(threshold) + _PRUNE_MARGIN * float(c @ scale))
        if rows.size > n // 4:  # weak bounds (most of the distance in inner nodes): the block scan is faster
            return None
        dist = self._exact_distances(q, rows)
        order = np.lexsort((rows, dist))[:k]
        return rows[order], dist[order]

    def _search_scan(self, q: np.ndarray, k: int, mask):
        n, B = self._n, self.block_size if self.stores_projections else min(self.block_size, STREAM_BLOCK)
        out_buf = np.empty(min(B, n), dtype=np.float32)
        tmp_buf = np.empty(min(B, n), dtype=np.float32)
        best_rows = np.zeros(0, dtype=np.int64)
        best_dist = np.zeros(0, dtype=np.float32)
        worst = np.float32(np.inf)  # distance of the current k-th best once k are known
        for start in range(0, n, B):
            stop = min(n, start + B)
            dist = out_buf[: stop - start]
            self._block_distances(q, self._projected_columns(start, stop), dist, tmp_buf[: stop - start])
            if mask is not None:
                dist[~mask[start:stop]] = np.inf
            if best_rows.size == k:
                cand = np.flatnonzero(dist <= worst)
            else:
                cand = np.flatnonzero(dist < np.inf)
            if cand.size > k:  # keep the candidates not worse than the block's k-th value (ties kept)
                values = dist[cand]
                cand = cand[values <= np.partition(values, k - 1)[k - 1]]
            if cand.size == 0:
                continue
            rows = np.concatenate((best_rows, cand + start))
            dists = np.concatenate((best_dist, dist[cand]))
            order = np.lexsort((rows, dists))[:k]
            best_rows, best_dist = rows[order], dists[order]
            if best_rows.size == k:
                worst = best_dist[-1]
        return best_rows, best_dist

    def _search_faiss(self, q: np.ndarray, k: int, mask):
        faiss = _import_faiss()
        if self._faiss_index is None:
            index = faiss.IndexFlat(self.dim, faiss.METRIC_L1)
            index.add(np.ascontiguousarray(self._projected_columns(0, self._n).T))
            self._faiss_index = index
        params = None
        if mask is not None:
            allowed = np.flatnonzero(mask).astype(np.int64)
            if allowed.size == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            k = min(k, int(allowed.size))
            selector = faiss.IDSelectorBatch(allowed)
            params = faiss.SearchParameters(sel=selector)
        dist, rows = self._faiss_index.search(q.reshape(1, -1), k, params=params)
        dist, rows = dist[0], rows[0].astype(np.int64)
        keep = rows >= 0
        dist, rows = dist[keep], rows[keep]
        order = np.lexsort((rows, dist))  # faiss does not promise an order among equal distances
        return rows[order], dist[order].astype(np.float32)
