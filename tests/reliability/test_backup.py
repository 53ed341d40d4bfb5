"""Backup and restore: a round trip gives the same quads and the same rankings; a damaged backup is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import kg
from semgraph.cli import load_commands
from semgraph.errors import InvalidInput
from semgraph.feedback.sessions import start_session
from semgraph.graph.backup import backup, restore, verify
from semgraph.retrieval.engine import Engine

from .conftest import fill, marks_for

ALL = "SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }"


def quads(store) -> set:
    return {(r["g"], r["s"], r["p"], r["o"]) for r in store.select(ALL)}


def rankings(store) -> dict:
    engine = Engine.from_store(store)
    return {c: [(h.case_id, h.distance) for h in engine.search_case(c, k=10)] for c in engine.ids}


def test_round_trip_reproduces_quads_and_rankings(filled, tmp_path):
    store, engine = filled
    session = start_session(store, engine, engine.ids[0], "alice")
    session.feedback(marks_for(engine, engine.ids[0], 1))
    data = tmp_path / "data"
    (data / "features").mkdir(parents=True)
    np.savez(data / "features" / "x.npz", roi=np.arange(5.0))
    (data / "users.json").write_text('{"alice": {"hash": "scrypt$..."}}')
    (data / "secret_key").write_text("k" * 64)
    before_quads, before_rank = quads(store), rankings(store)
    info = backup(store, data, tmp_path / "bk")
    assert info.quads == len(before_quads) and info.files == 1 and sorted(info.skipped_secrets) == [
        "secret_key", "users.json"]
    restored = restore(tmp_path / "bk", tmp_path / "restored")
    assert restored["quads"] == len(before_quads)
    assert (tmp_path / "restored" / "features" / "x.npz").read_bytes() == (data / "features" / "x.npz").read_bytes()
    assert not (tmp_path / "restored" / "users.json").exists()
    with kg.open_store(tmp_path / "restored" / "graph") as copy:
        after = quads(copy)
        assert after == before_quads, f"{len(before_quads ^ after)} quads differ"
        assert rankings(copy) == before_rank
    print(f"round trip: {len(before_quads)} quads, {len(before_rank)} rankings equal")


def _small_backup(tmp_path) -> Path:
    store = kg.open_store(tmp_path / "src" / "graph")
    fill(store, n=4)
    backup(store, tmp_path / "src", tmp_path / "bk")
    store.close()
    return tmp_path / "bk"


@pytest.mark.parametrize("damage,expected", [
    (lambda b: (b / "graphs.nq").write_text((b / "graphs.nq").read_text()[:-40]), "checksum mismatch: graphs.nq"),
    (lambda b: (b / "graphs.nq").unlink(), "missing: graphs.nq"),
    (lambda b: (b / "extra.txt").write_text("x"), "not in the manifest: extra.txt"),
    (lambda b: (b / "MANIFEST.sha256").write_text("0" * 64 + "  ../../etc/passwd\n"), "unsafe path"),
    (lambda b: (b / "MANIFEST.sha256").write_text("0" * 64 + "  /etc/passwd\n"), "unsafe path"),
    (lambda b: (b / "MANIFEST.sha256").unlink(), "MANIFEST.sha256 is missing"),
], ids=["truncated", "missing", "extra", "traversal", "absolute", "no-manifest"])
def test_a_damaged_backup_is_refused_and_nothing_is_written(tmp_path, damage, expected):
    folder = _small_backup(tmp_path)
    damage(folder)
    with pytest.raises(InvalidInput, match=expected.replace(".", r"\.")):
        restore(folder, tmp_path / "target")
    assert not (tmp_path / "target").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".target")]  # no half-built folder left


def test_non_empty_target_needs_force(tmp_path):
    folder = _small_backup(tmp_path)
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(InvalidInput, match="not empty"):
        restore(folder, target)
    assert (target / "keep.txt").read_text() == "old"
    restore(folder, target, force=True)
    assert not (target / "keep.txt").exists() and (target / "graph").is_dir()
    with pytest.raises(InvalidInput, match="not empty"):
        backup(kg.open_store(tmp_path / "other"), tmp_path, folder)  # an existing backup is never overwritten


def test_cli_backup_verify_restore(tmp_path):
    data = tmp_path / "data"
    store = kg.open_store(data / "graph")
    fill(store, n=5)
    n = store.count()
    store.close()
    (data / "users.json").write_text("{}")
    runner, cli = CliRunner(), load_commands()
    out = runner.invoke(cli, ["--data-dir", str(data), "backup", str(tmp_path / "bk")])
    assert out.exit_code == 0, out.output
    assert f"backed up {n:,} quads" in out.output and "users.json" in out.output
    manifest = (tmp_path / "bk" / "MANIFEST.sha256").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in manifest) == ["backup.json", "graphs.nq"]
    assert verify(tmp_path / "bk")["quads"] == n
    again = runner.invoke(cli, ["--data-dir", str(data), "backup", str(tmp_path / "bk")])
    assert again.exit_code == 1 and "not empty" in again.output
    out = runner.invoke(cli, ["restore", str(tmp_path / "bk"), "--into", str(tmp_path / "new")])
    assert out.exit_code == 0, out.output
    assert f"restored {n:,} quads" in out.output
    refused = runner.invoke(cli, ["restore", str(tmp_path / "bk"), "--into", str(tmp_path / "new")])
    assert refused.exit_code == 1 and "--force" in refused.output
    ok = runner.invoke(cli, ["--data-dir", str(tmp_path / "new"), "check"])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "bk" / "backup.json").read_text())["include_secrets"] is False
