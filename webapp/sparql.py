"""``/sparql``: a SPARQL 1.1 Protocol endpoint over the app's store.

Queries: GET ``?query=``, POST form ``query=``, POST ``application/sparql-query``; open to everyone, admitted by
the app's :class:`~webapp.services.QueryGate` (a bounded pool with a per-client limit, apart from the request
threads of the app's own pages), with a time limit (``SPARQL_TIMEOUT``, 503 beyond; the store server cancels the
query) and a result limit (``SPARQL_MAX_ROWS``: a larger result is refused with 400, never silently cut).
Results by content negotiation (see :mod:`webapp.sparql_formats`), or
``format=json|xml|csv|tsv|turtle|ntriples|rdfxml|jsonld``.

Updates: POST ``application/sparql-update`` or form ``update=``; only for a logged-in curator or admin (with the
session's CSRF token, as form field or ``X-CSRF-Token`` header), a curator's or admin's API token
(``Authorization: Bearer``, no CSRF token), or a client sending ``Authorization: Bearer <SPARQL_UPDATE_TOKEN>``. ``SERVICE`` and ``LOAD`` are refused (400) unless ``SPARQL_ALLOW_REMOTE``. Each
accepted update is applied together with its ``prov:Activity`` audit record in the graph
<https://w3id.org/semgraph/graph/audit>, as one request, so the store never holds an update without its record.
The answer gives the triple count of each graph the update changed, before and after (:class:`UpdateOutcome`).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, request
from rdflib import Literal, URIRef

from kg import QueryError, Result
from kg.namespaces import ANNOTATIONS_GRAPH, GRAPH, ID
from kg.replica import QueryReplica
from kg.sparql import (
    PREFIXES,
    check_nesting,
    declared_prefixes,
    outbound_operations,
    query_form,
    undeclared_prefix,
)
from semgraph.errors import SemgraphError
from semgraph.graph.casegraph import update_annotations, user_iri

from .auth import Forbidden, NotLoggedIn, current_user, is_update_token
from .csrf import check_csrf, csrf_exempt
from .engines import invalidate
from .services import get_store, services
from .sparql_formats import bind_prefixes, negotiate

bp = Blueprint("sparql", __name__)

#: The named graph of the update audit trail.
AUDIT_GRAPH = GRAPH["audit"]
#: The agent that updates sent with the configured bearer token are attributed to.
TOKEN_AGENT = ID["agent/sparql-update-token"]
UPDATE_ROLES = ("curator", "admin")

_PROV = "http://www.w3.org/ns/prov#"
# Full IRIs only: the update before this text may redeclare any prefix.
_AUDIT = f"""
INSERT DATA {{ GRAPH $graph {{
  $activity a <{_PROV}Activity> ;
    <http://www.w3.org/2000/01/rdf-schema#label> $label ;
    <{_PROV}wasAssociatedWith> $agent ;
    <{_PROV}startedAtTime> $time ;
    <{_PROV}used> $request .
  $agent a $agent_type .
  $request a <{_PROV}Entity> ;
    <{_PROV}value> $text ;
    <http://purl.org/dc/terms/format> "application/sparql-update" .
}} }}
"""
# Strings, IRIs, comments (copied through), $variables (rewritten to ?variables), stray quotes (an error).
_TOKENS = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
    r'|<[^<>"{}|^`\\\x00-\x20]*>'
    r"|#[^\n]*"
    r"|\$(?P<var>[A-Za-z0-9_][A-Za-z0-9_\u00b7\u0300-\u036f\u203f\u2040]*)"
    r"|(?P<stray>[\"'])",
    re.DOTALL,
)
# Triples per graph, leaving out the audit trail and the annotations graph's version stamp (both written by every
# update through this endpoint, so they would hide what the update itself did).
_GRAPH_SIZES = """
SELECT ?g (COUNT(*) AS ?n) WHERE {
  GRAPH ?g { ?s ?p ?o }
  FILTER(?g != $audit && !(?g = $annotations && ?s = $annotations && ?p = owl:versionInfo))
} GROUP BY ?g
"""


class ResultTooLarge(SemgraphError):
    status = 400
    title = "Result too large"


class OutboundRefused(SemgraphError):
    status = 400
    title = "Outbound request refused"


class UnsupportedMediaType(SemgraphError):
    status = 415
    title = "Unsupported media type"


class RequestTooLarge(SemgraphError):
    status = 413
    title = "Query too long"


def as_plain_sparql(text: str) -> str:
    """``text`` with its ``$var`` variables written ``?var`` (the store reserves ``$name`` for bound parameters).

    Raises :class:`kg.QueryError` for an unterminated string, so nothing after it can be swallowed into it.
    """

    def rewrite(match: re.Match[str]) -> str:
        if match.group("stray"):
            raise QueryError(f"malformed SPARQL: unterminated string starting at character {match.start()}")
        return "?" + match.group("var") if match.group("var") else match.group(0)

    return _TOKENS.sub(rewrite, text)


@dataclass
class Limits:
    rows: int
    timeout: float
    length: int


def limits() -> Limits:
    cfg = current_app.config
    return Limits(int(cfg["SPARQL_MAX_ROWS"]), float(cfg["SPARQL_TIMEOUT"]), int(cfg["SPARQL_MAX_QUERY_LENGTH"]))


def check_length(text: str, what: str = "query") -> None:
    limit = limits().length
    if len(text) > limit:
        raise RequestTooLarge(f"the {what} has {len(text):,} characters; the limit is {limit:,}")


def check_outbound(text: str) -> None:
    """Refuse ``SERVICE`` and ``LOAD`` (the store would fetch from other servers) unless SPARQL_ALLOW_REMOTE."""
    found = outbound_operations(text)
    if found and not current_app.config["SPARQL_ALLOW_REMOTE"]:
        raise OutboundRefused(f"{found[0]} is not allowed on this endpoint: it makes the server fetch data from "
                              "another address. The administrator can allow federated queries and LOAD with the "
                              "setting SEMGRAPH_SPARQL_ALLOW_REMOTE=1.")


def client_key() -> tuple[str, str]:
    """(gate, key) a query counts against: the users' gate and the user's name, else the anonymous clients' gate
    and the client's IP address."""
    user = current_user()
    return ("user", user.name) if user is not None else ("anonymous", str(request.remote_addr))


def _named_prefix(exc: QueryError, text: str) -> QueryError:
    """A one-line error naming the undeclared prefix for the parser's "Prefix not found" (which otherwise lists
    the Unicode ranges of a name); any other error as it is."""
    found = undeclared_prefix(text) if "Prefix not found" in str(exc) else None
    if found is None:
        return exc
    prefix, line, column = found
    return QueryError(f"unknown prefix {prefix}: at line {line}, column {column}; declare it with PREFIX {prefix}: "
                      f"<...> (predeclared: {' '.join(PREFIXES)})")


def run_query(text: str) -> Result:
    """Run a read-only query with the endpoint's admission, time and size limits (see :class:`QueryGate`)."""
    check_length(text)
    if not text.strip():
        raise QueryError("the query is empty")
    plain = as_plain_sparql(text)
    check_nesting(plain)
    form = query_form(plain)
    check_outbound(plain)
    lim = limits()
    public = services().public
    gate, client = client_key()
    try:
        result = services().gates[gate].run(client, lambda: public.query(plain, max_rows=lim.rows + 1),
                                            lim.timeout)
    except QueryError as exc:
        raise _named_prefix(exc, plain) from exc
    size = len(result.rows) if form == "select" else len(result.graph) if result.graph is not None else 0
    if size > lim.rows:
        unit = "rows" if form == "select" else "triples"
        page = f"LIMIT {lim.rows} OFFSET 0, then OFFSET {lim.rows} for the next page" if form == "select" \
            else f"LIMIT {lim.rows} (on a CONSTRUCT it limits the solutions, not the triples)"
        raise ResultTooLarge(f"the result has more than {lim.rows:,} {unit}, the limit of this endpoint; page "
                             f"through it with ORDER BY and {page}, or aggregate with COUNT/GROUP BY")
    return result


@dataclass(frozen=True)
class UpdateOutcome:
    """What an update did: its audit activity and, for each graph whose size changed, (triples before, after)."""

    activity: URIRef
    changes: dict[str, tuple[int, int]]

    @property
    def added(self) -> int:
        return sum(max(0, after - before) for before, after in self.changes.values())

    @property
    def removed(self) -> int:
        return sum(max(0, before - after) for before, after in self.changes.values())

    def summary(self) -> str:
        """One sentence for people: the net triples added and removed, or that nothing changed."""
        if not self.changes:
            return "The update changed nothing: no named graph gained or lost a triple."
        graphs = "; ".join(f"{graph}: {before:,} → {after:,}" for graph, (before, after) in self.changes.items())
        return (f"{self.added:,} triple{'s' if self.added != 1 else ''} added and {self.removed:,} removed "
                f"({graphs}).")

    def as_json(self) -> dict:
        return {"activity": str(self.activity), "audit_graph": str(AUDIT_GRAPH), "added": self.added,
                "removed": self.removed, "graphs": [{"graph": graph, "before": before, "after": after}
                                                    for graph, (before, after) in self.changes.items()]}


def _graph_sizes(store) -> dict[str, int]:
    rows = store.select_values(_GRAPH_SIZES, {"audit": AUDIT_GRAPH, "annotations": ANNOTATIONS_GRAPH})
    return {graph: int(count) for graph, count in rows}


def run_update(text: str, agent: URIRef, agent_type: URIRef, label: str) -> UpdateOutcome:
    """Apply an update and its audit record in one store request; return the activity and the graphs it resized.

    The sizes of the named graphs are counted just before and after (on the store, not a replica), so they are net
    changes per graph: an update that replaces a triple by another in the same graph counts as no change of size,
    a write by someone else in between would be counted too, and triples written to the default graph (outside
    any named graph, which semgraph never does) are not counted. Each count reads the whole store: about 0.2 s
    per 100,000 triples.

    The same request gives the annotations graph a new version stamp, and the app then forgets its retrieval
    engine and sessions: an update may have changed cases, so derived copies (the engine snapshot beside the store,
    the in-memory engine) are rebuilt from the graph on next use.
    """
    check_length(text, "update")
    body = as_plain_sparql(text).rstrip()
    if not body.strip():
        raise QueryError("the update is empty")
    check_nesting(body)
    check_outbound(body)
    body = body.removesuffix(";")
    key = uuid.uuid4().hex
    activity, used = ID[f"sparql-update/{key}"], ID[f"sparql-update/{key}/request"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    store = get_store()
    bindings = {"graph": AUDIT_GRAPH, "activity": activity, "label": label, "agent": agent,
                "agent_type": agent_type, "time": Literal(now.isoformat(), datatype=URIRef(
                    "http://www.w3.org/2001/XMLSchema#dateTime")), "request": used, "text": text}
    before = _graph_sizes(store)
    try:
        update_annotations(store, body + "\n;\n" + _AUDIT, bindings)
    except QueryError as exc:
        raise _named_prefix(exc, body) from exc
    after = _graph_sizes(store)
    changes = {graph: (before.get(graph, 0), after.get(graph, 0)) for graph in sorted(before.keys() | after.keys())
               if before.get(graph, 0) != after.get(graph, 0)}
    if isinstance(services().public, QueryReplica):
        services().public.invalidate()  # the curator's next query reads what was written
    invalidate(services())
    return UpdateOutcome(activity, changes)


def _update_agent() -> tuple[URIRef, URIRef, str]:
    """Who may run this update: the endpoint's update token (its software agent), a curator's or admin's API token
    (:func:`webapp.auth.authenticate_bearer` has made them the user), or a logged-in curator/admin; else 401/403."""
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer"
    if bearer and is_update_token(sent.strip()):
        return TOKEN_AGENT, URIRef(_PROV + "SoftwareAgent"), "SPARQL Update with the update token"
    user = current_user()
    if user is None:
        error = NotLoggedIn("SPARQL Update needs a logged-in curator, a curator's API token or the update token "
                            "(Authorization: Bearer ...); queries are open to everyone")
        error.headers = {"WWW-Authenticate": 'Bearer realm="semgraph"'}
        raise error
    if not user.has_role(*UPDATE_ROLES):
        raise Forbidden(f"SPARQL Update needs the curator or admin role; {user.name} is a {user.role}")
    if not bearer:
        check_csrf()  # a cookie is sent by the browser on its own: any update it authorises must prove it came from us
    return user_iri(user.name), URIRef(_PROV + "Person"), f"SPARQL Update by {user.name}"


def _read_request() -> tuple[str | None, str | None]:
    """(query, update) of a protocol request; raises for malformed requests."""
    if request.args.get("default-graph-uri") or request.args.get("named-graph-uri") or \
            request.form.get("default-graph-uri") or request.form.get("named-graph-uri"):
        raise QueryError("default-graph-uri and named-graph-uri are not supported; use FROM / FROM NAMED or GRAPH "
                         "in the query (the default graph is the union of all named graphs)")
    if request.method == "GET":
        if "update" in request.args:
            raise QueryError("SPARQL Update must be sent with POST")
        return request.args.get("query"), None
    mimetype = request.mimetype
    if mimetype == "application/sparql-query":
        return _body(), None
    if mimetype == "application/sparql-update":
        return None, _body()
    if mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        query, update = request.form.get("query"), request.form.get("update")
        if query is not None and update is not None:
            raise QueryError("send either query= or update=, not both")
        return query, update
    raise UnsupportedMediaType(f"POST bodies must be application/sparql-query, application/sparql-update or "
                               f"form-encoded; got {mimetype or 'no content type'}")


def _body() -> str:
    data = request.get_data(cache=True)
    try:
        return data.decode(request.mimetype_params.get("charset", "utf-8"))
    except (UnicodeDecodeError, LookupError) as exc:
        raise QueryError(f"the request body is not valid text: {exc}") from exc


def serialise(result: Result, fmt) -> Response:
    body = fmt.write(result)
    charset = "; charset=utf-8" if fmt.media_type.startswith("text/") or "json" in fmt.media_type \
        or "xml" in fmt.media_type else ""
    return Response(body, status=200, content_type=fmt.media_type + charset)


@bp.route("/sparql", methods=["GET", "POST"])
@csrf_exempt  # queries are read-only; updates authorised by a session cookie are CSRF-checked in _update_agent
def endpoint():
    """The SPARQL 1.1 Protocol endpoint (see the module docstring)."""
    query, update = _read_request()
    if update is not None:
        agent, agent_type, label = _update_agent()
        outcome = run_update(update, agent, agent_type, label)
        return {"message": "update applied: " + outcome.summary(), **outcome.as_json()}, 200
    if query is None:
        if request.method == "GET" and request.accept_mimetypes.best_match(
                ["application/sparql-results+json", "text/html"]) == "text/html":
            from .pages import query_page

            return query_page()
        raise QueryError("no query: pass query= (GET or form POST) or POST application/sparql-query; "
                         "the query page is at /query")
    check_length(query)
    form = query_form(as_plain_sparql(query))
    fmt = negotiate(form, request.accept_mimetypes if request.headers.get("Accept") else None,
                    request.values.get("format"), html=request.method == "GET")
    if fmt is None:  # a browser: show the results on the query page
        from .pages import query_page

        return query_page()
    result = run_query(query)
    if result.graph is not None:
        bind_prefixes(result.graph, declared_prefixes(as_plain_sparql(query)))
    return serialise(result, fmt)
