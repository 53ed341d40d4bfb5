"""Fixtures: the hand-drawn toy taxonomy and the bundled RadLex subset as in-memory hierarchies."""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib
from rdflib.namespace import RDFS

from ontology.hierarchy import Hierarchy
from ontology.loading import bundled_radlex_path

TOY_TTL = Path(__file__).resolve().parents[1] / "data" / "toy_taxonomy.ttl"


def load_ttl(source) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(child, parent) rdfs:subClassOf edges between IRIs and rdfs:label of every subject, parsed with rdflib."""
    g = rdflib.Graph()
    g.parse(source, format="turtle")
    edges = [
        (str(s), str(o))
        for s, o in g.subject_objects(RDFS.subClassOf)
        if isinstance(s, rdflib.URIRef) and isinstance(o, rdflib.URIRef)
    ]
    labels = {str(s): str(o) for s, o in g.subject_objects(RDFS.label) if isinstance(s, rdflib.URIRef)}
    return edges, labels


@pytest.fixture(scope="session")
def toy() -> Hierarchy:
    edges, labels = load_ttl(TOY_TTL)
    return Hierarchy.from_edges(edges, labels)


@pytest.fixture(scope="session")
def radlex() -> Hierarchy:
    edges, labels = load_ttl(bundled_radlex_path())
    return Hierarchy.from_edges(edges, labels, root="http://radlex.org/RID/RID1")
