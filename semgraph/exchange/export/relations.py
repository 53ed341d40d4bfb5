"""Reading the learned term relations: the learned edges of the feedback graphs and the per-pair table.

Every feedback round (:mod:`semgraph.feedback.sessions`) writes learned ``sg:TermSimilarity`` edges (``sg:kind "learned"``)
into its own named graph ``https://w3id.org/semgraph/graph/feedback/<round>``. This module reads those graphs and
the collection's baseline graph.

Baseline of a pair
    The value in the baseline graph when the store has one (``baseline_source = 'baseline graph'``), otherwise the
    ``sg:previous`` value of the pair's earliest learned edge, i.e. what the engine used before any feedback
    (``'before first round'``).

Learned value
    ``learned`` is the value of the most recent learned edge of the pair (any session); ``session_mean`` is the mean
    over sessions of each session's last value. ``change = learned − baseline``.

Independent sessions
    The vote of :func:`semgraph.graph.rounds.votes`, the one :func:`semgraph.feedback.promotion.promotion_candidates` counts:
    sessions count as independent when they differ in user or query case; several sessions of one user on one query
    count once (the latest by session start). A session's net direction for a pair is the sign of (its last value −
    the value before its first change of the pair).

Errors: bad filters raise :class:`semgraph.errors.InvalidInput`; nothing here writes to the store.
"""

from __future__ import annotations

import datetime as dt
import math
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rdflib import Literal, URIRef
from rdflib.namespace import XSD

import ontology
from kg import Store
from kg.namespaces import ID
from semgraph.errors import InvalidInput
from semgraph.graph import rounds as _rounds
from semgraph.graph.casegraph import user_iri
from semgraph.graph.collection import Collection
from semgraph.graph.collection import resolve as resolve_collection
from semgraph.retrieval.timeline import as_date

__all__ = ["SORT_KEYS", "Edge", "Relation", "collection_hierarchy", "default_collection", "filter_text", "kept_edges",
           "labeller", "learned_edges", "learned_relations", "local_id", "session_votes"]

#: Sort keys of :func:`learned_relations`.
SORT_KEYS = ("pair", "baseline", "learned", "change", "rounds", "sessions", "users", "first", "last")

_MAX_TERM_FILTER = 200


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
    guard: str | None = None  # the round guard's outcome (sg:guard), None for a round recorded without it
    guard_step: float | None = None

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
SELECT DISTINCT ?e ?g ?a ?b ?d ?prev ?t ?r ?n ?alg ?params ?start ?end ?s ?sid ?sstart ?u ?uname ?q ?guard ?step
WHERE {{
  GRAPH ?g {{
    ?e a sg:TermSimilarity ; sg:kind "learned" ; sg:termA ?a ; sg:termB ?b ; sg:dissimilarity ?d ; sg:previous ?prev ;
       prov:wasGeneratedBy ?r ; prov:generatedAtTime ?t .
    ?r a sg:FeedbackRound ; sg:session ?s ; sg:roundNumber ?n ; sg:algorithm ?alg ; sg:parameters ?params ;
       prov:startedAtTime ?start ; prov:endedAtTime ?end ; prov:wasAssociatedWith ?u .
    OPTIONAL {{ ?u rdfs:label ?uname }} OPTIONAL {{ ?s rdfs:label ?sid }} OPTIONAL {{ ?s sg:queryCase ?q }}
    OPTIONAL {{ ?s prov:startedAtTime ?sstart }} OPTIONAL {{ ?r sg:guard ?guard ; sg:guardStep ?step }}
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


def local_id(iri: str, kind: str) -> str:
    """The id of ``iri`` under ``id:<kind>/`` (URL-decoded); ``iri`` itself when it is not one."""
    base = str(ID[kind + "/"])
    text = str(iri)
    return urllib.parse.unquote(text[len(base):]) if text.startswith(base) else text


def filter_text(value):
    """A filter value as JSON or text shows it (a collection by its name, a date in ISO form)."""
    if isinstance(value, Collection):
        return value.name
    return value.isoformat() if isinstance(value, dt.date) else value


def default_collection(store: Store, collection: Collection | None) -> Collection:
    """``collection``, or the store's only one when None."""
    return collection if collection is not None else resolve_collection(store)


def collection_hierarchy(store: Store, collection: Collection) -> ontology.Hierarchy | None:
    """The hierarchy of the collection's ontology; None when it is not loaded."""
    try:
        return ontology.hierarchy(store, collection.ontology)
    except ontology.OntologyError:
        return None


def labeller(store: Store, collection: Collection | None = None) -> Callable[[str], str]:
    """term IRI → label: the collection's, then its ontology's, then the IRI's last segment."""
    collection = default_collection(store, collection)
    labels = dict(zip(collection.terms, collection.labels))
    hierarchy = collection_hierarchy(store, collection)

    def label(term: str) -> str:
        if term in labels:
            return labels[term]
        if hierarchy is not None and term in hierarchy:
            found = hierarchy.label(term)
            if found:
                return found
        return term.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]

    return label


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
    terms = set(default_collection(store, collection).terms)
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
        derived.setdefault(str(r["e"]), []).append(local_id(r["case"], "case"))
    seen: dict[str, Edge] = {}
    for r in rows:
        e = str(r["e"])
        if e in seen or str(r["a"]) not in terms or str(r["b"]) not in terms:
            continue
        seen[e] = Edge(
            iri=e, graph=str(r["g"]), term_a=str(r["a"]), term_b=str(r["b"]), value=float(r["d"]),
            previous=float(r["prev"]), generated_at=_aware(r["t"].toPython()), round=str(r["r"]),
            round_number=int(r["n"]), session=str(r["s"]),
            session_id=str(r["sid"]) if "sid" in r else local_id(r["s"], "session"),
            user=str(r["uname"]) if "uname" in r else local_id(r["u"], "user"), user_iri=str(r["u"]),
            query_case=local_id(r["q"], "case") if "q" in r else None, algorithm=str(r["alg"]),
            parameters=str(r["params"]), round_started=_aware(r["start"].toPython()),
            round_ended=_aware(r["end"].toPython()), derived_from=tuple(sorted(derived.get(e, ()))),
            marks=tuple(sorted(marks.get(str(r["r"]), {}).items())),
            session_started=_aware(r["sstart"].toPython()) if "sstart" in r else None,
            guard=str(r["guard"]) if "guard" in r else None, guard_step=float(r["step"]) if "step" in r else None)
    return sorted(seen.values(), key=lambda x: (x.generated_at, x.session, x.round_number, x.term_a, x.term_b))


def _baseline(store: Store, collection: Collection) -> dict[tuple[str, str], float]:
    return {tuple(sorted((str(r["a"]), str(r["b"])))): float(r["d"])
            for r in store.select(_BASELINE, {"g": collection.baseline_graph})}


def session_votes(edges: Sequence[Edge]) -> _rounds.Votes:
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
    label = labeller(store, collection)
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
        votes = session_votes(group)
        out.append(Relation(
            a, b, label(a), label(b), baseline, source, group[-1].value,
            sum(v.last for v in net.values()) / len(net), len({e.round for e in group}), len(net),
            tuple(sorted({e.user for e in group})), group[0].generated_at, group[-1].generated_at,
            len(votes.closer), len(votes.farther), tuple(sorted({local_id(e.round, "round") for e in group}))))
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
    collection = default_collection(store, collection)
    rows = _relations(store, learned_edges(store, user=user, since=since, until=until, collection=collection),
                      collection)
    rows = [r for r in rows if r.sessions >= min_sessions
            and (min_change is None or abs(r.change) >= min_change - 1e-12)
            and (term is None or _term_matches(term, r))]
    rows.sort(key=lambda r: (r.label_a.lower(), r.label_b.lower()))
    rows.sort(key=_sort_key(sort), reverse=descending)
    return rows


def kept_edges(store: Store, relations: Sequence[Relation], user=None, since=None, until=None,
               collection: Collection | None = None) -> list[Edge]:
    """The learned edges (by ``user``, between ``since`` and ``until``) of the pairs of ``relations``."""
    keep = {(r.term_a, r.term_b) for r in relations}
    return [e for e in learned_edges(store, user=user, since=since, until=until, collection=collection)
            if (e.term_a, e.term_b) in keep]
