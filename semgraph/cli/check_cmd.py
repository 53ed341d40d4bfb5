"""``semgraph check``: the integrity check of the store (see :mod:`semgraph.graph.check`)."""

from __future__ import annotations

import json

import click

from semgraph.cli import State, cli, handle_errors


@cli.command(name="check")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
@handle_errors
def check_command(state: State, fmt: str) -> None:
    """Check that every case, feedback round, learned edge, the baseline and the ontology graphs are complete, and
    that every case's image and mask file is inside the data folder and exists.

    Reads only. Prints what was checked and every problem (at most 50 listed per kind); exits with status 1 when
    there is a problem.
    """
    from semgraph.graph.check import check_store

    with state.config.open_store(read_only=not state.config.store_location.startswith(("http://", "https://"))) \
            as store:
        report = check_store(store, state.config.data_dir)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(report.format_text())
    if not report.ok:
        raise SystemExit(1)
