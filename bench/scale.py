"""Benchmark: one store of many cases built through the real ingest paths, then every operation on it, in one run.

The store is an embedded one in a fresh data folder, built as a user builds it with the ``semgraph`` command line
(each command a subprocess of the installed entry point beside ``sys.executable``, so that its peak resident memory
is its own: the high-water mark ``VmHWM`` of the command's process, polled every 50 ms, as its ``ru_maxrss``
would count this process's memory at the fork; worker processes of the image ingest are not counted):

* ``--image-cases`` generated liver cases (``semgraph cohort generate --size 128`` into the data folder) ingested with
  ``semgraph ingest MANIFEST --jobs 2`` into the bundled ``liver-ct`` collection (after ``semgraph ontology load
  radlex-liver``); 0 skips them;
* ``--cases`` LIDC-like lung-nodule readings (:mod:`bench.engine_load`: the real readings of
  ``shared/data/lidc-dev/readings.csv`` repeated under new ids, or seeded random ones of the same shape; 40 binary
  level terms under a small RDFS taxonomy with ``urn:`` IRIs) written as a reader-ratings CSV and ingested with
  ``semgraph ingest FILE.csv --collection lung-nodules --term-root urn:lidc:rating`` after ``semgraph ontology load``
  of the taxonomy (the CSV's term columns define the new collection).

Then, on the ratings collection: the store's size on disk; ``Engine.from_store`` cold from the graph
(``use_snapshot=False``), the first start that writes the snapshot, and warm from the snapshot; search latency
p50/p95 over ``--queries`` queries by case and by terms (the Engine API), the text index build and text search
p50/p95 over ``--text-queries`` (:func:`semgraph.usecases.text_search.text_search`, the one behind ``semgraph search``); one feedback
round (:func:`semgraph.feedback.sessions.start_session`, 2 relevant and 2 irrelevant marks) computed and written;
then ``semgraph export`` of the learned relations, ``semgraph check``, ``semgraph backup`` and ``semgraph restore``
into a new folder. The engine and search steps run in this process; their peak memory is this process's high-water
mark so far (``ru_maxrss`` only grows). Prints a markdown table and writes JSON.

    python -m bench.scale                                 # 1,000,000 ratings cases, 100,000 image cases (hours)
    python -m bench.scale --quick                         # 100,000 and 10,000
    python -m bench.scale --cases 5000 --image-cases 500  # a few minutes: does it work end to end
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.engine_load import (
    COLLECTION,
    RATINGS,
    ROOT,
    TERMS,
    readings,
    taxonomy_turtle,
    term_iri,
)

SEMGRAPH = Path(sys.executable).parent / "semgraph"
ONTOLOGY_NAME = "lidc-ratings"


def rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory (``ru_maxrss``, KiB on Linux) in MB."""
    return resource.getrusage(who).ru_maxrss / 1024


def vm_hwm_kb(pid: int) -> int:
    """Peak resident memory (KiB) of process ``pid`` so far (``VmHWM`` of /proc/PID/status); 0 when unknown."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (as ``du -b`` counts them)."""
    return sum((Path(root) / f).stat().st_size for root, _, files in os.walk(path) for f in files)


class Run:
    """The steps of one run: each a row (step, value, unit, seconds, peak RSS MB, where it ran, note)."""

    def __init__(self, data: Path, log: Path):
        self.data, self.log, self.rows = data, log, []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SEMGRAPH_")}

    def row(self, step: str, value, unit: str, seconds: float | None, peak_mb: float | None, where: str,
            note: str = "") -> dict:
        r = {"step": step, "value": value, "unit": unit, "seconds": seconds, "peak_rss_mb": peak_mb, "where": where,
             "note": note}
        self.rows.append(r)
        shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
        print(f"  {step}: {shown} {unit} ({seconds or 0:.1f} s, peak {peak_mb or 0:,.0f} MB) {note}",
              file=sys.stderr, flush=True)
        return r

    def cli(self, *args: str, check: bool = True) -> tuple[float, float, int, str]:
        """Run ``semgraph --data-dir DATA ARGS`` as a subprocess; (seconds, its peak RSS MB, exit status, stdout)."""
        cmd = [str(SEMGRAPH), "--data-dir", str(self.data), *args]
        out_path, err_path = self.log / "stdout.txt", self.log / "stderr.txt"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=self.log, env=self.env)
            peak_kb = 0
            while True:  # the child's ru_maxrss counts this process's RSS at the fork: its VmHWM does not
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                peak_kb = max(peak_kb, vm_hwm_kb(proc.pid))
                time.sleep(0.05)
            seconds = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        stdout, stderr = out_path.read_text(), err_path.read_text()
        with open(self.log / "commands.log", "a") as history:
            history.write(f"$ {' '.join(cmd)}\n# exit {code}, {seconds:.1f} s\n{stdout[-4000:]}{stderr[-4000:]}\n")
        if check and code != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({code}): {stderr[-2000:] or stdout[-2000:]}")
        return seconds, (peak_kb or usage.ru_maxrss) / 1024, code, stdout


def write_ratings_csv(path: Path, n: int) -> None:
    """``n`` cases of LIDC-like readings (the readings repeated under new ids, as :func:`bench.engine_load.case_of`
    names them) as a reader-ratings CSV: case_id, patient_id, study_id, diagnosis and one 0/1 column per term IRI."""
    rows = readings()
    header = ["case_id", "patient_id", "study_id", "diagnosis", *TERMS]
    levels = [(column, level) for column, k in RATINGS.items() for level in range(1, k + 1)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(header)
        for i in range(n):
            r, copy = rows[i % len(rows)], i // len(rows)
            suffix = f"-{copy}" if copy else ""
            m = r["malignancy"]
            out.writerow([f"LIDC-{r['id']}{suffix}", r["patient"] + suffix, f"scan-{r['scan']}{suffix}",
                          "benign" if m <= 2 else "indeterminate" if m == 3 else "malignant",
                          *("1" if r[column] == level else "0" for column, level in levels)])


def percentiles(times: list[float]) -> tuple[float, float]:
    """(p50, p95) of ``times`` in milliseconds."""
    a = np.asarray(times) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def timed_each(call, items) -> tuple[float, float, float]:
    """``call(item)`` for every item: (p50, p95) of the calls in milliseconds, and the seconds of them all."""
    times = []
    start = time.perf_counter()
    for item in items:
        t = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - t)
    return *percentiles(times), time.perf_counter() - start


def build(run: Run, args) -> None:
    """The store: the image cohort (if any), then the ratings CSV, through the command line."""
    data = run.data
    if args.image_cases:
        s, mb, _, _ = run.cli("ontology", "load", "radlex-liver")
        run.row("load the bundled RadLex liver ontology", "", "", s, mb, "cli")
        s, mb, _, _ = run.cli("cohort", "generate", "--n", str(args.image_cases), "--size", "128", "--out",
                              str(data / "cohort"))
        run.row(f"generate an image cohort of {args.image_cases:,} cases (128 px)", args.image_cases / s, "cases/s",
                s, mb, "cli")
        s, mb, _, out = run.cli("ingest", str(data / "cohort" / "manifest.json"), "--jobs", str(args.jobs))
        last = out.strip().splitlines()[-1] if out.strip() else ""
        run.row(f"image ingest, {args.image_cases:,} cases (--jobs {args.jobs})", args.image_cases / s, "cases/s",
                s, mb, "cli", last)
    taxonomy = data / "lidc-ratings.ttl"
    taxonomy.write_text(taxonomy_turtle())
    s, mb, _, _ = run.cli("ontology", "load", str(taxonomy), "--name", ONTOLOGY_NAME, "--root", ROOT)
    run.row("load the ratings taxonomy (41 classes)", "", "", s, mb, "cli")
    csv_path = data / "ratings.csv"
    start = time.perf_counter()
    write_ratings_csv(csv_path, args.cases)
    s = time.perf_counter() - start
    run.row(f"write the reader-ratings CSV ({args.cases:,} cases, 40 terms)", csv_path.stat().st_size / 1e6, "MB",
            s, rss_mb(), "bench")
    s, mb, _, out = run.cli("ingest", str(csv_path), "--collection", COLLECTION, "--term-root", ROOT)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    run.row(f"ratings ingest, {args.cases:,} cases", args.cases / s, "cases/s", s, mb, "cli", last)
    csv_path.unlink()
    run.row("store size on disk (graph folder)", folder_bytes(data / "graph") / 1e6, "MB", None, None, "du")
    run.row("data folder size on disk (store, images, features)", folder_bytes(data) / 1e6, "MB", None, None, "du")


def measure_engine(run: Run, args) -> None:
    """Engine starts, searches and one feedback round, in this process."""
    import kg
    from semgraph.feedback.sessions import start_session
    from semgraph.graph.snapshot import snapshot_path
    from semgraph.retrieval.engine import Engine
    from semgraph.usecases.text_search import TextIndex, text_search

    kinds = ("reader",)
    rng = np.random.default_rng(0)
    with kg.open_store(run.data / "graph") as store:
        start = time.perf_counter()
        engine = Engine.from_store(store, collection=COLLECTION, likelihood_kinds=kinds, use_snapshot=False)
        s = time.perf_counter() - start
        n = len(engine.ids)
        run.row("engine start, cold from the graph", n, "cases", s, rss_mb(), "bench", f"loaded_from={engine.loaded_from}")
        del engine
        start = time.perf_counter()
        engine = Engine.from_store(store, collection=COLLECTION, likelihood_kinds=kinds)
        s = time.perf_counter() - start
        snapshot = snapshot_path(store, engine.collection.case_filter)
        size = snapshot.stat().st_size / 1e6 if snapshot and snapshot.exists() else 0.0
        run.row("engine start, first with snapshot (reads the graph, writes the snapshot)", size, "MB snapshot", s,
                rss_mb(), "bench", f"loaded_from={engine.loaded_from}")
        del engine
        start = time.perf_counter()
        engine = Engine.from_store(store, collection=COLLECTION, likelihood_kinds=kinds)
        s = time.perf_counter() - start
        run.row("engine start, warm from the snapshot", len(engine.ids), "cases", s, rss_mb(), "bench",
                f"loaded_from={engine.loaded_from}")
        if args.image_cases:
            start = time.perf_counter()
            liver = Engine.from_store(store, collection="liver-ct", use_snapshot=False)
            s = time.perf_counter() - start
            run.row("engine start, cold, liver-ct (image cases)", len(liver.ids), "cases", s, rss_mb(), "bench")
            del liver

        q = args.queries
        ids = [engine.ids[i] for i in rng.integers(0, len(engine.ids), q)]
        engine.search_case(ids[0])  # the dendrogram of the explanations is built once, on the first search
        p50, p95, s = timed_each(functools.partial(engine.search_case, k=25), ids)
        run.row(f"search by case, p50 ({q} queries, k=25)", p50, "ms", s, rss_mb(), "bench")
        run.row("search by case, p95", p95, "ms", None, None, "bench")

        rows = readings()
        queries = []
        for i in rng.integers(0, len(rows), q):
            r = rows[i]
            # the 8 rated levels, a little uncertain, and a neighbouring level of two ratings as possible
            values = {term_iri(c, r[c]): 0.9 for c in RATINGS}
            for c in list(RATINGS)[:2]:
                if r[c] < RATINGS[c]:
                    values[term_iri(c, r[c] + 1)] = 0.3
            queries.append(values)
        p50, p95, s = timed_each(functools.partial(engine.search_vector, k=25), queries)
        run.row(f"search by terms, p50 ({q} queries, 8-10 terms, k=25)", p50, "ms", s, rss_mb(), "bench")
        run.row("search by terms, p95", p95, "ms", None, None, "bench")

        start = time.perf_counter()
        try:
            index = TextIndex.from_store(store, engine)
        except Exception as exc:  # noqa: BLE001 - reported as n/a
            index = None
            run.row("text index build (vocabulary, captions, corpus)", "n/a", "", time.perf_counter() - start,
                    rss_mb(), "bench", f"{type(exc).__name__}: {exc}"[:200])
        if index is not None:
            run.row("text index build (vocabulary, captions, corpus)", len(index.corpus.ids), "cases",
                    time.perf_counter() - start, rss_mb(), "bench")
            labels = {c: [f"{c} {level}" for level in range(1, k + 1)] for c, k in RATINGS.items()}
            texts = []
            for i in rng.integers(0, len(rows), args.text_queries):
                r = rows[i]
                picked = rng.choice(list(RATINGS), size=3, replace=False)
                texts.append(", ".join(labels[c][r[c] - 1] for c in picked))
            probe = text_search(index, texts[0], k=25)
            if not probe.query.mentioned:
                run.row("text search", "n/a", "", None, None, "bench",
                        f"the text {texts[0]!r} names no term of the collection's vocabulary")
            else:
                p50, p95, s = timed_each(lambda text: text_search(index, text, k=25), texts)
                run.row(f"search by text, p50 ({len(texts)} queries such as {texts[0]!r})", p50, "ms", s,
                        rss_mb(), "bench", f"{len(probe.query.matches)} terms matched in the first")
                run.row("search by text, p95", p95, "ms", None, None, "bench")
            del index

        # readings repeat (and many are alike), so the first hits of a case often have its very vector: the marks
        # go to four hits of different vectors (the first two relevant, the last two irrelevant) among the first 100
        for query in ids[:50]:
            start = time.perf_counter()
            session = start_session(store, engine, query, "bench-scale", k=100)
            started = time.perf_counter() - start
            seen, distinct = {tuple(engine.vector(query))}, []
            for hit in session.ranking:
                v = tuple(engine.vector(hit.case_id))
                if v not in seen:
                    seen.add(v)
                    distinct.append(hit.case_id)
            if len(distinct) >= 4:
                break
        else:
            distinct = [h.case_id for h in session.ranking]
        marks = {distinct[0]: "relevant", distinct[1]: "relevant", distinct[-1]: "irrelevant",
                 distinct[-2]: "irrelevant"}
        start = time.perf_counter()
        new = session.compute_round(marks)
        computed = time.perf_counter() - start
        start = time.perf_counter()
        session.record(new)
        written = time.perf_counter() - start
        run.row("feedback: start a session (query by case, k=100)", "", "", started, rss_mb(), "bench")
        run.row("feedback round: compute (2 relevant, 2 irrelevant marks)", len(new.changes), "pairs changed",
                computed, rss_mb(), "bench", f"guard={getattr(new, 'guard', None)}")
        run.row("feedback round: its write (one update) and re-rank", "", "", written, rss_mb(), "bench")
        del session, engine


def after(run: Run, args) -> None:
    """Export, check, backup and restore, through the command line."""
    s, mb, _, _ = run.cli("export", "--format", "csv", "--out", "learned.csv", "--collection", COLLECTION)
    exported = run.data / "exports" / "learned.csv"
    lines = max(0, len(exported.read_text().splitlines()) - 1) if exported.is_file() else 0
    run.row("`semgraph export --format csv` of the learned relations", lines, "rows", s, mb, "cli")
    s, mb, code, out = run.cli("check", check=False)
    first = next((line for line in out.splitlines() if line.strip()), "")
    run.row("`semgraph check`", "ok" if code == 0 else f"exit {code}", "", s, mb, "cli", first[:160])
    backup = run.data.parent / "backup"
    s, mb, _, out = run.cli("backup", str(backup))
    run.row("`semgraph backup`", folder_bytes(backup) / 1e6, "MB", s, mb, "cli", out.strip().splitlines()[0][:160])
    restored = run.data.parent / "restored"
    s, mb, _, out = run.cli("restore", str(backup), "--into", str(restored))
    run.row("`semgraph restore` into a new folder", folder_bytes(restored / "graph") / 1e6, "MB store", s, mb, "cli",
            out.strip().splitlines()[0][:160])


def table(rows: list[dict]) -> str:
    lines = ["| step | value | unit | seconds | peak RSS MB |", "|---|---:|---|---:|---:|"]
    for r in rows:
        v = r["value"]
        value = (f"{v:,.1f}" if isinstance(v, float) and v >= 100 else f"{v:,.2f}" if isinstance(v, float)
                 else f"{v:,}" if isinstance(v, int) else v)
        seconds = "" if r["seconds"] is None else f"{r['seconds']:,.2f}"
        peak = "" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:,.0f}"
        lines.append(f"| {r['step']} | {value} | {r['unit']} | {seconds} | {peak} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="ratings cases (reader CSV)")
    parser.add_argument("--image-cases", type=int, default=100_000, help="image cases (0: no image ingest)")
    parser.add_argument("--quick", action="store_true", help="100,000 ratings cases and 10,000 image cases")
    parser.add_argument("--queries", type=int, default=200, help="queries per search kind")
    parser.add_argument("--text-queries", type=int, default=20,
                        help="text queries (each ranks every case by captions too: slow on a large store)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the image ingest")
    parser.add_argument("--workdir", type=Path, help="build here and keep it (default: a temporary folder, removed)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "scale.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.image_cases = 100_000, 10_000
    if not SEMGRAPH.exists():
        parser.error(f"no semgraph entry point at {SEMGRAPH}; install the package into this environment")
    total = time.perf_counter()
    tmp = None
    if args.workdir is None:
        tmp = tempfile.mkdtemp(prefix="semgraph-scale-")
        work = Path(tmp)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    data, log = work / "data", work / "log"
    data.mkdir()
    log.mkdir()
    run = Run(data, log)
    print(f"building in {work}: {args.cases:,} ratings cases, {args.image_cases:,} image cases", file=sys.stderr)
    failed = None
    try:
        build(run, args)
        measure_engine(run, args)
        after(run, args)
    except Exception as exc:  # noqa: BLE001 - the table of what ran is still printed and written
        failed = f"{type(exc).__name__}: {exc}"
        print(f"FAILED: {failed}", file=sys.stderr)
    finally:
        seconds = time.perf_counter() - total
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(table(run.rows))
    largest = max((r["peak_rss_mb"] for r in run.rows if r["where"] == "cli"), default=0.0)
    print(f"\ntotal {seconds / 60:.1f} min; peak RSS of this process {rss_mb():,.0f} MB, of the largest command "
          f"{largest:,.0f} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "cases": args.cases, "image_cases": args.image_cases, "queries": args.queries,
        "text_queries": args.text_queries, "jobs": args.jobs,
        "total_s": seconds, "failed": failed, "rows": run.rows,
        "note": "peak_rss_mb: of the command's process (cli rows: its VmHWM, polled every 50 ms; not its workers) "
                "or this process's high-water mark so far (bench rows)"}, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
