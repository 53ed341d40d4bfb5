"""One store interface over an embedded Oxigraph store and a remote SPARQL 1.1 endpoint.

Both backends speak SPARQL; user values enter queries only as bound ``$parameters`` (see :mod:`kg.sparql`).
Every write (``update``, ``load``, ``drop``) is one transaction: it lands whole or not at all.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox
from rdflib import Dataset, Graph, URIRef
from rdflib.term import Node

from .errors import LoadError, QueryError, ReadOnlyStoreError, ResultTooLargeError
from .sparql import Binding, query_form

#: RDF formats by file extension (lower case, without a trailing ``.gz``).
FORMATS: dict[str, ox.RdfFormat] = {
    ".ttl": ox.RdfFormat.TURTLE,
    ".turtle": ox.RdfFormat.TURTLE,
    ".nt": ox.RdfFormat.N_TRIPLES,
    ".nq": ox.RdfFormat.N_QUADS,
    ".trig": ox.RdfFormat.TRIG,
    ".n3": ox.RdfFormat.N3,
    ".rdf": ox.RdfFormat.RDF_XML,
    ".owl": ox.RdfFormat.RDF_XML,
    ".xml": ox.RdfFormat.RDF_XML,
    ".jsonld": ox.RdfFormat.JSON_LD,
    ".json": ox.RdfFormat.JSON_LD,
}
#: Names accepted by ``format=`` arguments.
FORMAT_NAMES: dict[str, ox.RdfFormat] = {
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "nquads": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "n3": ox.RdfFormat.N3,
    "xml": ox.RdfFormat.RDF_XML,
    "json-ld": ox.RdfFormat.JSON_LD,
}

#: What ``Store.load`` accepts: a file path, RDF text as ``bytes`` (its ``format=`` given), an rdflib graph or
#: dataset, or pyoxigraph triples/quads.
Source = str | os.PathLike | bytes | Graph | Dataset | list
_RDFLIB_DEFAULT_GRAPH = "urn:x-rdflib:default"


@dataclass
class Result:
    """The answer to a SPARQL query: rows for SELECT, a boolean for ASK, a graph for CONSTRUCT/DESCRIBE."""

    form: str
    variables: list[str] = field(default_factory=list)
    rows: list[dict[str, Node]] = field(default_factory=list)
    boolean: bool | None = None
    graph: Graph | None = None
    #: True when the query was run with ``max_rows`` and the answer had more rows (triples) than were kept.
    truncated: bool = False


def check_max_rows(max_rows) -> int | None:
    """Validate a ``max_rows`` argument: ``None`` or a positive integer."""
    if max_rows is None:
        return None
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise QueryError(f"max_rows must be a positive integer or None, got {max_rows!r}")
    return max_rows


def rdf_format(name: str | None, path: str | os.PathLike | None = None) -> ox.RdfFormat:
    """Resolve a format from its name, else from the file extension; raise :class:`LoadError` if neither works."""
    if name is not None:
        try:
            return FORMAT_NAMES[name]
        except KeyError:
            raise LoadError(f"unknown RDF format {name!r}; use one of {sorted(FORMAT_NAMES)}") from None
    if path is not None:
        suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
        if suffixes and suffixes[-1] in FORMATS:
            return FORMATS[suffixes[-1]]
    raise LoadError(f"cannot tell the RDF format of {path!s}; pass format= one of {sorted(FORMAT_NAMES)}")


def parse_quads(source: Source, graph: str | None, format: str | None = None) -> list[ox.Quad]:
    """Parse a file or an rdflib graph into pyoxigraph quads, entirely, before anything is written.

    Triples go to ``graph`` (required for triple formats); quads keep their own graph. A syntax error raises
    :class:`LoadError` with the parser's line and column.
    """
    from .sparql import to_oxigraph

    target = ox.NamedNode(graph) if graph is not None else None
    if isinstance(source, list):
        return _place(source, target, "the triples")
    if isinstance(source, Dataset):
        items = []
        for s, p, o, name in source.quads((None, None, None, None)):
            name = getattr(name, "identifier", name)
            to = None if name is None or str(name) == _RDFLIB_DEFAULT_GRAPH else ox.NamedNode(str(name))
            terms = to_oxigraph(s), to_oxigraph(p), to_oxigraph(o)
            items.append(ox.Quad(*terms, to) if to is not None else ox.Triple(*terms))
        return _place(items, target, "the dataset")
    if isinstance(source, bytes):
        if format is None:
            raise LoadError(f"RDF data given as bytes needs format=, one of {sorted(FORMAT_NAMES)}")
        try:
            parsed = list(ox.parse(source, format=rdf_format(format)))
        except SyntaxError as exc:
            raise LoadError(f"the RDF data: {str(exc)[:300]}; nothing was written") from exc
        return _place(parsed, target, "the RDF data")
    if isinstance(source, Graph):
        return _place([ox.Triple(to_oxigraph(s), to_oxigraph(p), to_oxigraph(o)) for s, p, o in source],
                      target, "the graph")
    path = Path(source)
    if not path.is_file():
        raise LoadError(f"no such RDF file: {path}")
    fmt = rdf_format(format, path)
    try:
        if path.suffix.lower() == ".gz":
            import gzip

            with gzip.open(path, "rb") as stream:
                parsed = list(ox.parse(stream.read(), format=fmt))
        else:
            parsed = list(ox.parse(path=str(path), format=fmt))
    except SyntaxError as exc:
        where = _xml_error_position(path) if fmt == ox.RdfFormat.RDF_XML else ""
        raise LoadError(f"{path}: {str(exc)[:300]}{where}; nothing was written") from exc
    return _place(parsed, target, str(path))


def _xml_error_position(path: Path) -> str:
    """The line and column of an XML well-formedness error (pyoxigraph's RDF/XML errors carry no position)."""
    from xml.etree import ElementTree

    try:
        ElementTree.parse(path)
    except ElementTree.ParseError as exc:
        return f" (XML error at line {exc.position[0]}, column {exc.position[1]})"
    return ""


def _place(items: list, target: ox.NamedNode | None, what: str) -> list[ox.Quad]:
    """Quads from triples (put in ``target``) and quads (kept in their graph, or ``target`` if default)."""
    quads = []
    for item in items:
        if isinstance(item, ox.Triple) or isinstance(item.graph_name, ox.DefaultGraph):
            if target is None:
                raise LoadError(f"{what} has triples outside a named graph: pass graph=")
            quads.append(ox.Quad(item.subject, item.predicate, item.object, target))
        else:
            quads.append(item)
    return quads


class Store(ABC):
    """A knowledge-graph store: SPARQL 1.1 query and update, bulk load and dump of named graphs.

    All data lives in named graphs; queries see their union as the default graph (a remote endpoint must be
    configured the same way, e.g. ``oxigraph serve --union-default-graph``).

    Capability flags: ``writable`` is false for read-only stores, whose write methods raise
    :class:`~kg.errors.ReadOnlyStoreError`; ``shared`` is true when other processes may write to the store
    meanwhile (a remote endpoint), so copies of its data held in memory must be checked before use.
    """

    location: str
    writable: bool = True
    shared: bool = False

    # -- queries -----------------------------------------------------------------------------------------
    def query(self, query: str, bindings: Mapping[str, Binding] | None = None, *,
              max_rows: int | None = None) -> Result:
        """Run any SPARQL query with ``$parameters`` bound from ``bindings``.

        ``max_rows`` caps the answer without materialising it: the backend stops reading after ``max_rows``
        SELECT solutions (CONSTRUCT/DESCRIBE: distinct triples) and sets :attr:`Result.truncated` when there was
        more. The query text is not changed (no ``LIMIT`` is added): the embedded store stops iterating the
        solutions, the remote store stops reading the HTTP response and closes it. ASK ignores ``max_rows``.
        """
        return self._query(query_form(query), query, bindings, check_max_rows(max_rows))

    def select(self, query: str, bindings: Mapping[str, Binding] | None = None, *,
               max_rows: int | None = None) -> list[dict[str, Node]]:
        """Run a SELECT query; return one dict per solution (unbound variables are absent).

        With ``max_rows``, an answer of more than ``max_rows`` solutions raises
        :class:`~kg.errors.ResultTooLargeError` (a :class:`~kg.errors.QueryError`) after reading at most
        ``max_rows + 1`` of them: a list cannot say it was cut, so it is never silently cut.
        """
        result = self._expect(query, "select", bindings, check_max_rows(max_rows))
        if result.truncated:
            raise ResultTooLargeError(f"the query has more than {max_rows:,} solutions (the max_rows allowed); "
                                      "add LIMIT or aggregate", max_rows)
        return result.rows

    def select_values(self, query: str, bindings: Mapping[str, Binding] | None = None) -> list[tuple[str | None, ...]]:
        """Run a SELECT query for a bulk read; return one tuple per solution, in the order of its variables.

        Each item is the lexical value of the bound term (an IRI's text, a literal's lexical form without datatype
        or language, a blank node's id) or None when the variable is unbound. No rdflib terms are made, which
        makes large answers several times faster to read than :meth:`select`; the caller knows the types.
        """
        actual = query_form(query)
        if actual != "select":
            raise QueryError(f"expected a SELECT query, got {actual.upper()}")
        return self._values(query, bindings)

    def ask(self, query: str, bindings: Mapping[str, Binding] | None = None) -> bool:
        """Run an ASK query."""
        return bool(self._expect(query, "ask", bindings).boolean)

    def construct(self, query: str, bindings: Mapping[str, Binding] | None = None) -> Graph:
        """Run a CONSTRUCT or DESCRIBE query; return an rdflib graph."""
        form = query_form(query)
        if form not in ("construct", "describe"):
            raise QueryError(f"expected a CONSTRUCT or DESCRIBE query, got {form.upper()}")
        return self._query(form, query, bindings, None).graph

    def _expect(self, query: str, form: str, bindings, max_rows: int | None = None) -> Result:
        actual = query_form(query)
        if actual != form:
            raise QueryError(f"expected a {form.upper()} query, got {actual.upper()}")
        return self._query(form, query, bindings, max_rows)

    # -- writes ------------------------------------------------------------------------------------------
    def update(self, update: str, bindings: Mapping[str, Binding] | None = None) -> None:
        """Run a SPARQL 1.1 Update (one or more operations separated by ``;``) as one transaction."""
        self._check_writable()
        self._update(update, bindings)

    def load(self, source: Source, graph: str | None = None, *, format: str | None = None,
             replace: bool = False) -> int:
        """Load a file (path), RDF text (``bytes`` in ``format``) or an rdflib Graph/Dataset into the named graph
        ``graph``; return the quad count.

        The source is parsed completely first, so a malformed file writes nothing. With ``replace=True`` the
        graph's old content is removed in the same transaction.
        """
        self._check_writable()
        quads = parse_quads(source, graph, format)
        if replace and graph is None:
            raise LoadError("replace=True needs graph=")
        self._load(quads, graph if replace else None)
        return len(quads)

    def drop(self, graph: str) -> None:
        """Remove a named graph and all its triples (no error if it does not exist)."""
        self.update("DROP SILENT GRAPH $g", {"g": URIRef(graph)})

    def _check_writable(self) -> None:
        if not self.writable:
            raise ReadOnlyStoreError(self._read_only_reason())

    # -- inspection --------------------------------------------------------------------------------------
    def graphs(self) -> list[str]:
        """IRIs of the named graphs that hold at least one triple, sorted."""
        rows = self.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
        return sorted(str(row["g"]) for row in rows)

    def count(self, graph: str | None = None) -> int:
        """Number of triples in one named graph, or in all named graphs together."""
        if graph is None:
            rows = self.select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
        else:
            rows = self.select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH $g { ?s ?p ?o } }", {"g": URIRef(graph)})
        return int(rows[0]["n"])

    def dump(self, graph: str, format: str = "turtle") -> bytes:
        """Serialise one named graph (as triples) in ``format``."""
        rdf_format(format)
        g = self.construct("CONSTRUCT { ?s ?p ?o } WHERE { GRAPH $g { ?s ?p ?o } }", {"g": URIRef(graph)})
        rdflib_names = {"ntriples": "nt", "nquads": "nquads", "xml": "xml", "json-ld": "json-ld"}
        return g.serialize(format=rdflib_names.get(format, format), encoding="utf-8")

    def dump_quads(self, out: str | os.PathLike) -> dict[str, int]:
        """Write every quad of every named graph to the file ``out`` as N-Quads, from one consistent read of the
        store (one SELECT, whose answer is held in memory; the embedded store streams its own dump instead);
        return the number of quads per graph IRI."""
        from .sparql import to_oxigraph

        rows = self.select("SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }")
        counts: dict[str, int] = {}
        with open(out, "w", encoding="utf-8", newline="\n") as f:
            for r in rows:
                f.write(f"{ox.Quad(*(to_oxigraph(r[v]) for v in ('s', 'p', 'o', 'g')))} .\n")
                counts[str(r["g"])] = counts.get(str(r["g"]), 0) + 1
        return dict(sorted(counts.items()))

    def close(self) -> None:
        """Release the store (the embedded folder lock, HTTP sessions)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- backend hooks -----------------------------------------------------------------------------------
    @abstractmethod
    def _query(self, form: str, query: str, bindings, max_rows: int | None) -> Result:
        """Run the query; with ``max_rows``, keep at most that many rows/triples and set ``truncated``."""

    @abstractmethod
    def _values(self, query: str, bindings) -> list[tuple[str | None, ...]]: ...

    @abstractmethod
    def _update(self, update: str, bindings) -> None: ...

    @abstractmethod
    def _load(self, quads: list[ox.Quad], replace_graph: str | None) -> None: ...

    @abstractmethod
    def _read_only_reason(self) -> str: ...


def open_store(location: str | os.PathLike, *, update_url: str | None = None, read_only: bool = False,
               timeout: float = 60.0) -> Store:
    """Open a store: a folder path gives an embedded Oxigraph store, an ``http(s)://`` URL a remote endpoint.

    Parameters
    ----------
    location : str or path
        Folder of the embedded store (created if missing), or the SPARQL query endpoint URL.
    update_url : str, optional
        SPARQL Update endpoint of a remote store; defaults to ``location`` itself unless ``read_only``. Ignored
        for an embedded store.
    read_only : bool
        Open without write access. Any number of read-only opens of one folder, in any processes, share it; a
        folder held by a writer (``semgraph serve``, an ingest) cannot be opened read-only meanwhile
        (:class:`~kg.errors.StoreLockedError` names the holder): query the writer's SPARQL endpoint instead.
    timeout : float
        Seconds to wait for a remote endpoint.
    """
    text = str(location)
    if text.startswith(("http://", "https://")):
        from .remote import RemoteStore

        return RemoteStore(text, update_url=None if read_only else (update_url or text), timeout=timeout)
    from .embedded import EmbeddedStore

    return EmbeddedStore(Path(text), read_only=read_only)
