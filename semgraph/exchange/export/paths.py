"""Where an export file may be written: inside the export folder, whatever name the user gave."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from semgraph.errors import InvalidInput

__all__ = ["safe_export_path"]

_MAX_NAME = 200


def safe_export_path(folder, name: str) -> Path:
    """The path of the export file ``name`` inside ``folder``; ``InvalidInput`` if it would leave the folder.

    ``name`` must be a relative file name (sub-folders allowed) without ``..`` parts, an absolute path, a drive,
    control characters or a trailing separator; the resolved path (symbolic links followed) must stay inside
    ``folder``. Nothing is created here.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("the export needs a file name")
    if len(name) > _MAX_NAME or any(ord(ch) < 32 or ch == "\x7f" for ch in name):
        raise InvalidInput(f"invalid export file name {name!r}: at most {_MAX_NAME} printable characters")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or name.startswith(("/", "\\", "~")):
        raise InvalidInput(f"invalid export file name {name!r}: give a name relative to the export folder "
                           f"{folder}, not an absolute path")
    parts = name.replace("\\", "/").split("/")
    if any(p in ("..", ".", "") for p in parts):
        raise InvalidInput(f"invalid export file name {name!r}: '..', '.' and empty path parts are not allowed "
                           f"(the file must stay inside the export folder {folder})")
    base = Path(folder).resolve()
    target = (base / Path(*parts)).resolve()
    if target == base or base not in target.parents:
        raise InvalidInput(f"invalid export file name {name!r}: it points outside the export folder {base}")
    return target
