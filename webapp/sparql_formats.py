"""Result formats of ``/sparql`` and content negotiation between them.

SELECT/ASK: SPARQL 1.1 Results JSON, XML (serialised here), CSV, TSV (from :mod:`kg.results`).
CONSTRUCT/DESCRIBE: Turtle, N-Triples, RDF/XML, JSON-LD (rdflib), written with the query's prefixes
(:func:`bind_prefixes`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from kg import Result
from kg import results as kg_results
from semgraph.errors import SemgraphError

_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_SRX_NS = "http://www.w3.org/2005/sparql-results#"
# Characters XML 1.0 cannot carry at all.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class NotAcceptable(SemgraphError):
    status = 406
    title = "Not acceptable"


def _xml_term(term: Node) -> str:
    if isinstance(term, URIRef):
        return f"<uri>{escape(str(term))}</uri>"
    if isinstance(term, BNode):
        return f"<bnode>{escape(str(term))}</bnode>"
    if not isinstance(term, Literal):
        raise NotAcceptable(f"cannot write {term!r} in SPARQL XML")
    value = str(term)
    if _NOT_XML.search(value):
        raise NotAcceptable("a literal holds control characters that XML 1.0 cannot carry; ask for "
                            "application/sparql-results+json instead")
    if term.language:
        return f"<literal xml:lang={quoteattr(term.language)}>{escape(value)}</literal>"
    if term.datatype is not None and str(term.datatype) != _XSD_STRING:
        return f"<literal datatype={quoteattr(str(term.datatype))}>{escape(value)}</literal>"
    return f"<literal>{escape(value)}</literal>"


def to_xml(result: Result) -> str:
    """SPARQL Query Results XML Format (https://www.w3.org/TR/rdf-sparql-XMLres/)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<sparql xmlns="{_SRX_NS}">']
    if result.form == "ask":
        out += ["  <head/>", f"  <boolean>{'true' if result.boolean else 'false'}</boolean>", "</sparql>"]
        return "\n".join(out) + "\n"
    out.append("  <head>")
    out += [f"    <variable name={quoteattr(name)}/>" for name in result.variables]
    out += ["  </head>", "  <results>"]
    for row in result.rows:
        out.append("    <result>")
        for name in result.variables:
            if name in row:
                out.append(f"      <binding name={quoteattr(name)}>{_xml_term(row[name])}</binding>")
        out.append("    </result>")
    out += ["  </results>", "</sparql>"]
    return "\n".join(out) + "\n"


def bind_prefixes(graph: Graph, prefixes: dict[str, str]) -> Graph:
    """``graph`` with ``prefixes`` (name → namespace IRI) bound for serialising, in place of rdflib's own names
    (``ns1:`` ...) and of any earlier binding of the same name or namespace."""
    for name, namespace in prefixes.items():
        graph.bind(name, URIRef(namespace), override=True, replace=True)
    return graph


@dataclass(frozen=True)
class Format:
    """One output format: the media type sent, the ``format=`` short name and the serialiser."""

    media_type: str
    name: str
    write: Callable[[Result], str | bytes]
    aliases: tuple[str, ...] = ()


def _graph_writer(rdflib_format: str) -> Callable[[Result], bytes]:
    def write(result: Result) -> bytes:
        return result.graph.serialize(format=rdflib_format, encoding="utf-8")

    return write


#: Formats of SELECT and ASK results, the default first.
TABLE_FORMATS = (
    Format("application/sparql-results+json", "json", kg_results.to_json),
    Format("application/sparql-results+xml", "xml", to_xml),
    Format("text/csv", "csv", kg_results.to_csv),
    Format("text/tab-separated-values", "tsv", kg_results.to_tsv),
)
#: Formats of CONSTRUCT and DESCRIBE results, the default first.
GRAPH_FORMATS = (
    Format("text/turtle", "turtle", _graph_writer("turtle"), ("ttl",)),
    Format("application/n-triples", "ntriples", _graph_writer("nt"), ("nt",)),
    Format("application/rdf+xml", "rdfxml", _graph_writer("xml"), ("xml", "rdf")),  # SPARQLWrapper sends format=xml
    Format("application/ld+json", "jsonld", _graph_writer("json-ld"), ("json", "json-ld")),
)
# Other names clients use for the same formats.
_ALIASES = {
    "application/json": "application/sparql-results+json",
    "application/xml": "application/sparql-results+xml",
    "text/xml": "application/sparql-results+xml",
    "application/turtle": "text/turtle",
    "application/x-turtle": "text/turtle",
    "text/plain": "application/n-triples",
}
HTML = "text/html"


def negotiate(form: str, accept, format_name: str | None = None, *, html: bool = False) -> Format | None:
    """The format for a result of ``form`` from the ``format=`` parameter, else the Accept header.

    Returns None when ``html`` is allowed and the client prefers HTML (a browser). Raises :class:`NotAcceptable`
    when the client accepts none of the formats.
    """
    formats = GRAPH_FORMATS if form in ("construct", "describe") else TABLE_FORMATS
    by_type = {f.media_type: f for f in formats}
    if format_name:
        for f in formats:
            if format_name in (f.name, f.media_type, *f.aliases):
                return f
        raise NotAcceptable(f"format={format_name!r} is not available for {form.upper()} results; use one of "
                            f"{', '.join(f.name for f in formats)}")
    offers = [f.media_type for f in formats] + [a for a, t in _ALIASES.items() if t in by_type]
    if html:
        offers.append(HTML)
    if not accept:  # no Accept header: the default
        return formats[0]
    best = accept.best_match(offers)
    if best is None:
        raise NotAcceptable(f"none of the accepted media types fits a {form.upper()} result; this endpoint writes "
                            + ", ".join(f.media_type for f in formats))
    if best == HTML:
        return None
    return by_type[_ALIASES.get(best, best)]
