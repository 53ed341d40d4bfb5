"""The knowledge-graph store: one interface over an embedded Oxigraph store and a remote SPARQL 1.1 endpoint.

Public API::

    store = kg.open_store("./semgraph-data/graph")            # or "http://host:7878/query"
    store.select("SELECT ?l WHERE { GRAPH ?g { $t rdfs:label ?l } }", {"t": URIRef(...)})
    store.update(...); store.load(path_or_graph, graph_iri); store.dump(graph_iri); store.graphs(); store.drop(g)
"""

from .errors import (
                     LoadError,
                     QueryError,
                     ReadOnlyStoreError,
                     RemoteEndpointError,
                     ResultTooLargeError,
                     StoreError,
                     StoreLockedError,
)
from .store import Result, Store, open_store

__all__ = [
                     "LoadError",
                     "QueryError",
                     "ReadOnlyStoreError",
                     "RemoteEndpointError",
                     "Result",
                     "ResultTooLargeError",
                     "Store",
                     "StoreError",
                     "StoreLockedError",
                     "open_store",
]
