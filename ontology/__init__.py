"""Ontologies in the knowledge graph: loading, hierarchy access and ontological term dissimilarity δΘ.

Public API::

    ontology.load(store, source, name=...)                      # one named graph per ontology
    ontology.catalog(store)                                     # what is loaded
    ontology.hierarchy(store, name=None)                        # cached in-memory Hierarchy
    ontology.dissimilarity_matrix(store, term_iris, measure="kurtz")
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdflib import URIRef
from rdflib.namespace import RDFS, SKOS

from kg import Store

from .errors import (
    HierarchyCycleError,
    OntologyError,
    OntologySourceError,
    UnknownTermError,
)
from .hierarchy import Hierarchy
from .loading import BUNDLED_RADLEX, OntologyInfo, catalog, load
from .measures import MEASURES
from .measures import dissimilarity_matrix as _matrix
from .sparql_hierarchy import SparqlHierarchy

__all__ = [
    "load", "catalog", "hierarchy", "sparql_hierarchy", "dissimilarity_matrix", "find_ontology",
    "Hierarchy", "SparqlHierarchy", "OntologyInfo", "MEASURES", "BUNDLED_RADLEX",
    "OntologyError", "UnknownTermError", "HierarchyCycleError", "OntologySourceError",
]

_EDGES = f"""
PREFIX rdfs: <{RDFS}>
PREFIX skos: <{SKOS}>
SELECT ?c ?p WHERE {{ GRAPH $g {{ ?c rdfs:subClassOf|skos:broader ?p FILTER(isIRI(?c) && isIRI(?p) && ?c != ?p) }} }}
"""
_LABELS = f"""
PREFIX rdfs: <{RDFS}>
PREFIX skos: <{SKOS}>
SELECT ?t ?l WHERE {{ GRAPH $g {{ ?t rdfs:label|skos:prefLabel ?l FILTER(isIRI(?t)) }} }}
"""
# (store location, graph, load time) -> Hierarchy; a reload changes the load time and so the key.
_cache: dict[tuple[str, str, str], Hierarchy] = {}


def _info(store: Store, name: str | None) -> OntologyInfo:
    loaded = catalog(store)
    if not loaded:
        raise OntologyError(f"no ontology is loaded in {store.location}; run `semgraph ontology load FILE` first")
    if name is None:
        return loaded[0] if len(loaded) == 1 else _by_name(loaded, BUNDLED_RADLEX)
    return _by_name(loaded, name)


def _by_name(loaded: list[OntologyInfo], name: str) -> OntologyInfo:
    for info in loaded:
        if info.name == name:
            return info
    raise OntologyError(f"no ontology named {name!r} is loaded; loaded: {', '.join(i.name for i in loaded)}")


def hierarchy(store: Store, name: str | None = None) -> Hierarchy:
    """The is-a hierarchy of the ontology ``name`` (default: the only one, else ``radlex-liver``), cached.

    The cache is keyed by the ontology's load time, so a reload is picked up on the next call.
    """
    info = _info(store, name)
    key = (store.location, info.graph, info.loaded)
    if key not in _cache:
        g = URIRef(info.graph)
        edges = [(str(r["c"]), str(r["p"])) for r in store.select(_EDGES, {"g": g})]
        labels = {str(r["t"]): str(r["l"]) for r in store.select(_LABELS, {"g": g})}
        _cache[key] = Hierarchy.from_edges(edges, labels, root=info.root)
    return _cache[key]


def sparql_hierarchy(store: Store, name: str | None = None) -> SparqlHierarchy:
    """The same hierarchy answered by SPARQL on the store (no cache)."""
    info = _info(store, name)
    return SparqlHierarchy(store, info.graph, info.root)


def find_ontology(store: Store, terms: Sequence[str], *, resolve: bool = False) -> str:
    """Name of the first loaded ontology (by name; ``radlex-liver`` first) that holds every term.

    ``terms`` are IRIs; with ``resolve`` they may also be RadLex ids or labels (:meth:`Hierarchy.resolve`). Raises
    :class:`UnknownTermError` (with suggestions) for a term the first ontology does not know, else
    :class:`OntologyError` when none is loaded or no single one holds them all.
    """
    loaded = sorted(catalog(store), key=lambda i: (i.name != BUNDLED_RADLEX, i.name))
    if not loaded:
        raise OntologyError(f"no ontology is loaded in {store.location}; run `semgraph ontology load FILE` first")
    for info in loaded:
        if _holds(hierarchy(store, info.name), terms, resolve):
            return info.name
    first = hierarchy(store, loaded[0].name)
    for term in terms:
        first.resolve(term)  # raises UnknownTermError with suggestions
    raise OntologyError("no single loaded ontology holds all of the terms")


def _holds(h: Hierarchy, terms: Sequence[str], resolve: bool) -> bool:
    if not resolve:
        return all(t in h for t in terms)
    try:
        for term in terms:
            h.resolve(term)
    except OntologyError:
        return False
    return True


def dissimilarity_matrix(store: Store, term_iris: Sequence[str], measure: str = "kurtz", *,
                         ontology: str | None = None, gamma: float = 1.0) -> np.ndarray:
    """The k×k ontological dissimilarity δΘ between ``term_iris`` (see :func:`ontology.measures.dissimilarity_matrix`).

    ``ontology`` names the loaded ontology to use; by default the first one that holds every term.
    """
    name = ontology or find_ontology(store, term_iris)
    return _matrix(hierarchy(store, name), term_iris, measure, gamma=gamma)
