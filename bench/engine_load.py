"""Benchmark: ``Engine.from_store`` on ratings-only stores, cold from the graph and warm from the snapshot.

The stores hold real LIDC-IDRI reader ratings (``shared/data/lidc-dev/readings.csv``, 1,290 readings of lung
nodules): each of eight rating columns (subtlety, internal structure, calcification, sphericity, margin,
lobulation, spiculation, texture) becomes one binary term per level ("margin 5", ...), 40 terms under a small
RDFS taxonomy with ``urn:`` IRIs (root → rating → level). Each reading is a case with one "reader" annotation
holding all 40 values (1 for the rated level, 0 for the others, as a reader CSV of 0/1 columns gives); malignancy
becomes the diagnosis (benign 1-2, indeterminate 3, malignant 4-5). Without the CSV (a checkout without
``shared/``) seeded random ratings of the same shape are used.

* 1,200 cases are written as the app writes them: one :func:`semgraph.graph.casegraph.write_case` per case.
* 100,000 cases (the readings repeated under new ids) are bulk-loaded: the same triples
  (:func:`semgraph.graph.casegraph.case_triples`' layout) written as N-Triples and loaded with pyoxigraph's bulk loader.

For each store the table gives, in one run: the first read path (one SPARQL join over the likelihood nodes
through ``Store.select``, rdflib terms per value; kept below as :func:`joined_read`) as the baseline, the read
before issue 20 (compact copies and case fields through nested-loop SPARQL joins, one matrix cell per value; kept
as :func:`former_read`), the current :func:`semgraph.graph.snapshot.read_from_graph`, and ``Engine.from_store`` cold
from the graph (``use_snapshot=False``) and warm from the snapshot, with the ratio of each to the baseline. The new
result is checked against the baseline's and the former read's (same cases, same float64 matrix).

    python -m bench.engine_load            # 1,200 and 100,000 cases (building the 100k store takes a few minutes)
    python -m bench.engine_load --quick    # 1,200 and 10,000 cases
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pyoxigraph as ox
from rdflib import Literal, URIRef
from rdflib.namespace import PROV, RDF, RDFS, XSD

import kg
import ontology
from kg.namespaces import ANNOTATIONS_GRAPH, SG
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    annotation_iri,
    case_iri,
    case_triples,
    patient_iri,
    study_iri,
    term_values_literal,
    update_annotations,
    write_case,
)
from semgraph.graph.collection import define, from_terms
from semgraph.graph.snapshot import read_from_graph, snapshot_path
from semgraph.retrieval.engine import Engine

READINGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "lidc-dev" / "readings.csv"
#: Rating column → number of levels (malignancy is the diagnosis, not a term).
RATINGS = {"subtlety": 5, "internalStructure": 4, "calcification": 6, "sphericity": 5, "margin": 5,
           "lobulation": 5, "spiculation": 5, "texture": 5}
ROOT = "urn:lidc:rating"
COLLECTION = "lung-nodules"


def term_iri(column: str, level: int) -> str:
    return f"urn:lidc:{column}-{level}"


TERMS = [term_iri(c, level) for c, n in RATINGS.items() for level in range(1, n + 1)]


def taxonomy_turtle() -> str:
    lines = ["@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
             "@prefix owl: <http://www.w3.org/2002/07/owl#> .",
             f'<{ROOT}> a owl:Class ; rdfs:label "nodule rating" .']
    for column, n in RATINGS.items():
        lines.append(f'<urn:lidc:{column}> a owl:Class ; rdfs:subClassOf <{ROOT}> ; rdfs:label "{column}" .')
        for level in range(1, n + 1):
            lines.append(f'<{term_iri(column, level)}> a owl:Class ; rdfs:subClassOf <urn:lidc:{column}> ; '
                         f'rdfs:label "{column} {level}" .')
    return "\n".join(lines) + "\n"


def readings() -> list[dict]:
    """The LIDC readings (annotation id, patient, scan, the ratings), or seeded random ones of the same shape."""
    if READINGS.is_file():
        with open(READINGS, newline="") as handle:
            return [{"id": r["annotation_id"], "patient": r["patient_id"], "scan": r["scan_id"],
                     "malignancy": int(r["malignancy"]), **{c: int(r[c]) for c in RATINGS}}
                    for r in csv.DictReader(handle)]
    rng = np.random.default_rng(0)
    return [{"id": str(i), "patient": f"P{i // 4}", "scan": str(i // 4), "malignancy": int(rng.integers(1, 6)),
             **{c: int(rng.integers(1, n + 1)) for c, n in RATINGS.items()}} for i in range(1290)]


def case_of(reading: dict, copy: int = 0) -> tuple[Case, Annotation]:
    suffix = f"-{copy}" if copy else ""
    m = reading["malignancy"]
    case = Case(case_id=f"LIDC-{reading['id']}{suffix}", patient_id=reading["patient"] + suffix,
                study_id=f"scan-{reading['scan']}{suffix}",
                diagnosis="benign" if m <= 2 else "indeterminate" if m == 3 else "malignant")
    values = dict.fromkeys(TERMS, 0.0)
    for column in RATINGS:
        values[term_iri(column, reading[column])] = 1.0
    return case, Annotation("reader", values)


def load_taxonomy(store, folder: Path) -> URIRef:
    """Load the rating taxonomy and define the collection of the 40 terms; returns the collection's case filter."""
    path = folder / "lidc-ratings.ttl"
    path.write_text(taxonomy_turtle())
    ontology.load(store, path, "lidc-ratings")
    return define(store, from_terms(store, COLLECTION, TERMS, ontology="lidc-ratings", term_root=ROOT)).case_filter


def stamp_annotations(store) -> None:
    """Give the annotations graph a version stamp, as every write through the app does."""
    update_annotations(store, "INSERT DATA { }")


def build_written(folder: Path, n: int) -> float:
    """A store of ``n`` cases, written one :func:`write_case` each; returns the seconds taken."""
    start = time.perf_counter()
    rows = readings()
    with kg.open_store(folder / "graph") as store:
        member = load_taxonomy(store, folder)
        for i in range(n):
            case, annotation = case_of(rows[i % len(rows)], i // len(rows))
            write_case(store, case, [annotation], collection=member)
    return time.perf_counter() - start


def case_lines(case: Case, annotation: Annotation, graph: str, member: URIRef) -> list[str]:
    """The N-Quads of :func:`semgraph.graph.casegraph.case_triples` for one ratings-only case, formatted directly (100k
    calls of ``case_triples`` would take minutes); :func:`build_bulk` checks them against ``case_triples``."""
    c, s, p = (f"<{iri}>" for iri in (case_iri(case.case_id), study_iri(case.study_id), patient_iri(case.patient_id)))
    a_iri = annotation_iri(case.case_id, annotation.kind)
    a = f"<{a_iri}>"
    lines = [f"{c} <{RDF.type}> <{SG.Case}>", f"{c} <{SG.inCollection}> <{member}>",
             f"{c} <{RDFS.label}> {Literal(case.case_id).n3()}",
             f"{c} <{SG.study}> {s}", f"{s} <{RDF.type}> <{SG.Study}>", f"{s} <{RDFS.label}> {Literal(case.study_id).n3()}",
             f"{s} <{SG.patient}> {p}", f"{p} <{RDF.type}> <{SG.Patient}>",
             f"{p} <{RDFS.label}> {Literal(case.patient_id).n3()}",
             f"{c} <{SG.diagnosis}> {Literal(case.diagnosis).n3()}",
             f"{a} <{RDF.type}> <{SG.Annotation}>", f"{a} <{SG.annotates}> {c}",
             f"{a} <{SG.annotationKind}> {Literal(annotation.kind).n3()}",
             f"{a} <{PROV.generatedAtTime}> {Literal(annotation.generated_at.isoformat(), datatype=XSD.dateTime).n3()}",
             f"{a} <{SG.termValues}> {term_values_literal(annotation.values).n3()}"]
    for term, value in annotation.values.items():
        item = f"<{a_iri}/{urllib.parse.quote(term.rsplit('/', 1)[-1], safe='')}>"
        lines += [f"{a} <{SG.likelihood}> {item}", f"{item} <{RDF.type}> <{SG.TermLikelihood}>",
                  f"{item} <{SG.term}> <{term}>", f'{item} <{SG.value}> "{float(value)!r}"^^<{XSD.double}>']
    return [f"{line} {graph} .\n" for line in lines]


def build_bulk(folder: Path, n: int) -> float:
    """A store of ``n`` cases in the layout of :func:`case_triples`, bulk-loaded from N-Quads."""
    start = time.perf_counter()
    rows = readings()
    g = f"<{ANNOTATIONS_GRAPH}>"
    with kg.open_store(folder / "graph") as store:
        member = load_taxonomy(store, folder)
        first = case_of(rows[0])
        expected = {f"{s.n3()} {p.n3()} {o.n3()} {g} .\n"
                    for s, p, o in case_triples(first[0], [first[1]], collection=member)}
        assert set(case_lines(*first, g, member)) == expected, "case_lines no longer writes the layout of case_triples"
        nq = folder / "cases.nq"
        with open(nq, "w", encoding="utf-8") as out:
            for i in range(n):
                out.writelines(case_lines(*case_of(rows[i % len(rows)], i // len(rows)), g, member))
        store._store.bulk_load(path=str(nq), format=ox.RdfFormat.N_QUADS)
        stamp_annotations(store)
    nq.unlink()
    return time.perf_counter() - start


_JOINED = """
SELECT ?id ?kind ?term ?value WHERE { GRAPH $g {
  ?a sg:annotates ?c ; sg:annotationKind ?kind ; sg:likelihood ?l . ?c rdfs:label ?id .
  ?l sg:term ?term ; sg:value ?value .
} }
"""


def joined_read(store) -> tuple[list[str], np.ndarray]:
    """The baseline: every likelihood through one SPARQL join, as rdflib terms; the reader kind only."""
    index = {t: i for i, t in enumerate(TERMS)}
    values: dict[str, dict[str, float]] = {}
    for r in store.select(_JOINED, {"g": ANNOTATIONS_GRAPH}):
        if str(r["kind"]) == "reader":
            values.setdefault(str(r["id"]), {})[str(r["term"])] = float(r["value"])
    ids = sorted(values)
    A = np.zeros((len(ids), len(TERMS)))
    for row, case_id in enumerate(ids):
        for term, v in values[case_id].items():
            A[row, index[term]] = v
    return ids, A


#: The read of :func:`read_from_graph` before issue 20, its queries verbatim: plain groups of patterns (evaluated by
#: Oxigraph as nested loops, one index seek per row and pattern) and one matrix cell per value.
_FORMER_TERM_VALUES = """
SELECT ?id ?kind ?values WHERE { GRAPH $g { ?a sg:termValues ?values ; sg:annotates ?c ; sg:annotationKind ?kind .
  ?c rdfs:label ?id } }
"""
_FORMER_CASES = """
SELECT ?id ?patient ?study WHERE { GRAPH $g {
  ?c sg:study ?s ; rdfs:label ?id . ?s rdfs:label ?study ; sg:patient ?p . ?p rdfs:label ?patient
} }"""
_FORMER_FIELDS = ("?c sg:diagnosis ?v", "?c sg:contrastPhase ?v", "?c sg:liverSegment ?v", "?c sg:imageFile ?v",
                  "?c sg:maskFile ?v", "?s sg:studyDate ?v . ?c sg:study ?s", "?s sg:age ?v . ?c sg:study ?s",
                  "?p sg:sex ?v . ?s sg:patient ?p . ?c sg:study ?s")


def former_read(store) -> tuple[list[str], np.ndarray]:
    """The read before issue 20 on these stores (consistent copies, the reader kind only): value totals, the copies
    row by row into dicts, the cases and each field's query; returns the case ids (of cases with a study) and the
    matrix."""
    from semgraph.graph.casegraph import value_totals

    g = {"g": ANNOTATIONS_GRAPH}
    value_totals(store)
    rows = store.select_values(_FORMER_TERM_VALUES, g)
    parsed = json.loads("[" + ",".join(text for _, _, text in rows) + "]")
    annotations = {(case_id, kind): values for (case_id, kind, _), values in zip(rows, parsed) if values}
    np.fromiter((v for values in parsed for v in values.values()), dtype=np.float64)  # the former totals check
    cases = {case_id: {"study": study} for case_id, _, study in store.select_values(_FORMER_CASES, g)}
    for path in _FORMER_FIELDS:
        for case_id, value in store.select_values(f"SELECT ?id ?v WHERE {{ GRAPH $g {{ {path} . ?c rdfs:label ?id }} }}", g):
            if case_id in cases:
                cases[case_id][path] = value
    index = {t: i for i, t in enumerate(TERMS)}
    ids = sorted(case_id for case_id, kind in annotations if kind == "reader" and case_id in cases)
    A = np.zeros((len(ids), len(TERMS)))
    for row, case_id in enumerate(ids):
        for term, v in annotations[(case_id, "reader")].items():
            A[row, index[term]] = v
    return ids, A


def timed(fn, repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(folder: Path, n: int, built: float, how: str, repeats: int) -> dict:
    with kg.open_store(folder / "graph") as store:
        baseline, (old_ids, old_A) = timed(lambda: joined_read(store), repeats)
        former, (former_ids, former_A) = timed(lambda: former_read(store), repeats)
        new, (cases, A) = timed(lambda: read_from_graph(store, TERMS, ("reader",)), repeats)
        assert [c.case_id for c in cases] == old_ids and np.array_equal(A, old_A), "the read paths disagree"
        assert former_ids == old_ids and np.array_equal(former_A, old_A), "the former read disagrees"
        kinds = ("reader",)
        cold, engine = timed(lambda: Engine.from_store(store, collection=COLLECTION, likelihood_kinds=kinds,
                                                       use_snapshot=False), repeats)
        Engine.from_store(store, collection=COLLECTION, likelihood_kinds=kinds)  # writes the snapshot
        warm, _ = timed(lambda: Engine.from_store(store, collection=COLLECTION, likelihood_kinds=kinds), repeats)
        assert len(engine.ids) == n
        snapshot = snapshot_path(store, engine.collection.case_filter)
        size = snapshot.stat().st_size if snapshot else 0
    return {"cases": n, "built_by": how, "build_s": built, "baseline_read_s": baseline, "former_read_s": former,
            "read_s": new, "engine_cold_s": cold, "engine_warm_s": warm, "former_ratio": former / baseline,
            "read_ratio": new / baseline,
            "cold_ratio": cold / baseline, "warm_ratio": warm / baseline, "snapshot_bytes": size}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,200 and 10,000 cases instead of 1,200 and 100,000")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per row; the best is kept")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "engine_load.json")
    args = parser.parse_args(argv)
    large = 10_000 if args.quick else 100_000
    rows = []
    with tempfile.TemporaryDirectory(prefix="engine-load-") as tmp:
        for n, build, how in ((1200, build_written, "write_case"), (large, build_bulk, "bulk load")):
            folder = Path(tmp) / str(n)
            folder.mkdir()
            print(f"building {n:,} cases ({how}) ...", file=sys.stderr, flush=True)
            rows.append(measure(folder, n, build(folder, n), how, 1 if n > 10_000 else args.repeats))
            shutil.rmtree(folder)
    header = ("cases", "built by", "baseline read s", "former read s", "ratio", "read s", "ratio", "engine cold s",
              "ratio", "engine warm s", "ratio")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['cases']:,} | {r['built_by']} | {r['baseline_read_s']:.2f} | {r['former_read_s']:.2f} | "
              f"{r['former_ratio']:.3f} | {r['read_s']:.2f} | "
              f"{r['read_ratio']:.3f} | {r['engine_cold_s']:.2f} | {r['cold_ratio']:.3f} | "
              f"{r['engine_warm_s']:.3f} | {r['warm_ratio']:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                                    "rows": rows}, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
