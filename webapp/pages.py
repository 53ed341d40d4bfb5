"""HTML pages: home, the vocabulary, one term, and the SPARQL query page (each has a JSON twin under /api/v1)."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import asdict

from flask import Blueprint, current_app, render_template, request, url_for
from rdflib import BNode, Literal, URIRef

from kg import QueryError, StoreError
from kg.namespaces import ID, RID
from kg.sparql import PREFIXES, declared_prefixes, query_form, with_page
from semgraph.errors import InvalidInput, SemgraphError
from semgraph.graph.casegraph import user_iri

from . import vocabulary as vocab
from .auth import Forbidden, current_user
from .sparql import UPDATE_ROLES, as_plain_sparql, limits, run_query, run_update
from .sparql_examples import EXAMPLES, example
from .sparql_formats import bind_prefixes
from .status import status

bp = Blueprint("pages", __name__)

#: Most rows the query page shows of a query with its own LIMIT (the endpoint and the download links give all).
PAGE_ROWS = 1000
#: Rows per page of a SELECT without LIMIT, which the page runs with LIMIT/OFFSET added.
PAGE_SIZE = 100
#: Largest OFFSET the page accepts.
MAX_OFFSET = 10**9
_CASES = str(ID) + "case/"
_RID_TERM = re.compile(r"RID\d+")
_PERSON = URIRef("http://www.w3.org/ns/prov#Person")


@bp.route("/")
def home():
    return render_template("home.html", status=status())


@bp.route("/terms")
def terms():
    rows = vocab.vocabulary()
    categories: dict[str, list[dict]] = {}
    for row in rows:
        categories.setdefault(row["category"], []).append(row)
    return render_template("terms.html", categories=categories, count=len(rows))


@bp.route("/terms/<rid>")
def term(rid: str):
    return render_template("term.html", term=vocab.term(rid))


def compact(iri: str) -> str:
    """``rdfs:label`` for a full IRI under a predeclared prefix, else the IRI."""
    for prefix, base in PREFIXES.items():
        if iri.startswith(base) and len(iri) > len(base):
            return f"{prefix}:{iri[len(base):]}"
    return iri


def link(iri: str) -> str | None:
    """Where an IRI of a result links to: our term and case pages for RadLex terms and cases, the IRI itself for
    other http(s) IRIs, nothing for any other scheme (``javascript:``, ``file:``, ``urn:`` ...)."""
    if iri.startswith(str(RID)) and _RID_TERM.fullmatch(iri[len(str(RID)):]):
        return url_for("pages.term", rid=iri[len(str(RID)):])
    if iri.startswith(_CASES) and iri[len(_CASES):] and "/" not in iri[len(_CASES):]:
        return url_for("radiology.case_page", case_id=urllib.parse.unquote(iri[len(_CASES):]))
    return iri if urllib.parse.urlsplit(iri).scheme in ("http", "https") else None


def cell(term) -> dict:
    """What the results table shows for one RDF term (the template escapes it)."""
    if term is None:
        return {"kind": "empty", "text": ""}
    if isinstance(term, URIRef):
        return {"kind": "iri", "text": compact(str(term)), "full": str(term), "href": link(str(term))}
    if isinstance(term, BNode):
        return {"kind": "bnode", "text": f"_:{term}"}
    if isinstance(term, Literal):
        suffix = f"@{term.language}" if term.language else (f"^^{compact(str(term.datatype))}"
                                                            if term.datatype is not None else "")
        return {"kind": "literal", "text": str(term), "suffix": suffix}
    return {"kind": "literal", "text": str(term), "suffix": ""}


def _offset() -> int:
    text = request.values.get("offset", "0")
    if not re.fullmatch(r"\d{1,10}", text) or int(text) > MAX_OFFSET:
        raise InvalidInput(f"offset must be a whole number from 0 to {MAX_OFFSET:,}")
    return int(text)


@bp.route("/query", methods=["GET", "POST"])
def query_page():
    """The query editor. GET ?example=KEY fills it; POST (or GET ?query=) runs the query, a SELECT without LIMIT
    one page of :data:`PAGE_SIZE` rows from ``offset`` on; curators can run the text as an update instead."""
    text = request.values.get("query")
    chosen = example(request.args.get("example", ""))
    if text is None:
        text = chosen.query if chosen else EXAMPLES[0].query
    user = current_user()
    can_update = user is not None and user.has_role(*UPDATE_ROLES)
    context = {"query": text, "examples": EXAMPLES, "examples_data": [asdict(e) for e in EXAMPLES],
               "can_update": can_update, "user": user, "result": None, "error": None, "message": None,
               "max_rows": current_app.config["SPARQL_MAX_ROWS"], "page_rows": PAGE_ROWS, "page_size": PAGE_SIZE,
               "prefixes": PREFIXES}
    status_code = 200
    run = request.method == "POST" or (request.method == "GET" and "query" in request.args)
    if run:
        try:
            if request.form.get("action") == "update":
                if not can_update:
                    raise Forbidden("SPARQL Update needs a logged-in curator or admin")
                outcome = run_update(text, user_iri(user.name), _PERSON, f"SPARQL Update by {user.name}")
                context["message"] = f"{outcome.summary()} Recorded as {outcome.activity}."
            else:
                context["result"] = _run(text, _offset())
        except (SemgraphError, StoreError) as exc:
            from .errors import describe

            status_code, title, message, _ = describe(exc)
            context["error"] = {"title": title, "message": message, **_position(message, text)}
    return render_template("query.html", **context), status_code


_POSITION = re.compile(r"\berror at (\d+):(\d+)|\bat line (\d+), column (\d+)")


def _position(message: str, text: str) -> dict[str, int]:
    """``line`` and ``column`` of the first position an error message names (the parser's ``error at 3:14``, or
    ``at line 3, column 14``) for the editor to mark, kept within ``text`` (the parser names the position after
    the last character it read, which can be the end of the text). Empty when the message names no position."""
    match = _POSITION.search(message)
    if match is None:
        return {}
    line, column = (int(g) for g in match.groups() if g is not None)
    lines = text.split("\n")
    if line > len(lines):
        line, column = len(lines), len(lines[-1]) + 1
    return {"line": line, "column": min(column, len(lines[line - 1]) + 1)}


def _run(text: str, offset: int) -> dict:
    """Run ``text`` for the page: a SELECT without LIMIT/OFFSET one page at ``offset`` (one row more is asked for,
    to know whether a next page exists; a page stays below the endpoint's row limit), any other query as it is."""
    plain = as_plain_sparql(text)
    size = max(1, min(PAGE_SIZE, limits().rows - 1))
    paged = with_page(plain, size + 1, offset) if query_form(plain) == "select" else None
    try:
        result = run_query(paged if paged is not None else text)
    except QueryError as exc:
        if paged is None or "malformed SPARQL" not in str(exc):
            raise
        result, paged = run_query(text), None  # the parser's message and position as for the user's own text
    if result.form == "ask":
        return {"form": "ask", "boolean": result.boolean}
    if result.graph is not None:
        turtle = bind_prefixes(result.graph, declared_prefixes(plain)).serialize(format="turtle")
        return {"form": result.form, "turtle": turtle, "count": len(result.graph)}
    shown = result.rows[:size if paged is not None else PAGE_ROWS]
    table = {"form": "select", "variables": result.variables, "count": len(result.rows), "paged": paged is not None,
             "rows": [[cell(row.get(v)) for v in result.variables] for row in shown]}
    if paged is not None:
        table.update(first=offset + 1, last=offset + len(shown), more=len(result.rows) > size,
                     next_offset=offset + size, previous_offset=max(0, offset - size), offset=offset)
    return table

