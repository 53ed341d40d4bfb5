"""Crash-consistency trials: run a writer process, SIGKILL it at a random moment, then audit the store.

Used by ``tests/reliability/test_crash.py`` (a fixed number of trials) and ``bench/crash.py`` (many more).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import kg
from semgraph.exchange.feature_files import features_path
from semgraph.exchange.ingest_report import existing_case_ids
from semgraph.graph.check import check_store

WORKER = str(Path(__file__).with_name("crash_worker.py"))
FEEDBACK_ROUNDS = 40


@dataclass
class Templates:
    """Prepared data folders, copied for each trial."""

    ingest: Path  # an empty data folder (store created) + the cohort to ingest
    manifest: Path
    cases: int
    feedback: Path  # a data folder with the ontology, cases and baseline


@dataclass
class Trial:
    kind: str
    acked: list[str]
    present: set[str]
    extra: set[str]
    missing: set[str]
    problems: list[str] = field(default_factory=list)
    completed: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def prepare(base: Path, cases: int = 8, seed: int = 11) -> Templates:
    """Generate a tiny cohort (128 px) and the two template data folders."""
    from semgraph.cohort import generate

    from .conftest import fill

    manifest = generate(cases, seed, base / "cohort", size=128, progress=False)
    ingest_dir = base / "ingest-template"
    kg.open_store(ingest_dir / "graph").close()
    feedback_dir = base / "feedback-template"
    store = kg.open_store(feedback_dir / "graph")
    fill(store, n=16)
    store.close()
    return Templates(ingest_dir, Path(manifest), cases, feedback_dir)


def _reader(stream, lines: list[str], seen: threading.Condition) -> None:
    for line in stream:
        with seen:
            lines.append(line.strip())
            seen.notify_all()
    with seen:
        lines.append("EOF")
        seen.notify_all()


def _run_and_kill(args: list[str], acks_before_kill: int, delay: float, timeout: float = 60) -> tuple[list[str], bool]:
    """Start the worker, wait for ``acks_before_kill`` ACK lines (after READY), sleep ``delay``, SIGKILL it."""
    proc = subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    seen = threading.Condition()
    thread = threading.Thread(target=_reader, args=(proc.stdout, lines, seen), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout

    def ready() -> bool:
        return "EOF" in lines or ("READY" in lines and sum(1 for x in lines if x.startswith("ACK")) >= acks_before_kill)

    with seen:
        while not ready():
            if not seen.wait(timeout=max(0.0, deadline - time.monotonic())):
                break
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    thread.join(timeout=30)
    return [x for x in lines if x.startswith("ACK")], "DONE" in lines


def ingest_trial(templates: Templates, work: Path, rng: random.Random) -> Trial:
    data = work / "data"
    shutil.copytree(templates.ingest, data)
    # kill after 0..cases-3 acknowledged cases and a short delay, so that most kills land before the last case even
    # on a fast machine (a case takes 10-30 ms)
    acks, completed = _run_and_kill(["ingest", str(data), str(templates.manifest)],
                                    rng.randint(0, templates.cases - 3), rng.uniform(0.0, 0.015))
    acked = [a.split()[2] for a in acks]
    with kg.open_store(data / "graph") as store:
        present = existing_case_ids(store)
        report = check_store(store)
    trial = Trial("ingest", acked, present, present - set(acked), set(acked) - present, completed=completed)
    _common(trial, report)
    for case_id in present:
        if not features_path(data, case_id).is_file():
            trial.problems.append(f"case {case_id} is in the store without its feature file")
    shutil.rmtree(work, ignore_errors=True)
    return trial


def feedback_trial(templates: Templates, work: Path, rng: random.Random) -> Trial:
    data = work / "data"
    shutil.copytree(templates.feedback, data)
    acks, completed = _run_and_kill(["feedback", str(data), str(FEEDBACK_ROUNDS), str(rng.randint(0, 10**6))],
                                    rng.randint(0, FEEDBACK_ROUNDS - 5), rng.uniform(0.0, 0.03))
    acked = {a.split()[2]: int(a.split()[5]) for a in acks}
    with kg.open_store(data / "graph") as store:
        rows = store.select("SELECT ?r ?id WHERE { ?r a sg:FeedbackRound ; sg:session ?s . ?s rdfs:label ?x "
                            "BIND(STRAFTER(STR(?r), \"/round/\") AS ?id) }")
        present = {str(r["id"]) for r in rows}
        edges = {str(r["id"]): int(r["n"]) for r in store.select(
            "SELECT ?id (COUNT(?e) AS ?n) WHERE { ?e prov:wasGeneratedBy ?r ; sg:kind \"learned\" "
            "BIND(STRAFTER(STR(?r), \"/round/\") AS ?id) } GROUP BY ?id")}
        report = check_store(store)
    trial = Trial("feedback", list(acked), present, present - set(acked), set(acked) - present, completed=completed)
    _common(trial, report)
    for round_id, n in acked.items():
        if round_id in present and edges.get(round_id, 0) != n:
            trial.problems.append(f"round {round_id}: {edges.get(round_id, 0)} learned edges stored, {n} acknowledged")
    shutil.rmtree(work, ignore_errors=True)
    return trial


def _common(trial: Trial, report) -> None:
    if trial.missing:
        trial.problems.append(f"acknowledged but missing: {sorted(trial.missing)}")
    if len(trial.extra) > 1:
        trial.problems.append(f"{len(trial.extra)} unacknowledged writes present (at most 1 may be): "
                              f"{sorted(trial.extra)}")
    if not report.ok:
        trial.problems.append("semgraph check: " + report.format_text())
