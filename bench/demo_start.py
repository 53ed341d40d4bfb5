"""Benchmark: how long a new user waits for ``semgraph demo``, the first time and on every later start.

Three commands, each timed as a whole process from the shell's point of view, ``--runs`` times, in one run:

* **baseline**: ``semgraph --help`` (the interpreter and the command-line entry point, nothing else);
* **build**: ``semgraph demo --no-serve`` in a new, empty data folder (RadLex subset, the 72-case cohort generated
  and ingested, term models trained, every case annotated, baseline similarities, captions, users);
* **restart**: ``semgraph demo`` on the folder built before, until ``GET /`` answers on its port (then stopped).

The table gives the median and the range of each, and its ratio to the baseline's median, so that a slower machine
does not read as a slower program. Writes ``bench/results/demo_start.json``.

    python -m bench.demo_start            # 3 runs each
    python -m bench.demo_start --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from kg.server import free_loopback_port

SEMGRAPH = [str(Path(sys.executable).with_name("semgraph"))]  # the entry point installed beside this Python


def _timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _restart(cwd: Path, timeout: float = 120.0) -> float:
    """Seconds from starting ``semgraph demo`` on the built folder to its first HTTP answer."""
    port = free_loopback_port()
    start = time.perf_counter()
    server = subprocess.Popen([*SEMGRAPH, "demo", "--port", str(port)], cwd=cwd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                    return time.perf_counter() - start
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"semgraph demo exited with status {server.returncode}") from None
                if time.perf_counter() - start > timeout:
                    raise RuntimeError(f"no answer within {timeout} s") from None
                time.sleep(0.02)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "demo_start.json")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {"baseline": [], "build": [], "restart": []}
    with tempfile.TemporaryDirectory(prefix="semgraph-demo-bench-") as tmp:
        for run in range(args.runs):
            folder = Path(tmp) / f"run{run}"
            folder.mkdir()
            times["baseline"].append(_timed([*SEMGRAPH, "--help"], folder))
            times["build"].append(_timed([*SEMGRAPH, "demo", "--no-serve"], folder))
            times["restart"].append(_restart(folder))
    base = statistics.median(times["baseline"])
    rows = {name: {"median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3), "max_s": round(max(v), 3),
                   "ratio_to_baseline": round(statistics.median(v) / base, 2), "runs": [round(x, 3) for x in v]}
            for name, v in times.items()}
    print("| command | median s | range s | × baseline |")
    print("|---|---:|---:|---:|")
    labels = {"baseline": "`semgraph --help`", "build": "`semgraph demo --no-serve`, new folder",
              "restart": "`semgraph demo`, built folder, to first answer"}
    for name, r in rows.items():
        print(f"| {labels[name]} | {r['median_s']:.2f} | {r['min_s']:.2f}–{r['max_s']:.2f} | "
              f"{r['ratio_to_baseline']:.1f} |")
    result = {"benchmark": "demo_start", "runs": args.runs, "python": platform.python_version(),
              "cpus": os.cpu_count(), "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
