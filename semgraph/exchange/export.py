"""Learned term relations for researchers: the table, exports with provenance, and an ontology-update proposal.

Every feedback round (:mod:`semgraph.feedback.sessions`) writes learned ``sg:TermSimilarity`` edges (``sg:kind "learned"``)
into its own named graph ``https://w3id.org/semgraph/graph/feedback/<round>``. This module reads those graphs and
the shared baseline graph and offers:

- :func:`learned_relations`: one :class:`Relation` per term pair: baseline and latest learned dissimilarity, the
  change, the number of supporting rounds, sessions and users, the first and last date; filterable (term, minimum
  change, minimum sessions, user, date range) and sortable.
- :func:`export`: the learned edges with their full PROV-O provenance (round, session, user, time, marked cases,
  algorithm, parameters, previous and new values) as Turtle, JSON-LD or CSV, the proposal (Turtle) or the report
  (Markdown).
- :func:`proposals` / :func:`proposal_graph` / :func:`report`: an ontology-update proposal (rules below).

Baseline of a pair
    The value in the baseline graph when the store has one (``baseline_source = 'baseline graph'``), otherwise the
    ``sg:previous`` value of the pair's earliest learned edge, i.e. what the engine used before any feedback
    (``'before first round'``).

Learned value
    ``learned`` is the value of the most recent learned edge of the pair (any session); ``session_mean`` is the mean
    over sessions of each session's last value. ``change = learned − baseline``.

Independent sessions
    The vote of :func:`semgraph.graph.rounds.votes`, the one :func:`semgraph.feedback.sessions.promotion_candidates` counts:
    sessions count as independent when they differ in user or query case; several sessions of one user on one query
    count once (the latest by session start). A session's net direction for a pair is the sign of (its last value −
    the value before its first change of the pair).

Proposal rule (:data:`RULE`)
    Only pairs that feedback made *closer* are proposed. With ``n_s`` agreeing independent sessions (net change
    negative), ``n_a`` opposing ones, ``n_u`` distinct users among the agreeing sessions, ``v`` the mean last value
    of the agreeing sessions and ``Δ = v − baseline``, a pair is proposed when ``n_s ≥ min_sessions``,
    ``n_s > n_a`` and ``Δ ≤ −0.05``:

    - ``skos:closeMatch`` when ``v ≤ 0.15`` (the terms are near-interchangeable for retrieval), else
      ``skos:related``; a link the store already asserts (either direction, either property) is not proposed again;
    - in addition a **re-parenting** when the ontology puts the terms much farther apart than feedback does:
      ``δΘ − v ≥ 0.4`` (δΘ: the normalised Kurtz measure over the paper vocabulary), neither term is an ancestor of
      the other and they do not share a parent. The term to move is the deeper one (ties: the one with fewer
      children, then the larger IRI); its proposed new parent is the other term's parent (the smallest IRI if it
      has several).

Confidence (in [0, 1], rounded to 3 decimals)
    ``confidence = S · U · M · A`` with ``S = n_s / (n_s + 1)`` (independent sessions), ``U = 1 − 2^(−n_u)``
    (users), ``A = n_s / (n_s + n_a)`` (agreement) and ``M = min(1, |Δ| / 0.3)`` for links, or
    ``M = min(1, (δΘ − v) / 0.6)`` for a re-parenting. One session by one user with ``Δ = −0.3`` gives
    ``0.5 · 0.5 · 1 · 1 = 0.25``; three users, three sessions: ``0.75 · 0.875 = 0.656`` at full magnitude.

Proposals are written as reified statements (``rdf:Statement`` with ``rdf:subject/predicate/object``), so the
proposed triple is described, not asserted. They use these terms of the sg vocabulary (full IRIs, to be added to
``kg/vocab/sg.ttl``): ``sg:Proposal``, ``sg:confidence``, ``sg:ontologicalDissimilarity``,
``sg:supportingSessions``, ``sg:supportingUsers``, ``sg:opposingSessions``, ``sg:currentParent``, ``sg:Export``.

Errors: bad filters raise :class:`semgraph.errors.InvalidInput`; nothing here writes to the store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, SKOS, XSD

from kg import Store
from kg.namespaces import ID, SG
from semgraph.errors import InvalidInput
from semgraph.files import csv_text
from semgraph.graph import rounds as _rounds
from semgraph.graph.casegraph import user_iri
from semgraph.graph.collection import Collection
from semgraph.graph.collection import resolve as resolve_collection
from semgraph.retrieval.timeline import as_date

__all__ = ["CSV_COLUMNS", "MARKDOWN_SPECIAL", "RULE", "SORT_KEYS", "Edge", "ExportFormat", "Proposal", "Relation",
           "available_formats", "export", "get_format", "learned_edges", "learned_relations", "markdown_text",
           "proposal_graph", "proposals", "register_format", "report", "safe_export_path"]

#: Sort keys of :func:`learned_relations`.
SORT_KEYS = ("pair", "baseline", "learned", "change", "rounds", "sessions", "users", "first", "last")
#: Columns of the CSV export (one row per learned edge).
CSV_COLUMNS = ("term_a", "label_a", "term_b", "label_b", "previous", "dissimilarity", "change", "edge", "round",
               "round_number", "session", "query_case", "user", "generated_at", "round_started", "round_ended",
               "algorithm", "parameters", "relevant_cases", "irrelevant_cases", "neutral_cases", "derived_from",
               "graph")
#: The thresholds of the proposal rule (documented in the module notes).
RULE = {"min_shift": 0.05, "close_match_max": 0.15, "reparent_gap": 0.4, "magnitude_scale": 0.3,
        "reparent_scale": 0.6, "measure": "kurtz"}

_MAX_TERM_FILTER = 200


# --------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Edge:
    """One learned edge as recorded by a feedback round, with the round's provenance."""

    iri: str
    graph: str
    term_a: str
    term_b: str
    value: float
    previous: float
    generated_at: dt.datetime
    round: str
    round_number: int
    session: str
    session_id: str
    user: str  # user name
    user_iri: str
    query_case: str | None
    algorithm: str
    parameters: str  # JSON text
    round_started: dt.datetime
    round_ended: dt.datetime
    derived_from: tuple[str, ...] = ()
    marks: tuple[tuple[str, str], ...] = ()  # (case id, relevance) of the round
    session_started: dt.datetime | None = None  # None: not recorded (the round's start stands in for the vote)

    def as_change(self) -> _rounds.LearnedChange:
        """The edge as :func:`semgraph.graph.rounds.votes` counts it."""
        return _rounds.LearnedChange(self.term_a, self.term_b, self.session, self.round, self.round_number,
                                     self.previous, self.value, self.user_iri, self.query_case,
                                     self.session_started or self.round_started)


@dataclass(frozen=True)
class Relation:
    """One term pair of the learned-relations table."""

    term_a: str
    term_b: str
    label_a: str
    label_b: str
    baseline: float
    baseline_source: str
    learned: float
    session_mean: float
    rounds: int
    sessions: int
    users: tuple[str, ...]
    first: dt.datetime
    last: dt.datetime
    closer: int  # independent sessions that moved the pair closer
    farther: int  # ... farther apart
    round_ids: tuple[str, ...] = field(repr=False, default=())

    @property
    def change(self) -> float:
        return self.learned - self.baseline

    @property
    def pair(self) -> str:
        return f"{self.label_a} ↔ {self.label_b}"

    def as_dict(self) -> dict:
        return {"term_a": self.term_a, "term_b": self.term_b, "label_a": self.label_a, "label_b": self.label_b,
                "baseline": self.baseline, "baseline_source": self.baseline_source, "learned": self.learned,
                "change": self.change, "session_mean": self.session_mean, "rounds": self.rounds,
                "sessions": self.sessions, "users": list(self.users), "first": self.first.isoformat(),
                "last": self.last.isoformat(), "sessions_closer": self.closer, "sessions_farther": self.farther,
                "round_ids": list(self.round_ids)}


_EDGES = f"""
SELECT DISTINCT ?e ?g ?a ?b ?d ?prev ?t ?r ?n ?alg ?params ?start ?end ?s ?sid ?sstart ?u ?uname ?q WHERE {{
  GRAPH ?g {{
    ?e a sg:TermSimilarity ; sg:kind "learned" ; sg:termA ?a ; sg:termB ?b ; sg:dissimilarity ?d ; sg:previous ?prev ;
       prov:wasGeneratedBy ?r ; prov:generatedAtTime ?t .
    ?r a sg:FeedbackRound ; sg:session ?s ; sg:roundNumber ?n ; sg:algorithm ?alg ; sg:parameters ?params ;
       prov:startedAtTime ?start ; prov:endedAtTime ?end ; prov:wasAssociatedWith ?u .
    OPTIONAL {{ ?u rdfs:label ?uname }} OPTIONAL {{ ?s rdfs:label ?sid }} OPTIONAL {{ ?s sg:queryCase ?q }}
    OPTIONAL {{ ?s prov:startedAtTime ?sstart }}
    {_rounds.recorded("r")}
  }}
  FILTER(STRSTARTS(STR(?g), $prefix))
"""
_DERIVED = """
SELECT DISTINCT ?e ?case WHERE {
  GRAPH ?g { ?e sg:kind "learned" ; prov:wasDerivedFrom ?case }
  FILTER(STRSTARTS(STR(?g), $prefix))
}"""
_BASELINE = ("SELECT ?a ?b ?d WHERE { GRAPH $g { ?e a sg:TermSimilarity ; sg:termA ?a ; sg:termB ?b ; "
             "sg:dissimilarity ?d } }")


def _local(iri: str, kind: str) -> str:
    base = str(ID[kind + "/"])
    text = str(iri)
    return urllib.parse.unquote(text[len(base):]) if text.startswith(base) else text


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _user_filter(user) -> URIRef | None:
    if user is None or user == "":
        return None
    if not isinstance(user, str) or not user.strip():
        raise InvalidInput(f"user must be a user name, got {user!r}")
    return user_iri(user.strip())


def learned_edges(store: Store, *, user: str | None = None, since=None, until=None,
                  collection: Collection | None = None) -> list[Edge]:
    """Every learned edge of the feedback graphs between two terms of ``collection`` (default: the store's only
    one; optionally of one ``user``, generated between the dates ``since`` and ``until``, both inclusive), oldest
    first."""
    terms = set(_collection(store, collection).terms)
    since_d, until_d = (None if v in (None, "") else as_date(v, name) for v, name in ((since, "since"),
                                                                                      (until, "until")))
    if since_d and until_d and since_d > until_d:
        raise InvalidInput(f"the date range is empty: since {since_d} is after until {until_d}")
    query, bindings = _EDGES, {"prefix": _rounds.FEEDBACK_PREFIX}
    u = _user_filter(user)
    if u is not None:
        query += "  FILTER(?u = $user)\n"
        bindings["user"] = u
    if since_d is not None:
        query += "  FILTER(?t >= $since)\n"
        bindings["since"] = Literal(_start_of(since_d).isoformat(), datatype=XSD.dateTime)
    if until_d is not None:
        query += "  FILTER(?t < $until)\n"
        bindings["until"] = Literal(_start_of(until_d + dt.timedelta(days=1)).isoformat(), datatype=XSD.dateTime)
    rows = store.select(query + "}", bindings)
    marks = _rounds.marks_of(store)
    derived: dict[str, list[str]] = {}
    for r in store.select(_DERIVED, {"prefix": _rounds.FEEDBACK_PREFIX}):
        derived.setdefault(str(r["e"]), []).append(_local(r["case"], "case"))
    seen: dict[str, Edge] = {}
    for r in rows:
        e = str(r["e"])
        if e in seen or str(r["a"]) not in terms or str(r["b"]) not in terms:
            continue
        seen[e] = Edge(
            iri=e, graph=str(r["g"]), term_a=str(r["a"]), term_b=str(r["b"]), value=float(r["d"]),
            previous=float(r["prev"]), generated_at=_aware(r["t"].toPython()), round=str(r["r"]),
            round_number=int(r["n"]), session=str(r["s"]),
            session_id=str(r["sid"]) if "sid" in r else _local(r["s"], "session"),
            user=str(r["uname"]) if "uname" in r else _local(r["u"], "user"), user_iri=str(r["u"]),
            query_case=_local(r["q"], "case") if "q" in r else None, algorithm=str(r["alg"]),
            parameters=str(r["params"]), round_started=_aware(r["start"].toPython()),
            round_ended=_aware(r["end"].toPython()), derived_from=tuple(sorted(derived.get(e, ()))),
            marks=tuple(sorted(marks.get(str(r["r"]), {}).items())),
            session_started=_aware(r["sstart"].toPython()) if "sstart" in r else None)
    return sorted(seen.values(), key=lambda x: (x.generated_at, x.session, x.round_number, x.term_a, x.term_b))


def _collection(store: Store, collection: Collection | None) -> Collection:
    return collection if collection is not None else resolve_collection(store)


def _baseline(store: Store, collection: Collection) -> dict[tuple[str, str], float]:
    return {tuple(sorted((str(r["a"]), str(r["b"])))): float(r["d"])
            for r in store.select(_BASELINE, {"g": collection.baseline_graph})}


def _labeller(store: Store, collection: Collection | None = None):
    """term IRI → label: the collection's, then its ontology's, then the IRI's last segment."""
    collection = _collection(store, collection)
    labels = dict(zip(collection.terms, collection.labels))
    hierarchy = _hierarchy(store, collection)

    def label(term: str) -> str:
        if term in labels:
            return labels[term]
        if hierarchy is not None and term in hierarchy:
            found = hierarchy.label(term)
            if found:
                return found
        return term.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]

    return label


def _hierarchy(store: Store, collection: Collection):
    import ontology
    from ontology import OntologyError

    try:
        return ontology.hierarchy(store, collection.ontology)
    except OntologyError:
        return None


# --------------------------------------------------------------------------------------------------- the table


def _votes(edges: Sequence[Edge]) -> _rounds.Votes:
    """The independent sessions' votes on the pair of ``edges`` (:func:`semgraph.graph.rounds.votes`)."""
    return _rounds.votes([e.as_change() for e in edges])


def _check_filters(term, min_change, min_sessions, sort):
    if term is not None and (not isinstance(term, str) or len(term) > _MAX_TERM_FILTER):
        raise InvalidInput(f"term must be a text of at most {_MAX_TERM_FILTER} characters")
    if min_change is not None and (isinstance(min_change, bool) or not isinstance(min_change, (int, float))
                                   or not math.isfinite(min_change) or min_change < 0):
        raise InvalidInput(f"min_change must be a non-negative number, got {min_change!r}")
    if isinstance(min_sessions, bool) or not isinstance(min_sessions, int) or min_sessions < 1:
        raise InvalidInput(f"min_sessions must be a positive integer, got {min_sessions!r}")
    if sort not in SORT_KEYS:
        raise InvalidInput(f"cannot sort by {sort!r}; use one of {', '.join(SORT_KEYS)}")


def _term_matches(needle: str, rel: Relation) -> bool:
    n = needle.strip().lower()
    if not n:
        return True
    for iri, label in ((rel.term_a, rel.label_a), (rel.term_b, rel.label_b)):
        tail = iri.rstrip("/").rsplit("/", 1)[-1].lower()
        if n in label.lower() or n == tail or n == iri.lower():
            return True
    return False


def _sort_key(sort: str):
    keys = {"pair": lambda r: (r.label_a.lower(), r.label_b.lower()), "baseline": lambda r: r.baseline,
            "learned": lambda r: r.learned, "change": lambda r: r.change, "rounds": lambda r: r.rounds,
            "sessions": lambda r: r.sessions, "users": lambda r: len(r.users), "first": lambda r: r.first,
            "last": lambda r: r.last}
    return keys[sort]


def _relations(store: Store, edges: Sequence[Edge], collection: Collection) -> list[Relation]:
    base = _baseline(store, collection)
    label = _labeller(store, collection)
    pairs: dict[tuple[str, str], list[Edge]] = {}
    for e in edges:
        pairs.setdefault((e.term_a, e.term_b), []).append(e)
    out = []
    for (a, b), group in pairs.items():
        group = sorted(group, key=lambda x: (x.generated_at, x.round_number))
        key = tuple(sorted((a, b)))
        if key in base:
            baseline, source = base[key], "baseline graph"
        else:
            baseline, source = group[0].previous, "before first round"
        net = _rounds.session_net(e.as_change() for e in group)
        votes = _votes(group)
        out.append(Relation(
            a, b, label(a), label(b), baseline, source, group[-1].value,
            sum(v.last for v in net.values()) / len(net), len({e.round for e in group}), len(net),
            tuple(sorted({e.user for e in group})), group[0].generated_at, group[-1].generated_at,
            len(votes.closer), len(votes.farther), tuple(sorted({_local(e.round, "round") for e in group}))))
    return out


def learned_relations(store: Store, *, term: str | None = None, min_change: float | None = None,
                      min_sessions: int = 1, user: str | None = None, since=None, until=None,
                      sort: str = "change", descending: bool = False, collection: Collection | None = None
                      ) -> list[Relation]:
    """One row per learned term pair of ``collection`` (see the module notes for the definitions).

    Parameters
    ----------
    term : str, optional
        Keep pairs where either term's label contains this text (case-insensitive) or whose RadLex id / IRI is it.
    min_change : float, optional
        Keep pairs with ``|learned − baseline| >= min_change``.
    min_sessions : int, default 1
        Keep pairs learned in at least this many sessions.
    user : str, optional
        Count only this user's rounds.
    since, until : date or ISO date text, optional
        Count only edges generated in this date range (inclusive, UTC).
    sort : one of :data:`SORT_KEYS`, default ``'change'`` (most negative change first)
    descending : bool, default False
    collection : Collection, optional
        Whose pairs (default: the store's only collection).
    """
    _check_filters(term, min_change, min_sessions, sort)
    collection = _collection(store, collection)
    rows = _relations(store, learned_edges(store, user=user, since=since, until=until, collection=collection),
                      collection)
    rows = [r for r in rows if r.sessions >= min_sessions
            and (min_change is None or abs(r.change) >= min_change - 1e-12)
            and (term is None or _term_matches(term, r))]
    rows.sort(key=lambda r: (r.label_a.lower(), r.label_b.lower()))
    rows.sort(key=_sort_key(sort), reverse=descending)
    return rows


# --------------------------------------------------------------------------------------------------- exports


def _mark_ids(edge: Edge, value: str) -> list[str]:
    return [c for c, v in edge.marks if v == value]


def _kept_edges(store: Store, relations: Sequence[Relation], user, since, until, collection) -> list[Edge]:
    keep = {(r.term_a, r.term_b) for r in relations}
    return [e for e in learned_edges(store, user=user, since=since, until=until, collection=collection)
            if (e.term_a, e.term_b) in keep]


def edges_graph(store: Store, edges: Sequence[Edge], label=None) -> Graph:
    """The learned edges with their rounds, sessions, users and marks, as an rdflib graph (PROV-O)."""
    from semgraph.graph.casegraph import case_iri

    label = label or _labeller(store)
    g = Graph()
    _bind(g)
    for e in edges:
        r, s, u = URIRef(e.round), URIRef(e.session), URIRef(e.user_iri)
        for triple in _rounds.pair_triples(
                URIRef(e.iri), round_=r, term_a=e.term_a, term_b=e.term_b, value=e.value, previous=e.previous,
                user=u, generated_at=e.generated_at, derived_from=e.derived_from) + _rounds.round_triples(
                r, session=s, number=e.round_number, user=u, started=e.round_started, ended=e.round_ended,
                algorithm=e.algorithm, parameters=e.parameters, marks=e.marks):
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


def _bind(g: Graph) -> None:
    for prefix, ns in (("sg", SG._NS), ("prov", PROV), ("skos", SKOS), ("rdfs", RDFS), ("xsd", XSD),
                       ("dcterms", DCTERMS), ("rid", Namespace("http://radlex.org/RID/")), ("id", ID)):
        g.bind(prefix, ns, override=True)


def turtle(g: Graph) -> str:
    """Turtle of ``g`` written by pyoxigraph: doubles keep every digit (rdflib 7 writes ``9.279437e-01``)."""
    import pyoxigraph as ox

    from kg.sparql import to_oxigraph

    triples = [ox.Triple(to_oxigraph(s), to_oxigraph(p), to_oxigraph(o))
               for s, p, o in sorted(g, key=lambda t: (str(t[0]), str(t[1]), str(t[2])))]
    prefixes = {prefix: str(ns) for prefix, ns in g.namespaces()
                if prefix in ("sg", "prov", "skos", "rdfs", "rdf", "xsd", "dcterms", "rid")}
    prefixes["rdf"] = str(RDF)
    return ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=prefixes).decode("utf-8")


def _csv(edges: Sequence[Edge], label) -> str:
    """The CSV export: a header of :data:`CSV_COLUMNS`, one row per edge, formula-like texts neutralised
    (:func:`semgraph.files.spreadsheet_cell`)."""
    rows = ([e.term_a, label(e.term_a), e.term_b, label(e.term_b), repr(e.previous), repr(e.value),
             repr(e.value - e.previous), e.iri, _local(e.round, "round"), e.round_number, e.session_id,
             e.query_case or "", e.user, e.generated_at.isoformat(), e.round_started.isoformat(),
             e.round_ended.isoformat(), e.algorithm, e.parameters, " ".join(_mark_ids(e, "relevant")),
             " ".join(_mark_ids(e, "irrelevant")), " ".join(_mark_ids(e, "neutral")), " ".join(e.derived_from),
             e.graph] for e in edges)
    return csv_text([CSV_COLUMNS, *rows])


def export(store: Store, fmt: str = "turtle", *, term: str | None = None, min_change: float | None = None,
           min_sessions: int = 1, user: str | None = None, since=None, until=None,
           collection: Collection | None = None) -> str:
    """The learned edges (of the pairs :func:`learned_relations` keeps with these filters) of ``collection``
    (default: the store's only one) as text in the registered format ``fmt`` (:func:`available_formats`).

    Built in: ``'turtle'``, ``'json-ld'``, ``'csv'`` (one row per learned edge, columns :data:`CSV_COLUMNS`; a
    text cell starting like a formula gets a leading ``'``, see :func:`semgraph.files.spreadsheet_cell`),
    ``'proposal'`` (Turtle, see :func:`proposal_graph`) or ``'report'`` (Markdown, :func:`report`; every text that
    comes from the store or the filters is escaped, see :func:`markdown_text`). InvalidInput for an unknown format.
    """
    writer = get_format(fmt).write
    filters = {"term": term, "min_change": min_change, "min_sessions": min_sessions, "user": user,
               "since": since, "until": until, "collection": _collection(store, collection)}
    return writer(store, filters)


# --------------------------------------------------------------------------------------------------- formats


@dataclass(frozen=True)
class ExportFormat:
    """A format of :func:`export`.

    ``write(store, filters)`` returns the export as text; ``filters`` holds the keyword arguments of
    :func:`learned_relations` (term, min_change, min_sessions, user, since, until) and the resolved collection.
    Files get ``extension``; the researchers' page offers it as ``/research/<stem><extension>`` (:attr:`download`,
    unique among the formats) served as ``media_type``. ``label`` says in a few words what it holds.
    """

    name: str
    extension: str
    media_type: str
    label: str
    write: Callable[[Store, dict], str]
    stem: str = "export"

    @property
    def download(self) -> str:
        """File name of its download on the researchers' page, e.g. ``export.ttl``."""
        return self.stem + self.extension


_FORMATS: dict[str, ExportFormat] = {}


def register_format(fmt: ExportFormat, *, replace: bool = False) -> None:
    """Add ``fmt`` to the formats of :func:`export` (after the registered ones). ValueError for an empty name, an
    extension without a leading dot, or a name or download file name that is taken (unless ``replace``)."""
    if not fmt.name or not fmt.extension.startswith(".") or "/" in fmt.download:
        raise ValueError(f"invalid export format {fmt!r}: needs a name, an extension like '.ttl' and a plain stem.")
    taken = {f.download: f.name for f in _FORMATS.values() if f.name != fmt.name}
    if (fmt.name in _FORMATS and not replace) or fmt.download in taken:
        raise ValueError(f"export format {fmt.name!r} or its download {fmt.download!r} is already registered.")
    _FORMATS[fmt.name] = fmt


def available_formats() -> tuple[str, ...]:
    """Names of the registered export formats, in registration order."""
    return tuple(_FORMATS)


def get_format(name: str) -> ExportFormat:
    """The export format registered under ``name``; InvalidInput if there is none."""
    if name not in _FORMATS:
        raise InvalidInput(f"unknown export format {name!r}; use one of {', '.join(_FORMATS)}")
    return _FORMATS[name]


def _edges(store: Store, filters: dict) -> tuple[list[Edge], Callable[[str], str]]:
    """The learned edges kept by ``filters`` and the term labeller of their collection."""
    relations = learned_relations(store, **filters)
    edges = _kept_edges(store, relations, filters["user"], filters["since"], filters["until"], filters["collection"])
    return edges, _labeller(store, filters["collection"])


def _write_turtle(store: Store, filters: dict) -> str:
    return turtle(edges_graph(store, *_edges(store, filters)))


def _write_json_ld(store: Store, filters: dict) -> str:
    context = {"sg": str(SG._NS), "prov": str(PROV), "rdfs": str(RDFS), "xsd": str(XSD), "skos": str(SKOS),
               "rid": "http://radlex.org/RID/", "id": str(ID)}
    return edges_graph(store, *_edges(store, filters)).serialize(format="json-ld", context=context, indent=2)


def _write_csv(store: Store, filters: dict) -> str:
    return _csv(*_edges(store, filters))


def _write_proposal(store: Store, filters: dict) -> str:
    return turtle(proposal_graph(store, **filters))


def _write_report(store: Store, filters: dict) -> str:
    return report(store, **filters)


register_format(ExportFormat("turtle", ".ttl", "text/turtle; charset=utf-8",
                             "the learned edges with PROV-O provenance (Turtle)", _write_turtle))
register_format(ExportFormat("json-ld", ".jsonld", "application/ld+json; charset=utf-8",
                             "the learned edges with PROV-O provenance (JSON-LD)", _write_json_ld))
register_format(ExportFormat("csv", ".csv", "text/csv; charset=utf-8",
                             "the learned edges with their provenance, one row each (CSV)", _write_csv))
register_format(ExportFormat("proposal", ".ttl", "text/turtle; charset=utf-8",
                             "an RDF ontology-update proposal (Turtle)", _write_proposal, stem="proposal"))
register_format(ExportFormat("report", ".md", "text/markdown; charset=utf-8", "a Markdown change report",
                             _write_report, stem="report"))


# --------------------------------------------------------------------------------------------------- proposal


@dataclass(frozen=True)
class Proposal:
    """One proposed ontology change (see the module notes for the rule and the confidence)."""

    kind: str  # 'closeMatch' | 'related' | 'reparent'
    term_a: str
    term_b: str
    label_a: str
    label_b: str
    baseline: float
    learned: float  # mean last value of the agreeing independent sessions
    ontological: float | None
    sessions: int  # agreeing independent sessions
    users: int  # distinct users among them
    against: int  # opposing independent sessions
    confidence: float
    rounds: tuple[str, ...]  # round IRIs that support it
    subject: str = ""  # reparent: the term to move
    new_parent: str = ""
    current_parents: tuple[str, ...] = ()
    rationale: str = ""

    @property
    def iri(self) -> URIRef:
        digest = hashlib.sha1(f"{self.kind}\n{self.term_a}\n{self.term_b}".encode()).hexdigest()[:16]
        return ID[f"proposal/{digest}"]

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d.update(rounds=list(self.rounds), current_parents=list(self.current_parents), iri=str(self.iri))
        return d


def confidence(sessions: int, users: int, against: int, magnitude: float, scale: float) -> float:
    """``S · U · M · A`` of the module notes (rounded to 3 decimals)."""
    if sessions <= 0:
        return 0.0
    s = sessions / (sessions + 1)
    u = 1.0 - 2.0 ** (-users)
    m = min(1.0, max(0.0, magnitude) / scale)
    a = sessions / (sessions + against)
    return round(s * u * m * a, 3)


_LINKED = ("ASK { { $a skos:related|skos:closeMatch|skos:exactMatch $b } UNION "
           "{ $b skos:related|skos:closeMatch|skos:exactMatch $a } }")


def _ontological(store: Store, terms: Sequence[str], collection: Collection) -> dict[tuple[str, str], float]:
    """δΘ (Kurtz, normalised over the collection's terms) of every pair of ``terms`` (terms of the collection)."""
    import ontology
    from ontology import OntologyError

    names = list(collection.terms)
    try:
        D = ontology.dissimilarity_matrix(store, names, measure=RULE["measure"], ontology=collection.ontology)
    except OntologyError:
        return {}
    index = {t: i for i, t in enumerate(names)}
    return {(a, b): float(D[index[a], index[b]]) for a in terms for b in terms if a != b}


def _reparent(hierarchy, a: str, b: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(term to move, its proposed parent, its current parents), or None when the rule does not apply."""
    if hierarchy is None or a not in hierarchy or b not in hierarchy:
        return None
    if a in hierarchy.ancestors(b) or b in hierarchy.ancestors(a):
        return None
    pa, pb = hierarchy.parents(a), hierarchy.parents(b)
    if pa & pb:
        return None

    def weight(t):
        return (hierarchy.depth(t), -len(hierarchy.children(t)), t)

    move, other = (a, b) if weight(a) > weight(b) else (b, a)
    parents = sorted(hierarchy.parents(other))
    if not parents:
        return None
    return move, parents[0], tuple(sorted(hierarchy.parents(move)))


def proposals(store: Store, *, term: str | None = None, min_change: float | None = None, min_sessions: int = 1,
              user: str | None = None, since=None, until=None, collection: Collection | None = None
              ) -> list[Proposal]:
    """The proposed ontology changes for the learned pairs of ``collection`` kept by these filters, highest
    confidence first."""
    collection = _collection(store, collection)
    relations = learned_relations(store, term=term, min_change=min_change, min_sessions=1, user=user, since=since,
                                  until=until, collection=collection)
    edges = _kept_edges(store, relations, user, since, until, collection)
    by_pair: dict[tuple[str, str], list[Edge]] = {}
    for e in edges:
        by_pair.setdefault((e.term_a, e.term_b), []).append(e)
    terms = sorted({t for r in relations for t in (r.term_a, r.term_b)})
    delta_theta = _ontological(store, terms, collection) if terms else {}
    hierarchy = _hierarchy(store, collection)
    out: list[Proposal] = []
    for rel in relations:
        group = by_pair.get((rel.term_a, rel.term_b), [])
        votes = _votes(group)
        n_s, n_a = len(votes.closer), len(votes.farther)
        if n_s < min_sessions or n_s <= n_a:
            continue
        value = sum(v for _, _, v in votes.closer) / n_s
        shift = value - rel.baseline
        if shift > -RULE["min_shift"] + 1e-12:
            continue
        agreeing = {s for s, _, _ in votes.closer}
        rounds = tuple(sorted({e.round for e in group if e.session in agreeing}))
        n_u = len({u for _, u, _ in votes.closer})
        theta = delta_theta.get((rel.term_a, rel.term_b))
        a, b = URIRef(rel.term_a), URIRef(rel.term_b)
        common = {"term_a": rel.term_a, "term_b": rel.term_b, "label_a": rel.label_a, "label_b": rel.label_b,
                  "baseline": rel.baseline, "learned": value, "ontological": theta, "sessions": n_s, "users": n_u,
                  "against": n_a, "rounds": rounds}
        if not store.ask(_LINKED, {"a": a, "b": b}):
            kind = "closeMatch" if value <= RULE["close_match_max"] + 1e-12 else "related"
            out.append(Proposal(kind, **common,
                                confidence=confidence(n_s, n_u, n_a, -shift, RULE["magnitude_scale"]),
                                rationale=(f"feedback moved {rel.label_a} and {rel.label_b} from {rel.baseline:.2f} "
                                           f"to {value:.2f} in {n_s} independent session{'s' * (n_s != 1)} "
                                           f"({n_u} user{'s' * (n_u != 1)}, {n_a} against)")))
        if theta is not None and theta - value >= RULE["reparent_gap"] - 1e-12:
            found = _reparent(hierarchy, rel.term_a, rel.term_b)
            if found is not None:
                move, parent, current = found
                out.append(Proposal(
                    "reparent", **common, confidence=confidence(n_s, n_u, n_a, theta - value,
                                                                RULE["reparent_scale"]),
                    subject=move, new_parent=parent, current_parents=current,
                    rationale=(f"the ontology puts {rel.label_a} and {rel.label_b} at {theta:.2f} but feedback "
                               f"at {value:.2f}; moving {hierarchy.label(move) or move} next to the other term")))
    out.sort(key=lambda p: (-p.confidence, p.kind, p.term_a, p.term_b))
    return out


def _shown(value):
    """A filter value as JSON or text shows it (a collection by its name, a date in ISO form)."""
    if isinstance(value, Collection):
        return value.name
    return value.isoformat() if isinstance(value, dt.date) else value


def proposal_graph(store: Store, **filters) -> Graph:
    """The proposals as RDF: reified ``rdf:Statement`` s typed ``sg:Proposal``, linked to their rounds."""
    found = proposals(store, **filters)
    label = _labeller(store, filters.get("collection"))
    g = Graph()
    _bind(g)
    now = dt.datetime.now(dt.UTC)
    activity = ID[f"export/{uuid.uuid4().hex[:12]}"]
    g.add((activity, RDF.type, PROV.Activity))
    g.add((activity, RDF.type, SG.Export))
    g.add((activity, RDFS.label, Literal("ontology-update proposal from learned term similarities")))
    g.add((activity, PROV.startedAtTime, Literal(now.isoformat(), datatype=XSD.dateTime)))
    params = {"rule": RULE, "filters": {k: _shown(v) for k, v in filters.items() if v is not None}}
    g.add((activity, SG.parameters, Literal(json.dumps(params, sort_keys=True), datatype=RDF.JSON)))
    g.add((activity, SG.algorithm, Literal("semgraph.exchange.export.proposals")))
    for p in found:
        node = p.iri
        g.add((node, RDF.type, SG.Proposal))
        g.add((node, RDF.type, RDF.Statement))
        g.add((node, RDF.type, PROV.Entity))
        g.add((node, SG.kind, Literal(p.kind)))
        if p.kind == "reparent":
            g.add((node, RDF.subject, URIRef(p.subject)))
            g.add((node, RDF.predicate, RDFS.subClassOf))
            g.add((node, RDF.object, URIRef(p.new_parent)))
            for parent in p.current_parents:
                g.add((node, SG.currentParent, URIRef(parent)))
            for t in (p.subject, p.new_parent, *p.current_parents):
                g.add((URIRef(t), RDFS.label, Literal(label(t))))
        else:
            g.add((node, RDF.subject, URIRef(p.term_a)))
            g.add((node, RDF.predicate, SKOS.closeMatch if p.kind == "closeMatch" else SKOS.related))
            g.add((node, RDF.object, URIRef(p.term_b)))
        g.add((node, SG.termA, URIRef(p.term_a)))
        g.add((node, SG.termB, URIRef(p.term_b)))
        for t, text in ((p.term_a, p.label_a), (p.term_b, p.label_b)):
            g.add((URIRef(t), RDFS.label, Literal(text)))
        g.add((node, SG.confidence, Literal(p.confidence, datatype=XSD.double)))
        g.add((node, SG.previous, Literal(p.baseline, datatype=XSD.double)))
        g.add((node, SG.dissimilarity, Literal(p.learned, datatype=XSD.double)))
        if p.ontological is not None:
            g.add((node, SG.ontologicalDissimilarity, Literal(p.ontological, datatype=XSD.double)))
        g.add((node, SG.supportingSessions, Literal(p.sessions, datatype=XSD.integer)))
        g.add((node, SG.supportingUsers, Literal(p.users, datatype=XSD.integer)))
        g.add((node, SG.opposingSessions, Literal(p.against, datatype=XSD.integer)))
        g.add((node, RDFS.comment, Literal(p.rationale)))
        g.add((node, PROV.wasGeneratedBy, activity))
        g.add((node, DCTERMS.created, Literal(now.isoformat(), datatype=XSD.dateTime)))
        for r in p.rounds:
            g.add((node, PROV.wasDerivedFrom, URIRef(r)))
            g.add((URIRef(r), RDF.type, SG.FeedbackRound))
    return g


_KIND_TEXT = {"closeMatch": "skos:closeMatch", "related": "skos:related", "reparent": "re-parenting"}


def report(store: Store, **filters) -> str:
    """A readable Markdown change report: the learned relations and the proposals with their evidence."""
    relations = learned_relations(store, **filters)
    found = proposals(store, **filters)
    label = _labeller(store, filters.get("collection"))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    used = {k: v for k, v in filters.items() if v is not None and v != "" and k != "collection"
            and not (k == "min_sessions" and v == 1)}
    shown = filters.get("collection")
    lines = ["# Learned term relations: change report", "",
             f"Generated {now} from the feedback graphs of the store"
             + (f", collection {markdown_text(str(_shown(shown)))}." if shown is not None else "."),
             "Filters: " + (", ".join(f"{k} = {markdown_text(str(_shown(v)))}" for k, v in used.items()) if used
                            else "none") + ".", ""]
    if not relations:
        lines += [("No learned term relations match: no feedback round has changed a term similarity yet "
                   "(or the filters exclude them all)."), ""]
        return "\n".join(lines)
    n_rounds = len({r for rel in relations for r in rel.round_ids})
    users = sorted({u for rel in relations for u in rel.users})
    lines += [(f"{len(relations)} term pair{'s' * (len(relations) != 1)} changed by feedback, from {n_rounds} "
               f"round{'s' * (n_rounds != 1)} by {len(users)} user{'s' * (len(users) != 1)} "
               f"({markdown_text(', '.join(users))})."), "", "## Proposed ontology changes", ""]
    if not found:
        lines += ["None: no pair was made closer by enough independent sessions (see the rule below).", ""]
    for n, p in enumerate(found, start=1):
        if p.kind == "reparent":
            now = markdown_text(", ".join(label(t) for t in p.current_parents)) or "nothing"
            head = (f"{n}. **Re-parent** {markdown_text(label(p.subject))} under "
                    f"{markdown_text(label(p.new_parent))} (now under {now})")
        else:
            head = f"{n}. **{_KIND_TEXT[p.kind]}** {markdown_text(p.label_a)} ↔ {markdown_text(p.label_b)}"
        lines.append(f"{head}: confidence {p.confidence:.3f}")
        theta = f", ontological {p.ontological:.2f}" if p.ontological is not None else ""
        lines.append(f"   - dissimilarity {p.baseline:.2f} → {p.learned:.2f}{theta}; {p.sessions} agreeing "
                     f"independent session(s), {p.users} user(s), {p.against} against")
        lines.append(f"   - supported by round(s) {markdown_text(', '.join(_local(r, 'round') for r in p.rounds))}")
    lines += ["", "## All learned relations", "",
              "| pair | baseline | learned | change | rounds | sessions | users | first | last |",
              "|---|---:|---:|---:|---:|---:|---|---|---|"]
    for r in relations:
        lines.append(f"| {markdown_text(r.label_a)} ↔ {markdown_text(r.label_b)} | {r.baseline:.3f} | "
                     f"{r.learned:.3f} | {r.change:+.3f} | {r.rounds} | {r.sessions} | "
                     f"{markdown_text(', '.join(r.users))} | "
                     f"{r.first:%Y-%m-%d} | {r.last:%Y-%m-%d} |")
    lines += ["", "## Rule", "",
              (f"A pair is proposed when at least {filters.get('min_sessions') or 1} independent session(s) moved it "
              f"closer, more sessions agree than oppose, and the mean learned value is at least "
              f"{RULE['min_shift']} below the baseline. skos:closeMatch when the learned value is at most "
              f"{RULE['close_match_max']}, else skos:related; a re-parenting as well when the ontological "
              f"dissimilarity exceeds the learned one by at least {RULE['reparent_gap']}. Confidence = "
              "n_s/(n_s+1) · (1 − 2^−n_users) · min(1, |change|/0.3) · n_s/(n_s+n_against). Proposals are for "
              "review by a curator; nothing was changed in the ontology."), ""]
    return "\n".join(lines)


#: Characters with a meaning in (GitHub-flavoured) Markdown text: emphasis, code, links, HTML, table cells, escapes.
MARKDOWN_SPECIAL = frozenset("\\`*_[]<>|~")


def markdown_text(text: str) -> str:
    """``text`` as literal Markdown inline text, safe in a paragraph, a list item or a table cell.

    Each character of :data:`MARKDOWN_SPECIAL` gets a backslash (CommonMark escapes), and every line break
    (``\\n``, ``\\r``, and the others of :meth:`str.splitlines`) becomes a space, so the text cannot end its line and
    start a heading, list or table row of its own.
    """
    return "".join("\\" + ch if ch in MARKDOWN_SPECIAL else ch for ch in " ".join(text.splitlines()))


# --------------------------------------------------------------------------------------------------- files

_MAX_NAME = 200


def safe_export_path(folder, name: str):
    """The path of the export file ``name`` inside ``folder``; ``InvalidInput`` if it would leave the folder.

    ``name`` must be a relative file name (sub-folders allowed) without ``..`` parts, an absolute path, a drive,
    control characters or a trailing separator; the resolved path (symbolic links followed) must stay inside
    ``folder``. Nothing is created here.
    """
    from pathlib import Path, PurePosixPath, PureWindowsPath

    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("the export needs a file name")
    if len(name) > _MAX_NAME or any(ord(ch) < 32 or ch == "\x7f" for ch in name):
        raise InvalidInput(f"invalid export file name {name!r}: at most {_MAX_NAME} printable characters")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or name.startswith(("/", "\\", "~")):
        raise InvalidInput(f"invalid export file name {name!r}: give a name relative to the export folder "
                           f"{folder}, not an absolute path")
    parts = [p for p in name.replace("\\", "/").split("/")]
    if any(p in ("..", ".", "") for p in parts):
        raise InvalidInput(f"invalid export file name {name!r}: '..', '.' and empty path parts are not allowed "
                           f"(the file must stay inside the export folder {folder})")
    base = Path(folder).resolve()
    target = (base / Path(*parts)).resolve()
    if target == base or base not in target.parents:
        raise InvalidInput(f"invalid export file name {name!r}: it points outside the export folder {base}")
    return target
