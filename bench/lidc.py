"""Benchmark: a second, non-liver collection from real reader ratings (LIDC-IDRI lung nodules), end to end.

The LIDC development readings (``../shared/data/lidc-dev/readings.csv``: 1,290 readings of lung nodules by
several radiologists, nine ratings each; origin and licence in that folder's README) become

* a small taxonomy of our own with ``urn:lidc:`` IRIs: the root "lung nodule characteristic", one branch per
  rating (subtlety, internal structure, calcification, sphericity, margin, lobulation, spiculation, texture) and
  one class per rating level ("margin 5", alternative label "sharp margin") — 40 terms;
* a reader-ratings CSV: one case per reading, likelihood 1 for the level the reader chose and 0 for the other
  levels of that rating; the diagnosis is the reader's malignancy rating grouped as benign (1–2), indeterminate
  (3) and malignant (4–5); malignancy itself is not a term.

Then, through the command line into a fresh data folder: ``ontology load``, ``ingest --collection
lung-nodules``, the engine start from the graph (no snapshot) and from the snapshot, and ``evaluate
--likelihoods reader`` (relevance = same diagnosis; the cases of the query's patient are never ranked, so a
nodule's other readings cannot leak). Reports NDCG@10 at round 0 and after the feedback rounds for every setting
with 95 % intervals over seeds (mean ± 1.96·sd/√seeds), and writes bench/results/lidc.json.

    python -m bench.lidc                 # 20 seeds x 10 queries, 3 rounds
    python -m bench.lidc --quick         # 4 seeds x 5 queries
    python -m bench.lidc --keep DIR      # keep the files and the data folder in DIR
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_READINGS = ROOT.parent / "shared" / "data" / "lidc-dev" / "readings.csv"
BASE = "urn:lidc:"
#: rating column → (branch label, meaning of each level 1..n), after the pylidc documentation
RATINGS = {
    "subtlety": ("subtlety", ("extremely subtle", "moderately subtle", "fairly subtle", "moderately obvious",
                              "obvious")),
    "internalStructure": ("internal structure", ("soft tissue", "fluid", "fat", "air")),
    "calcification": ("calcification", ("popcorn calcification", "laminated calcification", "solid calcification",
                                        "non-central calcification", "central calcification", "no calcification")),
    "sphericity": ("sphericity", ("linear", "ovoid-linear", "ovoid", "ovoid-round", "round")),
    "margin": ("margin", ("poorly defined margin", "near poorly defined margin", "medium margin",
                          "near sharp margin", "sharp margin")),
    "lobulation": ("lobulation", ("no lobulation", "nearly no lobulation", "medium lobulation",
                                  "near marked lobulation", "marked lobulation")),
    "spiculation": ("spiculation", ("no spiculation", "nearly no spiculation", "medium spiculation",
                                    "near marked spiculation", "marked spiculation")),
    "texture": ("texture", ("non-solid ground glass", "non-solid mixed", "part solid mixed", "solid mixed",
                            "solid")),
}


def term_iri(column: str, level: int) -> str:
    return f"{BASE}{column}-{level}"


def taxonomy() -> str:
    """The rating taxonomy as Turtle (labels are ``"<rating> <level>"``, the meaning an alternative label)."""
    lines = ["@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
             "@prefix owl: <http://www.w3.org/2002/07/owl#> .",
             "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .",
             f'<{BASE}characteristic> a owl:Class ; rdfs:label "lung nodule characteristic" .']
    for column, (branch, meanings) in RATINGS.items():
        lines.append(f'<{BASE}{column}> a owl:Class ; rdfs:label "{branch}" ; rdfs:subClassOf <{BASE}characteristic> .')
        for level, meaning in enumerate(meanings, start=1):
            lines.append(f'<{term_iri(column, level)}> a owl:Class ; rdfs:label "{branch} {level}" ; '
                         f'skos:altLabel "{meaning}" ; rdfs:subClassOf <{BASE}{column}> .')
    return "\n".join(lines) + "\n"


def diagnosis(malignancy: int) -> str:
    return "benign" if malignancy <= 2 else ("indeterminate" if malignancy == 3 else "malignant")


def reader_csv(readings: Path, out: Path) -> int:
    """Write the reader-ratings CSV; return the number of cases."""
    terms = [(column, level) for column, (_, meanings) in RATINGS.items() for level in range(1, len(meanings) + 1)]
    with open(readings, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["case_id", "patient_id", "diagnosis", *(term_iri(c, lv) for c, lv in terms)])
        for r in rows:
            writer.writerow([f"lidc-{r['annotation_id']}", r["patient_id"], diagnosis(int(r["malignancy"])),
                             *("1" if int(r[c]) == lv else "0" for c, lv in terms)])
    return len(rows)


def _cli(*args: str) -> None:
    from semgraph.cli import load_commands

    load_commands().main(args=list(args), standalone_mode=False)


def _interval(mean: float, sd: float, n: int) -> tuple[float, float, float]:
    half = 1.96 * sd / np.sqrt(n)
    return mean, mean - half, mean + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=Path, default=DEFAULT_READINGS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lidc.json")
    parser.add_argument("--keep", type=Path, help="build in this new folder and keep it (the taxonomy, the CSV and "
                        "the data folder, to try the commands on), instead of a temporary one")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True)  # a new folder: never write over earlier data
    seeds, queries, rounds = (4, 5, 3) if args.quick else (20, 10, 3)
    result: dict = {"readings": str(args.readings), "seeds": seeds, "queries": queries, "rounds": rounds}
    with (contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory()) as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        (tmp / "lidc.ttl").write_text(taxonomy(), encoding="utf-8")
        n = reader_csv(args.readings, tmp / "readings.csv")
        common = ("--data-dir", str(data))
        _cli(*common, "ontology", "load", str(tmp / "lidc.ttl"), "--name", "lidc")
        t = time.perf_counter()
        _cli(*common, "ingest", str(tmp / "readings.csv"), "--collection", "lung-nodules",
             "--title", "Lung nodules (LIDC-IDRI reader ratings)", "--case-label", "Lung nodule")
        result["ingest_s"] = time.perf_counter() - t
        result["cases"] = n

        import kg
        from semgraph.retrieval.engine import Engine

        with kg.open_store(data / "graph") as store:
            t = time.perf_counter()
            engine = Engine.from_store(store, collection="lung-nodules", use_snapshot=False)
            result["engine_graph_s"] = time.perf_counter() - t
            Engine.from_store(store, collection="lung-nodules")  # writes the snapshot
            t = time.perf_counter()
            Engine.from_store(store, collection="lung-nodules")
            result["engine_snapshot_s"] = time.perf_counter() - t
            result["terms"] = len(engine.terms)
            result["categories"] = sorted(set(engine.categories))
        _cli(*common, "evaluate", "--collection", "lung-nodules", "--likelihoods", "reader", "--seeds", str(seeds),
             "--queries", str(queries), "--rounds", str(rounds), "--out", str(tmp / "evaluation"))
        evaluation = json.loads((tmp / "evaluation" / "evaluation.json").read_text(encoding="utf-8"))
    result["delta_gamma"] = evaluation["delta_gamma"]
    result["warnings"] = evaluation["warnings"]
    table = {}
    for name, s in evaluation["settings"].items():
        mean, sd = np.array(s["ndcg"]["mean"], dtype=float), np.array(s["ndcg"]["sd"], dtype=float)
        table[name] = {"ndcg10_round0": _interval(mean[0, 9], sd[0, 9], seeds),
                       "ndcg10_last": _interval(mean[rounds, 9], sd[rounds, 9], seeds)}
    result["ndcg10"] = table
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")

    print(f"LIDC lung-nodule collection: {result['cases']:,} readings, {result['terms']} terms in "
          f"{len(result['categories'])} categories")
    print(f"ingest {result['ingest_s']:.1f} s; engine start from the graph {result['engine_graph_s']:.2f} s, "
          f"from the snapshot {result['engine_snapshot_s']:.2f} s")
    print(f"δΓ: {result['delta_gamma']}")
    print(f"{'setting':34s} {'NDCG@10 round 0':>24s} {f'after {rounds} rounds':>24s}")
    for name, row in table.items():
        cells = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in (row["ndcg10_round0"], row["ndcg10_last"])]
        print(f"{name:34s} {cells[0]:>24s} {cells[1]:>24s}")
    for warning in result["warnings"]:
        print(f"warning: {warning}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
