"""Production serving: one process with threads (waitress), or several worker processes (gunicorn) over one store.

One Python process answers requests one at a time as far as the interpreter lock goes, so a single process uses
about one core however many threads it has. With ``workers > 1`` (:func:`serve_workers`) gunicorn forks that many
worker processes that share the listening socket, each with its own app (:func:`webapp.create_app`), retrieval
engine and threads. They need one store that all of them can write to: an embedded store folder is served by an
``oxigraph serve`` child process (:class:`kg.server.StoreServer`) that the workers reach over SPARQL on loopback,
and the engine snapshot stays beside the folder (brought up to date before the server starts). A configured remote
store is used as it is. In both modes public /sparql queries run on read-only copies of the folder in processes of
their own (:class:`kg.replica.QueryReplica`), which can be killed when a query overruns. What the workers share
otherwise lives in the data folder: users, sessions' start records, uploads, jobs (:mod:`webapp.jobs`) and the
cache generation (:func:`webapp.engines.invalidate`).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask

from semgraph.config import Config
from semgraph.errors import SemgraphError
from semgraph.graph.snapshot import snapshot_file

from . import create_app, engines, request_log

__all__ = ["EverySeconds", "log_requests_to_stderr", "serve_threads", "serve_workers"]

#: Seconds a worker may stay silent (booting, or a request running in every thread) before gunicorn restarts it.
WORKER_TIMEOUT = 300
#: Seconds an idle keep-alive connection stays open (clients reuse connections; shorter makes them race the close).
KEEPALIVE = 30


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


def log_requests_to_stderr() -> None:
    """Send the request log (:mod:`webapp.request_log`, on while the ``REQUEST_LOG`` setting is) to standard error,
    one timestamped line per request; once per process (worker processes inherit it)."""
    logger = request_log.LOGGER
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _announce(config: Config, host: str, port: int, how: str) -> None:
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"semgraph is serving {config.data_dir} at http://{shown}:{port}/ ({how}; SPARQL: /sparql, "
               "API: /api/v1/openapi.json); Ctrl+C stops it")


def warm_up(app: Flask) -> None:
    """Build the app's retrieval engine now rather than on the first search (nothing to do without cases).

    A failure is logged, not raised: the server still starts, and the first search reports the problem."""
    with app.app_context():
        try:
            engines.engine(app.extensions["semgraph"])
        except SemgraphError:
            pass  # no case yet: the first search after an ingest builds it
        except Exception:  # warming up is an optimisation; the first search raises the error properly
            logging.getLogger("semgraph.serve").exception("building the retrieval engine at start-up failed")


def serve_threads(config: Config, host: str, port: int, threads: int) -> None:
    """Serve in this process on waitress with ``threads`` threads until Ctrl+C or SIGTERM."""
    from waitress import create_server

    app = create_app(config)
    log_requests_to_stderr()
    queue_log = logging.getLogger("waitress.queue")
    if not any(isinstance(f, EverySeconds) for f in queue_log.filters):
        queue_log.addFilter(EverySeconds())
    try:
        warm_up(app)
        server = create_server(app, host=host, port=port, threads=threads, clear_untrusted_proxy_headers=True)
        _announce(config, host, server.effective_port, f"1 process, {threads} threads")

        def stop(signum, frame):  # SIGTERM (a service manager, `kill`): shut down like Ctrl+C, closing the store
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    finally:
        app.extensions["semgraph"].close()


def serve_workers(config: Config, host: str, port: int, workers: int, threads: int) -> None:
    """Serve with ``workers`` gunicorn worker processes of ``threads`` threads each until Ctrl+C or SIGTERM.

    An embedded store folder is served to the workers by an ``oxigraph serve`` child process, stopped on exit;
    the engine snapshot is brought up to date from the folder before, so that the workers start from it.
    """
    from kg.server import StoreServer

    if config.store.startswith(("http://", "https://")):
        _run_gunicorn(config, host, port, workers, threads)
        return
    folder = Path(config.store_location)
    snapshot = config.engine_snapshot or str(snapshot_file(folder))
    _prepare_snapshot(dataclasses.replace(config, engine_snapshot=snapshot))
    click.echo(f"starting oxigraph serve on {folder} for {workers} worker processes ...", err=True)
    with StoreServer(folder) as server:
        shared = dataclasses.replace(config, store=server.query_url, update_url=server.update_url,
                                     store_folder=str(folder), engine_snapshot=snapshot)
        _run_gunicorn(shared, host, port, workers, threads)


def _prepare_snapshot(config: Config) -> None:
    """Write a current engine snapshot of the embedded store, before the store server takes the folder."""
    from semgraph.retrieval.engine import Engine

    click.echo("preparing the retrieval engine's snapshot ...", err=True)
    store = config.open_store()
    try:
        Engine.from_store(store, collection=config.collection or None, snapshot_file=config.engine_snapshot or None)
    except SemgraphError:
        pass  # no case yet
    finally:
        store.close()


def _run_gunicorn(config: Config, host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    def when_ready(arbiter) -> None:
        bound = arbiter.LISTENERS[0].sock.getsockname()[1]
        _announce(config, host, bound, f"{workers} worker processes, {threads} threads each")
        sys.stdout.flush()

    options = {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "workers": workers,
               "worker_class": "gthread", "threads": threads, "timeout": WORKER_TIMEOUT, "keepalive": KEEPALIVE,
               "graceful_timeout": 30, "accesslog": None, "errorlog": "-", "loglevel": "warning",
               "when_ready": when_ready, "control_socket_disable": True, "proc_name": "semgraph"}

    class Workers(BaseApplication):
        def load_config(self) -> None:
            for name, value in options.items():
                if name in self.cfg.settings:  # options of newer gunicorn versions are skipped on older ones
                    self.cfg.set(name, value)

        def load(self) -> Flask:  # in each worker, after the fork: own app, own store connection, own engine
            app = create_app(config)
            warm_up(app)
            return app

    log_requests_to_stderr()
    Workers().run()
