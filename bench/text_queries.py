"""Evaluate free-text search (HSBD only / text only / fused) and diagnosis suggestion on the synthetic cohort.

For each cohort size (72 and 500 cases, seed 0), every case gets a term-likelihood vector and a generated caption,
and a fixed list of text queries written from each diagnosis' typical findings (:data:`QUERIES`) is ranked against
all cases. Relevance is binary: a case is relevant when its diagnosis is the query's intended diagnosis. We report
mean NDCG@K (K = 5, 10, 25, Järvelin–Kekäläinen form, ideal ordering over the whole cohort) for

* ``hsbd``: w = (1, 0), masked HSBD over the mentioned categories (default), and ``hsbd-full`` (all terms);
* ``text``: w = (0, 1), TF-IDF cosine between the query and the captions;
* ``fused``: w = (0.7, 0.3) (LifeSeeker), masked; and ``fused-full``.

Then diagnosis suggestion (k = 10 similar cases, similarity-weighted vote) evaluated leave-one-patient-out, with
the majority-class baseline.

Likelihoods: no term model is trained here. A case's likelihood vector is its reader labels (0/1) blurred by a
seeded Gaussian noise, ``clip(0.15 + 0.7 · label + N(0, 0.15²), 0, 1)``: a stand-in for model predictions.
``--noise 0`` uses the reader labels as they are. D is the ontological δΘ (Kurtz) of the bundled RadLex subset,
clamped, as the retrieval engine uses when no baseline is stored.

Run ``python -m bench.text_queries [--sizes 72 500] [--noise 0.15]``; prints tables and writes
``bench/results/text_queries.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

import kg
import ontology
from semgraph import hsbd
from semgraph.captions import caption
from semgraph.cohort import iter_labels
from semgraph.evaluation.metrics import ndcg
from semgraph.fusion import Corpus, rank_text_query
from semgraph.suggest import evaluate_suggestion
from semgraph.textquery import Vocabulary, parse_text

#: (intended diagnosis, query text): typical portal-venous CT findings, two phrasings per diagnosis.
QUERIES: tuple[tuple[str, str], ...] = (
    ("cyst", "well-circumscribed smooth cystic lesion of water attenuation, no enhancement, homogeneous"),
    ("cyst", "simple fluid density lesion with sharp margins, non-enhancing"),
    ("metastasis", "ill-defined irregular hypoattenuating lesion with heterogeneous enhancement"),
    ("metastasis", "lobulated hypodense mass, heterogeneously enhancing, mixed attenuation"),
    ("hemangioma", "well-defined hypodense lesion with peripheral nodular enhancement and centripetal fill-in"),
    ("hemangioma", "lobulated low attenuation lesion, peripheral puddling"),
    ("hepatocellular carcinoma",
     "hypervascular soft-tissue lesion with heterogeneous enhancement and internal nodules, abutting the capsule"),
    ("hepatocellular carcinoma", "arterially enhancing solid mass, heterogeneous, subcapsular"),
    ("focal nodular hyperplasia", "well-circumscribed homogeneously enhancing hypervascular solid lesion, smooth"),
    ("focal nodular hyperplasia", "uniform arterial enhancement, soft tissue attenuation, normal surrounding liver"),
    ("abscess", "ill-defined fluid attenuation lesion with rim enhancement and internal nodules, heterogeneous"),
    ("abscess", "irregular cystic mass, enhancing, heterogeneous, without normal surrounding parenchyma"),
)

METHODS = {  # name -> (w_img, w_txt, masked)
    "hsbd": (1.0, 0.0, True),
    "hsbd-full": (1.0, 0.0, False),
    "text": (0.0, 1.0, True),
    "fused": (0.7, 0.3, True),
    "fused-full": (0.7, 0.3, False),
}
KS = (5, 10, 25)


def cohort(n: int, noise: float, seed: int = 0):
    """ids, likelihoods (n×k), diagnoses, patients of the synthetic cohort."""
    rng = np.random.default_rng(1000 + n)
    rows = list(iter_labels(n, seed=seed))
    labels = np.array([r.reader_labels for r in rows], dtype=float)
    A = labels if noise == 0 else np.clip(0.15 + 0.7 * labels + rng.normal(0, noise, labels.shape), 0, 1)
    ids = [r.case_id for r in rows]
    return ids, A, {r.case_id: r.diagnosis for r in rows}, {r.case_id: r.patient_id for r in rows}


def ontology_D(terms: list[str]) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        store = kg.open_store(Path(tmp) / "graph")
        try:
            ontology.load(store, "radlex-liver")
            return hsbd.clamp(np.asarray(ontology.dissimilarity_matrix(store, terms), dtype=np.float64))
        finally:
            store.close()


def run(n: int, noise: float, D: np.ndarray, vocab: Vocabulary) -> dict:
    ids, A, dx, pt = cohort(n, noise)
    caps = [caption(a, vocab) for a in A]
    corpus = Corpus.build(ids, A, D, caps, list(vocab.iris))
    table: dict[str, dict[str, float]] = {}
    per_dx: dict[str, dict[str, float]] = {}
    for name, (wi, wt, masked) in METHODS.items():
        scores = {k: [] for k in KS}
        for diagnosis, text in QUERIES:
            r = rank_text_query(text, corpus, vocab, w_img=wi, w_txt=wt, masked=masked)
            gains = [1.0 if dx[i] == diagnosis else 0.0 for i in r.ids]
            for k in KS:
                value = ndcg(gains, k, gains)
                scores[k].append(value)
                if k == 10:
                    per_dx.setdefault(name, {}).setdefault(diagnosis, []).append(value)
        table[name] = {f"ndcg@{k}": float(np.mean(v)) for k, v in scores.items()}
    suggestion = evaluate_suggestion(ids, A, dx, pt, corpus.projection, k=10)
    counts = {d: sum(1 for v in dx.values() if v == d) for d in sorted(set(dx.values()))}
    return {"n": n, "noise": noise, "ndcg": table,
            "ndcg10_by_diagnosis": {m: {d: float(np.mean(v)) for d, v in by.items()} for m, by in per_dx.items()},
            "suggestion": suggestion, "diagnosis_counts": counts}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[72, 500])
    p.add_argument("--noise", type=float, default=0.15)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "text_queries.json"))
    args = p.parse_args(argv)
    vocab = Vocabulary.default()
    D = ontology_D(list(vocab.iris))
    print("queries (matched terms):")
    for diagnosis, text in QUERIES:
        q = parse_text(text, vocab)
        terms = ", ".join(("¬" if m.negated else "") + m.label for m in q.matches)
        print(f"  [{diagnosis}] {text}\n      → {terms}; ignored: {', '.join(q.ignored) or '-'}")
    results = []
    for n in args.sizes:
        res = run(n, args.noise, D, vocab)
        results.append(res)
        print(f"\nN = {n} cases (noise {args.noise}), {len(QUERIES)} queries, mean NDCG")
        print(f"  {'method':<11} " + " ".join(f"{'@' + str(k):>7}" for k in KS))
        for name, row in res["ndcg"].items():
            print(f"  {name:<11} " + " ".join(f"{row[f'ndcg@{k}']:>7.3f}" for k in KS))
        s = res["suggestion"]
        print(f"  suggestion (LOPO, k=10): accuracy {s['accuracy']:.3f}, macro-F1 {s['macro_f1']:.3f}; "
              f"majority baseline ({s['baseline_class']}) accuracy {s['baseline_accuracy']:.3f}, "
              f"macro-F1 {s['baseline_macro_f1']:.3f}")
        print("  per-class recall: " + ", ".join(f"{d} {v['recall']:.2f} (n={v['n']})"
                                                for d, v in s["per_class"].items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"queries": [list(q) for q in QUERIES], "methods": METHODS, "results": results},
                              indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
