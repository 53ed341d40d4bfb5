"""The learned edges as text: PROV-O RDF (Turtle, JSON-LD) and CSV, plus the Turtle writer the proposal uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyoxigraph as ox
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, SKOS, XSD

from kg import Store
from kg.namespaces import ID, SG
from kg.sparql import to_oxigraph
from semgraph.exchange.export.relations import Edge, labeller, local_id
from semgraph.files import csv_text
from semgraph.graph import rounds as _rounds
from semgraph.graph.casegraph import case_iri

__all__ = ["CSV_COLUMNS", "bind_prefixes", "edges_csv", "edges_graph", "edges_json_ld", "turtle"]

#: Columns of the CSV export (one row per learned edge).
CSV_COLUMNS = ("term_a", "label_a", "term_b", "label_b", "previous", "dissimilarity", "change", "edge", "round",
               "round_number", "session", "query_case", "user", "generated_at", "round_started", "round_ended",
               "algorithm", "parameters", "relevant_cases", "irrelevant_cases", "neutral_cases", "derived_from",
               "graph")
_RID = "http://radlex.org/RID/"


def bind_prefixes(g: Graph) -> None:
    """Bind the prefixes of the exports (sg, prov, skos, rdfs, xsd, dcterms, rid, id) in ``g``."""
    for prefix, ns in (("sg", SG._NS), ("prov", PROV), ("skos", SKOS), ("rdfs", RDFS), ("xsd", XSD),
                       ("dcterms", DCTERMS), ("rid", Namespace(_RID)), ("id", ID)):
        g.bind(prefix, ns, override=True)


def turtle(g: Graph) -> str:
    """Turtle of ``g`` written by pyoxigraph: doubles keep every digit (rdflib 7 writes ``9.279437e-01``)."""
    triples = [ox.Triple(to_oxigraph(s), to_oxigraph(p), to_oxigraph(o))
               for s, p, o in sorted(g, key=lambda t: (str(t[0]), str(t[1]), str(t[2])))]
    prefixes = {prefix: str(ns) for prefix, ns in g.namespaces()
                if prefix in ("sg", "prov", "skos", "rdfs", "rdf", "xsd", "dcterms", "rid")}
    prefixes["rdf"] = str(RDF)
    return ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=prefixes).decode("utf-8")


def edges_graph(store: Store, edges: Sequence[Edge], label: Callable[[str], str] | None = None) -> Graph:
    """The learned edges with their rounds, sessions, users and marks, as an rdflib graph (PROV-O)."""
    label = label or labeller(store)
    g = Graph()
    bind_prefixes(g)
    for e in edges:
        r, s, u = URIRef(e.round), URIRef(e.session), URIRef(e.user_iri)
        for triple in _rounds.pair_triples(
                URIRef(e.iri), round_=r, term_a=e.term_a, term_b=e.term_b, value=e.value, previous=e.previous,
                user=u, generated_at=e.generated_at, derived_from=e.derived_from) + _rounds.round_triples(
                r, session=s, number=e.round_number, user=u, started=e.round_started, ended=e.round_ended,
                algorithm=e.algorithm, parameters=e.parameters, marks=e.marks, guard=e.guard, step=e.guard_step):
            g.add(triple)
        for t in (e.term_a, e.term_b):
            g.add((URIRef(t), RDFS.label, Literal(label(t))))
        g.add((s, RDF.type, SG.RetrievalSession))
        g.add((s, RDF.type, PROV.Activity))
        g.add((s, RDFS.label, Literal(e.session_id)))
        g.add((s, PROV.wasAssociatedWith, u))
        if e.query_case is not None:
            g.add((s, SG.queryCase, case_iri(e.query_case)))
        g.add((u, RDF.type, PROV.Person))
        g.add((u, RDFS.label, Literal(e.user)))
    return g


def edges_json_ld(store: Store, edges: Sequence[Edge], label: Callable[[str], str] | None = None) -> str:
    """:func:`edges_graph` as JSON-LD with a context of the export prefixes."""
    context = {"sg": str(SG._NS), "prov": str(PROV), "rdfs": str(RDFS), "xsd": str(XSD), "skos": str(SKOS),
               "rid": _RID, "id": str(ID)}
    return edges_graph(store, edges, label).serialize(format="json-ld", context=context, indent=2)


def _mark_ids(edge: Edge, value: str) -> list[str]:
    return [c for c, v in edge.marks if v == value]


def edges_csv(edges: Sequence[Edge], label: Callable[[str], str]) -> str:
    """A header of :data:`CSV_COLUMNS` and one row per edge, formula-like texts neutralised
    (:func:`semgraph.files.spreadsheet_cell`)."""
    rows = ([e.term_a, label(e.term_a), e.term_b, label(e.term_b), repr(e.previous), repr(e.value),
             repr(e.value - e.previous), e.iri, local_id(e.round, "round"), e.round_number, e.session_id,
             e.query_case or "", e.user, e.generated_at.isoformat(), e.round_started.isoformat(),
             e.round_ended.isoformat(), e.algorithm, e.parameters, " ".join(_mark_ids(e, "relevant")),
             " ".join(_mark_ids(e, "irrelevant")), " ".join(_mark_ids(e, "neutral")), " ".join(e.derived_from),
             e.graph] for e in edges)
    return csv_text([CSV_COLUMNS, *rows])
