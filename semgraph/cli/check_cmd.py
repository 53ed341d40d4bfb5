"""``semgraph check``: the integrity check of the store (see :mod:`semgraph.graph.check`)."""

from __future__ import annotations

import json

import click

from semgraph.cli import State, cli, handle_errors


@cli.command(name="check")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--repair", is_flag=True,
              help="First rebuild the annotations' compact likelihood copies (sg:termValues) from their likelihoods, "
                   "and record image and mask paths inside the data folder relative to it (older stores kept "
                   "absolute paths, which the public SPARQL endpoint would show).")
@click.option("--shacl", is_flag=True,
              help="Instead of the fast checks, validate the store's data against the SHACL shapes of the graph "
                   "model (semgraph/data/shapes.ttl, docs/shapes.md) with pyshacl: the thorough contract check, "
                   "which loads the data into memory and takes minutes on a large store.")
@click.pass_obj
@handle_errors
def check_command(state: State, fmt: str, repair: bool, shacl: bool) -> None:
    """Check that every case, feedback round, learned edge, the baseline and the ontology graphs are complete, and
    that every case's image and mask file is inside the data folder and exists.

    Reads only, unless --repair is given: then the derived copies of the likelihoods are rebuilt first (in batches,
    each all-or-nothing), as needed after editing likelihood values by SPARQL, and absolute file paths inside the
    data folder become relative ones. Prints what was checked and every
    problem (at most 50 listed per kind); exits with status 1 when there is a problem. With --shacl it prints each
    SHACL violation instead (focus node, property path, message).
    """
    from semgraph.graph.casegraph import rebuild_term_values, relative_file_paths
    from semgraph.graph.check import check_store
    from semgraph.graph.shapes import validate_store

    remote = state.config.store_location.startswith(("http://", "https://"))
    with state.config.open_store(read_only=not (remote or repair)) as store:
        if repair:
            click.echo(f"rebuilt the likelihood copies of {rebuild_term_values(store)} annotations", err=True)
            moved = relative_file_paths(store, state.config.data_dir)
            click.echo(f"recorded {moved} image and mask paths relative to the data folder", err=True)
        report = validate_store(store) if shacl else check_store(store, state.config.data_dir)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(report.format_text())
    if not report.ok:
        raise SystemExit(1)
