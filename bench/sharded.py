"""Benchmark the sharded HSBD index (Dask actors on a local cluster of worker processes) against one index.

For each size N, cohort-like vectors (the synthetic cohort's reader labels with noise, and the ontology baseline D of
the paper terms, as in ``bench.retrieval``) are indexed once in this process (:class:`HSBDIndex`) and once as a
:class:`ShardedIndex` over a ``distributed.LocalCluster`` of ``--workers`` processes with one thread each. The same
queries (stored rows with noise) run on both: median and p95 latency of a top-k search, the ratio sharded / single
in the same run, the time to place the shards, and a check that every sharded result equals the single index's
(ids and distances). On one machine the shards share its cores, so the ratio measures the overhead of the
distribution (scheduling, messages, merge), not a speed-up; across machines each shard brings its own memory.

``python -m bench.sharded [--quick] [--sizes 100000,1000000] [--workers 2] [--queries 50]``; prints a table and
writes ``bench/results/sharded.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench.retrieval import cohort_data
from semgraph.retrieval.index import HSBDIndex
from semgraph.retrieval.sharded import ShardedIndex


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: tuple(int(x.replace("_", "")) for x in s.split(",") if x),
                        default=(100_000, 1_000_000))
    parser.add_argument("--quick", action="store_true", help="sizes 100,000 only")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster (default 2)")
    parser.add_argument("--queries", type=int, default=50, help="timed queries per size and index (default 50)")
    parser.add_argument("--top-k", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "sharded.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = (100_000,)
    return args


def _latencies(search, queries, k) -> tuple[list[float], list]:
    times, results = [], []
    for q in queries:
        start = time.perf_counter()
        results.append(search(q, k))
        times.append(time.perf_counter() - start)
    return times, results


def _p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def bench_size(n: int, client, args, rng: np.random.Generator) -> dict:
    A, D = cohort_data(n, rng)
    ids = [f"case-{i}" for i in range(n)]
    start = time.perf_counter()
    single = HSBDIndex(D, ids, A)
    single_build = time.perf_counter() - start
    start = time.perf_counter()
    sharded = ShardedIndex(client, D, ids, A)
    sharded_build = time.perf_counter() - start
    rows = rng.integers(0, n, args.queries)
    queries = np.clip(A[rows] + rng.normal(0.0, 0.05, (args.queries, A.shape[1])), 0.0, 1.0)
    # warm both (first pruned searches, worker imports) before timing
    single.search(queries[0], args.top_k), sharded.search(queries[0], args.top_k)
    single_times, single_results = _latencies(single.search, queries, args.top_k)
    sharded_times, sharded_results = _latencies(sharded.search, queries, args.top_k)
    equal = all(a.ids == b.ids and np.array_equal(a.distances, b.distances)
                for a, b in zip(single_results, sharded_results))
    del sharded
    return {"n": n, "shards": len(client.scheduler_info()["workers"]), "single_build_s": single_build,
            "sharded_build_s": sharded_build,
            "single_p50_ms": 1000 * statistics.median(single_times), "single_p95_ms": 1000 * _p95(single_times),
            "sharded_p50_ms": 1000 * statistics.median(sharded_times),
            "sharded_p95_ms": 1000 * _p95(sharded_times),
            "ratio_p50": statistics.median(sharded_times) / statistics.median(single_times),
            "identical_results": equal}


def format_table(rows: list[dict]) -> str:
    lines = ["| N | shards | build single / sharded (s) | search p50 single / sharded (ms) | p95 single / sharded (ms) "
             "| ratio p50 | identical |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['shards']} | {r['single_build_s']:.1f} / {r['sharded_build_s']:.1f} | "
                     f"{r['single_p50_ms']:.1f} / {r['sharded_p50_ms']:.1f} | "
                     f"{r['single_p95_ms']:.1f} / {r['sharded_p95_ms']:.1f} | {r['ratio_p50']:.2f} | "
                     f"{'yes' if r['identical_results'] else 'NO'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import distributed

    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as client:
        for n in args.sizes:
            print(f"N = {n:,} ...", file=sys.stderr, flush=True)
            rows.append(bench_size(n, client, args, rng))
    print(format_table(rows))
    report = {"benchmark": "sharded_index",
              "config": {"sizes": list(args.sizes), "workers": args.workers, "queries": args.queries,
                         "top_k": args.top_k, "seed": args.seed},
              "environment": {"python": platform.python_version(), "numpy": np.__version__,
                              "distributed": distributed.__version__, "machine": platform.machine(),
                              "cpus": os.cpu_count()},
              "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all(r["identical_results"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
