"""``semgraph evaluate``: the retrieval-with-feedback protocol on the cases in the store."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

import ontology
from semgraph.cli import State, cli, collection_option, handle_errors
from semgraph.errors import InvalidInput, NotFound
from semgraph.evaluation.report import format_summary, summarise_runs
from semgraph.graph.casegraph import count_annotated, read_cases, read_likelihoods

_REPORTED_K = (1, 5, 10, 25)


def _load(store, kind: str, collection, computed: tuple[list[str], np.ndarray] | None = None):
    """Cases of ``collection`` with a diagnosis and ``kind`` term vectors (or the ``computed`` ones), and their
    truth vectors (or None)."""
    terms = list(collection.terms)
    cases = {c.case_id: c for c in read_cases(store, collection=collection.case_filter)}
    if not cases:
        raise NotFound(f"collection {collection.name!r} holds no cases; ingest some first (e.g. `semgraph demo`).")
    ids, vectors = computed or read_likelihoods(store, terms, kinds=(kind,), collection=collection.case_filter)
    keep = [n for n, case_id in enumerate(ids)
            if case_id in cases and cases[case_id].diagnosis and np.any(vectors[n] > 0)]
    if len(keep) < 2:
        raise NotFound(f"fewer than 2 cases of collection {collection.name!r} have a diagnosis and {kind!r} "
                       "likelihoods of its terms; try --likelihoods reader or truth.")
    ids = [ids[n] for n in keep]
    vectors = vectors[keep]
    truth_ids, truth = read_likelihoods(store, terms, kinds=("truth",), collection=collection.case_filter)
    row = {case_id: n for n, case_id in enumerate(truth_ids)}
    truth_vectors = truth[[row[c] for c in ids]] if all(c in row for c in ids) else None
    return ids, vectors, truth_vectors, [cases[c] for c in ids]


#: What each kind of stored term vector is, as the output names it.
SOURCES = {"crossval": "out-of-fold likelihoods stored by `semgraph train --lopo`",
           "predicted": "likelihoods of term models trained on these same cases (in-sample)",
           "reader": "the readers' term labels", "truth": "the generating terms of synthetic cases"}

#: Folds of patients for out-of-fold likelihoods computed by ``evaluate`` itself (``semgraph train --lopo`` stores
#: leave-one-patient-out ones instead).
EVALUATE_FOLDS = 5


def _has(store, kind: str, collection) -> bool:
    return count_annotated(store, kind, collection=collection.case_filter) >= 2


def _honest(store, data_dir, collection) -> tuple[str, str, tuple[list[str], np.ndarray] | None]:
    """The likelihoods ``--likelihoods auto`` ranks: (kind, what it is, vectors computed now or None).

    Out-of-fold likelihoods whenever term models are involved: the stored ``crossval`` ones, else computed now from
    the ingested images' features (term models trained on :data:`EVALUATE_FOLDS` folds of patients, each case
    predicted by the models that never saw its patient); without images, the readers' labels, else the stored
    predictions (with a warning: they are in-sample), else the truth."""
    from semgraph.exchange.training import training_set
    from semgraph.terms.evaluation import lopo_auc

    if _has(store, "crossval", collection):
        return "crossval", SOURCES["crossval"], None
    try:
        data = training_set(store, data_dir, list(collection.terms))
    except (NotFound, InvalidInput):
        data = None
    if data is not None and len(set(data.groups)) >= 2:
        result = lopo_auc(data.X, data.Y, data.groups, patches=data.patches, patch_kinds=data.kinds,
                          patch_case=data.case, n_splits=min(EVALUATE_FOLDS, len(set(data.groups))))
        index = [result.terms.index(t) for t in collection.terms]
        what = (f"out-of-fold likelihoods computed now ({result.scheme}; `semgraph train --lopo` stores "
                "leave-one-patient-out ones)")
        return "crossval", what, (list(data.case_ids), result.likelihoods[:, index])
    for kind in ("reader", "predicted"):
        if _has(store, kind, collection):
            return kind, SOURCES[kind], None
    return "truth", SOURCES["truth"], None


def _data_driven(vectors: np.ndarray, terms: list[str], data_dir) -> tuple[str, np.ndarray, str]:
    """δΓ and its name: from the latest term model's signatures when it has a direction for every term, else from
    the co-occurrence of the terms in ``vectors`` (correlation of their likelihood columns)."""
    from semgraph.evaluation import proxy_signatures
    from semgraph.exchange.saved_models import latest_model
    from semgraph.retrieval.similarity import image_dissimilarity

    model = latest_model(data_dir)
    if model is not None and set(terms) <= set(model.terms_):
        rows = model.signatures_[[list(model.terms_).index(t) for t in terms]]
        if np.all(np.linalg.norm(rows, axis=1) > 0):
            return "image", image_dissimilarity(rows), f"term-model signatures (model {model.version_})"
    return ("cooccurrence", image_dissimilarity(proxy_signatures(vectors)),
            ("co-occurrence: correlation distance between the terms' likelihood columns (no term model with a "
            "signature for every term)"))


def _ties(results: dict, rounds: int) -> list[str]:
    """Warnings when every setting gives the same NDCG (nothing distinguishes them: missing likelihoods?)."""
    curves = [np.round(np.array(s["ndcg"]["mean"], dtype=float), 9) for s in results["settings"].values()]
    if len(curves) > 1 and all(np.array_equal(c, curves[0]) for c in curves[1:]):
        return [(f"every setting gives the same NDCG in every round ({len(curves)} settings, {rounds} rounds): the "
                "term vectors do not separate the cases; check that the cases have likelihoods of the collection's "
                "terms (semgraph check)")]
    return []


def _figures(results: dict, out: Path, settings: list[str], labels: list[str], thumbnail) -> list[str]:
    """Draw the figures of ``results`` into ``out`` and return their file names: the NDCG curves of ``settings``
    (whole ranking and residual collection) and, when there is an example run, its NDCG curves per query, its
    dendrograms (terms named by ``labels``) and its result grid (tiles from ``thumbnail(case_id)``)."""
    from semgraph.evaluation.figures import (
        plot_dendrograms,
        plot_ndcg_curves,
        plot_ndcg_per_query,
        plot_result_grid,
    )

    plot_ndcg_curves(results, out / "ndcg.png", settings)
    plot_ndcg_curves(results, out / "ndcg_residual.png", settings, residual=True)
    example = results.get("example")
    if example is None:
        return ["ndcg.png", "ndcg_residual.png"]
    rounds = results["config"]["rounds"]
    plot_ndcg_per_query(example, out / "ndcg_per_query.png")
    plot_dendrograms(example["dissimilarity_before"], example["dissimilarity_after"], labels, out / "dendrogram.png",
                     titles=("before feedback", f"after {rounds} rounds ({example['setting']})"))
    plot_result_grid(example["query"], example["rankings"], example["relevant"], out / "results_grid.png",
                     thumbnail=thumbnail, title=f"{example['setting']}, seed {example['seed']}: query "
                                                f"{example['query']}, rounds 0 to {rounds}")
    return ["ndcg.png", "ndcg_residual.png", "ndcg_per_query.png", "dendrogram.png", "results_grid.png"]


def _table(results: dict, rounds: int) -> list[str]:
    max_k = results["config"]["max_k"]
    ks = [k for k in _REPORTED_K if k <= max_k]
    head = f"{'setting':34s} {'round':>5s} " + " ".join(f"{'@' + str(k):>6s}" for k in ks) + f" {'worse':>6s}"
    lines = [head, "-" * len(head)]
    for name, s in results["settings"].items():
        mean = np.array(s["ndcg"]["mean"], dtype=float)
        for t in range(rounds + 1):
            worse = f"{s['worse']['total']:>6d}" if t == rounds and rounds > 0 else " " * 6
            cells = " ".join(f"{mean[t, k - 1]:6.3f}" for k in ks)
            lines.append(f"{name if t == 0 else '':34s} {t:5d} {cells} {worse}")
    return lines


@cli.command(name="evaluate")
@click.option("--queries", default=10, show_default=True, type=click.IntRange(1), help="Random queries per seed.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(0, 10), help="Feedback rounds.")
@click.option("--seeds", default=20, show_default=True, type=click.IntRange(1), help="Repetitions (seeds 0..N-1).")
@click.option("--out", "out_dir", metavar="DIR", help="Output folder [default: DATA_DIR/evaluation].")
@click.option("--likelihoods", "kind", default="auto", show_default=True,
              type=click.Choice(["auto", "crossval", "predicted", "reader", "truth"]),
              help="Which term vectors of the cases to rank. auto: out-of-fold likelihoods (the stored crossval "
                   "ones of `semgraph train --lopo`, else computed now with models trained on 5 folds of patients), "
                   "or the readers' labels when there are no images; predicted: in-sample likelihoods of models "
                   "trained on these same cases, which overstate quality.")
@click.option("--weight", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Weight of the data-driven part δΓ in the combined dissimilarity.")
@collection_option
@click.pass_obj
@handle_errors
def evaluate_command(state: State, queries: int, rounds: int, seeds: int, out_dir: str | None, kind: str,
                     weight: float, collection: str | None) -> None:
    """Evaluate retrieval and relevance feedback on the cases in the store (NDCG@K, K = 1..25).

    For each seed, random query cases are ranked against every case of another patient (relevant = same
    diagnosis); a simulated reader marks up to 3 relevant and 3 irrelevant cases among the top 10 per round.
    Compares D = data-driven only (term-model signatures "image", else term co-occurrence "cooccurrence") /
    ontology-only / combined and plain L1, with no feedback and with each feedback algorithm (the --algorithm
    values of `semgraph feedback`), and the same on the ground-truth term vectors when the cases have them.
    Writes evaluation.json and PNG figures to DIR.
    """
    from semgraph.evaluation import FEEDBACKS, ProtocolConfig, compare
    from semgraph.imaging import case_thumbnail
    from semgraph.retrieval.similarity import combine

    out = Path(out_dir) if out_dir else Path(state.config.data_dir) / "evaluation"
    with state.config.open_store(read_only=True) as store:
        if not ontology.catalog(store):
            raise NotFound("no ontology is loaded in the store; load one first: semgraph ontology load radlex-liver")
        chosen = state.collection(store, collection)
        computed, what = None, SOURCES.get(kind)
        if kind == "auto":
            kind, what, computed = _honest(store, state.config.data_dir, chosen)
        ids, vectors, truth, cases = _load(store, kind, chosen, computed)
        terms, categories = list(chosen.terms), list(chosen.categories)
        delta_theta = ontology.dissimilarity_matrix(store, terms, ontology=chosen.ontology)
    if np.any(vectors < 0) or np.any(vectors > 1):
        raise InvalidInput("stored likelihoods must lie in [0, 1].")
    basis, delta_gamma, gamma_source = _data_driven(vectors, terms, state.config.data_dir)
    dissimilarities = {basis: delta_gamma, "ontology": delta_theta,
                       "combined": combine(delta_gamma, delta_theta, weight)}
    config = ProtocolConfig(n_queries=queries, rounds=rounds)
    results = compare(vectors, [c.diagnosis for c in cases], [c.patient_id for c in cases], categories,
                      dissimilarities, truth=None if kind == "truth" else truth, seeds=range(seeds),
                      config=config, case_ids=ids, source=kind)
    results["collection"] = chosen.name
    results["likelihoods"] = kind
    results["likelihoods_source"] = what
    results["summary"] = summarise_runs({name: s["at10"] for name, s in results["settings"].items()})
    results["weight"] = weight
    results["delta_gamma"] = gamma_source
    results["ceiling"] = "truth" if (truth is not None and kind != "truth") else None
    results["warnings"] = _ties(results, rounds)
    if kind == "predicted":
        results["warnings"].append("the likelihoods are in-sample (the term models were trained on these cases): the "
                                   "figures overstate what a new case would get; the default ranks out-of-fold ones")

    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(results, indent=1, allow_nan=False), encoding="utf-8")
    main = [f"{kind}/combined/{fb}" for fb in FEEDBACKS]
    main += [f"{kind}/l1/none", f"{kind}/{basis}/none", f"{kind}/ontology/none"]
    labels = [other[0] if other else label for label, other in
              zip(chosen.labels, chosen.aliases or ((),) * len(chosen.terms))]
    by_id = {c.case_id: c for c in cases}

    def thumbnail(case_id: str):
        return case_thumbnail(by_id[case_id].image_file, by_id[case_id].mask_file, state.config.data_dir)

    figures = _figures(results, out, main, labels, thumbnail)

    click.echo(f"collection {chosen.name}: δΓ from {gamma_source}")
    click.echo(f"likelihoods: {kind}, {what}")
    click.echo(f"{len(ids)} cases, {results['n_eligible_queries']} eligible queries, "
               f"{queries} queries x {seeds} seeds, {rounds} rounds; mean NDCG@K over seeds:")
    for line in _table(results, rounds):
        click.echo(line)
    click.echo(f"\nNDCG@10 over the {queries * seeds} runs (query x seed), 95 % bootstrap intervals:")
    for line in format_summary(results["summary"]):
        click.echo(line)
    for name, r in results["regularisation"].items():
        click.echo(f"worse after {rounds} rounds ({name}): penalty {r['worse_penalty']}, regularised "
                   f"{r['worse_regularised']} (avoided {r['avoided']}, new {r['new_worse']})")
    for warning in results["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {out / 'evaluation.json'} and {', '.join(figures)}")
