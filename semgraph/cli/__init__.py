"""The ``semgraph`` command line. Each command group lives in its own module of this package.

The store comes from ``--store``, else ``SEMGRAPH_STORE``, else ``DATA_DIR/graph`` (see :mod:`semgraph.config`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from kg import StoreError
from ontology import OntologyError
from semgraph.config import SETTINGS, Config, setting
from semgraph.errors import SemgraphError

_HELP = {s.name: f"{s.help} [env: {s.env}]" for s in SETTINGS}


class State:
    """What every command receives: the resolved configuration."""

    def __init__(self, config: Config):
        self.config = config

    def collection(self, store, name: str | None = None):
        """The collection ``name`` (``--collection``), else the configured one, else the store's only one."""
        from semgraph.graph.collection import resolve

        return resolve(store, name or self.config.collection or None)


def collection_option(command: Callable) -> Callable:
    """The ``--collection NAME`` option (passed as ``collection``), overriding the ``collection`` setting."""
    return click.option("--collection", "collection", metavar="NAME",
                        help="Collection to work on [default: the setting, else the store's only one].")(command)


def handle_errors(command: Callable) -> Callable:
    """Turn our packages' errors into a one-line message and exit status 1 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (StoreError, OntologyError, SemgraphError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", metavar="PATH|URL", help=_HELP["store"])
@click.option("--update-url", metavar="URL", help=_HELP["update_url"])
@click.option("--data-dir", metavar="PATH", help=_HELP["data_dir"])
@click.option("--config", "config_file", metavar="FILE",
              help=f"{setting('config').help.split(' (')[0]} (default ./semgraph.toml if present) "
                   f"[env: {setting('config').env}]")
@click.version_option(package_name="semgraph")
@click.pass_context
def cli(ctx: click.Context, store, update_url, data_dir, config_file) -> None:
    """semgraph: knowledge-graph backed semantic retrieval of radiological images."""
    try:
        config = Config.load({"store": store, "update_url": update_url, "data_dir": data_dir},
                             config_file=config_file)
    except SemgraphError as exc:
        raise click.ClickException(str(exc)) from exc
    ctx.obj = State(config)


def load_commands() -> click.Group:
    """Import every ``*_cmd`` module of this package (each registers its commands on :func:`cli`)."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        if module.name.endswith("_cmd"):
            importlib.import_module(f"{__name__}.{module.name}")
    return cli


def main() -> None:
    """Console-script entry point."""
    load_commands()()
