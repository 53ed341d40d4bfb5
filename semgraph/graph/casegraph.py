"""Cases, patients, studies and term annotations as RDF in the ``annotations`` named graph.

One case is written in one atomic store write (:func:`write_case`): the case, its study and patient, and its
annotations. IRIs are minted from the source ids (percent-encoded), so ingesting the same export twice gives the
same IRIs and a re-ingest replaces rather than duplicates (:func:`write_case` with ``replace=True``).

Layout (``id:`` = ``https://w3id.org/semgraph/id/``)::

    id:case/C1   a sg:Case ; rdfs:label "C1" ; sg:study id:study/S1 ; sg:diagnosis "cyst" ;
                 sg:inCollection id:collection/liver-ct ;                  # see semgraph.graph.collection
                 sg:liverSegment "VI" ; sg:contrastPhase "portal venous" ; sg:imageFile "..." ; sg:maskFile "..."
    id:study/S1  a sg:Study ; sg:patient id:patient/P1 ; sg:studyDate "2020-01-31"^^xsd:date ; sg:age 63
    id:patient/P1 a sg:Patient ; rdfs:label "P1" ; sg:sex "F"
    id:annotation/C1/predicted a sg:Annotation ; sg:annotates id:case/C1 ; sg:annotationKind "predicted" ;
                 prov:wasAttributedTo id:model/V ; prov:generatedAtTime "..."^^xsd:dateTime ;
                 sg:likelihood id:annotation/C1/predicted/RID5715
    id:annotation/C1/predicted/RID5715 a sg:TermLikelihood ; sg:term rid:RID5715 ; sg:value 0.83
"""

from __future__ import annotations

import datetime as dt
import math
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import PROV, RDF, RDFS, XSD

from kg import Store
from kg.namespaces import ANNOTATIONS_GRAPH, ID, SG
from semgraph.errors import InvalidInput

#: Annotation kinds: a human reader's terms, a term model's likelihoods, a synthetic case's generating terms, and
#: cross-validated likelihoods (predicted by models that never saw the case's patient, for honest evaluation).
ANNOTATION_KINDS = ("reader", "predicted", "truth", "crossval")


def _mint(kind: str, *parts: str) -> URIRef:
    if not parts or any(not p for p in parts):
        raise InvalidInput(f"an empty id cannot name a {kind}")
    return ID[kind + "/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)]


def case_iri(case_id: str) -> URIRef:
    """IRI of the case ``case_id``."""
    return _mint("case", case_id)


def patient_iri(patient_id: str) -> URIRef:
    return _mint("patient", patient_id)


def study_iri(study_id: str) -> URIRef:
    return _mint("study", study_id)


def model_iri(version: str) -> URIRef:
    """IRI of a term-model version (a ``prov:SoftwareAgent``)."""
    return _mint("model", version)


def user_iri(name: str) -> URIRef:
    """IRI of a user (a ``prov:Person``)."""
    return _mint("user", name)


def annotation_iri(case_id: str, kind: str) -> URIRef:
    return _mint("annotation", case_id, kind)


@dataclass(frozen=True)
class Case:
    """A case's identity and metadata. Optional fields are omitted from the graph when ``None``."""

    case_id: str
    patient_id: str
    study_id: str
    diagnosis: str | None = None
    study_date: dt.date | None = None
    age: int | None = None
    sex: str | None = None
    contrast_phase: str | None = None
    liver_segment: str | None = None
    image_file: str | None = None
    mask_file: str | None = None


@dataclass(frozen=True)
class Annotation:
    """Term likelihoods (term IRI → value in [0, 1]) of one kind, with who made them and when."""

    kind: str
    values: Mapping[str, float]
    attributed_to: URIRef | None = None
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def __post_init__(self):
        if self.kind not in ANNOTATION_KINDS:
            raise InvalidInput(f"unknown annotation kind {self.kind!r}; use one of {', '.join(ANNOTATION_KINDS)}")
        for term, value in self.values.items():
            if not isinstance(value, (int, float, np.floating)) or math.isnan(value) or not 0.0 <= value <= 1.0:
                raise InvalidInput(f"likelihood of {term} must be a number in [0, 1], got {value!r}")


def case_triples(case: Case, annotations: Iterable[Annotation] = (), *, collection: URIRef | None = None) -> Graph:
    """The triples describing ``case`` and its annotations (and its ``sg:inCollection``, when given)."""
    g = Graph()
    c, s, p = case_iri(case.case_id), study_iri(case.study_id), patient_iri(case.patient_id)
    g.add((c, RDF.type, SG.Case))
    if collection is not None:
        g.add((c, SG.inCollection, URIRef(collection)))
    g.add((c, RDFS.label, Literal(case.case_id)))
    g.add((c, SG.study, s))
    g.add((s, RDF.type, SG.Study))
    g.add((s, RDFS.label, Literal(case.study_id)))
    g.add((s, SG.patient, p))
    g.add((p, RDF.type, SG.Patient))
    g.add((p, RDFS.label, Literal(case.patient_id)))
    optional = [
        (c, SG.diagnosis, case.diagnosis, None), (c, SG.contrastPhase, case.contrast_phase, None),
        (c, SG.liverSegment, case.liver_segment, None), (c, SG.imageFile, case.image_file, None),
        (c, SG.maskFile, case.mask_file, None), (s, SG.studyDate, case.study_date, XSD.date),
        (s, SG.age, case.age, XSD.integer), (p, SG.sex, case.sex, None),
    ]
    for subject, predicate, value, datatype in optional:
        if value is not None:
            g.add((subject, predicate, Literal(value, datatype=datatype)))
    for annotation in annotations:
        a = annotation_iri(case.case_id, annotation.kind)
        g.add((a, RDF.type, SG.Annotation))
        g.add((a, SG.annotates, c))
        g.add((a, SG.annotationKind, Literal(annotation.kind)))
        g.add((a, PROV.generatedAtTime, Literal(annotation.generated_at.isoformat(), datatype=XSD.dateTime)))
        if annotation.attributed_to is not None:
            g.add((a, PROV.wasAttributedTo, annotation.attributed_to))
        for term, value in annotation.values.items():
            item = URIRef(f"{a}/{urllib.parse.quote(term.rsplit('/', 1)[-1], safe='')}")
            g.add((a, SG.likelihood, item))
            g.add((item, RDF.type, SG.TermLikelihood))
            g.add((item, SG.term, URIRef(term)))
            g.add((item, SG.value, Literal(float(value), datatype=XSD.double)))
    return g


_STAMP_UPDATE = """
DELETE WHERE { GRAPH $g { $g owl:versionInfo ?stamp } } ;
INSERT DATA { GRAPH $g { $g owl:versionInfo $stamp } }"""


def update_annotations(store: Store, update: str, bindings: Mapping[str, object] | None = None) -> None:
    """Run ``update`` (``$g`` is bound to the annotations graph) and give that graph a new version stamp, in one
    request: every write of cases, likelihoods or captions goes through here, so that copies derived from the graph
    (:mod:`semgraph.graph.snapshot`, the text-search corpus) can tell that they are stale.

    The stamp is ``owl:versionInfo`` of the graph itself, a random text (:func:`annotation_stamps` reads it).
    """
    store.update(update + " ;" + _STAMP_UPDATE,
                 {**(bindings or {}), "g": ANNOTATIONS_GRAPH, "stamp": Literal(uuid.uuid4().hex)})


def annotation_stamps(store: Store) -> list[str]:
    """The annotations graph's version stamp(s), sorted (normally one; none before the first write)."""
    rows = store.select("SELECT ?stamp WHERE { GRAPH $g { $g owl:versionInfo ?stamp } } ORDER BY ?stamp",
                        {"g": ANNOTATIONS_GRAPH})
    return [str(r["stamp"]) for r in rows]


_DELETE_CASE = """
DELETE WHERE { GRAPH $g { $case ?p ?o } } ;
DELETE WHERE { GRAPH $g { ?a sg:annotates $case ; sg:likelihood ?l . ?l ?lp ?lo } } ;
DELETE WHERE { GRAPH $g { ?a sg:annotates $case ; ?ap ?ao } }
"""


def write_case(store: Store, case: Case, annotations: Iterable[Annotation] = (), *, replace: bool = False,
               collection: URIRef | None = None) -> None:
    """Write a case with its annotations in one transaction; with ``replace``, its old description goes first.

    ``collection`` is the IRI of the collection the case belongs to (:attr:`semgraph.graph.collection.Collection.case_filter`;
    None: none recorded, as in a store without collections). The study and patient triples are shared by all cases
    of a study; they are re-asserted, never deleted.
    """
    triples = case_triples(case, annotations, collection=collection)
    body = " .\n".join(f"{s.n3()} {p.n3()} {o.n3()}" for s, p, o in triples)
    insert = "INSERT DATA { GRAPH $g {\n" + body + " } }"
    if replace:
        update_annotations(store, _DELETE_CASE + " ;\n" + insert, {"case": case_iri(case.case_id)})
    else:
        update_annotations(store, insert)


_REPLACE_ANNOTATION = """
DELETE WHERE { GRAPH $g { $a sg:likelihood ?l . ?l ?lp ?lo } } ;
DELETE WHERE { GRAPH $g { $a ?p ?o } } ;
INSERT DATA { GRAPH $g {
%s } }"""


def replace_annotation(store: Store, case_id: str, annotation: Annotation) -> None:
    """Replace the ``annotation.kind`` annotation of a case (its old triples go, the new ones come) in one update."""
    iri = annotation_iri(case_id, annotation.kind)
    triples = case_triples(Case(case_id=case_id, patient_id="_", study_id="_"), [annotation])
    body = " .\n".join(f"{s.n3()} {p.n3()} {o.n3()}" for s, p, o in triples if str(s).startswith(str(iri)))
    update_annotations(store, _REPLACE_ANNOTATION % body, {"a": iri})


def case_exists(store: Store, case_id: str) -> bool:
    return store.ask("ASK { GRAPH $g { $c a sg:Case } }", {"g": ANNOTATIONS_GRAPH, "c": case_iri(case_id)})


_CASES = """
SELECT ?id ?patient ?study ?diagnosis ?date ?age ?sex ?phase ?segment ?image ?mask WHERE { GRAPH $g {
  ?c a sg:Case ; rdfs:label ?id ; sg:study ?s . %s ?s rdfs:label ?study ; sg:patient ?p . ?p rdfs:label ?patient .
  OPTIONAL { ?c sg:diagnosis ?diagnosis } OPTIONAL { ?s sg:studyDate ?date } OPTIONAL { ?s sg:age ?age }
  OPTIONAL { ?p sg:sex ?sex } OPTIONAL { ?c sg:contrastPhase ?phase } OPTIONAL { ?c sg:liverSegment ?segment }
  OPTIONAL { ?c sg:imageFile ?image } OPTIONAL { ?c sg:maskFile ?mask }
} } ORDER BY ?id
"""


#: The clause that keeps the cases of one collection (``$collection`` bound), or nothing (every case).
_MEMBER = "?c sg:inCollection $collection ."


def _in(collection: str | URIRef | None) -> tuple[str, dict]:
    """The membership clause and its binding for ``collection`` (None: every case of the store)."""
    if collection is None:
        return "", {}
    return _MEMBER, {"collection": URIRef(collection)}


def read_cases(store: Store, *, collection: str | URIRef | None = None) -> list[Case]:
    """Every case in the store (only those ``sg:inCollection`` ``collection`` when given), sorted by id."""
    clause, bound = _in(collection)
    return [Case(case_id=case_id, patient_id=patient, study_id=study, diagnosis=diagnosis,
                 study_date=dt.date.fromisoformat(date[:10]) if date else None,
                 age=int(age) if age else None, sex=sex, contrast_phase=phase, liver_segment=segment,
                 image_file=image, mask_file=mask)
            for case_id, patient, study, diagnosis, date, age, sex, phase, segment, image, mask
            in store.select_values(_CASES % clause, {"g": ANNOTATIONS_GRAPH, **bound})]


_LIKELIHOODS = """
SELECT ?id ?kind ?term ?value WHERE { GRAPH $g {
  ?a sg:annotates ?c ; sg:annotationKind ?kind ; sg:likelihood ?l . ?c rdfs:label ?id .
  ?l sg:term ?term ; sg:value ?value . %s
} }
"""


def read_likelihoods(store: Store, terms: Sequence[str], *, kinds: Sequence[str] = ("predicted", "reader"),
                     collection: str | URIRef | None = None) -> tuple[list[str], np.ndarray]:
    """Case ids and their k-term likelihood matrix (N×k), in id order.

    For each case the first of ``kinds`` it has is used; terms absent from that annotation are 0. Cases with none
    of the kinds are left out, and so are cases outside ``collection`` when it is given.
    """
    clause, bound = _in(collection)
    index = {t: i for i, t in enumerate(terms)}
    rank = {k: i for i, k in enumerate(kinds)}
    best: dict[str, tuple[int, dict[str, float]]] = {}
    per_kind: dict[tuple[str, str], dict[str, float]] = {}
    for case_id, kind, term, value in store.select_values(_LIKELIHOODS % clause, {"g": ANNOTATIONS_GRAPH, **bound}):
        if kind in rank:
            per_kind.setdefault((case_id, kind), {})[term] = float(value)
    for (case_id, kind), values in per_kind.items():
        if case_id not in best or rank[kind] < best[case_id][0]:
            best[case_id] = (rank[kind], values)
    ids = sorted(best)
    matrix = np.zeros((len(ids), len(terms)))
    for row, case_id in enumerate(ids):
        for term, value in best[case_id][1].items():
            if term in index:
                matrix[row, index[term]] = value
    return ids, matrix
