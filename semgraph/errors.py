"""Errors raised by the semgraph domain package.

One hierarchy: :class:`SemgraphError` carries a message a user can act on, a short title and the HTTP status the
web app answers with.
"""

from __future__ import annotations

import math


class SemgraphError(Exception):
    """Base class of every error raised by :mod:`semgraph`."""

    status = 500
    title = "Error"

    def __init__(self, message: str, *, title: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title
        if status is not None:
            self.status = status


class InvalidInput(SemgraphError):
    """Input (an image, a region, a manifest, a query) is malformed; nothing was written."""

    status = 400
    title = "Invalid input"


class NotFound(SemgraphError):
    """A case, term, session or file does not exist."""

    status = 404
    title = "Not found"


class ConfigurationError(SemgraphError):
    """A setting is missing or has an invalid value."""

    status = 500
    title = "Configuration error"


class TooManyRequests(SemgraphError):
    """Too many attempts in a short time (429); ``headers`` carries ``Retry-After``: the whole seconds to wait."""

    status = 429
    title = "Too many attempts"

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}


class PacsError(SemgraphError):
    """The PACS (a DICOMweb server) cannot be reached, refused a request or answered with an error; nothing was
    written."""

    status = 502
    title = "PACS unavailable"
