"""``semgraph export``: the learned term relations with provenance, an ontology-update proposal or a change report."""

from __future__ import annotations

from pathlib import Path

import click

from semgraph.cli import State, cli, collection_option, handle_errors
from semgraph.exchange.export import (
    available_formats,
    export,
    get_format,
    safe_export_path,
)


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(available_formats()), default="turtle", show_default=True,
              help="; ".join(f"{name}: {get_format(name).label}" for name in available_formats()) + ".")
@click.option("--out", "out", metavar="FILE",
              help="Write to this file inside DATA_DIR/exports (a relative name; paths leaving that folder are "
                   "refused) instead of printing.")
@click.option("--min-sessions", default=1, show_default=True, type=click.IntRange(1, None),
              help="Only pairs learned in at least N sessions.")
@click.option("--since", metavar="DATE", help="Only edges learned on or after DATE (YYYY-MM-DD).")
@click.option("--until", metavar="DATE", help="Only edges learned on or before DATE (YYYY-MM-DD).")
@click.option("--user", metavar="NAME", help="Only this user's rounds.")
@click.option("--term", metavar="TEXT", help="Only pairs where a term's label contains TEXT (or its RadLex id is TEXT).")
@click.option("--min-change", type=click.FloatRange(0, None), help="Only pairs with |learned − baseline| ≥ X.")
@collection_option
@click.pass_obj
@handle_errors
def export_command(state: State, fmt: str, out: str | None, min_sessions: int, since: str | None,
                   until: str | None, user: str | None, term: str | None, min_change: float | None,
                   collection: str | None) -> None:
    """Export the term similarities learned from relevance feedback, with their provenance.

    Prints to standard output unless --out names a file (written under DATA_DIR/exports).
    """
    folder = Path(state.config.data_dir) / "exports"
    target = safe_export_path(folder, out) if out else None  # validated before any work or write
    with state.config.open_store() as store:
        text = export(store, fmt, term=term, min_change=min_change, min_sessions=min_sessions, user=user,
                      since=since, until=until, collection=state.collection(store, collection))
    if target is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    if not target.suffix:
        target = target.with_suffix(get_format(fmt).extension)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {fmt} export to {target}")
