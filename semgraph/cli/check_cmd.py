"""``semgraph check``: the integrity check of the store (see :mod:`semgraph.graph.check`)."""

from __future__ import annotations

import json

import click

from semgraph.cli import State, cli, handle_errors


@cli.command(name="check")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--repair", is_flag=True,
              help="First rebuild the annotations' compact likelihood copies (sg:termValues) from their likelihoods.")
@click.pass_obj
@handle_errors
def check_command(state: State, fmt: str, repair: bool) -> None:
    """Check that every case, feedback round, learned edge, the baseline and the ontology graphs are complete, and
    that every case's image and mask file is inside the data folder and exists.

    Reads only, unless --repair is given: then the derived copies of the likelihoods are rebuilt first (in batches,
    each all-or-nothing), as needed after editing likelihood values by SPARQL. Prints what was checked and every
    problem (at most 50 listed per kind); exits with status 1 when there is a problem.
    """
    from semgraph.graph.casegraph import rebuild_term_values
    from semgraph.graph.check import check_store

    remote = state.config.store_location.startswith(("http://", "https://"))
    with state.config.open_store(read_only=not (remote or repair)) as store:
        if repair:
            click.echo(f"rebuilt the likelihood copies of {rebuild_term_values(store)} annotations", err=True)
        report = check_store(store, state.config.data_dir)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(report.format_text())
    if not report.ok:
        raise SystemExit(1)
