"""AIM XML reader annotations: parsing (AIM 4 and 3), validation before writing, safety, resumability, search,
codes without a term (skipped or strict), mappings to the ontology, ePAD's annotatorConfidence 0, the summary."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from rdflib import URIRef

import ontology
from kg.namespaces import ANNOTATIONS_GRAPH
from semgraph.errors import InvalidInput, NotFound
from semgraph.exchange.aim import (
    SkippedCode,
    ingest_aim,
    parse_aim,
    safe_parse,
)
from semgraph.exchange.aim_codes import CodeResolver
from semgraph.graph.casegraph import read_cases, read_likelihoods
from semgraph.retrieval.engine import Engine

DATA = Path(__file__).resolve().parents[1] / "data" / "aim"
CODES = DATA / "codes"  # the files of the code and confidence tests (a subfolder: not among the examples below)
RID = "http://radlex.org/RID/"
HYPODENSE, IRREGULAR, HETERO_ENH = RID + "RID6042", RID + "RID5715", RID + "RID39457"
WATER, NONENHANCING, CAPSULE, CIRCUMSCRIBED = RID + "RID43336", RID + "RID6056", RID + "RID43327", RID + "RID5707"
TERMS = [HYPODENSE, IRREGULAR, HETERO_ENH, WATER, NONENHANCING, CAPSULE, CIRCUMSCRIBED]

NS = "gme://caCORE.caCORE/4.4/edu.northwestern.radiology.AIM"
# reasons a code is skipped
MAPPINGS = "(skos:exactMatch, skos:notation or oboInOwl:hasDbXref)"
NOT_A_TERM = f"not a term of the loaded ontology, nor mapped to one {MAPPINGS}"
REX_UNMAPPED = f"an old RadLex id (REX) that the loaded ontology maps to no term {MAPPINGS}"


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


def _likelihoods(store, terms=TERMS):
    ids, m = read_likelihoods(store, terms, kinds=("reader",))
    return {case_id: dict(zip(terms, row)) for case_id, row in zip(ids, m)}


def _examples(folder: Path) -> Path:
    """A copy of the four example annotations (the .xml files directly in tests/data/aim)."""
    folder.mkdir()
    for path in DATA.glob("*.xml"):
        shutil.copy(path, folder)
    return folder


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


def test_parse_keeps_series_reader_and_skipped_codes(onto_store):
    read = parse_aim(DATA / "two_lesions.xml", CodeResolver(ontology.hierarchy(onto_store), onto_store))
    assert read.left_out == [] and read.aim_version == "AIMv4_0" and read.zero_as_selected == 0
    first = read.cases[0]
    assert first.series_uid == "2.25.700001.3" and first.reader == "reader1"
    assert read.skipped == [SkippedCode("two_lesions.xml", "ImageAnnotation 'Lesion 1'",
                                        "ImagingObservationCharacteristic", "99EPAD:99EPAD_947", NOT_A_TERM)]
    assert read.cases[1].series_uid is None


def test_aim3_annotation(onto_store):
    report = ingest_aim(onto_store, DATA / "aim3_lesion.xml")
    assert report.ingested == ["2.25.900003.1"]
    case = read_cases(onto_store)[0]
    assert (case.patient_id, case.sex, case.study_id, case.study_date) == \
        ("AIM-P3", "O", "2.25.700003", dt.date(2012, 2, 1))
    v = _likelihoods(onto_store)["2.25.900003.1"]
    assert (v[HYPODENSE], v[CIRCUMSCRIBED], v[IRREGULAR]) == (0.4, 1.0, 0.0)  # SRT anatomic entity ignored


def test_folder_is_ingested_and_resumable(onto_store, tmp_path):
    folder = _examples(tmp_path / "export")
    first = ingest_aim(onto_store, folder)
    assert sorted(first.ingested) == ["2.25.900001.1", "2.25.900002.1", "2.25.900003.1", "Lesion 2"]
    count = onto_store.count(ANNOTATIONS_GRAPH)
    again = ingest_aim(onto_store, folder)
    assert again.ingested == [] and sorted(again.skipped) == sorted(first.ingested)
    assert onto_store.count(ANNOTATIONS_GRAPH) == count


def test_ingested_cases_are_searchable(onto_store, tmp_path):
    ingest_aim(onto_store, _examples(tmp_path / "export"))
    engine = Engine.from_store(onto_store)
    hits = engine.search_case("2.25.900002.1", k=3)
    found = [h.case_id for h in hits]
    assert sorted(found) == ["2.25.900001.1", "2.25.900003.1", "Lesion 2"]
    # hypodense + irregular (0.7, 0.6) is nearest to hypodense 1.0 + irregular 0.8 + heterogeneous enhancement
    assert found[0] == "2.25.900001.1"


def test_annotation_without_a_term_is_reported_not_written(onto_store, tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(aim4('<uniqueIdentifier root="1.1"/>' + observation("RID6042", "0.3"),
                         '<uniqueIdentifier root="1.2"/>' + observation("C12345", scheme="NCIt")))
    report = ingest_aim(onto_store, path)
    assert report.ingested == ["1.1"]
    reason = "no imaging observation or physical entity with a term of the loaded ontology (codes skipped: 1)"
    assert report.failed == [("1.2", f"a.xml, ImageAnnotation '1.2': {reason}; not ingested")]


# ---------------------------------------------------------------------- errors: nothing written
@pytest.mark.parametrize("text, message", [
    (aim4('<name value="L1"/>' + observation("RID6042", "1.5")),
     "ImageAnnotation 'L1': ImagingObservationEntity RadLex:RID6042: annotatorConfidence '1.5' is not a number"),
    (aim4('<name value="L1"/>' + observation("RID6042", "high")), "annotatorConfidence 'high'"),
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
    folder = _examples(tmp_path / "export")
    (folder / "zz_broken.xml").write_text(aim4('<name value="Z"/>' + observation("RID6042"))[:-10])
    with pytest.raises(InvalidInput, match="zz_broken.xml: not well-formed"):
        ingest_aim(onto_store, folder)
    assert onto_store.count(ANNOTATIONS_GRAPH) == 0


def test_several_problems_are_all_listed(onto_store, tmp_path):
    (tmp_path / "a.xml").write_text(aim4('<name value="A"/>' + observation("RID99999998")))
    (tmp_path / "b.xml").write_text(aim4('<name value="B"/>' + observation("RID6042", "-0.1")))
    with pytest.raises(InvalidInput) as info:
        ingest_aim(onto_store, tmp_path, strict=True)
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
    from semgraph.exchange import aim

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
    from semgraph.exchange.ingest import ingest, resolve_source

    assert resolve_source(DATA) == ("aim", DATA)
    assert resolve_source(DATA / "two_lesions.xml") == ("aim", DATA / "two_lesions.xml")
    report = ingest(onto_store, DATA / "two_lesions.xml", tmp_path)
    assert len(report.ingested) == 2 and not report.failed


# ---------------------------------------------------------------------- codes without a term: skipped, or strict


def test_unknown_radlex_code_is_skipped_with_a_warning(onto_store, tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(aim4('<name value="L1"/>' + observation("RID99999999", "0.8") + observation("RID6042", "0.3")))
    report = ingest_aim(onto_store, path)
    assert report.ingested == ["L1"] and report.failed == []
    assert _likelihoods(onto_store)["L1"][HYPODENSE] == 0.3
    assert [str(s) for s in report.codes_skipped] == [
        f"a.xml, ImageAnnotation 'L1': ImagingObservationEntity RadLex:RID99999999 skipped: {NOT_A_TERM}"]
    assert report.summary() == "ingested 1 into collection liver-ct, skipped (already in the store) 0, failed 0, codes skipped 1"


def test_strict_rejects_the_unknown_code_and_writes_nothing(onto_store, tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(aim4('<name value="L1"/>' + observation("RID99999999", "0.8") + observation("RID6042", "0.3")))
    with pytest.raises(InvalidInput) as info:
        ingest_aim(onto_store, path, strict=True)
    assert info.value.message == ("AIM import: nothing was written; a.xml, ImageAnnotation 'L1': "
                                  f"ImagingObservationEntity RadLex:RID99999999: {NOT_A_TERM}")
    assert onto_store.count(ANNOTATIONS_GRAPH) == 0


@pytest.mark.parametrize("body, message", [
    (observation("lesion"), "RadLex:lesion: not a RadLex id (RID followed by digits), nor mapped to a term"),
    (observation("REX900042"), "RadLex:REX900042: an old RadLex id (REX) that the loaded ontology maps to no term"),
    (observation("99EPAD_947", scheme="99EPAD"), f"99EPAD:99EPAD_947: {NOT_A_TERM}"),
])
def test_strict_rejects_every_code_without_a_term(onto_store, tmp_path, body, message):
    path = tmp_path / "a.xml"
    path.write_text(aim4('<name value="L1"/>' + observation("RID6042") + body))
    assert len(ingest_aim(onto_store, path).codes_skipped) == 1
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        ingest_aim(onto_store, path, strict=True, replace=True)


# ---------------------------------------------------------------------- ePAD's annotatorConfidence 0
EPAD = CODES / "epad_v42_liver.xml"


def _stored(store, case_label: str, term: str) -> list[float]:
    """The reader values stored for ``term`` of a case: [] when the annotation does not name the term."""
    rows = store.select(
        "SELECT ?v WHERE { GRAPH $g { ?a sg:annotates ?c ; sg:likelihood ?l . ?c rdfs:label $case . "
        "?l sg:term $t ; sg:value ?v } }", {"g": ANNOTATIONS_GRAPH, "case": case_label, "t": URIRef(term)})
    return [float(r["v"]) for r in rows]


def test_epad_v42_zero_confidence_is_the_readers_selection(onto_store):
    report = ingest_aim(onto_store, EPAD)
    assert report.ingested == ["2.25.900042.1"] and report.failed == []
    # confidence 0 on selected terms -> 1.0; 0.6 kept; isPresent false stays 0.0; liver and the ISIS_LIVER term skipped
    assert _likelihoods(onto_store)["2.25.900042.1"] == {HYPODENSE: 1.0, IRREGULAR: 1.0, HETERO_ENH: 0.6, WATER: 0.0,
                                                         NONENHANCING: 0.0, CAPSULE: 0.0, CIRCUMSCRIBED: 0.0}
    assert _stored(onto_store, "2.25.900042.1", NONENHANCING) == [0.0]  # recorded as an explicit 0
    assert _stored(onto_store, "2.25.900042.1", WATER) == []
    assert report.files[0].zero_as_selected == 2
    assert [(s.element, s.code) for s in report.codes_skipped] == [
        ("ImagingObservationCharacteristic", "ISIS_LIVER:IL-TEST-1"), ("ImagingPhysicalEntity", "RadLex:RID58")]


@pytest.mark.parametrize("version, mode, selected", [
    ("AIMv4_2", "auto", 1.0), ("AIMv4_3", "auto", 1.0), ("AIMv4_0", "auto", 0.0), ("AIMv4_2", "absent", 0.0),
    ("AIMv4_0", "selected", 1.0),
])
def test_zero_confidence_rule_by_aim_version_and_option(onto_store, tmp_path, version, mode, selected):
    path = tmp_path / "epad.xml"
    path.write_text(EPAD.read_text().replace('aimVersion="AIMv4_2"', f'aimVersion="{version}"'))
    report = ingest_aim(onto_store, path, zero_confidence=mode)
    values = _likelihoods(onto_store)["2.25.900042.1"]
    assert (values[HYPODENSE], values[IRREGULAR], values[HETERO_ENH], values[NONENHANCING]) == \
        (selected, selected, 0.6, 0.0)
    assert report.files[0].zero_as_selected == (2 if selected else 0)


def test_zero_confidence_must_be_a_known_rule(onto_store):
    with pytest.raises(ValueError, match="zero_confidence must be one of auto, absent, selected"):
        ingest_aim(onto_store, EPAD, zero_confidence="present")


# ---------------------------------------------------------------------- other code systems and REX ids
C3099 = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#C3099"
LIVER, MASS = RID + "RID58", RID + "RID3874"
MAPPED = [LIVER, MASS, C3099, HETERO_ENH, HYPODENSE, IRREGULAR]


@pytest.fixture
def mapped_store(store):
    ontology.load(store, CODES / "mapped_terms.ttl")
    return store


def test_other_systems_mapped_by_exact_match_or_kept_as_their_own_iri(mapped_store):
    report = ingest_aim(mapped_store, CODES / "other_systems.xml", collection="mapped")  # its own terms
    assert report.ingested == ["2.25.900051.1"]
    # SCT 10200004: RID58 skos:exactMatch it (no confidence: 1.0); SCT 4147007 skos:exactMatch RID3874 (0.5);
    # NCI C3099: its own IRI is a term (0.7); ISIS_LIVER IL-TEST-1: RID39457 oboInOwl:hasDbXref "ISIS_LIVER:..." (0.3)
    assert _likelihoods(mapped_store, MAPPED)["2.25.900051.1"] == {LIVER: 1.0, MASS: 0.5, C3099: 0.7, HETERO_ENH: 0.3,
                                                                   HYPODENSE: 0.0, IRREGULAR: 0.0}
    assert _stored(mapped_store, "2.25.900051.1", C3099) == [0.7]
    assert [s.code for s in report.codes_skipped] == ["99EPAD:99EPAD_947"]


def test_rex_codes_mapped_when_the_ontology_carries_the_mapping(mapped_store):
    report = ingest_aim(mapped_store, CODES / "aim3_rex.xml", collection="mapped")
    assert report.ingested == ["2.25.900061.1"]
    # REX900042: hasDbXref "RadLex:REX900042" on RID6042 (0.4); REX900715: skos:notation on RID5715 (no confidence)
    assert _likelihoods(mapped_store, MAPPED)["2.25.900061.1"] == {LIVER: 0.0, MASS: 0.0, C3099: 0.0, HETERO_ENH: 0.0,
                                                                   HYPODENSE: 0.4, IRREGULAR: 1.0}
    assert [(s.code, s.reason) for s in report.codes_skipped] == [("RadLex:REX900999", REX_UNMAPPED)]


def test_rex_codes_skipped_without_a_mapping(onto_store):
    report = ingest_aim(onto_store, CODES / "aim3_rex.xml")
    assert report.ingested == [] and onto_store.count(ANNOTATIONS_GRAPH) == 0
    assert [cid for cid, _ in report.failed] == ["2.25.900061.1"] and "(codes skipped: 3)" in report.failed[0][1]
    assert [s.code for s in report.codes_skipped] == ["RadLex:REX900042", "RadLex:REX900715", "RadLex:REX900999"]
    with pytest.raises(InvalidInput, match="ImagingObservation RadLex:REX900042: an old RadLex id"):
        ingest_aim(onto_store, CODES / "aim3_rex.xml", strict=True)


def test_code_mapped_to_several_terms_is_skipped(store, tmp_path):
    ttl = tmp_path / "twice.ttl"
    ttl.write_text("@prefix ex: <http://example.org/> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
                   "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
                   "ex:a rdfs:subClassOf ex:top ; skos:notation 'X:1' . ex:b rdfs:subClassOf ex:top ; "
                   "skos:exactMatch <http://snomed.info/id/1> .\n")
    ontology.load(store, ttl)
    resolve = CodeResolver(ontology.hierarchy(store), store)
    assert resolve("x", "1") == ("http://example.org/a", "")  # the system name is matched case-insensitively
    assert resolve("SCT", "1") == ("http://example.org/b", "")
    (tmp_path / "a.xml").write_text(aim4('<name value="L"/>' + observation("1", scheme="X") +
                                         observation("C&lt;1&gt; x", scheme="SCT")))
    report = ingest_aim(store, tmp_path / "a.xml", collection="twice")
    assert _likelihoods(store, ["http://example.org/a"]) == {"L": {"http://example.org/a": 1.0}}
    assert [s.code for s in report.codes_skipped] == ["SCT:C<1> x"]  # no valid IRI: looked up as text only
    ttl.write_text(ttl.read_text() + "ex:b skos:notation 'x:1' .\n")
    ontology.load(store, ttl)
    resolve = CodeResolver(ontology.hierarchy(store), store)
    several = "the loaded ontology maps it to several terms (http://example.org/a, http://example.org/b)"
    assert resolve("X", "1") == (None, several)


# ---------------------------------------------------------------------- the summary, and the command line
def test_file_lines_say_what_each_file_gave(onto_store, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(EPAD, folder)
    shutil.copy(CODES / "aim3_rex.xml", folder)
    ingest_aim(onto_store, folder / "epad_v42_liver.xml")
    report = ingest_aim(onto_store, folder)
    rex, epad = "(ImageAnnotation 'Old REX lesion')", "(ImageAnnotation 'Liver lesion 1')"
    assert report.file_lines() == [
        "aim3_rex.xml: cases written 0, already in the store 0, left out 1; terms kept 0; codes skipped 3",
        f"  skipped RadLex:REX900042 on ImagingObservation {rex}: {REX_UNMAPPED}",
        f"  skipped RadLex:REX900715 on ImagingObservationCharacteristic {rex}: {REX_UNMAPPED}",
        f"  skipped RadLex:REX900999 on ImagingObservation {rex}: {REX_UNMAPPED}",
        ("epad_v42_liver.xml: cases written 0, already in the store 1, left out 0; terms kept 4; codes skipped 2; "
         "annotatorConfidence 0 read as 'selected' (1.0) 2 times (aimVersion AIMv4_2)"),
        f"  skipped ISIS_LIVER:IL-TEST-1 on ImagingObservationCharacteristic {epad}: {NOT_A_TERM}",
        f"  skipped RadLex:RID58 on ImagingPhysicalEntity {epad}: {NOT_A_TERM}",
    ]
    assert report.summary() == "ingested 0 into collection liver-ct, skipped (already in the store) 1, failed 1, codes skipped 5"


def test_cli_ingest_prints_the_files_and_takes_the_aim_options(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from semgraph.cli import load_commands

    monkeypatch.chdir(tmp_path)
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch.delenv(name, raising=False)
    cli, runner = load_commands(), CliRunner()
    assert runner.invoke(cli, ["ontology", "load", "radlex-liver"]).exit_code == 0
    strict = runner.invoke(cli, ["ingest", str(EPAD), "--strict"])
    assert strict.exit_code == 1 and "ImagingPhysicalEntity RadLex:RID58: not a term" in strict.output
    absent = runner.invoke(cli, ["ingest", str(EPAD), "--zero-confidence", "absent"])
    assert absent.exit_code == 0, absent.output
    assert "epad_v42_liver.xml: cases written 1, already in the store 0, left out 0; terms kept 4; codes skipped 2\n" \
        in absent.output
    assert "  skipped RadLex:RID58 on ImagingPhysicalEntity (ImageAnnotation 'Liver lesion 1'): not a term" \
        in absent.output
    assert "ingested 1 into collection liver-ct, skipped (already in the store) 0, failed 0, codes skipped 2" in absent.output
