"""Feedback rounds as RDF: the one owner of a round's graph shape, the queries that read and claim rounds, and the
vote of independent sessions on a learned term pair.

Each round is one named graph ``feedback_graph(round_id)`` (``id:`` = ``https://w3id.org/semgraph/id/``)::

    id:session/S  a sg:RetrievalSession, prov:Activity ; rdfs:label "S" ; sg:queryCase id:case/C ;
                  sg:queryVector "[...]"^^rdf:JSON ; sg:inCollection id:collection/N ;
                  prov:wasAssociatedWith id:user/alice ; prov:startedAtTime "..."
                  (a session started from a free-text query has sg:queryText "..." and no sg:queryCase)
    id:user/alice a prov:Person ; rdfs:label "alice"
    id:round/R    a sg:FeedbackRound, prov:Activity ; sg:session id:session/S ; sg:roundNumber 1 ;
                  prov:startedAtTime "..." ; prov:endedAtTime "..." ; prov:wasAssociatedWith id:user/alice ;
                  sg:algorithm "penalty" ; sg:parameters "{...}"^^rdf:JSON ; sg:queryVector "[...]"^^rdf:JSON ;
                  sg:guard "reduced" ; sg:guardStep 0.5 ;   (when the round guard ran)
                  sg:termWeights "{...}"^^rdf:JSON ;        (the term weights after it, when it has some)
                  prov:used id:case/C5 ; sg:mark id:round/R/mark/1
    id:round/R/mark/1  a sg:Mark ; sg:markedCase id:case/C5 ; sg:relevance "relevant"
    id:round/R/pair/RID43336/RID6042  a sg:TermSimilarity, prov:Entity ; sg:termA rid:RID43336 ; sg:termB rid:RID6042 ;
                  sg:dissimilarity 0.32 ; sg:previous 0.42 ; sg:kind "learned" ; prov:wasGeneratedBy id:round/R ;
                  prov:wasAttributedTo id:user/alice ; prov:generatedAtTime "..." ; prov:wasDerivedFrom id:case/C5

(the session's description is repeated in each of its rounds' graphs, so that every round graph is self-contained
and dropping the last one removes the session). A round written as a claim carries ``sg:pending true`` until it is
confirmed (:func:`confirm`); every reader skips such rounds (:func:`recorded`), and :func:`stored_rounds` is what the
claim check of :mod:`semgraph.feedback.claims` sees. :func:`round_triples` and :func:`pair_triples` build the
triples for every writer (the session, the export), :func:`session_triples` the session's description in a round
graph; :func:`votes` is the one rule by which independent sessions vote on a pair (promotion candidates, export
tables and proposals).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, XSD

from kg import Store
from kg.namespaces import GRAPH, ID, SG, feedback_graph
from kg.sparql import insert_data
from semgraph.errors import InvalidInput, SemgraphError
from semgraph.graph.casegraph import case_iri, user_iri

__all__ = ["FEEDBACK_PREFIX", "RELEVANCE", "CaseRound", "LearnedChange", "SessionNet", "StoredRound", "Vote", "Votes",
           "case_rounds", "confirm", "drop_if_last", "feedback_cases", "feedback_graph", "insert_round", "is_recorded",
           "learned_changes", "local_id", "marks_of", "pair_changes_of", "pair_iri", "pair_triples", "recorded",
           "round_ids_of", "round_iri", "round_triples", "rounds_of", "session_iri", "session_net", "session_triples",
           "stored_rounds", "user_node", "votes"]

#: Prefix of the IRIs of the round graphs (``feedback_graph(round_id)``).
FEEDBACK_PREFIX = str(GRAPH["feedback/"])
#: The values of a mark's ``sg:relevance``.
RELEVANCE = ("relevant", "irrelevant", "neutral")
#: Seconds after its computation at which a round still pending (claimed, neither recorded nor withdrawn) is taken
#: for the leftover of a crashed process: it no longer holds its number, and the next client that sees it drops it.
CLAIM_LEASE = 120.0


def session_iri(session_id: str) -> URIRef:
    """IRI of the retrieval session ``session_id``."""
    return ID["session/" + urllib.parse.quote(session_id, safe="")]


def round_iri(round_id: str) -> URIRef:
    """IRI of the feedback round ``round_id`` (its graph is ``feedback_graph(round_id)``)."""
    return ID["round/" + urllib.parse.quote(round_id, safe="")]


def local_id(iri, prefix: str) -> str:
    """The id in the IRI ``id:<prefix>/<id>`` (the inverse of :func:`session_iri`, :func:`round_iri`, ...);
    :class:`SemgraphError` for an IRI of another kind."""
    text = str(iri)
    base = str(ID[prefix + "/"])
    if not text.startswith(base):
        raise SemgraphError(f"unexpected IRI {text} (expected {base}...)")
    return urllib.parse.unquote(text[len(base):])


def user_node(user) -> tuple[URIRef, str]:
    """The IRI and name of the user a round or promotion is associated with: ``user`` is a name or an ``id:user/``
    IRI; :class:`InvalidInput` for a missing name."""
    if isinstance(user, URIRef):
        return user, local_id(user, "user")
    if not isinstance(user, str) or not user.strip():
        raise InvalidInput("a user name is required (who gives the feedback)")
    return user_iri(user.strip()), user.strip()


def _tail(iri: str) -> str:
    return urllib.parse.quote(iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1], safe="")


def pair_iri(round_: URIRef, term_a: str, term_b: str) -> URIRef:
    """IRI of the learned ``sg:TermSimilarity`` of ``term_a``/``term_b`` generated by ``round_``."""
    return URIRef(f"{round_}/pair/{_tail(term_a)}/{_tail(term_b)}")


def recorded(var: str = "r") -> str:
    """The SPARQL filter that hides round ``?var`` while it is a claim not yet confirmed (``sg:pending``)."""
    return f"FILTER NOT EXISTS {{ ?{var} sg:pending ?pending }}"


def _time(value: dt.datetime) -> Literal:
    return Literal(value.isoformat(), datatype=XSD.dateTime)


def session_triples(session: URIRef, *, session_id: str, user: URIRef, user_name: str, started: dt.datetime,
                    query_vector: Literal, query_case: str | None = None, query_text: str | None = None,
                    collection: URIRef | None = None) -> list[tuple]:
    """The triples of a session's description (repeated in each of its round graphs) and of its user."""
    g: list[tuple] = [(session, RDF.type, SG.RetrievalSession), (session, RDF.type, PROV.Activity),
                      (session, RDFS.label, Literal(session_id))]
    if query_case is not None:
        g.append((session, SG.queryCase, case_iri(query_case)))
    g.append((session, SG.queryVector, query_vector))
    if query_text is not None:
        g.append((session, SG.queryText, Literal(query_text)))
    if collection is not None:
        g.append((session, SG.inCollection, collection))
    g += [(session, PROV.wasAssociatedWith, user), (session, PROV.startedAtTime, _time(started)),
          (user, RDF.type, PROV.Person), (user, RDFS.label, Literal(user_name))]
    return g


def start_triples(session: URIRef, *, title: str, parameters: str) -> list[tuple]:
    """The start parameters of a session, kept with its description in :func:`kg.namespaces.session_graph`: a
    ``dcterms:title`` and ``parameters`` (JSON text: k, filters, algorithm, warnings)."""
    return [(session, DCTERMS.title, Literal(title)), (session, SG.parameters, Literal(parameters, datatype=RDF.JSON))]


_START = "SELECT ?title ?parameters WHERE { GRAPH $g { $s dcterms:title ?title ; sg:parameters ?parameters } }"


def session_start(store: Store, session: URIRef, graph: URIRef) -> tuple[str, str] | None:
    """``(title, parameters JSON)`` of a session's start record in ``graph``, or None (a session recorded only with
    its rounds)."""
    rows = store.select_values(_START, {"g": graph, "s": session})
    return (rows[0][0], rows[0][1]) if rows else None


def round_triples(round_: URIRef, *, session: URIRef, number: int, user: URIRef, started: dt.datetime,
                  ended: dt.datetime, algorithm: str, parameters: str, marks: Iterable[tuple[str, str]],
                  query_vector: Literal | None = None, guard: str | None = None,
                  step: float | None = None, term_weights: Literal | None = None) -> list[tuple]:
    """The triples of a round itself: its provenance, ``parameters`` (JSON text), the marks ((case id, relevance),
    numbered 1, 2 ... in the order given; writers give them sorted by case id) and, when given, the query vector,
    the round guard's outcome with the step it took and the term weights after the round (``{term IRI: w}``,
    rdf:JSON)."""
    g: list[tuple] = [
        (round_, RDF.type, SG.FeedbackRound), (round_, RDF.type, PROV.Activity), (round_, SG.session, session),
        (round_, SG.roundNumber, Literal(number, datatype=XSD.integer)),
        (round_, PROV.startedAtTime, _time(started)), (round_, PROV.endedAtTime, _time(ended)),
        (round_, PROV.wasAssociatedWith, user), (round_, SG.algorithm, Literal(algorithm)),
        (round_, SG.parameters, Literal(parameters, datatype=RDF.JSON))]
    if query_vector is not None:
        g.append((round_, SG.queryVector, query_vector))
    if guard is not None:
        g += [(round_, SG.guard, Literal(guard)), (round_, SG.guardStep, Literal(float(step), datatype=XSD.double))]
    if term_weights is not None:
        g.append((round_, SG.termWeights, term_weights))
    for n, (case_id, value) in enumerate(marks, start=1):
        m = URIRef(f"{round_}/mark/{n}")
        g += [(round_, SG.mark, m), (round_, PROV.used, case_iri(case_id)), (m, RDF.type, SG.Mark),
              (m, SG.markedCase, case_iri(case_id)), (m, SG.relevance, Literal(value))]
    return g


def pair_triples(edge: URIRef, *, round_: URIRef, term_a: str, term_b: str, value: float, previous: float,
                 user: URIRef, generated_at: dt.datetime, derived_from: Iterable[str] = ()) -> list[tuple]:
    """The triples of one learned pair change ``edge`` (normally :func:`pair_iri`) of ``round_``; ``derived_from``
    are the ids of the marked cases that support it."""
    g: list[tuple] = [
        (edge, RDF.type, SG.TermSimilarity), (edge, RDF.type, PROV.Entity), (edge, SG.termA, URIRef(term_a)),
        (edge, SG.termB, URIRef(term_b)), (edge, SG.dissimilarity, Literal(float(value), datatype=XSD.double)),
        (edge, SG.previous, Literal(float(previous), datatype=XSD.double)), (edge, SG.kind, Literal("learned")),
        (edge, PROV.wasGeneratedBy, round_), (edge, PROV.wasAttributedTo, user),
        (edge, PROV.generatedAtTime, _time(generated_at))]
    g += [(edge, PROV.wasDerivedFrom, case_iri(c)) for c in derived_from]
    return g


# --------------------------------------------------------------------------------------------------- claiming

class StoredRound(NamedTuple):
    """A stored round as the claim check sees it."""

    iri: str
    number: int
    pending: bool


_STORED_FROM = ("SELECT DISTINCT ?r ?n ?g ?end ?pending WHERE { GRAPH ?g { ?r a sg:FeedbackRound ; sg:session $s ; "
                "sg:roundNumber ?n ; prov:endedAtTime ?end OPTIONAL { ?r sg:pending ?pending } } FILTER(?n >= $n) }")
# Drops the round's graph only if no other round of the session has its number or a higher one.
_DROP_IF_LAST = """DELETE { GRAPH $g { ?x ?p ?o } } WHERE {
  GRAPH $g { ?x ?p ?o }
  FILTER NOT EXISTS { GRAPH ?h { ?other a sg:FeedbackRound ; sg:session $s ; sg:roundNumber ?m }
                      FILTER(?m >= $n && ?other != $r) }
}"""


def insert_round(store: Store, round_: URIRef, graph: URIRef, triples: Iterable[tuple], *, pending: bool) -> None:
    """Write the graph of ``round_`` (its ``triples``) in one update; ``pending``: as a claim (``sg:pending true``)."""
    triples = list(triples) + ([(round_, SG.pending, Literal(True))] if pending else [])
    store.update(insert_data(triples), {"g": graph})


def confirm(store: Store, round_: URIRef, graph: URIRef) -> None:
    """Make the claim ``round_`` a recorded round (remove its ``sg:pending``)."""
    store.update("DELETE DATA { GRAPH $g { $r sg:pending true } }", {"g": graph, "r": round_})


def is_recorded(store: Store, round_: URIRef, graph: URIRef) -> bool:
    """Is ``round_`` stored in ``graph`` and not pending?"""
    return store.ask(f"ASK {{ GRAPH $g {{ $r a sg:FeedbackRound {recorded('r')} }} }}", {"g": graph, "r": round_})


def stored_rounds(store: Store, session: URIRef, number: int) -> list[StoredRound]:
    """The rounds of ``session`` stored with number ``number`` or higher, recorded or pending. A pending one past
    :data:`CLAIM_LEASE` is the leftover of a crashed claimant: it is dropped here and left out."""
    out, now = [], dt.datetime.now(dt.UTC)
    for r in store.select(_STORED_FROM, {"s": session, "n": number}):
        stored = StoredRound(str(r["r"]), int(r["n"]), "pending" in r)
        if stored.pending and (now - r["end"].toPython()).total_seconds() > CLAIM_LEASE:
            store.drop(str(r["g"]))
        else:
            out.append(stored)
    return out


def drop_if_last(store: Store, round_: URIRef, graph: URIRef, *, session: URIRef, number: int) -> None:
    """Empty the graph of round ``round_`` (number ``number`` of ``session``) in one update, unless another round of
    the session has its number or a higher one. The emptied graph's name is left; drop it once checked."""
    store.update(_DROP_IF_LAST, {"g": graph, "r": round_, "s": session, "n": number})


# --------------------------------------------------------------------------------------------------- reading

def _case_id(iri) -> str:
    return urllib.parse.unquote(str(iri)[len(str(ID["case/"])):])


_ROUNDS = f"""
SELECT ?r ?n ?alg ?params ?start ?end ?vector ?guard ?step ?weights WHERE {{
  ?r a sg:FeedbackRound ; sg:session $s ; sg:roundNumber ?n ; sg:algorithm ?alg ; sg:parameters ?params ;
     prov:startedAtTime ?start ; prov:endedAtTime ?end ; sg:queryVector ?vector .
  OPTIONAL {{ ?r sg:guard ?guard ; sg:guardStep ?step }}
  OPTIONAL {{ ?r sg:termWeights ?weights }}
  {recorded()}
}} ORDER BY ?n"""
_ROUND_IDS = f"SELECT DISTINCT ?r WHERE {{ ?r a sg:FeedbackRound ; sg:session $s {recorded()} }}"
_MARKS = """
SELECT ?r ?case ?relevance WHERE { ?r sg:session $s ; sg:mark ?m . ?m sg:markedCase ?case ; sg:relevance ?relevance }
"""
_ALL_MARKS = """
SELECT DISTINCT ?r ?case ?relevance WHERE {
  GRAPH ?g { ?r a sg:FeedbackRound ; sg:mark ?m . ?m sg:markedCase ?case ; sg:relevance ?relevance }
  FILTER(STRSTARTS(STR(?g), $prefix))
}"""
_PAIRS = """
SELECT ?r ?e ?a ?b ?d ?prev ?from WHERE {
  ?r sg:session $s . ?e prov:wasGeneratedBy ?r ; sg:kind "learned" ; sg:termA ?a ; sg:termB ?b ; sg:dissimilarity ?d ;
     sg:previous ?prev . OPTIONAL { ?e prov:wasDerivedFrom ?from }
}"""


def rounds_of(store: Store, session: URIRef) -> list[dict]:
    """The recorded (not pending) rounds of ``session`` in number order: rows with ``r`` (IRI), ``n``, ``alg``,
    ``params`` (JSON), ``start``, ``end``, ``vector`` (JSON), for a guarded round ``guard`` and ``step``, and for a
    round with term weights ``weights`` (JSON ``{term IRI: w}``), as RDF terms."""
    return store.select(_ROUNDS, {"s": session})


def round_ids_of(store: Store, session: URIRef) -> set[str]:
    """IRIs of the recorded (not pending) rounds of ``session``."""
    return {str(r["r"]) for r in store.select(_ROUND_IDS, {"s": session})}


def marks_of(store: Store, session: URIRef | None = None) -> dict[str, dict[str, str]]:
    """round IRI → {marked case id: relevance} for the rounds of ``session`` (None: of every round graph), pending
    ones included: callers look up the rounds they read."""
    query, bindings = (_MARKS, {"s": session}) if session is not None else (_ALL_MARKS, {"prefix": FEEDBACK_PREFIX})
    out: dict[str, dict[str, str]] = {}
    for r in store.select(query, bindings):
        out.setdefault(str(r["r"]), {})[_case_id(r["case"])] = str(r["relevance"])
    return out


_FEEDBACK_CASES = """
SELECT DISTINCT ?case WHERE {
  ?r a sg:FeedbackRound .
  { ?r sg:mark ?m . ?m sg:markedCase ?case } UNION { ?r sg:session ?s . ?s sg:queryCase ?case }
}"""


def feedback_cases(store: Store) -> set[str]:
    """Ids of the cases marked in any feedback round or querying a session that has a round (pending rounds
    included): the cases the learned values may have been fitted to."""
    return {_case_id(case) for (case,) in store.select_values(_FEEDBACK_CASES)}


def pair_changes_of(store: Store, session: URIRef) -> dict[str, list[tuple[str, str, float, float, tuple[str, ...]]]]:
    """round IRI → [(term A, term B, learned value, previous value, ids of the supporting cases (sorted))], sorted,
    for the rounds of ``session`` (pending ones included, as in :func:`marks_of`)."""
    edges: dict[str, dict[str, list]] = {}
    for r in store.select(_PAIRS, {"s": session}):
        e = edges.setdefault(str(r["r"]), {}).setdefault(
            str(r["e"]), [str(r["a"]), str(r["b"]), float(r["d"]), float(r["prev"]), set()])
        if "from" in r:
            e[4].add(_case_id(r["from"]))
    return {r: sorted((a, b, d, prev, tuple(sorted(derived))) for a, b, d, prev, derived in found.values())
            for r, found in edges.items()}


class CaseRound(NamedTuple):
    """A recorded round that involved a case."""

    round: str  # round IRI
    number: int
    session: str  # session IRI
    user: str | None  # the user's name
    role: str  # "marked": the case was marked in the round; "query": it is the query case of the round's session
    relevance: str | None  # its mark, for role "marked"
    ended: str  # the round's end time, as stored
    learned_edges: int  # the round's learned pairs derived from the case


_CASE_ROUNDS = f"""
SELECT DISTINCT ?round ?n ?session ?name ?relevance ?ended ?role WHERE {{
  {{ ?round sg:mark ?m . ?m sg:markedCase $c ; sg:relevance ?relevance . BIND("marked" AS ?role) }}
  UNION
  {{ ?session sg:queryCase $c . ?round sg:session ?session . BIND("query" AS ?role) }}
  ?round a sg:FeedbackRound ; sg:session ?session ; sg:roundNumber ?n ; prov:endedAtTime ?ended ;
         prov:wasAssociatedWith ?user .
  {recorded("round")}
  OPTIONAL {{ ?user rdfs:label ?name }}
}} ORDER BY DESC(?ended)"""
_DERIVED = "SELECT (COUNT(DISTINCT ?e) AS ?n) WHERE { ?e prov:wasDerivedFrom $c ; prov:wasGeneratedBy $r }"


def case_rounds(store: Store, case: URIRef) -> list[CaseRound]:
    """The recorded rounds in which ``case`` was marked or that belong to a session querying it, latest end first
    (a round both ways is listed twice)."""
    out = []
    for r in store.select(_CASE_ROUNDS, {"c": case}):
        derived = store.select(_DERIVED, {"c": case, "r": r["round"]})
        out.append(CaseRound(str(r["round"]), int(r["n"]), str(r["session"]), str(r["name"]) if "name" in r else None,
                             str(r["role"]), str(r["relevance"]) if "relevance" in r else None, str(r["ended"]),
                             int(derived[0]["n"]) if derived else 0))
    return out


class LearnedChange(NamedTuple):
    """One recorded learned value of a pair, as the vote sees it."""

    term_a: str
    term_b: str
    session: str  # session IRI
    round: str  # round IRI
    round_number: int
    previous: float
    value: float
    user: str  # IRI of the session's user
    query_case: str | None  # the session's query case (IRI or id: only compared)
    session_started: dt.datetime


_LEARNED = f"""
SELECT DISTINCT ?s ?r ?n ?a ?b ?d ?prev ?user ?case ?started ?rstart WHERE {{
  ?e sg:kind "learned" ; prov:wasGeneratedBy ?r ; sg:termA ?a ; sg:termB ?b ; sg:dissimilarity ?d ; sg:previous ?prev .
  ?r sg:session ?s ; sg:roundNumber ?n . ?s prov:wasAssociatedWith ?user . OPTIONAL {{ ?s sg:queryCase ?case }}
  OPTIONAL {{ ?s prov:startedAtTime ?started }} OPTIONAL {{ ?r prov:startedAtTime ?rstart }}
  {recorded()}
}}"""
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def learned_changes(store: Store) -> list[LearnedChange]:
    """Every learned pair value of the recorded rounds. A session without a start time gets its round's."""
    out = []
    for r in store.select(_LEARNED):
        started = r.get("started", r.get("rstart"))
        out.append(LearnedChange(str(r["a"]), str(r["b"]), str(r["s"]), str(r["r"]), int(r["n"]), float(r["prev"]),
                                 float(r["d"]), str(r["user"]), str(r["case"]) if "case" in r else None,
                                 _aware(started.toPython()) if started is not None else _EPOCH))
    return out


# --------------------------------------------------------------------------------------------------- the vote

class SessionNet(NamedTuple):
    """A session's net change of one pair."""

    first: float  # the value before the session's first change of the pair
    last: float  # the session's last learned value
    user: str
    query_case: str | None
    started: dt.datetime  # the session's start

    @property
    def sign(self) -> int:
        """-1: the session made the terms closer, +1: farther apart, 0: no net change."""
        return (self.last > self.first) - (self.last < self.first)


class Vote(NamedTuple):
    session: str
    user: str
    value: float  # the session's last learned value


class Votes(NamedTuple):
    closer: list[Vote]  # sorted
    farther: list[Vote]


def session_net(changes: Iterable[LearnedChange]) -> dict[str, SessionNet]:
    """session IRI → its net change, for the changes of ONE pair: its first round's previous value and its latest
    round's value (rounds by number)."""
    out: dict[str, SessionNet] = {}
    for c in sorted(changes, key=lambda x: (x.session, x.round_number)):
        known = out.get(c.session)
        out[c.session] = (known._replace(last=c.value) if known is not None
                          else SessionNet(c.previous, c.value, c.user, c.query_case, c.session_started))
    return out


def votes(changes: Sequence[LearnedChange]) -> Votes:
    """The independent sessions' votes on ONE pair (the rule of docs/algorithms.md §5.5).

    Each session's net change (:func:`session_net`) decides its direction. Sessions are independent when they differ
    in user or query case (a session without a query case is always independent); of several sessions of one user
    on one query case only the latest counts, latest by session start time, ties broken by the larger session IRI.
    That session votes closer or farther by the sign of its net change, or not at all when the net change is 0.
    """
    latest: dict[tuple[str, str], tuple[dt.datetime, str, SessionNet]] = {}
    for s, net in session_net(changes).items():
        key = (net.user, net.query_case if net.query_case is not None else s)
        if key not in latest or (net.started, s) > latest[key][:2]:
            latest[key] = (net.started, s, net)
    chosen = [(s, net) for _, s, net in latest.values()]
    return Votes(sorted(Vote(s, n.user, n.last) for s, n in chosen if n.sign < 0),
                 sorted(Vote(s, n.user, n.last) for s, n in chosen if n.sign > 0))
