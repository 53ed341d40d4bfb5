"""Retrieval sessions: a query, a user, the baseline ``D0`` of its engine and the feedback rounds given so far.

Each call of :meth:`Session.feedback` runs :func:`semgraph.feedback.algorithms.apply_feedback` on the checked marks
(:meth:`Session.check_marks`), re-ranks, and records the round, with PROV-O provenance, in ONE atomic update into its
own named graph ``feedback_graph(round_id)``, whose shape (the round, its marks, its learned pairs and the session's
description) is owned by :mod:`semgraph.graph.rounds`. Recording a round number at most once, and :meth:`Session.undo`, are
the round-claim protocol of :mod:`semgraph.feedback.claims`. :func:`semgraph.feedback.replay.load_session` rebuilds
a session from the graph alone, and :mod:`semgraph.feedback.promotion` makes learned values part of the shared
baseline.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from rdflib import Literal, URIRef
from rdflib.namespace import RDF

from kg import Store
from kg.namespaces import feedback_graph, session_graph
from kg.sparql import insert_data
from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput
from semgraph.feedback import algorithms as _feedback
from semgraph.feedback.claims import RoundClaims
from semgraph.graph import rounds as _rounds
from semgraph.graph.rounds import RELEVANCE, round_iri, session_iri, user_node
from semgraph.retrieval.engine import Engine, Filters, Hit

__all__ = ["PairChange", "Round", "Session", "start_session", "start_text_session"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _vector_json(v: np.ndarray) -> Literal:
    return Literal(json.dumps([float(x) for x in v], sort_keys=True), datatype=RDF.JSON)  # a float's repr round-trips


def _weights_json(terms: Sequence[str], weights: np.ndarray) -> Literal:
    """Term weights as ``{term IRI: w}`` (``sg:termWeights``)."""
    return Literal(json.dumps(dict(zip(terms, map(float, weights))), sort_keys=True), datatype=RDF.JSON)


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
    #: The round guard's outcome (docs/algorithms.md §5.6): "applied", "reduced" or "refused" (one of
    #: :data:`~semgraph.feedback.algorithms.GUARD_OUTCOMES`; ``sg:guard`` in the graph); None when the guard did
    #: not run.
    guard: str | None = None
    #: The fraction of the algorithm's step that was taken: 1 applied, 1/2 ... reduced, 0 refused; None as ``guard``.
    step: float | None = None
    #: :func:`~semgraph.feedback.algorithms.marked_evidence` of the session's marked cases before and after the
    #: round (None: no (relevant, irrelevant) pair to judge by, or no guard).
    evidence_before: float | None = None
    evidence_after: float | None = None
    #: The session's term weights after the round (docs/algorithms.md §5.7; ``sg:termWeights``), in the engine's
    #: term order; None: none (``w = 1``).
    weights: np.ndarray | None = field(default=None, repr=False)

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
                "changes": [c.as_dict() for c in self.changes], "guard": self.guard, "step": self.step,
                "evidence": {"before": self.evidence_before, "after": self.evidence_after},
                "weights": None if self.weights is None else [float(w) for w in self.weights]}


# --------------------------------------------------------------------------------------------------- session


class Session(RoundClaims):
    """A retrieval session: a query, a user, the baseline ``D0`` and the feedback rounds given so far.

    Create one with :func:`start_session` or :func:`semgraph.feedback.replay.load_session`. :attr:`dissimilarity`,
    :attr:`query` and :attr:`ranking` are the current state (after the last round). Recording and undoing rounds
    (:meth:`record`, :meth:`undo`, :meth:`is_current`) follow the claim protocol of :class:`RoundClaims`.
    """

    def __init__(self, store: Store, engine: Engine, *, session_id: str, user, query_case: str | None,
                 query_vector: np.ndarray, started_at: dt.datetime, k: int = DEFAULT_K, filters=None,
                 query_text: str | None = None):
        self.store = store
        self.session_id = session_id
        self.user_iri, self.user = user_node(user)
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

    @property
    def weights(self) -> np.ndarray | None:
        """The current term weights (None: none, ``w = 1``)."""
        return self.rounds[-1].weights if self.rounds else None

    def _rank(self, query: np.ndarray) -> list[Hit]:
        exclude = (self.query_case,) if self.query_case else ()
        return self._engine.search_vector(query, self.k, self.filters, exclude=exclude)

    def _set_state(self, D: np.ndarray, query: np.ndarray, weights: np.ndarray | None) -> None:
        if self._engine is self._base_engine:
            self._engine = self._base_engine.with_dissimilarity(D, source="session", term_weights=weights)
        else:
            self._engine._set_dissimilarity(D, weights)
        self.ranking = self._rank(query)

    # ------------------------------------------------------------------ feedback
    def check_marks(self, marks: Mapping[str, str], *, decisive: bool = False) -> dict[str, str]:
        """The marks of a round, checked: ``{case id: relevance}`` with a value of :data:`RELEVANCE` for a case of
        the index other than the session's query case, at least one mark (with ``decisive``: at least one
        relevant or irrelevant one, as neutral marks alone change nothing). :class:`InvalidInput` otherwise.

        The one check of marks: :meth:`compute_round` applies it, and a client may call it before it records."""
        if not isinstance(marks, Mapping) or not (marks or decisive):
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
        if decisive and all(v == "neutral" for v in checked.values()):
            raise InvalidInput("mark at least one result relevant or irrelevant before applying")
        return checked

    def _marked(self, rounds: Sequence[Round], value: str) -> np.ndarray:
        return self._vectors(c for r in rounds for c, v in r.marks.items() if v == value)

    def evidence_marks(self, marks: Mapping[str, str] | None = None) -> dict[str, str]:
        """The marked cases the round guard judges by: the last mark of every case over the session's rounds and
        then ``marks`` (a later mark replaces an earlier one; a later explicit "neutral" withdraws it)."""
        latest: dict[str, str] = {}
        for r in self.rounds:
            latest.update(r.marks)
        latest.update(marks or {})
        return {c: v for c, v in latest.items() if v != "neutral"}

    def compute_round(self, marks: Mapping[str, str], params: _feedback.FeedbackParams | None = None, *,
                      guard: bool = True) -> Round:
        """The next round (feedback applied, nothing written, session unchanged).

        With ``guard`` (the default) the round guard (:func:`semgraph.feedback.algorithms.guard_round`, docs §5.6)
        shrinks or refuses a step that would rank the cases marked so far (:meth:`evidence_marks`) worse than the
        current state does; the round records the outcome (:attr:`Round.guard`, :attr:`Round.step`). The marks
        are kept whatever the guard decides."""
        started = _now()
        params = params or _feedback.FeedbackParams()
        marks = self.check_marks(marks)
        number = len(self.rounds) + 1
        new = Round("", number, marks, params, (), started, started, self.dissimilarity, self.query)
        rel, irr = self._marked([new], "relevant"), self._marked([new], "irrelevant")
        result = _feedback.apply_feedback(
            self.dissimilarity, self.baseline, self.query0, rel, irr, list(self.categories), round_number=number,
            params=params, history_relevant=self._marked(self.rounds, "relevant"),
            history_irrelevant=self._marked(self.rounds, "irrelevant"), weights=self.weights)
        D, query, weights, found = result.dissimilarity, result.query, result.weights, result.changes
        outcome = None
        if guard:
            evidence = self.evidence_marks(marks)
            outcome = _feedback.guard_round(
                self.dissimilarity, self.query, D, query, self._vectors(c for c, v in evidence.items() if v == "relevant"),
                self._vectors(c for c, v in evidence.items() if v == "irrelevant"), d_min=params.d_min,
                weights=self.weights, new_weights=weights)
            D, query, weights = outcome.dissimilarity, outcome.query, outcome.weights
            found = _feedback.changed_pairs(np.asarray(self.dissimilarity, dtype=np.float64), D)
        changes = tuple(sorted((self._pair_change(c, marks, params) for c in found),
                              key=lambda c: (c.term_a, c.term_b)))
        return Round(uuid.uuid4().hex[:16], number, marks, params, changes, started, _now(),
                     np.array(D, dtype=np.float64), np.array(query, dtype=np.float64),
                     *((outcome.guard, outcome.step, outcome.before, outcome.after) if outcome else ()),
                     weights=None if weights is None else np.array(weights, dtype=np.float64))

    def _vectors(self, case_ids) -> np.ndarray:
        ids = list(case_ids)
        return self._engine.vectors[[self._engine._row[c] for c in ids]].reshape(len(ids), len(self.terms))

    def feedback(self, marks: Mapping[str, str], params: _feedback.FeedbackParams | None = None, *,
                 guard: bool = True) -> Round:
        """Apply one round of marks (guarded as :meth:`compute_round` says), write it to the graph (one atomic
        update) and re-rank.

        Raises :class:`InvalidInput` (nothing written) for marks :meth:`check_marks` refuses.
        """
        return self.record(self.compute_round(marks, params, guard=guard))

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
        self._set_state(new.dissimilarity, new.query, new.weights)
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

    def _description(self) -> list[tuple]:
        return _rounds.session_triples(
            self.iri, session_id=self.session_id, user=self.user_iri, user_name=self.user, started=self.started_at,
            query_vector=_vector_json(self.query0), query_case=self.query_case, query_text=self.query_text,
            collection=self._engine.collection.iri if self._engine.collection is not None else None)

    def record_start(self, *, title: str, parameters: Mapping[str, object]) -> None:
        """Write the session's start record (its description, ``title`` and the JSON object ``parameters``: k,
        filters, algorithm, warnings ...) to its own graph (:func:`kg.namespaces.session_graph`), so that it can be
        resumed before its first round; :func:`semgraph.feedback.replay.session_start` reads it back."""
        triples = self._description() + _rounds.start_triples(
            self.iri, title=title, parameters=json.dumps(dict(parameters), sort_keys=True))
        self.store.update(insert_data(dict.fromkeys(triples)), {"g": session_graph(self.session_id)})

    def round_triples(self, new: Round) -> list[tuple]:
        """The triples of a round (with its session's description), as written by :meth:`feedback`, each once.

        A plain list (an rdflib Graph cost ~25 µs per triple, about 1 ms per round, only to be serialised)."""
        r = new.iri
        g = self._description() + _rounds.round_triples(
            r, session=self.iri, number=new.number, user=self.user_iri, started=new.started_at, ended=new.ended_at,
            algorithm=new.params.algorithm, parameters=json.dumps(new.params.as_dict(), sort_keys=True),
            marks=sorted(new.marks.items()), query_vector=_vector_json(new.query), guard=new.guard, step=new.step,
            term_weights=None if new.weights is None else _weights_json(self.terms, new.weights))
        for c in new.changes:
            g += _rounds.pair_triples(_rounds.pair_iri(r, c.term_a, c.term_b), round_=r, term_a=c.term_a,
                                      term_b=c.term_b, value=c.after, previous=c.before, user=self.user_iri,
                                      generated_at=new.ended_at, derived_from=c.derived_from)
        return list(dict.fromkeys(g))


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
    :data:`semgraph.feedback.algorithms.TEXT_ALGORITHM` as the feedback algorithm). ``vocabulary`` defaults to the
    store's (:meth:`Vocabulary.from_store`). Raises :class:`InvalidInput` for an empty or over-long text and for a text
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
