"""Benchmark: ROI-level feature extraction rate for 128×128 lesion regions (Riesz vs wavelet baseline).

Each ROI is a disk of diameter 128 px (bounding box 128×128) inside a 192×192 slice of liver-like noise.
Prints a table and writes bench/results/ingest.json.

    python bench/ingest.py            # full run
    python bench/ingest.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from semgraph.features import FeatureConfig, extract, extract_patches, feature_names

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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (about 0.5 s per row)")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per row (default 3)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "ingest.json")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else args.seconds
    rois = make_rois(8)
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
    result = {
        "benchmark": "ingest",
        "roi": "disk of diameter 128 px (128x128 bounding box) in a 192x192 slice",
        "quick": args.quick,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
