"""Hypothesis fuzzing: loaders, manifest, reader CSV, text parser and /sparql over HTTP raise only our errors,
never 5xx, and a rejected request writes nothing. Schemathesis over /api/v1/openapi.json when installed."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg.errors import StoreError
from semgraph.errors import SemgraphError

OURS = (SemgraphError, StoreError)
COUNTS: dict[str, int] = {}


def _count(name):
    COUNTS[name] = COUNTS.get(name, 0) + 1


def _dicom_like(data: bytes) -> bytes:
    return b"\0" * 128 + b"DICM" + data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".dcm", ".png", ".nii", ".nii.gz", ".jpg", ""]),
       kind=st.sampled_from(["raw", "dicom", "png", "nifti"]))
def test_image_loader_random_and_truncated_bytes(tmp_path_factory, data, suffix, kind):
    from semgraph.imaging import load_image

    if kind == "dicom":
        data = _dicom_like(data)
    elif kind == "png":
        data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 2**30, 2**30) + data
    elif kind == "nifti":
        data = struct.pack("<i", 348) + data
    path = tmp_path_factory.mktemp("img") / f"x{suffix}"
    path.write_bytes(data)
    _count("image loader")
    try:
        load_image(path)
    except OURS:
        pass


@settings(max_examples=100, deadline=None)
@given(shape=st.one_of(st.tuples(st.integers(-5, 10**6), st.integers(-5, 10**6)), st.text(max_size=5),
                       st.none(), st.tuples(st.floats(allow_nan=True), st.integers())),
       polygon=st.one_of(st.none(), st.text(max_size=30),
                         st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True),
                                            st.floats(allow_nan=True, allow_infinity=True)), max_size=6)),
       rectangle=st.one_of(st.none(), st.lists(st.integers(-10**7, 10**7), max_size=5), st.text(max_size=10)))
def test_roi_mask_wrong_types_and_huge_dimensions(shape, polygon, rectangle):
    from semgraph.imaging import roi_mask

    _count("roi mask")
    try:
        roi_mask(shape, polygon=polygon, rectangle=rectangle)
    except OURS:
        pass


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=300), st.just('{"cases": [{"case_id": 1}]}'),
                      st.builds(lambda s: '{"version": 1, "cases": ' + s + "}", st.text(max_size=40))),
       suffix=st.sampled_from([".json", ".csv"]))
def test_manifest_reader(tmp_path_factory, text, suffix):
    from semgraph.cohort import read_manifest

    path = tmp_path_factory.mktemp("manifest") / f"manifest{suffix}"
    path.write_text(text, encoding="utf-8")
    _count("manifest reader")
    try:
        read_manifest(path)
    except OURS:
        pass


@pytest.fixture(scope="module")
def reader_store(tmp_path_factory):
    import kg
    import ontology

    store = kg.open_store(tmp_path_factory.mktemp("reader") / "graph")
    ontology.load(store, "radlex-liver")
    yield store
    store.close()


_CELL = st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
                  st.floats(allow_nan=True, allow_infinity=True).map(str), st.sampled_from(["0.5", "1", "", "-1"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.lists(st.sampled_from(["case_id", "patient_id", "diagnosis", "age", "study_date", "RID6042",
                                        "hypodense", "nonsense", "RID0", ""]), max_size=6),
       rows=st.lists(st.lists(_CELL, max_size=7), max_size=5))
def test_reader_csv_ingest_writes_nothing_when_rejected(tmp_path_factory, reader_store, header, rows):
    import csv

    from semgraph.exchange.reader_csv import ingest_reader_csv

    path = tmp_path_factory.mktemp("csv") / "reader.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    before = reader_store.count()
    _count("reader csv")
    try:
        ingest_reader_csv(reader_store, path)
    except OURS:
        assert reader_store.count() == before
    else:
        reader_store.update("DROP SILENT GRAPH <https://w3id.org/semgraph/graph/annotations>")


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=200), st.integers(), st.none(), st.binary(max_size=20),
                      st.lists(st.text(max_size=5), max_size=3)))
def test_text_query_parser(text):
    from semgraph.text.textquery import parse_text

    _count("text parser")
    try:
        result = parse_text(text)
    except OURS:
        return
    assert result.vector.shape == (19,) and np.all((result.vector == 0) | (result.vector == 1))


_SPARQLISH = st.text(alphabet=st.sampled_from(list("SELECTASKWHERE{}?s p o.;<>\"'#$*()|!^/ DROPINSERTDATA:0123")),
                     max_size=120)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.one_of(st.text(max_size=200), _SPARQLISH,
                       st.builds(lambda s: "SELECT * WHERE { ?s ?p " + s + " }", st.text(max_size=40))),
       method=st.sampled_from(["get", "form", "body", "update-form", "update-body"]),
       fmt=st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["json", "xml", "csv", "tsv", "turtle"])),
       accept=st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["text/html", "application/json", "*/*"])),
       extra=st.dictionaries(st.sampled_from(["default-graph-uri", "named-graph-uri", "x", "update"]),
                             st.text(max_size=10), max_size=2))
def test_sparql_endpoint_over_http(live, query, method, fmt, accept, extra):
    import requests

    headers = {}
    if accept is not None:
        headers["Accept"] = accept.encode("latin-1", "ignore").decode("latin-1").replace("\n", "").replace("\r", "").strip() or "*/*"
    params = dict(extra)
    if fmt is not None:
        params["format"] = fmt
    before = live.snapshot()
    url = live.url + "/sparql"
    try:
        if method == "get":
            r = requests.get(url, params={"query": query, **params}, headers=headers, timeout=60)
        elif method == "form":
            r = requests.post(url, data={"query": query, **params}, headers=headers, timeout=60)
        elif method == "body":
            r = requests.post(url, params=params, data=query.encode("utf-8", "surrogatepass"),
                              headers={**headers, "Content-Type": "application/sparql-query"}, timeout=60)
        elif method == "update-form":
            r = requests.post(url, data={"update": query, **params}, headers=headers, timeout=60)
        else:
            r = requests.post(url, params=params, data=query.encode("utf-8", "surrogatepass"),
                              headers={**headers, "Content-Type": "application/sparql-update"}, timeout=60)
    except (UnicodeEncodeError, requests.exceptions.InvalidHeader):  # the client refuses to send it
        return
    _count("sparql endpoint")
    assert r.status_code < 500, f"{r.status_code} for {method} {query!r}: {r.text[:300]}"
    if method.startswith("update") or r.status_code >= 400:
        assert live.snapshot() == before, f"a rejected request ({r.status_code}) changed the store"


def test_zz_fuzz_summary(tmp_path_factory):
    """Hypothesis really generates the examples asked for: the fixture-free fuzzers above run again here (so this
    test passes alone and in any order) and must reach 500 examples between them."""
    before = dict(COUNTS)
    test_image_loader_random_and_truncated_bytes(tmp_path_factory=tmp_path_factory)
    test_roi_mask_wrong_types_and_huge_dimensions()
    test_manifest_reader(tmp_path_factory=tmp_path_factory)
    test_text_query_parser()
    here = {name: n - before.get(name, 0) for name, n in COUNTS.items() if n > before.get(name, 0)}
    print("fuzz examples run:", dict(sorted(COUNTS.items())), "total", sum(COUNTS.values()),
          "; in this test:", dict(sorted(here.items())))
    assert set(here) == {"image loader", "roi mask", "manifest reader", "text parser"}, here
    assert sum(here.values()) >= 500, here


def test_schemathesis_api(live):
    schemathesis = pytest.importorskip("schemathesis")
    import requests

    schema = schemathesis.openapi.from_url(live.url + "/api/v1/openapi.json")
    base = live.url + "/api/v1"
    checked, failures = 0, []
    for op in schema.get_all_operations():
        operation = op.ok()
        strategy = operation.as_strategy()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case):
            nonlocal checked
            response = case.call(base_url=base, session=requests.Session(), timeout=60)
            checked += 1
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, response.status_code, response.text[:200]))

        run()
    print(f"schemathesis: {checked} generated requests, {len(failures)} 5xx")
    assert checked > 0 and not failures, failures[:5]
