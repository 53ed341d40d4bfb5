"""The one configuration object, filled from defaults < a TOML file < environment variables < explicit values.

Every setting, of the library and of the web application, is listed once in :data:`ALL_SETTINGS` (name, default,
type, help, scope); :class:`Config`, :mod:`webapp.settings`, the CLI, ``docs/settings.md`` and the tests read it from
there. Environment variables are ``SEMGRAPH_`` + the upper-case name (``SEMGRAPH_STORE``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import kg
from semgraph.errors import ConfigurationError

#: The TOML file read when present (overridden by ``SEMGRAPH_CONFIG``).
DEFAULT_CONFIG_FILE = "semgraph.toml"


#: Where a setting is read (the ``scope`` of a :class:`Setting`).
SCOPES = {
    "library": "Fields of `semgraph.config.Config`: set in the `[semgraph]` table of the TOML file, by an environment "
               "variable, or by a command-line flag where the command has one.",
    "web": "Keys of the web application's Flask config (`app.config`): set by environment variables only (a mapping "
           "given to `webapp.create_app` overrides them).",
    "environment": "Set by an environment variable only.",
    "fixed": "Built-in constants, not settable; listed so that every number the documentation quotes has one source.",
}


@dataclass(frozen=True)
class Setting:
    """One setting: its name, default, meaning and where it is read (see :data:`SCOPES`)."""

    name: str
    default: Any
    help: str
    scope: str = "library"

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r} of setting {self.name}")

    @property
    def env(self) -> str | None:
        """The environment variable, ``SEMGRAPH_`` + the upper-case name (None for a fixed constant)."""
        return None if self.scope == "fixed" else "SEMGRAPH_" + self.name.upper()

    @property
    def type(self) -> str:
        return type(self.default).__name__


#: Every setting of the library and the web application, and the built-in limits the docs quote: the one table.
#: :data:`SETTINGS` (library) and :data:`WEB_SETTINGS` (web) are its parts; ``docs/settings.md`` is generated from it
#: by :func:`settings_markdown` (``python -m semgraph.config docs/settings.md``; a test fails when it is stale).
ALL_SETTINGS: tuple[Setting, ...] = (
    # --- library (Config)
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
    Setting("dicomweb_url", "", "DICOMweb root of the PACS (for example `http://pacs:8042/dicom-web`) that "
                                "`semgraph ingest --dicomweb`, `query --dicomweb`, `export --stow` and the web app's "
                                "'Query from PACS' use when no URL is given."),
    Setting("dicomweb_user", "", "User name for HTTP basic authentication at the PACS (empty: none). Never written "
                                 "to the graph."),
    Setting("dicomweb_password", "", "Password for HTTP basic authentication at the PACS; set it by the environment "
                                     "variable rather than the TOML file. Never written to the graph or a log."),
    Setting("dicomweb_timeout", 30.0, "Seconds to wait for one answer of the PACS."),
    Setting("config", "", "TOML file with a [semgraph] table (default ./semgraph.toml if present; `--config FILE`).",
            "environment"),
    # --- web application (Flask config keys)
    Setting("SPARQL_MAX_ROWS", 10_000, "Most result rows (SELECT) or triples (CONSTRUCT/DESCRIBE) /sparql returns; "
                                       "a larger result is refused with 400 'Result too large'.", "web"),
    Setting("SPARQL_TIMEOUT", 30.0, "Seconds a /sparql query may run before the client gets 503 'Query timed out'.",
            "web"),
    Setting("SPARQL_MAX_QUERY_LENGTH", 100_000, "Longest query or update text in characters (413 beyond).", "web"),
    Setting("SPARQL_MAX_CONCURRENT", 4, "/sparql queries running at once in a server process for anonymous "
                                        "clients, and as many for logged-in users; a query that finds every slot "
                                        "busy for SPARQL_QUEUE_WAIT seconds gets 503 with Retry-After.", "web"),
    Setting("SPARQL_MAX_PER_CLIENT", 1, "/sparql queries one client (a logged-in user, else an IP address) may "
                                        "have running at once; more get 429 with Retry-After.", "web"),
    Setting("SPARQL_QUEUE_WAIT", 2.0, "Seconds a /sparql query waits for a free slot before 503.", "web"),
    Setting("SPARQL_MAX_LAG", 1.0, "Seconds by which the store as /sparql queries see it may lag behind the store "
                                   "(their read-only copy is renewed in the background at most this often); 0: "
                                   "every query sees every write, at the cost of a renewal (~0.1 s) before it.",
            "web"),
    Setting("SPARQL_ALLOW_REMOTE", False, "Allow SERVICE (federated queries) and LOAD in /sparql queries and "
                                          "updates; off: they are refused with 400 and the server makes no "
                                          "outbound request.", "web"),
    Setting("SPARQL_UPDATE_TOKEN", "", "Bearer token that allows SPARQL Update on /sparql without a login "
                                       "(empty: only logged-in curators and admins may update).", "web"),
    Setting("SECRET_KEY", "", "Key that signs session cookies, at least 32 characters (empty: a random key kept in "
                              "DATA_DIR/secret_key).", "web"),
    Setting("MAX_CONTENT_LENGTH", 16 * 1024 * 1024, "Largest request body in bytes (413 beyond).", "web"),
    Setting("SECURE_COOKIES", False, "Mark the session cookie Secure, so browsers send it only over HTTPS. Turn it "
                                     "on behind HTTPS (off: the app also works over plain HTTP on localhost).",
            "web"),
    Setting("LOGIN_FAILURES_PER_USER", 5, "Failed logins for one user name within LOGIN_FAILURE_WINDOW after which "
                                          "logins for that name get 429 with Retry-After (the password is not even "
                                          "checked); a successful login clears the count.", "web"),
    Setting("LOGIN_FAILURES_PER_ADDRESS", 50, "Failed logins from one client address within LOGIN_FAILURE_WINDOW "
                                              "after which every login from it gets 429 with Retry-After.", "web"),
    Setting("LOGIN_FAILURE_WINDOW", 900.0, "Seconds a failed login counts against its user name and address "
                                           "(counted in DATA_DIR/login-throttle.json, shared by all workers).", "web"),
    Setting("REQUEST_LOG", True, "Log one line per request to standard error (logger `semgraph.requests`): method, "
                                 "path with the names but not the values of its query parameters, status, "
                                 "milliseconds and user name.", "web"),
    # --- built-in limits (not settable)
    Setting("DEFAULT_K", 25, "Results of a search or a feedback session when no k is given: `semgraph query`, "
                             "`semgraph search`, `semgraph feedback`, the web pages, the JSON API (`k`) and "
                             "`Engine.search_*` / `semgraph.feedback.sessions`.", "fixed"),
    Setting("MAX_K", 200, "Largest k the web pages and the JSON API accept (400 beyond).", "fixed"),
    Setting("MAX_UPLOAD_BYTES", 8 * 1024 * 1024, "Largest uploaded image or mask file in bytes (413 beyond; "
                                                 "MAX_CONTENT_LENGTH bounds the whole request).", "fixed"),
    Setting("MAX_UPLOAD_SIDE", 2048, "Largest side in pixels of an image uploaded to the web app (refused with 400 "
                                     "beyond).", "fixed"),
    Setting("MAX_IMAGE_SIDE", 4096, "Largest side in pixels of an image or mask the library loads or extracts "
                                    "features from (`semgraph ingest`, `semgraph query --image`, thumbnails, "
                                    "`semgraph.features`); a larger one is refused with a message to crop it. "
                                    "Python callers may pass another `max_size`.", "fixed"),
    Setting("MAX_FORM_MEMORY_SIZE", 500_000, "Largest non-file form field in bytes (Flask's default; 413 beyond).",
            "fixed"),
)

#: The library's settings (the fields of :class:`Config`).
SETTINGS: tuple[Setting, ...] = tuple(s for s in ALL_SETTINGS if s.scope == "library")
#: The web application's settings (keys of its Flask config; see :mod:`webapp.settings`).
WEB_SETTINGS: tuple[Setting, ...] = tuple(s for s in ALL_SETTINGS if s.scope == "web")


def setting(name: str) -> Setting:
    """The setting called ``name`` (KeyError when there is none)."""
    for s in ALL_SETTINGS:
        if s.name == name:
            return s
    raise KeyError(name)


#: Default number of results (CLI ``--k``, web pages, JSON API, :class:`~semgraph.retrieval.engine.Engine`, sessions).
DEFAULT_K: int = setting("DEFAULT_K").default


def _shown(setting: Setting) -> str:
    value = setting.default
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if value == "":
        return "(empty)"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_markdown() -> str:
    """``docs/settings.md``: the table :data:`ALL_SETTINGS` as Markdown, one section per scope."""
    titles = {"library": "Library settings", "web": "Web application settings",
              "environment": "Environment only", "fixed": "Built-in limits (not settable)"}
    lines = ["# Settings", "",
             ("<!-- Generated from semgraph/config.py (ALL_SETTINGS) by `python -m semgraph.config docs/settings.md`;"
              " do not edit by hand. -->"), "",
             ("Values come from the defaults < the TOML file (`[semgraph]` table; `semgraph.toml`, or the file "
              "`SEMGRAPH_CONFIG` names) < environment variables < command-line flags. The web settings are read "
              "from environment variables only. Booleans accept `1 true yes on` / `0 false no off`."), ""]
    for scope, title in titles.items():
        rows = [s for s in ALL_SETTINGS if s.scope == scope]
        lines += [f"## {title}", "", SCOPES[scope], "",
                  "| name | environment variable | default | type | meaning |", "|---|---|---|---|---|"]
        lines += [f"| `{s.name}` | {f'`{s.env}`' if s.env else '—'} | {_shown(s)} | {s.type} | {_cell(s.help)} |"
                  for s in rows]
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class Config:
    """Resolved settings (see :data:`SETTINGS` for their meaning)."""

    data_dir: str = setting("data_dir").default
    store: str = setting("store").default
    update_url: str = setting("update_url").default
    timeout: float = setting("timeout").default
    store_folder: str = setting("store_folder").default
    collection: str = setting("collection").default
    engine_snapshot: str = setting("engine_snapshot").default
    dicomweb_url: str = setting("dicomweb_url").default
    dicomweb_user: str = setting("dicomweb_user").default
    dicomweb_password: str = field(default=setting("dicomweb_password").default, repr=False)
    dicomweb_timeout: float = setting("dicomweb_timeout").default

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


def main(argv: list[str] | None = None) -> None:
    """``python -m semgraph.config [FILE]``: write :func:`settings_markdown` to FILE (``docs/settings.md``) or print it."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    text = settings_markdown()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
