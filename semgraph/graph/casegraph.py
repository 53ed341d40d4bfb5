"""Cases, patients, studies and term annotations as RDF in the ``annotations`` named graph.

One case is written in one atomic store write (:func:`write_case`): the case, its study and patient, and its
annotations; the ingests write many new cases in one (:func:`write_cases`, N-Triples text loaded without SPARQL). IRIs are minted from the source ids (percent-encoded), so ingesting the same export twice gives the
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
    id:annotation/C1/predicted sg:termValues "{\"http://radlex.org/RID/RID5715\":0.83, ...}"^^rdf:JSON

The likelihood nodes are the data curators query and edit. ``sg:termValues`` is a compact copy of one annotation's
nodes (``{term IRI: value}`` as JSON, exact float64 values), written in the same transaction by every writer here,
so that bulk reads (:func:`read_likelihoods`) take one row per annotation instead of one per value. Before using the
copies, a read compares the count, sum and sum of squares of all ``sg:value`` literals with those of all copies
(:func:`value_totals`); when they differ (an edit of the nodes by SPARQL, a store written by an older version) it
reads the nodes instead and logs how to rebuild the copies (:func:`rebuild_term_values`, ``semgraph check
--repair``). ``semgraph check`` compares every copy with its nodes exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, PROV, RDF, RDFS, XSD

from kg import Store
from kg import ntriples as nt
from kg.namespaces import ANNOTATIONS_GRAPH, ID, SG
from kg.sparql import delete_data, insert_data, joined_patterns
from semgraph.errors import InvalidInput

#: Annotation kinds: a human reader's terms, a term model's likelihoods, a synthetic case's generating terms, and
#: cross-validated likelihoods (predicted by models that never saw the case's patient, for honest evaluation).
ANNOTATION_KINDS = ("reader", "predicted", "truth", "crossval")

_log = logging.getLogger(__name__)


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
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __post_init__(self):
        if self.kind not in ANNOTATION_KINDS:
            raise InvalidInput(f"unknown annotation kind {self.kind!r}; use one of {', '.join(ANNOTATION_KINDS)}")
        for term, value in self.values.items():
            if not isinstance(value, (int, float, np.floating)) or math.isnan(value) or not 0.0 <= value <= 1.0:
                raise InvalidInput(f"likelihood of {term} must be a number in [0, 1], got {value!r}")


_NT = {name: nt.iri(str(term)) for name, term in {
    "type": RDF.type, "label": RDFS.label, "Case": SG.Case, "Study": SG.Study, "Patient": SG.Patient,
    "inCollection": SG.inCollection, "study": SG.study, "patient": SG.patient, "Annotation": SG.Annotation,
    "annotates": SG.annotates, "annotationKind": SG.annotationKind, "generatedAtTime": PROV.generatedAtTime,
    "wasAttributedTo": PROV.wasAttributedTo, "termValues": SG.termValues, "likelihood": SG.likelihood,
    "TermLikelihood": SG.TermLikelihood, "term": SG.term, "value": SG.value, "diagnosis": SG.diagnosis,
    "contrastPhase": SG.contrastPhase, "liverSegment": SG.liverSegment, "imageFile": SG.imageFile,
    "maskFile": SG.maskFile, "studyDate": SG.studyDate, "age": SG.age, "sex": SG.sex}.items()}


def case_ntriples(case: Case, annotations: Iterable[Annotation] = (), *, collection: URIRef | None = None) -> str:
    """The triples describing ``case`` and its annotations (and its ``sg:inCollection``, when given) as N-Triples
    text, one statement per line: the one definition of a case's shape (:func:`case_triples` parses it)."""
    t = _NT
    c, s, p = (nt.iri(str(iri)) for iri in (case_iri(case.case_id), study_iri(case.study_id),
                                            patient_iri(case.patient_id)))
    lines = [f"{c} {t['type']} {t['Case']} ."]
    if collection is not None:
        lines.append(f"{c} {t['inCollection']} {nt.iri(str(collection))} .")
    lines += [f"{c} {t['label']} {nt.literal(case.case_id)} .", f"{c} {t['study']} {s} .",
              f"{s} {t['type']} {t['Study']} .", f"{s} {t['label']} {nt.literal(case.study_id)} .",
              f"{s} {t['patient']} {p} .", f"{p} {t['type']} {t['Patient']} .",
              f"{p} {t['label']} {nt.literal(case.patient_id)} ."]
    optional = [
        (c, "diagnosis", case.diagnosis, None), (c, "contrastPhase", case.contrast_phase, None),
        (c, "liverSegment", case.liver_segment, None), (c, "imageFile", case.image_file, None),
        (c, "maskFile", case.mask_file, None),
        (s, "studyDate", None if case.study_date is None else case.study_date.isoformat(), XSD.date),
        (s, "age", None if case.age is None else str(int(case.age)), XSD.integer), (p, "sex", case.sex, None),
    ]
    for subject, predicate, value, datatype in optional:
        if value is not None:
            lines.append(f"{subject} {t[predicate]} {nt.literal(value, None if datatype is None else str(datatype))} .")
    for annotation in annotations:
        a_iri = str(annotation_iri(case.case_id, annotation.kind))
        a = nt.iri(a_iri)
        lines += [f"{a} {t['type']} {t['Annotation']} .", f"{a} {t['annotates']} {c} .",
                  f"{a} {t['annotationKind']} {nt.literal(annotation.kind)} .",
                  f"{a} {t['generatedAtTime']} {nt.literal(annotation.generated_at.isoformat(), str(XSD.dateTime))} ."]
        if annotation.attributed_to is not None:
            lines.append(f"{a} {t['wasAttributedTo']} {nt.iri(str(annotation.attributed_to))} .")
        lines.append(f"{a} {t['termValues']} {nt.literal(_term_values_json(annotation.values), str(RDF.JSON))} .")
        for term, value in annotation.values.items():
            item = nt.iri(f"{a_iri}/{urllib.parse.quote(term.rsplit('/', 1)[-1], safe='')}")
            lines += [f"{a} {t['likelihood']} {item} .", f"{item} {t['type']} {t['TermLikelihood']} .",
                      f"{item} {t['term']} {nt.iri(term)} .",
                      f"{item} {t['value']} {nt.literal(repr(float(value)), _XSD_DOUBLE)} ."]
    return "\n".join(lines) + "\n"


_XSD_DOUBLE = str(XSD.double)


def case_triples(case: Case, annotations: Iterable[Annotation] = (), *, collection: URIRef | None = None) -> Graph:
    """:func:`case_ntriples` as an rdflib graph."""
    return Graph().parse(data=case_ntriples(case, annotations, collection=collection), format="nt")


def term_values_literal(values: Mapping[str, float]) -> Literal:
    """An annotation's ``sg:termValues``: ``{term IRI: value}`` as compact JSON (``rdf:JSON``); each value is the
    shortest text that reads back as the same float64."""
    return Literal(_term_values_json(values), datatype=RDF.JSON)


def _term_values_json(values: Mapping[str, float]) -> str:
    return json.dumps({str(t): float(v) for t, v in values.items()}, separators=(",", ":"))


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
    insert = "INSERT DATA { GRAPH $g {\n" + case_ntriples(case, annotations, collection=collection) + "} }"
    if replace:
        update_annotations(store, _DELETE_CASE + " ;\n" + insert, {"case": case_iri(case.case_id)})
    else:
        update_annotations(store, insert)


def write_cases(store: Store, cases: Sequence[str]) -> None:
    """Add new cases, each given as its :func:`case_ntriples` text, in one store transaction (all or none), and
    give the annotations graph a new version stamp.

    The bulk path of the ingests: the text goes to :meth:`kg.Store.load` (no SPARQL to parse), several times
    faster than an update. The new stamp is loaded with the cases and the stamps seen before are removed by a
    second, small update: a reader between the two sees two stamps, which match no copy made earlier, and a crash
    between them leaves two stamps, which the next write of the graph replaces. Existing cases are not replaced
    (their triples would be merged): callers skip the ids the store holds.
    """
    if not cases:
        return
    before = annotation_stamps(store)
    graph = nt.iri(str(ANNOTATIONS_GRAPH))
    stamp = f"{graph} {nt.iri(str(OWL.versionInfo))} {nt.literal(uuid.uuid4().hex)} .\n"
    store.load(("".join(cases) + stamp).encode(), str(ANNOTATIONS_GRAPH), format="ntriples")
    if before:
        store.update(delete_data((ANNOTATIONS_GRAPH, OWL.versionInfo, Literal(old)) for old in before),
                     {"g": ANNOTATIONS_GRAPH})


_DELETE_ANNOTATION = """
DELETE WHERE { GRAPH $g { $a sg:likelihood ?l . ?l ?lp ?lo } } ;
DELETE WHERE { GRAPH $g { $a ?p ?o } } ;
"""


def replace_annotation(store: Store, case_id: str, annotation: Annotation) -> None:
    """Replace the ``annotation.kind`` annotation of a case (its old triples go, the new ones come) in one update."""
    iri = annotation_iri(case_id, annotation.kind)
    triples = case_triples(Case(case_id=case_id, patient_id="_", study_id="_"), [annotation])
    own = (t for t in triples if str(t[0]).startswith(str(iri)))  # the annotation's triples, not the case's
    update_annotations(store, _DELETE_ANNOTATION + insert_data(own), {"a": iri})


def case_exists(store: Store, case_id: str) -> bool:
    return store.ask("ASK { GRAPH $g { $c a sg:Case } }", {"g": ANNOTATIONS_GRAPH, "c": case_iri(case_id)})


_CASES = "SELECT ?id ?patient ?study WHERE { GRAPH $g { " + joined_patterns(
    "?c sg:study ?s", "?c rdfs:label ?id", "?s rdfs:label ?study", "?s sg:patient ?p", "?p rdfs:label ?patient") + " } }"
#: The optional fields of :class:`Case`: field → (the patterns from its value ``?v`` to the case ``?c``, parser).
_CASE_FIELDS = {
    "diagnosis": (("?c sg:diagnosis ?v",), str), "contrast_phase": (("?c sg:contrastPhase ?v",), str),
    "liver_segment": (("?c sg:liverSegment ?v",), str), "image_file": (("?c sg:imageFile ?v",), str),
    "mask_file": (("?c sg:maskFile ?v",), str),
    "study_date": (("?s sg:studyDate ?v", "?c sg:study ?s"), lambda text: dt.date.fromisoformat(text[:10])),
    "age": (("?s sg:age ?v", "?c sg:study ?s"), int),
    "sex": (("?p sg:sex ?v", "?s sg:patient ?p", "?c sg:study ?s"), str),
}  # each path starts from its field, so that a field no case has costs nothing
#: One optional field: a query per field (a scan of what is there) is several times faster than OPTIONAL patterns
#: on 100,000 cases that mostly lack the field.
_CASE_FIELD = "SELECT ?id ?v WHERE { GRAPH $g { %s } }"


#: The clause that keeps the cases of one collection (``$collection`` bound), or nothing (every case).
_MEMBER = "?c sg:inCollection $collection ."


def _in(collection: str | URIRef | None) -> tuple[str, dict]:
    """The membership clause and its binding for ``collection`` (None: every case of the store)."""
    if collection is None:
        return "", {}
    return _MEMBER, {"collection": URIRef(collection)}


def read_cases(store: Store, *, collection: str | URIRef | None = None) -> list[Case]:
    """Every case in the store (only those ``sg:inCollection`` ``collection`` when given), sorted by id.

    A case is what has a study (``sg:study``; ``semgraph check`` reports one that is not typed ``sg:Case``). The
    queries read every case and each optional field of the store, and the collection's members are kept afterwards
    (:func:`collection_members`): one membership join per query would cost more than reading the other
    collections' cases."""
    g = {"g": ANNOTATIONS_GRAPH}
    fields: dict[str, dict] = {case_id: {"case_id": case_id, "patient_id": patient, "study_id": study}
                               for case_id, patient, study in store.select_values(_CASES, g)}
    if collection is not None:
        members = collection_members(store, collection)
        fields = {case_id: values for case_id, values in fields.items() if case_id in members}
    for name, (path, parse) in _CASE_FIELDS.items():
        for case_id, value in store.select_values(_CASE_FIELD % joined_patterns(*path, "?c rdfs:label ?id"), g):
            if case_id in fields:
                fields[case_id][name] = parse(value)
    return [Case(**fields[case_id]) for case_id in sorted(fields)]


def collection_members(store: Store, collection: str | URIRef) -> set[str]:
    """The ids of the cases ``sg:inCollection`` ``collection``."""
    return {row[0] for row in store.select_values(_MEMBERS, {"g": ANNOTATIONS_GRAPH, "collection": URIRef(collection)})}


_LIKELIHOODS = """
SELECT ?id ?kind ?term ?value WHERE { GRAPH $g {
  ?a sg:annotates ?c ; sg:annotationKind ?kind ; sg:likelihood ?l . ?c rdfs:label ?id .
  ?l sg:term ?term ; sg:value ?value . %s
} }
"""
#: Every annotation's compact copy, with its case and kind (all collections: the totals are over the whole graph).
_TERM_VALUES = "SELECT ?id ?kind ?values WHERE { GRAPH $g { " + joined_patterns(
    "?a sg:termValues ?values", "?a sg:annotates ?c", "?a sg:annotationKind ?kind", "?c rdfs:label ?id") + " } }"
_MEMBERS = ("SELECT ?id WHERE { GRAPH $g { " + joined_patterns("?c sg:inCollection $collection", "?c rdfs:label ?id")
            + " } }")
_VALUE_TOTALS = """
SELECT (COUNT(?v) AS ?n) (SUM(?v) AS ?sum) (SUM(?v * ?v) AS ?squares) WHERE { GRAPH $g { ?l sg:value ?v } }
"""


def value_totals(store: Store) -> tuple[int, float, float]:
    """Count, sum and sum of squares of every ``sg:value`` in the annotations graph (one aggregate query)."""
    n, total, squares = store.select_values(_VALUE_TOTALS, {"g": ANNOTATIONS_GRAPH})[0]
    return int(n), float(total or 0.0), float(squares or 0.0)


def _totals_agree(a: tuple[int, float, float], b: tuple[int, float, float]) -> bool:
    """Same count, and sums equal up to float rounding (the two sides add the same values in another order)."""
    return a[0] == b[0] and all(abs(x - y) <= 1e-9 * max(1.0, a[0]) for x, y in zip(a[1:], b[1:]))


def _annotations_from_copies(store: Store) -> dict[tuple[str, str], dict[str, float]] | None:
    """``{(case id, kind): {term: value}}`` from the ``sg:termValues`` copies, or None when the copies do not add up
    to the graph's ``sg:value`` literals (:func:`value_totals`)."""
    expected = value_totals(store)
    rows = store.select_values(_TERM_VALUES, {"g": ANNOTATIONS_GRAPH})
    parsed = json.loads("[" + ",".join(text for _, _, text in rows) + "]")  # one parse: ~2x faster than one per row
    annotations = {(case_id, kind): values for (case_id, kind, _), values in zip(rows, parsed) if values}
    flat = np.fromiter((v for values in parsed for v in values.values()), dtype=np.float64)
    if not _totals_agree(expected, (len(flat), float(flat.sum()), float(flat @ flat))):
        _log.warning("the compact likelihood copies (sg:termValues) do not match the %d sg:value literals of the "
                     "annotations graph (edited by SPARQL, or written by an older version); reading the values one "
                     "by one, which is slow on large stores. Run `semgraph check --repair` to rebuild the copies.",
                     expected[0])
        return None
    return annotations


def _annotations_from_nodes(store: Store, collection: str | URIRef | None) -> dict[tuple[str, str], dict[str, float]]:
    """``{(case id, kind): {term: value}}`` read from the likelihood nodes (one row per value)."""
    clause, bound = _in(collection)
    annotations: dict[tuple[str, str], dict[str, float]] = {}
    for case_id, kind, term, value in store.select_values(_LIKELIHOODS % clause, {"g": ANNOTATIONS_GRAPH, **bound}):
        annotations.setdefault((case_id, kind), {})[term] = float(value)
    return annotations


def read_annotations(store: Store, *, collection: str | URIRef | None = None
                     ) -> dict[tuple[str, str], dict[str, float]]:
    """Every annotation's values, ``{(case id, kind): {term IRI: value}}`` (only cases ``sg:inCollection``
    ``collection`` when given): from the compact copies when they agree with the graph, else from the nodes."""
    annotations = _annotations_from_copies(store)
    if annotations is None:
        return _annotations_from_nodes(store, collection)
    if collection is not None:
        members = collection_members(store, collection)
        annotations = {key: values for key, values in annotations.items() if key[0] in members}
    return annotations


_CASES_WITH = "SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { GRAPH $g { ?a sg:annotates ?c ; sg:annotationKind $kind . %s } }"


def count_annotated(store: Store, kind: str, *, collection: str | URIRef | None = None) -> int:
    """How many cases (of ``collection`` when given) have an annotation of ``kind`` (one aggregate query)."""
    clause, bound = _in(collection)
    return int(store.select_values(_CASES_WITH % clause, {"g": ANNOTATIONS_GRAPH, "kind": kind, **bound})[0][0])


def read_likelihoods(store: Store, terms: Sequence[str], *, kinds: Sequence[str] = ("predicted", "reader"),
                     collection: str | URIRef | None = None) -> tuple[list[str], np.ndarray]:
    """Case ids and their k-term likelihood matrix (N×k), in id order.

    For each case the first of ``kinds`` it has is used; terms absent from that annotation are 0. Cases with none
    of the kinds are left out, and so are cases outside ``collection`` when it is given.
    """
    index = {t: i for i, t in enumerate(terms)}
    rank = {k: i for i, k in enumerate(kinds)}
    best: dict[str, tuple[int, dict[str, float]]] = {}
    for (case_id, kind), values in read_annotations(store, collection=collection).items():
        if kind in rank and (case_id not in best or rank[kind] < best[case_id][0]):
            best[case_id] = (rank[kind], values)
    ids = sorted(best)
    matrix = np.zeros((len(ids), len(terms)))
    for row, case_id in enumerate(ids):
        for term, value in best[case_id][1].items():
            if term in index:
                matrix[row, index[term]] = value
    return ids, matrix


_ANNOTATION_IRIS = """
SELECT DISTINCT ?a WHERE { GRAPH $g { { ?a sg:likelihood ?l } UNION { ?a sg:termValues ?v } } }"""
_DROP_COPIES = """
DELETE { GRAPH $g { ?a sg:termValues ?old } } WHERE { GRAPH $g { VALUES ?a { %s } ?a sg:termValues ?old } } ;
"""


#: The copies of some annotations (``%s``: the IRIs of a ``VALUES ?a`` clause).
_COPIES = "SELECT ?a ?values WHERE { GRAPH $g { VALUES ?a { %s } ?a sg:termValues ?values } }"
#: Every annotation's likelihood nodes (``%s``: nothing, or a VALUES clause that keeps some annotations ``?a``).
_NODES = "SELECT ?a ?term ?value WHERE { GRAPH $g { %s ?a sg:likelihood ?l . ?l sg:term ?term ; sg:value ?value } }"


def annotation_batches(store: Store, batch: int = 2000) -> Iterator[list[str]]:
    """The subjects of likelihood nodes or ``sg:termValues`` copies in the annotations graph (read once, up front),
    ``batch`` at a time, serialised by rdflib for a SPARQL ``VALUES`` clause (``" ".join(...)``)."""
    # sorted here: Oxigraph's ORDER BY before the DISTINCT took 100 times as long (8 s for 5,000 annotations)
    iris = sorted(URIRef(row[0]).n3() for row in store.select_values(_ANNOTATION_IRIS, {"g": ANNOTATIONS_GRAPH}))
    for start in range(0, len(iris), batch):
        yield iris[start:start + batch]


def _nodes_of(store: Store, chunk: str) -> dict[str, dict[str, float]]:
    """annotation IRI → {term IRI: value} of the likelihood nodes of the annotations in ``chunk``."""
    values: dict[str, dict[str, float]] = {}
    for a, term, value in store.select_values(_NODES % f"VALUES ?a {{ {chunk} }}", {"g": ANNOTATIONS_GRAPH}):
        values.setdefault(a, {})[term] = float(value)
    return values


def stale_term_values(store: Store, *, batch: int = 2000,
                      batches: Iterable[list[str]] | None = None) -> list[tuple[str, str]]:
    """``(annotation IRI, what is wrong)`` for every annotation whose ``sg:termValues`` copy is missing, unreadable or
    differs from its likelihood nodes (reads every node, ``batch`` annotations at a time so that memory stays
    bounded: a full check, not for the search path). ``batches``: the annotations as :func:`annotation_batches`
    gives them, when the caller has read them already."""
    problems = []
    for iris in annotation_batches(store, batch) if batches is None else batches:
        chunk = " ".join(iris)
        nodes = _nodes_of(store, chunk)
        copies = dict(store.select_values(_COPIES % chunk, {"g": ANNOTATIONS_GRAPH}))
        for a in sorted(set(nodes) | set(copies)):
            if a not in copies:
                problems.append((a, "has likelihoods but no sg:termValues copy"))
                continue
            try:
                copy = {str(t): float(v) for t, v in json.loads(copies[a]).items()}
            except (ValueError, TypeError, AttributeError):
                problems.append((a, "has an sg:termValues copy that is not a JSON object of numbers"))
                continue
            if copy != nodes.get(a, {}):
                problems.append((a, "has an sg:termValues copy that differs from its likelihood nodes"))
    return sorted(problems)


_FILE_PATHS = "SELECT ?c ?p ?v WHERE { GRAPH $g { ?c ?p ?v VALUES ?p { sg:imageFile sg:maskFile } } }"


def relative_file_paths(store: Store, data_dir) -> int:
    """Rewrite every ``sg:imageFile`` / ``sg:maskFile`` that is an absolute path inside ``data_dir`` as a path
    relative to it (older stores recorded absolute paths, which the public endpoint would show), in one update;
    returns the number of values rewritten. Paths outside the data folder are left for ``semgraph check`` to report."""
    root = Path(data_dir).resolve()
    changes = []
    for c, p, v in store.select_values(_FILE_PATHS, {"g": ANNOTATIONS_GRAPH}):
        path = Path(v)
        if path.is_absolute() and path.resolve().is_relative_to(root):
            changes.append((URIRef(c), URIRef(p), v, path.resolve().relative_to(root).as_posix()))
    if changes:
        update_annotations(store, delete_data((c, p, Literal(old)) for c, p, old, _ in changes) + " ;\n"
                           + insert_data((c, p, Literal(new)) for c, p, _, new in changes))
    return len(changes)


def rebuild_term_values(store: Store, *, batch: int = 2000) -> int:
    """Rewrite every annotation's ``sg:termValues`` from its likelihood nodes, ``batch`` annotations per update
    (each update all-or-nothing); returns the number of annotations rewritten."""
    rewritten = 0
    for iris in annotation_batches(store, batch):
        chunk = " ".join(iris)
        copies = ((URIRef(a), SG.termValues, term_values_literal(v)) for a, v in _nodes_of(store, chunk).items())
        update_annotations(store, _DROP_COPIES % chunk + insert_data(copies))
        rewritten += len(iris)
    return rewritten
