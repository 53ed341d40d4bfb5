"""Closed vocabularies and the IRIs of our named graphs.

``SG`` is semgraph's own vocabulary, published with labels and comments in ``kg/vocab/sg.ttl`` (a test keeps the
two in step). A typo such as ``SG.Cse`` is an ``AttributeError``. Where W3C PROV-O or SKOS has the notion we use
their terms (``PROV.wasGeneratedBy``, ``SKOS.altLabel`` ...), re-exported here from rdflib.
"""

from __future__ import annotations

import urllib.parse
from importlib import resources

from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS, XSD, DefinedNamespace

__all__ = [
    "ANNOTATIONS_GRAPH",
    "BASELINE_GRAPH",
    "CATALOG_GRAPH",
    "COLLECTIONS_GRAPH",
    "DCTERMS",
    "GRAPH",
    "ID",
    "OWL",
    "PROV",
    "RDF",
    "RDFS",
    "RID",
    "SG",
    "SKOS",
    "VOCABULARY_GRAPH",
    "XSD",
    "feedback_graph",
    "ontology_graph",
    "session_graph",
    "vocabulary_graph",
]

#: RadLex classes, as the RadLex 4.x OWL release names them.
RID = Namespace("http://radlex.org/RID/")
#: Named graphs of a semgraph store.
GRAPH = Namespace("https://w3id.org/semgraph/graph/")
#: Resources minted by semgraph (cases, patients, rounds ...).
ID = Namespace("https://w3id.org/semgraph/id/")


class SG(DefinedNamespace):
    """semgraph vocabulary, https://w3id.org/semgraph/vocab# (version 0.1, 2026-11)."""

    _NS = Namespace("https://w3id.org/semgraph/vocab#")
    _fail = True

    # classes
    Patient: URIRef
    Study: URIRef
    Image: URIRef
    Case: URIRef
    Annotation: URIRef
    TermLikelihood: URIRef
    TermModel: URIRef
    TermSimilarity: URIRef
    RetrievalSession: URIRef
    FeedbackRound: URIRef
    Mark: URIRef
    Promotion: URIRef
    OntologyGraph: URIRef
    Proposal: URIRef
    Export: URIRef
    Collection: URIRef
    CollectionTerm: URIRef
    # case and study metadata
    patient: URIRef
    study: URIRef
    image: URIRef
    imageFile: URIRef
    maskFile: URIRef
    diagnosis: URIRef
    studyDate: URIRef
    age: URIRef
    sex: URIRef
    contrastPhase: URIRef
    liverSegment: URIRef
    caption: URIRef
    # annotations
    annotates: URIRef
    annotationKind: URIRef
    likelihood: URIRef
    term: URIRef
    value: URIRef
    termValues: URIRef
    # term similarities
    termA: URIRef
    termB: URIRef
    dissimilarity: URIRef
    previous: URIRef
    kind: URIRef
    measure: URIRef
    # feedback
    session: URIRef
    roundNumber: URIRef
    pending: URIRef
    queryCase: URIRef
    queryVector: URIRef
    queryText: URIRef
    mark: URIRef
    markedCase: URIRef
    relevance: URIRef
    algorithm: URIRef
    parameters: URIRef
    guard: URIRef
    guardStep: URIRef
    termWeights: URIRef
    # ontology catalog
    ontologyName: URIRef
    root: URIRef
    tripleCount: URIRef
    # ontology-update proposals
    confidence: URIRef
    ontologicalDissimilarity: URIRef
    supportingSessions: URIRef
    supportingUsers: URIRef
    opposingSessions: URIRef
    currentParent: URIRef
    # collections
    inCollection: URIRef
    collectionTerm: URIRef
    position: URIRef
    category: URIRef
    exclusiveGroup: URIRef
    ontology: URIRef
    termRoot: URIRef
    modality: URIRef
    caseLabel: URIRef
    similarityBasis: URIRef


CATALOG_GRAPH = GRAPH["catalog"]
COLLECTIONS_GRAPH = GRAPH["collections"]
ANNOTATIONS_GRAPH = GRAPH["annotations"]
BASELINE_GRAPH = GRAPH["similarity/baseline"]
VOCABULARY_GRAPH = GRAPH["vocabulary"]


def ontology_graph(name: str) -> URIRef:
    """The named graph of the ontology loaded as ``name``."""
    return GRAPH[f"ontology/{name}"]


def feedback_graph(round_id: str) -> URIRef:
    """The named graph holding one feedback round."""
    return GRAPH[f"feedback/{round_id}"]


def session_graph(session_id: str) -> URIRef:
    """The named graph holding a retrieval session's start record (its description and start parameters)."""
    return GRAPH[f"session/{urllib.parse.quote(session_id, safe='')}"]


def vocabulary_graph() -> Graph:
    """The published ``sg:`` vocabulary as an rdflib graph."""
    text = resources.files("kg").joinpath("vocab/sg.ttl").read_text(encoding="utf-8")
    return Graph().parse(data=text, format="turtle")
