"""Serialise query results in the W3C SPARQL 1.1 result formats (JSON, CSV, TSV) and as a text table."""

from __future__ import annotations

import csv
import io
import json

from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from .store import Result

_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def _json_term(term: Node) -> dict:
    if isinstance(term, URIRef):
        return {"type": "uri", "value": str(term)}
    if isinstance(term, BNode):
        return {"type": "bnode", "value": str(term)}
    out = {"type": "literal", "value": str(term)}
    if term.language:
        out["xml:lang"] = term.language
    elif term.datatype is not None and str(term.datatype) != _XSD_STRING:
        out["datatype"] = str(term.datatype)
    return out


def to_json(result: Result) -> str:
    """SPARQL 1.1 Query Results JSON (https://www.w3.org/TR/sparql11-results-json/)."""
    if result.form == "ask":
        return json.dumps({"head": {}, "boolean": result.boolean})
    rows = [{name: _json_term(term) for name, term in row.items()} for row in result.rows]
    return json.dumps({"head": {"vars": result.variables}, "results": {"bindings": rows}}, ensure_ascii=False)


def to_csv(result: Result) -> str:
    """SPARQL 1.1 Query Results CSV: plain values, blank nodes as ``_:label``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if result.form == "ask":
        writer.writerow(["boolean"])
        writer.writerow(["true" if result.boolean else "false"])
        return out.getvalue()
    writer.writerow(result.variables)
    for row in result.rows:
        writer.writerow([_csv_value(row.get(name)) for name in result.variables])
    return out.getvalue()


def _csv_value(term: Node | None) -> str:
    if term is None:
        return ""
    return f"_:{term}" if isinstance(term, BNode) else str(term)


def to_tsv(result: Result) -> str:
    """SPARQL 1.1 Query Results TSV: terms in Turtle syntax."""
    if result.form == "ask":
        return "?boolean\n" + ("true" if result.boolean else "false") + "\n"
    lines = ["\t".join("?" + name for name in result.variables)]
    for row in result.rows:
        lines.append("\t".join(row[name].n3() if name in row else "" for name in result.variables))
    return "\n".join(lines) + "\n"


def to_table(result: Result, *, max_width: int = 60) -> str:
    """A fixed-width text table for terminals (values shortened to ``max_width`` characters)."""
    if result.form == "ask":
        return "true" if result.boolean else "false"

    def cell(term: Node | None) -> str:
        text = "" if term is None else (str(term) if not isinstance(term, Literal) or not term.language
                                         else f"{term}@{term.language}")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    header = result.variables
    body = [[cell(row.get(name)) for name in header] for row in result.rows]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in body]
    lines.append(f"({len(body)} row{'s' if len(body) != 1 else ''})")
    return "\n".join(lines)
