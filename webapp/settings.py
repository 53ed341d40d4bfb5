"""Settings of the web application: one table, read from ``SEMGRAPH_*`` environment variables.

They become keys of the Flask config (``app.config["SPARQL_MAX_ROWS"]``); a test mapping given to
:func:`webapp.create_app` overrides them. The store and data folder come from :class:`semgraph.config.Config`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from semgraph.config import Setting
from semgraph.errors import ConfigurationError

#: Every web setting, with its default and meaning (the env variable is ``SEMGRAPH_`` + the name).
WEB_SETTINGS: tuple[Setting, ...] = (
    Setting("SPARQL_MAX_ROWS", 10_000, "Most result rows (SELECT) or triples (CONSTRUCT/DESCRIBE) /sparql returns; "
                                       "a larger result is refused with 400 'Result too large'."),
    Setting("SPARQL_TIMEOUT", 30.0, "Seconds a /sparql query may run before the client gets 503 'Query timed out'."),
    Setting("SPARQL_MAX_QUERY_LENGTH", 100_000, "Longest query or update text in characters (413 beyond)."),
    Setting("SPARQL_MAX_CONCURRENT", 8, "Queries running at once; a query waiting longer than the timeout for a "
                                        "slot gets 503."),
    Setting("SPARQL_UPDATE_TOKEN", "", "Bearer token that allows SPARQL Update on /sparql without a login "
                                       "(empty: only logged-in curators and admins may update)."),
    Setting("SECRET_KEY", "", "Key that signs session cookies (empty: a random key kept in DATA_DIR/secret_key)."),
    Setting("MAX_CONTENT_LENGTH", 16 * 1024 * 1024, "Largest request body in bytes."),
)

SECRET_KEY_FILE = "secret_key"


def web_defaults(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The web settings: defaults overridden by ``SEMGRAPH_<NAME>`` environment variables."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in WEB_SETTINGS:
        raw = environ.get("SEMGRAPH_" + setting.name)
        if raw is None:
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = type(setting.default)(raw)
        except ValueError as exc:
            raise ConfigurationError(f"SEMGRAPH_{setting.name}={raw!r} is not a valid "
                                     f"{type(setting.default).__name__}") from exc
    return values


def check(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigurationError` for out-of-range limits."""
    for name in ("SPARQL_MAX_ROWS", "SPARQL_TIMEOUT", "SPARQL_MAX_QUERY_LENGTH", "SPARQL_MAX_CONCURRENT"):
        if not config[name] > 0:
            raise ConfigurationError(f"setting {name} must be positive, got {config[name]!r}")


def secret_key(data_dir: str | os.PathLike) -> str:
    """The key in ``DATA_DIR/secret_key``, created once (random, mode 0600) when missing. Never a fixed default."""
    path = Path(data_dir) / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < 32:
            raise ConfigurationError(f"{path} holds no usable key; delete it to have a new one generated") from None
        return key
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key
