"""Background jobs with progress: a small thread-based runner for long work (batch ingest, training).

Each job reports progress as ``done / total`` with a message; ``GET /api/v1/jobs/<id>`` returns it as JSON and
the jobs page polls it to move a progress bar.

Several server processes (``semgraph serve --workers N``) may share one data folder, each with its own app and
runner. The contract between them:

* The records in ``DATA_DIR/jobs/<id>.json`` are the shared truth. The runner that owns a job rewrites its record
  atomically (temp file + ``os.replace``) after every state change, and :meth:`JobRunner.get` /
  :meth:`JobRunner.list` read the folder, so any process answers for a job run by any other, and the list
  survives a restart.
* A record also names its owner process (pid and, on Linux, its start time; kept out of :meth:`Job.as_dict`). A
  ``queued`` or ``running`` job is reported as ``interrupted`` only when that process is gone (it stopped or
  was killed, or the whole server restarted), never because another process started.
* Jobs run one at a time across all the processes (they write to the same store and data folder, so running them
  in parallel would only make them slower and their writes interleaved): each runner's worker thread holds an
  exclusive ``flock`` on ``jobs/.runner.lock`` while a job runs; a job waiting for it stays ``queued``. Which
  waiting job goes next across processes is not ordered; within one process jobs run in submission order.

Jobs
----
``ingest``
    An uploaded zip of a cohort folder (``manifest.json`` + images + masks, e.g. from ``semgraph cohort generate``)
    is unpacked to ``DATA_DIR/cohorts/<random id>/`` and ingested with :func:`semgraph.exchange.ingest.ingest_manifest`,
    with the latest term model when there is one. Progress: one step per case of the manifest. Before anything is
    written, the upload is refused (400) for an unsafe member name (absolute, ``..``), more than
    :data:`MAX_ZIP_MEMBERS` members, more than :data:`MAX_UNPACKED_BYTES` in all, a member over
    :data:`RATIO_FLOOR` that expands more than :data:`MAX_COMPRESSION_RATIO`:1 (a zip bomb), or an encrypted
    member or a compression other than deflate; while unpacking, the bytes of each member are counted and a member
    that yields more than its header declares, or is damaged, is refused (see :func:`unpack_zip`); so is a zip
    whose ``manifest.json`` cannot be read. A refused upload, or an ingest job that fails before writing a case,
    removes what it unpacked; the folder of a job that wrote cases stays, since they refer to its files.
``train``
    :func:`semgraph.exchange.training.train` on every ingested image case, then :func:`semgraph.exchange.training.annotate` with the new
    model. Progress: three steps (training set, fit, annotate). The term models are shared by every user, so only
    curators and admins may start one (:data:`TRAIN_ROLES`); the others get 403.

When a job finishes the engine and model caches are dropped in every process serving the data folder
(:func:`webapp.engines.invalidate`), so the next search sees the new cases and likelihoods.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import queue
import re
import secrets
import shutil
import tempfile
import threading
import traceback
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.files import write_atomically
from semgraph.users import User

from .auth import Forbidden, current_user

JOBS_DIR = "jobs"
COHORTS_DIR = "cohorts"
KINDS = ("ingest", "train")
#: Who may train the term models (admins too): what they learn changes every user's likelihoods.
TRAIN_ROLES = ("curator",)
#: Most members (files and folders) in a cohort zip: an image and a mask for each of 10,000 cases.
MAX_ZIP_MEMBERS = 20_000
#: Most bytes a cohort zip may unpack to, in all: 1 GiB, about 2,000 cases of 512 x 512 16-bit DICOM slices with
#: their masks. A larger cohort goes in several zips (an ingest skips the cases already in the store).
MAX_UNPACKED_BYTES = 1 << 30
#: Largest ratio of a member's unpacked to its compressed size. Real cohorts compress poorly (DICOM and NIfTI
#: slices about 2:1, PNG masks under 3:1, the manifest 7:1); zeros, what a zip bomb holds, deflate about 1000:1.
MAX_COMPRESSION_RATIO = 100
#: Members of at most this many bytes (1 MiB) are exempt from the ratio check: a small text file may compress well.
RATIO_FLOOR = 1 << 20
#: Compression methods accepted in a cohort zip: Python's zipfile inflates these in bounded chunks.
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_UNPACK_CHUNK = 1 << 20
RUNNER_KEY = "radiology.jobs"
LOCK_FILE = ".runner.lock"
INTERRUPTED = "the server process that ran this job stopped before it finished"
WAITING = "waiting for another job to finish"
_JOB_ID = re.compile(r"[0-9a-f]{1,64}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class Job:
    """One job's public record."""

    job_id: str
    kind: str
    user: str
    state: str = "queued"  # queued | running | done | failed | interrupted
    done: int = 0
    total: int = 0
    message: str = "waiting for the worker"
    result: dict = field(default_factory=dict)
    error: str | None = None
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def percent(self) -> int | None:
        if self.state == "done":
            return 100
        return int(100 * self.done / self.total) if self.total else None

    def as_dict(self) -> dict:
        return dict(asdict(self), percent=self.percent)


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from Linux ``/proc``); None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22; the fields after the command name start at field 3


def _alive(pid: int | None, started: str | None) -> bool:
    """Whether the process that wrote a record (``pid``, started at ``started``) still runs (not a reused pid)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return started is None or _start_time(pid) in (None, started)


class Progress:
    """Handed to a job's work: ``progress.step(message)`` / ``progress.total(n)``."""

    def __init__(self, runner: JobRunner, job: Job):
        self._runner, self._job = runner, job

    def total(self, n: int) -> None:
        self._runner._update(self._job, total=int(n))

    def step(self, message: str | None = None, by: int = 1) -> None:
        fields: dict[str, Any] = {"done": min(self._job.done + by, self._job.total or self._job.done + by)}
        if message:
            fields["message"] = message
        self._runner._update(self._job, **fields)

    def say(self, message: str) -> None:
        self._runner._update(self._job, message=message)


class JobRunner:
    """Runs the jobs submitted to it one at a time in a daemon thread, and one at a time with every other runner
    over ``folder`` (an exclusive lock on ``folder/.runner.lock``); reads and writes job records in ``folder``."""

    def __init__(self, folder: Path, on_finish: Callable[[], None] | None = None):
        self.folder = Path(folder)
        self.on_finish = on_finish
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="semgraph-jobs", daemon=True)
        self._thread.start()

    def _read(self, path: Path) -> Job | None:
        """The record in ``path`` (``interrupted`` if its owner process is gone); None when missing or unreadable."""
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            pid, started = record.pop("owner_pid", None), record.pop("owner_started", None)
            job = Job(**record)
        except (OSError, ValueError, TypeError, AttributeError):
            return None
        if job.state in ("queued", "running") and not _alive(pid, started):
            job.state, job.message = "interrupted", INTERRUPTED
        return job

    def _save(self, job: Job) -> None:
        pid = os.getpid()
        record = json.dumps(dict(asdict(job), owner_pid=pid, owner_started=_start_time(pid))).encode("utf-8")
        write_atomically(self.folder / f"{job.job_id}.json", lambda handle: handle.write(record))

    def _update(self, job: Job, **fields) -> None:
        with self._lock:
            for key, value in fields.items():
                setattr(job, key, value)
            self._save(job)

    def submit(self, kind: str, user: str, work: Callable[[Progress], dict]) -> Job:
        """Queue ``work(progress) -> result dict``; returns the job record at once."""
        if kind not in KINDS:
            raise InvalidInput(f"unknown job kind {kind!r}; use one of {', '.join(KINDS)}")
        job = Job(secrets.token_hex(8), kind, user)
        with self._lock:
            self._save(job)
        self._queue.put((job, work))
        return job

    def get(self, job_id: str) -> Job:
        """The record of job ``job_id``, whichever process runs it."""
        job = self._read(self.folder / f"{job_id}.json") if _JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return job

    def list(self) -> list[Job]:
        """Every job's record, newest first."""
        jobs = (self._read(path) for path in self.folder.glob("[!.]*.json"))
        return sorted((job for job in jobs if job is not None), key=lambda j: j.created_at, reverse=True)

    @contextlib.contextmanager
    def _turn(self, job: Job) -> Iterator[None]:
        """Hold the folder's job lock (waiting, with ``job`` saying so, while another runner's job runs)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LOCK_FILE, "a") as handle:  # closing it releases the lock
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._update(job, message=WAITING)
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _work(self) -> None:
        while True:
            job, work = self._queue.get()
            try:
                with self._turn(job):
                    self._run(job, work)
            finally:
                if self.on_finish is not None:
                    try:
                        self.on_finish()
                    except Exception:  # noqa: BLE001
                        traceback.print_exc()

    def _run(self, job: Job, work: Callable[[Progress], dict]) -> None:
        self._update(job, state="running", started_at=_now(), message="started")
        try:
            result = work(Progress(self, job))
            self._update(job, state="done", result=result or {}, finished_at=_now(),
                         message=(result or {}).get("summary", "finished"), done=job.total or job.done)
        except SemgraphError as exc:
            self._update(job, state="failed", error=exc.message, finished_at=_now(), message="failed")
        except Exception as exc:  # noqa: BLE001 - a job must never kill the worker; the log has the trace
            traceback.print_exc()
            self._update(job, state="failed", error=f"unexpected error: {type(exc).__name__}",
                         finished_at=_now(), message="failed")


# --------------------------------------------------------------------------------------------------- the jobs


def check_members(members: list[zipfile.ZipInfo]) -> None:
    """Refuse a zip, from the sizes its central directory declares, with more than :data:`MAX_ZIP_MEMBERS` members,
    a member encrypted or compressed with a method not in :data:`ZIP_METHODS`, a member over :data:`RATIO_FLOOR`
    bytes that expands more than :data:`MAX_COMPRESSION_RATIO`:1, or more than :data:`MAX_UNPACKED_BYTES` in all
    (:class:`InvalidInput` naming the limit)."""
    if len(members) > MAX_ZIP_MEMBERS:
        raise InvalidInput(f"the zip holds {len(members):,} files, over the limit of {MAX_ZIP_MEMBERS:,}; "
                           "split the cohort into several zips")
    for member in members:
        if member.compress_type not in ZIP_METHODS:
            raise InvalidInput(f"{member.filename} is compressed with method {member.compress_type}; use deflate "
                               "(or no compression)")
        if member.flag_bits & 0x1:
            raise InvalidInput(f"{member.filename} is encrypted; upload a zip without a password")
        if member.file_size > max(RATIO_FLOOR, MAX_COMPRESSION_RATIO * member.compress_size):
            ratio = member.file_size / max(member.compress_size, 1)
            raise InvalidInput(f"{member.filename} expands {member.file_size:,} bytes from {member.compress_size:,} "
                               f"({ratio:.0f}:1), over the limit of {MAX_COMPRESSION_RATIO}:1 for a file over "
                               f"{RATIO_FLOOR >> 20} MB; images compress far less than that")
    total = sum(member.file_size for member in members)
    if total > MAX_UNPACKED_BYTES:
        raise InvalidInput(f"the zip unpacks to {total:,} bytes, over the limit of {MAX_UNPACKED_BYTES / 2**30:g} GiB; "
                           "split the cohort into several zips (an ingest skips the cases already in the store)")


def _destination(root: Path, name: str) -> Path:
    """Where member ``name`` unpacks under ``root`` (resolved); :class:`InvalidInput` if that is outside it."""
    destination = (root / name).resolve()
    if (name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name
            or (root not in destination.parents and destination != root)):
        raise InvalidInput(f"the zip holds an unsafe path {name!r}")
    return destination


def _extract(archive: zipfile.ZipFile, member: zipfile.ZipInfo, destination: Path) -> None:
    """Write ``member`` to ``destination`` a chunk at a time, counting its bytes: :class:`InvalidInput` as soon as
    it yields more than its header declares, or when it is damaged. So a zip that passed :func:`check_members`
    writes at most :data:`MAX_UNPACKED_BYTES`, whatever its members hold."""
    written = 0
    try:
        with archive.open(member) as source, open(destination, "wb") as target:
            while chunk := source.read(_UNPACK_CHUNK):
                written += len(chunk)
                if written > member.file_size:
                    raise InvalidInput(f"{member.filename} holds more than the {member.file_size:,} bytes its header "
                                       "declares; the zip is damaged or forged")
                target.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InvalidInput(f"{member.filename} is damaged ({exc}); create the zip again") from None


def unpack_zip(source, target: Path) -> Path:
    """Unpack an uploaded zip into ``target`` safely; return the folder holding ``manifest.json``.

    Every member name and the declared sizes (:func:`check_members`) are checked before anything is written; each
    member is then written a chunk at a time and refused past its declared size (:func:`_extract`). On an error
    part of the zip may be unpacked: the caller removes ``target``.
    """
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise InvalidInput("the upload is not a zip file") from None
    with archive:
        members = archive.infolist()
        check_members(members)
        root = target.resolve()
        destinations = [_destination(root, member.filename) for member in members]
        target.mkdir(parents=True, exist_ok=True)
        for member, destination in zip(members, destinations, strict=True):
            try:
                if member.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    _extract(archive, member, destination)
            except OSError as exc:  # a member named like a file unpacked before it, say
                raise InvalidInput(f"{member.filename} cannot be unpacked ({exc.strerror})") from None
    manifests = sorted(target.rglob("manifest.json"), key=lambda p: len(p.parts))
    if not manifests:
        raise InvalidInput("the zip holds no manifest.json (zip the folder written by `semgraph cohort generate`)")
    return manifests[0].parent


def ingest_work(svc, manifest, unpacked: Path) -> Callable[[Progress], dict]:
    """The work of an ingest job over ``manifest`` (:func:`semgraph.cohort.read_manifest`), unpacked under
    ``unpacked``.

    If it fails before it begins writing a case, it removes ``unpacked``; once a case may have been written, the
    folder stays (the case refers to its files; running the job again skips the cases written).
    """
    def work(progress: Progress) -> dict:
        from semgraph.exchange.ingest import ingest_manifest
        from semgraph.exchange.saved_models import latest_model

        progress.total(len(manifest.cases))
        seen: list[str] = []

        def on_case(case_id: str) -> None:
            if seen:
                progress.step(f"ingested {seen[-1]}")
            seen.append(case_id)

        try:
            model = latest_model(svc.config.data_dir)
            report = ingest_manifest(svc.store, manifest, svc.config.data_dir, model=model, progress=False,
                                     on_case=on_case)
        except BaseException:
            if not seen:
                shutil.rmtree(unpacked, ignore_errors=True)
            raise
        return {"summary": report.summary(), "ingested": len(report.ingested), "skipped": len(report.skipped),
                "failed": [{"case_id": c, "reason": r} for c, r in report.failed],
                "folder": str(manifest.path.parent), "model": getattr(model, "version_", None)}
    return work


def train_work(svc) -> Callable[[Progress], dict]:
    """The work of a training job: train term models, then annotate every image case with them."""
    def work(progress: Progress) -> dict:
        from semgraph.exchange.training import annotate, train, training_set

        progress.total(3)
        progress.say("reading the training set")
        data = training_set(svc.store, svc.config.data_dir)
        progress.step(f"fitting term models on {len(data.case_ids)} cases")
        model, _ = train(svc.store, svc.config.data_dir, data=data)
        progress.step(f"model {model.version_} trained; annotating the cases")
        report = annotate(svc.store, svc.config.data_dir, model, progress=False)
        progress.step("annotated")
        summary = (f"trained {len(model.terms_)} term models on {len(data.case_ids)} cases (model {model.version_}); "
                   f"re-annotated {len(report.ingested)} cases")
        if report.failed:
            summary += f", {len(report.failed)} could not be (features of another configuration)"
        return {"summary": summary, "model": model.version_, "cases": len(data.case_ids),
                "terms": len(model.terms_), "annotated": len(report.ingested), "not_annotated": len(report.failed)}
    return work


def runner(svc) -> JobRunner:
    """The app's job runner (created on first use)."""
    from . import engines

    with _runner_lock:
        existing = svc.cache.get(RUNNER_KEY)
        if existing is None:
            existing = svc.cache[RUNNER_KEY] = JobRunner(Path(svc.config.data_dir) / JOBS_DIR,
                                                         on_finish=lambda: engines.invalidate(svc))
        return existing


_runner_lock = threading.Lock()


def start_ingest(svc, upload, user: str) -> Job:
    """Check and unpack an uploaded cohort zip and read its manifest now (errors reach the user at once, and
    nothing unpacked is kept), then queue its ingest."""
    if upload is None or not upload.filename:
        raise InvalidInput("choose a zip of a cohort folder (manifest.json, images/, masks/) to upload")
    if not upload.filename.lower().endswith(".zip"):
        raise InvalidInput("upload the cohort folder as a .zip file")
    target = Path(svc.config.data_dir) / COHORTS_DIR / secrets.token_hex(8)
    with tempfile.TemporaryFile() as spooled:
        upload.save(spooled)
        spooled.seek(0)
        try:
            manifest = _read_manifest(unpack_zip(spooled, target))
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
    return runner(svc).submit("ingest", user, ingest_work(svc, manifest, target))


def _read_manifest(folder: Path):
    """The cohort manifest of the unpacked ``folder`` (:class:`InvalidInput` for a malformed one)."""
    from semgraph.cohort import read_manifest

    try:
        return read_manifest(folder / "manifest.json")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a field missing or of the wrong type
        raise InvalidInput(f"manifest.json is not a semgraph cohort manifest ({type(exc).__name__}: {exc})") \
            from None


def may_train(user: User | None) -> bool:
    """Whether ``user`` may start a training job (:data:`TRAIN_ROLES` or admin)."""
    return user is not None and user.has_role(*TRAIN_ROLES)


def start_training(svc, user: str) -> Job:
    """Queue a training job for ``user``, the logged-in user; 403 unless :func:`may_train`."""
    who = current_user()
    if not may_train(who):
        raise Forbidden("training the term models needs the curator or admin role: the models are shared, so a new "
                        "one changes every user's term likelihoods. Ask a curator to train; you are "
                        + (f"{who.name} ({who.role})" if who else "not logged in"))
    return runner(svc).submit("train", user, train_work(svc))
