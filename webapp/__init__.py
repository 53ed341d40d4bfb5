"""Flask web application (app factory, pages, JSON API, SPARQL endpoint).

    app = create_app()                       # settings from semgraph.toml / SEMGRAPH_* variables
    app = create_app(Config(data_dir="d"))   # an explicit semgraph configuration
    app = create_app({"TESTING": True, "data_dir": "d", "SPARQL_MAX_ROWS": 100})   # tests

The store is opened once here and shared by every request; call ``app.extensions["semgraph"].close()`` when the
app is discarded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

import kg
from kg.embedded import EmbeddedStore
from kg.replica import GRACE, QueryReplica
from semgraph.config import SETTINGS, Config, setting
from semgraph.users import UserStore

from . import settings as web_settings
from .services import QueryGate, Services

__all__ = ["create_app"]


def _split(config: Config | Mapping[str, Any] | None) -> tuple[Config, dict[str, Any]]:
    """(semgraph configuration, Flask settings) from what :func:`create_app` was given."""
    if config is None:
        return Config.load(), {}
    if isinstance(config, Config):
        return config, {}
    if not isinstance(config, Mapping):
        raise TypeError(f"create_app() takes a semgraph Config or a mapping, not {type(config).__name__}")
    flask_settings = dict(config)
    semgraph_config = flask_settings.pop("SEMGRAPH_CONFIG", None)
    names = {s.name for s in SETTINGS}
    overrides = {k: flask_settings.pop(k) for k in list(flask_settings) if k in names}
    if semgraph_config is None:
        semgraph_config = Config.load(overrides)
    elif overrides:
        raise TypeError("pass either SEMGRAPH_CONFIG or semgraph settings, not both")
    return semgraph_config, flask_settings


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """Build the web application over the configured store.

    Parameters
    ----------
    config : Config or mapping, optional
        A :class:`semgraph.config.Config`, or a mapping of Flask settings (upper case, e.g. ``TESTING``,
        ``SPARQL_MAX_ROWS``) that may also hold semgraph settings (``data_dir``, ``store`` ...) or a ready
        ``SEMGRAPH_CONFIG``. Default: :meth:`Config.load` (file and environment).
    """
    semgraph_config, flask_settings = _split(config)
    app = Flask(__name__)
    app.config.from_mapping(web_settings.web_defaults())
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", JSON_SORT_KEYS=False)
    app.config.update(flask_settings)
    web_settings.check(app.config)
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config["SECURE_COOKIES"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = web_settings.secret_key(semgraph_config.data_dir)
    web_settings.check_secret_key(app.config["SECRET_KEY"])
    os.makedirs(semgraph_config.data_dir, exist_ok=True)

    store = semgraph_config.open_store()
    app.extensions["semgraph"] = Services(
        config=semgraph_config, store=store, users=UserStore.in_data_dir(semgraph_config.data_dir),
        gates={kind: QueryGate(int(app.config["SPARQL_MAX_CONCURRENT"]), int(app.config["SPARQL_MAX_PER_CLIENT"]),
                               float(app.config["SPARQL_QUEUE_WAIT"])) for kind in ("anonymous", "user")},
        public=_public_queries(semgraph_config, store, float(app.config["SPARQL_TIMEOUT"]),
                               float(app.config["SPARQL_MAX_LAG"])))

    from . import (
        account,
        api,
        api_retrieval,
        auth,
        csrf,
        dicom_downloads,
        errors,
        pacs,
        pages,
        radiology,
        request_log,
        research,
        shapes,
        site,
        sparql,
        textsearch,
        viewer,
    )

    request_log.init_app(app)  # first: its time covers the other hooks
    errors.init_app(app)
    auth.init_app(app)  # before csrf: a request with an API token needs no CSRF token
    csrf.init_app(app)
    site.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(sparql.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(radiology.bp)
    app.register_blueprint(api_retrieval.bp)
    app.register_blueprint(dicom_downloads.bp)
    app.register_blueprint(research.bp)
    app.register_blueprint(research.api_bp)
    app.register_blueprint(shapes.bp)
    app.register_blueprint(textsearch.bp)
    app.register_blueprint(textsearch.api_bp)
    app.register_blueprint(viewer.bp)
    app.register_blueprint(pacs.bp)
    app.register_blueprint(pacs.api_bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(account.api_bp)
    app.jinja_env.globals["current_user"] = auth.current_user
    app.jinja_env.globals["MAX_K"] = setting("MAX_K").default
    app.after_request(_security_headers)
    return app


def _public_queries(config: Config, store: kg.Store, timeout: float, lag: float) -> QueryReplica | kg.Store:
    """Where /sparql queries run (see :class:`Services`): replicas of an embedded store, or of the folder that
    ``semgraph serve --workers`` serves (``store_folder``); else a read-only connection to the remote store."""
    if isinstance(store, EmbeddedStore):
        return QueryReplica(store, store.location + ".replicas", timeout=timeout, min_age=lag)
    if config.store_folder:
        from .engines import (
            generation,  # renewed by every process after an update through /sparql
        )

        return QueryReplica(config.store_folder, config.store_folder + ".replicas", timeout=timeout, min_age=lag,
                            version=lambda: generation(config.data_dir))
    return kg.open_store(store.location, read_only=True, timeout=timeout + GRACE)


def _security_headers(response):
    """No inline scripts or foreign resources, no framing, no MIME sniffing."""
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
