"""The summary table of an evaluation: NDCG@10 before and after feedback with 95 % intervals, per setting.

Built from the per-run figures of :func:`semgraph.evaluation.compare` (``at10``: one row per query of a seed,
NDCG@10 after each round), possibly pooled over several cohorts: the mean of round 0 and of the last round with
their bootstrap intervals, the gain of the last round over round 0 run by run (mean with interval, share of runs
better / worse), and the same paired comparison against the reference setting of the same source (plain L1 with
Rocchio's query movement, the strong simple baseline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from semgraph.evaluation.intervals import bootstrap_mean, compare_paired

__all__ = ["REFERENCE", "format_summary", "summarise_runs"]

#: The setting (``D/feedback``) every other setting of the same source is compared with, run by run.
REFERENCE = "l1/rocchio"


def summarise_runs(runs: Mapping[str, Sequence[Sequence[float]]], reference: str = REFERENCE) -> dict:
    """``{setting: {round0, last, gain, versus_reference}}`` from ``{setting: runs x (rounds + 1) NDCG@10}``
    (settings named ``source/D/feedback``; a source without the reference gets no ``versus_reference``)."""
    out = {}
    for name, values in runs.items():
        at10 = np.array(values, dtype=np.float64)
        source = name.split("/", 1)[0]
        row = {"round0": bootstrap_mean(at10[:, 0]).as_dict(), "last": bootstrap_mean(at10[:, -1]).as_dict(),
               "gain": compare_paired(at10[:, -1], at10[:, 0]).as_dict()}
        ref = runs.get(f"{source}/{reference}")
        if ref is not None:
            row["versus_reference"] = compare_paired(at10[:, -1], np.array(ref, dtype=np.float64)[:, -1]).as_dict()
        out[name] = row
    return out


def _interval(e: Mapping, signed: bool = False) -> str:
    f = "+.3f" if signed else ".3f"
    return f"{e['mean']:{f}} [{e['low']:{f}}, {e['high']:{f}}]"


def format_summary(summary: Mapping[str, Mapping], reference: str = REFERENCE) -> list[str]:
    """The summary as a Markdown table (one line per setting)."""
    head = (f"| setting | NDCG@10 round 0 | after the last round | gain (runs better / worse) | "
            f"against {reference} after the last round (better / worse) |")
    lines = [head, "|---|---|---|---|---|"]
    for name, s in summary.items():
        gain, vs = s["gain"], s.get("versus_reference")
        against = (f"{_interval(vs['difference'], True)} ({vs['better']:.0%} / {vs['worse']:.0%})"
                   if vs is not None else "")
        lines.append(f"| {name} | {_interval(s['round0'])} | {_interval(s['last'])} | "
                     f"{_interval(gain['difference'], True)} ({gain['better']:.0%} / {gain['worse']:.0%}) | {against} |")
    return lines
