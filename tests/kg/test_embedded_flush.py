"""The embedded store flushes its write buffers to disk every FLUSH_AFTER_WRITES writes, without blocking writers."""

from __future__ import annotations

import time

import kg
from kg.embedded import FLUSH_AFTER_WRITES


def _table_files(folder) -> set[str]:
    return {p.name for p in folder.glob("*.sst")}


def test_writes_are_flushed_to_table_files_in_the_background(tmp_path):
    folder = tmp_path / "graph"
    store = kg.open_store(folder)
    try:
        before = _table_files(folder)
        for i in range(FLUSH_AFTER_WRITES - 1):
            store.update("INSERT DATA { GRAPH <urn:g> { <urn:s> <urn:p> $i } }", {"i": i})
        time.sleep(1)
        assert _table_files(folder) == before  # below the threshold nothing is flushed
        store.update("INSERT DATA { GRAPH <urn:g> { <urn:s> <urn:p> $i } }", {"i": -1})
        deadline = time.monotonic() + 60
        while _table_files(folder) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _table_files(folder) - before, "no table file was written after the threshold"
        assert store.count("urn:g") == FLUSH_AFTER_WRITES
    finally:
        store.close()
    with kg.open_store(folder) as reopened:
        assert reopened.count("urn:g") == FLUSH_AFTER_WRITES
