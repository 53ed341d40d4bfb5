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
    is unpacked to ``DATA_DIR/cohorts/<job id>/`` (member names checked: no absolute paths, no ``..``; size and
    member count bounded) and ingested with :func:`semgraph.ingest.ingest`, with the latest term model when there
    is one. Progress: one step per case of the manifest.
``train``
    :func:`semgraph.ingest.train` on every ingested image case, then :func:`semgraph.ingest.annotate` with the new
    model. Progress: three steps (training set, fit, annotate).

When a job finishes the engine and model caches are dropped in every process serving the data folder
(:func:`webapp.workbench.invalidate`), so the next search sees the new cases and likelihoods.
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
import tempfile
import threading
import traceback
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from semgraph.errors import InvalidInput, NotFound, SemgraphError
from semgraph.files import write_atomically

JOBS_DIR = "jobs"
COHORTS_DIR = "cohorts"
KINDS = ("ingest", "train")
MAX_ZIP_MEMBERS = 200_000
MAX_UNPACKED_BYTES = 4 * 1024 ** 3
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


def unpack_zip(source, target: Path) -> Path:
    """Unpack an uploaded zip into ``target`` safely; return the folder holding ``manifest.json``."""
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise InvalidInput("the upload is not a zip file") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise InvalidInput(f"the zip has more than {MAX_ZIP_MEMBERS} files")
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise InvalidInput("the zip unpacks to more than 4 GB")
        root = target.resolve()
        for member in members:
            name = member.filename
            if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name:
                raise InvalidInput(f"the zip holds an unsafe path {name!r}")
            destination = (root / name).resolve()
            if root not in destination.parents and destination != root:
                raise InvalidInput(f"the zip holds an unsafe path {name!r}")
        target.mkdir(parents=True, exist_ok=True)
        archive.extractall(target)
    manifests = sorted(target.rglob("manifest.json"), key=lambda p: len(p.parts))
    if not manifests:
        raise InvalidInput("the zip holds no manifest.json (zip the folder written by `semgraph cohort generate`)")
    return manifests[0].parent


def ingest_work(svc, folder: Path) -> Callable[[Progress], dict]:
    """The work of an ingest job over an unpacked cohort folder."""
    def work(progress: Progress) -> dict:
        from semgraph.cohort import read_manifest
        from semgraph.ingest import ingest, latest_model

        manifest = read_manifest(folder / "manifest.json")
        progress.total(len(manifest.cases))
        model = latest_model(svc.config.data_dir)
        seen: list[str] = []

        def on_case(case_id: str) -> None:
            if seen:
                progress.step(f"ingested {seen[-1]}")
            seen.append(case_id)

        report = ingest(svc.store, folder, svc.config.data_dir, model=model, progress=False, on_case=on_case)
        return {"summary": report.summary(), "ingested": len(report.ingested), "skipped": len(report.skipped),
                "failed": [{"case_id": c, "reason": r} for c, r in report.failed], "folder": str(folder),
                "model": getattr(model, "version_", None)}
    return work


def train_work(svc) -> Callable[[Progress], dict]:
    """The work of a training job: train term models, then annotate every image case with them."""
    def work(progress: Progress) -> dict:
        from semgraph.ingest import annotate, train, training_set

        progress.total(3)
        progress.say("reading the training set")
        data = training_set(svc.store, svc.config.data_dir)
        progress.step(f"fitting term models on {len(data.case_ids)} cases")
        model, _ = train(svc.store, svc.config.data_dir, data=data)
        progress.step(f"model {model.version_} trained; annotating the cases")
        report = annotate(svc.store, svc.config.data_dir, model, progress=False)
        progress.step("annotated")
        return {"summary": f"model {model.version_} trained on {len(data.case_ids)} cases; {report.summary()}",
                "model": model.version_, "cases": len(data.case_ids), "annotated": len(report.ingested)}
    return work


def runner(svc) -> JobRunner:
    """The app's job runner (created on first use)."""
    from . import workbench

    with _runner_lock:
        existing = svc.cache.get(RUNNER_KEY)
        if existing is None:
            existing = svc.cache[RUNNER_KEY] = JobRunner(Path(svc.config.data_dir) / JOBS_DIR,
                                                         on_finish=lambda: workbench.invalidate(svc))
        return existing


_runner_lock = threading.Lock()


def start_ingest(svc, upload, user: str) -> Job:
    """Check and unpack an uploaded cohort zip now (errors reach the user at once), then queue its ingest."""
    import shutil

    if upload is None or not upload.filename:
        raise InvalidInput("choose a zip of a cohort folder (manifest.json, images/, masks/) to upload")
    if not upload.filename.lower().endswith(".zip"):
        raise InvalidInput("upload the cohort folder as a .zip file")
    target = Path(svc.config.data_dir) / COHORTS_DIR / secrets.token_hex(8)
    with tempfile.TemporaryFile() as spooled:
        upload.save(spooled)
        spooled.seek(0)
        try:
            folder = unpack_zip(spooled, target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
    return runner(svc).submit("ingest", user, ingest_work(svc, folder))


def start_training(svc, user: str) -> Job:
    return runner(svc).submit("train", user, train_work(svc))
