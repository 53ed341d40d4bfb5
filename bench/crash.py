"""More SIGKILL crash-consistency trials than the test suite runs (see tests/reliability/crash_harness.py).

    python -m bench.crash [--trials 200] [--seed 0]

Half the trials kill a `semgraph ingest` process, half a feedback writer; each is audited (store opens,
`semgraph check` passes, every acknowledged write present, at most one unacknowledged). Prints a table and writes
bench/results/crash.json.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from tests.reliability.crash_harness import feedback_trial, ingest_trial, prepare

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        templates = prepare(Path(tmp) / "templates")
        for kind, run in (("ingest", ingest_trial), ("feedback", feedback_trial)):
            start = time.perf_counter()
            trials = [run(templates, Path(tmp) / f"{kind}{i}", rng) for i in range(args.trials // 2)]
            rows[kind] = {"trials": len(trials), "interrupted": sum(not t.completed for t in trials),
                          "acknowledged": sum(len(t.acked) for t in trials),
                          "unacknowledged_present": sum(len(t.extra) for t in trials),
                          "failed": sum(not t.ok for t in trials), "seconds": time.perf_counter() - start,
                          "failures": [t.problems for t in trials if not t.ok][:5]}
    print(f"{'writer':<9} {'trials':>7} {'killed mid-run':>15} {'acked':>7} {'extra':>6} {'failed':>7} {'s':>6}")
    for kind, r in rows.items():
        print(f"{kind:<9} {r['trials']:>7} {r['interrupted']:>15} {r['acknowledged']:>7} "
              f"{r['unacknowledged_present']:>6} {r['failed']:>7} {r['seconds']:>6.0f}")
    out = ROOT / "bench" / "results" / "crash.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
