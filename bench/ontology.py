"""Benchmark the ontology layer: full RadLex load, δΘ matrices, SPARQL vs networkx hierarchy queries.

    python -m bench.ontology [--csv PATH] [--terms 500] [--pairs 200] [--repeat 5]

Prints a table and writes bench/results/ontology.json. Goals (issue 3): 18×18 matrix < 50 ms warm, full RadLex load
< 10 s. Times are wall-clock medians on this machine; the ratio columns compare methods measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import kg
import ontology
from ontology.measures import dissimilarity_matrix
from ontology.paper_terms import paper_terms

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared/data/radlex/sources/radlex_2017-01_tekram_name_rid_parent.csv.gz"


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Median wall time in seconds over ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="RadLex CSV export (name,RID,parent RID)")
    parser.add_argument("--terms", type=int, default=500, help="random terms for the large δΘ matrix")
    parser.add_argument("--pairs", type=int, default=200, help="term pairs for the SPARQL vs networkx comparison")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ontology.json")
    args = parser.parse_args()
    rows: list[tuple[str, float, str]] = []

    with tempfile.TemporaryDirectory() as folder:
        store = kg.open_store(Path(folder) / "graph")
        load_s, info = timed(lambda: ontology.load(store, args.csv, name="radlex-full"))
        rows.append((f"load full RadLex CSV ({info.triples:,} triples), new store", load_s, "goal < 10 s"))
        reload_s, _ = timed(lambda: ontology.load(store, args.csv, name="radlex-full"))
        rows.append(("reload (atomic replace of the same graph)", reload_s, ""))
        cache_s, h = timed(lambda: ontology.hierarchy(store, "radlex-full"))
        rows.append((f"build networkx cache from the store ({len(h):,} classes)", cache_s, "once per load"))
        ontology.load(store, "radlex-liver")
        subset = ontology.hierarchy(store, "radlex-liver")

        paper = [t.iri for t in paper_terms()]
        cold_s, _ = timed(lambda: dissimilarity_matrix(ontology.Hierarchy.from_edges(
            [(c, p) for c in subset for p in subset.parents(c)], root=subset.root), paper))
        rows.append((f"{len(paper)}x{len(paper)} kurtz, cold (incl. hierarchy build, subset)", cold_s, ""))
        warm_s, _ = timed(lambda: dissimilarity_matrix(h, paper), args.repeat)
        rows.append((f"{len(paper)}x{len(paper)} kurtz, warm (full RadLex)", warm_s, "goal < 50 ms"))
        api_s, _ = timed(lambda: ontology.dissimilarity_matrix(store, paper, ontology="radlex-full"), args.repeat)
        rows.append((f"{len(paper)}x{len(paper)} via ontology.dissimilarity_matrix(store, ...)", api_s,
                     "incl. catalog query"))

        rng = random.Random(0)
        sample = rng.sample(sorted(t for t in h if t != h.root), args.terms)
        big_h = ontology.Hierarchy.from_edges([(c, p) for c in h for p in h.parents(c)], root=h.root)
        big_s, _ = timed(lambda: dissimilarity_matrix(big_h, sample))
        rows.append((f"{args.terms}x{args.terms} kurtz, random terms, cold caches", big_s, ""))
        big_warm_s, _ = timed(lambda: dissimilarity_matrix(big_h, sample), args.repeat)
        rows.append((f"{args.terms}x{args.terms} kurtz, warm", big_warm_s, ""))

        sparql = ontology.sparql_hierarchy(store, "radlex-liver")
        pool = sorted(t for t in subset if t != subset.root)
        pairs = [tuple(rng.sample(pool, 2)) for _ in range(args.pairs)]
        nx_s, nx_answers = timed(lambda: [(subset.lca(a, b), subset.path_length(a, b)) for a, b in pairs])
        sp_s, sp_answers = timed(lambda: [(sparql.lca(a, b), sparql.path_length(a, b)) for a, b in pairs])
        agree = sum(x == y for x, y in zip(nx_answers, sp_answers))
        rows.append((f"LCA + path, {args.pairs} pairs, networkx cache (subset)", nx_s, ""))
        rows.append((f"LCA + path, {args.pairs} pairs, SPARQL on the store (subset)", sp_s,
                     f"SPARQL/networkx = {sp_s / nx_s:,.0f}x; answers agree {agree}/{args.pairs}"))
        store.close()

    width = max(len(r[0]) for r in rows)
    print(f"{'measurement'.ljust(width)}  {'seconds':>10}  note")
    for name, seconds, note in rows:
        print(f"{name.ljust(width)}  {seconds:>10.4f}  {note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "csv": str(args.csv), "rows": [{"measurement": n, "seconds": s, "note": note} for n, s, note in rows],
    }, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
