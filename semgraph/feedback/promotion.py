"""Promotion of learned term dissimilarities into a collection's shared baseline (docs/algorithms.md §5.5).

:func:`promotion_candidates` lists the term pairs that moved the same way in several independent sessions (the vote
of :func:`semgraph.graph.rounds.votes`); :func:`promote` makes learned values part of the baseline by an explicit,
recorded ``sg:Promotion`` (a ``prov:Activity`` in the baseline graph that ``prov:used`` the rounds). A promoted
round can no longer be undone (:func:`is_promoted`).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import PROV, RDF, RDFS, XSD

from kg import Store
from kg.namespaces import ID, SG
from kg.sparql import insert_data
from semgraph.errors import InvalidInput, NotFound
from semgraph.graph import rounds as _rounds
from semgraph.graph.collection import Collection
from semgraph.graph.collection import resolve as resolve_collection
from semgraph.graph.rounds import local_id, round_iri, session_iri, user_node

__all__ = ["Candidate", "is_promoted", "promote", "promoted_matrix", "promoted_values", "promotion_candidates"]

_PROMOTED = "SELECT ?r WHERE { ?p a sg:Promotion ; prov:used ?r }"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time(value: dt.datetime) -> Literal:
    return Literal(value.isoformat(), datatype=XSD.dateTime)


def is_promoted(store: Store, round_: URIRef) -> bool:
    """Was the round ``round_`` used by a promotion (its learned values are part of a baseline)?"""
    return store.ask("ASK { ?p a sg:Promotion ; prov:used $r }", {"r": round_})


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
    promoted = {str(r["r"]) for r in store.select(_PROMOTED)}
    changes = [c for c in _rounds.learned_changes(store)
               if c.round not in promoted and c.term_a in terms and c.term_b in terms]
    out = []
    for (a, b), group in sorted(_by_pair(changes).items()):
        votes = _rounds.votes(group)
        for sign, agree, against in ((-1, votes.closer, votes.farther), (1, votes.farther, votes.closer)):
            if len(agree) >= min_sessions:
                out.append(Candidate(a, b, sign, tuple(sorted(local_id(v.session, "session") for v in agree)),
                                     len(against), float(np.mean([v.value for v in agree]))))
    return out


def _baseline_pairs(store: Store, graph: URIRef) -> dict[tuple[str, str], float]:
    rows = store.select("SELECT ?a ?b ?d WHERE { GRAPH $g { ?e a sg:TermSimilarity ; sg:termA ?a ; sg:termB ?b ; "
                        "sg:dissimilarity ?d } }", {"g": graph})
    return {(str(r["a"]), str(r["b"])): float(r["d"]) for r in rows}


Change = tuple[str, str, float, float]  # (term_a, term_b, old, new)


def promoted_values(current: Mapping[tuple[str, str], float], values: Mapping[tuple[str, str], float]
                    ) -> list[Change]:
    """The baseline changes ``(term_a, term_b, old, new)``, by pair, that promoting ``values`` (pair → new value) makes
    to the baseline ``current`` (pair → value): a pair whose value stays the same changes nothing. Pure; NotFound
    when the baseline has no value for a pair."""
    changes = []
    for (a, b), value in sorted(values.items()):
        if (a, b) not in current:
            raise NotFound(f"the baseline has no value for {a} / {b} (it was computed for another vocabulary); "
                           "nothing was written")
        if current[(a, b)] != value:
            changes.append((a, b, current[(a, b)], value))
    return changes


def promoted_matrix(D0, terms: Sequence[str], values: Mapping[tuple[str, str], float]
                    ) -> tuple[np.ndarray, list[Change]]:
    """``D0`` (k×k, rows in the order of ``terms``) after promoting ``values`` by the rule of :func:`promote`
    (:func:`promoted_values`; the baseline's pairs are keyed by their sorted terms, as stored), and the changes."""
    D = np.array(D0, dtype=np.float64)
    names = [str(t) for t in terms]
    row = {t: i for i, t in enumerate(names)}
    current = {tuple(sorted((a, b))): float(D[row[a], row[b]]) for n, a in enumerate(names) for b in names[n + 1:]}
    changes = promoted_values(current, values)
    for a, b, _, new in changes:
        D[row[a], row[b]] = D[row[b], row[a]] = new
    return D, changes


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
    person, user_name = user_node(user)
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
        ops.append(insert_data(g, "bg"))
        current = {(str(a), str(b)): float(d) for s, a, b, d in _pairs_of(g)}
    changes = promoted_values(current, per_pair)
    for n, (a, b, _, value) in enumerate(changes):
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
    g.add((p, PROV.wasAssociatedWith, person))
    g.add((person, RDF.type, PROV.Person))
    g.add((person, RDFS.label, Literal(user_name)))
    g.add((p, PROV.startedAtTime, _time(started)))
    g.add((p, PROV.endedAtTime, _time(_now())))
    g.add((p, SG.parameters, Literal(json.dumps({"rule": "last learned value per session, mean over sessions",
                                                 "pairs": len(changes)}, sort_keys=True), datatype=RDF.JSON)))
    for r in sorted(rounds):
        g.add((p, PROV.used, URIRef(r)))
    ops.append(insert_data(g, "bg"))
    bindings["promotion"] = p
    store.update(" ;\n".join(ops), bindings)
    return {"promotion_id": promotion_id, "changes": changes,
            "rounds": sorted(local_id(r, "round") for r in rounds)}


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
