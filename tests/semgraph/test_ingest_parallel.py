"""Issue 20: manifest ingest with the per-case work in worker processes (``jobs``) and the store writes in batches
(``batch`` cases per transaction), still resumable per case and all-or-nothing per batch."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import kg
from semgraph.cli import load_commands
from semgraph.cohort import generate, read_manifest
from semgraph.exchange.feature_files import features_path, load_features
from semgraph.exchange.ingest import ingest
from semgraph.exchange.training import train
from semgraph.graph.casegraph import case_iri, read_cases, read_likelihoods
from semgraph.terms.models import SingleClassTermWarning

N = 16


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cohort")
    generate(N, seed=9, out_dir=folder, size=128, progress=False)
    return folder


@pytest.fixture(scope="module")
def model(cohort, tmp_path_factory):
    """Term models trained on the cohort (so that the ingests below also predict likelihoods)."""
    folder = tmp_path_factory.mktemp("training")
    store = kg.open_store(folder / "graph")
    try:
        ingest(store, cohort, folder / "data", progress=False, jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SingleClassTermWarning)
            trained, _ = train(store, folder / "data")
    finally:
        store.close()
    return trained


def _content(store, data_dir: Path, terms) -> dict:
    """What an ingest wrote: the cases, their likelihoods of each kind, their feature files."""
    cases = sorted(read_cases(store), key=lambda c: c.case_id)
    likelihoods = {kind: read_likelihoods(store, terms, kinds=(kind,)) for kind in ("reader", "truth", "predicted")}
    features = {c.case_id: load_features(features_path(data_dir, c.case_id)) for c in cases}
    return {"cases": cases, "likelihoods": likelihoods, "features": features}


def _copied_cases(data_dir: Path) -> set[str]:
    images = data_dir / "images"
    return {p.name for p in images.iterdir()} if images.exists() else set()


def test_two_jobs_write_the_same_graph_as_one(cohort, model, tmp_path):
    contents, reports = [], []
    for jobs, batch in ((1, 1), (2, 5)):
        store = kg.open_store(tmp_path / f"graph-{jobs}")
        data = tmp_path / f"data-{jobs}"
        try:
            reports.append(ingest(store, cohort, data, model=model, progress=False, jobs=jobs, batch=batch))
            contents.append(_content(store, data, model.terms_))
        finally:
            store.close()
    one, two = reports
    assert two.ingested == one.ingested and two.failed == one.failed and len(one.ingested) >= N - 2
    assert [p.relative_to(tmp_path / "data-2") for p in two.copied] == [
        p.relative_to(tmp_path / "data-1") for p in one.copied]
    assert contents[1]["cases"] == contents[0]["cases"]
    for kind, (ids, values) in contents[0]["likelihoods"].items():
        other_ids, other_values = contents[1]["likelihoods"][kind]
        assert other_ids == ids == sorted(one.ingested), kind
        np.testing.assert_array_equal(other_values, values)
    for case_id, f in contents[0]["features"].items():
        g = contents[1]["features"][case_id]
        np.testing.assert_array_equal(g.roi, f.roi)
        np.testing.assert_array_equal(g.patches, f.patches)


def test_a_failed_batch_write_leaves_earlier_batches_only_and_a_rerun_completes(cohort, tmp_path, monkeypatch):
    store = kg.open_store(tmp_path / "graph")
    data = tmp_path / "data"
    real_load = store.load
    writes = []  # the N-Triples texts of the loads that write cases

    def load(source, graph=None, **options):  # fault injection: the second batch's write fails
        if isinstance(source, bytes) and str(case_iri("x"))[:-1] in source.decode():
            writes.append(source.decode())
            if len(writes) == 2:
                raise kg.StoreError("injected: the disk is full")
        return real_load(source, graph, **options)

    monkeypatch.setattr(store, "load", load)
    try:
        with pytest.raises(kg.StoreError, match="injected"):
            ingest(store, cohort, data, progress=False, jobs=2, batch=4)
        stored = {c.case_id for c in read_cases(store)}
        assert _copied_cases(data) == stored  # no copy of a case not written
        again = ingest(store, cohort, data, progress=False, jobs=2, batch=4)
        assert sorted(again.skipped) == sorted(stored)
        assert len(stored) + len(again.ingested) + len(again.failed) == N
        assert _copied_cases(data) == stored | set(again.ingested)
    finally:
        store.close()
    order = [r.case_id for r in read_manifest(cohort / "manifest.json").cases]
    written = [case_id for case_id in order if case_id in stored or case_id in again.ingested]
    assert stored == set(written[:4])  # the first batch, whole
    assert all(str(case_iri(c)) in writes[1] for c in written[4:8])  # the failed batch: nothing of it stored


def test_a_corrupt_image_fails_only_its_case(cohort, tmp_path):
    folder = tmp_path / "cohort"
    shutil.copytree(cohort, folder)
    manifest = read_manifest(folder / "manifest.json")
    bad = manifest.cases[3]
    bad.image.write_bytes(b"this is not a DICOM file" * 10)
    store = kg.open_store(tmp_path / "graph")
    data = tmp_path / "data"
    try:
        report = ingest(store, folder, data, progress=False, jobs=2, batch=3)
        reasons = dict(report.failed)
        assert bad.case_id in reasons and bad.image.name in reasons[bad.case_id]
        assert len(report.ingested) + len(report.failed) == N and len(report.ingested) >= N - 3
        assert {c.case_id for c in read_cases(store)} == set(report.ingested)
        assert report.ingested == [r.case_id for r in manifest.cases if r.case_id not in reasons]  # manifest order
        assert not features_path(data, bad.case_id).exists() and bad.case_id not in _copied_cases(data)
    finally:
        store.close()


def test_a_case_listed_twice_is_written_once(cohort, tmp_path):
    """The second entry waits for the first (in the same batch, on its way to the store) and is then skipped."""
    folder = tmp_path / "cohort"
    shutil.copytree(cohort, folder)
    (folder / "manifest.csv").unlink()
    doc = json.loads((folder / "manifest.json").read_text())
    doc["cases"].insert(2, dict(doc["cases"][0]))
    (folder / "manifest.json").write_text(json.dumps(doc))
    store = kg.open_store(tmp_path / "graph")
    try:
        report = ingest(store, folder, tmp_path / "data", progress=False, jobs=2, batch=5)
        first = doc["cases"][0]["case_id"]
        assert report.ingested.count(first) == 1 and report.skipped == [first]
        assert len(report.ingested) + len(report.failed) == N
    finally:
        store.close()


def test_cli_jobs_and_batch(cohort, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    result = runner.invoke(load_commands(), ["--data-dir", "data", "ingest", str(cohort), "--jobs", "2",
                                             "--batch", "5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "skipped (already in the store) 0" in result.output
    (tmp_path / "ratings.csv").write_text("case_id,patient_id,hypodense\nA,P,0.5\n")
    result = runner.invoke(load_commands(), ["--data-dir", "data", "ingest", "ratings.csv", "--jobs", "2"])
    assert result.exit_code == 2 and "--jobs goes with a cohort manifest" in result.output
    (tmp_path / "reading.xml").write_text("<ImageAnnotationCollection/>")
    result = runner.invoke(load_commands(), ["--data-dir", "data", "ingest", "reading.xml", "--batch", "2"])
    assert result.exit_code == 2 and "--batch goes with a cohort manifest or a reader CSV" in result.output
    result = runner.invoke(load_commands(), ["--data-dir", "data", "ingest", str(cohort), "--batch", "0"])
    assert result.exit_code == 2 and "--batch" in result.output
