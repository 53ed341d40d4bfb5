"""Evaluate free-text search (HSBD only / text only / fused) and diagnosis suggestion on the synthetic cohort.

For each cohort size (72 and 500 cases, seed 0), every case gets a term-likelihood vector and a generated caption,
and a fixed list of text queries written from each diagnosis' typical findings (:data:`QUERIES`) is ranked against
all cases. Relevance is binary: a case is relevant when its diagnosis is the query's intended diagnosis. We report
mean NDCG@K (K = 5, 10, 25, Järvelin–Kekäläinen form, ideal ordering over the whole cohort) for

* ``hsbd``: w = (1, 0), masked HSBD over the mentioned categories (default), and ``hsbd-full`` (all terms);
* ``text``: w = (0, 1), TF-IDF cosine between the query's negation-aware caption text
  (:func:`semgraph.retrieval.fusion.caption_query_text`) and the captions, and ``text-raw``: the same with the raw query text
  (before negation handling: "no enhancement" then favours the captions that mention enhancement);
* ``fused``: w = (0.7, 0.3) (LifeSeeker), masked; and ``fused-full``.

Then diagnosis suggestion (k = 10 similar cases, similarity-weighted vote) evaluated leave-one-patient-out, with
the majority-class baseline.

Likelihoods: no term model is trained here. A case's likelihood vector is its reader labels (0/1) blurred by a
seeded Gaussian noise, ``clip(0.15 + 0.7 · label + N(0, 0.15²), 0, 1)``: a stand-in for model predictions.
``--noise 0`` uses the reader labels as they are. D is the ontological δΘ (Kurtz) of the bundled RadLex subset,
clamped, as the retrieval engine uses when no baseline is stored.

Then feedback on text queries: on a demo store of 72 cases (:func:`semgraph.cli.demo_cmd.build_demo`, seed 0, 128
px: trained term models, predicted likelihoods, the combined baseline D), each query starts a retrieval session
whose query is its parsed term vector (:func:`semgraph.feedback.sessions.start_text_session`; the session ranks every case by
HSBD over all terms). A simulated reader who knows the diagnoses marks, among the top 10 not yet marked, the first 3
of the intended diagnosis relevant and the first 3 others irrelevant; :meth:`Session.feedback` applies the round
(``rocchio``, ``regularised`` or ``regularised+rocchio``, default parameters) and re-ranks. Mean NDCG@10 (whole
cohort as the pool, marked cases stay in the ranking) before feedback and after each of 3 rounds; the fused
ranking of the same store (no feedback) is printed for reference.

Run ``python -m bench.text_queries [--sizes 72 500] [--noise 0.15] [--feedback-rounds 3 | --no-feedback]``; prints
tables and writes ``bench/results/text_queries.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

import kg
import ontology
from semgraph.cohort import iter_labels
from semgraph.evaluation.metrics import ndcg
from semgraph.retrieval import hsbd
from semgraph.retrieval.fusion import Corpus, rank_fused, rank_text_query
from semgraph.retrieval.suggest import evaluate_suggestion
from semgraph.text.captions import caption
from semgraph.text.textquery import Vocabulary, parse_text

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
    "text-raw": (0.0, 1.0, True),
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
            if name == "text-raw":  # the raw query text against the captions (no negation handling)
                r = rank_fused(corpus, None, text, w_img=0.0, w_txt=1.0)
            else:
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


FEEDBACK_ALGORITHMS = ("rocchio", "regularised", "regularised+rocchio")
READER = {"top": 10, "relevant": 3, "irrelevant": 3}


def _reader_marks(ranking: list[str], marked: set[str], dx: dict, diagnosis: str) -> dict[str, str]:
    """The simulated reader's marks among the top unmarked results."""
    window = [c for c in ranking if c not in marked][: READER["top"]]
    rel = [c for c in window if dx[c] == diagnosis][: READER["relevant"]]
    irr = [c for c in window if dx[c] != diagnosis][: READER["irrelevant"]]
    return {**{c: "relevant" for c in rel}, **{c: "irrelevant" for c in irr}}


def feedback_run(rounds: int = 3, n: int = 72, seed: int = 0, size: int = 128) -> dict:
    """NDCG@10 of text-query sessions before and after ``rounds`` rounds of simulated feedback (see the notes)."""
    from semgraph.cli.demo_cmd import build_demo
    from semgraph.feedback.algorithms import FeedbackParams
    from semgraph.feedback.sessions import start_text_session
    from semgraph.retrieval.engine import Engine

    with tempfile.TemporaryDirectory() as tmp:
        store = kg.open_store(Path(tmp) / "graph")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # keep the tables readable
                build_demo(store, Path(tmp), n=n, seed=seed, size=size)
            engine = Engine.from_store(store)
            vocab = Vocabulary.from_store(store)
            corpus = Corpus.from_store(store, vocab)
            dx = {c.case_id: c.diagnosis for c in engine.cases}
            n_cases = len(engine.ids)

            def score(ids: list[str], diagnosis: str) -> float:
                gains = [1.0 if dx[c] == diagnosis else 0.0 for c in ids]
                return ndcg(gains, 10, gains)

            fused = [score(rank_text_query(text, corpus, vocab).ids, d) for d, text in QUERIES]
            table: dict[str, list[float]] = {}
            per_query: dict[str, list[list[float]]] = {}
            for algorithm in FEEDBACK_ALGORITHMS:
                params = FeedbackParams(algorithm=algorithm)
                curves = []
                for diagnosis, text in QUERIES:
                    session = start_text_session(store, engine, text, "bench-reader", vocabulary=vocab, k=n_cases)
                    marked: set[str] = set()
                    curve = [score([h.case_id for h in session.ranking], diagnosis)]
                    for _ in range(rounds):
                        marks = _reader_marks([h.case_id for h in session.ranking], marked, dx, diagnosis)
                        if marks:
                            session.feedback(marks, params)
                            marked |= set(marks)
                        curve.append(score([h.case_id for h in session.ranking], diagnosis))
                    curves.append(curve)
                table[algorithm] = [float(x) for x in np.mean(curves, axis=0)]
                per_query[algorithm] = curves
        finally:
            store.close()
    return {"n": n_cases, "seed": seed, "size": size, "rounds": rounds, "reader": READER,
            "fused_no_feedback_ndcg10": float(np.mean(fused)), "ndcg10_by_round": table,
            "ndcg10_by_query": per_query}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[72, 500])
    p.add_argument("--noise", type=float, default=0.15)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "text_queries.json"))
    p.add_argument("--feedback-rounds", type=int, default=3)
    p.add_argument("--no-feedback", action="store_true", help="Skip the text-query feedback sessions.")
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
    feedback = None
    if not args.no_feedback:
        feedback = feedback_run(args.feedback_rounds)
        r = feedback["rounds"]
        print(f"\nFeedback on text queries: demo store of {feedback['n']} cases (seed 0, 128 px, predicted "
              f"likelihoods), {len(QUERIES)} queries,\nsimulated reader marking {READER['relevant']} relevant + "
              f"{READER['irrelevant']} irrelevant among the top {READER['top']} unmarked, mean NDCG@10 (session: HSBD "
              "over all terms)")
        print(f"  {'algorithm':<21} " + " ".join(f"{'round ' + str(t):>8}" for t in range(r + 1))
              + f"  {'gain':>6}")
        for algorithm, row in feedback["ndcg10_by_round"].items():
            print(f"  {algorithm:<21} " + " ".join(f"{v:>8.3f}" for v in row) + f"  {row[-1] - row[0]:>+6.3f}")
        print(f"  (fused text ranking of the same store, no feedback: {feedback['fused_no_feedback_ndcg10']:.3f})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"queries": [list(q) for q in QUERIES], "methods": METHODS, "results": results,
                               "feedback": feedback}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
