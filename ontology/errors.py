"""Errors raised by the ontology package. Every one is an :class:`OntologyError`."""

from __future__ import annotations

from collections.abc import Sequence


class OntologyError(Exception):
    """Base class of every error raised by :mod:`ontology`."""


class UnknownTermError(OntologyError, KeyError):
    """A term is not in the loaded hierarchy; the message names it and suggests close labels."""

    def __init__(self, term: str, suggestions: Sequence[str] = ()):
        self.term = term
        self.suggestions = list(suggestions)
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown term {term!r}{hint}")

    def __str__(self) -> str:  # KeyError would quote the whole message otherwise
        return self.args[0]


class HierarchyCycleError(OntologyError):
    """The is-a hierarchy contains a cycle; the message lists the terms on it."""

    def __init__(self, cycle: Sequence[str]):
        self.cycle = list(cycle)
        super().__init__("the hierarchy has a cycle: " + " -> ".join([*self.cycle, self.cycle[0]]))


class OntologySourceError(OntologyError):
    """An ontology file is missing, of an unknown format or malformed (with the line when known)."""
