"""Benchmark: ROI-level feature extraction rate for 128×128 lesion regions (Riesz vs wavelet baseline),
and the whole ingest (load DICOM + mask, ROI and patch features, feature file, one store write per case).

Each ROI of the feature rows is a disk of diameter 128 px (bounding box 128×128) inside a 192×192 slice of
liver-like noise. The whole-ingest rows run `semgraph.exchange.ingest.ingest` on a generated cohort (256×256 slices, the
generator's lesion sizes) into an embedded store, each in a fresh subprocess so that its peak resident memory
(``ru_maxrss``) and its tracemalloc peak belong to that ingest alone: 10,000 cases (1,000 with --quick).
The first table compares, in the same run, the previous ingest path (``extract`` + ``extract_patches``, two
transforms; the original code kept in ``bench/legacy_features.py``) with ``extract_all`` (one transform), and
the ROI-vector-only call old vs new. The stage table times each step of an ingest on 200 cases: DICOM decode,
PNG mask read, features, feature file, store write (the one atomic write per case).
The parallel table (issue 20) ingests a generated cohort of --size px slices (default 128; --cases, default 2,000)
four times, each into a fresh store in a fresh subprocess: the baseline of one process writing one case per
transaction (jobs=1, batch=1, the ingest before issue 20), --batch cases per transaction alone, --jobs worker
processes (default: one per core) alone, and both; the ratio to the baseline of the same run is what counts on a
shared machine.
Prints tables and writes bench/results/ingest.json.

    python -m bench.ingest            # full run (the 10k-case ingest takes several minutes)
    python -m bench.ingest --quick    # about a minute
    python -m bench.ingest --parallel-only --cases 2000 --jobs 2 --batch 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import legacy_features as _legacy
from semgraph.exchange.ingest import DEFAULT_BATCH
from semgraph.features import (
    FeatureConfig,
    extract,
    extract_all,
    extract_patches,
    feature_names,
)

VARIANTS = [
    ("riesz", "riesz (default: N=4, J=4, pad 16, single)", FeatureConfig()),
    ("riesz_double", "riesz, double precision", FeatureConfig(precision="double")),
    ("riesz_pad96", "riesz, pad 96 (= 2^J*6, ALGORITHMS §4.3)", FeatureConfig(padding=96)),
    ("wavelet", "wavelet baseline (haar swt2, J=4)", FeatureConfig(method="wavelet")),
]


def make_rois(count: int, seed: int = 0, size: int = 192, diameter: int = 128):
    """``count`` (image, mask) pairs: a textured lesion disk in a noisy 60 HU background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    mask = (yy - c) ** 2 + (xx - c) ** 2 <= (diameter / 2) ** 2 - 0.25
    rois = []
    for _ in range(count):
        image = 60 + 12 * rng.normal(size=(size, size))
        image[mask] = 25 + 30 * rng.normal(size=mask.sum())
        rois.append((image, mask))
    return rois


def rate(func, rois, config, min_seconds: float) -> tuple[float, int]:
    """ROIs per second of ``func`` over repeated passes for at least ``min_seconds``."""
    func(*rois[0], config)  # warm the filter cache
    done, start = 0, time.perf_counter()
    while True:
        for image, mask in rois:
            func(image, mask, config)
        done += len(rois)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed, done


def old_two_calls(image, mask, config):
    """The previous ingest path: two calls, each transforming the lesion box (kept in bench/legacy_features.py)."""
    return _legacy.extract(image, mask, config), _legacy.extract_patches(image, mask, config)


def new_single(image, mask, config):
    """The ingest path now: one transform for the ROI vector and the patches."""
    return extract_all(image, mask, config)


def old_roi_only(image, mask, config):
    return _legacy.extract(image, mask, config)


def stage_profile(cohort: str, n: int, config: FeatureConfig) -> dict:
    """Seconds per case of each ingest stage on the first ``n`` cases of a generated cohort (in this process)."""
    import tempfile

    import kg
    from semgraph.cohort import read_manifest
    from semgraph.exchange.feature_files import CaseFeatures, save_features
    from semgraph.exchange.ingest import _manifest_case
    from semgraph.graph.casegraph import Annotation, write_case
    from semgraph.imaging import load_image, roi_mask

    manifest = read_manifest(Path(cohort) / "manifest.json")
    t = dict.fromkeys(("dicom", "png_mask", "features", "feature_file", "store_write"), 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        store = kg.open_store(f"{tmp}/graph")
        for i, record in enumerate(manifest.cases[:n]):
            a = time.perf_counter()
            image = load_image(record.image)
            b = time.perf_counter()
            mask = roi_mask(image.shape, mask=str(record.mask), min_size=1)
            c = time.perf_counter()
            f = extract_all(image.hu, mask, config, allow_small=True)
            d = time.perf_counter()
            save_features(Path(tmp) / f"{i}.npz", CaseFeatures(f.vector, f.patches.features, f.patches.kinds,
                                                               f.patches.centres, config))
            e = time.perf_counter()
            write_case(store, _manifest_case(record), [Annotation("reader", dict(record.reader_labels))])
            g = time.perf_counter()
            for key, dt_ in zip(t, (b - a, c - b, d - c, e - d, g - e)):
                t[key] += dt_
        store.close()
    total = sum(t.values())
    return {"cases": n, "seconds_per_case": {k: v / n for k, v in t.items()},
            "share": {k: v / total for k, v in t.items()}, "cases_per_s": n / total}


_INGEST_CHILD = r"""
import json, resource, sys, time, tracemalloc
import kg
from semgraph.exchange.ingest import ingest
cohort, data, trace = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
jobs, batch = (None if sys.argv[4] == "auto" else int(sys.argv[4])), int(sys.argv[5])
if trace:
    tracemalloc.start()
store = kg.open_store(data + "/graph")
start = time.perf_counter()
report = ingest(store, cohort, data, progress=False, jobs=jobs, batch=batch)
seconds = time.perf_counter() - start
store.close()
peak = tracemalloc.get_traced_memory()[1] if trace else None
print(json.dumps({"ingested": len(report.ingested), "failed": len(report.failed), "seconds": seconds,
                  "tracemalloc_peak_mib": None if peak is None else peak / 2**20,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_ingest(cohort: str, data: str, *, trace: bool = False, jobs: int | None = None,
               batch: int = DEFAULT_BATCH) -> dict:
    """Ingest ``cohort`` into a fresh store under ``data`` in a fresh subprocess; its JSON line (rate, memory)."""
    out = subprocess.run([sys.executable, "-c", _INGEST_CHILD, cohort, data, "1" if trace else "0",
                          "auto" if jobs is None else str(jobs), str(batch)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parallel_ingest(n: int, size: int, jobs: int, batch: int) -> list[dict]:
    """Generate an n-case cohort of size x size slices and ingest it with the baseline (jobs=1, batch=1), with
    batches only, with workers only, and with ``jobs`` workers and ``batch`` cases per transaction, each into a
    fresh store in a fresh subprocess."""
    from semgraph.cohort import generate

    rows = []
    with tempfile.TemporaryDirectory(prefix="semgraph-bench-") as tmp:
        generate(n, seed=0, out_dir=f"{tmp}/cohort", size=size, progress=False)
        for j, b in dict.fromkeys(((1, 1), (1, batch), (jobs, 1), (jobs, batch))):
            row = run_ingest(f"{tmp}/cohort", f"{tmp}/data-{j}-{b}", jobs=j, batch=b)
            row.update({"cases": n, "size": size, "jobs": j, "batch": b,
                        "rois_per_s": row["ingested"] / row["seconds"]})
            rows.append(row)
    for row in rows:
        row["ratio_to_baseline"] = row["rois_per_s"] / rows[0]["rois_per_s"]
    return rows


def whole_ingest(n: int, profile_cases: int = 200) -> tuple[list[dict], dict]:
    """Generate an n-case cohort once and ingest it twice (without, then with tracemalloc), each time into a fresh
    store in a fresh subprocess; rate and memory of the ingest alone."""
    from semgraph.cohort import generate

    rows = []
    with tempfile.TemporaryDirectory(prefix="semgraph-bench-") as tmp:
        start = time.perf_counter()
        generate(n, seed=0, out_dir=f"{tmp}/cohort", progress=False)
        generated = time.perf_counter() - start
        from semgraph.exchange.feature_files import INGEST_FEATURE_CONFIG

        stages = stage_profile(f"{tmp}/cohort", min(profile_cases, n), INGEST_FEATURE_CONFIG)
        for trace in (False, True):
            row = run_ingest(f"{tmp}/cohort", f"{tmp}/data-{int(trace)}", trace=trace)
            row.update({"cases": n, "generation_s": generated, "rois_per_s": row["ingested"] / row["seconds"],
                        "tracemalloc": trace})
            rows.append(row)
    return rows, stages


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (about 0.5 s per row)")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per row (default 3)")
    parser.add_argument("--no-ingest", action="store_true", help="skip the whole-ingest rows")
    parser.add_argument("--parallel-only", action="store_true", help="only the parallel table")
    parser.add_argument("--cases", type=int, help="cases of the parallel table (default 2000; 500 with --quick)")
    parser.add_argument("--size", type=int, default=128, help="image side of the parallel table (default 128)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes of the parallel table (default: one per core)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                        help=f"cases per transaction of the parallel table (default {DEFAULT_BATCH})")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "ingest.json")
    args = parser.parse_args(argv)
    parallel = parallel_ingest(args.cases or (500 if args.quick else 2000), args.size, args.jobs, args.batch)
    print(f"{f'parallel ingest (generated cohort, {args.size} px)':<44} {'jobs':>4} {'batch':>5} "
          f"{'cases':>6} {'failed':>6} {'s':>7} {'ROI/s':>7} {'ratio':>6}")
    for r in parallel:
        labels = {(1, args.batch): "batched writes only", (args.jobs, 1): "worker processes only",
                  (1, 1): "baseline: 1 process, 1 case per write"}
        label = labels.get((r["jobs"], r["batch"]), "workers + batched writes")
        print(f"{label:<44} {r['jobs']:>4} {r['batch']:>5} {r['ingested']:>6} {r['failed']:>6} {r['seconds']:>7.1f} "
              f"{r['rois_per_s']:>7.1f} {r['ratio_to_baseline']:>6.2f}")
    result = {"benchmark": "ingest", "quick": args.quick, "python": platform.python_version(),
              "numpy": np.__version__, "cpu_count": os.cpu_count(), "parallel_rows": parallel,
              "parallel_note": "ROI/s of semgraph.exchange.ingest.ingest end to end (worker start included) in a "
                               "fresh subprocess; baseline jobs=1 batch=1 (one process, one transaction per case)"}
    if not args.parallel_only:
        result.update(feature_and_whole_ingest(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")
    return result


def feature_and_whole_ingest(args) -> dict:
    """The feature-rate tables and the whole-ingest rows (printed); their part of the JSON result."""
    print()
    seconds = 0.5 if args.quick else args.seconds
    rois = make_rois(8)
    paths = []
    for key, label, func in [("old_two_calls", "old path: extract + extract_patches (2 transforms)", old_two_calls),
                             ("new_single", "new path: extract_all (1 transform)", new_single),
                             ("old_roi_only", "old extract (ROI vector only)", old_roi_only),
                             ("new_roi_only", "new extract (ROI vector only)", extract)]:
        for cfg_name, cfg in (("riesz", FeatureConfig()), ("riesz+margin", FeatureConfig(margin_features=True)),
                              ("wavelet", FeatureConfig(method="wavelet"))):
            if cfg.margin_features and key.startswith("old"):
                continue  # the old path has no margin descriptors
            r, n = rate(func, rois, cfg, seconds)
            paths.append({"path": key, "label": label, "config": cfg_name, "rois_per_s": r, "rois_timed": n})
    by = {(p["path"], p["config"]): p["rois_per_s"] for p in paths}
    print(f"{'ROI + patch features (what ingest needs)':<52} {'config':<13} {'ROI/s':>8} {'vs old':>7}")
    for p in paths:
        old = by.get(("old_two_calls" if "roi_only" not in p["path"] else "old_roi_only", p["config"]))
        p["ratio_to_old"] = None if old is None else p["rois_per_s"] / old
        ratio = "" if old is None else f"{p['ratio_to_old']:.2f}"
        print(f"{p['label']:<52} {p['config']:<13} {p['rois_per_s']:>8.1f} {ratio:>7}")
    print()
    rows = []
    for key, label, config in VARIANTS:
        roi_rate, n = rate(extract, rois, config, seconds)
        patch_rate, _ = rate(extract_patches, rois, config, seconds / 2)
        rows.append({"variant": key, "label": label, "features": len(feature_names(config)),
                     "rois_per_s": roi_rate, "rois_timed": n, "patch_rois_per_s": patch_rate,
                     "config": config.to_dict()})
    base = next(r for r in rows if r["variant"] == "wavelet")["rois_per_s"]
    for r in rows:
        r["ratio_to_wavelet"] = r["rois_per_s"] / base
    print(f"{'variant':<44} {'D':>3} {'ROI/s':>8} {'patches ROI/s':>14} {'vs wavelet':>10}")
    for r in rows:
        print(f"{r['label']:<44} {r['features']:>3} {r['rois_per_s']:>8.1f} {r['patch_rois_per_s']:>14.1f} "
              f"{r['ratio_to_wavelet']:>10.2f}")
    ingest_rows, stages = [], None
    if not args.no_ingest:
        big = 1000 if args.quick else 10_000
        ingest_rows, stages = whole_ingest(big)
        print()
        print(f"{'whole ingest (generated cohort, 256x256)':<44} {'cases':>6} {'failed':>6} {'ROI/s':>8} "
              f"{'peak RSS MiB':>12} {'tracemalloc MiB':>15}")
        for r in ingest_rows:
            label = "ingest + tracemalloc" if r["tracemalloc"] else "ingest"
            traced = "" if r["tracemalloc_peak_mib"] is None else f"{r['tracemalloc_peak_mib']:.1f}"
            print(f"{label:<44} {r['cases']:>6} {r['failed']:>6} {r['rois_per_s']:>8.1f} {r['maxrss_mib']:>12.1f} "
                  f"{traced:>15}")
        print()
        print(f"ingest stages on {stages['cases']} cases ({stages['cases_per_s']:.1f} cases/s without the manifest loop):")
        for k, v in stages["seconds_per_case"].items():
            print(f"  {k:<14} {v * 1e3:7.2f} ms/case  {stages['share'][k]:6.1%}")
    return {
        "roi": "disk of diameter 128 px (128x128 bounding box) in a 192x192 slice",
        "paths": paths,
        "rows": rows,
        "ingest_stages": stages,
        "ingest_rows": ingest_rows,
        "ingest_note": "ROI/s of semgraph.exchange.ingest.ingest (DICOM + PNG mask load, ROI + patch features, npz file, "
                       "default jobs and batch) into an embedded store, in a subprocess; maxrss = peak "
                       "resident memory of that subprocess; the tracemalloc row is slower (tracing overhead)",
    }


if __name__ == "__main__":
    main()
