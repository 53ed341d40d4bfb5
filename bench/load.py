"""A bounded soak of the web app on loopback: mixed search, feedback and SPARQL traffic from N clients.

    python -m bench.load [--minutes 10] [--clients 32] [--cases 72] [--quick]

Serves the app (waitress, this process) over a temporary data folder (RadLex subset, a synthetic cohort's reader
labels, the ontological baseline, one user), then runs ``--clients`` threads until the time is up (``--quick``: one
minute). Each client loops over: search (``POST /api/v1/search`` when the app has it, else a ``/sparql`` nearest-case
query), feedback (``Session.feedback`` on the app's store through :mod:`semgraph.sessions`, as the feedback pages do)
and a ``/sparql`` query. Prints throughput, p50/p95 latency and errors per kind, and the memory growth of the
process holding the server (``ru_maxrss``, and the current RSS when psutil is installed); writes
bench/results/load.json. It stops by itself and never leaves loopback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import resource
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests
from waitress import create_server

ROOT = Path(__file__).resolve().parents[1]
SPARQL_QUERIES = [
    "SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }",
    "SELECT ?d (COUNT(?c) AS ?n) WHERE { ?c a sg:Case ; sg:diagnosis ?d } GROUP BY ?d",
    "SELECT ?r (COUNT(?e) AS ?n) WHERE { ?e prov:wasGeneratedBy ?r } GROUP BY ?r LIMIT 50",
]
SEARCH_SPARQL = ("SELECT ?c ?v WHERE { ?a sg:annotates ?c ; sg:likelihood ?l . ?l sg:term rid:RID6042 ; sg:value ?v } "
                 "ORDER BY DESC(?v) LIMIT 25")


def _rss_mb() -> float | None:
    try:
        import psutil  # optional
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def setup(folder: Path, cases: int):
    import kg  # noqa: F401
    import ontology
    from ontology.paper_terms import paper_terms
    from semgraph.casegraph import Annotation, Case, write_case
    from semgraph.cohort import iter_labels
    from semgraph.similarity import write_baseline
    from webapp import create_app

    app = create_app({"data_dir": str(folder), "SPARQL_MAX_CONCURRENT": 16})
    services = app.extensions["semgraph"]
    store = services.store
    ontology.load(store, "radlex-liver")
    terms = [t.iri for t in paper_terms()]
    for i, lab in enumerate(iter_labels(cases, 1)):
        write_case(store, Case(lab.case_id, lab.patient_id, f"S{i}", diagnosis=lab.diagnosis),
                   [Annotation("reader", dict(zip(terms, map(float, lab.reader_labels))))])
    write_baseline(store, terms, ontology.dissimilarity_matrix(store, terms), kind="ontology",
                   provenance={"measure": "kurtz"})
    services.users.add("loadtester", "radiologist", "load-password-1")
    return app, services


def login(base: str) -> requests.Session:
    http = requests.Session()
    page = http.get(base + "/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    http.post(base + "/login", data={"name": "loadtester", "password": "load-password-1", "csrf_token": token},
              timeout=30)
    me = http.get(base + "/api/v1/me", timeout=30).json()
    http.headers["X-CSRF-Token"] = me.get("csrf_token", "")
    return http


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--cases", type=int, default=72)
    parser.add_argument("--quick", action="store_true", help="one minute")
    args = parser.parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    from semgraph.retrieval import Engine
    from semgraph.sessions import start_session

    with tempfile.TemporaryDirectory() as tmp:
        app, services = setup(Path(tmp) / "data", args.cases)
        server = create_server(app, host="127.0.0.1", port=0, threads=16)
        base = f"http://127.0.0.1:{server.effective_port}"
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        engine = Engine.from_store(services.store)
        probe = login(base)
        api_search = probe.post(base + "/api/v1/search", json={"case": engine.ids[0], "k": 10},
                                timeout=60).status_code == 200
        rss0, maxrss0 = _rss_mb(), _maxrss_mb()
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        lock = threading.Lock()
        stop_at = time.monotonic() + minutes * 60

        def client(n: int) -> None:
            rng = random.Random(n)
            http = login(base)
            session = start_session(services.store, engine, engine.ids[n % len(engine.ids)], f"load{n}")
            while time.monotonic() < stop_at:
                kind = rng.choice(["search", "search", "feedback", "sparql"])
                t0 = time.perf_counter()
                ok = True
                try:
                    if kind == "search":
                        if api_search:
                            r = http.post(base + "/api/v1/search", json={"case": rng.choice(engine.ids), "k": 10},
                                          timeout=60)
                        else:
                            r = http.get(base + "/sparql", params={"query": SEARCH_SPARQL},
                                         headers={"Accept": "application/sparql-results+json"}, timeout=60)
                        ok = r.status_code == 200
                    elif kind == "feedback":
                        others = [c for c in engine.ids if c != session.query_case]
                        picks = rng.sample(others, 3)
                        session.feedback(dict(zip(picks, ("relevant", "irrelevant", "neutral"))))
                        if len(session.rounds) >= 5:
                            session = start_session(services.store, engine, rng.choice(engine.ids), f"load{n}")
                    else:
                        r = http.get(base + "/sparql", params={"query": rng.choice(SPARQL_QUERIES)},
                                     headers={"Accept": "application/sparql-results+json"}, timeout=60)
                        ok = r.status_code == 200
                except Exception:  # noqa: BLE001 - a benchmark counts every failure
                    ok = False
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies[kind].append(elapsed)
                    if not ok:
                        errors[kind] += 1

        started = time.monotonic()
        workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=minutes * 60 + 120)
        wall = time.monotonic() - started
        rss1, maxrss1 = _rss_mb(), _maxrss_mb()
        from semgraph.check import check_store

        integrity = check_store(services.store)
        server.close()
        services.close()
    rows = []
    for kind in ("search", "feedback", "sparql"):
        lat = latencies.get(kind, [])
        rows.append({"kind": kind, "requests": len(lat), "per_second": len(lat) / wall, "errors": errors.get(kind, 0),
                     "p50_ms": 1000 * percentile(lat, 50), "p95_ms": 1000 * percentile(lat, 95),
                     "max_ms": 1000 * max(lat) if lat else float("nan")})
    result = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "minutes": minutes,
              "clients": args.clients, "cases": args.cases, "search_via": "/api/v1/search" if api_search else "/sparql",
              "wall_seconds": wall, "rows": rows, "maxrss_mb": [maxrss0, maxrss1],
              "rss_mb": [rss0, rss1], "integrity_ok": integrity.ok, "checked": integrity.checked,
              "python": sys.version.split()[0], "platform": platform.platform()}
    print(f"soak: {args.clients} clients, {wall:.0f} s, {args.cases} cases, search via {result['search_via']}")
    print(f"{'kind':<10} {'requests':>9} {'req/s':>8} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for r in rows:
        print(f"{r['kind']:<10} {r['requests']:>9} {r['per_second']:>8.1f} {r['errors']:>7} {r['p50_ms']:>8.1f} "
              f"{r['p95_ms']:>8.1f} {r['max_ms']:>8.1f}")
    growth = f"{maxrss1 - maxrss0:+.0f} MB (ru_maxrss {maxrss0:.0f} -> {maxrss1:.0f} MB)"
    if rss0 is not None:
        growth += f"; RSS {rss0:.0f} -> {rss1:.0f} MB"
    print(f"memory growth of the server process: {growth}")
    print(f"integrity after the soak: {'ok' if integrity.ok else 'PROBLEMS'} {integrity.checked}")
    out = ROOT / "bench" / "results" / "load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
