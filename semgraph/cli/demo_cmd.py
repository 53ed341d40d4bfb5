"""``semgraph demo``: build the demo data folder where it is missing, summarise it and serve it.

Every step checks what the data folder already holds and does only what is missing, so a second run starts the
server at once: RadLex subset → synonyms → synthetic cohort (generated and ingested) → term models (trained,
cases annotated) → baseline term dissimilarities → captions → demo users.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import click

import ontology
from ontology.paper_terms import paper_terms
from semgraph.cli import State, cli, handle_errors
from semgraph.errors import NotFound


class _Steps:
    """Prints one line per step with its duration."""

    def __init__(self):
        self.start = time.perf_counter()

    def done(self, text: str, since: float) -> None:
        click.echo(f"  {text} ({time.perf_counter() - since:.1f} s)")


def build_demo(store, data_dir: Path, *, n: int, seed: int, size: int) -> list[str]:
    """Create what is missing in ``data_dir`` and its store; return the lines of the summary."""
    from semgraph.exchange import saved_models
    from semgraph.graph.casegraph import read_cases
    from semgraph.retrieval import similarity
    from semgraph.text import captions, synonyms

    steps = _Steps()
    terms = [t.iri for t in paper_terms()]
    if ontology.BUNDLED_RADLEX not in {info.name for info in ontology.catalog(store)}:
        t = time.perf_counter()
        ontology.load(store, ontology.BUNDLED_RADLEX)
        steps.done("loaded the bundled RadLex liver subset", t)
    if not synonyms.read_synonyms(store, graph=str(synonyms.SYNONYMS_GRAPH)):
        t = time.perf_counter()
        synonyms.write_synonyms(store)
        steps.done("stored the synonym list as skos:altLabel", t)
    if not read_cases(store):
        from semgraph.cohort import generate
        from semgraph.exchange import ingest

        t = time.perf_counter()
        manifest = data_dir / "cohort" / "manifest.json"
        if not manifest.is_file():
            manifest = generate(n=n, seed=seed, out_dir=data_dir / "cohort", size=size)
        report = ingest.ingest(store, manifest, data_dir)
        steps.done(f"generated and ingested a synthetic cohort: {len(report.ingested)} cases"
                   + (f", {len(report.failed)} too small to use" if report.failed else ""), t)
    # the models are loaded (and scikit-learn imported) only when a step needs them: a second start stays fast
    version, model = saved_models.latest_version(data_dir), None
    if version is None:
        from semgraph.exchange import training

        t = time.perf_counter()
        model, _ = training.train(store, data_dir)
        training.annotate(store, data_dir, model)
        version = model.version_
        steps.done(f"trained term models {version} and annotated every case", t)
    try:
        similarity.read_baseline(store, terms)
    except NotFound:
        t = time.perf_counter()
        model = model or saved_models.latest_model(data_dir, required=True)
        D = similarity.term_dissimilarity(store, terms, signatures=model.signatures_, mode="combined")
        similarity.write_baseline(store, terms, D, kind="combined", basis="signatures",
                                  provenance={"measure": "kurtz", "weight": 0.5, "model_version": version})
        steps.done("wrote the baseline term dissimilarities (½ image + ½ ontology)", t)
    if len(captions.read_captions(store)) < len(read_cases(store)):
        t = time.perf_counter()
        captions.write_captions(store)
        steps.done("generated case captions", t)
    cases = read_cases(store)
    diagnoses = sorted({c.diagnosis for c in cases if c.diagnosis})
    return [
        f"store:      {store.location} ({len(store.graphs())} named graphs, {store.count():,} triples)",
        f"cases:      {len(cases)} ({', '.join(diagnoses)})",
        f"vocabulary: {len(terms)} RadLex liver-lesion terms; term models {version}",
    ]


def demo_users(data_dir: Path) -> list[str]:
    """Create one user per role with a fresh random password if the data folder has no users yet; the password is
    printed and kept in ``DATA_DIR/demo-password.txt`` (mode 0600), which the login and home pages point to."""
    from semgraph.users import ROLES, UserStore, save_demo_password

    users = UserStore.in_data_dir(data_dir)
    if users.list():
        return [f"users:      {', '.join(f'{u.name} ({u.role})' for u in users.list())}"]
    password = secrets.token_urlsafe(9)
    for role in ROLES:
        users.add(role, role, password)
    saved = save_demo_password(data_dir, password)
    return [(f"users:      {', '.join(ROLES)} (one per role), password {password} (also in {saved}, readable only "
             "by you); change it with `semgraph user password NAME`, then delete that file")]


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to serve on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--no-serve", is_flag=True, help="Build and summarise the demo data, then exit.")
@click.option("--cases", "n", default=72, show_default=True, type=click.IntRange(6, 100_000),
              help="Size of the synthetic cohort (the paper's 72 by default).")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic cohort.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(64, 1024), help="Image size in pixels.")
@click.pass_context
@handle_errors
def demo(ctx: click.Context, host: str, port: int, no_serve: bool, n: int, seed: int, size: int) -> None:
    """Build the demo data folder where it is missing (RadLex subset, synthetic cohort, trained term models,
    baseline similarities, captions, demo users), print a summary and serve the web application."""
    state: State = ctx.obj
    data_dir = Path(state.config.data_dir)
    click.echo(f"preparing the demo in {data_dir} ...")
    with state.config.open_store() as store:
        summary = build_demo(store, data_dir, n=n, seed=seed, size=size)
    for line in [*summary, *demo_users(data_dir)]:
        click.echo(line)
    if no_serve:
        click.echo("next: semgraph serve | semgraph query --case case-000001 | semgraph search 'hypodense, "
                   "peripheral nodular enhancement'")
        return
    from semgraph.cli.serve_cmd import serve

    ctx.invoke(serve, host=host, port=port)
