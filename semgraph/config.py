"""The one configuration object, filled from defaults < a TOML file < environment variables < explicit values.

Every setting is listed once in :data:`SETTINGS` (name, default, help); the CLI, the docs and the tests read it
from there. Environment variables are ``SEMGRAPH_`` + the upper-case name (``SEMGRAPH_STORE``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import kg

from .errors import ConfigurationError

#: The TOML file read when present (overridden by ``SEMGRAPH_CONFIG``).
DEFAULT_CONFIG_FILE = "semgraph.toml"


@dataclass(frozen=True)
class Setting:
    """One configuration setting."""

    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "SEMGRAPH_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "semgraph-data", "Data folder: the embedded store, features, models, thumbnails."),
    Setting("store", "", "Store location: a folder (embedded Oxigraph) or a SPARQL query URL; "
                         "default DATA_DIR/graph."),
    Setting("update_url", "", "SPARQL Update URL of a remote store (default: the store URL itself)."),
    Setting("timeout", 60.0, "Seconds to wait for a remote SPARQL endpoint."),
    Setting("store_folder", "", "Folder of the embedded store behind a `store` URL that `semgraph serve --workers` "
                                "serves itself (set by it): /sparql queries run on copies of that folder."),
    Setting("collection", "", "Collection the commands and pages work on (default: the store's only one; see "
                              "`semgraph collection list`)."),
    Setting("engine_snapshot", "", "File of the retrieval engine's snapshot of a remote store (checked against the "
                                   "store before use; default: none for a remote store, beside an embedded one)."),
)


@dataclass(frozen=True)
class Config:
    """Resolved settings (see :data:`SETTINGS` for their meaning)."""

    data_dir: str = "semgraph-data"
    store: str = ""
    update_url: str = ""
    timeout: float = 60.0
    store_folder: str = ""
    collection: str = ""
    engine_snapshot: str = ""

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, *, config_file: str | os.PathLike | None = None,
             environ: Mapping[str, str] | None = None) -> Config:
        """Defaults, then the TOML file (``[semgraph]`` table), then ``SEMGRAPH_*`` variables, then ``overrides``
        (values of ``None`` are ignored, so unset command-line flags fall through)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = Path(config_file or environ.get("SEMGRAPH_CONFIG") or DEFAULT_CONFIG_FILE)
        if path.is_file():
            try:
                values.update(tomllib.loads(path.read_text(encoding="utf-8")).get("semgraph", {}))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError(f"{path}: invalid TOML: {exc}") from exc
        elif config_file is not None or "SEMGRAPH_CONFIG" in environ:
            raise ConfigurationError(f"configuration file {path} does not exist")
        for setting in SETTINGS:
            if setting.env in environ:
                values[setting.name] = environ[setting.env]
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls._validated(values)

    @classmethod
    def _validated(cls, values: Mapping[str, Any]) -> Config:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigurationError(f"unknown settings {unknown}; known: {sorted(known)}")
        config = cls()
        for name, value in values.items():
            try:
                config = replace(config, **{name: type(getattr(config, name))(value)})
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"setting {name}: {value!r} is not a valid {known[name].type}") from exc
        if config.timeout <= 0:
            raise ConfigurationError(f"setting timeout must be positive, got {config.timeout}")
        return config

    @property
    def store_location(self) -> str:
        """The store folder or URL: ``store`` if set, else ``DATA_DIR/graph``."""
        return self.store or str(Path(self.data_dir) / "graph")

    def open_store(self, *, read_only: bool = False) -> kg.Store:
        """Open the configured store."""
        return kg.open_store(self.store_location, update_url=self.update_url or None, read_only=read_only,
                             timeout=self.timeout)
