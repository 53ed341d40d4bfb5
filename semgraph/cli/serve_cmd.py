"""``semgraph serve``: run the web application on waitress over the configured data folder."""

from __future__ import annotations

import signal

import click

from . import State, cli, handle_errors


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Worker threads answering requests.")
@click.pass_obj
@handle_errors
def serve(state: State, host: str, port: int, threads: int) -> None:
    """Serve the web application (pages, JSON API at /api/v1, SPARQL endpoint at /sparql) until Ctrl+C.

    The embedded store folder is opened by this process alone while it runs; other `semgraph` commands can read
    the data through http://HOST:PORT/sparql meanwhile.
    """
    from waitress import create_server

    from webapp import create_app

    app = create_app(state.config)
    server = create_server(app, host=host, port=port, threads=threads, clear_untrusted_proxy_headers=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"semgraph is serving {state.config.data_dir} at http://{shown}:{server.effective_port}/ "
               f"(SPARQL: /sparql, API: /api/v1/openapi.json); Ctrl+C stops it")
    def stop(signum, frame):  # SIGTERM (a service manager, `kill`): shut down like Ctrl+C, closing the store
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        app.extensions["semgraph"].close()
