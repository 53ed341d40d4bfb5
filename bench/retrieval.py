"""Benchmark HSBD top-K retrieval: projected L1 index vs naive per-pair HSBD vs sklearn L1 brute force.

For each database size N, random term-likelihood vectors (k = 18 terms, fixed seed) are indexed with
:class:`semgraph.retrieval.index.HSBDIndex`, and the script measures

* ``index``: median latency of a single top-K query on the projected index (``Y = A M^T``, blocked L1 scan);
* ``naive``: HSBD computed pair by pair with the literal level-by-level loop (dendrogram built once), timed on a
  subsample of pairs and EXTRAPOLATED linearly to N pairs when N exceeds the subsample (marked in the output);
* ``sklearn``: ``NearestNeighbors(metric="manhattan", algorithm="brute")`` on the raw likelihoods (plain L1, a
  different metric: a speed baseline only);
* ``rebuild``: time to go from a new dissimilarity matrix to a searchable index (new dendrogram, new M, new Y);
* ``Y MiB``: memory of the projected vectors (float32);
* ``round``: one relevance-feedback round of a retrieval session (:mod:`semgraph.feedback.sessions`) with 3 relevant and
  3 irrelevant marks, for the 19 paper terms: ``apply_feedback`` (penalty), rebuild of the index for the new D and
  the new top-K ranking with explanations, EXCLUDING the store write (median of ``--feedback-repeats``), for N up to
  ``--feedback-max`` (default 100k);
* ``write``: the round's ONE atomic update into its own named graph of an embedded (on-disk) store, alone;
* ``pruning``: the same top-K searches with the bound-and-refine search of :class:`HSBDIndex` (the default from
  ``PRUNE_MIN_ROWS`` rows on) and with the full scan, for an index that stores its projections and for one derived
  for a new D (``with_dissimilarity``, as after a feedback round), on two kinds of data: the random vectors and
  dissimilarities above, and cohort-like data (the synthetic cohort's reader labels with noise 0.15, as in the web
  benchmark's large store, and the ontology baseline D of the 19 paper terms from the bundled RadLex subset). It
  also reports the share of rows whose exact distance the pruned search computed.

Run ``python -m bench.retrieval --help`` for the options. Results are printed as a table and written as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from semgraph.retrieval import hsbd
from semgraph.retrieval.index import HSBDIndex

DEFAULT_SIZES = (72, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (72, 10_000)
N_TERMS = 18


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark HSBD top-K retrieval (projected index vs naive HSBD vs sklearn manhattan).",
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: tuple(int(x.replace("_", "")) for x in s.split(",") if x),
        default=None,
        help=f"comma-separated database sizes N (default {','.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument("--quick", action="store_true", help=f"small run: sizes {QUICK_SIZES}, fewer repeats")
    parser.add_argument("--top-k", type=int, default=25, help="number of results per query (default 25)")
    parser.add_argument("--repeats", type=int, default=None, help="queries timed per size (default 30, quick 5)")
    parser.add_argument(
        "--subsample", type=int, default=300, help="pairs timed for the naive per-pair HSBD (default 300)"
    )
    parser.add_argument("--block-size", type=int, default=65536, help="index block size in rows (default 65536)")
    parser.add_argument("--feedback-repeats", type=int, default=5, help="feedback rounds timed per size (default 5)")
    parser.add_argument("--feedback-max", type=int, default=100_000,
                        help="largest N for the feedback-round measurement (default 100000)")
    parser.add_argument("--seed", type=int, default=20150101, help="random seed (default 20150101)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "retrieval.json",
        help="JSON output path (default bench/results/retrieval.json)",
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.repeats is None:
        args.repeats = 5 if args.quick else 30
    if args.quick:
        args.subsample = min(args.subsample, 50)
    for name in ("top_k", "repeats", "subsample", "block_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if any(n < 1 for n in args.sizes):
        parser.error("--sizes must be positive integers")
    return args


def random_dissimilarity(rng: np.random.Generator, k: int) -> np.ndarray:
    """Symmetric, zero-diagonal dissimilarities uniform in [0.05, 1]."""
    D = np.zeros((k, k))
    D[np.triu_indices(k, 1)] = rng.uniform(0.05, 1.0, size=k * (k - 1) // 2)
    return D + D.T


def feedback_round(rng: np.random.Generator, D: np.ndarray, rho: float = 0.1) -> np.ndarray:
    """A relevance-feedback-like change of D: random +-rho steps on a few pairs, clipped to [1e-3, 1]."""
    k = D.shape[0]
    S = np.zeros((k, k))
    iu = np.triu_indices(k, 1)
    S[iu] = rng.choice([-1.0, 0.0, 0.0, 0.0, 1.0], size=iu[0].size)
    S = S + S.T
    new = np.clip(D + rho * S, 0.0, 1.0)
    np.fill_diagonal(new, 0.0)
    return hsbd.clamp(new)


def level_partitions(tree: hsbd.Dendrogram) -> list[np.ndarray]:
    """Cluster labels of every level (level 0 = singletons), replaying the merges."""
    labels = np.arange(tree.k)
    out = []
    for level in range(tree.k):
        out.append(np.unique(labels, return_inverse=True)[1].reshape(-1))
        if level < tree.k - 1:
            members = tree.membership[tree.k + level].astype(bool)
            labels[members] = labels[members].min()
    return out


def naive_hsbd(a: np.ndarray, b: np.ndarray, partitions, level_weights) -> float:
    """Literal HSBD of one pair: coarsen by sum at every level, Manhattan, weighted sum (O(k^2))."""
    diff = a - b
    total = 0.0
    for labels, w in zip(partitions, level_weights):
        total += w * np.abs(np.bincount(labels, weights=diff)).sum()
    return total


def median_seconds(func, args_list) -> float:
    times = []
    for args in args_list:
        t0 = time.perf_counter()
        func(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_size(n: int, args, rng: np.random.Generator) -> dict:
    from sklearn.neighbors import NearestNeighbors

    k = N_TERMS
    D = random_dissimilarity(rng, k)
    A = rng.random((n, k))
    queries = rng.random((args.repeats, k))
    top = min(args.top_k, n)

    t0 = time.perf_counter()
    index = HSBDIndex(D, range(n), A, block_size=args.block_size)
    build_s = time.perf_counter() - t0

    index.search(queries[0], k=top)  # warm-up
    index_s = median_seconds(lambda q: index.search(q, k=top), [(q,) for q in queries])

    # naive per-pair HSBD with the dendrogram built once; measured on up to `subsample` pairs
    tree = index.tree
    parts = level_partitions(tree)
    m = min(n, args.subsample)
    q0 = queries[0]
    t0 = time.perf_counter()
    naive = np.array([naive_hsbd(q0, A[i], parts, tree.level_weights) for i in range(m)])
    per_pair = (time.perf_counter() - t0) / m
    if m == n:
        t0 = time.perf_counter()
        np.argsort(naive, kind="stable")[:top]
        naive_s = per_pair * n + (time.perf_counter() - t0)
        naive_kind = "measured"
    else:
        naive_s = per_pair * n
        naive_kind = f"extrapolated from {m} pairs"
    # sanity: the projected distances equal the naive ones on the subsample (float32 storage -> ~1e-6)
    Y = index.projected[:m].astype(np.float64)
    proj = np.abs(Y - (index.tree.projection @ q0)).sum(axis=1)
    max_err = float(np.max(np.abs(proj - naive) / np.maximum(1.0, naive)))

    nn = NearestNeighbors(n_neighbors=top, metric="manhattan", algorithm="brute").fit(A)
    nn.kneighbors(queries[:1])  # warm-up
    sklearn_s = median_seconds(lambda q: nn.kneighbors(q[None, :]), [(q,) for q in queries])

    D2 = feedback_round(rng, D)
    t0 = time.perf_counter()
    M2 = hsbd.projection(D2)
    m_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.rebuild(D2)
    rebuild_s = time.perf_counter() - t0
    assert np.allclose(index.projection, M2)

    return {
        "n": n,
        "k_terms": k,
        "dim_projected": index.dim,
        "top_k": top,
        "build_s": build_s,
        "index_query_s": index_s,
        "naive_query_s": naive_s,
        "naive_kind": naive_kind,
        "naive_per_pair_s": per_pair,
        "sklearn_query_s": sklearn_s,
        "naive_over_index": naive_s / index_s,
        "sklearn_over_index": sklearn_s / index_s,
        "dendrogram_and_M_s": m_s,
        "rebuild_s": rebuild_s,
        "y_bytes": index.nbytes,
        "a_bytes": n * k * 4,
        "max_rel_err_projected_vs_naive": max_err,
    }


def cohort_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(A, D): the synthetic cohort's reader labels with noise (labels of at most 100k cases, repeated) and the
    ontology baseline (Kurtz measure) of the paper terms on the bundled RadLex subset."""
    import tempfile

    import kg
    import ontology
    from ontology.paper_terms import paper_terms
    from semgraph.cohort import iter_labels

    labels = np.array([case.reader_labels for case in iter_labels(min(n, 100_000), seed=0)])
    labels = labels[np.arange(n) % labels.shape[0]]
    A = np.clip(labels + rng.normal(0.0, 0.15, labels.shape), 0.0, 1.0)
    with tempfile.TemporaryDirectory() as folder:
        store = kg.open_store(folder)
        try:
            ontology.load(store, ontology.BUNDLED_RADLEX)
            D = ontology.dissimilarity_matrix(store, [t.iri for t in paper_terms()], measure="kurtz")
        finally:
            store.close()
    return A, D


@contextlib.contextmanager
def counted(index: HSBDIndex):
    """Count, on this index only, the rows whose exact distance a search computes (candidates and survivors of the
    pruned search) and the searches that scanned every row (not pruned, or fell back)."""
    counts = {"exact rows": 0, "scans": 0}

    def exact(q, rows):
        counts["exact rows"] += rows.size
        return HSBDIndex._exact_distances(index, q, rows)

    def scan(q, k, mask):
        counts["scans"] += 1
        return HSBDIndex._search_scan(index, q, k, mask)

    index._exact_distances, index._search_scan = exact, scan
    try:
        yield counts
    finally:
        del index._exact_distances, index._search_scan


def bench_pruning(n: int, args, rng: np.random.Generator) -> list[dict]:
    """Pruned search vs full scan, stored and derived index, on random and on cohort-like data."""
    import semgraph.retrieval.index as index_module

    rows = []
    for data in ("random", "cohort"):
        A, D = (rng.random((n, N_TERMS)), random_dissimilarity(rng, N_TERMS)) if data == "random" \
            else cohort_data(n, rng)
        queries = A[rng.integers(0, n, size=args.repeats)]
        top = min(args.top_k, n)
        base = HSBDIndex(D, range(n), A, block_size=args.block_size)
        row = {"n": n, "data": data}
        row.update(read_and_faiss(base, D, A, queries, top, args))
        for kind, index in (("stored", base), ("derived", base.with_dissimilarity(feedback_round(rng, D)))):
            index.search(queries[0], k=top)  # warm-up
            with counted(index) as counts:
                row[f"{kind}_pruned_s"] = median_seconds(lambda q, _i=index, _t=top: _i.search(q, k=_t),
                                                         [(q,) for q in queries])
            row[f"{kind}_exact_share"] = counts["exact rows"] / (n * len(queries))
            row[f"{kind}_scan_share"] = counts["scans"] / len(queries)
            saved, index_module.PRUNE_MIN_ROWS = index_module.PRUNE_MIN_ROWS, sys.maxsize
            try:
                row[f"{kind}_scan_s"] = median_seconds(lambda q, _i=index, _t=top: _i.search(q, k=_t),
                                                       [(q,) for q in queries])
            finally:
                index_module.PRUNE_MIN_ROWS = saved
        rows.append(row)
    return rows


def read_and_faiss(index: HSBDIndex, D: np.ndarray, A: np.ndarray, queries: np.ndarray, top: int, args) -> dict:
    """Beside the pruned search: one pass that only reads the stored projections (a column sum of ``Y``), and
    ``faiss.IndexFlat(METRIC_L1)`` on the same projections (the index's ``faiss`` backend, one thread), whether its top-K
    distances equal the pruned search's (None when faiss is not installed)."""
    Y = index.projected
    read_s = median_seconds(lambda _q: Y.sum(axis=0), [(q,) for q in queries])
    try:
        import faiss
    except ImportError:
        return {"read_s": read_s, "faiss_s": None, "faiss_same": None}
    faiss.omp_set_num_threads(1)  # one thread, as the numpy search: on a loaded 2-core machine OpenMP spins
    flat = HSBDIndex(D, range(A.shape[0]), A, block_size=args.block_size, backend="faiss")
    flat.search(queries[0], k=top)  # warm-up: builds the faiss index
    faiss_s = median_seconds(lambda q: flat.search(q, k=top), [(q,) for q in queries])
    same = all(np.allclose(np.sort(flat.search(q, k=top).distances), np.sort(index.search(q, k=top).distances),
                           rtol=1e-5, atol=1e-5) for q in queries)
    return {"read_s": read_s, "faiss_s": faiss_s, "faiss_same": same}


def bench_feedback(n: int, args, rng: np.random.Generator) -> dict:
    """One feedback round (compute + rebuild + re-rank) without and the atomic round write alone."""
    import tempfile

    import kg
    from ontology.paper_terms import paper_terms
    from semgraph.feedback.sessions import start_session
    from semgraph.graph.casegraph import Case
    from semgraph.retrieval.engine import Engine

    terms = paper_terms()
    k = len(terms)
    D = random_dissimilarity(rng, k)
    A = rng.random((n, k))
    cases = [Case(f"c{i}", f"p{i}", f"s{i}") for i in range(n)]
    engine = Engine([t.iri for t in terms], cases, A, D, labels=[t.label for t in terms],
                    categories=[t.category for t in terms])
    round_s, write_s, changes = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        store = kg.open_store(folder)
        session = start_session(store, engine, "c0", "bench", k=min(args.top_k, n - 1))
        for _ in range(args.feedback_repeats):
            top = [h.case_id for h in session.ranking]
            marks = {c: "relevant" for c in top[:3]} | {c: "irrelevant" for c in top[3:6]}
            t0 = time.perf_counter()
            rnd = session.compute_round(marks)
            session._set_state(rnd.dissimilarity, rnd.query, rnd.weights)
            round_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            session._write(rnd)
            write_s.append(time.perf_counter() - t0)
            session.rounds.append(rnd)
            changes.append(len(rnd.changes))
        store.close()
    return {"feedback_round_s": statistics.median(round_s), "round_write_s": statistics.median(write_s),
            "feedback_changes_mean": float(np.mean(changes))}


def format_table(rows: list[dict]) -> str:
    header = (
        f"{'N':>9} | {'index ms':>9} | {'naive ms':>12} | {'naive/idx':>9} | {'sklearn ms':>10} | "
        f"{'skl/idx':>7} | {'M ms':>6} | {'rebuild ms':>10} | {'Y MiB':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        mark = "" if r["naive_kind"] == "measured" else "*"
        lines.append(
            f"{r['n']:>9,} | {1e3 * r['index_query_s']:>9.3f} | {1e3 * r['naive_query_s']:>11.1f}{mark:1} | "
            f"{r['naive_over_index']:>9.0f} | {1e3 * r['sklearn_query_s']:>10.3f} | {r['sklearn_over_index']:>7.2f} | "
            f"{1e3 * r['dendrogram_and_M_s']:>6.2f} | {1e3 * r['rebuild_s']:>10.2f} | {r['y_bytes'] / 2**20:>7.2f}"
        )
    fb = [r for r in rows if "feedback_round_s" in r]
    if fb:
        lines.append("")
        lines.append(f"{'N':>9} | {'round ms':>9} | {'write ms':>9} | {'pairs changed':>13}")
        for r in fb:
            lines.append(f"{r['n']:>9,} | {1e3 * r['feedback_round_s']:>9.2f} | {1e3 * r['round_write_s']:>9.2f} | "
                         f"{r['feedback_changes_mean']:>13.1f}")
        lines.append("round = one feedback round (apply_feedback + index rebuild + new top-K with explanations), "
                     "store write excluded; write = the round's atomic update to an embedded store.")
        lines.append("")
    pr = [r for r in rows if "pruning" in r]
    if pr:
        lines.append(f"{'N':>9} | {'data':>6} | {'stored ms':>9} | {'scan ms':>8} | {'scan/pr':>7} | {'exact %':>7} | "
                     f"{'derived ms':>10} | {'scan ms':>8} | {'scan/pr':>7} | {'exact %':>7} | {'scanned %':>10}")
        for r in pr:
            for p in r["pruning"]:
                lines.append(
                    f"{p['n']:>9,} | {p['data']:>6} | {1e3 * p['stored_pruned_s']:>9.3f} | {1e3 * p['stored_scan_s']:>8.3f}"
                    f" | {p['stored_scan_s'] / p['stored_pruned_s']:>7.2f} | {100 * p['stored_exact_share']:>7.2f} | "
                    f"{1e3 * p['derived_pruned_s']:>10.3f} | {1e3 * p['derived_scan_s']:>8.3f} | "
                    f"{p['derived_scan_s'] / p['derived_pruned_s']:>7.2f} | {100 * p['derived_exact_share']:>7.2f} | "
                    f"{50 * (p['stored_scan_share'] + p['derived_scan_share']):>10.0f}")
        lines.append("")
        lines.append(f"{'N':>9} | {'data':>6} | {'pruned ms':>9} | {'read ms':>8} | {'pruned/read':>11} | "
                     f"{'faiss ms':>8} | {'pruned/faiss':>12} | {'same top-K':>10}")
        for r in pr:
            for p in r["pruning"]:
                faiss_ms = "-" if p["faiss_s"] is None else f"{1e3 * p['faiss_s']:.3f}"
                ratio = "-" if p["faiss_s"] is None else f"{p['stored_pruned_s'] / p['faiss_s']:.2f}"
                lines.append(
                    f"{p['n']:>9,} | {p['data']:>6} | {1e3 * p['stored_pruned_s']:>9.3f} | {1e3 * p['read_s']:>8.3f}"
                    f" | {p['stored_pruned_s'] / p['read_s']:>11.2f} | {faiss_ms:>8} | {ratio:>12} | "
                    f"{'-' if p['faiss_same'] is None else 'yes' if p['faiss_same'] else 'NO':>10}")
        lines.append("pruned = the stored index's median top-K query (as above); read = one pass that only sums the "
                     "stored projections Y; faiss = faiss.IndexFlat(METRIC_L1) on the same Y, one thread (median top-K query); "
                     "same top-K = equal distances for every query.")
        lines.append("stored / derived = median top-K query, pruned (the default) on an index storing Y / derived for "
                     "a new D; scan = the same with pruning off; exact % = rows whose exact distance was computed; "
                     "scanned % = searches that scanned all rows (weak bounds, or a recent search on that index had them).")
        lines.append("")
    lines.append(
        "index = projected HSBD index, median single top-K query; naive = per-pair level-by-level HSBD "
        "(* extrapolated linearly from a subsample);"
    )
    lines.append(
        "sklearn = NearestNeighbors(manhattan, brute) on raw likelihoods (plain L1); M = new dendrogram + M; "
        "rebuild = new D -> M -> Y for all N."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    for n in args.sizes:
        print(f"N = {n:,} ...", file=sys.stderr, flush=True)
        row = bench_size(n, args, rng)
        if n <= args.feedback_max and n > 6:
            row.update(bench_feedback(n, args, rng))
        row["pruning"] = bench_pruning(n, args, rng)
        rows.append(row)
    print(format_table(rows))
    import sklearn

    report = {
        "benchmark": "hsbd_retrieval",
        "config": {
            "sizes": list(args.sizes),
            "k_terms": N_TERMS,
            "top_k": args.top_k,
            "repeats": args.repeats,
            "subsample": args.subsample,
            "block_size": args.block_size,
            "seed": args.seed,
            "feedback_repeats": args.feedback_repeats,
            "feedback_max": args.feedback_max,
            "quick": args.quick,
        },
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
