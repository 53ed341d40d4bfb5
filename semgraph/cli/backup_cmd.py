"""``semgraph backup`` and ``semgraph restore`` (see :mod:`semgraph.graph.backup`)."""

from __future__ import annotations

import click

from semgraph.cli import State, cli, handle_errors


@cli.command(name="backup")
@click.argument("out_dir", metavar="OUT_DIR")
@click.option("--include-secrets", is_flag=True,
              help="Also copy users.json (password hashes) and secret_key (cookie key). Keep such a backup private.")
@click.pass_obj
@handle_errors
def backup_command(state: State, out_dir: str, include_secrets: bool) -> None:
    """Write every named graph (N-Quads) and the data folder's files, with a SHA-256 manifest, to OUT_DIR.

    users.json and secret_key are left out unless --include-secrets.
    """
    from semgraph.graph.backup import backup

    location = state.config.store_location
    remote = location.startswith(("http://", "https://"))
    with state.config.open_store(read_only=not remote) as store:
        info = backup(store, state.config.data_dir, out_dir, include_secrets=include_secrets)
    click.echo(f"backed up {info.quads:,} quads in {len(info.graphs):,} graphs and {info.files:,} files to {info.path}")
    if include_secrets:
        click.echo("warning: the backup holds users.json (password hashes) and secret_key; keep it private", err=True)
    elif info.skipped_secrets:
        click.echo(f"not included: {', '.join(info.skipped_secrets)} (use --include-secrets to copy them)")


@cli.command(name="restore")
@click.argument("backup_dir", metavar="BACKUP_DIR")
@click.option("--into", "into", metavar="DIR", help="Data folder to create [default: DATA_DIR].")
@click.option("--force", is_flag=True, help="Replace a non-empty target folder.")
@click.pass_obj
@handle_errors
def restore_command(state: State, backup_dir: str, into: str | None, force: bool) -> None:
    """Verify a backup's checksums and restore it into a new data folder (embedded store in DIR/graph)."""
    from semgraph.graph.backup import restore

    target = into or state.config.data_dir
    info = restore(backup_dir, target, force=force)
    click.echo(f"verified and restored {info['quads']:,} quads in {len(info['graphs']):,} graphs and "
               f"{info['files']:,} files into {target}")
    if info.get("skipped_secrets"):
        click.echo(f"the backup has no {', '.join(info['skipped_secrets'])}: add users again with `semgraph user add`")
