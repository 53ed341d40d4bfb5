"""semgraph.files.write_atomically: the old content or the new one, never a part, and no temporary file left."""

from __future__ import annotations

import stat

import pytest

from semgraph.files import write_atomically


def test_it_creates_the_folder_and_replaces_the_content(tmp_path):
    path = tmp_path / "a" / "b.json"
    write_atomically(path, lambda f: f.write(b"first"))
    write_atomically(path, lambda f: f.write(b"second"), durable=True)
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.json"]


def test_a_failing_writer_leaves_the_old_content_and_no_temporary_file(tmp_path):
    path = tmp_path / "b.json"
    path.write_bytes(b"old")

    def half(f):
        f.write(b"new but incomp")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(path, half)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]


def test_mode_is_set_before_the_content_is_written(tmp_path):
    path = tmp_path / "secret"
    write_atomically(path, lambda f: f.write(b"key"), mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
