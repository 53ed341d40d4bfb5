"""The app's status summary (home page and ``/api/v1/status``)."""

from __future__ import annotations

import os

import ontology
import semgraph

from .services import get_store, services


def status() -> dict:
    store = get_store()
    svc = services()
    graphs = store.graphs()
    return {
        "version": getattr(semgraph, "__version__", None) or _version(),
        "store": {"location": store.location, "backend": type(store).__name__, "writable": store.writable,
                  "graphs": len(graphs), "triples": store.count()},
        "ontologies": [info.name for info in ontology.catalog(store)],
        "users": len(svc.users.list()),
        "process": os.getpid(),  # which server process answered (several with `semgraph serve --workers N`)
    }


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("semgraph")
    except PackageNotFoundError:
        return None
