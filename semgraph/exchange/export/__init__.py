"""Learned term relations for researchers: the table, exports with provenance, and an ontology-update proposal.

The package's API (what the CLI and the researchers' page use), by module:

- :mod:`semgraph.exchange.export.relations`: :func:`learned_relations`, one :class:`Relation` per term pair (baseline
  and latest learned dissimilarity, change, supporting rounds, sessions, users, first and last date; filterable and
  sortable), and :func:`learned_edges`, the learned edges behind them.
- :mod:`semgraph.exchange.export.ontology_update`: :func:`proposals` / :func:`proposal_graph`, the ontology-update
  proposal and its rule (:data:`RULE`).
- :mod:`semgraph.exchange.export.markdown`: :func:`report`, the Markdown change report (:func:`markdown_text`).
- :mod:`semgraph.exchange.export.edges`: the learned edges with their PROV-O provenance as Turtle, JSON-LD or CSV.
- :mod:`semgraph.exchange.export.sssom`: the proposed links as an SSSOM mapping set (TSV or JSON, written by
  sssom-py).
- :mod:`semgraph.exchange.export.paths`: :func:`safe_export_path`, where an export file may be written.
- here: :func:`export`, any of these as text in a format of the registry below, the one place that lists the
  formats (:func:`register_format`, :func:`available_formats`, :func:`get_format`).

Errors: bad filters or an unknown format raise :class:`semgraph.errors.InvalidInput`; nothing here writes to the
store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kg import Store
from semgraph.errors import InvalidInput
from semgraph.exchange.export.edges import (
    CSV_COLUMNS,
    edges_csv,
    edges_graph,
    edges_json_ld,
    turtle,
)
from semgraph.exchange.export.markdown import MARKDOWN_SPECIAL, markdown_text, report
from semgraph.exchange.export.ontology_update import (
    RULE,
    Proposal,
    proposal_graph,
    proposals,
)
from semgraph.exchange.export.paths import safe_export_path
from semgraph.exchange.export.relations import (
    SORT_KEYS,
    Edge,
    Relation,
    default_collection,
    kept_edges,
    labeller,
    learned_edges,
    learned_relations,
)
from semgraph.exchange.export.sssom import sssom_json, sssom_tsv
from semgraph.graph.collection import Collection

__all__ = ["CSV_COLUMNS", "MARKDOWN_SPECIAL", "RULE", "SORT_KEYS", "Edge", "ExportFormat", "Proposal", "Relation",
           "available_formats", "export", "get_format", "learned_edges", "learned_relations", "markdown_text",
           "proposal_graph", "proposals", "register_format", "report", "safe_export_path"]


@dataclass(frozen=True)
class ExportFormat:
    """A format of :func:`export`.

    ``write(store, filters)`` returns the export as text; ``filters`` holds the keyword arguments of
    :func:`learned_relations` (term, min_change, min_sessions, user, since, until) and the resolved collection.
    Files get ``extension``; the researchers' page offers it as ``/research/<stem><extension>`` (:attr:`download`,
    unique among the formats) served as ``media_type``. ``label`` says in a few words what it holds.
    """

    name: str
    extension: str
    media_type: str
    label: str
    write: Callable[[Store, dict], str]
    stem: str = "export"

    @property
    def download(self) -> str:
        """File name of its download on the researchers' page, e.g. ``export.ttl``."""
        return self.stem + self.extension


_FORMATS: dict[str, ExportFormat] = {}


def register_format(fmt: ExportFormat, *, replace: bool = False) -> None:
    """Add ``fmt`` to the formats of :func:`export` (after the registered ones). ValueError for an empty name, an
    extension without a leading dot, or a name or download file name that is taken (unless ``replace``)."""
    if not fmt.name or not fmt.extension.startswith(".") or "/" in fmt.download:
        raise ValueError(f"invalid export format {fmt!r}: needs a name, an extension like '.ttl' and a plain stem.")
    taken = {f.download: f.name for f in _FORMATS.values() if f.name != fmt.name}
    if (fmt.name in _FORMATS and not replace) or fmt.download in taken:
        raise ValueError(f"export format {fmt.name!r} or its download {fmt.download!r} is already registered.")
    _FORMATS[fmt.name] = fmt


def available_formats() -> tuple[str, ...]:
    """Names of the registered export formats, in registration order."""
    return tuple(_FORMATS)


def get_format(name: str) -> ExportFormat:
    """The export format registered under ``name``; InvalidInput if there is none."""
    if name not in _FORMATS:
        raise InvalidInput(f"unknown export format {name!r}; use one of {', '.join(_FORMATS)}")
    return _FORMATS[name]


def export(store: Store, fmt: str = "turtle", *, term: str | None = None, min_change: float | None = None,
           min_sessions: int = 1, user: str | None = None, since=None, until=None,
           collection: Collection | None = None) -> str:
    """The learned edges (of the pairs :func:`learned_relations` keeps with these filters) of ``collection``
    (default: the store's only one) as text in the registered format ``fmt`` (:func:`available_formats`).

    Built in: ``'turtle'``, ``'json-ld'``, ``'csv'`` (one row per learned edge, columns :data:`CSV_COLUMNS`; a
    text cell starting like a formula gets a leading ``'``, see :func:`semgraph.files.spreadsheet_cell`),
    ``'proposal'`` (Turtle, see :func:`proposal_graph`) or ``'report'`` (Markdown, :func:`report`; every text that
    comes from the store or the filters is escaped, see :func:`markdown_text`), ``'sssom'`` / ``'sssom-json'`` (the
    proposed links as an SSSOM mapping set, :mod:`semgraph.exchange.export.sssom`). InvalidInput for an unknown
    format.
    """
    writer = get_format(fmt).write
    filters = {"term": term, "min_change": min_change, "min_sessions": min_sessions, "user": user,
               "since": since, "until": until, "collection": default_collection(store, collection)}
    return writer(store, filters)


def _edges(store: Store, filters: dict) -> tuple[list[Edge], Callable[[str], str]]:
    """The learned edges kept by ``filters`` and the term labeller of their collection."""
    relations = learned_relations(store, **filters)
    edges = kept_edges(store, relations, filters["user"], filters["since"], filters["until"], filters["collection"])
    return edges, labeller(store, filters["collection"])


register_format(ExportFormat("turtle", ".ttl", "text/turtle; charset=utf-8",
                             "the learned edges with PROV-O provenance (Turtle)",
                             lambda store, filters: turtle(edges_graph(store, *_edges(store, filters)))))
register_format(ExportFormat("json-ld", ".jsonld", "application/ld+json; charset=utf-8",
                             "the learned edges with PROV-O provenance (JSON-LD)",
                             lambda store, filters: edges_json_ld(store, *_edges(store, filters))))
register_format(ExportFormat("csv", ".csv", "text/csv; charset=utf-8",
                             "the learned edges with their provenance, one row each (CSV)",
                             lambda store, filters: edges_csv(*_edges(store, filters))))
register_format(ExportFormat("proposal", ".ttl", "text/turtle; charset=utf-8",
                             "an RDF ontology-update proposal (Turtle)",
                             lambda store, filters: turtle(proposal_graph(store, **filters)), stem="proposal"))
register_format(ExportFormat("report", ".md", "text/markdown; charset=utf-8", "a Markdown change report",
                             lambda store, filters: report(store, **filters), stem="report"))
register_format(ExportFormat("sssom", ".sssom.tsv", "text/tab-separated-values; charset=utf-8",
                             "the proposed term links as an SSSOM mapping set (TSV)", sssom_tsv, stem="mappings"))
register_format(ExportFormat("sssom-json", ".sssom.json", "application/json; charset=utf-8",
                             "the proposed term links as an SSSOM mapping set (JSON)", sssom_json, stem="mappings"))
