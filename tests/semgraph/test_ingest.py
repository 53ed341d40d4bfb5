"""Ingest: manifest and reader-CSV ingest, resumability, crash safety, training, annotation and the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import kg
import ontology
from kg.namespaces import ANNOTATIONS_GRAPH
from semgraph.cli import load_commands
from semgraph.cohort import generate, read_manifest
from semgraph.errors import InvalidInput
from semgraph.exchange.feature_files import features_path, load_features
from semgraph.exchange.ingest import ingest, ingest_manifest
from semgraph.exchange.reader_csv import ingest_reader_csv
from semgraph.exchange.saved_models import latest_model
from semgraph.exchange.training import annotate, train
from semgraph.files import data_file
from semgraph.graph.casegraph import (
    case_exists,
    model_iri,
    read_cases,
    read_likelihoods,
)
from semgraph.graph.check import check_store
from semgraph.terms.models import SingleClassTermWarning

N = 24
HYPODENSE, IRREGULAR = "http://radlex.org/RID/RID6042", "http://radlex.org/RID/RID5715"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    generate(N, seed=3, out_dir=folder, size=128, progress=False)
    return folder


@pytest.fixture
def cohort_copy(cohort, tmp_path):
    folder = tmp_path / "cohort"
    shutil.copytree(cohort, folder)
    return folder


def test_ingest_writes_cases_features_and_annotations(store, cohort, tmp_path):
    manifest = read_manifest(cohort / "manifest.json")
    report = ingest(store, cohort, tmp_path, progress=False)
    assert len(report.ingested) + len(report.failed) == N and not report.skipped
    assert len(report.ingested) >= N - 2
    first = manifest.cases[0]
    assert first.case_id in report.ingested
    # the feature file is named by the SHA-1 of the case IRI
    digest = hashlib.sha1(f"https://w3id.org/semgraph/id/case/{first.case_id}".encode()).hexdigest()
    assert features_path(tmp_path, first.case_id) == tmp_path / "features" / f"{digest}.npz"
    f = load_features(tmp_path / "features" / f"{digest}.npz")
    assert f.roi.shape == (35,) and f.patches.shape[1] == 35 and len(f.kinds) == len(f.patches)  # 28 + 7 margin
    cases = {c.case_id: c for c in read_cases(store)}
    assert set(cases) == set(report.ingested)
    c = cases[first.case_id]
    assert c.patient_id == first.patient_id and c.diagnosis == first.diagnosis and c.age == first.metadata["age"]
    ids, reader = read_likelihoods(store, [HYPODENSE, IRREGULAR], kinds=("reader",))
    row = ids.index(first.case_id)
    assert list(reader[row]) == [first.reader_labels[HYPODENSE], first.reader_labels[IRREGULAR]]
    _, truth = read_likelihoods(store, [HYPODENSE], kinds=("truth",))
    assert truth[row, 0] == first.true_labels[HYPODENSE]
    assert not store.ask("ASK { ?a sg:annotationKind 'predicted' }")  # no model yet


def test_second_ingest_writes_nothing(store, cohort, tmp_path):
    first = ingest(store, cohort / "manifest.json", tmp_path, progress=False)
    count = store.count(ANNOTATIONS_GRAPH)
    again = ingest(store, cohort / "manifest.json", tmp_path, progress=False)
    assert again.ingested == [] and sorted(again.skipped) == sorted(first.ingested)
    assert store.count(ANNOTATIONS_GRAPH) == count


def test_bad_case_is_reported_and_skipped(store, cohort_copy, tmp_path):
    manifest = read_manifest(cohort_copy / "manifest.json")
    bad = manifest.cases[5]
    bad.image.write_bytes(b"this is not a DICOM file" * 10)
    report = ingest_manifest(store, manifest, tmp_path, progress=False)
    reasons = dict(report.failed)
    assert bad.case_id in reasons and bad.image.name in reasons[bad.case_id]
    assert not case_exists(store, bad.case_id)
    assert not features_path(tmp_path, bad.case_id).exists()
    later = [c.case_id for c in manifest.cases[6:]]
    assert set(later) - set(reasons) <= set(report.ingested)  # the rest continue


def test_crash_mid_ingest_leaves_only_complete_cases(store, cohort, tmp_path):
    manifest = read_manifest(cohort / "manifest.json")
    k = 7
    crash_at = manifest.cases[k].case_id

    def explode(case_id):
        if case_id == crash_at:
            raise KeyboardInterrupt  # e.g. the process is killed

    with pytest.raises(KeyboardInterrupt):
        ingest_manifest(store, manifest, tmp_path, progress=False, on_case=explode)
    stored = {c.case_id for c in read_cases(store)}
    before = {c.case_id for c in manifest.cases[:k]}
    assert stored <= before and crash_at not in stored
    ids, _ = read_likelihoods(store, [HYPODENSE], kinds=("reader",))
    assert set(ids) == stored  # every stored case has its annotation
    assert all(features_path(tmp_path, i).is_file() for i in stored)
    assert not list((tmp_path / "features").glob("*.tmp"))
    resumed = ingest_manifest(store, manifest, tmp_path, progress=False)
    assert sorted(resumed.skipped) == sorted(stored)
    assert len(resumed.ingested) + len(resumed.failed) + len(stored) == N


def test_train_annotate_and_ingest_with_model(cohort, tmp_path):
    store = kg.open_store(tmp_path / "graph")
    try:
        ingest(store, cohort, tmp_path, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SingleClassTermWarning)
            model, data = train(store, tmp_path)
        assert latest_model(tmp_path).version_ == model.version_
        assert data.X.shape[0] == len(data.case_ids) and model.training_cases_ == data.case_ids
        report = annotate(store, tmp_path, model, progress=False)
        assert sorted(report.ingested) == sorted(data.case_ids)
        ids, predicted = read_likelihoods(store, model.terms_, kinds=("predicted",))
        assert ids == sorted(data.case_ids)
        # annotate scores each ROI by the mean of its patches' scores (roi_score='patch_mean')
        expected = model.predict_proba(data.X, patches=data.patches, patch_kinds=data.kinds, patch_case=data.case)
        np.testing.assert_allclose(predicted, expected[np.argsort(data.case_ids)])
        assert not np.allclose(expected, model.predict_proba(data.X))  # the patches did matter
        rows = store.select("SELECT DISTINCT ?m WHERE { ?a sg:annotationKind 'predicted' ; prov:wasAttributedTo ?m }")
        assert [r["m"] for r in rows] == [model_iri(model.version_)]
        assert store.ask("ASK { $m a sg:TermModel ; sg:parameters ?p }", {"m": model_iri(model.version_)})
        count = store.count(ANNOTATIONS_GRAPH)
        annotate(store, tmp_path, model, progress=False)  # replaces, never duplicates
        assert store.count(ANNOTATIONS_GRAPH) == count
        # a new case ingested with the model gets its predicted annotation at once
        manifest = read_manifest(cohort / "manifest.json")
        manifest.cases = manifest.cases[:1]
        new_id = manifest.cases[0].case_id
        store.update("DELETE WHERE { GRAPH $g { $c ?p ?o } }", {"g": ANNOTATIONS_GRAPH,
                                                                 "c": kg.namespaces.ID["case/" + new_id]})
        assert ingest_manifest(store, manifest, tmp_path, model=model, progress=False).ingested == [new_id]
        assert new_id in read_likelihoods(store, model.terms_, kinds=("predicted",))[0]
    finally:
        store.close()


# ---------------------------------------------------------------------- reader CSV
@pytest.fixture
def onto_store(store):
    ontology.load(store, "radlex-liver")
    return store


def test_reader_csv_terms_by_iri_rid_and_label(onto_store, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(
        f"case_id,patient_id,diagnosis,age,sex,{HYPODENSE},RID5715,lobulated margin\n"
        "R1,P1,cyst,61,F,0.9,0.1,\n"
        "R2,P2,,,,0,1,0.5\n")
    report = ingest_reader_csv(onto_store, path)
    assert report.ingested == ["R1", "R2"]
    ids, m = read_likelihoods(onto_store, [HYPODENSE, IRREGULAR, "http://radlex.org/RID/RID5711"], kinds=("reader",))
    assert ids == ["R1", "R2"]
    np.testing.assert_allclose(m, [[0.9, 0.1, 0.0], [0.0, 1.0, 0.5]])
    cases = {c.case_id: c for c in read_cases(onto_store)}
    assert cases["R1"].diagnosis == "cyst" and cases["R1"].age == 61 and cases["R2"].diagnosis is None
    assert ingest(onto_store, path, tmp_path).skipped == ["R1", "R2"]  # detected as a reader CSV, resumable


def test_reader_csv_batches_land_whole_and_a_rerun_completes(onto_store, tmp_path, monkeypatch):
    path = tmp_path / "ratings.csv"
    path.write_text("case_id,patient_id,hypodense\n" + "".join(f"R{i},P{i},{i / 10}\n" for i in range(7)))
    real_load, loads = onto_store.load, []

    def load(source, graph=None, **options):  # fault injection: the second batch's write fails
        loads.append(source)
        if len(loads) == 2:
            raise kg.StoreError("injected: the disk is full")
        return real_load(source, graph, **options)

    monkeypatch.setattr(onto_store, "load", load)
    with pytest.raises(kg.StoreError, match="injected"):
        ingest_reader_csv(onto_store, path, batch=3)
    assert sorted(c.case_id for c in read_cases(onto_store)) == ["R0", "R1", "R2"]  # the first batch, whole
    again = ingest_reader_csv(onto_store, path, batch=3)
    assert again.skipped == ["R0", "R1", "R2"] and again.ingested == ["R3", "R4", "R5", "R6"]
    assert len(loads) == 4  # batches of 3, 3 and 1
    ids, m = read_likelihoods(onto_store, [HYPODENSE], kinds=("reader",))
    assert dict(zip(ids, m[:, 0].tolist())) == {f"R{i}": i / 10 for i in range(7)}


@pytest.mark.parametrize("text, message", [
    ("case_id,patient_id,hypodense\nA,P,0.5\nB,P,1.5\n", "row 3, column 'hypodense'"),
    ("case_id,patient_id,hypodense\nA,P,x\n", "row 2, column 'hypodense'"),
    ("case_id,patient_id,hypodense,no such term\nA,P,0.5,0.5\n", "column 4 'no such term'"),
    ("case_id,hypodense\nA,0.5\n", "missing column 'patient_id'"),
    ("case_id,patient_id,hypodense\nA,P,0.5\nA,Q,0.5\n", "row 3, column case_id"),
    ("case_id,patient_id,hypodense,study_date\nA,P,0.5,31/12/2020\n", "row 2, column study_date"),
])
def test_reader_csv_errors_name_row_and_column_and_write_nothing(onto_store, tmp_path, text, message):
    path = tmp_path / "ratings.csv"
    path.write_text(text)
    before = onto_store.count(ANNOTATIONS_GRAPH)
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")) as info:
        ingest_reader_csv(onto_store, path)
    assert "nothing was written" in str(info.value) or "column" in str(info.value)
    assert onto_store.count(ANNOTATIONS_GRAPH) == before == 0


# ---------------------------------------------------------------------- CLI
def test_cli_generate_ingest_train_annotate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch.delenv(name, raising=False)
    cli = load_commands()
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(cli, ["--data-dir", "data", *args], catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    assert "wrote 30 cases" in run("cohort", "generate", "--n", "30", "--seed", "2", "--size", "128", "--out", "c")
    assert "run `semgraph train` first" in run("annotate", ok=False)
    first = run("ingest", "c")
    assert "skipped (already in the store) 0" in first
    ingested = int(first.split("ingested ", 1)[1].split(" ", 1)[0])
    assert f"copied into the data folder {2 * ingested}" in first  # ./c is outside the data folder ./data
    again = run("ingest", "c/manifest.json")
    assert "ingested 0 into collection liver-ct, skipped (already in the store)" in again and "copied" not in again
    assert "[file]" not in run("check")
    out = run("train", "--lopo", "--folds", "3")
    assert "trained model" in out and "GroupKFold(3): 3 folds" in out and "hypodense" in out and "mean" in out
    assert len(list((tmp_path / "data" / "models").glob("*.npz"))) == 1
    assert "annotated" in run("annotate")
    (tmp_path / "bad.csv").write_text("case_id,patient_id,hypodense\nA,P,2\n")
    run("ontology", "load", "radlex-liver")
    assert "row 2, column 'hypodense'" in run("ingest", "bad.csv", ok=False)
    assert "does not exist" in run("ingest", "missing-folder", ok=False)


# ---------------------------------------------------------------------- image and mask files stay in the data folder
SMALL = 4


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory):
    """A 4-case cohort in a folder of its own: outside every test's data folder."""
    folder = tmp_path_factory.mktemp("small-cohort")
    generate(SMALL, seed=5, out_dir=folder, size=128, progress=False)
    return folder


@pytest.fixture
def disk_store(tmp_path):
    opened = kg.open_store(tmp_path / "graph")
    yield opened
    opened.close()


def _recorded(store) -> dict[str, tuple[str, str]]:
    return {c.case_id: (c.image_file, c.mask_file) for c in read_cases(store)}


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_cohort_outside_the_data_folder_is_copied_in(disk_store, small_cohort, tmp_path):
    data = tmp_path / "data"
    originals = {r.case_id: (r.image, r.mask) for r in read_manifest(small_cohort / "manifest.json").cases}
    before = {p: p.read_bytes() for p in _files_under(small_cohort)}
    report = ingest(disk_store, small_cohort, data, progress=False)
    assert sorted(report.ingested) == sorted(originals) and not report.failed
    assert len(report.copied) == 2 * SMALL  # an image and a mask per case
    assert f"copied into the data folder {2 * SMALL}" in report.summary()
    recorded = _recorded(disk_store)
    assert set(recorded) == set(originals)
    for case_id, files in recorded.items():
        for text, original in zip(files, originals[case_id]):
            path = data_file(text, data)  # raises when outside the data folder
            assert path.is_file() and path.read_bytes() == original.read_bytes()
            assert path.name == original.name and path.parent == (data / "images" / case_id).resolve()
    assert sorted(data_file(t, data) for files in recorded.values() for t in files) == sorted(
        p.resolve() for p in report.copied)
    assert not [p for p in check_store(disk_store, data_dir=data).problems if p.kind == "file"]
    assert {p: p.read_bytes() for p in _files_under(small_cohort)} == before  # the cohort is left as it was
    assert not list(data.rglob("*.tmp"))

    copies = {p: p.stat().st_mtime_ns for p in _files_under(data / "images")}
    count = disk_store.count(ANNOTATIONS_GRAPH)
    again = ingest(disk_store, small_cohort, data, progress=False)
    assert again.ingested == [] and sorted(again.skipped) == sorted(originals) and again.copied == []
    assert "copied" not in again.summary()
    assert disk_store.count(ANNOTATIONS_GRAPH) == count and _recorded(disk_store) == recorded
    assert {p: p.stat().st_mtime_ns for p in _files_under(data / "images")} == copies  # nothing rewritten


def test_cohort_inside_the_data_folder_is_recorded_in_place(disk_store, small_cohort, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_cohort, data / "cohort")
    manifest = read_manifest(data / "cohort" / "manifest.json")
    report = ingest(disk_store, data / "cohort", data, progress=False)
    assert len(report.ingested) == SMALL and report.copied == []
    assert "copied" not in report.summary()
    root = data.resolve()  # recorded relative to the data folder: the graph shows no server paths
    assert _recorded(disk_store) == {r.case_id: (Path(r.image).resolve().relative_to(root).as_posix(),
                                                 Path(r.mask).resolve().relative_to(root).as_posix())
                                     for r in manifest.cases}
    assert not (data / "images").exists()
    assert not [p for p in check_store(disk_store, data_dir=data).problems if p.kind == "file"]


def test_cohort_behind_a_symbolic_link_out_of_the_data_folder_is_copied(disk_store, small_cohort, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "linked").symlink_to(small_cohort, target_is_directory=True)
    report = ingest(disk_store, data / "linked", data, progress=False)
    assert len(report.ingested) == SMALL and len(report.copied) == 2 * SMALL
    assert not [p for p in check_store(disk_store, data_dir=data).problems if p.kind == "file"]


def test_copies_left_by_an_interrupted_ingest_are_reused(small_cohort, tmp_path):
    """The copies are written before the case; a run stopped in between leaves copies that the next run reuses."""
    data = tmp_path / "data"
    first = kg.open_store(tmp_path / "graph-1")
    try:
        ingest(first, small_cohort, data, progress=False)
        recorded = _recorded(first)
    finally:
        first.close()
    copies = {p: p.stat().st_mtime_ns for p in _files_under(data / "images")}
    second = kg.open_store(tmp_path / "graph-2")  # the cases are not in this store: as if the run stopped
    try:
        report = ingest(second, small_cohort, data, progress=False)
        assert len(report.ingested) == SMALL and report.copied == []
        assert _recorded(second) == recorded
    finally:
        second.close()
    assert {p: p.stat().st_mtime_ns for p in _files_under(data / "images")} == copies


def test_a_different_file_of_the_same_name_is_never_overwritten(small_cohort, tmp_path_factory, tmp_path):
    other = tmp_path_factory.mktemp("other-cohort")  # the same case ids and file names, other pixels
    generate(SMALL, seed=5, out_dir=other, size=160, progress=False)  # the seed is part of the ids: same seed
    data = tmp_path / "data"
    stores = [kg.open_store(tmp_path / "graph-a"), kg.open_store(tmp_path / "graph-b")]
    try:
        for store, cohort in zip(stores, (small_cohort, other)):
            report = ingest(store, cohort, data, progress=False)
            assert len(report.ingested) == SMALL and len(report.copied) == 2 * SMALL
        for store, cohort in zip(stores, (small_cohort, other)):
            for record in read_manifest(cohort / "manifest.json").cases:
                image, mask = _recorded(store)[record.case_id]
                assert data_file(image, data).read_bytes() == record.image.read_bytes()
                assert data_file(mask, data).read_bytes() == record.mask.read_bytes()
        again = ingest(stores[1], other, data, progress=False)
        assert again.copied == [] and len(again.skipped) == SMALL
    finally:
        for store in stores:
            store.close()


def test_failed_case_leaves_no_copy(disk_store, small_cohort, tmp_path):
    cohort = tmp_path / "cohort"
    shutil.copytree(small_cohort, cohort)
    manifest = read_manifest(cohort / "manifest.json")
    bad = manifest.cases[1]
    bad.image.write_bytes(b"this is not a DICOM file" * 10)
    data = tmp_path / "data"
    report = ingest_manifest(disk_store, manifest, data, progress=False)
    assert [c for c, _ in report.failed] == [bad.case_id] and bad.image.name in dict(report.failed)[bad.case_id]
    assert len(report.copied) == 2 * (SMALL - 1)
    assert not (data / "images" / bad.case_id).exists()
    assert sorted(_files_under(data / "images")) == sorted(p.resolve() for p in report.copied)


def test_manifest_inside_the_data_folder_may_not_name_files_outside_it(disk_store, small_cohort, tmp_path):
    """An uploaded cohort (the web batch ingest unpacks it in DATA_DIR/cohorts/) cannot pull in other files."""
    data = tmp_path / "data"
    folder = data / "cohorts" / "upload"
    shutil.copytree(small_cohort, folder)
    doc = json.loads((folder / "manifest.json").read_text())
    doc["cases"][0]["image"] = str(small_cohort / doc["cases"][0]["image"])  # absolute, outside
    doc["cases"][1]["mask"] = "../../../" + doc["cases"][1]["mask"]  # climbs out
    (folder / "manifest.json").write_text(json.dumps(doc))
    report = ingest(disk_store, folder, data, progress=False)
    reasons = dict(report.failed)
    assert set(reasons) == {doc["cases"][0]["case_id"], doc["cases"][1]["case_id"]}
    assert all("outside the data folder" in reason for reason in reasons.values())
    assert len(report.ingested) == SMALL - 2 and report.copied == [] and not (data / "images").exists()
    assert not [p for p in check_store(disk_store, data_dir=data).problems if p.kind == "file"]
