"""The export-format registry: every registered format round-trips through :func:`semgraph.exchange.export.export`, is a
choice of `semgraph export --format` (and its file gets the format's extension) and is a download of the researchers'
page (route, link, media type, file name); adding one is one registry entry."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from livesite import WebClient, live_app
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, SKOS

import kg
import ontology
from kg.namespaces import SG
from semgraph.exchange import export as ex
from semgraph.feedback.sessions import start_session
from semgraph.graph.casegraph import Annotation, Case, write_case
from semgraph.retrieval.engine import Engine

R = "http://radlex.org/RID/"
HYPO, WATER, SOFT = R + "RID6042", R + "RID43336", R + "RID43337"
USERS = {"rhea": ("researcher", "rhea-password-1")}


def fill(store) -> None:
    """Four cases and one session by alice with two penalty rounds on query Q (hypodense 0.9): round 1 marks REL
    (water density 0.85) relevant and IRR (soft tissue density 0.9) irrelevant, so water↔hypodense gets closer and
    soft tissue↔hypodense farther; round 2 marks REL relevant again: water↔hypodense closer once more. 3 edges."""
    ontology.load(store, ontology.BUNDLED_RADLEX)
    for j, (cid, vals) in enumerate({"Q": {HYPO: 0.9}, "REL": {WATER: 0.85}, "IRR": {SOFT: 0.9},
                                     "OTHER": {HYPO: 0.2}}.items()):
        write_case(store, Case(cid, f"HP{j}", f"HS{j}", diagnosis="cyst"), [Annotation("reader", vals)])
    session = start_session(store, Engine.from_store(store), "Q", "alice")
    session.feedback({"REL": "relevant", "IRR": "irrelevant"})
    session.feedback({"REL": "relevant"})


def _learned(g: Graph) -> int:
    return len(set(g.subjects(SG.kind, Literal("learned"))))


def _proposed(text: str) -> set:
    g = Graph().parse(data=text, format="turtle")
    return {(g.value(p, RDF.subject), g.value(p, RDF.predicate), g.value(p, RDF.object))
            for p in g.subjects(RDF.type, SG.Proposal)}


def _csv_pairs(text: str) -> list[tuple[str, str, str]]:
    return [(r["round_number"], r["label_a"], r["label_b"]) for r in csv.DictReader(io.StringIO(text))]


#: What each format's text holds for :func:`fill` (hand-checked): the 3 learned edges (2 of round 1, 1 of round 2);
#: the one pair made closer, proposed as skos:related (its learned value stays above the closeMatch bound 0.15 and
#: no re-parenting applies); the report's heading and that pair.
CHECKS = {
    "turtle": lambda text: _learned(Graph().parse(data=text, format="turtle")) == 3,
    "json-ld": lambda text: _learned(Graph().parse(data=text, format="json-ld")) == 3,
    "csv": lambda text: _csv_pairs(text) == [("1", "water density", "hypodense"),
                                             ("1", "soft tissue density", "hypodense"),
                                             ("2", "water density", "hypodense")],
    "proposal": lambda text: _proposed(text) == {(URIRef(WATER), SKOS.related, URIRef(HYPO))},
    "report": lambda text: text.startswith("# Learned term relations: change report")
    and "water density ↔ hypodense" in text,
    "sssom": lambda text: _sssom_tsv(text) == [("RADLEX:RID43336", "skos:relatedMatch", "RADLEX:RID6042")],
    "sssom-json": lambda text: [(m["subject_id"], m["predicate_id"], m["object_id"])
                                for m in json.loads(text)["mappings"]]
    == [("RADLEX:RID43336", "skos:relatedMatch", "RADLEX:RID6042")],
}


def _sssom_tsv(text: str) -> list[tuple[str, str, str]]:
    """(subject, predicate, object) of each mapping, as sssom-py's own parser reads the table."""
    from sssom.parsers import parse_sssom_table

    frame = parse_sssom_table(io.StringIO(text)).df
    return list(zip(frame["subject_id"], frame["predicate_id"], frame["object_id"], strict=True))


def test_every_registered_format_has_a_check():
    assert set(CHECKS) == set(ex.available_formats()), "add the new format's hand-checked expectation to CHECKS"


def test_downloads_are_unique_and_the_built_ins_keep_their_names():
    downloads = [ex.get_format(name).download for name in ex.available_formats()]
    assert len(set(downloads)) == len(downloads)
    assert downloads == ["export.ttl", "export.jsonld", "export.csv", "proposal.ttl", "report.md",
                         "mappings.sssom.tsv", "mappings.sssom.json"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats") / "graph"
    with kg.open_store(folder) as store:
        fill(store)
    return folder


@pytest.mark.parametrize("name", ex.available_formats())
def test_every_format_round_trips_through_export(data, name):
    with kg.open_store(data) as store:
        assert CHECKS[name](ex.export(store, name))


def test_the_cli_offers_and_writes_every_format(data, tmp_path, monkeypatch):
    from semgraph.cli import load_commands

    monkeypatch.chdir(tmp_path)
    for var in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch.delenv(var, raising=False)
    cli = load_commands()
    (option,) = [p for p in cli.commands["export"].params if p.name == "fmt"]
    assert tuple(option.type.choices) == ex.available_formats()
    for name in ex.available_formats():
        result = CliRunner().invoke(cli, ["--store", str(data), "--data-dir", str(tmp_path / "data"), "export",
                                          "--format", name, "--out", f"out-{name}"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        target = tmp_path / "data" / "exports" / f"out-{name}{ex.get_format(name).extension}"
        assert CHECKS[name](target.read_text(encoding="utf-8")), name


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with live_app(tmp_path_factory.mktemp("formats-site"), USERS, fill) as server:
        yield WebClient(server.url, {"rhea": USERS["rhea"][1]}).logged_in("rhea")


@pytest.mark.parametrize("name", ex.available_formats())
def test_the_research_page_offers_and_serves_every_format(site, name):
    fmt = ex.get_format(name)
    assert f'href="/research/{fmt.download}"' in site.get("/research/relations").text
    r = site.get(f"/research/{fmt.download}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == fmt.media_type
    assert r.headers["Content-Disposition"].endswith(f'{fmt.extension}"')
    assert CHECKS[name](r.text)


def test_adding_a_format_is_one_registry_entry(monkeypatch, data):
    monkeypatch.setattr(ex, "_FORMATS", dict(ex._FORMATS))
    ex.register_format(ex.ExportFormat("count", ".txt", "text/plain; charset=utf-8", "the number of learned edges",
                                       lambda store, filters: str(len(ex.learned_edges(store))), stem="count"))
    with kg.open_store(data) as store:
        assert ex.export(store, "count") == "3"
    assert ex.available_formats()[-1] == "count" and ex.get_format("count").download == "count.txt"
    with pytest.raises(ValueError, match="already registered"):
        ex.register_format(ex.ExportFormat("turtle2", ".ttl", "text/turtle", "again", ex.get_format("turtle").write))
    with pytest.raises(ValueError, match="extension"):
        ex.register_format(ex.ExportFormat("bad", "ttl", "text/turtle", "no dot", ex.get_format("turtle").write))
