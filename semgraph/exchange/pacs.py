"""The connection to a PACS over DICOMweb (QIDO-RS, WADO-RS, STOW-RS) with ``dicomweb-client``.

:func:`connect` is the one place that builds a client: the URL from the argument or the ``dicomweb_url`` setting,
HTTP basic credentials from ``dicomweb_user`` / ``dicomweb_password`` (never written to the graph or a message),
the ``dicomweb_timeout`` on every request. :func:`pacs_call` turns what the network and the server raise into one
:class:`~semgraph.errors.PacsError` naming the server and what was asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import requests

from semgraph.config import Config
from semgraph.errors import ConfigurationError, NotFound, PacsError

T = TypeVar("T")


def pacs_url(config: Config, url: str | None = None) -> str:
    """The DICOMweb root: ``url`` or the ``dicomweb_url`` setting; :class:`ConfigurationError` when neither."""
    chosen = (url or config.dicomweb_url or "").rstrip("/")
    if not chosen:
        raise ConfigurationError("no PACS is configured: give its DICOMweb root (--dicomweb URL) or set "
                                 "SEMGRAPH_DICOMWEB_URL")
    if not chosen.startswith(("http://", "https://")):
        raise ConfigurationError(f"the PACS address must be an http(s) URL, not {chosen!r}")
    return chosen


class _TimeoutSession(requests.Session):
    """A requests session that applies one timeout to every request that sets none."""

    def __init__(self, timeout: float):
        super().__init__()
        self._timeout = timeout

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


def connect(config: Config, url: str | None = None):
    """A ``dicomweb_client.DICOMwebClient`` for the PACS at ``url`` (or the configured one)."""
    from dicomweb_client.api import DICOMwebClient

    session = _TimeoutSession(config.dicomweb_timeout)
    if config.dicomweb_user:
        session.auth = (config.dicomweb_user, config.dicomweb_password)
    return DICOMwebClient(pacs_url(config, url), session=session)


def pacs_call(client, what: str, call: Callable[[], T]) -> T:
    """``call()``, with a failure of the PACS raised as :class:`PacsError` (404 as :class:`NotFound`) that says
    ``what`` was asked of which server."""
    server = getattr(client, "base_url", "the PACS")
    try:
        return call()
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 404:
            raise NotFound(f"{what}: not found at {server}") from None
        if status in (401, 403):
            raise PacsError(f"{what}: {server} refused the credentials (HTTP {status}); check "
                            "SEMGRAPH_DICOMWEB_USER and SEMGRAPH_DICOMWEB_PASSWORD") from None
        raise PacsError(f"{what}: {server} answered HTTP {status}") from None
    except requests.Timeout:
        raise PacsError(f"{what}: {server} did not answer in time") from None
    except requests.ConnectionError:
        raise PacsError(f"{what}: cannot reach {server} (is the PACS running?)") from None
