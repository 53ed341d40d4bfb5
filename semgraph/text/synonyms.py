"""Synonyms of the vocabulary terms: the shipped list, and ``skos:altLabel`` in the knowledge graph.

The list ``semgraph/data/synonyms.tsv`` is our own (see ``semgraph/data/README.md``): one row per
(term, phrase) with the term's RadLex id, the phrase and a note. :func:`write_synonyms` writes it into the named graph
:data:`SYNONYMS_GRAPH` as ``rid:RIDnnnn skos:altLabel "phrase"@en`` (one atomic replace of that graph), and
:func:`read_synonyms` reads the alternative labels back from the store, so curators can edit synonyms with SPARQL
and the text parser (:mod:`semgraph.text.textquery`) uses what the graph holds.

Errors: a malformed list raises :class:`semgraph.errors.InvalidInput` naming the line; nothing is written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import SKOS

from kg import Store
from kg.namespaces import GRAPH, RID
from semgraph.errors import InvalidInput

__all__ = ["SYNONYMS_GRAPH", "Synonym", "bundled_synonyms", "parse_synonyms", "read_synonyms", "synonym_graph",
           "write_synonyms"]

#: Named graph holding the synonyms as ``skos:altLabel``.
SYNONYMS_GRAPH = GRAPH["synonyms"]

_HEADER = ("rid", "synonym", "note")
_RID = re.compile(r"^RID[0-9]+$")
#: Longest accepted synonym (characters).
MAX_SYNONYM_LENGTH = 200


class Synonym(NamedTuple):
    """One row of the synonym list."""

    rid: str
    synonym: str
    note: str = ""

    @property
    def iri(self) -> str:
        """The term's RadLex IRI."""
        return str(RID[self.rid])


def parse_synonyms(text: str) -> list[Synonym]:
    """Parse the TSV text of a synonym list (header ``rid  synonym  note``).

    Raises
    ------
    semgraph.errors.InvalidInput
        On a wrong header, a malformed RadLex id, an empty or over-long synonym, or a duplicate (rid, synonym) pair;
        the message names the line.
    """
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or tuple(c.strip().lower() for c in rows[0][:3]) != _HEADER:
        raise InvalidInput("the synonym list must start with the header line 'rid<TAB>synonym<TAB>note'")
    out: list[Synonym] = []
    seen: set[tuple[str, str]] = set()
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise InvalidInput(f"line {line_no}: expected 'rid<TAB>synonym[<TAB>note]', got {row!r}")
        rid, synonym = row[0].strip(), " ".join(row[1].split())
        note = row[2].strip() if len(row) > 2 else ""
        if not _RID.match(rid):
            raise InvalidInput(f"line {line_no}: {rid!r} is not a RadLex id like 'RID5707'")
        if not synonym or len(synonym) > MAX_SYNONYM_LENGTH:
            raise InvalidInput(f"line {line_no}: the synonym must have 1 to {MAX_SYNONYM_LENGTH} characters")
        key = (rid, synonym.lower())
        if key in seen:
            raise InvalidInput(f"line {line_no}: duplicate synonym {synonym!r} for {rid}")
        seen.add(key)
        out.append(Synonym(rid, synonym, note))
    return out


def bundled_synonyms(path: str | Path | None = None) -> list[Synonym]:
    """The shipped list ``semgraph/data/synonyms.tsv`` (or the TSV file at ``path``)."""
    if path is None:
        text = resources.files("semgraph").joinpath("data/synonyms.tsv").read_text(encoding="utf-8")
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read the synonym list {path}: {exc.strerror}") from None
    return parse_synonyms(text)


def synonym_graph(synonyms: Iterable[Synonym]) -> Graph:
    """The triples ``<term> skos:altLabel "synonym"@en`` of a synonym list."""
    g = Graph()
    for s in synonyms:
        g.add((URIRef(s.iri), SKOS.altLabel, Literal(s.synonym, lang="en")))
    return g


def write_synonyms(store: Store, synonyms: Sequence[Synonym] | None = None) -> int:
    """Replace the synonyms graph with ``synonyms`` (default: the shipped list) in one atomic write.

    Returns the number of triples written.
    """
    rows = bundled_synonyms() if synonyms is None else list(synonyms)
    for s in rows:
        if not isinstance(s, Synonym):
            raise InvalidInput(f"expected Synonym rows, got {type(s).__name__}")
    return store.load(synonym_graph(rows), str(SYNONYMS_GRAPH), replace=True)


_READ = """
SELECT ?t ?l WHERE { GRAPH ?g { ?t skos:altLabel ?l FILTER(isIRI(?t) && isLiteral(?l)) } }
"""
_READ_ONE = """
SELECT ?t ?l WHERE { GRAPH $g { ?t skos:altLabel ?l FILTER(isIRI(?t) && isLiteral(?l)) } }
"""


def read_synonyms(store: Store, terms: Iterable[str] | None = None, *, graph: str | None = None
                  ) -> dict[str, list[str]]:
    """Alternative labels in the store: ``{term IRI: sorted synonyms}``.

    Parameters
    ----------
    terms : iterable of str, optional
        Keep only these term IRIs (default: every term with an ``skos:altLabel``).
    graph : str, optional
        Read only this named graph (default: every named graph, so altLabels that arrive with an ontology count too).
    """
    if graph is None:
        rows = store.select(_READ)
    else:
        rows = store.select(_READ_ONE, {"g": URIRef(graph)})
    keep = None if terms is None else {str(t) for t in terms}
    out: dict[str, set[str]] = {}
    for r in rows:
        term = str(r["t"])
        if keep is None or term in keep:
            out.setdefault(term, set()).add(str(r["l"]))
    return {t: sorted(v) for t, v in sorted(out.items())}
