"""The ontology-update proposal: which learned term pairs to propose as links or re-parentings, and its RDF.

Proposal rule (:data:`RULE`)
    Only pairs that feedback made *closer* are proposed. With ``n_s`` agreeing independent sessions (net change
    negative; :mod:`semgraph.exchange.export.relations` defines independence), ``n_a`` opposing ones, ``n_u``
    distinct users among the agreeing sessions, ``v`` the mean last value of the agreeing sessions and
    ``Δ = v − baseline``, a pair is proposed when ``n_s ≥ min_sessions``, ``n_s > n_a`` and ``Δ ≤ −0.05``:

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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, SKOS, XSD

import ontology
from kg import Store
from kg.namespaces import ID, SG
from semgraph.exchange.export.edges import bind_prefixes
from semgraph.exchange.export.relations import (
    Edge,
    collection_hierarchy,
    default_collection,
    filter_text,
    kept_edges,
    labeller,
    learned_relations,
    session_votes,
)
from semgraph.graph.collection import Collection

__all__ = ["RULE", "Proposal", "confidence", "proposal_graph", "proposals"]

#: The thresholds of the proposal rule (documented in the module notes).
RULE = {"min_shift": 0.05, "close_match_max": 0.15, "reparent_gap": 0.4, "magnitude_scale": 0.3,
        "reparent_scale": 0.6, "measure": "kurtz"}


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
    names = list(collection.terms)
    try:
        D = ontology.dissimilarity_matrix(store, names, measure=RULE["measure"], ontology=collection.ontology)
    except ontology.OntologyError:
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
    collection = default_collection(store, collection)
    relations = learned_relations(store, term=term, min_change=min_change, min_sessions=1, user=user, since=since,
                                  until=until, collection=collection)
    edges = kept_edges(store, relations, user, since, until, collection)
    by_pair: dict[tuple[str, str], list[Edge]] = {}
    for e in edges:
        by_pair.setdefault((e.term_a, e.term_b), []).append(e)
    terms = sorted({t for r in relations for t in (r.term_a, r.term_b)})
    delta_theta = _ontological(store, terms, collection) if terms else {}
    hierarchy = collection_hierarchy(store, collection)
    out: list[Proposal] = []
    for rel in relations:
        group = by_pair.get((rel.term_a, rel.term_b), [])
        votes = session_votes(group)
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


def proposal_graph(store: Store, **filters) -> Graph:
    """The proposals (``filters`` as for :func:`proposals`) as RDF: reified ``rdf:Statement`` s typed
    ``sg:Proposal``, linked to their rounds."""
    found = proposals(store, **filters)
    label = labeller(store, filters.get("collection"))
    g = Graph()
    bind_prefixes(g)
    now = dt.datetime.now(dt.UTC)
    activity = ID[f"export/{uuid.uuid4().hex[:12]}"]
    g.add((activity, RDF.type, PROV.Activity))
    g.add((activity, RDF.type, SG.Export))
    g.add((activity, RDFS.label, Literal("ontology-update proposal from learned term similarities")))
    g.add((activity, PROV.startedAtTime, Literal(now.isoformat(), datatype=XSD.dateTime)))
    params = {"rule": RULE, "filters": {k: filter_text(v) for k, v in filters.items() if v is not None}}
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
