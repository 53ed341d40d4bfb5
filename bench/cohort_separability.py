"""How well the synthetic cohort's diagnoses can be told apart from their terms (retrieval without feedback).

For cohorts of the given sizes (``iter_labels(n, seed)``) the script ranks, for 10 random query cases per seed and
20 seeds (the protocol of :mod:`semgraph.evaluation`, no feedback), every case of another patient by HSBD with the
combined term dissimilarity ``D = ½·δΓ + ½·δΘ`` (δΓ from proxy signatures of the ranked vectors, as
``semgraph evaluate`` does; δΘ from the bundled RadLex subset) and reports the mean NDCG@K (J&K form, relevance =
same diagnosis) for three kinds of term vectors:

* ``truth``: the noiseless ground-truth labels;
* ``reader``: the reader labels (each label flipped with probability ``--reader-noise``);
* ``predicted``: simulated predicted likelihoods ``clip(0.2 + 0.6·y + N(0, 0.15²))`` of the ground truth.

It also prints the per-diagnosis term probability table (:func:`semgraph.cohort.probability_table`) and the mimic
rates, and writes everything as JSON (default ``bench/results/cohort_separability.json``).

Run ``python -m bench.cohort_separability --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import kg
import ontology
from ontology.paper_terms import paper_terms
from semgraph.cohort import iter_labels, probability_table
from semgraph.cohort.profiles import MIMICS
from semgraph.evaluation import (
    ProtocolConfig,
    proxy_signatures,
    run_protocol,
    simulate_likelihoods,
)
from semgraph.retrieval.similarity import combine, image_dissimilarity

KINDS = ("truth", "reader", "predicted")
REPORTED_K = (1, 5, 10, 15, 20, 25)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="NDCG@K of the synthetic cohort's diagnoses from their terms.")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",") if x), default=(72, 500),
                        help="comma-separated cohort sizes (default 72,500)")
    parser.add_argument("--cohort-seed", type=int, default=0, help="seed of iter_labels (default 0)")
    parser.add_argument("--seeds", type=int, default=20, help="protocol seeds 0..N-1 (default 20)")
    parser.add_argument("--queries", type=int, default=10, help="queries per seed (default 10)")
    parser.add_argument("--weight", type=float, default=0.5, help="weight of δΓ in the combined D (default 0.5)")
    parser.add_argument("--reader-noise", type=float, default=0.05, help="reader flip probability (default 0.05)")
    parser.add_argument("--likelihood-seed", type=int, default=0, help="seed of simulate_likelihoods (default 0)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "cohort_separability.json",
                        help="JSON output path (default bench/results/cohort_separability.json)")
    args = parser.parse_args(argv)
    if not args.sizes or any(n < 2 for n in args.sizes):
        parser.error("--sizes must be integers >= 2")
    for name in ("seeds", "queries"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if not 0 <= args.weight <= 1:
        parser.error("--weight must be in [0, 1]")
    if not 0 <= args.reader_noise <= 0.5:
        parser.error("--reader-noise must be in [0, 0.5]")
    return args


def ontology_dissimilarity() -> np.ndarray:
    """δΘ of the 19 paper terms from the bundled RadLex subset (in a throw-away embedded store)."""
    terms = [t.iri for t in paper_terms()]
    with tempfile.TemporaryDirectory() as tmp:
        store = kg.open_store(Path(tmp) / "graph")
        try:
            ontology.load(store, "radlex-liver")
            return np.asarray(ontology.dissimilarity_matrix(store, terms), dtype=np.float64)
        finally:
            store.close()


def cohort_vectors(n: int, seed: int, reader_noise: float, likelihood_seed: int):
    """Term vectors of each kind, diagnoses and patients of ``iter_labels(n, seed)``."""
    rows = list(iter_labels(n, seed=seed, reader_noise=reader_noise))
    truth = np.array([r.true_labels for r in rows], dtype=np.float64)
    vectors = {
        "truth": truth,
        "reader": np.array([r.reader_labels for r in rows], dtype=np.float64),
        "predicted": simulate_likelihoods(truth, seed=likelihood_seed),
    }
    return vectors, [r.diagnosis for r in rows], [r.patient_id for r in rows]


def ndcg_at_k(vectors, diagnoses, patients, delta_theta, *, weight=0.5, seeds=20, queries=10) -> np.ndarray:
    """Mean over seeds of the per-seed mean NDCG@K (K = 1..25), combined D, no feedback."""
    categories = [t.category for t in paper_terms()]
    D = combine(image_dissimilarity(proxy_signatures(vectors)), delta_theta, weight)
    config = ProtocolConfig(n_queries=queries, rounds=0)
    per_seed = []
    for s in range(seeds):
        run = run_protocol(vectors, diagnoses, patients, categories, D, feedback="none", seed=s, config=config)
        per_seed.append(np.nanmean(run["ndcg"][:, 0, :], axis=0))
    return np.mean(per_seed, axis=0)


def evaluate(sizes, *, cohort_seed=0, seeds=20, queries=10, weight=0.5, reader_noise=0.05, likelihood_seed=0,
             delta_theta=None) -> dict:
    """``{n: {kind: NDCG@1..25}}`` for every cohort size."""
    delta_theta = ontology_dissimilarity() if delta_theta is None else delta_theta
    out = {}
    for n in sizes:
        vectors, diagnoses, patients = cohort_vectors(n, cohort_seed, reader_noise, likelihood_seed)
        out[n] = {kind: ndcg_at_k(vectors[kind], diagnoses, patients, delta_theta, weight=weight, seeds=seeds,
                                  queries=queries) for kind in KINDS}
    return out


def ndcg_table(results: dict) -> list[str]:
    head = f"{'n':>5s} {'vectors':10s} " + " ".join(f"{'@' + str(k):>6s}" for k in REPORTED_K)
    head += f" {'min':>6s} {'mean':>6s}"
    lines = [head, "-" * len(head)]
    for n, kinds in results.items():
        for kind, curve in kinds.items():
            cells = " ".join(f"{curve[k - 1]:6.3f}" for k in REPORTED_K)
            lines.append(f"{n:5d} {kind:10s} {cells} {curve.min():6.3f} {curve.mean():6.3f}")
    return lines


def probability_lines(table: list[dict]) -> list[str]:
    labels = [t.paper_label for t in paper_terms()]
    short = {"cyst": "cyst", "metastasis": "meta", "hemangioma": "hem", "hepatocellular carcinoma": "HCC",
             "focal nodular hyperplasia": "FNH", "abscess": "absc"}
    head = f"{'term':34s} " + " ".join(f"{short.get(r['diagnosis'], r['diagnosis'][:5]):>5s}" for r in table)
    lines = [head, "-" * len(head)]
    for label in labels:
        lines.append(f"{label[:34]:34s} " + " ".join(f"{r[label]:5.2f}" for r in table))
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results = evaluate(args.sizes, cohort_seed=args.cohort_seed, seeds=args.seeds, queries=args.queries,
                       weight=args.weight, reader_noise=args.reader_noise, likelihood_seed=args.likelihood_seed)
    table = probability_table()
    print(f"mean NDCG@K (J&K), HSBD with combined D (weight {args.weight}), no feedback, "
          f"{args.queries} queries x {args.seeds} seeds, cohort seed {args.cohort_seed}")
    for line in ndcg_table(results):
        print(line)
    print()
    print("P(term = 1) per diagnosis (probability_table(), mimics included)")
    for line in probability_lines(table):
        print(line)
    print()
    print("mimic rates (diagnosis -> profile: probability):")
    for d, mimics in MIMICS.items():
        total = sum(mimics.values())
        print(f"  {d:26s} " + ", ".join(f"{m} {p:.3f}" for m, p in mimics.items()) + f"  (total {total:.3f})")
    payload = {
        "config": {"sizes": list(args.sizes), "cohort_seed": args.cohort_seed, "seeds": args.seeds,
                   "queries": args.queries, "weight": args.weight, "reader_noise": args.reader_noise,
                   "likelihood_seed": args.likelihood_seed, "form": "jk", "feedback": "none",
                   "dissimilarity": "combined (proxy δΓ of the ranked vectors + δΘ radlex-liver)"},
        "ndcg": {str(n): {kind: [round(float(v), 6) for v in curve] for kind, curve in kinds.items()}
                 for n, kinds in results.items()},
        "summary": {str(n): {kind: {"min": round(float(curve.min()), 6), "mean": round(float(curve.mean()), 6)}
                             for kind, curve in kinds.items()} for n, kinds in results.items()},
        "probability_table": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                              for row in table],
        "mimics": {d: dict(m) for d, m in MIMICS.items()},
        "seconds": round(time.perf_counter() - started, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, allow_nan=False), encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
