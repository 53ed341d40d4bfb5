"""Results out as DICOM (semgraph.exchange.dicom_sr / dicom_seg): an SR (TID 1500) and a SEG of a stored case of a
small generated cohort, stored in a real Orthanc with STOW-RS, fetched back with WADO-RS and read with pydicom and
highdicom; the expected values come from the store, the cohort's files and the engine, read independently."""

from __future__ import annotations

import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
import radiology_fixture
import requests
from pydicom.sr.codedict import codes

from kg.namespaces import ANNOTATIONS_GRAPH
from semgraph.cohort.writers import read_mask
from semgraph.config import Config
from semgraph.errors import InvalidInput, NotFound, PacsError
from semgraph.exchange.dicom_source import case_source
from semgraph.exchange.dicom_sr import (
    ALGORITHM_NAME,
    PRESENT_AT,
    PRIVATE_SCHEME,
    export_case,
    export_query,
    term_code,
)
from semgraph.exchange.pacs import connect
from semgraph.exchange.saved_models import latest_model
from semgraph.files import data_file
from semgraph.graph.casegraph import Case, annotation_stamps, case_iri, read_annotations

USERS = {"rita": ("radiologist", "rita-password-1")}
SIMILAR = 4


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    built = radiology_fixture.build_cohort_site(tmp_path_factory, USERS, n=20)
    yield built
    built.stop()


@pytest.fixture(scope="module")
def parts(site):
    """(store, engine, data folder) of the cohort site."""
    from webapp.engines import engine

    with site.app.app_context():
        eng = engine(site.app.extensions["semgraph"])
    return site.app.extensions["semgraph"].store, eng, site.data_dir


@pytest.fixture
def pacs(orthanc):
    orthanc.clear()
    config = Config.load({"dicomweb_user": orthanc.auth[0], "dicomweb_password": orthanc.auth[1]}, environ={})
    return connect(config, orthanc.dicomweb_url)


def _header(path):
    return pydicom.dcmread(path, stop_before_pixels=True)


def _fetch(client, dataset) -> pydicom.Dataset:
    """The instance as the PACS gives it back over WADO-RS."""
    return client.retrieve_instance(dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)


def _items(item, code: str):
    """The content items under ``item`` (recursively) whose concept name is ``code`` of the 99SEMGRAPH scheme."""
    found = []
    for child in getattr(item, "ContentSequence", []):
        name = child.ConceptNameCodeSequence[0]
        if name.CodeValue == code and name.CodingSchemeDesignator == PRIVATE_SCHEME:
            found.append(child)
        found += _items(child, code)
    return found


def _similar_cases(sr) -> list[tuple[str, float, str | None]]:
    """(case id, HSBD distance, referenced SOP instance UID or None) of every similar case listed in the SR."""
    out = []
    for case in _items(sr, "SIMILAR-CASE"):
        case_id = _items(case, "CASE-ID")[0].TextValue
        distance = float(_items(case, "HSBD")[0].MeasuredValueSequence[0].FloatingPointValue)
        images = _items(case, "CASE-IMAGE")
        out.append((case_id, distance, images[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID if images else None))
    return out


def test_sr_and_seg_round_trip_through_orthanc(parts, pacs):
    store, engine, data_dir = parts
    case_id = engine.ids[0]
    case = engine.case(case_id)
    source = _header(data_file(case.image_file, data_dir))
    expected_values = read_annotations(store)[(case_id, "predicted")]  # what the store holds, not the engine
    expected_hits = engine.search_case(case_id, SIMILAR)
    model_version = latest_model(data_dir, required=True).version_

    exported = export_case(store, engine, data_dir, case_id, similar=SIMILAR, seg=True)
    stored = exported.stow(pacs)
    assert stored == [str(exported.segmentation.SOPInstanceUID), str(exported.report.SOPInstanceUID)]

    sr = hd.sr.Comprehensive3DSR.from_dataset(_fetch(pacs, exported.report))
    seg = hd.seg.Segmentation.from_dataset(_fetch(pacs, exported.segmentation))

    # the SR joins the case's patient and study
    assert (sr.PatientID, sr.StudyInstanceUID) == (source.PatientID, source.StudyInstanceUID)
    assert sr.content[0].ContentTemplateSequence[0].TemplateIdentifier == "1500"
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == 1
    group = groups[0]
    # every term: its RadLex code, a qualitative evaluation (present from 0.5) and the likelihood, exactly
    evaluations = {e.name.value: e.value.value for e in group.get_qualitative_evaluations()}
    measured = {m.name.value: (m.value, m.name.scheme_designator, m.unit.value) for m in group.get_measurements()}
    expected = {term.rsplit("/", 1)[-1]: value for term, value in expected_values.items() if term in engine.terms}
    assert set(evaluations) == set(measured) == set(expected) == {t.rsplit("/", 1)[-1] for t in engine.terms}
    for rid, value in expected.items():
        assert measured[rid] == (value, "RADLEX", "1")
        assert evaluations[rid] == (codes.SCT.Present.value if value >= PRESENT_AT else codes.SCT.Absent.value)
    # the term-model version as the group's algorithm identification
    algorithm = hd.sr.utils.find_content_items(group[0], name=codes.DCM.AlgorithmName)
    version = hd.sr.utils.find_content_items(group[0], name=codes.DCM.AlgorithmVersion)
    assert (algorithm[0].TextValue, version[0].TextValue) == (ALGORITHM_NAME, model_version)
    # the ROI is the SEG's segment 1, which was made from the case's image
    reference = group.referenced_segmentation_frame
    assert reference[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == seg.SOPInstanceUID
    assert seg.get_source_image_uids() == [(source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID)]
    assert seg.get_segment_numbers() == [1]
    pixels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1])
    assert np.array_equal(pixels[0, :, :, 0].astype(bool), read_mask(data_file(case.mask_file, data_dir)))
    # the similar cases: ids, distances and their images, nearest first, the images listed as evidence
    listed = _similar_cases(sr)
    assert [(c, d) for c, d, _ in listed] == [(h.case_id, h.distance) for h in expected_hits]
    image_uids = [_header(data_file(engine.case(h.case_id).image_file, data_dir)).SOPInstanceUID
                  for h in expected_hits]
    assert [uid for _, _, uid in listed] == image_uids
    evidence = {uid for _, _, uid, _ in sr.get_evidence()}
    assert set(image_uids) | {source.SOPInstanceUID, seg.SOPInstanceUID} <= evidence


def test_sr_without_seg_names_the_source_image(parts):
    store, engine, data_dir = parts
    case_id = engine.ids[1]
    exported = export_case(store, engine, data_dir, case_id, similar=0)
    assert exported.segmentation is None and len(exported.datasets) == 1
    sr = hd.sr.srread(_roundtrip(exported.report))
    group = sr.content.get_image_measurement_groups()[0]
    source = _header(data_file(engine.case(case_id).image_file, data_dir))
    assert [s.value[1] for s in group.source_images] == [source.SOPInstanceUID]
    assert _similar_cases(sr) == []


def _roundtrip(dataset) -> io.BytesIO:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    buffer.seek(0)
    return buffer


def test_a_case_without_model_likelihoods_has_no_algorithm(parts):
    """Likelihoods no model is credited with (here: the attribution removed) claim no algorithm identification."""
    store, engine, data_dir = parts
    case_id = engine.ids[2]
    store.update("DELETE { GRAPH $g { ?a prov:wasAttributedTo ?who } } WHERE { GRAPH $g { ?a sg:annotates $c ; "
                 "prov:wasAttributedTo ?who } }", {"g": ANNOTATIONS_GRAPH, "c": case_iri(case_id)})
    sr = hd.sr.srread(_roundtrip(export_case(store, engine, data_dir, case_id, similar=1).report))
    group = sr.content.get_image_measurement_groups()[0]
    assert hd.sr.utils.find_content_items(group[0], name=codes.DCM.AlgorithmName) == []


def test_a_query_not_in_the_store_is_exported(parts):
    _store, engine, data_dir = parts
    image = data_file(engine.case(engine.ids[3]).image_file, data_dir)
    model = latest_model(data_dir, required=True)
    rectangle = (40, 40, 80, 80)
    exported = export_query(engine, data_dir, image, {"rectangle": rectangle}, model, similar=2, seg=True)
    expected = engine.image_vector(image, {"rectangle": rectangle}, model=model)
    group = hd.sr.srread(_roundtrip(exported.report)).content.get_planar_roi_measurement_groups()[0]
    values = {m.name.value: m.value for m in group.get_measurements()}
    assert values == {t.rsplit("/", 1)[-1]: float(v) for t, v in zip(engine.terms, expected)}
    assert group.tracking_identifier == "query"
    source = pydicom.dcmread(image, stop_before_pixels=True)
    seg = hd.seg.segread(_roundtrip(exported.segmentation))
    mask = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1])[0, :, :, 0].astype(bool)
    expected_mask = np.zeros(mask.shape, dtype=bool)
    expected_mask[40:80, 40:80] = True  # x0, y0, x1, y1 = 40, 40, 80, 80: rows and columns 40 to 79
    assert np.array_equal(mask, expected_mask)


def test_a_pacs_that_is_down_or_refuses_is_a_pacs_error(parts, orthanc):
    from kg.server import free_loopback_port

    store, engine, data_dir = parts
    stamps = annotation_stamps(store)
    exported = export_case(store, engine, data_dir, engine.ids[0], similar=1)
    down = connect(Config.load({"dicomweb_timeout": 2.0}, environ={}), f"http://127.0.0.1:{free_loopback_port()}/dw")
    with pytest.raises(PacsError, match="cannot reach"):
        exported.stow(down)
    wrong = connect(Config.load({"dicomweb_user": "nobody", "dicomweb_password": "wrong"}, environ={}),
                    orthanc.dicomweb_url)
    with pytest.raises(PacsError, match="refused the credentials"):
        exported.stow(wrong)
    assert annotation_stamps(store) == stamps  # the export and the failed STOWs wrote nothing to the graph


def test_term_codes():
    code = term_code("http://radlex.org/RID/RID5715", "irregular margin")
    assert (code.value, code.scheme_designator, code.meaning) == ("RID5715", "RADLEX", "irregular margin")
    assert term_code("http://snomed.info/id/52988006", "").scheme_designator == "SCT"
    with pytest.raises(InvalidInput, match="no code"):
        term_code("https://example.org/terms/spiky", "spiky")


def test_non_dicom_or_missing_images_are_refused(parts, tmp_path):
    import nibabel as nib

    _, engine, data_dir = parts
    case = engine.case(engine.ids[0])
    nifti = data_file("images/nifti-case/image.nii", data_dir)
    nifti.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 1), dtype=np.int16), np.eye(4)), str(nifti))
    as_nifti = Case("nifti-case", "P", "S", image_file=str(nifti), mask_file=case.mask_file)
    with pytest.raises(InvalidInput, match="NIFTI, not DICOM"):
        case_source(data_dir, as_nifti)
    with pytest.raises(NotFound, match="no image and mask"):
        case_source(data_dir, Case("reader-only", "P", "S"))
    with pytest.raises(NotFound):
        export_case(None, engine, data_dir, "no-such-case")


def test_a_region_smaller_than_a_feature_patch_is_exported_as_it_is(parts):
    from semgraph.cohort.writers import write_mask

    _, engine, data_dir = parts
    case = engine.case(engine.ids[0])
    mask = np.zeros(pydicom.dcmread(data_file(case.image_file, data_dir)).pixel_array.shape, dtype=bool)
    mask[10:12, 20:22] = True
    path = data_file("images/tiny-roi/mask.png", data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mask(path, mask)
    source = case_source(data_dir, Case("tiny", "P", "S", image_file=case.image_file, mask_file=str(path)))
    assert np.array_equal(source.mask, mask)


@pytest.fixture(scope="module")
def reader_store(tmp_path_factory):
    """A store folder of its own (the site's is held open by the app) with 6 cohort cases, reader likelihoods only,
    and its data folder."""
    import kg
    import ontology
    from semgraph import cohort
    from semgraph.exchange import ingest

    data_dir = tmp_path_factory.mktemp("cli-data")
    manifest = cohort.generate(n=6, size=128, out_dir=data_dir / "cohort", progress=False)
    with kg.open_store(str(data_dir / "store")) as store:
        ontology.load(store, ontology.BUNDLED_RADLEX)
        assert len(ingest.ingest(store, manifest, data_dir, progress=False).ingested) == 6
    return data_dir


def test_cli_writes_and_stows(reader_store, orthanc, cli_on, monkeypatch):
    data_dir = reader_store
    monkeypatch.setenv("SEMGRAPH_DICOMWEB_USER", orthanc.auth[0])
    monkeypatch.setenv("SEMGRAPH_DICOMWEB_PASSWORD", orthanc.auth[1])
    orthanc.clear()
    invoke = cli_on(data_dir / "store")
    case_id = "case-000000"
    out = invoke("--data-dir", str(data_dir), "export", "--dicom-sr", case_id, "--seg", "--similar", "2",
                 "--out", "dicom/one", "--stow", orthanc.dicomweb_url)
    written = sorted((data_dir / "exports" / "dicom" / "one").glob("*.dcm"))
    assert len(written) == 2 and "stored 2 object(s)" in out
    assert sorted(pydicom.dcmread(p).Modality for p in written) == ["SEG", "SR"]
    in_pacs = requests.get(f"{orthanc.url}/instances", auth=orthanc.auth, timeout=10).json()
    assert len(in_pacs) == 2
    assert "--out FOLDER, --stow" in invoke("--data-dir", str(data_dir), "export", "--dicom-sr", case_id, ok=False)
    assert "--dicom-sr CASE" in invoke("--data-dir", str(data_dir), "export", "--seg", "--out", "x", ok=False)
    assert "inside the export folder" in invoke("--data-dir", str(data_dir), "export", "--dicom-sr", case_id, "--out", "../x",
                               ok=False)


def test_case_page_links_the_downloads_and_they_are_dicom(site):
    http = radiology_fixture_login(site)
    case_id = site.case_ids[0]
    page = http.get(f"{site.url}/cases/{case_id}", timeout=60).text
    sr_url, seg_url = f"/api/v1/cases/{case_id}/dicom-sr.dcm", f"/api/v1/cases/{case_id}/dicom-seg.dcm"
    assert f'href="{sr_url}"' in page and f'href="{seg_url}"' in page
    sr = http.get(site.url + sr_url, params={"k": 3}, timeout=60)
    assert sr.status_code == 200 and sr.headers["Content-Type"] == "application/dicom"
    report = hd.sr.srread(io.BytesIO(sr.content))
    assert len(_similar_cases(report)) == 3
    seg = http.get(site.url + seg_url, timeout=60)
    assert hd.seg.segread(io.BytesIO(seg.content)).get_segment_numbers() == [1]
    assert http.get(site.url + sr_url, params={"k": "0"}, timeout=60).status_code == 400
    assert http.get(f"{site.url}/api/v1/cases/nope/dicom-sr.dcm", timeout=60).status_code == 404
    assert requests.get(site.url + sr_url, timeout=60, allow_redirects=False).status_code in (302, 401)


def radiology_fixture_login(site) -> requests.Session:
    http = requests.Session()
    token = http.get(site.url + "/login").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = http.post(site.url + "/login", data={"name": "rita", "password": USERS["rita"][1], "csrf_token": token},
                  allow_redirects=False)
    assert r.status_code == 302
    return http


def test_dciodvfy_finds_no_error(parts, tmp_path):
    """dicom3tools' IOD checker on the SR (with and without SEG) and the SEG: no error (its warnings name only the
    local coding scheme 99SEMGRAPH, which the SR declares in its Coding Scheme Identification Sequence)."""
    import shutil
    import subprocess

    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    store, engine, data_dir = parts
    files = export_case(store, engine, data_dir, engine.ids[0], similar=2, seg=True).write(tmp_path / "a")
    files += export_case(store, engine, data_dir, engine.ids[0], similar=2).write(tmp_path / "b")
    for path in files:
        checked = subprocess.run(["dciodvfy", str(path)], check=False, capture_output=True, text=True, timeout=60)
        lines = (checked.stdout + checked.stderr).splitlines()
        assert not [line for line in lines if line.startswith("Error")], (path, lines)
        assert {line for line in lines if line.startswith("Warning")} <= {
            "Warning - Unrecognized defined term <99SEMGRAPH> for value 1 of attribute <Coding Scheme Designator>"}
