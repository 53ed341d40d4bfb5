"""HTML pages: home, the vocabulary, one term, and the SPARQL query page (each has a JSON twin under /api/v1)."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, current_app, render_template, request
from rdflib import BNode, Literal, URIRef

from kg import StoreError
from kg.sparql import PREFIXES
from semgraph.errors import SemgraphError
from semgraph.graph.casegraph import user_iri

from . import vocabulary as vocab
from .auth import Forbidden, current_user
from .sparql import UPDATE_ROLES, run_query, run_update
from .sparql_examples import EXAMPLES, example
from .status import status

bp = Blueprint("pages", __name__)

#: Most rows the query page shows (the endpoint and the download links give all of them).
PAGE_ROWS = 1000
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


def cell(term) -> dict:
    """What the results table shows for one RDF term (the template escapes it)."""
    if term is None:
        return {"kind": "empty", "text": ""}
    if isinstance(term, URIRef):
        return {"kind": "iri", "text": compact(str(term)), "full": str(term)}
    if isinstance(term, BNode):
        return {"kind": "bnode", "text": f"_:{term}"}
    if isinstance(term, Literal):
        suffix = f"@{term.language}" if term.language else (f"^^{compact(str(term.datatype))}"
                                                            if term.datatype is not None else "")
        return {"kind": "literal", "text": str(term), "suffix": suffix}
    return {"kind": "literal", "text": str(term), "suffix": ""}


@bp.route("/query", methods=["GET", "POST"])
def query_page():
    """The query editor. GET ?example=KEY fills it; POST runs the query (or, for curators, the update)."""
    text = request.values.get("query")
    chosen = example(request.args.get("example", ""))
    if text is None:
        text = chosen.query if chosen else EXAMPLES[0].query
    user = current_user()
    can_update = user is not None and user.has_role(*UPDATE_ROLES)
    context = {"query": text, "examples": EXAMPLES, "examples_data": [asdict(e) for e in EXAMPLES], "can_update": can_update, "result": None, "error": None,
               "message": None, "max_rows": current_app.config["SPARQL_MAX_ROWS"], "page_rows": PAGE_ROWS}
    status_code = 200
    run = request.method == "POST" or (request.method == "GET" and "query" in request.args)
    if run:
        try:
            if request.form.get("action") == "update":
                if not can_update:
                    raise Forbidden("SPARQL Update needs a logged-in curator or admin")
                activity = run_update(text, user_iri(user.name), _PERSON, f"SPARQL Update by {user.name}")
                context["message"] = f"Update applied and recorded as {activity}."
            else:
                result = run_query(text)
                context["result"] = _table(result)
        except (SemgraphError, StoreError) as exc:
            from .errors import describe

            status_code, title, message, _ = describe(exc)
            context["error"] = {"title": title, "message": message}
    return render_template("query.html", **context), status_code


def _table(result) -> dict:
    if result.form == "ask":
        return {"form": "ask", "boolean": result.boolean}
    if result.graph is not None:
        text = result.graph.serialize(format="turtle")
        return {"form": result.form, "turtle": text, "count": len(result.graph)}
    rows = [[cell(row.get(v)) for v in result.variables] for row in result.rows[:PAGE_ROWS]]
    return {"form": "select", "variables": result.variables, "rows": rows, "count": len(result.rows)}

