"""PACS in (issue 19): QIDO search, bounded WADO retrieval, regions from SEG and RTSTRUCT, `semgraph ingest
--dicomweb` and `semgraph query --dicomweb`, against the real Orthanc fixture."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from pacs_fixture import (
    make_rtstruct,
    make_seg,
    make_sr,
    one_case_per_study,
    pacs_study,
    rectangle_contour,
)

from semgraph.config import Config
from semgraph.errors import InvalidInput, NotFound
from semgraph.exchange import pacs_studies
from semgraph.exchange.pacs import connect

RT_BOX = (30, 40, 70, 60)  # x0, y0, x1, y1 of the RTSTRUCT contour: mask[40:60, 30:70]
#: The SR's image region, an L: mask[20:40, 20:60] and mask[40:60, 20:40], 800 + 400 pixels.
SR_OUTLINE = [(20, 20), (60, 20), (60, 40), (40, 40), (40, 60), (20, 60)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, orthanc):
    """A data folder (24 cohort cases ingested, a trained model) and five cohort studies on the PACS: A with a
    SEG of its lesion, B with an RTSTRUCT rectangle, C with no region object, D with a SEG of 4 pixels, E with a
    TID 1500 SR whose image region is an L-shaped polyline."""
    import kg
    import ontology
    from semgraph import cohort
    from semgraph.exchange import ingest, training

    root = tmp_path_factory.mktemp("pacs-lab")
    data_dir = root / "data"
    manifest_path = cohort.generate(n=24, size=128, out_dir=root / "cohort", progress=False)
    with kg.open_store(str(data_dir / "graph")) as store:
        ontology.load(store, ontology.BUNDLED_RADLEX)
        ingest.ingest(store, manifest_path, data_dir, progress=False)
        training.train(store, data_dir)
    orthanc.clear()
    a, b, c, d, e = (pacs_study(r) for r in one_case_per_study(cohort.read_manifest(manifest_path))[:5])
    for study in (a, b, c, d, e):
        orthanc.upload(study.image)
    a.roi_uid = make_seg(a.image, a.mask, root / "a-seg.dcm")
    b.roi_uid = make_rtstruct(b.image, rectangle_contour(pydicom.dcmread(b.image), RT_BOX), root / "b-rt.dcm")
    tiny = np.zeros_like(d.mask)
    tiny[60:62, 60:62] = True
    d.roi_uid = make_seg(d.image, tiny, root / "d-seg.dcm")
    e.roi_uid = make_sr(e.image, SR_OUTLINE, root / "e-sr.dcm")
    for name in ("a-seg.dcm", "b-rt.dcm", "d-seg.dcm", "e-sr.dcm"):
        orthanc.upload(root / name)
    yield {"root": root, "data_dir": data_dir, "studies": (a, b, c, d, e), "rt_box": RT_BOX}
    orthanc.clear()  # the PACS is shared by the session's other modules


@pytest.fixture
def client(orthanc):
    config = Config.load({"dicomweb_user": orthanc.auth[0], "dicomweb_password": orthanc.auth[1]}, environ={})
    return connect(config, orthanc.dicomweb_url)


@pytest.fixture
def semgraph(lab, tmp_path, monkeypatch, orthanc):
    """Run the `semgraph` command on a fresh copy of the lab's data folder, with the PACS credentials in the
    environment; returns (invoke, data_dir)."""
    from semgraph.cli import load_commands

    data_dir = tmp_path / "data"
    shutil.copytree(lab["data_dir"], data_dir)
    monkeypatch.chdir(tmp_path)
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_DICOMWEB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEMGRAPH_DICOMWEB_USER", orthanc.auth[0])
    monkeypatch.setenv("SEMGRAPH_DICOMWEB_PASSWORD", orthanc.auth[1])
    cli, runner = load_commands(), CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return invoke, data_dir


def _files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.is_file() and "graph" not in p.relative_to(data_dir).parts)


def _case_ids(data_dir: Path) -> set[str]:
    import kg
    from semgraph.exchange.ingest_report import existing_case_ids

    with kg.open_store(str(data_dir / "graph"), read_only=True) as store:
        return existing_case_ids(store)


# ---------------------------------------------------------------- QIDO search and WADO retrieval

def test_search_by_patient_date_and_uid(lab, client):
    _, b, c, d, _ = lab["studies"]
    everything = pacs_studies.search_studies(client)
    assert {s.study_uid for s in everything} == {s.study_uid for s in lab["studies"]} and len(everything) == 5
    by_patient = {s.study_uid: s for s in pacs_studies.search_studies(client, patient=b.patient_id)}
    assert set(by_patient) == {s.study_uid for s in lab["studies"] if s.patient_id == b.patient_id}
    assert by_patient[b.study_uid].study_date.isoformat() == b.study_date
    assert set(by_patient[b.study_uid].modalities) == {"CT", "RTSTRUCT"}
    day = pacs_studies.parse_date_range(f"{c.study_date}..{c.study_date}")
    assert c.study_uid in {s.study_uid for s in pacs_studies.search_studies(client, date_range=day)}
    assert [s.study_uid for s in pacs_studies.search_studies(client, study_uids=[d.study_uid])] == [d.study_uid]
    assert pacs_studies.search_studies(client, patient="nobody-here") == []


def test_date_range_and_uid_checks():
    import datetime as dt

    assert pacs_studies.parse_date_range("2020-01-01..") == (dt.date(2020, 1, 1), None)
    assert pacs_studies.parse_date_range("2021-02-03") == (dt.date(2021, 2, 3), dt.date(2021, 2, 3))
    for bad in ("2021-13-01", "2021-02-01..2020-01-01", ".."):
        with pytest.raises(InvalidInput):
            pacs_studies.parse_date_range(bad)
    with pytest.raises(InvalidInput, match="not a DICOM UID"):
        pacs_studies.check_uid("1.2.3' } ; DROP")


def test_series_and_instances_of_a_study(lab, client):
    a = lab["studies"][0]
    series = {s.modality: s for s in pacs_studies.list_series(client, a.study_uid)}
    assert set(series) == {"CT", "SEG"}
    assert series["CT"].series_uid == a.series_uid and series["CT"].instances == 1
    [instance] = pacs_studies.list_instances(client, a.study_uid, a.series_uid)
    assert (instance.sop_uid, instance.rows, instance.columns) == (a.sop_uid, 128, 128)


def test_missing_study_is_not_found(client):
    with pytest.raises(NotFound, match="not on the PACS"):
        pacs_studies.list_series(client, "1.2.3.4.5.6.7.8.9")


def test_an_image_over_the_limits_is_refused_before_retrieval(lab, client, monkeypatch):
    a = lab["studies"][0]
    monkeypatch.setattr(client, "retrieve_instance", lambda *args: pytest.fail("the instance was retrieved"))
    with pytest.raises(InvalidInput, match="over the size limit of 64x64"):
        pacs_studies.fetch_instance(client, a.study_uid, a.series_uid, a.sop_uid, max_size=64)
    with pytest.raises(InvalidInput, match="GiB"):  # 128 × 128 × 2 bytes = 32,768 bytes of pixel data
        pacs_studies.fetch_instance(client, a.study_uid, a.series_uid, a.sop_uid, max_bytes=32_767)


# ---------------------------------------------------------------- regions of interest

def test_seg_region_is_the_mask_it_was_made_from(lab, client):
    a = lab["studies"][0]
    found = pacs_studies.study_slice(client, a.study_uid)
    assert (found.roi_source, found.roi_uid, found.sop_uid, found.series_uid) == ("SEG", a.roi_uid, a.sop_uid,
                                                                                  a.series_uid)
    assert found.mask.shape == (128, 128) and found.mask.sum() == a.mask.sum() > 16
    assert np.array_equal(found.mask, a.mask)


def test_rtstruct_contour_becomes_the_rectangle(lab, client):
    b = lab["studies"][1]
    found = pacs_studies.study_slice(client, b.study_uid)
    x0, y0, x1, y1 = lab["rt_box"]
    expected = np.zeros((128, 128), dtype=bool)
    expected[y0:y1, x0:x1] = True
    assert found.roi_source == "RTSTRUCT" and found.sop_uid == b.sop_uid
    assert found.mask.sum() == (x1 - x0) * (y1 - y0) == 800
    assert np.array_equal(found.mask, expected)


def test_sr_image_region_becomes_the_polygon(lab, client):
    e = lab["studies"][4]
    found = pacs_studies.study_slice(client, e.study_uid)
    expected = np.zeros((128, 128), dtype=bool)
    expected[20:40, 20:60] = True
    expected[40:60, 20:40] = True
    assert (found.roi_source, found.roi_uid, found.sop_uid) == ("SR", e.roi_uid, e.sop_uid)
    assert found.mask.sum() == 1200 and np.array_equal(found.mask, expected)


def test_a_study_without_a_region_object_needs_a_region(lab, client):
    c = lab["studies"][2]
    with pytest.raises(InvalidInput, match="no SEG, RTSTRUCT or SR"):
        pacs_studies.study_slice(client, c.study_uid)


def test_a_seg_of_another_slice_is_refused(lab, client):
    a, b = lab["studies"][:2]
    image = pacs_studies.fetch_instance(client, b.study_uid, b.series_uid, b.sop_uid)
    seg = pacs_studies.fetch_instance(client, a.study_uid, pacs_studies.find_instance(client, a.study_uid, a.roi_uid),
                                      a.roi_uid)
    with pytest.raises(InvalidInput, match="does not segment instance"):
        pacs_studies.roi_mask_of(seg, image)


# ---------------------------------------------------------------- semgraph ingest --dicomweb

def test_ingest_over_dicomweb_is_resumable_and_all_or_nothing(lab, semgraph, orthanc):
    import kg
    from semgraph.cohort.writers import read_mask
    from semgraph.exchange.case_files import case_files_dir
    from semgraph.graph.casegraph import read_annotations, read_cases

    invoke, data_dir = semgraph
    a, b, c, d, e = lab["studies"]
    before = _case_ids(data_dir)
    out = invoke("ingest", "--dicomweb", orthanc.dicomweb_url)
    assert "predicted likelihoods by model" in out
    assert "ingested 3" in out and "skipped (already in the store) 0" in out and "failed 2" in out, out
    assert f"failed {c.study_uid}: " in out and "no SEG, RTSTRUCT or SR" in out
    assert f"failed {d.study_uid}: " in out
    assert _case_ids(data_dir) - before == {a.study_uid, b.study_uid, e.study_uid}
    with kg.open_store(str(data_dir / "graph"), read_only=True) as store:
        cases = {case.case_id: case for case in read_cases(store)}
        annotations = read_annotations(store)
        dump = store.construct("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }").serialize(format="nt")
    case = cases[a.study_uid]
    assert (case.study_id, case.patient_id, case.study_date.isoformat()) == (a.study_uid, a.patient_id, a.study_date)
    assert case.image_file == f"images/{a.study_uid}/{a.sop_uid}.dcm"
    assert np.array_equal(read_mask(data_dir / case.mask_file), a.mask)
    assert (a.study_uid, "predicted") in annotations and (a.study_uid, "reader") not in annotations
    # neither the password nor the address (the bare port number may occur in a RadLex id, as 34301 once did)
    assert orthanc.auth[1] not in dump and f"127.0.0.1:{orthanc.port}" not in dump
    assert not case_files_dir(data_dir, d.study_uid).exists()  # the failed case left no file behind
    files = sorted(p for p in (data_dir / "images").rglob("*") if p.is_file())

    again = invoke("ingest", "--dicomweb", orthanc.dicomweb_url)
    assert "ingested 0" in again and "skipped (already in the store) 3" in again and "failed 2" in again
    assert sorted(p for p in (data_dir / "images").rglob("*") if p.is_file()) == files


def test_ingest_one_study_by_uid_and_by_patient(lab, semgraph, orthanc):
    invoke, data_dir = semgraph
    a, b = lab["studies"][:2]
    out = invoke("ingest", "--dicomweb", orthanc.dicomweb_url, "--study", b.study_uid)
    assert "ingested 1" in out and "failed 0" in out
    out = invoke("ingest", "--dicomweb", orthanc.dicomweb_url, "--patient", a.patient_id)
    assert "ingested 1" in out and f"failed {a.study_uid}" not in out  # the patient's other studies: done or failed
    assert {a.study_uid, b.study_uid} <= _case_ids(data_dir)


def test_ingest_the_study_of_a_series(lab, semgraph, orthanc):
    invoke, data_dir = semgraph
    b = lab["studies"][1]  # its image series; its region is an RTSTRUCT in another series of the study
    before = _case_ids(data_dir)
    out = invoke("ingest", "--dicomweb", orthanc.dicomweb_url, "--series", b.series_uid)
    assert "ingested 1" in out and "failed 0" in out, out
    assert _case_ids(data_dir) - before == {b.study_uid}
    missing = invoke("ingest", "--dicomweb", orthanc.dicomweb_url, "--series", "1.2.3.4.5.6", ok=False)
    assert "series 1.2.3.4.5.6 is not on the PACS" in missing


def test_ingest_of_a_missing_study_writes_nothing(lab, semgraph, orthanc):
    invoke, data_dir = semgraph
    before = _case_ids(data_dir)
    out = invoke("ingest", "--dicomweb", orthanc.dicomweb_url, "--study", "1.2.3.4.5.6.7.8.9", ok=False)
    assert "1.2.3.4.5.6.7.8.9 is not on the PACS" in out
    assert _case_ids(data_dir) == before


def test_ingest_from_a_pacs_that_is_down_or_refuses(semgraph, orthanc, monkeypatch):
    from kg.server import free_loopback_port

    invoke, data_dir = semgraph
    before, files = _case_ids(data_dir), _files(data_dir)
    monkeypatch.setenv("SEMGRAPH_DICOMWEB_TIMEOUT", "2")
    out = invoke("ingest", "--dicomweb", f"http://127.0.0.1:{free_loopback_port()}/dicom-web", ok=False)
    assert "cannot reach" in out and "is the PACS running?" in out
    monkeypatch.setenv("SEMGRAPH_DICOMWEB_PASSWORD", "wrong")
    out = invoke("ingest", "--dicomweb", orthanc.dicomweb_url, ok=False)
    assert "refused the credentials (HTTP 401)" in out and "wrong" not in out
    assert _case_ids(data_dir) == before and _files(data_dir) == files


def test_ingest_arguments(semgraph):
    invoke, _ = semgraph
    assert "either a MANIFEST_OR_FOLDER_OR_CSV or --dicomweb" in invoke("ingest", ok=False)
    assert "go with --dicomweb" in invoke("ingest", "somewhere.json", "--patient", "P1", ok=False)


# ---------------------------------------------------------------- semgraph query --dicomweb

def _table(output: str) -> list[str]:
    return [line for line in output.splitlines() if not line.startswith("warning")]


def test_query_by_a_pacs_instance_and_its_seg(lab, semgraph, orthanc):
    invoke, data_dir = semgraph
    a = lab["studies"][0]
    seg_mask = data_dir.parent / "a-roi.png"
    from semgraph.cohort.writers import write_mask

    write_mask(seg_mask, a.mask)
    pacs = invoke("query", "--dicomweb", orthanc.dicomweb_url, "--study", a.study_uid, "--series", a.series_uid,
                  "--instance", a.sop_uid, "--seg", a.roi_uid, "--k", "5")
    local = invoke("query", "--image", str(a.image), "--mask", str(seg_mask), "--k", "5")
    assert _table(pacs) == _table(local)
    assert len(_table(pacs)) == 6 and _table(pacs)[1].split()[1] == a.case_id  # the case itself ranks first


def test_query_by_a_pacs_instance_and_a_rectangle(lab, semgraph, orthanc):
    invoke, _ = semgraph
    b = lab["studies"][1]
    uids = ("--study", b.study_uid, "--series", b.series_uid, "--instance", b.sop_uid)
    pacs = invoke("query", "--dicomweb", orthanc.dicomweb_url, *uids, "--rect", "30,40,70,60", "--format", "json")
    local = invoke("query", "--image", str(b.image), "--rect", "30,40,70,60", "--format", "json")
    assert _table(pacs) == _table(local) and '"case_id"' in pacs
    rt = invoke("query", "--dicomweb", orthanc.dicomweb_url, *uids, "--seg", b.roi_uid, "--format", "json")
    assert _table(rt) == _table(local)  # the RTSTRUCT is that same rectangle


def test_query_by_a_pacs_instance_and_its_sr_region(lab, semgraph, orthanc):
    import json

    invoke, _ = semgraph
    e = lab["studies"][4]
    pacs = invoke("query", "--dicomweb", orthanc.dicomweb_url, "--study", e.study_uid, "--series", e.series_uid,
                  "--instance", e.sop_uid, "--seg", e.roi_uid, "--format", "json")
    local = invoke("query", "--image", str(e.image), "--polygon", json.dumps(SR_OUTLINE), "--format", "json")
    assert _table(pacs) == _table(local) and '"case_id"' in pacs


def test_query_by_a_pacs_instance_errors(lab, semgraph, orthanc):
    invoke, _ = semgraph
    a = lab["studies"][0]
    uids = ("--study", a.study_uid, "--series", a.series_uid)
    assert "needs --study, --series and --instance" in invoke("query", "--dicomweb", orthanc.dicomweb_url, *uids,
                                                              "--rect", "1,1,40,40", ok=False)
    out = invoke("query", "--dicomweb", orthanc.dicomweb_url, *uids, "--instance", "1.2.3.4.5", "--rect",
                 "1,1,40,40", ok=False)
    assert "not found" in out
    out = invoke("query", "--dicomweb", orthanc.dicomweb_url, *uids, "--instance", a.sop_uid, ok=False)
    assert "exactly one of --seg" in out
    assert "go with --dicomweb" in invoke("query", "--case", a.case_id, "--seg", a.roi_uid, ok=False)
