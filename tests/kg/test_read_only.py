"""Who may open an embedded store folder at once, checked with real processes: any number of read-only openers,
or one writer; a writer excludes every other open, a read-only opener excludes writers (see :mod:`kg.embedded`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import URIRef

import kg
from kg import StoreLockedError
from kg.embedded import SHARED_READERS

pytestmark = pytest.mark.skipif(not SHARED_READERS, reason="read-only opens share a folder only on Linux")

G = "https://example.org/graph/one"
INSERT = "INSERT DATA { GRAPH $g { <https://example.org/s> <https://example.org/p> $v } }"

# Opens the folder argv[1] (argv[2]: "read" or "write"), prints "OPEN <triples>", then answers each input line
# ("count", or "write <value>") with "COUNT <triples>" until its input ends; then closes the store.
HOLDER = textwrap.dedent(f"""
    import sys
    from rdflib import URIRef
    import kg
    store = kg.open_store(sys.argv[1], read_only=sys.argv[2] == "read")
    print("OPEN", store.count(), flush=True)
    for line in sys.stdin:
        if line.startswith("write "):
            store.update({INSERT!r}, {{"g": URIRef({G!r}), "v": line.split()[1]}})
        print("COUNT", store.count(), flush=True)
    store.close()
""")


class Holder:
    """A process holding the store folder open (see :data:`HOLDER`)."""

    def __init__(self, folder: Path, mode: str):
        self.process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), mode], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().split()
        if line[:1] != ["OPEN"]:
            self.process.kill()
            raise AssertionError(f"the {mode} holder did not open the folder: {self.process.stderr.read()[-2000:]}")
        self.count = int(line[1])

    def ask(self, line: str) -> int:
        """Send ``line``; the number of triples the holder then sees."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().split()
        assert answer[:1] == ["COUNT"], self.process.stderr.read()[-2000:]
        return int(answer[1])

    def close(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0, self.process.stderr.read()[-2000:]


@contextmanager
def holding(folder: Path, mode: str) -> Iterator[Holder]:
    holder = Holder(folder, mode)
    try:
        yield holder
    finally:
        if holder.process.poll() is None:
            holder.close()


@pytest.fixture
def folder(tmp_path) -> Path:
    path = tmp_path / "graph"
    with kg.open_store(path) as store:
        store.update(INSERT, {"g": URIRef(G), "v": "one"})
    return path


def _writable_open_fails_in_another_process(folder: Path) -> str:
    """Try a writable open of ``folder`` in a new process; return its StoreLockedError message."""
    code = textwrap.dedent(f"""
        import kg
        try:
            kg.open_store({str(folder)!r}).close()
        except kg.StoreLockedError as exc:
            print("LOCKED", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("LOCKED"), out.stdout + out.stderr
    return out.stdout


def test_read_only_opens_in_two_processes_at_once_both_succeed(folder):
    with holding(folder, "read") as first, holding(folder, "read") as second:
        assert first.count == second.count == 1
        with kg.open_store(folder, read_only=True) as third:  # and a third, in this process
            assert third.count(G) == 1
        assert first.ask("count") == second.ask("count") == 1
        assert "read-only" in _writable_open_fails_in_another_process(folder)
    with kg.open_store(folder) as store:  # the readers have gone: a writer may open it
        store.update(INSERT, {"g": URIRef(G), "v": "two"})
        assert store.count(G) == 2


def test_read_only_open_while_another_process_writes_fails_and_names_the_endpoint(folder):
    with holding(folder, "write") as writer:
        with pytest.raises(StoreLockedError) as caught:
            kg.open_store(folder, read_only=True)
        message = str(caught.value)
        assert "already open in another process, for writing" in message
        assert f"process {writer.process.pid}" in message
        assert "semgraph sparql --endpoint http://HOST:PORT/sparql" in message
        assert writer.ask("write two") == 2  # the writer is unaffected
    with kg.open_store(folder, read_only=True) as reader:  # once it has closed, readers see all it wrote
        assert reader.count(G) == 2


def test_writable_open_while_another_process_reads_fails_and_the_reader_is_unaffected(folder):
    with holding(folder, "read") as reader:
        with pytest.raises(StoreLockedError, match="already open in another process .*read-only"):
            kg.open_store(folder)
        with pytest.raises(OSError, match="lock"):  # a writer that does not go through kg is kept out as well
            ox.Store(str(folder))
        assert reader.ask("count") == 1
    with kg.open_store(folder) as store:
        store.update(INSERT, {"g": URIRef(G), "v": "two"})


def test_a_failed_read_only_open_in_the_writing_process_leaves_its_lock_alone(folder):
    """POSIX drops a process's locks on a file when it closes any descriptor of it: the failed reader's must not."""
    with kg.open_store(folder) as writer:
        with pytest.raises(StoreLockedError, match="already open for writing in this process"):
            kg.open_store(folder, read_only=True)
        assert "for writing" in _writable_open_fails_in_another_process(folder)
        writer.update(INSERT, {"g": URIRef(G), "v": "two"})


def test_a_writable_open_fails_while_this_process_reads(folder):
    reader = kg.open_store(folder, read_only=True)
    with pytest.raises(StoreLockedError, match="read-only"):
        kg.open_store(folder)
    reader.close()
    kg.open_store(folder).close()


def test_a_checkpoint_opens_read_only(folder, tmp_path):
    with kg.open_store(folder) as store:
        store.checkpoint(tmp_path / "copy")
    assert not (tmp_path / "copy" / "LOCK").exists()
    with kg.open_store(tmp_path / "copy", read_only=True) as copy:
        assert copy.count(G) == 1
