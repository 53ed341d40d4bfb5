"""Backup and restore: every named graph as N-Quads plus the data folder's files, with a SHA-256 manifest.

A backup folder::

    OUT_DIR/
      graphs.nq         every quad of every named graph, from one consistent read of the store (Store.dump_quads)
      files/...         the data folder's files (features/, models/, cohort ..., not the store folder itself)
      backup.json       when, from where, how many quads per graph, whether secrets are included
      MANIFEST.sha256   "<sha256>  <path>" for every file above (``sha256sum -c`` can check it)

``users.json`` (scrypt password hashes) and ``secret_key`` (signs login cookies) are left out unless
``include_secrets=True``: a backup is often copied to places with weaker access control than the server. Without
them a restored folder needs its users added again (``semgraph user add``) and gets a new cookie key (everyone
logs in again). The backup is written to a temporary sibling folder and renamed into place when complete.

:func:`restore` checks every checksum first (a missing, extra, changed or path-escaping file is an error and
nothing is written), builds a new data folder with an embedded store beside the target, and only then renames it
into place; an existing non-empty target is refused unless ``force=True`` (it is then moved aside and removed only
after the new folder is in place).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import kg
from kg import Store
from semgraph.errors import InvalidInput, SemgraphError

__all__ = ["SECRET_FILES", "BackupInfo", "backup", "restore", "verify"]

GRAPHS_FILE = "graphs.nq"
MANIFEST_FILE = "MANIFEST.sha256"
INFO_FILE = "backup.json"
FILES_DIR = "files"
#: Data-folder files holding secrets, left out unless ``include_secrets``.
SECRET_FILES = ("users.json", "secret_key")
FORMAT_VERSION = 1
_CHUNK = 1 << 20


@dataclass
class BackupInfo:
    """What a backup holds (the content of ``backup.json``)."""

    path: Path
    quads: int
    graphs: dict[str, int]
    files: int
    include_secrets: bool
    skipped_secrets: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _data_files(data_dir: Path, store_location: str, include_secrets: bool, skipped: list[str]) -> Iterator[Path]:
    """Files of the data folder to back up (relative paths), without the embedded store folder."""
    if not data_dir.is_dir():
        return
    store_dir = None if store_location.startswith(("http://", "https://")) else Path(store_location)
    for root, dirs, names in os.walk(data_dir):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if store_dir is None or not _inside(here / d, store_dir))
        for name in sorted(names):
            rel = (here / name).relative_to(data_dir)
            if name.endswith(".tmp") or (here / name).is_symlink():
                continue
            if rel.as_posix() in SECRET_FILES and not include_secrets:
                skipped.append(rel.as_posix())
                continue
            yield rel


def backup(store: Store, data_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
           include_secrets: bool = False) -> BackupInfo:
    """Write a backup of ``store`` and the files of ``data_dir`` to the new folder ``out_dir`` (see module doc).

    Raises :class:`InvalidInput` if ``out_dir`` exists and is not empty.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} exists and is not empty; choose a new folder for the backup")
    out.parent.mkdir(parents=True, exist_ok=True)
    data = Path(data_dir)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        graphs = store.dump_quads(work / GRAPHS_FILE)
        skipped: list[str] = []
        files = 0
        for rel in _data_files(data, store.location, include_secrets, skipped):
            target = work / FILES_DIR / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(data / rel, target)
            files += 1
        info = {"format": FORMAT_VERSION, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "store": store.location, "data_dir": str(data.resolve()), "quads": sum(graphs.values()),
                "graphs": graphs, "files": files, "include_secrets": include_secrets,
                "skipped_secrets": skipped}
        (work / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        entries = [(_sha256(p), p.relative_to(work).as_posix()) for p in sorted(work.rglob("*")) if p.is_file()]
        (work / MANIFEST_FILE).write_text("".join(f"{h}  {rel}\n" for h, rel in entries), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupInfo(out, info["quads"], graphs, files, include_secrets, skipped)


def _safe_relative(text: str) -> PurePosixPath:
    rel = PurePosixPath(text)
    if not text or rel.is_absolute() or ".." in rel.parts or "\\" in text or text.startswith("~"):
        raise InvalidInput(f"the manifest names an unsafe path {text!r}; the backup is not trusted")
    return rel


def verify(backup_dir: str | os.PathLike) -> dict:
    """Check every checksum of a backup; return its ``backup.json``. Raises :class:`InvalidInput` on any mismatch."""
    folder = Path(backup_dir)
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        raise InvalidInput(f"{folder} is not a semgraph backup: {MANIFEST_FILE} is missing")
    listed: dict[str, str] = {}
    for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InvalidInput(f"{manifest}, line {n}: not '<sha256>  <path>'")
        listed[_safe_relative(name).as_posix()] = digest
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
    present.discard(MANIFEST_FILE)
    problems = [f"missing: {name}" for name in sorted(set(listed) - present)]
    problems += [f"not in the manifest: {name}" for name in sorted(present - set(listed))]
    for name in sorted(set(listed) & present):
        path = folder / name
        if path.is_symlink() or not _inside(path, folder):
            problems.append(f"not a regular file: {name}")
        elif _sha256(path) != listed[name]:
            problems.append(f"checksum mismatch: {name}")
    for required in (GRAPHS_FILE, INFO_FILE):
        if required not in listed:
            problems.append(f"missing: {required}")
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise InvalidInput(f"the backup {folder} failed verification, nothing was restored: " + "; ".join(shown))
    try:
        return json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInput(f"{folder / INFO_FILE} is not JSON: {exc}") from exc


def restore(backup_dir: str | os.PathLike, into: str | os.PathLike, *, force: bool = False) -> dict:
    """Restore a backup into the data folder ``into`` (its store at ``into/graph``); return the backup's info.

    The checksums are verified first; the new folder is built beside ``into`` and renamed into place.
    """
    folder = Path(backup_dir)
    info = verify(folder)
    target = Path(into)
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not force:
        raise InvalidInput(f"{target} exists and is not empty; restore into a new folder or pass --force "
                           "(the old folder is then replaced)")
    if _inside(target, folder) or _inside(folder, target):
        raise InvalidInput("the backup and the restore target must not contain each other")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.restoring-", dir=target.parent))
    try:
        files = folder / FILES_DIR
        if files.is_dir():
            shutil.copytree(files, work, dirs_exist_ok=True)
        store = kg.open_store(work / "graph")
        try:
            store.bulk_load(folder / GRAPHS_FILE, format="nquads")  # a new folder, discarded on any failure
            if store.count() != info.get("quads"):
                raise SemgraphError(f"the restored store holds {store.count():,} quads, the backup "
                                    f"{info.get('quads')!r}; nothing was replaced")
        finally:
            store.close()
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
            os.replace(target, old)
        os.replace(work, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return info
