"""A bounded soak of the web app on loopback: mixed search, feedback and SPARQL traffic from N clients.

    python -m bench.load [--minutes 10] [--clients 32] [--cases 72] [--size 128] [--threads 16] [--quick]

Builds a data folder with :func:`semgraph.cli.demo_cmd.build_demo` (RadLex subset, synthetic cohort ingested, term
models trained, baseline, captions) plus one radiologist, then starts ``semgraph serve`` on it in a SEPARATE
process (loopback, free port), so the memory measured is the server's own: its ``VmRSS`` from
``/proc/<pid>/status`` is sampled every 10 s and reported at the start, every minute and at the end.

``--clients`` threads, each with its own logged-in ``requests.Session``, loop until the time is up (``--quick``:
one minute) over: search (``POST /api/v1/search`` by a random case), feedback (``POST /api/v1/sessions``, then
``POST /api/v1/sessions/<id>/rounds`` with three marks on the shown results; a new session every 5 rounds) and a
``/sparql`` query. Prints throughput, p50/p95/max latency and errors per kind, and the server's RSS over time;
afterwards (server stopped) checks the store (``semgraph check``) and that every acknowledged round is stored once.
Writes bench/results/load.json. It stops by itself and never leaves loopback.

``--attack`` adds an attack on the public SPARQL endpoint: the run is cut into four phases, quiet / attack / quiet /
attack, and in the attack phases 8 more anonymous clients loop heavy queries (cartesian products, closures over
every predicate, a regular expression over a product, a huge OFFSET) on ``/sparql``, each from an address of its
own (127.0.0.2 ...: loopback), as a distributed attack would. The table then compares the radiologists' search and
feedback latencies without and with the attack (ratio of p95) in the same run. Each of the ``--clients`` is a
radiologist of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests

from kg.server import free_loopback_port

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "loadtester", "load-password-1"
SPARQL_QUERIES = [
    "SELECT ?l WHERE { rid:RID5715 rdfs:label ?l }",
    "SELECT ?d (COUNT(?c) AS ?n) WHERE { ?c a sg:Case ; sg:diagnosis ?d } GROUP BY ?d",
    "SELECT ?r (COUNT(?e) AS ?n) WHERE { ?e prov:wasGeneratedBy ?r } GROUP BY ?r LIMIT 50",
]
HEAVY_QUERIES = [
    "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }",
    "SELECT (COUNT(*) AS ?n) WHERE { ?x (rdfs:label|!rdfs:label)* ?y . ?z (rdfs:label|!rdfs:label)* ?w }",
    'SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . FILTER(REGEX(CONCAT(STR(?c), STR(?f)), "^(a|b)*x$")) }',
    "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } OFFSET 100000000000",
]
ATTACKERS = 8
KINDS = ("search", "feedback", "sparql")
MIX = ("search", "search", "feedback", "sparql")


class FromAddress(requests.adapters.HTTPAdapter):
    """Connect from ``address`` (any 127.x.y.z is this machine's loopback): attackers with addresses of their own."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MB (``VmRSS`` of /proc/<pid>/status), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def prepare(folder: Path, cases: int, size: int, users: int) -> None:
    """The demo data folder (what ``semgraph demo --no-serve`` builds) and ``users`` load-test radiologists."""
    from semgraph.cli.demo_cmd import build_demo
    from semgraph.config import Config
    from semgraph.users import UserStore

    config = Config.load({"data_dir": str(folder)})
    with config.open_store() as store:
        for line in build_demo(store, folder, n=cases, seed=0, size=size):
            print("  " + line)
    accounts = UserStore.in_data_dir(folder)
    for n in range(users):
        accounts.add(f"{USER}{n}", "radiologist", PASSWORD)


def start_server(folder: Path, threads: int) -> tuple[subprocess.Popen, str]:
    """``semgraph serve`` on ``folder`` in a child process; its stderr goes to ``server.log`` beside it.

    Never a pipe: nobody reads a pipe while the soak runs, and once its 64 KiB buffer is full the server's
    main thread blocks writing a log line (waitress logs every queued request under load) and stops accepting.
    """
    port = free_loopback_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMGRAPH_")}
    # SIGUSR1 makes the server print every thread's stack to stderr (used when requests time out: a hang)
    boot = ("import faulthandler, signal; faulthandler.register(signal.SIGUSR1, all_threads=True); "
            "from semgraph.cli import main; main()")
    with open(folder.parent / "server.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", boot, "--data-dir", str(folder),
                                 "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads)],
                                env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"semgraph serve exited: {(folder.parent / 'server.log').read_text()[-2000:]}")
        try:
            requests.get(base + "/api/v1/status", timeout=2)
            return proc, base
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("semgraph serve did not answer within 120 s")


def stop_server(proc: subprocess.Popen, folder: Path) -> str:
    """Stop the server (SIGTERM, then SIGKILL after 60 s) and return what it logged."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return (folder.parent / "server.log").read_text()


def login(base: str, n: int = 0) -> requests.Session:
    """A session logged in as load-test radiologist ``n``."""
    http = requests.Session()
    page = http.get(base + "/login", timeout=60).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = http.post(base + "/login", data={"name": f"{USER}{n}", "password": PASSWORD, "csrf_token": token},
                  allow_redirects=False, timeout=60)
    if r.status_code != 302:
        raise RuntimeError(f"login failed: {r.status_code}")
    http.headers["X-CSRF-Token"] = http.get(base + "/api/v1/me", timeout=60).json()["csrf_token"]
    return http


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--cases", type=int, default=72)
    parser.add_argument("--size", type=int, default=128, help="image size of the synthetic cohort")
    parser.add_argument("--threads", type=int, default=16, help="waitress threads of the server")
    parser.add_argument("--quick", action="store_true", help="one minute")
    parser.add_argument("--attack", action="store_true",
                        help=f"quiet and attack phases: {ATTACKERS} anonymous clients loop heavy /sparql queries")
    args = parser.parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        print(f"preparing {folder} ({args.cases} cases) ...")
        t0 = time.perf_counter()
        prepare(folder, args.cases, args.size, args.clients)
        print(f"  prepared in {time.perf_counter() - t0:.0f} s")
        proc, base = start_server(folder, args.threads)
        try:
            probe = login(base)
            case_ids = [c["case_id"] for c in probe.get(base + "/api/v1/cases", params={"limit": 500},
                                                        timeout=60).json()["cases"]]
            latencies: dict[str, list[float]] = defaultdict(list)
            phases: dict[str, dict[str, list[float]]] = {"quiet": defaultdict(list), "attack": defaultdict(list)}
            phase_errors: dict[str, dict[str, int]] = {"quiet": defaultdict(int), "attack": defaultdict(int)}
            refusals: dict[str, int] = defaultdict(int)
            attack_statuses: dict[int, int] = defaultdict(int)
            per_minute: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            errors: dict[str, int] = defaultdict(int)
            statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
            acknowledged: list[str] = []
            lock = threading.Lock()
            started = time.monotonic()
            stop_at = started + minutes * 60

            def phase() -> str:
                """quiet / attack / quiet / attack quarters of the run (always quiet without --attack)."""
                quarter = int(4 * (time.monotonic() - started) / (minutes * 60))
                return "attack" if args.attack and quarter % 2 == 1 else "quiet"
            rss: list[tuple[float, float]] = []
            sample = rss_mb(proc.pid)
            if sample is not None:
                rss.append((0.0, sample))
            done = threading.Event()

            def monitor() -> None:
                while not done.wait(10):
                    value = rss_mb(proc.pid)
                    if value is not None:
                        rss.append((time.monotonic() - started, value))

            def client(n: int) -> None:
                rng = random.Random(n)
                http = login(base, n)
                view = None
                while time.monotonic() < stop_at:
                    kind, at = rng.choice(MIX), phase()
                    t = time.perf_counter()
                    code = 0
                    try:
                        if kind == "search":
                            r = http.post(base + "/api/v1/search", json={"case_id": rng.choice(case_ids), "k": 10},
                                          timeout=120)
                            code = r.status_code
                        elif kind == "feedback":
                            if view is None or view["round"] >= 5:
                                r = http.post(base + "/api/v1/sessions",
                                              json={"case_id": rng.choice(case_ids), "k": 10}, timeout=120)
                                code = r.status_code
                                view = r.json() if code == 200 else None
                            if view is not None:
                                shown = [h["case_id"] for h in view["results"]]
                                marks = dict(zip(rng.sample(shown, 3), ("relevant", "irrelevant", "neutral")))
                                r = http.post(base + f"/api/v1/sessions/{view['session_id']}/rounds",
                                              json={"marks": marks}, timeout=120)
                                code = r.status_code
                                if code == 200:
                                    view = r.json()
                                    with lock:
                                        acknowledged.append(view["rounds"][-1]["round_id"])
                                else:
                                    view = None
                        else:
                            r = http.get(base + "/sparql", params={"query": rng.choice(SPARQL_QUERIES)},
                                         headers={"Accept": "application/sparql-results+json"}, timeout=120)
                            code = r.status_code
                        if code != 200:
                            with lock:
                                refusals[f"{kind} {code}: {r.text[:120]}"] += 1
                    except Exception:  # noqa: BLE001 - a benchmark counts every failure (timeouts included)
                        code = -1
                    elapsed = time.perf_counter() - t
                    with lock:
                        latencies[kind].append(elapsed)
                        phases[at][kind].append(elapsed)
                        phase_errors[at][kind] += code != 200
                        per_minute[int((time.monotonic() - started) // 60)][kind] += 1
                        statuses[kind][code] += 1
                        if code != 200:
                            errors[kind] += 1

            def attacker(n: int) -> None:
                rng, http = random.Random(1000 + n), requests.Session()
                http.mount("http://", FromAddress(f"127.0.0.{2 + n}"))  # a client of its own for the server
                while time.monotonic() < stop_at:
                    if phase() != "attack":
                        time.sleep(0.2)
                        continue
                    try:
                        code = http.post(base + "/sparql", data=rng.choice(HEAVY_QUERIES).encode(), timeout=300,
                                         headers={"Content-Type": "application/sparql-query",
                                                  "Accept": "application/sparql-results+json"}).status_code
                    except Exception:  # noqa: BLE001 - counted like every failure
                        code = -1
                    with lock:
                        attack_statuses[code] += 1

            watcher = threading.Thread(target=monitor, daemon=True)
            watcher.start()
            workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
            if args.attack:
                workers += [threading.Thread(target=attacker, args=(n,), daemon=True) for n in range(ATTACKERS)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(timeout=minutes * 60 + 180)
            wall = time.monotonic() - started
            done.set()
            if any(statuses[k].get(-1) for k in KINDS) and proc.poll() is None:
                proc.send_signal(signal.SIGUSR1)  # requests timed out: keep the server's stacks for diagnosis
                time.sleep(2)
            end_rss = rss_mb(proc.pid)
            if end_rss is not None:
                rss.append((wall, end_rss))
        finally:
            log = stop_server(proc, folder)
        server_errors = log.count("Traceback")
        if server_errors:
            kept = ROOT / "bench" / "results" / "load-server.log"
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(log)
            print(f"the server logged {server_errors} tracebacks: its log is in {kept}")
        if "Thread 0x" in log:
            stacks = ROOT / "bench" / "results" / "load-server-stacks.txt"
            stacks.parent.mkdir(parents=True, exist_ok=True)
            stacks.write_text(log)
            print(f"requests timed out: the server's thread stacks are in {stacks}")

        from semgraph.config import Config
        from semgraph.graph.check import check_store

        with Config.load({"data_dir": str(folder)}).open_store() as store:
            integrity = check_store(store)
            stored = {str(r["r"]).rsplit("/", 1)[-1] for r in store.select("SELECT ?r WHERE { ?r a sg:FeedbackRound }")}
        lost = len(set(acknowledged) - stored)
        unacknowledged = len(stored - set(acknowledged))

    rows = []
    for kind in KINDS:
        lat = latencies.get(kind, [])
        rows.append({"kind": kind, "requests": len(lat), "per_second": len(lat) / wall, "errors": errors.get(kind, 0),
                     "statuses": {str(k): v for k, v in sorted(statuses[kind].items())},
                     "p50_ms": 1000 * percentile(lat, 50), "p95_ms": 1000 * percentile(lat, 95),
                     "max_ms": 1000 * max(lat) if lat else float("nan")})
    attack_rows = []
    for kind in KINDS:
        quiet, attacked = phases["quiet"].get(kind, []), phases["attack"].get(kind, [])
        q95, a95 = 1000 * percentile(quiet, 95), 1000 * percentile(attacked, 95)
        attack_rows.append({"kind": kind, "quiet_requests": len(quiet), "attack_requests": len(attacked),
                            "quiet_errors": phase_errors["quiet"][kind], "attack_errors": phase_errors["attack"][kind],
                            "quiet_p50_ms": 1000 * percentile(quiet, 50), "quiet_p95_ms": q95,
                            "attack_p50_ms": 1000 * percentile(attacked, 50), "attack_p95_ms": a95,
                            "p95_ratio": a95 / q95 if quiet and attacked else float("nan")})
    minutes_table = []
    for m in range(int(-(-wall // 60))):
        samples = [v for t, v in rss if m * 60 <= t < (m + 1) * 60]
        minutes_table.append({"minute": m + 1, "requests": sum(per_minute[m].values()),
                              **{kind: per_minute[m][kind] for kind in KINDS},
                              "rss_mb_at_end": samples[-1] if samples else None})
    result = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "minutes": minutes,
              "clients": args.clients, "cases": args.cases, "server": "semgraph serve (separate process)",
              "server_threads": args.threads, "wall_seconds": wall, "rows": rows, "per_minute": minutes_table,
              "rss_mb": [{"t": round(t, 1), "mb": round(v, 1)} for t, v in rss],
              "rounds_acknowledged": len(acknowledged), "rounds_stored": len(stored), "rounds_lost": lost,
              "rounds_unacknowledged": unacknowledged, "server_tracebacks": server_errors,
              "integrity_ok": integrity.ok, "checked": integrity.checked,
              "attack": {"attackers": ATTACKERS, "statuses": {str(k): v for k, v in sorted(attack_statuses.items())},
                         "rows": attack_rows} if args.attack else None,
              "python": sys.version.split()[0], "platform": platform.platform()}
    print(f"\nsoak: {args.clients} clients, {wall:.0f} s, {args.cases} cases, server in a separate process "
          f"({args.threads} threads)")
    print(f"{'kind':<10} {'requests':>9} {'req/s':>8} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for r in rows:
        print(f"{r['kind']:<10} {r['requests']:>9} {r['per_second']:>8.1f} {r['errors']:>7} {r['p50_ms']:>8.1f} "
              f"{r['p95_ms']:>8.1f} {r['max_ms']:>8.1f}")
    if args.attack:
        print(f"\nattack on /sparql: {ATTACKERS} anonymous clients looping heavy queries in the 2nd and 4th quarter; "
              f"their answers: {dict(sorted(attack_statuses.items()))}")
        print(f"{'kind':<10} {'quiet n':>8} {'errors':>7} {'p50 ms':>7} {'p95 ms':>7} {'attack n':>9} {'errors':>7} "
              f"{'p50 ms':>7} {'p95 ms':>7} {'p95 ratio':>10}")
        for r in attack_rows:
            print(f"{r['kind']:<10} {r['quiet_requests']:>8} {r['quiet_errors']:>7} {r['quiet_p50_ms']:>7.1f} "
                  f"{r['quiet_p95_ms']:>7.1f} {r['attack_requests']:>9} {r['attack_errors']:>7} "
                  f"{r['attack_p50_ms']:>7.1f} {r['attack_p95_ms']:>7.1f} {r['p95_ratio']:>10.2f}")
    for text, n in sorted(refusals.items(), key=lambda item: -item[1])[:5]:
        print(f"{n:>7} × {text}")
    print(f"\n{'minute':>6} {'requests':>9} {'search':>7} {'feedback':>9} {'sparql':>7} {'server RSS MB':>14}")
    print(f"{'start':>6} {'':>9} {'':>7} {'':>9} {'':>7} {rss[0][1] if rss else float('nan'):>14.1f}")
    for m in minutes_table:
        value = m["rss_mb_at_end"]
        print(f"{m['minute']:>6} {m['requests']:>9} {m['search']:>7} {m['feedback']:>9} {m['sparql']:>7} "
              f"{value if value is not None else float('nan'):>14.1f}")
    if rss:
        print(f"server RSS: start {rss[0][1]:.0f} MB, end {rss[-1][1]:.0f} MB, peak {max(v for _, v in rss):.0f} MB")
    print(f"rounds: {len(acknowledged)} acknowledged, {len(stored)} stored, {lost} lost, {unacknowledged} stored "
          f"without acknowledgement; server tracebacks: {server_errors}")
    print(f"integrity after the soak: {'ok' if integrity.ok else 'PROBLEMS'} {integrity.checked}")
    out = ROOT / "bench" / "results" / ("load-attack.json" if args.attack else "load.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
