"""The is-a hierarchy answered by SPARQL property paths on the store, without an in-memory copy.

It is the reference the networkx cache (:class:`ontology.hierarchy.Hierarchy`) is checked against, and a way for
curators to see how each answer is obtained. Depths are counted as ancestors-or-self, so on a tree (one parent per
class, as in the RadLex exports) every answer equals the cached one; on a hierarchy with several parents per class,
use the cached :class:`~ontology.hierarchy.Hierarchy`, which follows shortest paths.
"""

from __future__ import annotations

from rdflib import URIRef
from rdflib.namespace import RDFS, SKOS

from kg import Store

from .errors import OntologyError, UnknownTermError

_PREFIX = f"PREFIX rdfs: <{RDFS}>\nPREFIX skos: <{SKOS}>\n"
_UP = "(rdfs:subClassOf|skos:broader)"


class SparqlHierarchy:
    """Hierarchy queries on the named graph ``graph`` of ``store`` whose top class is ``root``."""

    def __init__(self, store: Store, graph: str, root: str):
        self.store = store
        self.graph = URIRef(graph)
        self.root = root

    def _select(self, body: str, **bindings) -> list[dict]:
        bound = {"g": self.graph, **{k: URIRef(v) for k, v in bindings.items()}}
        return self.store.select(_PREFIX + body, bound)

    def _check(self, term: str) -> None:
        if not self.store.ask(_PREFIX + "ASK { GRAPH $g { { $t ?p ?o } UNION { ?s ?p $t } } }",
                              {"g": self.graph, "t": URIRef(term)}):
            raise UnknownTermError(term)

    def parents(self, term: str) -> frozenset[str]:
        """Direct parents of ``term``."""
        self._check(term)
        rows = self._select(f"SELECT ?p WHERE {{ GRAPH $g {{ $t {_UP} ?p FILTER(isIRI(?p)) }} }}", t=term)
        return frozenset(str(r["p"]) for r in rows)

    def ancestors(self, term: str) -> frozenset[str]:
        """All ancestors of ``term`` (excluding itself)."""
        self._check(term)
        rows = self._select(f"SELECT DISTINCT ?a WHERE {{ GRAPH $g {{ $t {_UP}+ ?a FILTER(isIRI(?a)) }} }}", t=term)
        return frozenset(str(r["a"]) for r in rows)

    def depth(self, term: str) -> int:
        """Number of ancestors-or-self of ``term`` (root = 1)."""
        self._check(term)
        rows = self._select(f"SELECT (COUNT(DISTINCT ?a) AS ?d) WHERE {{ GRAPH $g {{ $t {_UP}* ?a }} }}", t=term)
        return int(rows[0]["d"])

    def lca(self, a: str, b: str) -> str:
        """The deepest common ancestor-or-self of ``a`` and ``b`` (ties: smallest IRI)."""
        self._check(a)
        self._check(b)
        rows = self._select(
            f"SELECT ?c (COUNT(DISTINCT ?up) AS ?d) WHERE {{ GRAPH $g {{ $a {_UP}* ?c . $b {_UP}* ?c . "
            f"?c {_UP}* ?up }} }} GROUP BY ?c ORDER BY DESC(?d) STR(?c) LIMIT 1", a=a, b=b)
        if not rows:
            raise OntologyError(f"{a} and {b} have no common ancestor")
        return str(rows[0]["c"])

    def path_length(self, a: str, b: str) -> int:
        """Edges on the path a → LCA → b: depth(a) + depth(b) − 2·depth(LCA)."""
        return self.depth(a) + self.depth(b) - 2 * self.depth(self.lca(a, b))

    def cluster(self, term: str) -> str:
        """The root's child on the path root → ``term``."""
        self._check(term)
        rows = self._select(
            f"SELECT ?c WHERE {{ GRAPH $g {{ $t {_UP}* ?c . ?c {_UP} $r }} }} ORDER BY STR(?c) LIMIT 1",
            t=term, r=self.root)
        if not rows:
            raise OntologyError(f"{term} is the root or not below it, so it has no cluster")
        return str(rows[0]["c"])

    def cluster_depth(self, cluster: str) -> int:
        """D_c: the largest depth among the classes of ``cluster``."""
        rows = self._select(
            f"SELECT (MAX(?d) AS ?m) WHERE {{ {{ SELECT ?n (COUNT(DISTINCT ?up) AS ?d) WHERE {{ GRAPH $g {{ "
            f"?n {_UP}* $c . ?n {_UP}* ?up }} }} GROUP BY ?n }} }}", c=cluster)
        return int(rows[0]["m"])
