"""Load ontologies into a store, one named graph each, and read their is-a hierarchy back.

A loaded ontology's graph describes itself (``<graph> a sg:OntologyGraph ; sg:ontologyName ; sg:root ;
dcterms:source ; prov:generatedAtTime``), so one atomic load writes the classes and their catalog entry together.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pyoxigraph as ox
from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS, XSD

from kg import Store
from kg.errors import LoadError
from kg.namespaces import GRAPH, RID, SG, ontology_graph
from kg.sparql import to_oxigraph
from kg.store import parse_quads

from .errors import OntologyError, OntologySourceError
from .hierarchy import Hierarchy
from .radlex_csv import read_radlex_csv

#: Name of the bundled RadLex liver subset; ``load(store, BUNDLED_RADLEX)`` loads it.
BUNDLED_RADLEX = "radlex-liver"
RADLEX_ROOT = str(RID["RID1"])
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True)
class OntologyInfo:
    """What the catalog says about one loaded ontology."""

    name: str
    graph: str
    root: str
    source: str
    loaded: str
    triples: int


def bundled_radlex_path() -> Path:
    """Path of the bundled RadLex liver subset (Turtle)."""
    return Path(str(resources.files("ontology").joinpath("data/radlex_liver_subset.ttl")))


def _read_source(source: str | os.PathLike, format: str | None) -> tuple[list[ox.Triple], str | None]:
    """Parse a source into triples; return them with the root it implies (RID1 for RadLex), if any."""
    if str(source) == BUNDLED_RADLEX:
        source = bundled_radlex_path()
    path = Path(source)
    if not path.is_file():
        raise OntologySourceError(
            f"no such ontology file: {path}. Give a Turtle/RDF-XML/OWL/N-Triples file, a RadLex CSV export, "
            f"or {BUNDLED_RADLEX!r} for the bundled RadLex liver subset")
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] == ".csv":
        return read_radlex_csv(path), RADLEX_ROOT
    try:
        triples = [q.triple for q in parse_quads(path, str(GRAPH["parse"]), format)]
    except LoadError as exc:
        if path.suffix.lower() in (".owl", ".xml") and "<Ontology" in path.read_text(errors="replace")[:4000]:
            triples = _read_owl_xml(path)
        else:
            raise OntologySourceError(str(exc)) from exc
    root = RADLEX_ROOT if any(t.subject.value == RADLEX_ROOT for t in triples) else None
    return triples, root


def _read_owl_xml(path: Path) -> list[ox.Triple]:
    """Read an OWL/XML file (not RDF/XML) through owlready2 and return its triples."""
    import owlready2

    world = owlready2.World()
    try:
        world.get_ontology(path.resolve().as_uri()).load()
    except Exception as exc:  # owlready2 raises many unrelated types for bad input
        raise OntologySourceError(f"{path}: not a readable OWL file ({exc}); nothing was written") from exc
    return [ox.Triple(*(to_oxigraph(term) for term in triple)) for triple in world.as_rdflib_graph()]


def hierarchy_edges(triples: list[ox.Triple]) -> list[tuple[str, str]]:
    """(child, parent) pairs from ``rdfs:subClassOf`` and ``skos:broader`` between IRIs (restrictions skipped)."""
    links = {str(RDFS.subClassOf), str(SKOS.broader)}
    return sorted({
        (t.subject.value, t.object.value) for t in triples
        if t.predicate.value in links and isinstance(t.subject, ox.NamedNode) and isinstance(t.object, ox.NamedNode)
        and t.subject != t.object and t.object.value != str(OWL.Thing)
    })


def triple_labels(triples: list[ox.Triple]) -> dict[str, str]:
    """Preferred label per IRI: ``skos:prefLabel``, else ``rdfs:label``."""
    labels: dict[str, str] = {}
    for predicate in (str(RDFS.label), str(SKOS.prefLabel)):
        for t in triples:
            if t.predicate.value == predicate and isinstance(t.subject, ox.NamedNode):
                labels[t.subject.value] = t.object.value
    return labels


def load(store: Store, source: str | os.PathLike, name: str | None = None, *, format: str | None = None,
         root: str | None = None) -> OntologyInfo:
    """Load an ontology into its own named graph of ``store``, replacing a previous load of the same name.

    Parameters
    ----------
    store : kg.Store
        A writable store.
    source : str or path
        A Turtle, N-Triples, RDF/XML or OWL file; a RadLex CSV export (``.csv`` or ``.csv.gz``); or
        ``"radlex-liver"`` for the bundled RadLex liver subset.
    name : str, optional
        Short name (lower-case letters, digits, ``-_.``); defaults to ``radlex-liver`` for the bundled subset,
        else the file name without extensions.
    root : str, optional
        IRI of the hierarchy's top class; by default RID1 for RadLex, else the single class without a parent.

    The hierarchy is checked (a cycle, several roots) before anything is written, and the write is atomic: a
    bad file leaves the store as it was.
    """
    if name is None:
        name = BUNDLED_RADLEX if str(source) == BUNDLED_RADLEX else Path(source).name.split(".")[0].lower()
    if not name or not set(name) <= _NAME_CHARS:
        raise OntologyError(f"invalid ontology name {name!r}: use lower-case letters, digits, '-', '_' or '.'")
    triples, implied_root = _read_source(source, format)
    edges = hierarchy_edges(triples)
    if not edges:
        raise OntologySourceError(f"{source} has no rdfs:subClassOf or skos:broader links between classes")
    hierarchy = Hierarchy.from_edges(edges, triple_labels(triples), root=root or implied_root)
    iri = ontology_graph(name)
    loaded = dt.datetime.now(dt.timezone.utc).isoformat()
    source_text = BUNDLED_RADLEX if str(source) == BUNDLED_RADLEX else str(Path(source).resolve())
    description = [
        (RDF.type, SG.OntologyGraph), (SG.ontologyName, Literal(name)), (SG.root, URIRef(hierarchy.root)),
        (DCTERMS.source, Literal(source_text)), (PROV.generatedAtTime, Literal(loaded, datatype=XSD.dateTime)),
        (SG.tripleCount, Literal(len(triples) + 6)),
    ]
    subject = to_oxigraph(iri)
    triples.extend(ox.Triple(subject, to_oxigraph(p), to_oxigraph(o)) for p, o in description)
    store.load(triples, str(iri), replace=True)
    return OntologyInfo(name, str(iri), hierarchy.root, source_text, loaded, len(triples))


_CATALOG = """
SELECT ?g ?name ?root ?source ?loaded ?triples WHERE {
  GRAPH ?g { ?g a $cls ; $nameP ?name ; $rootP ?root ; $sourceP ?source ; $timeP ?loaded ; $countP ?triples }
} ORDER BY ?name
"""


def catalog(store: Store) -> list[OntologyInfo]:
    """The ontologies loaded in ``store``, sorted by name."""
    rows = store.select(_CATALOG, {"cls": SG.OntologyGraph, "nameP": SG.ontologyName, "rootP": SG.root,
                                   "sourceP": DCTERMS.source, "timeP": PROV.generatedAtTime,
                                   "countP": SG.tripleCount})
    return [OntologyInfo(str(r["name"]), str(r["g"]), str(r["root"]), str(r["source"]), str(r["loaded"]),
                         int(r["triples"])) for r in rows]
