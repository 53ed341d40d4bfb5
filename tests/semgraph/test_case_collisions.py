"""Issue 18: a case id already in the store is skipped only for the same case; a different case under it is
refused with nothing written; cohorts of different seeds never share ids; progress without carriage returns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kg
from semgraph.cohort import generate, iter_labels
from semgraph.exchange.ingest import ingest
from semgraph.graph.casegraph import read_cases

N = 4


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cohort-seed0")
    generate(N, seed=0, out_dir=folder, size=128, progress=False)
    return folder


@pytest.fixture
def loaded(cohort, tmp_path):
    """A store holding the seed-0 cohort (files copied into the data folder ``tmp_path / 'data'``)."""
    store = kg.open_store(tmp_path / "graph")
    data_dir = tmp_path / "data"
    report = ingest(store, cohort, data_dir, progress=False)
    assert len(report.ingested) == N, report.summary()
    yield store, data_dir
    store.close()


def edited_copy(cohort: Path, folder: Path, edit) -> Path:
    """A copy of ``cohort`` whose manifest.json's cases went through ``edit(cases, folder)``."""
    shutil.copytree(cohort, folder)
    (folder / "manifest.csv").unlink()
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    edit(data["cases"], folder)
    path.write_text(json.dumps(data))
    return folder


def test_the_same_cohort_again_is_skipped_and_writes_nothing(loaded, cohort):
    store, data_dir = loaded
    before = store.count()
    report = ingest(store, cohort, data_dir, progress=False)
    assert (report.ingested, report.failed, sorted(report.skipped)) == ([], [], [f"case-{i:06d}" for i in range(N)])
    assert store.count() == before


def test_a_changed_diagnosis_under_a_stored_id_is_refused(loaded, cohort, tmp_path):
    store, data_dir = loaded
    old = {c.case_id: c.diagnosis for c in read_cases(store)}["case-000001"]
    new = "abscess" if old != "abscess" else "cyst"

    def change(cases, _folder):
        cases[1]["diagnosis"] = new

    before = store.count()
    report = ingest(store, edited_copy(cohort, tmp_path / "changed", change), data_dir, progress=False)
    assert [case_id for case_id, _ in report.failed] == ["case-000001"]
    reason = report.failed[0][1]
    assert "different case with the id case-000001" in reason
    assert f"diagnosis: {old} in the store, {new} in the input" in reason
    assert sorted(report.skipped) == ["case-000000", "case-000002", "case-000003"] and not report.ingested
    assert store.count() == before
    assert {c.case_id: c.diagnosis for c in read_cases(store)}["case-000001"] == old


def test_another_image_under_a_stored_id_is_refused(loaded, cohort, tmp_path):
    store, data_dir = loaded

    def swap_image(cases, folder):  # case 2 now points at a file holding case 3's pixels; metadata unchanged
        image = folder / cases[2]["image"]
        image.write_bytes((folder / cases[3]["image"]).read_bytes())

    before = store.count()
    report = ingest(store, edited_copy(cohort, tmp_path / "swapped", swap_image), data_dir, progress=False)
    assert [case_id for case_id, _ in report.failed] == ["case-000002"]
    assert "image: the file" in report.failed[0][1] and "other content" in report.failed[0][1]
    assert "diagnosis" not in report.failed[0][1]
    assert store.count() == before


def test_cohorts_of_different_seeds_never_share_ids_and_both_go_in(loaded, tmp_path):
    store, data_dir = loaded
    assert [lab.case_id for lab in iter_labels(3, 0)] == ["case-000000", "case-000001", "case-000002"]
    assert [lab.case_id for lab in iter_labels(3, 12)] == ["case-s12-000000", "case-s12-000001", "case-s12-000002"]
    ids = [{lab.case_id for lab in iter_labels(50, seed)} for seed in (0, 1, 2, 10)]
    assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1:])
    other = tmp_path / "cohort-seed1"
    generate(N, seed=1, out_dir=other, size=128, progress=False)
    report = ingest(store, other, data_dir, progress=False)
    assert sorted(report.ingested) == [f"case-s1-{i:06d}" for i in range(N)]
    assert not report.skipped and not report.failed
    assert len(read_cases(store)) == 2 * N


def test_cli_progress_is_whole_lines_when_stderr_is_not_a_terminal(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMGRAPH_")}
    semgraph = Path(sys.executable).with_name("semgraph")
    done = subprocess.run([str(semgraph), "--data-dir", str(tmp_path / "data"), "cohort", "generate", "--n", "3",
                           "--seed", "4", "--size", "128", "--out", str(tmp_path / "c")],
                          check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("cohort: done, 3 cases in ")
    assert {"cohort: 1/3 cases (33%)", "cohort: 2/3 cases (67%)"} <= set(lines)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert [c["case_id"] for c in manifest["cases"]] == ["case-s4-000000", "case-s4-000001", "case-s4-000002"]


def test_a_reader_csv_reusing_an_id_for_another_case_is_refused_whole(loaded, tmp_path):
    import ontology
    from semgraph.errors import InvalidInput

    store, data_dir = loaded
    ontology.load(store, ontology.BUNDLED_RADLEX)
    stored = {c.case_id: c for c in read_cases(store)}["case-000002"]
    other = "abscess" if stored.diagnosis != "abscess" else "cyst"
    same = tmp_path / "same.csv"
    same.write_text(f"case_id,patient_id,diagnosis,hypodense\ncase-000002,{stored.patient_id},{stored.diagnosis},1\n"
                    "R-new,P-new,cyst,0.5\n")
    clash = tmp_path / "clash.csv"
    clash.write_text(f"case_id,patient_id,diagnosis,hypodense\nR-new2,P-new,cyst,0.5\n"
                     f"case-000002,{stored.patient_id},{other},1\n")
    before = store.count()
    with pytest.raises(InvalidInput) as refused:
        ingest(store, clash, data_dir)
    assert f"case-000002 (diagnosis: {stored.diagnosis} in the store, {other} in the input)" in str(refused.value)
    assert "nothing was written" in str(refused.value) and store.count() == before  # R-new2 is not written either
    report = ingest(store, same, data_dir)
    assert (report.skipped, report.ingested) == (["case-000002"], ["R-new"])
