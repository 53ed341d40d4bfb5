"""Retrieval sessions and their feedback rounds, recorded in the graph with PROV-O provenance.

A session is a query (a case or a likelihood vector), a user and the baseline ``D0`` of its engine. Each call of
:meth:`Session.feedback` runs :func:`semgraph.feedback.algorithms.apply_feedback`, re-ranks, and writes the round in ONE
atomic update into its own named graph ``feedback_graph(round_id)``::

    id:session/S  a sg:RetrievalSession, prov:Activity ; sg:queryCase id:case/C ; sg:queryVector "[...]"^^rdf:JSON ;
                  prov:wasAssociatedWith id:user/alice ; prov:startedAtTime "..."
                  (a session started from a free-text query has sg:queryText "..." and no sg:queryCase)
    id:round/R    a sg:FeedbackRound ... (the round, its marks and learned pairs: see :mod:`semgraph.graph.rounds`)

(the session's description is repeated in each of its rounds' graphs, so that every round graph is
self-contained and dropping the last one removes the session). The round is first written with
``id:round/R sg:pending true``, which is removed once no other client holds its number (:meth:`Session._write`);
readers skip pending rounds. :func:`load_session` rebuilds a session from the
graph alone (baseline + the learned edges of its rounds, in order), :meth:`Session.undo` drops the last round's
graph, :func:`promote` makes learned values part of the shared baseline by a recorded ``sg:Promotion``, and
:func:`promotion_candidates` lists pairs that moved the same way in several independent sessions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import PROV, RDF, RDFS, XSD

from kg import Store
from kg.namespaces import ID, SG, feedback_graph
from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.feedback import algorithms as _feedback
from semgraph.graph import rounds as _rounds
from semgraph.graph.casegraph import case_iri, user_iri
from semgraph.graph.collection import LIVER_CT, Collection
from semgraph.graph.collection import resolve as resolve_collection
from semgraph.graph.rounds import CLAIM_LEASE, RELEVANCE, round_iri, session_iri
from semgraph.retrieval.engine import Engine, Filters, Hit

__all__ = ["RELEVANCE", "TEXT_ALGORITHM", "Candidate", "PairChange", "Round", "Session",
           "list_sessions", "load_session", "promote", "promotion_candidates", "start_session", "start_text_session"]

#: Default feedback of a text-query session (:data:`semgraph.feedback.algorithms.TEXT_ALGORITHM`).
TEXT_ALGORITHM = _feedback.TEXT_ALGORITHM

#: Attempts at recording a round when every client that claimed its number at the same moment withdrew
#: (:meth:`Session._write`), and the base of the random pause between them (seconds, doubled per attempt).
CLAIM_ATTEMPTS = 6
CLAIM_PAUSE = 0.01

_CLAIMS_FROM = ("SELECT DISTINCT ?r ?n ?g ?end ?pending WHERE { GRAPH ?g { ?r a sg:FeedbackRound ; sg:session $s ; "
                "sg:roundNumber ?n ; prov:endedAtTime ?end OPTIONAL { ?r sg:pending ?pending } } FILTER(?n >= $n) }")
# Drops the round's graph only if no other round of the session has its number or a higher one.
_DROP_IF_LAST = """DELETE { GRAPH $g { ?x ?p ?o } } WHERE {
  GRAPH $g { ?x ?p ?o }
  FILTER NOT EXISTS { GRAPH ?h { ?other a sg:FeedbackRound ; sg:session $s ; sg:roundNumber ?m }
                      FILTER(?m >= $n && ?other != $r) }
}"""


class _Claim(NamedTuple):
    """A stored round as the claim check sees it."""

    iri: str
    number: int
    pending: bool


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time(value: dt.datetime) -> Literal:
    return Literal(value.isoformat(), datatype=XSD.dateTime)


def _json(value) -> Literal:
    return Literal(json.dumps(value, sort_keys=True), datatype=RDF.JSON)


def _vector_json(v: np.ndarray) -> Literal:
    return _json([float(x) for x in v])  # repr of a float round-trips exactly


def _local(iri, prefix: str) -> str:
    text = str(iri)
    base = str(ID[prefix + "/"])
    if not text.startswith(base):
        raise SemgraphError(f"unexpected IRI {text} (expected {base}...)")
    return urllib.parse.unquote(text[len(base):])


def _user(user) -> tuple[URIRef, str]:
    if isinstance(user, URIRef):
        return user, _local(user, "user")
    if not isinstance(user, str) or not user.strip():
        raise InvalidInput("a user name is required (who gives the feedback)")
    return user_iri(user.strip()), user.strip()


# --------------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PairChange:
    """A learned change of one term pair in one round."""

    term_a: str
    term_b: str
    label_a: str
    label_b: str
    before: float
    after: float
    derived_from: tuple[str, ...] = ()  # ids of the marked cases that support the change

    def describe(self) -> str:
        """Plain language: ``water density ↔ hypodense: 0.42 → 0.32``."""
        return f"{self.label_a} ↔ {self.label_b}: {self.before:.2f} → {self.after:.2f}"

    def as_dict(self) -> dict:
        return {"term_a": self.term_a, "term_b": self.term_b, "label_a": self.label_a, "label_b": self.label_b,
                "before": self.before, "after": self.after, "derived_from": list(self.derived_from)}


@dataclass(frozen=True)
class Round:
    """One feedback round as recorded: its marks, parameters, changes, and the session state after it."""

    round_id: str
    number: int
    marks: dict[str, str]
    params: _feedback.FeedbackParams
    changes: tuple[PairChange, ...]
    started_at: dt.datetime
    ended_at: dt.datetime
    dissimilarity: np.ndarray = field(repr=False)
    query: np.ndarray = field(repr=False)

    @property
    def iri(self) -> URIRef:
        return round_iri(self.round_id)

    @property
    def graph(self) -> URIRef:
        return feedback_graph(self.round_id)

    def as_dict(self) -> dict:
        return {"round_id": self.round_id, "number": self.number, "marks": dict(self.marks),
                "algorithm": self.params.algorithm, "parameters": self.params.as_dict(),
                "started_at": self.started_at.isoformat(), "ended_at": self.ended_at.isoformat(),
                "changes": [c.as_dict() for c in self.changes]}


# --------------------------------------------------------------------------------------------------- session


class Session:
    """A retrieval session: a query, a user, the baseline ``D0`` and the feedback rounds given so far.

    Create one with :func:`start_session` or :func:`load_session`. :attr:`dissimilarity`, :attr:`query` and
    :attr:`ranking` are the current state (after the last round).
    """

    def __init__(self, store: Store, engine: Engine, *, session_id: str, user, query_case: str | None,
                 query_vector: np.ndarray, started_at: dt.datetime, k: int = DEFAULT_K, filters=None,
                 query_text: str | None = None):
        self.store = store
        self.session_id = session_id
        self.user_iri, self.user = _user(user)
        self.query_case = query_case
        self.query_text = query_text
        self.query0 = np.asarray(query_vector, dtype=np.float64)
        self.started_at = started_at
        self.k = k
        self.filters = Filters.coerce(filters)
        self.baseline = engine.dissimilarity.copy()
        self.categories = engine.categories
        self._base_engine = engine
        self._engine = engine  # shared until a round changes D; then the session gets an index of its own
        self.rounds: list[Round] = []
        self.ranking: list[Hit] = self._rank(self.query0)

    @property
    def iri(self) -> URIRef:
        return session_iri(self.session_id)

    @property
    def engine(self) -> Engine:
        """The session's engine (its index uses the current learned ``D``)."""
        return self._engine

    @property
    def dissimilarity(self) -> np.ndarray:
        return self.rounds[-1].dissimilarity if self.rounds else self.baseline

    @property
    def query(self) -> np.ndarray:
        return self.rounds[-1].query if self.rounds else self.query0

    def _rank(self, query: np.ndarray) -> list[Hit]:
        exclude = (self.query_case,) if self.query_case else ()
        return self._engine.search_vector(query, self.k, self.filters, exclude=exclude)

    def _set_state(self, D: np.ndarray, query: np.ndarray) -> None:
        if self._engine is self._base_engine:
            self._engine = self._base_engine.with_dissimilarity(D, source="session")
        else:
            self._engine._set_dissimilarity(D)
        self.ranking = self._rank(query)

    # ------------------------------------------------------------------ feedback
    def _check_marks(self, marks: Mapping[str, str]) -> dict[str, str]:
        if not isinstance(marks, Mapping) or not marks:
            raise InvalidInput("give at least one mark: {case id: 'relevant' | 'irrelevant' | 'neutral'}")
        checked = {}
        for case_id, value in marks.items():
            if value not in RELEVANCE:
                raise InvalidInput(f"invalid mark {value!r} for case {case_id!r}; use one of {', '.join(RELEVANCE)}")
            if not isinstance(case_id, str) or case_id not in self._engine._row:
                raise InvalidInput(f"cannot mark {case_id!r}: no such case in the index")
            if case_id == self.query_case:
                raise InvalidInput(f"cannot mark {case_id!r}: it is the query case of the session")
            checked[case_id] = value
        return checked

    def _marked(self, rounds: Sequence[Round], value: str) -> np.ndarray:
        ids = [c for r in rounds for c, v in r.marks.items() if v == value]
        return self._engine.vectors[[self._engine._row[c] for c in ids]].reshape(len(ids), len(self.terms))

    def compute_round(self, marks: Mapping[str, str], params: _feedback.FeedbackParams | None = None) -> Round:
        """The next round (feedback applied, nothing written, session unchanged)."""
        started = _now()
        params = params or _feedback.FeedbackParams()
        marks = self._check_marks(marks)
        number = len(self.rounds) + 1
        new = Round("", number, marks, params, (), started, started, self.dissimilarity, self.query)
        rel, irr = self._marked([new], "relevant"), self._marked([new], "irrelevant")
        result = _feedback.apply_feedback(
            self.dissimilarity, self.baseline, self.query0, rel, irr, list(self.categories), round_number=number,
            params=params, history_relevant=self._marked(self.rounds, "relevant"),
            history_irrelevant=self._marked(self.rounds, "irrelevant"))
        changes = tuple(sorted((self._pair_change(c, marks, params) for c in result.changes),
                              key=lambda c: (c.term_a, c.term_b)))
        return Round(uuid.uuid4().hex[:16], number, marks, params, changes, started, _now(),
                     np.array(result.dissimilarity, dtype=np.float64), np.array(result.query, dtype=np.float64))

    def feedback(self, marks: Mapping[str, str], params: _feedback.FeedbackParams | None = None) -> Round:
        """Apply one round of marks, write it to the graph (one atomic update) and re-rank.

        Raises :class:`InvalidInput` (nothing written) for an unknown case id or an invalid mark value.
        """
        return self.record(self.compute_round(marks, params))

    def record(self, new: Round) -> Round:
        """Write ``new`` (from :meth:`compute_round`) to the graph and make it the session's current state.

        Raises :class:`SemgraphError` 409 (nothing written, session unchanged) when another client recorded this
        round number meanwhile or undid the round ``new`` builds on.
        """
        if new.number != len(self.rounds) + 1:
            raise InvalidInput(f"round {new.number} does not follow the session's {len(self.rounds)} round(s); "
                               "compute it again")
        self._write(new)
        self.rounds.append(new)
        self._set_state(new.dissimilarity, new.query)
        return new

    def _pair_change(self, change, marks: Mapping[str, str], params) -> PairChange:
        i, j = change.i, change.j
        a_i, a_j = self.terms[i], self.terms[j]
        if a_j < a_i:
            i, j = j, i
        wanted = "relevant" if change.after < change.before else "irrelevant"
        rules = [a.supports for a in map(_feedback.get_algorithm, params.parts) if a.supports is not None]
        support = [c for c, v in marks.items() if v == wanted and any(
            rule(self.query0, self._engine.vectors[self._engine._row[c]], i, j, params) for rule in rules)]
        if not support:  # no rule explains it (trust-region pull, ...): the marks of that direction
            support = [c for c, v in marks.items() if v == wanted] or [c for c, v in marks.items() if v != "neutral"]
        labels = self._engine.labels
        return PairChange(self.terms[i], self.terms[j], labels[i], labels[j], change.before, change.after,
                          tuple(sorted(support)))

    @property
    def terms(self) -> tuple[str, ...]:
        return self._engine.terms

    def _session_triples(self) -> list[tuple]:
        s = self.iri
        g: list[tuple] = []
        g.append((s, RDF.type, SG.RetrievalSession))
        g.append((s, RDF.type, PROV.Activity))
        g.append((s, RDFS.label, Literal(self.session_id)))
        if self.query_case is not None:
            g.append((s, SG.queryCase, case_iri(self.query_case)))
        g.append((s, SG.queryVector, _vector_json(self.query0)))
        if self.query_text is not None:
            g.append((s, SG.queryText, Literal(self.query_text)))
        if self._engine.collection is not None:
            g.append((s, SG.inCollection, self._engine.collection.iri))
        g.append((s, PROV.wasAssociatedWith, self.user_iri))
        g.append((s, PROV.startedAtTime, _time(self.started_at)))
        g.append((self.user_iri, RDF.type, PROV.Person))
        g.append((self.user_iri, RDFS.label, Literal(self.user)))
        return g

    def round_triples(self, new: Round) -> list[tuple]:
        """The triples of a round (with its session's description), as written by :meth:`feedback`, each once.

        A plain list (an rdflib Graph cost ~25 µs per triple, about 1 ms per round, only to be serialised)."""
        r = new.iri
        g = self._session_triples() + _rounds.round_triples(
            r, session=self.iri, number=new.number, user=self.user_iri, started=new.started_at, ended=new.ended_at,
            algorithm=new.params.algorithm, parameters=json.dumps(new.params.as_dict(), sort_keys=True),
            marks=sorted(new.marks.items()), query_vector=_vector_json(new.query))
        for c in new.changes:
            g += _rounds.pair_triples(_rounds.pair_iri(r, c.term_a, c.term_b), round_=r, term_a=c.term_a,
                                      term_b=c.term_b, value=c.after, previous=c.before, user=self.user_iri,
                                      generated_at=new.ended_at, derived_from=c.derived_from)
        return list(dict.fromkeys(g))

    def _write(self, new: Round) -> None:
        """Record ``new`` so that no two clients (threads, server processes) ever both record one round number.

        Oxigraph (embedded, or ``oxigraph serve``) runs each update on a snapshot and commits it without a conflict
        check, so two overlapping conditional inserts can both pass their ``FILTER NOT EXISTS`` (in a measurement, a
        quarter of the races of 32 writers stored a number twice; deleting a shared counter triple did not help).
        The insert is therefore a claim, marked ``sg:pending`` and checked once it is committed: it stands if it is
        the only round with its number and the round it builds on is recorded (not pending); then the mark is
        removed, else the claim is withdrawn (its graph dropped). Of two overlapping claims the one checked later
        sees the other, so at most one client is told it recorded a number; when every claimant withdrew, each
        claims again after a random pause. Readers (:func:`load_session`, exports) skip pending rounds, and no
        round is built on one: a pending round may still be withdrawn, and a round built on it would be orphaned.

        On a store that no other process writes to (``Store.shared`` false: an embedded folder, held by one process)
        the threads of this process take turns per session instead (:func:`_turn`): the check comes first, and the
        round is inserted as recorded, in one write.

        Raises :class:`SemgraphError` 409 (nothing of ``new`` left in the store) when another client holds the
        number or undid the round ``new`` builds on.
        """
        if not self.store.shared:
            with _turn(self.store, self.iri):
                claims = self._stored_claims(new.number - 1)
                if any(c.number >= new.number for c in claims) or not self._builds_on_recorded(claims):
                    raise self._conflict(new)
                self._insert(new, pending=False)
            return
        for attempt in range(CLAIM_ATTEMPTS):
            self._insert(new, pending=True)
            if self._claim_stands(new):
                self.store.update("DELETE DATA { GRAPH $g { $r sg:pending true } }", {"g": new.graph, "r": new.iri})
                return
            self.store.drop(str(new.graph))
            if self._stored_claims(new.number) or not self._recorded(self.rounds[-1] if self.rounds else None):
                break
            time.sleep(random.uniform(0, CLAIM_PAUSE * 2 ** attempt))
        raise self._conflict(new)

    def _conflict(self, new: Round) -> SemgraphError:
        return SemgraphError(f"round {new.number} of session {self.session_id} was recorded by another client "
                             "meanwhile (or the round before it was undone); nothing was written; reload the session "
                             "and try again", title="Conflict", status=409)

    def _insert(self, new: Round, *, pending: bool) -> None:
        """Write ``new``'s graph in one update; ``pending`` marks it as a claim that :meth:`_claim_stands` decides.

        The claim has no guard in the update (no round with this number, the last one still stored): it would not
        make the claim safe (see :meth:`_write`) and made Oxigraph spend about 0.9 ms more CPU per round."""
        triples = self.round_triples(new) + ([(new.iri, SG.pending, Literal(True))] if pending else [])
        self.store.update("INSERT DATA { GRAPH $g {\n" + _ntriples(triples) + " } }", {"g": new.graph})

    def _claim_stands(self, new: Round) -> bool:
        """Is ``new`` the only stored round with its number (pending or not), on top of the session's last round,
        recorded and not pending?

        One query: the rounds numbered from the previous one on (a round's graph is written and dropped whole, so
        the previous round is recorded exactly when it is listed)."""
        claims = self._stored_claims(new.number - 1)
        holders = {c.iri for c in claims if c.number == new.number}
        return holders == {str(new.iri)} and self._builds_on_recorded(claims)

    def _builds_on_recorded(self, claims: list[_Claim]) -> bool:
        """Is the session's last round recorded and not pending among ``claims`` (always true before round 1)?"""
        previous = self.rounds[-1] if self.rounds else None
        return previous is None or any(c.iri == str(previous.iri) and not c.pending for c in claims)

    def is_current(self) -> bool:
        """Are this copy's rounds exactly the session's rounds in the store (one query)? False when another process
        added or undid a round meanwhile; then replay the session (:func:`load_session`)."""
        return set(self._rounds_from(1)) == {str(r.iri) for r in self.rounds}

    def _rounds_from(self, number: int) -> dict[str, int]:
        """IRI → number of the session's recorded (not pending) rounds numbered ``number`` or higher."""
        return {c.iri: c.number for c in self._stored_claims(number) if not c.pending}

    def _stored_claims(self, number: int) -> list[_Claim]:
        """The session's stored rounds numbered ``number`` or higher, recorded or pending. A pending one past
        :data:`CLAIM_LEASE` is the leftover of a crashed claimant: it is dropped here and left out."""
        claims, now = [], _now()
        for r in self.store.select(_CLAIMS_FROM, {"s": self.iri, "n": number}):
            claim = _Claim(str(r["r"]), int(r["n"]), "pending" in r)
            if claim.pending and (now - r["end"].toPython()).total_seconds() > CLAIM_LEASE:
                self.store.drop(str(r["g"]))
            else:
                claims.append(claim)
        return claims

    def _recorded(self, round_: Round | None) -> bool:
        """Is ``round_`` recorded, not pending (``None``, the start of the session, always is)?"""
        return round_ is None or self.store.ask(
            f"ASK {{ GRAPH $g {{ $r a sg:FeedbackRound {_rounds.recorded('r')} }} }}",
            {"g": round_.graph, "r": round_.iri})

    # ------------------------------------------------------------------ rollback
    def undo(self) -> Round:
        """Drop the last round's named graph (one write) and return to the previous ``D`` and ranking.

        The round is dropped only while it is the session's last round in the store. When another client (another
        window, another server process) added a round after it or undid it meanwhile, this copy of the session is
        stale: :class:`SemgraphError` 409 is raised, nothing is dropped and the session is unchanged. A round
        added at the very moment of the drop (which a snapshot-isolated store lets through) is detected afterwards,
        and the dropped round is written back before the 409.
        """
        if not self.rounds:
            raise InvalidInput(f"session {self.session_id} has no round to undo")
        with contextlib.nullcontext() if self.store.shared else _turn(self.store, self.iri):
            return self._undo_last()

    def _undo_last(self) -> Round:
        """:meth:`undo`, once no other thread of this process records or undoes a round of this session."""
        last = self.rounds[-1]
        if self.store.ask("ASK { ?p a sg:Promotion ; prov:used $r }", {"r": last.iri}):
            raise InvalidInput(f"round {last.number} of session {self.session_id} was promoted into the baseline; "
                               "it cannot be undone")
        stored = self._rounds_from(last.number)
        if str(last.iri) not in stored:
            raise SemgraphError(
                f"round {last.number} of session {self.session_id} is no longer recorded (it was undone in another "
                "window or server process); nothing was undone; reload the session and try again",
                title="Conflict", status=409)
        if len(stored) > 1:
            raise self._changed(last, stored)
        self.store.update(_DROP_IF_LAST, {"g": last.graph, "r": last.iri, "s": self.iri, "n": last.number})
        after = self._rounds_from(last.number)
        if after:  # a round was added at the moment of the drop
            if str(last.iri) not in after:
                self._insert(last, pending=False)
            raise self._changed(last, after)
        self.store.drop(str(last.graph))  # the emptied graph's name, which the conditional DELETE leaves behind
        self.rounds.pop()
        self._set_state(self.dissimilarity, self.query)
        return last

    def _changed(self, last: Round, stored: dict[str, int]) -> SemgraphError:
        """The 409 of an undo whose round is no longer the session's last one (``stored``: rounds from its number)."""
        others = [n for iri, n in stored.items() if iri != str(last.iri)]
        what = (f"round {max(others)} was added to session {self.session_id} meanwhile" if others else
                f"session {self.session_id} changed meanwhile")
        return SemgraphError(f"{what} (in another window or server process), so round {last.number} is no longer "
                             "its last round; nothing was undone; reload the session and try again",
                             title="Conflict", status=409)


#: Locks of :func:`_turn`: a fixed set, so that sessions share them instead of each adding one.
_TURNS = tuple(threading.Lock() for _ in range(64))


def _turn(store: Store, session: URIRef) -> threading.Lock:
    """The lock the threads of this process hold while they record or undo a round of ``session`` in ``store``."""
    return _TURNS[hash((str(store.location), str(session))) % len(_TURNS)]


def _ntriples(g: Iterable[tuple]) -> str:
    """The triples ``g`` as the body of an INSERT (terms serialised by rdflib, never pasted text)."""
    return " .\n".join(f"{s.n3()} {p.n3()} {o.n3()}" for s, p, o in g)


def _query_vector(engine: Engine, query) -> tuple[str | None, np.ndarray]:
    if isinstance(query, str):
        return query, engine.vector(query)
    if isinstance(query, Mapping):
        return None, engine.vector_from_terms(query)
    from semgraph.retrieval import hsbd

    return None, hsbd._as_vector(query, len(engine.terms), "query")


def start_session(store: Store, engine: Engine, query, user, *, k: int = DEFAULT_K, filters=None,
                  query_text: str | None = None) -> Session:
    """Start a session for ``query`` (a case id, a likelihood vector or ``{term: value}``) by ``user``.

    ``query_text`` records the free text a vector was parsed from (see :func:`start_text_session`). Nothing is
    written until the first round (:meth:`Session.feedback`).
    """
    query_case, vector = _query_vector(engine, query)
    if query_text is not None and query_case is not None:
        raise InvalidInput("a session's query is either a case or a (text) vector, not both")
    return Session(store, engine, session_id=uuid.uuid4().hex[:12], user=user, query_case=query_case,
                   query_vector=vector, started_at=_now(), k=k, filters=filters, query_text=query_text)


def start_text_session(store: Store, engine: Engine, text: str, user, *, vocabulary=None, k: int = DEFAULT_K,
                       filters=None) -> Session:
    """Start a session whose query is the term vector of a free-text query (:func:`semgraph.text.textquery.parse_text`).

    The text is recorded with the session (``sg:queryText``). The session ranks by HSBD over all terms, as every
    session does (unmentioned categories count as absent until Rocchio moves the query; use
    :data:`TEXT_ALGORITHM` as the feedback algorithm). ``vocabulary`` defaults to the store's
    (:meth:`Vocabulary.from_store`). Raises :class:`InvalidInput` for an empty or over-long text and for a text
    that names no term of the vocabulary (there would be nothing for feedback to move).
    """
    from semgraph.text.textquery import Vocabulary, parse_text

    vocab = Vocabulary.from_store(store) if vocabulary is None else vocabulary
    parsed = parse_text(text, vocab)
    if not parsed.mentioned:
        raise InvalidInput(f"the text {text.strip()!r} names no vocabulary term, so it has no term vector to start a "
                           "feedback session from; describe the lesion with terms such as 'hypodense' or "
                           "'smooth margin'")
    values = {iri: float(v) for iri, v in zip(parsed.terms, parsed.vector)}
    unknown = [iri for iri, v in values.items() if v and iri not in set(engine.terms)]
    if unknown:
        raise InvalidInput(f"the query names term(s) the retrieval index does not use: {', '.join(unknown)}")
    vector = np.array([values.get(t, 0.0) for t in engine.terms], dtype=np.float64)
    return start_session(store, engine, vector, user, k=k, filters=filters, query_text=text.strip())


# --------------------------------------------------------------------------------------------------- replay

# The session's description is repeated in each of its round graphs, and the default graph is their union: one
# pattern per property would join those copies with each other (rounds^properties rows), so read (p, o) pairs.
_SESSION = "SELECT DISTINCT ?p ?o WHERE { $s ?p ?o }"
_LABEL = "SELECT DISTINCT ?name WHERE { $u rdfs:label ?name } ORDER BY ?name LIMIT 1"


def load_session(store: Store, session_id: str, engine: Engine, *, k: int = DEFAULT_K, filters=None) -> Session:
    """Rebuild a session from the graph: ``engine``'s baseline ``D`` plus its rounds' learned edges, in order.

    The result has the same ``D``, query and ranking as the live session had (given the same engine, ``k`` and
    filters). Raises :class:`NotFound` if the session has no recorded round.
    """
    s = session_iri(session_id)
    head = {str(r["p"]): r["o"] for r in store.select(_SESSION, {"s": s})}
    if head.get(str(RDF.type)) is None or not store.ask("ASK { $s a sg:RetrievalSession }", {"s": s}):
        raise NotFound(f"no retrieval session {session_id!r} in the store (a session is recorded with its "
                       "first feedback round)")
    recorded = _collection_name(head.get(str(SG.inCollection)))
    if engine.collection is not None and recorded != engine.collection.name:
        raise InvalidInput(f"session {session_id} belongs to collection {recorded!r}, not to "
                           f"{engine.collection.name!r}; use --collection {recorded}")
    user = head[str(PROV.wasAssociatedWith)]
    names = store.select(_LABEL, {"u": user})
    name = str(names[0]["name"]) if names else _local(user, "user")
    case = head.get(str(SG.queryCase))
    text = head.get(str(SG.queryText))
    session = Session(store, engine, session_id=session_id, user=name,
                      query_case=_local(case, "case") if case is not None else None,
                      query_vector=np.array(json.loads(str(head[str(SG.queryVector)])), dtype=np.float64),
                      started_at=head[str(PROV.startedAtTime)].toPython(), k=k, filters=filters,
                      query_text=str(text) if text is not None else None)
    # The rounds first: a round is written in one transaction, so the marks and edges read next include those of
    # every round listed here, even when another process records a round meanwhile (that one is left out whole).
    stored_rounds = _rounds.rounds_of(store, s)
    marks = _rounds.marks_of(store, s)
    edges = _rounds.pair_changes_of(store, s)
    index = {t: i for i, t in enumerate(engine.terms)}
    labels = engine.labels
    D = session.baseline.copy()
    for r in stored_rounds:
        changes = []
        for a, b, d, prev, derived in edges.get(str(r["r"]), ()):
            if a not in index or b not in index:
                raise InvalidInput(f"session {session_id} learned a value for {a} / {b}, which is not in the "
                                   "engine's vocabulary")
            i, j = index[a], index[b]
            D[i, j] = D[j, i] = d
            changes.append(PairChange(a, b, labels[i], labels[j], prev, d, derived))
        params_dict = json.loads(str(r["params"]))
        params = _feedback.FeedbackParams(**params_dict)
        session.rounds.append(Round(
            _local(r["r"], "round"), int(r["n"]), marks.get(str(r["r"]), {}), params, tuple(changes),
            r["start"].toPython(), r["end"].toPython(), D.copy(),
            np.array(json.loads(str(r["vector"])), dtype=np.float64)))
    if session.rounds:
        session._set_state(session.dissimilarity, session.query)
    return session


def _collection_name(iri) -> str:
    """The name of a session's ``sg:inCollection``; sessions recorded before collections existed are liver ones."""
    return LIVER_CT if iri is None else urllib.parse.unquote(str(iri).rsplit("/", 1)[-1])


def session_collection(store: Store, session_id: str) -> str:
    """The name of the collection session ``session_id`` searched (:class:`NotFound` if it is not recorded)."""
    rows = store.select("SELECT ?c WHERE { $s a sg:RetrievalSession OPTIONAL { $s sg:inCollection ?c } }",
                        {"s": session_iri(session_id)})
    if not rows:
        raise NotFound(f"no retrieval session {session_id!r} in the store (a session is recorded with its "
                       "first feedback round)")
    return _collection_name(rows[0].get("c"))


_SESSIONS = f"""
SELECT ?s ?name ?case ?text ?started (COUNT(DISTINCT ?r) AS ?rounds) WHERE {{
  ?s a sg:RetrievalSession ; rdfs:label ?name ; prov:startedAtTime ?started ; prov:wasAssociatedWith ?u .
  ?r sg:session ?s . {_rounds.recorded("r")}
  OPTIONAL {{ ?s sg:queryCase ?case }} OPTIONAL {{ ?s $qt ?text }}
}} GROUP BY ?s ?name ?case ?text ?started ORDER BY DESC(?started)"""


def list_sessions(store: Store) -> list[dict]:
    """Every recorded session: id, user, query case or text, number of rounds, start time (newest first)."""
    rows = store.select(_SESSIONS, {"qt": SG.queryText})
    out = []
    for r in rows:
        users = store.select("SELECT DISTINCT ?n WHERE { $s prov:wasAssociatedWith ?u . ?u rdfs:label ?n }",
                             {"s": r["s"]})
        out.append({"session_id": str(r["name"]), "user": str(users[0]["n"]) if users else None,
                    "query_case": _local(r["case"], "case") if "case" in r else None,
                    "query_text": str(r["text"]) if "text" in r else None,
                    "rounds": int(r["rounds"]), "started_at": str(r["started"])})
    return out


# --------------------------------------------------------------------------------------------------- promotion

def _by_pair(changes: Iterable[_rounds.LearnedChange]) -> dict[tuple[str, str], list[_rounds.LearnedChange]]:
    out: dict[tuple[str, str], list[_rounds.LearnedChange]] = {}
    for c in changes:
        out.setdefault((c.term_a, c.term_b), []).append(c)
    return out


@dataclass(frozen=True)
class Candidate:
    """A term pair whose learned change has the same sign in several independent sessions."""

    term_a: str
    term_b: str
    sign: int  # -1: the sessions made the terms closer, +1: farther apart
    sessions: tuple[str, ...]  # ids of the agreeing sessions
    against: int  # number of independent sessions that moved it the other way
    proposed: float  # mean of the agreeing sessions' final values

    def as_dict(self) -> dict:
        return dict(self.__dict__, sessions=list(self.sessions))


def promotion_candidates(store: Store, min_sessions: int = 3, *, collection: Collection | None = None
                         ) -> list[Candidate]:
    """Pairs of ``collection``'s terms (default: the store's only collection) whose net learned change has the
    same sign in at least ``min_sessions`` independent sessions.

    The vote is :func:`semgraph.graph.rounds.votes` (docs/algorithms.md §5.5; the exports count the same votes): a
    session's net change of a pair is its last learned value minus the value before its first change; sessions by
    one user on one query case count once (the latest session by start time). Rounds already used by a promotion
    are ignored. Nothing is written: a curator reviews the list and calls :func:`promote`.
    """
    if isinstance(min_sessions, bool) or not isinstance(min_sessions, int) or min_sessions < 1:
        raise InvalidInput(f"min_sessions must be a positive integer, got {min_sessions!r}")
    terms = set((collection or resolve_collection(store)).terms)
    promoted = {str(r["r"]) for r in store.select("SELECT ?r WHERE { ?p a sg:Promotion ; prov:used ?r }")}
    changes = [c for c in _rounds.learned_changes(store)
               if c.round not in promoted and c.term_a in terms and c.term_b in terms]
    out = []
    for (a, b), group in sorted(_by_pair(changes).items()):
        votes = _rounds.votes(group)
        for sign, agree, against in ((-1, votes.closer, votes.farther), (1, votes.farther, votes.closer)):
            if len(agree) >= min_sessions:
                out.append(Candidate(a, b, sign, tuple(sorted(_local(v.session, "session") for v in agree)),
                                     len(against), float(np.mean([v.value for v in agree]))))
    return out


def _baseline_pairs(store: Store, graph: URIRef) -> dict[tuple[str, str], float]:
    rows = store.select("SELECT ?a ?b ?d WHERE { GRAPH $g { ?e a sg:TermSimilarity ; sg:termA ?a ; sg:termB ?b ; "
                        "sg:dissimilarity ?d } }", {"g": graph})
    return {(str(r["a"]), str(r["b"])): float(r["d"]) for r in rows}


def promote(store: Store, target, *, user, reason: str, collection: Collection | None = None) -> dict:
    """Make learned values part of a collection's baseline, by an explicit and recorded ``sg:Promotion``.

    Parameters
    ----------
    target : str or sequence of str
        A session id (all its rounds) or a list of round ids.
    user : str
        Who decides (the curator).
    reason : str
        Why; stored with the promotion.
    collection : Collection, optional
        Whose baseline changes (default: the store's only collection). When the store holds no baseline for it,
        the ontological dissimilarity of its terms is written first.

    Returns
    -------
    dict
        ``promotion_id``, ``changes`` [(term_a, term_b, old, new)], ``rounds``.

    Notes
    -----
    Per pair the promoted value is a session's last learned value (the mean over sessions when rounds of several
    sessions are given). In ONE update, each baseline ``sg:TermSimilarity`` of a promoted pair gets the new
    ``sg:dissimilarity``, ``sg:previous`` = the old value and ``prov:wasInfluencedBy`` the promotion; the
    ``sg:Promotion`` (a ``prov:Activity`` with ``prov:wasAssociatedWith``, times, ``rdfs:comment`` = reason,
    ``prov:used`` = the rounds) is written in the baseline graph.
    """
    user_node, user_name = _user(user)
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a promotion needs a reason (why these learned values should become the baseline)")
    rounds = _target_rounds(store, target)
    per_pair = {pair: float(np.mean([net.last for net in _rounds.session_net(group).values()]))
                for pair, group in _by_pair(c for c in _rounds.learned_changes(store) if c.round in rounds).items()}
    started = _now()
    collection = collection or resolve_collection(store)
    ops, bindings = [], {"bg": collection.baseline_graph}
    current = _baseline_pairs(store, collection.baseline_graph)
    if not current:
        import ontology
        from semgraph.retrieval.similarity import baseline_graph

        names = list(collection.terms)
        D0 = ontology.dissimilarity_matrix(store, names, ontology=collection.ontology)
        g = baseline_graph(names, D0, kind="ontology", provenance={"measure": "kurtz", "written_by": "promotion"},
                           graph=collection.baseline_graph)
        ops.append("INSERT DATA { GRAPH $bg {\n" + " .\n".join(f"{s.n3()} {p.n3()} {o.n3()}" for s, p, o in g)
                   + " } }")
        current = {(str(a), str(b)): float(d) for s, a, b, d in _pairs_of(g)}
    changes = []
    for n, ((a, b), value) in enumerate(sorted(per_pair.items())):
        if (a, b) not in current:
            raise NotFound(f"the baseline has no value for {a} / {b} (it was computed for another vocabulary); "
                           "nothing was written")
        if current[(a, b)] == value:
            continue
        changes.append((a, b, current[(a, b)], value))
        bindings.update({f"a{n}": URIRef(a), f"b{n}": URIRef(b), f"v{n}": Literal(value, datatype=XSD.double)})
        ops.append(f"""DELETE {{ GRAPH $bg {{ ?e sg:dissimilarity ?old . ?e sg:previous ?was }} }}
INSERT {{ GRAPH $bg {{ ?e sg:dissimilarity $v{n} . ?e sg:previous ?old . ?e prov:wasInfluencedBy $promotion }} }}
WHERE {{ GRAPH $bg {{ ?e a sg:TermSimilarity ; sg:termA $a{n} ; sg:termB $b{n} ; sg:dissimilarity ?old .
  OPTIONAL {{ ?e sg:previous ?was }} }} }}""")
    if not changes:
        raise InvalidInput("nothing to promote: the selected rounds change no baseline value")
    promotion_id = uuid.uuid4().hex[:12]
    p = ID["promotion/" + promotion_id]
    g = Graph()
    g.add((p, RDF.type, SG.Promotion))
    g.add((p, RDF.type, PROV.Activity))
    g.add((p, RDFS.label, Literal(promotion_id)))
    g.add((p, RDFS.comment, Literal(reason.strip())))
    g.add((p, PROV.wasAssociatedWith, user_node))
    g.add((user_node, RDF.type, PROV.Person))
    g.add((user_node, RDFS.label, Literal(user_name)))
    g.add((p, PROV.startedAtTime, _time(started)))
    g.add((p, PROV.endedAtTime, _time(_now())))
    g.add((p, SG.parameters, _json({"rule": "last learned value per session, mean over sessions",
                                    "pairs": len(changes)})))
    for r in sorted(rounds):
        g.add((p, PROV.used, URIRef(r)))
    ops.append("INSERT DATA { GRAPH $bg {\n" + " .\n".join(f"{s.n3()} {pp.n3()} {o.n3()}" for s, pp, o in g)
               + " } }")
    bindings["promotion"] = p
    store.update(" ;\n".join(ops), bindings)
    return {"promotion_id": promotion_id, "changes": changes,
            "rounds": sorted(_local(r, "round") for r in rounds)}


def _pairs_of(g: Graph):
    for s in g.subjects(RDF.type, SG.TermSimilarity):
        yield s, g.value(s, SG.termA), g.value(s, SG.termB), g.value(s, SG.dissimilarity)


def _target_rounds(store: Store, target) -> set[str]:
    if isinstance(target, str):
        found = _rounds.round_ids_of(store, session_iri(target))
        if not found:
            raise NotFound(f"no retrieval session {target!r} with recorded rounds")
        return found
    ids = list(target or ())
    if not ids or not all(isinstance(r, str) and r for r in ids):
        raise InvalidInput("give a session id or a non-empty list of round ids to promote")
    out = set()
    for round_id in ids:
        r = round_iri(round_id)
        if not store.ask("ASK { $r a sg:FeedbackRound }", {"r": r}):
            raise NotFound(f"no feedback round {round_id!r}")
        out.add(str(r))
    return out
