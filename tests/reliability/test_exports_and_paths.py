"""Hostile text in the research exports, and image/mask paths of the graph that leave the data folder.

CSV formula injection: a user label such as ``=cmd|' /C calc'!A0`` reaches the CSV download neutralised (a leading
``'``), while negative numbers stay numbers. Markdown: user-controlled text in the change report cannot add
headings, table cells, links or HTML. Paths: a case's ``sg:imageFile`` / ``sg:maskFile`` that points outside the data
folder (absolute, climbing out with ``..``, or through a symbolic link) is never read for a thumbnail, and
``semgraph check`` reports it, as it reports a missing file; files inside the data folder keep working.

One app (waitress, loopback) over a filled store, real HTTP; ``semgraph check`` on a store on disk.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import kg
from semgraph import cohort
from semgraph.cli import load_commands
from semgraph.feedback.sessions import start_session
from semgraph.graph.casegraph import Annotation, Case, case_iri, write_case
from semgraph.retrieval.engine import Engine

from .conftest import TERMS, Live, fill, marks_for

FORMULA_USER = "=cmd|' /C calc'!A0"
MARKDOWN_USER = "eve|x *b* _i_ `c` [l](http://x) <b>\n# injected"
TIMEOUT = 60


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    live = Live(tmp_path_factory.mktemp("exports-paths"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def hostile_rounds(site):
    """One feedback round by each hostile user name (recorded through the Python API, which takes any name)."""
    engine = Engine.from_store(site.store)
    query = engine.ids[0]
    rounds = [start_session(site.store, engine, query, user).feedback(marks_for(engine, query, 1))
              for user in (FORMULA_USER, MARKDOWN_USER)]
    assert all(r.changes for r in rounds)
    return rounds


def test_a_formula_user_name_is_neutralised_in_the_csv_download_and_numbers_stay_numbers(site, hostile_rounds):
    r = site.session("rhea").get(site.url + "/research/export.csv", timeout=TIMEOUT)
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["user"] for row in rows} == {"'=cmd|' /C calc'!A0", MARKDOWN_USER}
    number = re.compile(r"-?\d+\.\d+(e-\d+)?")
    for row in rows:
        assert all(number.fullmatch(row[c]) for c in ("previous", "dissimilarity", "change")), row
    assert any(row["change"].startswith("-") for row in rows)  # a negative change is data, kept as it is


@pytest.mark.parametrize("cell,expected", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("+SUM(A1:A2)", "'+SUM(A1:A2)"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("-0.25", "-0.25"),
    ("+1.5e-3", "+1.5e-3"),
    ("-7", "-7"),
    (-0.25, -0.25),
    (3, 3),
    ("hypodense", "hypodense"),
    ("a=b", "a=b"),
    ("", ""),
])
def test_the_cell_rule(cell, expected):
    from semgraph.files import spreadsheet_cell

    assert spreadsheet_cell(cell) == expected


def test_user_text_cannot_break_the_markdown_report(site, hostile_rounds):
    r = site.session("rhea").get(site.url + "/research/report.md", timeout=TIMEOUT)
    assert r.status_code == 200
    escaped = r"eve\|x \*b\* \_i\_ \`c\` \[l\](http://x) \<b\> # injected"
    assert f"({escaped}, " in r.text or f", {escaped})" in r.text  # the users of the summary line
    assert not any(line.startswith("# injected") for line in r.text.splitlines())
    relations = r.text.split("## All learned relations", 1)[1].split("\n## ", 1)[0]  # its own table, 9 columns
    table = [line for line in relations.splitlines() if line.startswith("| ")]
    cells = [len(re.findall(r"(?<!\\)\|", line)) for line in table]
    assert len(table) > 1 and set(cells) == {10}, table
    assert any(escaped in line for line in table)


def test_a_filter_echoed_in_the_report_is_escaped(site):
    r = site.session("rhea").get(site.url + "/research/report.md", params={"term": "x\n# injected <img src=y>"},
                                 timeout=TIMEOUT)
    assert r.status_code == 200
    assert "Filters: term = x # injected \\<img src=y\\>." in r.text.splitlines()


# ------------------------------------------------------------------------------------------------- paths


@pytest.fixture(scope="module")
def files(site, tmp_path_factory):
    """One generated image and mask, copied inside the data folder and left in a folder outside it."""
    outside = cohort.read_manifest(cohort.generate(n=1, size=128, out_dir=tmp_path_factory.mktemp("outside"),
                                                   progress=False)).cases[0]
    data = Path(site.services.config.data_dir).resolve()
    inside = data / "cohort"
    inside.mkdir(exist_ok=True)
    image = Path(shutil.copy(outside.image, inside / "in.dcm"))
    mask = Path(shutil.copy(outside.mask, inside / "in.png"))
    (data / "links").mkdir(exist_ok=True)
    (data / "links" / "out.dcm").symlink_to(outside.image)
    return {"data": data, "image": image, "mask": mask, "outside_image": outside.image, "outside_mask": outside.mask}


def _thumbnail(site, case_id: str, image_file: str, mask_file: str):
    """Write the case, let the app see it, and fetch its thumbnail as rita."""
    from webapp.engines import invalidate

    write_case(site.store, Case(case_id, f"P-{case_id}", f"S-{case_id}", image_file=image_file, mask_file=mask_file),
               [Annotation("predicted", {t: 0.5 for t in TERMS})], replace=True)
    invalidate(site.services)
    r = site.session("rita").get(f"{site.url}/api/v1/cases/{case_id}/thumbnail.png", timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    return r


HOSTILE_PATHS = {
    "absolute path outside": lambda f: (str(f["outside_image"]), str(f["mask"])),
    "relative path climbing out": lambda f: (os.path.relpath(f["outside_image"], f["data"]), str(f["mask"])),
    "symbolic link inside pointing outside": lambda f: (str(f["data"] / "links" / "out.dcm"), str(f["mask"])),
    "mask outside": lambda f: (str(f["image"]), str(f["outside_mask"])),
}


@pytest.mark.parametrize("name", HOSTILE_PATHS)
def test_a_thumbnail_never_reads_a_file_outside_the_data_folder(site, files, name):
    inside = _thumbnail(site, "inside-ok", str(files["image"]), str(files["mask"]))
    assert "X-Thumbnail" not in inside.headers  # absolute paths inside the data folder (as ingest writes) work
    relative = _thumbnail(site, "inside-relative", "cohort/in.dcm", "cohort/in.png")
    assert "X-Thumbnail" not in relative.headers
    image_file, mask_file = HOSTILE_PATHS[name](files)
    hostile = _thumbnail(site, "hostile-" + name.replace(" ", "-"), image_file, mask_file)
    assert hostile.headers.get("X-Thumbnail") == "placeholder", name


def test_check_reports_every_case_whose_image_or_mask_is_outside_the_data_folder_or_missing(tmp_path):
    folder = tmp_path / "data"
    outside = cohort.read_manifest(cohort.generate(n=1, size=128, out_dir=tmp_path / "elsewhere",
                                                   progress=False)).cases[0]
    (folder / "cohort").mkdir(parents=True)
    image = Path(shutil.copy(outside.image, folder / "cohort" / "in.dcm")).resolve()
    mask = Path(shutil.copy(outside.mask, folder / "cohort" / "in.png")).resolve()
    (folder / "links").mkdir()
    (folder / "links" / "out.dcm").symlink_to(outside.image)
    root = folder.resolve()
    cases = {  # case id: (image file, mask file)
        "ok-absolute": (str(image), str(mask)), "ok-relative": ("cohort/in.dcm", "cohort/in.png"),
        "etc-passwd": ("/etc/passwd", str(mask)), "climbs-out": ("../../secret.png", str(mask)),
        "symlink-out": (str(folder / "links" / "out.dcm"), str(mask)), "mask-out": (str(image), str(outside.mask)),
        "missing": ("cohort/missing.dcm", str(mask)),
    }
    store = kg.open_store(folder / "graph")
    fill(store, n=4)
    for case_id, (image_file, mask_file) in cases.items():
        write_case(store, Case(case_id, f"P-{case_id}", f"S-{case_id}", image_file=image_file, mask_file=mask_file),
                   [Annotation("predicted", {t: 0.5 for t in TERMS})])
    store.close()

    result = CliRunner().invoke(load_commands(), ["--data-dir", str(folder), "check", "--format", "json"])
    assert result.exit_code == 1, result.output
    payload = json.loads(result.output)
    assert payload["problem_counts"] == {"file": 5}
    assert payload["checked"]["case files"] == 2 * len(cases)
    outside_of = f"is outside the data folder {root}"
    assert sorted((p["subject"], p["message"]) for p in payload["problems"]) == sorted([
        (str(case_iri("etc-passwd")), f"sg:imageFile '/etc/passwd' {outside_of}"),
        (str(case_iri("climbs-out")), f"sg:imageFile '../../secret.png' {outside_of}"),
        (str(case_iri("symlink-out")), f"sg:imageFile '{folder / 'links' / 'out.dcm'}' {outside_of}"),
        (str(case_iri("mask-out")), f"sg:maskFile '{outside.mask}' {outside_of}"),
        (str(case_iri("missing")), f"sg:imageFile 'cohort/missing.dcm' is missing (no such file in {root})"),
    ])
    text = CliRunner().invoke(load_commands(), ["--data-dir", str(folder), "check"])
    assert text.exit_code == 1 and f"[file] {case_iri('etc-passwd')}: sg:imageFile '/etc/passwd'" in text.output
