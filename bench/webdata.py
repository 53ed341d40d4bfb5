"""Data folders for the web benchmark (:mod:`bench.web`): the 72-case demo and a large likelihoods-only store.

* :func:`build_demo_folder` runs :func:`semgraph.cli.demo_cmd.build_demo` (the path of ``semgraph demo``: synthetic
  images, ingest, trained term models, baseline, captions).
* :func:`build_large_folder` writes ``n`` cases that have a predicted likelihood vector only (no image). It is a
  bulk benchmark setup that deliberately bypasses the one-case-per-write ingest path and kg's ``Store.load``: the
  triples of ~5k cases are built at once as pyoxigraph quads and written with pyoxigraph's ``bulk_extend`` straight
  into the store folder (``Store.load``, one transaction per call, managed ~20k quads/s and slowed down as the store
  grew: about 20 minutes for 100k cases). The
  triples have exactly the shape :func:`semgraph.graph.casegraph.case_triples` gives (checked against it on the first
  cases before anything is written). Vectors are the reader labels of :func:`semgraph.cohort.iter_labels` plus
  Gaussian noise, clipped to [0, 1]; metadata (age, sex, date, phase, segment) is drawn from a seeded generator.
  The RadLex liver subset and an ontology-only baseline (``similarity.write_baseline``, Kurtz measure) complete it.

Both add one user per role (:data:`USERS`) and write ``bench-ready.json`` into the folder, so a folder given with
``--data-root`` is built once and reused by later runs.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pyoxigraph as ox

import ontology
from kg.namespaces import ANNOTATIONS_GRAPH
from kg.sparql import to_oxigraph
from ontology.paper_terms import paper_terms
from semgraph.config import Config
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    annotation_iri,
    case_iri,
    case_triples,
    model_iri,
    patient_iri,
    study_iri,
    term_values_literal,
)

#: Benchmark users: name → (role, password).
USERS = {"bench-rad": ("radiologist", "bench-radiologist-pw"), "bench-cur": ("curator", "bench-curator-pw")}
READY = "bench-ready.json"
MODEL_VERSION = "bench-synthetic"
CHUNK = 5000

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDFS = "http://www.w3.org/2000/01/rdf-schema#"
_XSD = "http://www.w3.org/2001/XMLSchema#"
_PROV = "http://www.w3.org/ns/prov#"
_SG = "https://w3id.org/semgraph/vocab#"
PHASES = ("arterial", "portal venous", "delayed")
SEGMENTS = ("I", "II", "III", "IVa", "IVb", "V", "VI", "VII", "VIII")


def ready(data_dir: Path) -> dict | None:
    """The setup record of a folder built earlier, or None."""
    path = Path(data_dir) / READY
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _add_users(data_dir: Path) -> None:
    from semgraph.users import UserStore

    users = UserStore.in_data_dir(data_dir)
    for name, (role, password) in USERS.items():
        users.add(name, role, password, replace=True)


def _finish(data_dir: Path, record: dict) -> dict:
    _add_users(data_dir)
    (Path(data_dir) / READY).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def build_demo_folder(data_dir: Path, *, n: int = 72, seed: int = 0, size: int = 256) -> dict:
    """The demo data folder of ``semgraph demo`` (``n`` cases) with the benchmark users."""
    from semgraph.cli.demo_cmd import build_demo

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with Config.load({"data_dir": str(data_dir)}).open_store() as store:
        build_demo(store, data_dir, n=n, seed=seed, size=size)
        cases = store.select("SELECT (COUNT(?c) AS ?n) WHERE { ?c a sg:Case }")[0]["n"]
        triples = store.count()
    return _finish(data_dir, {"kind": "demo", "cases": int(cases), "triples": triples,
                              "setup_s": round(time.perf_counter() - start, 1)})


# --------------------------------------------------------------------------------------------------- large store


class _Triples:
    """pyoxigraph triples of a likelihoods-only case, the same as :func:`case_triples` would give."""

    def __init__(self, terms: list[str]):
        n = ox.NamedNode
        self.iris, self.terms = list(terms), [n(t) for t in terms]
        self.tails = [urllib.parse.quote(t.rsplit("/", 1)[-1], safe="") for t in terms]
        self.type, self.label = n(_RDF + "type"), n(_RDFS + "label")
        self.Case, self.Study, self.Patient = n(_SG + "Case"), n(_SG + "Study"), n(_SG + "Patient")
        self.Annotation, self.TermLikelihood = n(_SG + "Annotation"), n(_SG + "TermLikelihood")
        self.study, self.patient, self.diagnosis = n(_SG + "study"), n(_SG + "patient"), n(_SG + "diagnosis")
        self.phase, self.segment, self.date = n(_SG + "contrastPhase"), n(_SG + "liverSegment"), n(_SG + "studyDate")
        self.age, self.sex = n(_SG + "age"), n(_SG + "sex")
        self.annotates, self.kind, self.likelihood = n(_SG + "annotates"), n(_SG + "annotationKind"), \
            n(_SG + "likelihood")
        self.term, self.value, self.term_values = n(_SG + "term"), n(_SG + "value"), n(_SG + "termValues")
        self.rdf_json = n(_RDF + "JSON")
        self.generated, self.attributed = n(_PROV + "generatedAtTime"), n(_PROV + "wasAttributedTo")
        self.xsd_date, self.xsd_int, self.xsd_double, self.xsd_dt = (
            n(_XSD + "date"), n(_XSD + "integer"), n(_XSD + "double"), n(_XSD + "dateTime"))
        self.model = n(str(model_iri(MODEL_VERSION)))

    def of(self, case: Case, values: np.ndarray, generated_at: dt.datetime) -> list[ox.Triple]:
        T, L = ox.Triple, ox.Literal
        c, s, p = (ox.NamedNode(str(case_iri(case.case_id))), ox.NamedNode(str(study_iri(case.study_id))),
                   ox.NamedNode(str(patient_iri(case.patient_id))))
        out = [T(c, self.type, self.Case), T(c, self.label, L(case.case_id)), T(c, self.study, s),
               T(s, self.type, self.Study), T(s, self.label, L(case.study_id)), T(s, self.patient, p),
               T(p, self.type, self.Patient), T(p, self.label, L(case.patient_id)),
               T(c, self.diagnosis, L(case.diagnosis)), T(c, self.phase, L(case.contrast_phase)),
               T(c, self.segment, L(case.liver_segment)),
               T(s, self.date, L(case.study_date.isoformat(), datatype=self.xsd_date)),
               T(s, self.age, L(str(case.age), datatype=self.xsd_int)), T(p, self.sex, L(case.sex))]
        a_iri = str(annotation_iri(case.case_id, "predicted"))
        a = ox.NamedNode(a_iri)
        out += [T(a, self.type, self.Annotation), T(a, self.annotates, c), T(a, self.kind, L("predicted")),
                T(a, self.generated, L(generated_at.isoformat(), datatype=self.xsd_dt)),
                T(a, self.attributed, self.model),
                T(a, self.term_values, L(str(term_values_literal(dict(zip(self.iris, values.tolist())))),
                                         datatype=self.rdf_json))]
        for term, tail, v in zip(self.terms, self.tails, values.tolist()):
            item = ox.NamedNode(f"{a_iri}/{tail}")
            out += [T(a, self.likelihood, item), T(item, self.type, self.TermLikelihood), T(item, self.term, term),
                    T(item, self.value, L(repr(float(v)), datatype=self.xsd_double))]
        return out


def _cases(n: int, seed: int, terms: list[str], noise: float):
    """(Case, likelihood vector) for ``n`` synthetic cases (labels from iter_labels, metadata drawn)."""
    from semgraph.cohort import iter_labels

    rng = np.random.default_rng([seed, 2024])
    first = dt.date(2012, 1, 1)
    patient_meta: dict[str, tuple[int, str, dt.date]] = {}
    for labels in iter_labels(n, seed=seed):
        if labels.patient_id not in patient_meta:
            patient_meta[labels.patient_id] = (int(rng.integers(20, 90)), "F" if rng.random() < 0.5 else "M",
                                               first + dt.timedelta(days=int(rng.integers(0, 3650))))
        age, sex, date = patient_meta[labels.patient_id]
        vector = np.clip(labels.reader_labels + rng.normal(0.0, noise, len(terms)), 0.0, 1.0).round(3)
        case = Case(labels.case_id, labels.patient_id, labels.case_id + "-study", labels.diagnosis, date, age, sex,
                    PHASES[int(rng.integers(3))], SEGMENTS[int(rng.integers(len(SEGMENTS)))])
        yield case, vector


def _check_shape(builder: _Triples, case: Case, vector: np.ndarray, when: dt.datetime, terms: list[str]) -> None:
    """Fail unless the fast triples equal case_triples() for this case."""
    annotation = Annotation("predicted", dict(zip(terms, vector.tolist())), attributed_to=model_iri(MODEL_VERSION),
                            generated_at=when)
    reference = {ox.Triple(to_oxigraph(s), to_oxigraph(p), to_oxigraph(o))
                 for s, p, o in case_triples(case, [annotation])}
    fast = set(builder.of(case, vector, when))
    if fast != reference:
        raise AssertionError(f"bulk triples of {case.case_id} differ from case_triples(): "
                             f"missing {sorted(map(str, reference - fast))[:3]}, extra {sorted(map(str, fast - reference))[:3]}")


def build_large_folder(data_dir: Path, *, n: int = 100_000, seed: int = 0, noise: float = 0.15,
                       progress=print) -> dict:
    """A data folder with ``n`` likelihoods-only cases, radlex-liver and an ontology-only baseline."""
    from semgraph.retrieval import similarity

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    terms = [t.iri for t in paper_terms()]
    builder = _Triples(terms)
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    start = time.perf_counter()
    timings: dict[str, float] = {}
    with Config.load({"data_dir": str(data_dir)}).open_store() as store:
        t = time.perf_counter()
        ontology.load(store, ontology.BUNDLED_RADLEX)
        D = ontology.dissimilarity_matrix(store, terms, measure="kurtz")
        similarity.write_baseline(store, terms, D, kind="ontology", provenance={"measure": "kurtz"})
        timings["ontology_and_baseline_s"] = time.perf_counter() - t
        location = store.location
    # The cases: pyoxigraph's bulk loader on the store folder (kg's Store.load runs one transaction per call,
    # about 20k quads/s and slowing as the store grows: ~20 min for 100k cases; bulk_extend: ~3x faster).
    graph = ox.NamedNode(str(ANNOTATIONS_GRAPH))
    raw = ox.Store(str(location))
    chunk: list[ox.Quad] = []
    checked = 0
    build_s = load_s = 0.0
    t = time.perf_counter()
    for loaded, (case, vector) in enumerate(_cases(n, seed, terms, noise), start=1):
        if checked < 20:
            _check_shape(builder, case, vector, when, terms)
            checked += 1
        chunk += [ox.Quad(x.subject, x.predicate, x.object, graph) for x in builder.of(case, vector, when)]
        if loaded % CHUNK == 0 or loaded == n:
            build_s += time.perf_counter() - t
            t = time.perf_counter()
            raw.bulk_extend(chunk)
            load_s += time.perf_counter() - t
            chunk = []
            if progress and (loaded % 20_000 == 0 or loaded == n):
                progress(f"  {loaded:,} cases written ({time.perf_counter() - start:.0f} s)")
            t = time.perf_counter()
    raw.flush()
    raw.optimize()
    del raw
    timings["labels_and_triples_s"] = build_s
    timings["store_load_s"] = load_s
    with Config.load({"data_dir": str(data_dir)}).open_store() as store:
        triples = store.count()
    return _finish(data_dir, {"kind": "bulk", "cases": n, "triples": triples,
                              "setup_s": round(time.perf_counter() - start, 1),
                              **{k: round(v, 1) for k, v in timings.items()},
                              "note": "bulk setup: pyoxigraph bulk_extend of ~5k cases per call on the store folder, "
                                      "bypassing kg's Store.load and the one-case-per-write ingest path; predicted "
                                      "likelihoods only, no images"})
