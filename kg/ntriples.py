"""N-Triples text of single terms, escaped and validated by pyoxigraph.

The fast way to write many triples: build their N-Triples text with these (no rdflib objects), then hand the text
to :meth:`kg.Store.load` as ``bytes`` with ``format="ntriples"``. An invalid IRI raises ``ValueError``.

>>> iri("http://example.org/a")
'<http://example.org/a>'
>>> literal('say "hi"\\n')
'"say \\\\"hi\\\\"\\\\n"'
>>> literal("0.5", "http://www.w3.org/2001/XMLSchema#double")
'"0.5"^^<http://www.w3.org/2001/XMLSchema#double>'
"""

from __future__ import annotations

import pyoxigraph as ox

__all__ = ["iri", "literal"]


def iri(value: str) -> str:
    """``<value>``; ValueError when ``value`` is not an absolute IRI."""
    return str(ox.NamedNode(value))


def literal(value: str, datatype: str | None = None) -> str:
    """``"value"`` (an ``xsd:string``) or ``"value"^^<datatype>``, with quotes, backslashes and line breaks escaped."""
    return str(ox.Literal(value) if datatype is None else ox.Literal(value, datatype=ox.NamedNode(datatype)))
