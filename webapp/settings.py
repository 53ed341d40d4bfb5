"""Settings of the web application, read from ``SEMGRAPH_*`` environment variables. They are listed, with the
library's, in the one table :data:`semgraph.config.ALL_SETTINGS` (scope ``web``; :data:`WEB_SETTINGS` is that part).

They become keys of the Flask config (``app.config["SPARQL_MAX_ROWS"]``); a test mapping given to
:func:`webapp.create_app` overrides them. The store and data folder come from :class:`semgraph.config.Config`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from semgraph.config import WEB_SETTINGS
from semgraph.errors import ConfigurationError

SECRET_KEY_FILE = "secret_key"


def web_defaults(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The web settings: defaults overridden by ``SEMGRAPH_<NAME>`` environment variables."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in WEB_SETTINGS:
        raw = environ.get(setting.env)
        if raw is None:
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = parse_bool(raw) if isinstance(setting.default, bool) \
                else type(setting.default)(raw)
        except ValueError as exc:
            raise ConfigurationError(f"{setting.env}={raw!r} is not a valid "
                                     f"{type(setting.default).__name__}") from exc
    return values


def parse_bool(raw: str) -> bool:
    """``1 true yes on`` → True, ``0 false no off`` → False (any case); ValueError otherwise."""
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a yes/no value: {raw!r}")


def check(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigurationError` for out-of-range limits."""
    for name in ("SPARQL_MAX_ROWS", "SPARQL_TIMEOUT", "SPARQL_MAX_QUERY_LENGTH", "SPARQL_MAX_CONCURRENT",
                 "SPARQL_MAX_PER_CLIENT", "SPARQL_QUEUE_WAIT", "LOGIN_FAILURES_PER_USER",
                 "LOGIN_FAILURES_PER_ADDRESS", "LOGIN_FAILURE_WINDOW"):
        if not config[name] > 0:
            raise ConfigurationError(f"setting {name} must be positive, got {config[name]!r}")
    if not config["SPARQL_MAX_LAG"] >= 0:
        raise ConfigurationError(f"setting SPARQL_MAX_LAG must be 0 or more, got {config['SPARQL_MAX_LAG']!r}")


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


#: Shortest accepted SECRET_KEY (characters); the generated key has 64.
MIN_SECRET_KEY_LENGTH = 32


def check_secret_key(key: str | bytes) -> None:
    """Raise :class:`ConfigurationError` unless ``key`` has at least :data:`MIN_SECRET_KEY_LENGTH` characters (a
    short key can be guessed, and whoever knows it can sign a login cookie for any user)."""
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigurationError(f"SEMGRAPH_SECRET_KEY must have at least {MIN_SECRET_KEY_LENGTH} characters (it "
                                 f"has {len(key)}): use a long random value, e.g. `python -c \"import secrets; "
                                 f"print(secrets.token_hex(32))\"`, or leave it empty to have one generated in "
                                 f"DATA_DIR/{SECRET_KEY_FILE}")

