"""The `semgraph` command line, through click's runner and once as a real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from semgraph.cli import load_commands

cli = load_commands()


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("SEMGRAPH_STORE", "SEMGRAPH_DATA_DIR", "SEMGRAPH_CONFIG", "SEMGRAPH_UPDATE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return invoke


@pytest.fixture
def demo(run):
    run("ontology", "load", "radlex-liver")
    return run


def test_demo_builds_the_data_folder_once(run, tmp_path):
    first = run("demo", "--no-serve", "--cases", "12", "--size", "128")
    for step in ("loaded the bundled RadLex liver subset", "stored the synonym list", "ingested a synthetic cohort",
                 "trained term models", "wrote the baseline term dissimilarities", "generated case captions"):
        assert step in first
    assert "19 RadLex liver-lesion terms" in first and "(one per role), password" in first
    data = tmp_path / "semgraph-data"
    assert (data / "graph").is_dir() and (data / "cohort" / "manifest.json").is_file()
    assert (data / "models" / "LATEST").is_file() and (data / "users.json").is_file()
    second = run("demo", "--no-serve")
    assert "loaded" not in second and "trained" not in second and "password" not in second
    assert "cases:      " in second


def test_ontology_info_and_dissimilarity(demo):
    assert "radlex-liver: 2,383 classes" in demo("ontology", "info")
    described = demo("ontology", "info", "radlex-liver")
    assert "imaging observation [RID5]: 1,052 classes, D_c = 7" in described
    out = demo("ontology", "dissimilarity", "irregular margin", "RID5711")
    assert "path = 2 edges via LCA non-circumscribed margin [RID34355] (depth 4)" in out
    assert "= 1.238226" in out  # ln(sqrt(2*3) + 1), CS = 7 - 4
    out = demo("ontology", "dissimilarity", "RID5714", "RID5715", "--measure", "wu-palmer")
    assert "= 0.400000" in out  # 1 - 2*3/(5+5)
    assert "did you mean 'irregular margin'" in demo("ontology", "dissimilarity", "RID5714", "irregular margn",
                                                      ok=False)


def test_ontology_load_into_store_flag(run, tmp_path):
    ttl = tmp_path / "toy.ttl"
    ttl.write_text("@prefix ex: <http://e/> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
                   "ex:a rdfs:subClassOf ex:top . ex:b rdfs:subClassOf ex:top .\n")
    out = run("--store", str(tmp_path / "other"), "ontology", "load", str(ttl), "--name", "toy")
    assert "loaded 'toy': 8 triples, 3 classes" in out
    assert "toy: 3 classes" in run("--store", str(tmp_path / "other"), "ontology", "info")
    assert "no store at semgraph-data/graph" in run("ontology", "info", ok=False)  # the default is another one


def test_sparql_formats_and_bindings(demo):
    table = demo("sparql", "SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }")
    assert "irregular margin@en" in table and "(1 row)" in table
    payload = json.loads(demo("sparql", "--format", "json",
                              "SELECT ?t WHERE { ?t rdfs:label ?l FILTER(STR(?l) = $l) }", "--param", "l=hypodense"))
    assert payload["results"]["bindings"] == [{"t": {"type": "uri", "value": "http://radlex.org/RID/RID6042"}}]
    csv = demo("sparql", "--format", "csv", "SELECT ?p WHERE { $t rdfs:subClassOf ?p }",
               "--iri", "t=http://radlex.org/RID/RID5715")
    assert csv.splitlines() == ["p", "http://radlex.org/RID/RID34355"]
    assert demo("sparql", "ASK { rid:RID5715 rdfs:subClassOf+ rid:RID5 }").strip() == "true"
    assert "rdfs:label" in demo("sparql", "CONSTRUCT { rid:RID5715 rdfs:label ?l } WHERE { rid:RID5715 rdfs:label ?l }")


def test_sparql_errors_are_one_line(demo):
    out = demo("sparql", "SELECT nonsense", ok=False)
    assert out.startswith("Error: malformed SPARQL query") and "Traceback" not in out
    assert "not bound" in demo("sparql", "ASK { $x ?p ?o }", ok=False)
    assert "NAME=VALUE" in demo("sparql", "ASK {}", "--param", "novalue", ok=False)


def test_store_resolution_order(run, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMGRAPH_STORE", str(tmp_path / "from-env"))
    run("ontology", "load", "radlex-liver")
    run("--store", str(tmp_path / "from-flag"), "ontology", "load", "radlex-liver")
    (tmp_path / "semgraph.toml").write_text('[semgraph]\nstore = "from-toml"\n')
    monkeypatch.delenv("SEMGRAPH_STORE")
    run("ontology", "load", "radlex-liver")
    for folder in ("from-env", "from-flag", "from-toml"):
        assert (tmp_path / folder).is_dir(), folder
    assert not (tmp_path / "semgraph-data").exists()
    (tmp_path / "semgraph.toml").write_text('[semgraph]\nstor = "typo"\n')
    assert "unknown settings ['stor']" in run("ontology", "info", ok=False)


def _command_paths(group, prefix=()) -> list[tuple[str, ...]]:
    """Every registered command and group below ``group``, as argument paths (the group itself first)."""
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        paths.extend(_command_paths(command, prefix + (name,)) if hasattr(command, "commands") else [prefix + (name,)])
    return paths


def test_every_command_has_help(run):
    paths = _command_paths(cli)
    assert len(paths) > 25 and ("ontology", "load") in paths and ("sparql",) in paths
    for path in paths:
        out = run(*path, "--help")
        usage = out.splitlines()[0].split()  # Usage: PROG [path...] [OPTIONS] ...
        assert usage[0] == "Usage:" and usage[2:2 + len(path)] == list(path) and "Options:" in out, (path, out)


def test_console_script_runs(tmp_path):
    script = Path(sys.executable).with_name("semgraph")
    env = {**os.environ, "SEMGRAPH_STORE": str(tmp_path / "graph")}
    out = subprocess.run([str(script), "ontology", "load", "radlex-liver"], capture_output=True, text=True, env=env,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "loaded 'radlex-liver': 8,662 triples, 2,383 classes" in out.stdout
    busy = subprocess.Popen([sys.executable, "-c", "import kg, time, sys; s = kg.open_store(sys.argv[1]); "
                             "print('open', flush=True); time.sleep(30)", str(tmp_path / "graph")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout.readline().strip() == "open"
        locked = subprocess.run([str(script), "ontology", "info"], capture_output=True, text=True, env=env,
                                timeout=120)
        assert locked.returncode == 1 and "already open in another process" in locked.stderr
    finally:
        busy.kill()
