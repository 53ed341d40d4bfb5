"""Writing a file so that readers see the old content or the new one, never a part of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomically"]


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
