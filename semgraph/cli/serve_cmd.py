"""``semgraph serve``: run the web application over the configured data folder (one process, or N workers)."""

from __future__ import annotations

import click

from semgraph.cli import State, cli, handle_errors


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Threads answering requests (in each worker process).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes. 1: waitress in this process. More: gunicorn workers over one store "
                   "(an embedded store is then served to them by an `oxigraph serve` child process); about one "
                   "per CPU core for many concurrent users.")
@click.pass_obj
@handle_errors
def serve(state: State, host: str, port: int, threads: int, workers: int) -> None:
    """Serve the web application (pages, JSON API at /api/v1, SPARQL endpoint at /sparql) until Ctrl+C.

    The embedded store folder is opened by this server alone while it runs; other `semgraph` commands can read
    the data through http://HOST:PORT/sparql meanwhile.
    """
    from webapp.serving import serve_threads, serve_workers

    if workers == 1:
        serve_threads(state.config, host, port, threads)
    else:
        serve_workers(state.config, host, port, workers, threads)
