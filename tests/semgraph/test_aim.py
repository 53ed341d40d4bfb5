"""AIM XML reader annotations: parsing (AIM 4 and 3), validation before writing, safety, resumability, search."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from rdflib import URIRef

import ontology
from kg.namespaces import ANNOTATIONS_GRAPH
from semgraph.aim import ingest_aim, parse_aim, safe_parse
from semgraph.casegraph import read_cases, read_likelihoods
from semgraph.errors import InvalidInput, NotFound
from semgraph.retrieval import Engine

DATA = Path(__file__).resolve().parents[1] / "data" / "aim"
RID = "http://radlex.org/RID/"
HYPODENSE, IRREGULAR, HETERO_ENH = RID + "RID6042", RID + "RID5715", RID + "RID39457"
WATER, NONENHANCING, CAPSULE, CIRCUMSCRIBED = RID + "RID43336", RID + "RID6056", RID + "RID43327", RID + "RID5707"
TERMS = [HYPODENSE, IRREGULAR, HETERO_ENH, WATER, NONENHANCING, CAPSULE, CIRCUMSCRIBED]

NS = "gme://caCORE.caCORE/4.4/edu.northwestern.radiology.AIM"


def aim4(*annotations: str, patient: str = '<person><id value="PX"/></person>') -> str:
    """A minimal AIM 4 collection around hand-written ImageAnnotation bodies."""
    body = "".join(f"<ImageAnnotation>{a}</ImageAnnotation>" for a in annotations)
    return f'<ImageAnnotationCollection xmlns="{NS}">{patient}<imageAnnotations>{body}</imageAnnotations>' \
           "</ImageAnnotationCollection>"


def observation(code: str, confidence: str | None = None, scheme: str = "RadLex") -> str:
    conf = f'<annotatorConfidence value="{confidence}"/>' if confidence is not None else ""
    return (f'<imagingObservationEntityCollection><ImagingObservationEntity><typeCode code="{code}" '
            f'codeSystemName="{scheme}"/>{conf}</ImagingObservationEntity></imagingObservationEntityCollection>')


@pytest.fixture
def onto_store(store):
    ontology.load(store, "radlex-liver")
    return store


def _likelihoods(store):
    ids, m = read_likelihoods(store, TERMS, kinds=("reader",))
    return {case_id: dict(zip(TERMS, row)) for case_id, row in zip(ids, m)}


# ---------------------------------------------------------------------- the expected content
def test_two_annotation_file_gives_cases_patients_and_reader_values(onto_store):
    report = ingest_aim(onto_store, DATA / "two_lesions.xml")
    assert report.ingested == ["2.25.900001.1", "Lesion 2"]  # uniqueIdentifier, else name
    assert report.skipped == [] and report.failed == []
    cases = {c.case_id: c for c in read_cases(onto_store)}
    first, second = cases["2.25.900001.1"], cases["Lesion 2"]
    assert (first.patient_id, first.sex, first.study_id, first.study_date) == \
        ("AIM-P1", "F", "2.25.700001", dt.date(2019, 3, 14))
    assert (second.patient_id, second.study_id, second.study_date) == ("AIM-P1", "AIM-P1-Lesion 2", None)
    values = _likelihoods(onto_store)
    # entity without confidence -> 1.0; characteristics use annotatorConfidence; a private 99EPAD code is ignored
    assert values["2.25.900001.1"] == {HYPODENSE: 1.0, IRREGULAR: 0.8, HETERO_ENH: 0.25, WATER: 0.0,
                                       NONENHANCING: 0.0, CAPSULE: 0.0, CIRCUMSCRIBED: 0.0}
    # lower-case rid / RADLEX accepted; isPresent=false -> 0; physical entity read with its confidence
    assert values["Lesion 2"] == {HYPODENSE: 0.0, IRREGULAR: 0.0, HETERO_ENH: 0.0, WATER: 0.9,
                                  NONENHANCING: 0.0, CAPSULE: 0.5, CIRCUMSCRIBED: 0.0}
    stored = onto_store.select(
        "SELECT ?v WHERE { GRAPH $g { ?a sg:annotates ?c ; sg:likelihood ?l . ?c rdfs:label 'Lesion 2' . "
        "?l sg:term $t ; sg:value ?v } }", {"g": ANNOTATIONS_GRAPH, "t": URIRef(NONENHANCING)})
    assert [float(r["v"]) for r in stored] == [0.0]  # absent, but recorded as an explicit 0


def test_parse_keeps_series_reader_and_ignored_codes(onto_store):
    cases, left_out = parse_aim(DATA / "two_lesions.xml", ontology.hierarchy(onto_store).resolve)
    assert left_out == []
    first = cases[0]
    assert first.series_uid == "2.25.700001.3" and first.reader == "reader1"
    assert first.ignored_codes == ("99EPAD:99EPAD_947",)
    assert cases[1].series_uid is None


def test_aim3_annotation(onto_store):
    report = ingest_aim(onto_store, DATA / "aim3_lesion.xml")
    assert report.ingested == ["2.25.900003.1"]
    case = read_cases(onto_store)[0]
    assert (case.patient_id, case.sex, case.study_id, case.study_date) == \
        ("AIM-P3", "O", "2.25.700003", dt.date(2012, 2, 1))
    v = _likelihoods(onto_store)["2.25.900003.1"]
    assert (v[HYPODENSE], v[CIRCUMSCRIBED], v[IRREGULAR]) == (0.4, 1.0, 0.0)  # SRT anatomic entity ignored


def test_folder_is_ingested_and_resumable(onto_store, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(DATA, folder)
    first = ingest_aim(onto_store, folder)
    assert sorted(first.ingested) == ["2.25.900001.1", "2.25.900002.1", "2.25.900003.1", "Lesion 2"]
    count = onto_store.count(ANNOTATIONS_GRAPH)
    again = ingest_aim(onto_store, folder)
    assert again.ingested == [] and sorted(again.skipped) == sorted(first.ingested)
    assert onto_store.count(ANNOTATIONS_GRAPH) == count


def test_ingested_cases_are_searchable(onto_store):
    ingest_aim(onto_store, DATA)
    engine = Engine.from_store(onto_store)
    hits = engine.search_case("2.25.900002.1", k=3)
    found = [h.case_id for h in hits]
    assert sorted(found) == ["2.25.900001.1", "2.25.900003.1", "Lesion 2"]
    # hypodense + irregular (0.7, 0.6) is nearest to hypodense 1.0 + irregular 0.8 + heterogeneous enhancement
    assert found[0] == "2.25.900001.1"


def test_annotation_without_radlex_term_is_reported_not_written(onto_store, tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(aim4('<uniqueIdentifier root="1.1"/>' + observation("RID6042", "0.3"),
                         '<uniqueIdentifier root="1.2"/>' + observation("C12345", scheme="NCIt")))
    report = ingest_aim(onto_store, path)
    assert report.ingested == ["1.1"]
    assert [cid for cid, _ in report.failed] == ["1.2"] and "no RadLex" in report.failed[0][1]


# ---------------------------------------------------------------------- errors: nothing written
@pytest.mark.parametrize("text, message", [
    (aim4('<name value="L1"/>' + observation("RID99999999")),
     "ImageAnnotation 'L1': ImagingObservationEntity typeCode RID99999999: not a term"),
    (aim4('<name value="L1"/>' + observation("RID6042", "1.5")), "annotatorConfidence '1.5' is not a number"),
    (aim4('<name value="L1"/>' + observation("RID6042", "high")), "annotatorConfidence 'high'"),
    (aim4('<name value="L1"/>' + observation("lesion")), "typeCode 'lesion' is not a RadLex id"),
    (aim4(observation("RID6042")), "missing id"),
    (aim4('<name value="L1"/>' + observation("RID6042"), patient=""), "missing patient id"),
    (aim4('<name value="L1"/>' + observation("RID6042"), '<name value="L1"/>' + observation("RID5715")),
     "case id 'L1' already used"),
    (f'<ImageAnnotationCollection xmlns="{NS}"><person><id value="P"/></person></ImageAnnotationCollection>',
     "no ImageAnnotation"),
    ("<Report><ImageAnnotation/></Report>", "root element is <Report>"),
    ("<ImageAnnotationCollection><person>", "not well-formed XML"),
    ("this is not xml", "not well-formed XML"),
])
def test_bad_file_names_the_problem_and_writes_nothing(onto_store, tmp_path, text, message):
    (tmp_path / "bad.xml").write_text(text)
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace("[", r"\[")) as info:
        ingest_aim(onto_store, tmp_path / "bad.xml")
    assert "bad.xml" in info.value.message and "nothing was written" in info.value.message
    assert onto_store.count(ANNOTATIONS_GRAPH) == 0


def test_one_malformed_file_among_good_ones_writes_nothing(onto_store, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(DATA, folder)
    (folder / "zz_broken.xml").write_text(aim4('<name value="Z"/>' + observation("RID6042"))[:-10])
    with pytest.raises(InvalidInput, match="zz_broken.xml: not well-formed"):
        ingest_aim(onto_store, folder)
    assert onto_store.count(ANNOTATIONS_GRAPH) == 0


def test_several_problems_are_all_listed(onto_store, tmp_path):
    (tmp_path / "a.xml").write_text(aim4('<name value="A"/>' + observation("RID99999998")))
    (tmp_path / "b.xml").write_text(aim4('<name value="B"/>' + observation("RID6042", "-0.1")))
    with pytest.raises(InvalidInput) as info:
        ingest_aim(onto_store, tmp_path)
    assert "a.xml, ImageAnnotation 'A'" in info.value.message and "RID99999998" in info.value.message
    assert "b.xml, ImageAnnotation 'B'" in info.value.message and "'-0.1'" in info.value.message


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<ImageAnnotationCollection><person><id value="&lol4;"/></person></ImageAnnotationCollection>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE x [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<ImageAnnotationCollection><person><id value="&secret;"/></person></ImageAnnotationCollection>
"""
PLAIN_DOCTYPE = '<?xml version="1.0"?>\n<!DOCTYPE ImageAnnotationCollection SYSTEM "http://example.org/aim.dtd">\n' \
                "<ImageAnnotationCollection/>"


@pytest.mark.parametrize("text", [BOMB, EXTERNAL, PLAIN_DOCTYPE], ids=["bomb", "external-entity", "doctype"])
def test_doctype_and_entities_are_refused(onto_store, tmp_path, text):
    (tmp_path / "evil.xml").write_text(text)
    with pytest.raises(InvalidInput, match="evil.xml: a document type declaration"):
        ingest_aim(onto_store, tmp_path / "evil.xml")
    assert onto_store.count(ANNOTATIONS_GRAPH) == 0


def test_doctype_refused_in_utf16_too():
    data = PLAIN_DOCTYPE.replace('encoding="UTF-8"', "").encode("utf-16")
    with pytest.raises(InvalidInput, match="document type declaration"):
        safe_parse(data, "x.xml")


def test_undeclared_entity_is_not_well_formed():
    with pytest.raises(InvalidInput, match="not well-formed"):
        safe_parse(b"<a>&nope;</a>", "x.xml")


def test_oversized_file_refused(monkeypatch):
    from semgraph import aim

    monkeypatch.setattr(aim, "MAX_FILE_BYTES", 10)
    with pytest.raises(InvalidInput, match="more than the 10 allowed"):
        safe_parse(b"<a>0123456789</a>", "x.xml")


def test_missing_source_and_empty_folder(onto_store, tmp_path):
    with pytest.raises(NotFound):
        ingest_aim(onto_store, tmp_path / "nope.xml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="no .xml file"):
        ingest_aim(onto_store, tmp_path / "empty")


def test_replace_rewrites_existing_case(onto_store, tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(aim4('<name value="R"/>' + observation("RID6042", "0.2")))
    ingest_aim(onto_store, path)
    path.write_text(aim4('<name value="R"/>' + observation("RID6042", "0.9")))
    assert ingest_aim(onto_store, path).skipped == ["R"]
    assert _likelihoods(onto_store)["R"][HYPODENSE] == 0.2
    assert ingest_aim(onto_store, path, replace=True).ingested == ["R"]
    _, m = read_likelihoods(onto_store, [HYPODENSE], kinds=("reader",))
    np.testing.assert_allclose(m, [[0.9]])


def test_semgraph_ingest_dispatches_aim_files_and_folders(onto_store, tmp_path):
    from semgraph.ingest import ingest, resolve_source

    assert resolve_source(DATA) == ("aim", DATA)
    assert resolve_source(DATA / "two_lesions.xml") == ("aim", DATA / "two_lesions.xml")
    report = ingest(onto_store, DATA / "two_lesions.xml", tmp_path)
    assert len(report.ingested) == 2 and not report.failed
