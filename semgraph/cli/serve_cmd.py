"""``semgraph serve``: run the web application on waitress over the configured data folder."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

import click

from . import State, cli, handle_errors


class EverySeconds(logging.Filter):
    """Let through at most one record per ``interval`` seconds; the next one says how many were held back.

    Waitress warns "Task queue depth is N" for every request that waits for a worker thread; under load that is
    one line per request, written while waitress holds its dispatcher lock. Operators need to know that requests
    queue, not each time.
    """

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval, self.clock = interval, clock
        self.last: float | None = None
        self.held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            self.held += 1
            return False
        if self.held:
            record.msg = f"{record.msg} ({self.held} more such warnings in the last {now - self.last:.0f} s)"
        self.last, self.held = now, 0
        return True


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
    queue_log = logging.getLogger("waitress.queue")
    if not any(isinstance(f, EverySeconds) for f in queue_log.filters):
        queue_log.addFilter(EverySeconds())
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
