"""``semgraph export``: the learned term relations with provenance, an ontology-update proposal or a change report."""

from __future__ import annotations

from pathlib import Path

import click

from semgraph.cli import State, cli, collection_option, handle_errors
from semgraph.config import DEFAULT_K
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
@click.option("--dicom-sr", "dicom_case", metavar="CASE",
              help="Instead: the case as a DICOM SR (TID 1500) with its similar cases; --out names a folder.")
@click.option("--seg", is_flag=True, help="With --dicom-sr: also the ROI as a DICOM SEG, referenced by the SR.")
@click.option("--similar", default=DEFAULT_K, show_default=True, type=click.IntRange(0, 100),
              help="With --dicom-sr: how many similar cases the SR references.")
@click.option("--stow", metavar="URL", is_flag=False, flag_value="",
              help="With --dicom-sr: store the objects in the PACS with STOW-RS (its DICOMweb root; without URL the "
                   "dicomweb_url setting).")
@collection_option
@click.pass_obj
@handle_errors
def export_command(state: State, fmt: str, out: str | None, min_sessions: int, since: str | None,
                   until: str | None, user: str | None, term: str | None, min_change: float | None,
                   dicom_case: str | None, seg: bool, similar: int, stow: str | None, collection: str | None) -> None:
    """Export the term similarities learned from relevance feedback, with their provenance.

    Prints to standard output unless --out names a file (written under DATA_DIR/exports). With --dicom-sr CASE,
    writes a DICOM SR (and with --seg a SEG) into the folder --out under DATA_DIR/exports and/or stores them with
    --stow.
    """
    folder = Path(state.config.data_dir) / "exports"
    if dicom_case is not None or seg or stow is not None:
        _export_dicom(state, dicom_case, folder, out, seg=seg, similar=similar, stow=stow, collection=collection)
        return
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


def _export_dicom(state: State, case_id: str | None, folder: Path, out: str | None, *, seg: bool, similar: int,
                  stow: str | None, collection: str | None) -> None:
    """``--dicom-sr CASE``: build the SR (and SEG), then write them under ``folder/out`` and/or STOW them. Every
    argument and the PACS address are checked before the work; nothing is written to the graph."""
    from semgraph.exchange.dicom_sr import export_case
    from semgraph.exchange.pacs import connect
    from semgraph.retrieval.engine import Engine

    if not case_id:
        raise click.UsageError("--seg and --stow go with --dicom-sr CASE")
    if out is None and stow is None:
        raise click.UsageError("--dicom-sr needs --out FOLDER, --stow [URL] or both")
    target = safe_export_path(folder, out) if out else None
    client = connect(state.config, stow or None) if stow is not None else None  # ConfigurationError when no PACS
    with state.config.open_store() as store:
        engine = Engine.from_store(store, collection=state.collection(store, collection))
        exported = export_case(store, engine, state.config.data_dir, case_id, similar=similar, seg=seg)
    if target is not None:
        for path in exported.write(target):
            click.echo(f"wrote {path}")
    if client is not None:
        uids = exported.stow(client)
        click.echo(f"stored {len(uids)} object(s) in {client.base_url}: {', '.join(uids)}")
