"""Collections: named sets of cases, each with its ontology, its ordered terms and their categories, in the graph.

A collection is what a search, a session, a baseline ``D``, an evaluation or an export is about: liver lesions on
CT described by 19 RadLex terms, lung nodules described by reader rating levels, ... Its definition is data in the
``collections`` named graph, and this module is the only one that writes or reads that shape::

    id:collection/lung-nodules  a sg:Collection ; rdfs:label "lung-nodules" ; dcterms:title "Lung nodules" ;
        sg:ontology <.../graph/ontology/lidc> ; sg:termRoot <urn:lidc:characteristic> ; sg:modality "CT" ;
        sg:collectionTerm id:collection/lung-nodules/term/0 , ...
    id:collection/lung-nodules/term/0  a sg:CollectionTerm ; sg:term <urn:lidc:margin-5> ; sg:position 0 ;
        sg:category "margin" ; rdfs:label "margin 5" ; skos:altLabel "sharp margin" ;
        sg:exclusiveGroup "margin"

A case belongs to one collection: ``id:case/C1 sg:inCollection id:collection/...`` in the annotations graph
(written by :func:`semgraph.graph.casegraph.write_case`). The position orders the likelihood vectors; the category groups
terms that are alternatives of one another (the feedback algorithms' same-category rule); by default it is the
branch of the ontology the term lies in: the child of the term root on a shortest path down to the term, where the
term root is the deepest class above every term of the collection unless given. An exclusive group
(``sg:exclusiveGroup``, optional, at most one per term) names terms of which a case has at most one (circumscribed
or indistinct margin; water, hypodense or soft-tissue density): the term models predict them jointly and captions
and likelihood panels assert at most one of them. Not every category is exclusive (an enhancing lesion may also be
hypervascular), so the groups are data of their own, not derived from the categories.

The bundled liver collection (:func:`bundled`, ``liver-ct``: the paper's Table 1 terms and categories, RadLex,
CT) is only a definition shipped with the package. A store with no stored collection behaves as if it held that
definition and every case were in it (stores written before collections existed); :func:`define` of the first
collection of such a store also stores that definition and puts the cases already there into it, in the same
transaction, so that cases never silently change collection.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, SKOS, XSD

from kg import Store
from kg.namespaces import (
    ANNOTATIONS_GRAPH,
    BASELINE_GRAPH,
    COLLECTIONS_GRAPH,
    GRAPH,
    ID,
    SG,
    ontology_graph,
)
from semgraph.errors import InvalidInput, NotFound

__all__ = ["LIVER_CT", "Collection", "bundled", "collection_iri", "default_categories", "define", "resolve",
           "stored_collections", "validate_name"]

#: Name of the bundled collection of the liver-lesion paper.
LIVER_CT = "liver-ct"
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_MAX_NAME = 64


def validate_name(name: str) -> str:
    """``name`` if it is a collection name (1–64 of ``a-z 0-9 - _ .``, starting with a letter or digit)."""
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME or not set(name) <= _NAME_CHARACTERS \
            or not name[0].isalnum():
        raise InvalidInput(f"{name!r} is not a collection name: use 1 to {_MAX_NAME} lower-case letters, digits, "
                           "'-', '_' or '.', starting with a letter or digit (for example lung-nodules)")
    return name


def collection_iri(name: str) -> URIRef:
    """IRI of the collection ``name``."""
    return ID["collection/" + urllib.parse.quote(validate_name(name), safe="")]


@dataclass(frozen=True)
class Collection:
    """A collection's definition: its terms in vector order with their labels, other names and categories.

    ``stored`` is False for the bundled liver definition standing in for a store that has no collection yet; such
    a collection holds every case of the store (:attr:`case_filter` is None).
    """

    name: str
    terms: tuple[str, ...]
    labels: tuple[str, ...]
    categories: tuple[str, ...]
    title: str = ""
    ontology: str | None = None
    term_root: str | None = None
    modality: str | None = None
    aliases: tuple[tuple[str, ...], ...] = ()
    case_label: str = "Case"
    stored: bool = True
    #: Per term, the name of its exclusive group ("" for none); empty: no groups.
    exclusive: tuple[str, ...] = ()

    def __post_init__(self):
        validate_name(self.name)
        k = len(self.terms)
        if k == 0:
            raise InvalidInput(f"collection {self.name!r} has no term")
        if len(set(self.terms)) != k:
            raise InvalidInput(f"collection {self.name!r} names a term twice")
        if len(self.labels) != k or len(self.categories) != k or (self.aliases and len(self.aliases) != k):
            raise InvalidInput(f"collection {self.name!r}: one label and one category per term are needed")
        blank = [t for t, c in zip(self.terms, self.categories) if not c or not c.strip()]
        if blank:
            raise InvalidInput(f"collection {self.name!r}: {len(blank)} term(s) have no category, e.g. {blank[0]}; "
                               "give their categories explicitly")
        if self.exclusive and len(self.exclusive) != k:
            raise InvalidInput(f"collection {self.name!r}: one exclusive group (or '') per term is needed")
        lonely = [g for g, members in self.exclusive_groups.items() if len(members) < 2]
        if lonely:
            raise InvalidInput(f"collection {self.name!r}: the exclusive group {lonely[0]!r} has a single term; a "
                               "group needs at least two")

    @property
    def iri(self) -> URIRef:
        return collection_iri(self.name)

    @property
    def subject(self) -> str:
        """The head of the captions of its cases (``case_label``)."""
        return self.case_label

    @property
    def case_filter(self) -> URIRef | None:
        """The ``sg:inCollection`` value the collection's cases carry; None when every case of the store is in it."""
        return self.iri if self.stored else None

    @property
    def baseline_graph(self) -> URIRef:
        """The named graph of the collection's baseline ``D``. The liver collection keeps the graph it had before
        collections existed (``graph/similarity/baseline``); others get ``graph/similarity/baseline/<name>``."""
        return BASELINE_GRAPH if self.name == LIVER_CT else GRAPH["similarity/baseline/" + self.name]

    def __len__(self) -> int:
        return len(self.terms)

    @property
    def exclusive_groups(self) -> dict[str, tuple[str, ...]]:
        """Exclusive group name → its term IRIs in vector order (groups in order of their first term)."""
        groups: dict[str, list[str]] = {}
        for term, group in zip(self.terms, self.exclusive):
            if group:
                groups.setdefault(group, []).append(term)
        return {g: tuple(members) for g, members in groups.items()}

    def subset(self, positions: Sequence[int]) -> Collection:
        """The collection restricted to the terms at ``positions`` (in that order); an exclusive group left with a
        single term is no longer a group."""
        def pick(values: tuple) -> tuple:
            return tuple(values[i] for i in positions) if values else ()

        exclusive = pick(self.exclusive)
        kept = {g for g in exclusive if g and exclusive.count(g) > 1}
        return replace(self, terms=pick(self.terms), labels=pick(self.labels), categories=pick(self.categories),
                       aliases=pick(self.aliases), exclusive=tuple(g if g in kept else "" for g in exclusive))

    def position(self, term: str) -> int:
        try:
            return self.terms.index(term)
        except ValueError:
            raise NotFound(f"{term} is not a term of collection {self.name!r}") from None

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "ontology": self.ontology, "term_root": self.term_root,
                "modality": self.modality, "case_label": self.case_label, "stored": self.stored,
                "terms": [{"iri": t, "label": lab, "category": c, "aliases": list(a), "exclusive_group": e or None}
                          for t, lab, c, a, e in zip(self.terms, self.labels, self.categories,
                                                     self.aliases or ((),) * len(self.terms),
                                                     self.exclusive or ("",) * len(self.terms))]}


@cache
def bundled(name: str = LIVER_CT) -> Collection:
    """A collection definition shipped with the package: ``liver-ct``, the paper's Table 1 (RadLex, CT)."""
    if name != LIVER_CT:
        raise NotFound(f"no bundled collection {name!r}; the bundled one is {LIVER_CT!r}")
    from ontology.loading import BUNDLED_RADLEX
    from ontology.paper_terms import paper_exclusive_groups, paper_terms

    terms = paper_terms()
    group_of = {t: g for g, members in paper_exclusive_groups().items() for t in members}
    return Collection(LIVER_CT, tuple(t.iri for t in terms), tuple(t.label for t in terms),
                      tuple(t.category for t in terms), title="Liver lesions on CT (the paper's RadLex terms)",
                      ontology=BUNDLED_RADLEX, modality="CT", case_label="Liver lesion",
                      aliases=tuple((t.paper_label,) if t.paper_label != t.label else () for t in terms),
                      stored=False, exclusive=tuple(group_of.get(t.iri, "") for t in terms))


# ---------------------------------------------------------------------------------------------- categories
def default_categories(hierarchy, terms: Sequence[str], term_root: str | None = None) -> tuple[str, dict[str, str]]:
    """``(term_root, {term: category})``: each term's category is the label of the child of ``term_root`` on a
    shortest path from it down to the term (ties: the smallest IRI). ``term_root`` defaults to the deepest class
    that is a proper ancestor of every term (ties: the smallest IRI).

    Raises :class:`InvalidInput` naming the terms that lie outside the ontology, that are the root itself, or that
    are not below the given root.
    """
    outside = [t for t in terms if t not in hierarchy]
    if outside:
        raise InvalidInput(f"{len(outside)} term(s) are not in the ontology's hierarchy, e.g. {outside[0]}; give "
                           "their categories explicitly")
    if term_root is None:
        common = set.intersection(*(set(hierarchy.ancestors(t)) for t in terms))
        if not common:
            raise InvalidInput("no class of the ontology lies above every term; give --term-root or the categories "
                               "explicitly")
        term_root = min(common, key=lambda c: (-hierarchy.depth(c), c))
    elif term_root not in hierarchy:
        raise InvalidInput(f"the term root {term_root} is not in the ontology")
    categories = {}
    for t in terms:
        if t == term_root:
            raise InvalidInput(f"{t} is the term root itself, so it has no category; give --term-root (a class "
                               "above every term) or the categories explicitly")
        if term_root not in hierarchy.ancestors(t):
            raise InvalidInput(f"{t} is not below the term root {term_root}")
        # walk down from the root: the root's children that are ancestors-or-self of t, nearest to t first
        below = [c for c in hierarchy.children(term_root) if c == t or c in hierarchy.ancestors(t)]
        branch = min(below, key=lambda c: (hierarchy.path_length(c, t), c))
        categories[t] = hierarchy.label(branch) or _local_name(branch)
    return term_root, categories


def _local_name(iri: str) -> str:
    for separator in ("#", "/", ":"):
        if separator in iri:
            iri = iri.rsplit(separator, 1)[-1]
    return iri


# ---------------------------------------------------------------------------------------------- the graph
def _term_iri(name: str, position: int) -> URIRef:
    return URIRef(f"{collection_iri(name)}/term/{position}")


def collection_triples(c: Collection) -> Graph:
    """The triples describing ``c`` (for the ``collections`` graph)."""
    g = Graph()
    s = c.iri
    g.add((s, RDF.type, SG.Collection))
    g.add((s, RDFS.label, Literal(c.name)))
    if c.title:
        g.add((s, DCTERMS.title, Literal(c.title)))
    if c.ontology:
        g.add((s, SG.ontology, ontology_graph(c.ontology)))
    if c.term_root:
        g.add((s, SG.termRoot, URIRef(c.term_root)))
    if c.modality:
        g.add((s, SG.modality, Literal(c.modality)))
    g.add((s, SG.caseLabel, Literal(c.case_label)))
    aliases = c.aliases or ((),) * len(c.terms)
    exclusive = c.exclusive or ("",) * len(c.terms)
    for i, (term, label, category, other, group) in enumerate(zip(c.terms, c.labels, c.categories, aliases,
                                                                   exclusive)):
        item = _term_iri(c.name, i)
        g.add((s, SG.collectionTerm, item))
        g.add((item, RDF.type, SG.CollectionTerm))
        g.add((item, SG.term, URIRef(term)))
        g.add((item, SG.position, Literal(i, datatype=XSD.integer)))
        g.add((item, SG.category, Literal(category)))
        g.add((item, RDFS.label, Literal(label)))
        for alias in other:
            g.add((item, SKOS.altLabel, Literal(alias)))
        if group:
            g.add((item, SG.exclusiveGroup, Literal(group)))
    return g


_READ = """
SELECT ?c ?name ?title ?ontology ?root ?modality ?caseLabel ?position ?term ?label ?category ?exclusive
       (GROUP_CONCAT(?alias; separator="\\u001f") AS ?aliases)
WHERE { GRAPH $g {
  ?c a sg:Collection ; rdfs:label ?name ; sg:collectionTerm ?item .
  ?item sg:term ?term ; sg:position ?position ; sg:category ?category ; rdfs:label ?label .
  OPTIONAL { ?c dcterms:title ?title } OPTIONAL { ?c sg:ontology ?ontology } OPTIONAL { ?c sg:termRoot ?root }
  OPTIONAL { ?c sg:modality ?modality } OPTIONAL { ?c sg:caseLabel ?caseLabel }
  OPTIONAL { ?item skos:altLabel ?alias } OPTIONAL { ?item sg:exclusiveGroup ?exclusive }
} } GROUP BY ?c ?name ?title ?ontology ?root ?modality ?caseLabel ?position ?term ?label ?category ?exclusive
ORDER BY ?name ?position
"""
_ONTOLOGY_PREFIX = str(GRAPH["ontology/"])


def stored_collections(store: Store) -> list[Collection]:
    """The collections stored in ``store``, by name."""
    rows: dict[str, list] = {}
    for r in store.select(_READ, {"g": COLLECTIONS_GRAPH}):
        rows.setdefault(str(r["name"]), []).append(r)
    out = []
    for name, items in rows.items():
        head = items[0]
        ontology = str(head["ontology"]) if "ontology" in head else None
        if ontology is not None and ontology.startswith(_ONTOLOGY_PREFIX):
            ontology = urllib.parse.unquote(ontology[len(_ONTOLOGY_PREFIX):])
        aliases = tuple(tuple(a for a in str(r.get("aliases") or "").split("\x1f") if a) for r in items)
        exclusive = tuple(str(r.get("exclusive") or "") for r in items)
        out.append(Collection(
            name, tuple(str(r["term"]) for r in items), tuple(str(r["label"]) for r in items),
            tuple(str(r["category"]) for r in items), title=str(head.get("title") or ""), ontology=ontology,
            term_root=str(head["root"]) if "root" in head else None,
            modality=str(head["modality"]) if "modality" in head else None,
            aliases=aliases if any(aliases) else (), case_label=str(head.get("caseLabel") or "Case"),
            exclusive=exclusive if any(exclusive) else ()))
    return out


def resolve(store: Store, name: str | None = None) -> Collection:
    """The collection ``name``; None = the store's only collection (the bundled liver one when it has none).

    Raises :class:`NotFound` for an unknown name and :class:`InvalidInput` when ``name`` is None and the store holds
    several collections (the message lists them).
    """
    stored = {c.name: c for c in stored_collections(store)}
    if name is None or name == "":
        if len(stored) > 1:
            raise InvalidInput(f"the store holds {len(stored)} collections ({', '.join(sorted(stored))}); choose one "
                               "with --collection NAME (or the setting SEMGRAPH_COLLECTION)")
        return next(iter(stored.values())) if stored else bundled()
    validate_name(name)
    if name in stored:
        return stored[name]
    if name == LIVER_CT and not stored:
        return bundled()
    known = sorted(stored) or [LIVER_CT]
    raise NotFound(f"no collection {name!r} in {store.location}; collections: {', '.join(known)}. Define one by "
                   f"ingesting a reader CSV with --collection {name}")


_UNTAGGED = """
INSERT { GRAPH $a { ?case sg:inCollection $liver } }
WHERE { GRAPH $a { ?case a sg:Case FILTER NOT EXISTS { ?case sg:inCollection ?any } } }"""


def define(store: Store, collection: Collection, *, replace: bool = False) -> Collection:
    """Store ``collection`` (one transaction) and return it as stored.

    The first definition in a store that already has cases also stores the bundled liver definition and puts every
    case without a collection into it (see the module docstring). An existing collection of that name is an error
    unless ``replace`` (its terms may then change; the cases stay in it).
    """
    existing = {c.name: c for c in stored_collections(store)}
    if collection.name in existing and not replace:
        if existing[collection.name].terms == collection.terms:
            return existing[collection.name]
        raise InvalidInput(f"collection {collection.name!r} already exists with other terms; choose another name")
    graphs = [collection]
    if not existing and collection.name != LIVER_CT and _has_cases(store):
        graphs.append(bundled())
    body = " .\n".join(f"{s.n3()} {p.n3()} {o.n3()}"
                       for c in graphs for s, p, o in collection_triples(_as_stored(c)))
    update = ("DELETE WHERE { GRAPH $g { $c sg:collectionTerm ?item . ?item ?p ?o } } ;\n"
              "DELETE WHERE { GRAPH $g { $c ?p ?o } } ;\n"
              f"INSERT DATA {{ GRAPH $g {{\n{body} }} }} ;\n" + _UNTAGGED)
    store.update(update, {"g": COLLECTIONS_GRAPH, "c": collection.iri, "a": ANNOTATIONS_GRAPH,
                          "liver": collection_iri(LIVER_CT) if len(graphs) > 1 else collection.iri})
    return _as_stored(collection)


def _as_stored(c: Collection) -> Collection:
    return c if c.stored else dataclasses.replace(c, stored=True)


def _has_cases(store: Store) -> bool:
    return store.ask("ASK { GRAPH $g { ?c a sg:Case } }", {"g": ANNOTATIONS_GRAPH})


def from_terms(store: Store, name: str, terms: Sequence[str], *, title: str = "", ontology: str | None = None,
               term_root: str | None = None, categories: Mapping[str, str] | None = None,
               modality: str | None = None, case_label: str = "Case") -> Collection:
    """A new collection of ``terms`` (in this order): labels and default categories from the ontology that holds
    them (``ontology``, else the first loaded one that holds every term); ``categories`` overrides some or all."""
    import ontology as ontology_pkg

    terms = [str(t) for t in terms]
    name_of_ontology = ontology or ontology_pkg.find_ontology(store, terms)
    hierarchy = ontology_pkg.hierarchy(store, name_of_ontology)
    given = dict(categories or {})
    rest = [t for t in terms if t not in given]
    root = term_root
    if rest:
        root, found = default_categories(hierarchy, rest, term_root)
        given.update(found)
    labels = tuple((hierarchy.label(t) if t in hierarchy else None) or _local_name(t) for t in terms)
    return Collection(validate_name(name), tuple(terms), labels, tuple(given[t] for t in terms), title=title,
                      ontology=name_of_ontology, term_root=root, modality=modality, case_label=case_label)


def for_cases(store: Store, name: str | None, terms: Sequence[str], **new) -> Collection:
    """The stored collection that cases described by ``terms`` go into, defined first when needed (ingest).

    ``name`` None: the store's only collection (the liver one, stored now, in a store without any). A ``name``
    not in the store is defined from ``terms`` (:func:`from_terms` with the options ``new``: ``title``,
    ``case_label``, ``term_root``, ``ontology``, ``modality``, ``categories``). Raises :class:`InvalidInput`, and
    nothing is written, when some of ``terms`` are not terms of the collection.
    """
    try:
        chosen = resolve(store, name)
    except NotFound:
        chosen = None
    if chosen is None:
        return define(store, from_terms(store, name, terms, **new))
    outside = [t for t in terms if t not in set(chosen.terms)]
    if outside:
        hint = ("give --collection NEW-NAME to start a new collection for them" if name is None else
                "choose the collection they belong to, or a new name")
        raise InvalidInput(f"{len(outside)} term(s) are not terms of collection {chosen.name!r}, e.g. {outside[0]}; "
                           f"{hint}; nothing was written")
    return chosen if chosen.stored else define(store, chosen)
