"""An immutable in-memory is-a hierarchy (child → parent edges) with the queries the term measures need.

The hierarchy is a rooted directed acyclic graph held in :mod:`networkx`. Terms are IRI strings. A term may
have several parents. Depths and clusters are computed once, when the hierarchy is built; the upward
distances of a term to its ancestors are computed on first use and cached, so pairwise queries over a
vocabulary of a few hundred terms stay cheap even on the full RadLex (≈45k classes).

This module does not use the knowledge-graph store; :mod:`ontology.sparql_hierarchy` answers the same
questions with SPARQL.
"""

from __future__ import annotations

import difflib
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping

import networkx as nx

from ontology.errors import HierarchyCycleError, OntologyError, UnknownTermError

__all__ = ["Hierarchy"]

_SEPARATORS = re.compile(r"[/#:\s]")
_MAX_LISTED = 10  # how many top nodes an error message lists before "and N more"


def _local_name(iri: str) -> str:
    """Return the part of ``iri`` after its last ``/``, ``#`` or ``:``."""
    return re.split(r"[/#:]", iri)[-1]


def _label_key(text: str) -> str:
    """Normalise a label for case-insensitive lookup (casefold, collapse white space)."""
    return " ".join(text.split()).casefold()


class Hierarchy:
    """A rooted is-a hierarchy of terms (IRIs), immutable once built.

    Build it with :meth:`from_edges`. Only the root and the terms below it belong to the hierarchy;
    terms of the input that are not below the root are remembered so that asking for them raises an
    :class:`~ontology.errors.OntologyError` that says so, instead of an "unknown term" error.

    Conventions
    -----------
    - ``depth(root) = 1`` and ``depth(t) = 1 + min(depth(p) for p in parents(t))`` (shortest path from the root).
    - ``cluster(t)`` is the child of the root on a shortest path root → t (ties: smallest IRI).
    - ``cluster_depth(c)`` (D_c) is the largest depth among the terms whose cluster is ``c``.
    - ``path_length(a, b)`` counts edges: ``min over common ancestors-or-self c of up(a, c) + up(b, c)``,
      where ``up`` is the shortest upward distance.
    - ``lca(a, b)`` is the common ancestor-or-self of largest depth (ties: smallest IRI).

    Every query that takes a term raises :class:`~ontology.errors.UnknownTermError` (with close labels as
    suggestions) for a term that is not in the input at all.
    """

    __slots__ = ("_graph", "_root", "_labels", "_outside", "_depth", "_cluster", "_cluster_depth",
                 "_up_cache", "_by_local", "_by_label")

    def __init__(self, graph: nx.DiGraph, root: str, labels: Mapping[str, str], outside: frozenset[str]):
        # Private: use :meth:`from_edges`, which validates its input.
        self._graph = nx.freeze(graph)
        self._root = root
        self._labels = dict(labels)
        self._outside = outside
        self._up_cache: dict[str, dict[str, int]] = {}
        self._depth, self._cluster = self._compute_depths_and_clusters()
        self._cluster_depth: dict[str, int] = {}
        for term, c in self._cluster.items():
            if self._depth[term] > self._cluster_depth.get(c, 0):
                self._cluster_depth[c] = self._depth[term]
        self._by_local: dict[str, list[str]] = {}
        self._by_label: dict[str, list[str]] = {}
        for term in sorted(self._graph.nodes | self._outside):
            self._by_local.setdefault(_local_name(term).casefold(), []).append(term)
            label = self._labels.get(term)
            if label:
                self._by_label.setdefault(_label_key(label), []).append(term)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_edges(
        cls,
        edges: Iterable[tuple[str, str]],
        labels: Mapping[str, str] | None = None,
        root: str | None = None,
    ) -> Hierarchy:
        """Build a hierarchy from ``(child, parent)`` is-a edges.

        Parameters
        ----------
        edges : iterable of (str, str)
            ``(child, parent)`` pairs of term IRIs (e.g. the ``rdfs:subClassOf`` triples of an ontology).
            Repeated edges are ignored.
        labels : mapping of str to str, optional
            Human-readable label of each term (e.g. ``rdfs:label``); used by :meth:`label`,
            :meth:`resolve` and in error messages. Labels of terms absent from ``edges`` are ignored.
        root : str, optional
            The root term. If omitted, the single term without parents is the root.

        Returns
        -------
        Hierarchy

        Raises
        ------
        OntologyError
            If an edge is not a pair of non-empty strings, the input is empty and no root is given, or
            there are several terms without parents and ``root`` is not given.
        HierarchyCycleError
            If the edges contain a cycle (the message names its terms, with their labels).
        UnknownTermError
            If ``root`` is given but is not a term of ``edges``.

        Notes
        -----
        Terms that are not descendants of ``root`` are dropped from the hierarchy (they are remembered for
        error messages). With ``root`` given, its own ancestors are therefore dropped too.

        Examples
        --------
        >>> h = Hierarchy.from_edges([("b", "a"), ("c", "a"), ("d", "b")])
        >>> h.root, h.depth("d"), h.cluster("d"), h.path_length("d", "c")
        ('a', 3, 'b', 3)
        """
        labels = {str(k): str(v) for k, v in (labels or {}).items()}
        full = nx.DiGraph()
        for edge in edges:
            if not (isinstance(edge, tuple | list) and len(edge) == 2
                    and all(isinstance(t, str) and t for t in edge)):
                raise OntologyError(f"an edge must be a (child, parent) pair of non-empty IRI strings, got {edge!r}")
            full.add_edge(str(edge[0]), str(edge[1]))

        if not nx.is_directed_acyclic_graph(full):  # fast check; find_cycle only to name the cycle
            cycle_edges = nx.find_cycle(full)
            cycle = [u for u, _ in cycle_edges]
            start = cycle.index(min(cycle))
            cycle = cycle[start:] + cycle[:start]
            raise HierarchyCycleError([_describe(t, labels) for t in cycle])

        if root is None:
            if full.number_of_nodes() == 0:
                raise OntologyError("the hierarchy is empty: no edges and no root were given")
            tops = sorted(n for n in full.nodes if full.out_degree(n) == 0)
            if len(tops) > 1:
                listed = ", ".join(_describe(t, labels) for t in tops[:_MAX_LISTED])
                more = f" and {len(tops) - _MAX_LISTED} more" if len(tops) > _MAX_LISTED else ""
                raise OntologyError(
                    f"the hierarchy has {len(tops)} top terms (terms without parents): {listed}{more}; "
                    "pass root= to choose the root"
                )
            root = tops[0]
        else:
            root = str(root)
            if full.number_of_nodes() == 0:
                full.add_node(root)
            elif root not in full:
                raise UnknownTermError(root, _suggest(root, full.nodes, labels))

        below = nx.ancestors(full, root)  # edges point child → parent, so descendants are graph ancestors
        below.add(root)
        outside = frozenset(full.nodes - below)
        full.remove_nodes_from(outside)
        return cls(full, root, labels, outside)

    def _compute_depths_and_clusters(self) -> tuple[dict[str, int], dict[str, str]]:
        """Breadth-first search from the root: depth of every term and its cluster (ties: smallest IRI)."""
        graph, root = self._graph, self._root
        depth = {root: 1}
        cluster: dict[str, str] = {}
        queue = deque([root])
        while queue:
            term = queue.popleft()
            d = depth[term] + 1
            for child in graph.predecessors(term):  # children of term
                if child not in depth:
                    depth[child] = d
                    queue.append(child)
        # Clusters, level by level: the candidates of a term come from its parents one level up.
        for term in sorted(depth, key=depth.__getitem__):
            if term == root:
                continue
            if depth[term] == 2:
                cluster[term] = term
            else:
                cluster[term] = min(
                    cluster[p] for p in graph.successors(term) if depth[p] == depth[term] - 1
                )
        return depth, cluster

    # ------------------------------------------------------------------ container protocol
    @property
    def root(self) -> str:
        """The root term."""
        return self._root

    @property
    def terms(self) -> frozenset[str]:
        """All terms of the hierarchy (the root and every term below it)."""
        return frozenset(self._depth)

    @property
    def graph(self) -> nx.DiGraph:
        """The frozen networkx graph (edges child → parent); read-only."""
        return self._graph

    @property
    def clusters(self) -> tuple[str, ...]:
        """The clusters (children of the root), sorted by IRI."""
        return tuple(sorted(self._cluster_depth))

    def __contains__(self, term: object) -> bool:
        return term in self._depth

    def __len__(self) -> int:
        return len(self._depth)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._depth))

    def __repr__(self) -> str:
        return f"<Hierarchy root={_describe(self._root, self._labels)!r} terms={len(self)}>"

    # ------------------------------------------------------------------ term checks and lookup
    def _check(self, term: str) -> str:
        """Return ``term`` if it is in the hierarchy, else raise the right error."""
        if term in self._depth:
            return term
        if term in self._outside:
            raise OntologyError(
                f"term {_describe(term, self._labels)} is not below the root {_describe(self._root, self._labels)}"
            )
        raise UnknownTermError(term, _suggest(term, self._depth, self._labels))

    def label(self, term: str) -> str | None:
        """Return the label of ``term``, or ``None`` if it has none."""
        return self._labels.get(self._check(term))

    def resolve(self, text: str) -> str:
        """Return the IRI of the term named by ``text``.

        Parameters
        ----------
        text : str
            A term IRI, a label (case-insensitive, white space collapsed) or a bare local identifier such as
            ``"RID5715"`` (matched, case-insensitively, against the part of the IRIs after the last ``/``,
            ``#`` or ``:``). They are tried in this order.

        Returns
        -------
        str
            The IRI of the term.

        Raises
        ------
        UnknownTermError
            If nothing matches; up to three close labels are suggested.
        OntologyError
            If the term exists in the input but is not below the root, or a label or identifier is shared by
            several terms (the message lists them).
        """
        if not isinstance(text, str):
            raise OntologyError(f"a term must be given as a string, got {type(text).__name__}")
        text = text.strip()
        if text in self._depth or text in self._outside:
            return self._check(text)
        found = self._by_label.get(_label_key(text))
        if not found and text and not _SEPARATORS.search(text):
            found = self._by_local.get(text.casefold())
        if found:
            if len(found) > 1:
                listed = ", ".join(_describe(t, self._labels) for t in found[:_MAX_LISTED])
                raise OntologyError(f"{text!r} names several terms: {listed}; pass the IRI")
            return self._check(found[0])
        raise UnknownTermError(text, _suggest(text, self._depth, self._labels))

    # ------------------------------------------------------------------ structure
    def parents(self, term: str) -> frozenset[str]:
        """Return the direct parents of ``term`` (empty for the root)."""
        return frozenset(self._graph.successors(self._check(term)))

    def children(self, term: str) -> frozenset[str]:
        """Return the direct children of ``term``."""
        return frozenset(self._graph.predecessors(self._check(term)))

    def ancestors(self, term: str) -> frozenset[str]:
        """Return every ancestor of ``term`` (transitively), excluding ``term`` itself."""
        return frozenset(self._up(self._check(term))) - {term}

    def depth(self, term: str) -> int:
        """Return the depth of ``term``: 1 for the root, else 1 + the smallest depth of its parents."""
        return self._depth[self._check(term)]

    def cluster(self, term: str) -> str:
        """Return the cluster of ``term``: the child of the root on a shortest path root → ``term``.

        Ties between shortest paths through different children of the root go to the smallest IRI.

        Raises
        ------
        OntologyError
            For the root, which belongs to no cluster.
        """
        self._check(term)
        if term == self._root:
            raise OntologyError(f"the root {_describe(term, self._labels)} belongs to no cluster")
        return self._cluster[term]

    def cluster_depth(self, cluster: str) -> int:
        """Return D_c, the largest depth among the terms whose cluster is ``cluster``.

        Raises
        ------
        OntologyError
            If ``cluster`` is not a child of the root.
        """
        self._check(cluster)
        if cluster not in self._cluster_depth:
            raise OntologyError(
                f"{_describe(cluster, self._labels)} is not a cluster (a child of the root "
                f"{_describe(self._root, self._labels)})"
            )
        return self._cluster_depth[cluster]

    # ------------------------------------------------------------------ pairwise queries
    def _up(self, term: str) -> dict[str, int]:
        """Shortest upward distance from ``term`` to each of its ancestors-or-self (cached)."""
        cached = self._up_cache.get(term)
        if cached is not None:
            return cached
        graph = self._graph
        dist = {term: 0}
        queue = deque([term])
        while queue:
            node = queue.popleft()
            d = dist[node] + 1
            for parent in graph.successors(node):
                if parent not in dist:
                    dist[parent] = d
                    queue.append(parent)
        self._up_cache[term] = dist
        return dist

    def path_and_lca(self, a: str, b: str) -> tuple[int, str]:
        """Return ``(path_length(a, b), lca(a, b))`` with a single pass over the common ancestors."""
        up_a, up_b = self._up(self._check(a)), self._up(self._check(b))
        if len(up_b) < len(up_a):
            up_a, up_b = up_b, up_a
        depth = self._depth
        best_path = None
        best_lca = None
        best_key = None
        for c, da in up_a.items():
            db = up_b.get(c)
            if db is None:
                continue
            if best_path is None or da + db < best_path:
                best_path = da + db
            key = (-depth[c], c)
            if best_key is None or key < best_key:
                best_key, best_lca = key, c
        # The root is an ancestor-or-self of every term, so both are set.
        return best_path, best_lca  # type: ignore[return-value]

    def lca(self, a: str, b: str) -> str:
        """Return the lowest common ancestor-or-self of ``a`` and ``b``: the deepest one, ties by smallest IRI."""
        return self.path_and_lca(a, b)[1]

    def path_length(self, a: str, b: str) -> int:
        """Return the number of edges of the shortest path a → common ancestor-or-self → b."""
        return self.path_and_lca(a, b)[0]


def _describe(term: str, labels: Mapping[str, str]) -> str:
    """Format a term for messages: ``"label <iri>"`` when it has a label, else ``"<iri>"``."""
    label = labels.get(term)
    return f"{label} <{term}>" if label else f"<{term}>"


def _suggest(text: str, terms: Iterable[str], labels: Mapping[str, str], n: int = 3) -> list[str]:
    """Up to ``n`` labels of ``terms`` close to ``text`` (difflib), best first."""
    by_key: dict[str, str] = {}
    for term in terms:
        label = labels.get(term)
        if label:
            by_key.setdefault(_label_key(label), label)
    keys = difflib.get_close_matches(_label_key(text), list(by_key), n=n)
    return [by_key[k] for k in keys]
