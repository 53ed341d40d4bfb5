"""The engine snapshot beside an embedded store: the same engine as the graph gives, and never a stale one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from rdflib import URIRef

import kg
import ontology
from kg.namespaces import ANNOTATIONS_GRAPH
from ontology.paper_terms import paper_terms
from semgraph.exchange.training import store_crossval
from semgraph.graph.casegraph import Annotation, Case, annotation_iri, write_case
from semgraph.graph.snapshot import snapshot_path
from semgraph.retrieval.engine import Engine

TERMS = [t.iri for t in paper_terms()]


def _case(i: int, **changes) -> Case:
    """Varied metadata, with every optional field missing in some case."""
    values = dict(case_id=f"C{i:02d}", patient_id=f"P{i % 5}", study_id=f"S{i}",
                  diagnosis=(None, "cyst", "metastasis")[i % 3],
                  study_date=None if i % 4 == 0 else dt.date(2019, 1, 1) + dt.timedelta(days=37 * i),
                  age=None if i % 6 == 0 else 20 + i, sex=(None, "F", "M")[i % 3],
                  contrast_phase="portal venous" if i % 2 else None, liver_segment=("VI", None, "II")[i % 3],
                  image_file=f"img/{i}.png" if i % 2 else None, mask_file=f"img/{i}-mask.png" if i % 2 else None)
    return Case(**{**values, **changes})


@pytest.fixture
def embedded(tmp_path):
    store = kg.open_store(tmp_path / "graph")
    ontology.load(store, "radlex-liver")
    rng = np.random.default_rng(1)
    for i in range(24):
        kind = "reader" if i % 5 == 0 else "predicted"
        values = dict(zip(TERMS, rng.random(len(TERMS)).round(3).tolist()))
        write_case(store, _case(i), [Annotation(kind, values)])
    write_case(store, _case(99), [])  # a case without likelihoods is not indexed
    yield store
    store.close()


def _assert_same_engine(a: Engine, b: Engine) -> None:
    assert a.ids == b.ids and a.cases == b.cases and a.terms == b.terms and a.labels == b.labels
    assert a.vectors.dtype == b.vectors.dtype == np.float64
    assert_array_equal(a.vectors, b.vectors)
    assert_array_equal(a.dissimilarity, b.dissimilarity)
    for query in a.ids[:3]:
        assert a.search_case(query, 10, ["sex=F"]) == b.search_case(query, 10, ["sex=F"])


def test_the_snapshot_gives_exactly_the_engine_of_the_graph(embedded):
    reference = Engine.from_store(embedded, use_snapshot=False)
    assert reference.loaded_from == "graph" and not snapshot_path(embedded).exists()
    first = Engine.from_store(embedded)
    assert first.loaded_from == "graph" and snapshot_path(embedded).is_file()
    assert snapshot_path(embedded) == Path(embedded.location).with_name("graph.engine-snapshot.npz")
    second = Engine.from_store(embedded)
    assert second.loaded_from == "snapshot"
    assert len(second) == 24 and "C99" not in second.ids
    _assert_same_engine(reference, first)
    _assert_same_engine(reference, second)


def _new_case(store, engine):
    write_case(store, _case(50), [Annotation("predicted", dict.fromkeys(TERMS, 0.5))])


def _changed_diagnosis(store, engine):  # metadata only: the same values, the same number of triples
    write_case(store, _case(1, diagnosis="hemangioma"),
               [Annotation("predicted", dict(zip(TERMS, engine.vector("C01").tolist())))], replace=True)


def _unstamped_value_change(store, engine):  # a raw SPARQL update that does not know about the stamp
    store.update("DELETE { GRAPH $g { ?l sg:value ?v } } INSERT { GRAPH $g { ?l sg:value 0.123e0 } } "
                 "WHERE { GRAPH $g { $a sg:likelihood ?l . ?l sg:term $t ; sg:value ?v } }",
                 {"g": ANNOTATIONS_GRAPH, "a": annotation_iri("C03", "predicted"), "t": URIRef(TERMS[4])})


@pytest.mark.parametrize("edit", [_new_case, _changed_diagnosis, _unstamped_value_change])
def test_a_stale_snapshot_is_not_used(embedded, edit):
    before = Engine.from_store(embedded)
    assert Engine.from_store(embedded).loaded_from == "snapshot"
    edit(embedded, before)
    after = Engine.from_store(embedded)
    assert after.loaded_from == "graph"
    assert after.cases != before.cases or not np.array_equal(after.vectors, before.vectors)  # the edit shows
    _assert_same_engine(after, Engine.from_store(embedded, use_snapshot=False))
    assert Engine.from_store(embedded).loaded_from == "snapshot"  # rewritten for the new state


def test_annotation_writes_of_ingest_make_the_snapshot_stale(embedded):
    """Replacing likelihoods in place (as annotate does) keeps every count; the stamp catches it."""
    model = SimpleNamespace(version_="test-model")
    kinds = ("crossval",)
    store_crossval(embedded, ["C01", "C02"], TERMS, np.full((2, len(TERMS)), 0.5), model)
    assert Engine.from_store(embedded, likelihood_kinds=kinds).loaded_from == "graph"
    assert Engine.from_store(embedded, likelihood_kinds=kinds).loaded_from == "snapshot"
    values = np.full((2, len(TERMS)), 0.5)
    values[0, 0], values[1, 0] = 0.25, 0.75  # same sum, same number of values
    store_crossval(embedded, ["C01", "C02"], TERMS, values, model)
    after = Engine.from_store(embedded, likelihood_kinds=kinds)
    assert after.loaded_from == "graph" and after.vector("C01")[0] == 0.25
    _assert_same_engine(after, Engine.from_store(embedded, likelihood_kinds=kinds, use_snapshot=False))


def test_another_vocabulary_or_kind_does_not_use_the_snapshot(embedded):
    Engine.from_store(embedded)
    assert Engine.from_store(embedded, likelihood_kinds=("reader",)).loaded_from == "graph"
    assert Engine.from_store(embedded, terms=TERMS[:5], likelihood_kinds=("reader",),
                             dissimilarity=np.ones((5, 5)) - np.eye(5)).loaded_from == "graph"


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04 truncated"])
def test_an_unreadable_snapshot_is_replaced(embedded, content):
    reference = Engine.from_store(embedded, use_snapshot=False)
    snapshot_path(embedded).write_bytes(content)
    engine = Engine.from_store(embedded)
    assert engine.loaded_from == "graph"
    _assert_same_engine(reference, engine)
    assert Engine.from_store(embedded).loaded_from == "snapshot"


def test_remote_stores_get_no_snapshot(oxigraph_server, tmp_path):
    store = kg.open_store(oxigraph_server.query_url, update_url=oxigraph_server.update_url)
    assert snapshot_path(store) is None
    store.close()
