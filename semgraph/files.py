"""Safe file handling shared by the package.

- :func:`write_atomically`: readers see the old content or the new one, never a part of it.
- :func:`data_file`: a file path recorded in the graph (``sg:imageFile``, ``sg:maskFile``), confined to the data
  folder.
- :func:`spreadsheet_cell` / :func:`csv_text`: CSV that no spreadsheet evaluates as formulas.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

from semgraph.errors import InvalidInput

__all__ = ["FORMULA_STARTS", "csv_text", "data_file", "spreadsheet_cell", "write_atomically"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_Cell = TypeVar("_Cell")


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object], *, durable: bool = False,
                     mode: int | None = None) -> None:
    """Create or replace ``path`` with what ``write(binary file)`` writes: a temporary file in the same folder
    (created when missing), renamed over ``path`` with :func:`os.replace`; on any error the temporary file is
    removed and ``path`` is untouched.

    ``durable`` flushes the data to disk (``fsync``) before the rename; ``mode`` sets the permissions first (e.g.
    ``0o600`` for a file of secrets).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def data_file(recorded: str, data_dir: str | os.PathLike) -> Path:
    """The absolute, symlink-free path of the file that ``recorded`` (a ``sg:imageFile`` / ``sg:maskFile`` value of
    the graph) names, which must lie inside the data folder ``data_dir``.

    A relative path is taken relative to ``data_dir``; an absolute one (``semgraph ingest`` records the manifest's
    paths resolved to absolute ones) as it is. Symbolic links are resolved in both; the result must be below the
    resolved data folder, else :class:`~semgraph.errors.InvalidInput` ("... is outside the data folder ..."), as
    for a path that cannot be resolved. Whether the file exists is left to the caller; nothing is read.
    """
    root = Path(data_dir).resolve()
    try:
        path = (root / recorded).resolve()
    except (OSError, ValueError, RuntimeError) as e:  # NUL byte, symbolic link loop
        raise InvalidInput(f"{recorded!r} is not a usable path ({e})") from None
    if root not in path.parents:
        raise InvalidInput(f"{recorded!r} is outside the data folder {root}")
    return path


def spreadsheet_cell(value: _Cell) -> _Cell | str:
    """``value`` as a CSV cell that no spreadsheet evaluates as a formula.

    Rule: a text that starts with one of :data:`FORMULA_STARTS` (``=``, ``+``, ``-``, ``@``, tab, carriage return)
    and is not a plain decimal number gets a leading apostrophe, which spreadsheets take as "this cell is text"
    (``=cmd|' /C calc'!A0`` → ``'=cmd|' /C calc'!A0``, ``-2+3`` → ``'-2+3``). A decimal number such as ``-0.25``
    or ``+1.5e-3`` is data and stays as it is, as does any value that is not text (numbers, None) and any other
    text.

    Every CSV export writes its cells through this rule (:func:`csv_text`): the learned-relations CSV of
    ``semgraph export`` and ``/research/export.csv``. It is deliberately not applied to the SPARQL results CSV and
    TSV of ``/sparql`` and ``semgraph sparql`` (W3C data-exchange formats that must give back the exact values; they
    are not spreadsheet exports).
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _DECIMAL.fullmatch(value):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """CSV text (``\\n`` line ends, minimal quoting) of ``rows``, every cell passed through :func:`spreadsheet_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([spreadsheet_cell(cell) for cell in row])
    return out.getvalue()
