"""The image and mask files an ingest records: always inside the data folder, copied there when outside it.

The store only ever names files inside the data folder (the web app and ``semgraph check`` read nothing else,
:func:`semgraph.files.data_file`). :func:`keep_in_data_folder` is the one rule for every ingest that records files.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from semgraph.errors import InvalidInput, NotFound
from semgraph.files import data_file, write_atomically
from semgraph.graph.casegraph import case_iri

__all__ = ["IMAGES_DIR", "case_files_dir", "inside_data_folder", "keep_in_data_folder", "remove_copies"]

#: Where ingest copies the image and mask files that are outside the data folder: ``DATA_DIR/images/<case id>/``.
IMAGES_DIR = "images"
#: A case id used as it is for its folder under ``DATA_DIR/images``; any other id gets the SHA-1 of its case IRI.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_COPY_CHUNK = 1 << 20


def case_files_dir(data_dir, case_id: str) -> Path:
    """``DATA_DIR/images/<case id>``: where :func:`keep_in_data_folder` copies a case's files (the SHA-1 of the case
    IRI instead of the id when the id is not a plain file name: letters, digits, ``.``, ``_``, ``-``)."""
    name = case_id if _PLAIN_NAME.fullmatch(case_id) else hashlib.sha1(str(case_iri(case_id)).encode()).hexdigest()
    return Path(data_dir) / IMAGES_DIR / name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_COPY_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def keep_in_data_folder(path, data_dir, case_id: str, *, what: str = "file", copy: bool = True,
                        copied: list[Path] | None = None) -> str:
    """What to record (``sg:imageFile`` / ``sg:maskFile``) for the file ``path`` of case ``case_id``: a path inside
    the data folder ``data_dir``, as :func:`semgraph.files.data_file` requires.

    * ``path`` inside the data folder (symbolic links resolved): recorded where it is, relative to the data folder
      (the graph is readable by everyone through ``/sparql``: it must not show where the server keeps its files;
      stores written before this keep their absolute paths, which every reader still resolves).
    * ``path`` outside it: copied to ``DATA_DIR/images/<case id>/<its name>`` (:func:`case_files_dir`; a temporary
      file renamed into place, so an interruption leaves no half file) and recorded relative to the data folder
      (``images/<case id>/<name>``: still valid when the data folder is moved or restored from a backup). A file of
      the same content already there is reused and nothing is written, so a re-run copies nothing; a different file
      of that name is never overwritten: the copy is then named ``<16 hex digits of its SHA-256>-<name>``. Each copy
      written is appended to ``copied``.
    * ``copy=False``: a file outside is refused (:class:`InvalidInput` "<what> ... is outside the data folder")
      before it is read.
    """
    root = Path(data_dir).resolve()
    source = Path(os.path.abspath(path))
    try:
        return data_file(str(source), root).relative_to(root).as_posix()
    except InvalidInput as exc:
        if not copy:
            raise InvalidInput(f"{what} {exc.message}; a manifest inside the data folder may only name files inside "
                               "it") from None
    if not source.is_file():
        raise NotFound(f"{what} {source} does not exist or is not a regular file")
    folder = case_files_dir(root, case_id)
    target = folder / source.name
    if target.exists() and not filecmp.cmp(source, target, shallow=False):
        target = folder / f"{_sha256(source)[:16]}-{source.name}"
    if not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
        with open(source, "rb") as src:
            write_atomically(target, lambda f: shutil.copyfileobj(src, f, _COPY_CHUNK))
        if copied is not None:
            copied.append(target)
    return target.relative_to(root).as_posix()


def remove_copies(copies: Iterable[Path]) -> None:
    """Remove the files copied for a case that then failed (and its folder when that leaves it empty)."""
    for path in copies:
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:  # not empty: other files of the case are still there
            pass


def inside_data_folder(path, data_dir) -> bool:
    """Whether ``path`` (symbolic links resolved) is inside the data folder ``data_dir``."""
    try:
        data_file(os.path.abspath(path), data_dir)
        return True
    except InvalidInput:
        return False
