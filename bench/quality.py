"""Benchmark: retrieval quality with relevance feedback on honest likelihoods, over several synthetic cohorts.

For each cohort seed (default 5), a 72-case cohort is generated, ingested (texture features) and its term models
are trained twice: once on all cases (the model whose term signatures give the data-driven dissimilarity δΓ, as
`semgraph train` does) and once per fold of patients, so that every case gets **out-of-fold** likelihoods from
models that never saw its patient (``--folds``; default leave-one-patient-out). The protocol of
:func:`semgraph.evaluation.compare` then runs on those likelihoods and on the ground-truth term vectors (the
ceiling): for every query drawn (``--queries`` per protocol seed, ``--seeds`` seeds), the cases of other patients
are ranked by HSBD with D = δΓ, ontology-only δΘ or combined, or by plain L1, and a simulated reader marks up to 3
relevant and 3 irrelevant cases among the top 10 per round for every feedback algorithm.

The table gives, per setting, NDCG@10 before feedback and after the last round (mean over all runs, one run = one
query of one seed of one cohort, with a 95 % percentile-bootstrap interval), the mean gain over round 0 with the
share of runs made better / worse, and the paired difference after the last round against plain L1 + Rocchio,
with the share of runs where the setting is better / worse. The mean out-of-fold AUC of the term models (and the
lowest term's) is printed above it. JSON goes to bench/results/quality.json.

Learning across sessions (issue 17, point 4; :func:`semgraph.evaluation.promotion.cross_session`): per cohort and
protocol seed, the patients are split in halves; 3 simulated readers run 10 sessions each on training queries
(training cases only), what the sessions agree on is promoted by the vote of ``semgraph promote`` (at least 3
independent sessions of one sign, more for than against, mean of the agreeing final values), and every held-out
query is ranked at round 0 with D0 and with the promoted D. A second table gives, per source / D0 / algorithm,
round-0 NDCG@10 on held-out queries before → after promotion, the paired difference with its interval and the share
of held-out queries made better / worse (JSON: ``promotion``).

    python -m bench.quality                # 5 cohorts x 20 seeds x 10 queries, 3 rounds
    python -m bench.quality --quick        # 2 cohorts x 5 seeds, 5-fold over patients
    python -m bench.quality --promotion-only   # only the promotion experiment (quality-promotion.json)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import kg
import ontology
from semgraph import cohort
from semgraph.evaluation import FEEDBACKS, ProtocolConfig, compare
from semgraph.evaluation.intervals import bootstrap_mean, compare_paired
from semgraph.evaluation.promotion import cross_session
from semgraph.evaluation.report import format_summary, summarise_runs
from semgraph.exchange import ingest, training
from semgraph.graph.casegraph import read_cases, read_likelihoods
from semgraph.graph.collection import bundled
from semgraph.retrieval.similarity import combine, image_dissimilarity
from semgraph.terms.evaluation import lopo_auc

#: Term-dissimilarity learning together with Rocchio's query movement (the method as the web app runs it), and
#: Rocchio with the per-term weights of ``reweight`` on plain L1 and on HSBD (docs/algorithms.md §5.7).
COMBINED = ("penalty+rocchio", "regularised+rocchio", "rocchio+reweight", "penalty+rocchio+reweight")
#: The promotion experiment: baselines D0 and session algorithms (learning D; with Rocchio, the web app's way).
PROMOTION_D = ("combined", "ontology")
PROMOTION_FEEDBACKS = ("penalty", "regularised+rocchio")


def promotion_runs(data: dict, seeds, rounds: int, out: dict) -> None:
    """Append, per setting ``source/D0/feedback``, every split's held-out queries (before, after, promoted pairs)."""
    for src, vectors in (("crossval", data["vectors"]), ("truth", data["truth"])):
        for dname in PROMOTION_D:
            for fb in PROMOTION_FEEDBACKS:
                acc = out.setdefault(f"{src}/{dname}/{fb}", {"before": [], "after": [], "pairs": [], "splits": 0})
                for s in seeds:
                    r = cross_session(vectors, data["diagnoses"], data["patients"], data["categories"],
                                      data["dissimilarities"][dname], rounds=rounds, feedback=fb, seed=s,
                                      case_ids=data["ids"], terms=data["terms"])
                    acc["before"].extend(r["before"])
                    acc["after"].extend(r["after"])
                    acc["pairs"].append(len(r["promoted"]))
                    acc["splits"] += 1


def summarise_promotion(runs: dict) -> dict:
    return {name: {"before": bootstrap_mean(r["before"]).as_dict(), "after": bootstrap_mean(r["after"]).as_dict(),
                   "difference": compare_paired(r["after"], r["before"]).as_dict(), "splits": r["splits"],
                   "promoted_pairs_mean": round(float(np.mean(r["pairs"])), 2)}
            for name, r in runs.items()}


def format_promotion(summary: dict) -> list[str]:
    def iv(e, signed=False):
        f = "+.3f" if signed else ".3f"
        return f"{e['mean']:{f}} [{e['low']:{f}}, {e['high']:{f}}]"
    lines = ["| promotion: round-0 NDCG@10 held-out | before | after | difference | better / worse | pairs promoted |",
             "|---|---|---|---|---|---|"]
    for name, s in summary.items():
        d = s["difference"]
        lines.append(f"| {name} | {iv(s['before'])} | {iv(s['after'])} | {iv(d['difference'], True)} | "
                     f"{d['better']:.0%} / {d['worse']:.0%} | {s['promoted_pairs_mean']:.1f} |")
    return lines


def cohort_data(seed: int, n: int, size: int, folds: int | None, folder: Path) -> dict:
    """Generate, ingest and model one cohort; its out-of-fold and true term vectors, labels and dissimilarities."""
    manifest = cohort.generate(n=n, seed=seed, size=size, out_dir=folder / "cohort", progress=False)
    data_dir = folder / "data"
    with kg.open_store(data_dir / "graph") as store:
        ontology.load(store, ontology.BUNDLED_RADLEX)
        ingest.ingest(store, manifest, data_dir, progress=False)
        model, data = training.train(store, data_dir)
        result = lopo_auc(data.X, data.Y, data.groups, patches=data.patches, patch_kinds=data.kinds,
                          patch_case=data.case, n_splits=folds)
        collection = bundled()
        terms = list(collection.terms)
        index = [result.terms.index(t) for t in terms]
        crossval = dict(zip(data.case_ids, result.likelihoods[:, index]))
        truth_ids, truth = read_likelihoods(store, terms, kinds=("truth",))
        truth_of = dict(zip(truth_ids, truth))
        cases = {c.case_id: c for c in read_cases(store)}
        ids = [c for c in data.case_ids if c in truth_of and cases[c].diagnosis]
        delta_theta = ontology.dissimilarity_matrix(store, terms)
    rows = model.signatures_[[list(model.terms_).index(t) for t in terms]]
    delta_gamma = image_dissimilarity(rows)
    return {"ids": ids, "vectors": np.array([crossval[c] for c in ids]), "truth": np.array([truth_of[c] for c in ids]),
            "diagnoses": [cases[c].diagnosis for c in ids], "patients": [cases[c].patient_id for c in ids],
            "categories": list(collection.categories),
            "dissimilarities": {"image": delta_gamma, "ontology": delta_theta,
                                "combined": combine(delta_gamma, delta_theta, 0.5)},
            "auc": [None if np.isnan(a) else float(a) for a in result.auc[index]], "terms": terms}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohorts", type=int, default=5, help="cohort seeds 0..N-1")
    parser.add_argument("--cases", type=int, default=72)
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seeds", type=int, default=20, help="protocol seeds per cohort")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folds", type=int, default=None, help="GroupKFold over patients (default: one per patient)")
    parser.add_argument("--quick", action="store_true", help="2 cohorts, 5 seeds, 5 folds")
    parser.add_argument("--promotion-only", action="store_true",
                        help="run only the promotion experiment (default output quality-promotion.json)")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/quality.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.cohorts, args.seeds, args.folds = 2, 5, 5
    if args.out is None:
        args.out = Path(__file__).resolve().parent / "results" / (
            "quality-promotion.json" if args.promotion_only else "quality.json")
    start = time.perf_counter()
    runs: dict[str, list[list[float]]] = {}
    promotion: dict[str, dict] = {}
    aucs = []
    config = ProtocolConfig(n_queries=args.queries, rounds=args.rounds)
    feedbacks = (*FEEDBACKS, *COMBINED)
    for seed in range(args.cohorts):
        print(f"cohort {seed}: generate, ingest, train, out-of-fold likelihoods ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
            data = cohort_data(seed, args.cases, args.size, args.folds, Path(tmp))
        aucs.append(data["auc"])
        if not args.promotion_only:
            print(f"cohort {seed}: protocol ...", file=sys.stderr, flush=True)
            result = compare(data["vectors"], data["diagnoses"], data["patients"], data["categories"],
                             data["dissimilarities"], truth=data["truth"], seeds=range(args.seeds), config=config,
                             case_ids=data["ids"], source="crossval", feedbacks=feedbacks)
            for name, s in result["settings"].items():
                runs.setdefault(name, []).extend(s["at10"])
        print(f"cohort {seed}: promotion across sessions ...", file=sys.stderr, flush=True)
        promotion_runs(data, range(args.seeds), args.rounds, promotion)
    summary = summarise_runs(runs)
    promotion_summary = summarise_promotion(promotion)
    auc = np.array(aucs, dtype=np.float64)
    per_term = np.nanmean(auc, axis=0)
    print(f"out-of-fold AUC of the term models: mean {np.nanmean(per_term):.3f}, lowest term {np.nanmin(per_term):.3f} "
          f"({data['terms'][int(np.nanargmin(per_term))]}); {args.cohorts} cohorts x {args.seeds} seeds x "
          f"{args.queries} queries, {args.rounds} rounds, NDCG@10 with 95 % bootstrap intervals over runs")
    if summary:
        for line in format_summary(summary):
            print(line)
        print()
    for line in format_promotion(promotion_summary):
        print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "config": {**vars(args), "out": str(args.out)}, "seconds": round(time.perf_counter() - start, 1),
        "auc": {"per_term": dict(zip(data["terms"], [None if np.isnan(a) else round(float(a), 4) for a in per_term])),
                "mean": round(float(np.nanmean(per_term)), 4)},
        "settings": summary, "promotion": promotion_summary}, indent=1))
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
