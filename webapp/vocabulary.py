"""The collection's vocabulary as the pages and the API show it, and term dissimilarities."""

from __future__ import annotations

import re

from rdflib import URIRef

import ontology
from ontology.measures import MEASURES
from ontology.paper_terms import RADLEX_BASE
from semgraph.errors import InvalidInput, NotFound

from .services import get_store, services

_RID = re.compile(r"RID\d{1,9}")
_LABELS = """
SELECT ?t ?l WHERE {
  VALUES ?t { %s }
  ?t rdfs:label|skos:prefLabel|skos:altLabel ?l .
}
"""


def term_iri(rid: str) -> str:
    """The IRI of a RadLex id (``RID5715``); :class:`InvalidInput` for anything else."""
    if not _RID.fullmatch(rid):
        raise InvalidInput(f"{rid!r} is not a RadLex id (expected RID followed by digits, e.g. RID5715)")
    return RADLEX_BASE + rid


def store_labels(iris: list[str]) -> dict[str, list[str]]:
    """Every rdfs:label, skos:prefLabel and skos:altLabel of ``iris`` in the store (all graphs), sorted."""
    if not iris:
        return {}
    params = {f"t{i}": URIRef(iri) for i, iri in enumerate(iris)}
    text = _LABELS % " ".join(f"${name}" for name in params)
    found: dict[str, set[str]] = {iri: set() for iri in iris}
    for row in get_store().select(text, params):
        found[str(row["t"])].add(str(row["l"]))
    return {iri: sorted(labels) for iri, labels in found.items()}


def vocabulary() -> list[dict]:
    """The collection's terms in vector order: iri, rid (the IRI's last part), label, paper_label (its other name in
    the collection, else the label), category, labels (from the store)."""
    c = services().collection()
    labels = store_labels(list(c.terms))
    aliases = c.aliases or ((),) * len(c.terms)
    return [{"iri": iri, "rid": _local(iri), "label": label, "paper_label": other[0] if other else label,
             "category": category, "labels": labels[iri]}
            for iri, label, category, other in zip(c.terms, c.labels, c.categories, aliases)]


def _local(iri: str) -> str:
    return re.split(r"[/#:]", iri)[-1]


def term(rid: str) -> dict:
    """One term of the loaded hierarchy: labels, parents, children, depth, vocabulary membership."""
    iri = term_iri(rid)
    c = services().collection()
    h = ontology.hierarchy(get_store(), c.ontology)
    if iri not in h:
        raise NotFound(f"{rid} is not in the loaded ontology")
    category = dict(zip(c.terms, c.categories))

    def brief(other: str) -> dict:
        return {"iri": other, "rid": other.rsplit("/", 1)[-1], "label": h.label(other)}

    return {"iri": iri, "rid": rid, "label": h.label(iri), "labels": store_labels([iri])[iri],
            "depth": h.depth(iri), "parents": sorted((brief(p) for p in h.parents(iri)), key=lambda d: d["rid"]),
            "children": sorted((brief(c) for c in h.children(iri)), key=lambda d: d["rid"]),
            "category": category.get(iri), "in_vocabulary": iri in category}


def dissimilarity(rid_a: str, rid_b: str, measure: str = "kurtz") -> dict:
    """δΘ between two terms: the raw measure, and for vocabulary terms the value normalised over the vocabulary
    (the value retrieval uses)."""
    if measure not in MEASURES:
        raise InvalidInput(f"unknown measure {measure!r}; use one of {', '.join(sorted(MEASURES))}")
    a, b = term_iri(rid_a), term_iri(rid_b)
    store = get_store()
    c = services().collection()
    h = ontology.hierarchy(store, c.ontology)
    for rid, iri in ((rid_a, a), (rid_b, b)):
        if iri not in h:
            raise NotFound(f"{rid} is not in the loaded ontology")
    spec = MEASURES[measure]
    raw = 0.0 if a == b else float(spec.pair(h, a, b, 1.0))
    path, lca = h.path_and_lca(a, b)
    iris = list(c.terms)
    value = None
    if a in iris and b in iris:
        key = ("vocabulary-matrix", measure, store.location, id(h), c.terms)
        cache = services().cache
        if key not in cache:
            cache[key] = ontology.dissimilarity_matrix(store, iris, measure, ontology=c.ontology)
        value = float(cache[key][iris.index(a), iris.index(b)])
    elif not spec.normalised:
        value = raw
    return {"a": {"iri": a, "rid": rid_a, "label": h.label(a)}, "b": {"iri": b, "rid": rid_b, "label": h.label(b)},
            "measure": measure, "value": value, "raw": raw, "normalised": spec.normalised,
            "normalised_over": "vocabulary" if spec.normalised and value is not None else None,
            "path_length": path, "lca": {"iri": lca, "label": h.label(lca)}, "formula": spec.formula,
            "reference": spec.reference}
