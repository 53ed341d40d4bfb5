"""Errors raised by the knowledge-graph store.

Every error of this package is a :class:`StoreError`; its message says what went wrong and what to do.
"""


class StoreError(Exception):
    """Base class of every error raised by :mod:`kg`."""


class StoreLockedError(StoreError):
    """The embedded store folder is held by another open that excludes this one: a writer (which excludes every
    other open), or read-only openers (which exclude writers). The message says which, and what to do."""


class ReadOnlyStoreError(StoreError):
    """A write was attempted on a store opened read-only (or a remote store without an update URL)."""


class RemoteEndpointError(StoreError):
    """The remote SPARQL endpoint could not be reached or answered with an HTTP error."""


class QueryError(StoreError):
    """A SPARQL query or update is malformed, or a parameter binding is invalid."""


class ResultTooLargeError(QueryError):
    """A SELECT answered more rows than the ``max_rows`` the caller allowed (see :meth:`kg.Store.select`)."""

    def __init__(self, message: str, max_rows: int):
        super().__init__(message)
        self.max_rows = max_rows


class LoadError(StoreError):
    """An RDF file or graph could not be parsed; nothing was written."""
