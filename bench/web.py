"""Benchmark the web app's /sparql endpoint over real HTTP (loopback only, bounded).

    python -m bench.web [--requests 200] [--clients 1 8] [--threads 8]

Serves the app on waitress in this process (a temporary data folder with the RadLex subset), sends a simple SELECT
(one term's label) from N concurrent clients, each with its own keep-alive connection, and prints p50/p95/max latency
and throughput per concurrency level. Writes bench/results/web.json. The retrieval and feedback latencies of the
issue's goal come later, once those endpoints exist.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from waitress import create_server

import ontology
from webapp import create_app

ROOT = Path(__file__).resolve().parents[1]
QUERY = "SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run_level(url: str, total: int, clients: int) -> dict:
    local = threading.local()

    def one(_: int) -> float:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        start = time.perf_counter()
        response = session.get(url, params={"query": QUERY}, headers={"Accept": "application/sparql-results+json"},
                               timeout=30)
        elapsed = time.perf_counter() - start
        if response.status_code != 200 or "irregular margin" not in response.text:
            raise RuntimeError(f"unexpected answer {response.status_code}: {response.text[:200]}")
        return elapsed

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(min(20, total))))  # warm-up: connections, caches
        start = time.perf_counter()
        times = list(pool.map(one, range(total)))
        wall = time.perf_counter() - start
    ms = [t * 1000 for t in times]
    return {"clients": clients, "requests": total, "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2), "max_ms": round(max(ms), 2),
            "mean_ms": round(statistics.fmean(ms), 2), "throughput_rps": round(total / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/web.json")
    args = parser.parse_args()
    if args.requests < 1 or args.requests > 100_000 or any(not 1 <= c <= 64 for c in args.clients):
        sys.exit("--requests must be in 1..100000 and --clients in 1..64")

    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app({"data_dir": data_dir})
        services = app.extensions["semgraph"]
        ontology.load(services.store, ontology.BUNDLED_RADLEX)
        server = create_server(app, host="127.0.0.1", port=0, threads=args.threads)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.effective_port}/sparql"
        try:
            rows = [run_level(url, args.requests, c) for c in args.clients]
        finally:
            server.close()
            thread.join(timeout=10)
            services.close()

    print(f"/sparql simple SELECT over loopback, waitress {args.threads} threads, {args.requests} requests per level")
    print(f"{'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'req/s':>8}")
    for r in rows:
        print(f"{r['clients']:>7} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['max_ms']:>8.2f} {r['throughput_rps']:>8.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "web /sparql simple SELECT", "query": QUERY, "waitress_threads": args.threads,
        "python": platform.python_version(), "machine": platform.machine(), "levels": rows,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
