"""Recorded sessions read back from the graph: :func:`load_session` replays one (the baseline plus the learned
edges of its rounds, in order), :func:`session_start` reads its start record, :func:`session_collection` names the
collection it searched, and :func:`list_sessions` lists them all. Only recorded rounds count (a pending claim is
skipped). A session is in the graph from its start record (:meth:`Session.record_start`, as the web app writes it)
or else from its first round (as ``semgraph feedback --new`` writes it).
"""

from __future__ import annotations

import json
import urllib.parse

import numpy as np
from rdflib.namespace import PROV, RDF

from kg import Store
from kg.namespaces import SG, session_graph
from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput, NotFound
from semgraph.feedback import algorithms as _feedback
from semgraph.feedback.sessions import PairChange, Round, Session
from semgraph.graph import rounds as _rounds
from semgraph.graph.collection import LIVER_CT
from semgraph.graph.rounds import local_id, session_iri
from semgraph.retrieval.engine import Engine

__all__ = ["list_sessions", "load_session", "session_collection", "session_start"]

# The session's description is repeated in each of its round graphs, and the default graph is their union: one
# pattern per property would join those copies with each other (rounds^properties rows), so read (p, o) pairs.
_SESSION = "SELECT DISTINCT ?p ?o WHERE { $s ?p ?o }"
_LABEL = "SELECT DISTINCT ?name WHERE { $u rdfs:label ?name } ORDER BY ?name LIMIT 1"


def load_session(store: Store, session_id: str, engine: Engine, *, k: int = DEFAULT_K, filters=None) -> Session:
    """Rebuild a session from the graph: ``engine``'s baseline ``D`` plus its rounds' learned edges, in order, and
    the term weights of its last round (``sg:termWeights``, none when it has none).

    The result has the same ``D``, query and ranking as the live session had (given the same engine, ``k`` and
    filters; :func:`session_start` has those of a session with a start record). Raises :class:`NotFound` if the
    session has neither a start record nor a recorded round.
    """
    s = session_iri(session_id)
    head = {str(r["p"]): r["o"] for r in store.select(_SESSION, {"s": s})}
    if head.get(str(RDF.type)) is None or not store.ask("ASK { $s a sg:RetrievalSession }", {"s": s}):
        raise NotFound(f"no retrieval session {session_id!r} in the store")
    recorded = _collection_name(head.get(str(SG.inCollection)))
    if engine.collection is not None and recorded != engine.collection.name:
        raise InvalidInput(f"session {session_id} belongs to collection {recorded!r}, not to "
                           f"{engine.collection.name!r}; use --collection {recorded}")
    user = head[str(PROV.wasAssociatedWith)]
    names = store.select(_LABEL, {"u": user})
    name = str(names[0]["name"]) if names else local_id(user, "user")
    case = head.get(str(SG.queryCase))
    text = head.get(str(SG.queryText))
    session = Session(store, engine, session_id=session_id, user=name,
                      query_case=local_id(case, "case") if case is not None else None,
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
            local_id(r["r"], "round"), int(r["n"]), marks.get(str(r["r"]), {}), params, tuple(changes),
            r["start"].toPython(), r["end"].toPython(), D.copy(),
            np.array(json.loads(str(r["vector"])), dtype=np.float64),
            guard=str(r["guard"]) if "guard" in r else None, step=float(r["step"]) if "step" in r else None,
            weights=_weights(r["weights"], engine.terms, session_id) if "weights" in r else None))
    if session.rounds:
        session._set_state(session.dissimilarity, session.query, session.weights)
    return session


def _weights(literal, terms, session_id: str) -> np.ndarray:
    """A round's ``sg:termWeights`` (JSON ``{term IRI: w}``) in the engine's term order."""
    values = json.loads(str(literal))
    if set(values) != set(terms):
        raise InvalidInput(f"session {session_id} has term weights for other terms than the engine's vocabulary")
    return np.array([float(values[t]) for t in terms], dtype=np.float64)


def session_start(store: Store, session_id: str) -> dict | None:
    """The start record of a session (:meth:`Session.record_start`): ``{"title": ..., **parameters}``, or None when
    the session was recorded with its first round only."""
    found = _rounds.session_start(store, session_iri(session_id), session_graph(session_id))
    if found is None:
        return None
    title, parameters = found
    return {"title": title, **json.loads(parameters)}


def _collection_name(iri) -> str:
    """The name of a session's ``sg:inCollection``; sessions recorded before collections existed are liver ones."""
    return LIVER_CT if iri is None else urllib.parse.unquote(str(iri).rsplit("/", 1)[-1])


def session_collection(store: Store, session_id: str) -> str:
    """The name of the collection session ``session_id`` searched (:class:`NotFound` if it is not recorded)."""
    rows = store.select("SELECT ?c WHERE { $s a sg:RetrievalSession OPTIONAL { $s sg:inCollection ?c } }",
                        {"s": session_iri(session_id)})
    if not rows:
        raise NotFound(f"no retrieval session {session_id!r} in the store")
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
                    "query_case": local_id(r["case"], "case") if "case" in r else None,
                    "query_text": str(r["text"]) if "text" in r else None,
                    "rounds": int(r["rounds"]), "started_at": str(r["started"])})
    return out
