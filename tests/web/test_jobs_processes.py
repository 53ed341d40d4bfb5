"""The job runner when several server processes share one data folder (``semgraph serve --workers N``): records
read from the jobs folder by any runner, ``interrupted`` only when the owner process is gone, one job at a time
across processes. Runners in one test process stand for workers where only the shared folder matters; real
subprocesses are used where the point is processes (a process dying, two processes competing for the lock)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest

from semgraph.errors import NotFound
from webapp.jobs import INTERRUPTED, WAITING, Job, JobRunner

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30

# A worker process: a JobRunner over FOLDER running the jobs of MODE.
#   hang:    one job that says it started (prints its id) and then never ends.
#   overlap: waits for the file GO, submits COUNT jobs that each sleep and append their pid, start and end to LOG,
#            then exits when they are all finished.
WORKER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from webapp.jobs import JobRunner

    mode, folder = sys.argv[1], Path(sys.argv[2])
    runner = JobRunner(folder)
    if mode == "hang":
        def hang(progress):
            progress.total(2)
            progress.step("halfway")
            time.sleep(3600)
        print(runner.submit("train", "worker", hang).job_id, flush=True)
        time.sleep(3600)
    log, go, count = Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
    Path(str(go) + f".ready-{os.getpid()}").touch()
    while not go.exists():
        time.sleep(0.005)

    def work(progress):
        start = time.monotonic()
        time.sleep(0.15)
        end = time.monotonic()
        with open(log, "a") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "start": start, "end": end}) + "\\n")
        return {}
    ids = [runner.submit("ingest", "worker", work).job_id for _ in range(count)]
    deadline = time.monotonic() + 60
    while any(runner.get(i).state in ("queued", "running") for i in ids):
        assert time.monotonic() < deadline, "jobs did not finish"
        time.sleep(0.02)
    assert all(runner.get(i).state == "done" for i in ids), [runner.get(i).as_dict() for i in ids]
""")


def worker(tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, str(script), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            text=True)


def wait_for(predicate, what: str, seconds: float = TIMEOUT):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Paused:
    """A job's work that steps and then waits at each of ``stops`` until the test lets it go on."""

    def __init__(self, steps: int = 3):
        self.steps = steps
        self.reached = [threading.Event() for _ in range(steps)]
        self.resume = [threading.Event() for _ in range(steps)]

    def __call__(self, progress) -> dict:
        progress.total(self.steps)
        for n in range(self.steps):
            progress.step(f"step {n + 1}")
            self.reached[n].set()
            assert self.resume[n].wait(TIMEOUT), "the test never resumed the job"
        return {"summary": "paused job finished"}

    def go_on(self, n: int) -> None:
        self.resume[n].set()

    def wait(self, n: int) -> None:
        assert self.reached[n].wait(TIMEOUT), f"the job never reached step {n + 1}"


def finished(runner: JobRunner, job_id: str) -> Job:
    return wait_for(lambda: (j := runner.get(job_id)).state not in ("queued", "running") and j, f"job {job_id}")


def test_a_job_of_one_runner_is_seen_moving_by_another_over_the_same_folder(tmp_path):
    a, b = JobRunner(tmp_path / "jobs"), JobRunner(tmp_path / "jobs")
    work = Paused(steps=3)
    job = a.submit("train", "rita", work)
    with pytest.raises(NotFound):
        b.get("0" * 16)
    seen = []
    for n in range(3):
        work.wait(n)
        from_b = b.get(job.job_id).as_dict()
        assert from_b == job.as_dict() == a.get(job.job_id).as_dict()  # A's in-memory record, the file, via B
        assert [j.as_dict() for j in b.list()] == [from_b]
        assert from_b["state"] == "running" and from_b["message"] == f"step {n + 1}"
        seen.append(from_b["done"])
        work.go_on(n)
    assert seen == [1, 2, 3]
    done = finished(b, job.job_id).as_dict()
    assert done["state"] == "done" and done["percent"] == 100 and done["message"] == "paused job finished"
    assert done == a.get(job.job_id).as_dict() == job.as_dict()
    assert set(done) == set(Job("x", "train", "u").as_dict())  # the owner process is not in the public record


def test_a_process_started_while_another_runs_a_job_does_not_call_it_interrupted_until_that_process_dies(tmp_path):
    folder = tmp_path / "jobs"
    process = worker(tmp_path, "hang", str(folder))
    try:
        job_id = process.stdout.readline().strip()
        assert job_id, "the worker process printed no job id"
        here = JobRunner(folder)  # a runner (process) starting while the other process runs its job
        running = wait_for(lambda: (j := here.get(job_id)).done == 1 and j, "the other process's job to step")
        assert running.state == "running" and running.message == "halfway"
        code = f"from webapp.jobs import JobRunner; print(JobRunner({str(folder)!r}).get({job_id!r}).state)"
        started = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                 timeout=TIMEOUT, check=True)  # a third process, created now, sees it running too
        assert started.stdout.strip() == "running", started.stderr
        assert JobRunner(folder).list()[0].state == "running"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(TIMEOUT)
        process.stdout.close()
    after = here.get(job_id)
    assert after.state == "interrupted" and after.message == INTERRUPTED and after.done == 1
    assert [j.state for j in here.list()] == ["interrupted"]
    # the dead process held the job lock; a job of this process still runs
    assert finished(here, here.submit("train", "rita", lambda p: {}).job_id).state == "done"


def record(folder: Path, job_id: str, state: str, **owner) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fields = Job(job_id, "ingest", "rita", state=state, done=1, total=4, message="ingested c1").__dict__
    (folder / f"{job_id}.json").write_text(json.dumps(dict(fields, **owner)), encoding="utf-8")


def test_a_queued_or_running_record_is_interrupted_only_when_its_owner_process_is_gone(tmp_path):
    folder = tmp_path / "jobs"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(TIMEOUT)
    record(folder, "00a1", "running", owner_pid=gone.pid)
    record(folder, "00a2", "queued", owner_pid=gone.pid)
    record(folder, "00a3", "running", owner_pid=os.getpid())  # written by this (live) process
    record(folder, "00a4", "running")  # a record of a runner from before owners were recorded
    record(folder, "00a5", "done", owner_pid=gone.pid)
    runner = JobRunner(folder)
    states = {j.job_id: (j.state, j.message) for j in runner.list()}
    assert states == {"00a1": ("interrupted", INTERRUPTED), "00a2": ("interrupted", INTERRUPTED),
                      "00a3": ("running", "ingested c1"), "00a4": ("interrupted", INTERRUPTED),
                      "00a5": ("done", "ingested c1")}
    assert {j: runner.get(j).state for j in states} == {j: s for j, (s, _) in states.items()}
    assert "owner_pid" not in runner.get("00a3").as_dict()


def test_a_temp_file_left_by_a_process_killed_while_writing_is_not_a_record(tmp_path):
    folder = tmp_path / "jobs"
    record(folder, "00c1", "done")
    (folder / ".tmp-k1ll3d.json").write_bytes((folder / "00c1.json").read_bytes())  # killed before os.replace
    assert [j.job_id for j in JobRunner(folder).list()] == ["00c1"]


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/stat").exists(), reason="process start times need Linux /proc")
def test_a_live_process_that_reuses_a_dead_owners_pid_is_not_taken_for_the_owner(tmp_path):
    folder = tmp_path / "jobs"
    work = Paused(steps=1)
    job = JobRunner(folder).submit("train", "rita", work)
    work.wait(0)
    mine = json.loads((folder / f"{job.job_id}.json").read_text(encoding="utf-8"))
    assert mine["owner_pid"] == os.getpid() and mine["owner_started"]
    record(folder, "00b1", "running", owner_pid=os.getpid(), owner_started=str(int(mine["owner_started"]) - 1))
    assert JobRunner(folder).get("00b1").state == "interrupted"
    assert JobRunner(folder).get(job.job_id).state == "running"
    work.go_on(0)


def test_a_job_waits_queued_while_another_runners_job_runs(tmp_path):
    a, b = JobRunner(tmp_path / "jobs"), JobRunner(tmp_path / "jobs")
    first, second = Paused(steps=1), Paused(steps=1)
    one = a.submit("train", "rita", first)
    first.wait(0)
    two = b.submit("train", "carl", second)
    waiting = wait_for(lambda: (j := a.get(two.job_id)).message == WAITING and j, "the second job to wait")
    time.sleep(0.2)
    assert a.get(two.job_id).state == "queued" and not second.reached[0].is_set()
    assert waiting.as_dict() == b.get(two.job_id).as_dict()
    first.go_on(0)
    second.wait(0)
    assert a.get(one.job_id).state == "done" and a.get(two.job_id).state == "running"
    second.go_on(0)
    assert finished(a, two.job_id).state == "done"
    assert a.get(one.job_id).finished_at <= a.get(two.job_id).started_at


def test_jobs_of_two_processes_never_run_at_the_same_time(tmp_path):
    folder, log, go, count = tmp_path / "jobs", tmp_path / "runs.jsonl", tmp_path / "go", 4
    processes = [worker(tmp_path, "overlap", str(folder), str(log), str(go), str(count)) for _ in range(2)]
    try:
        wait_for(lambda: len(list(tmp_path.glob("go.ready-*"))) == 2, "both processes to be ready")
        go.touch()
        for process in processes:
            assert process.wait(60) == 0, "a worker process failed"
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(TIMEOUT)
            process.stdout.close()
    runs = sorted((json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()),
                  key=lambda r: r["start"])
    assert len(runs) == 2 * count and len({r["pid"] for r in runs}) == 2
    overlaps = [(a, b) for a, b in pairwise(runs) if b["start"] < a["end"]]
    assert not overlaps, overlaps
    assert [j.state for j in JobRunner(folder).list()] == ["done"] * 2 * count
