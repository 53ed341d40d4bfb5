"""The graph model as SHACL shapes (``semgraph/data/shapes.ttl``) and the thorough contract check of a store.

:func:`shapes_text` / :func:`shapes_graph` give the shapes as shipped; :func:`validate_graph` runs pyshacl (SHACL
Core and SHACL-SPARQL, no inference) over an rdflib graph and returns a :class:`ShaclReport` of its violations;
:func:`validate_store` does that over a store's data: every named graph merged, except the content of the ontology
graphs (only their self-description is kept: the shapes say nothing about RadLex's own classes, and leaving them
out keeps the check proportional to semgraph's data). It reads the whole of that data into memory and validates
it in one pass, so on a large store it takes minutes where ``semgraph check`` takes seconds: it is the contract
check for other tools' sake, ``check_store`` the fast one. Nothing here writes to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from rdflib import BNode, Graph, Literal, Node
from rdflib.namespace import PROV, RDF, RDFS, SH, SKOS, XSD

from kg import Store
from kg.namespaces import GRAPH, ID, SG

__all__ = ["MAX_LISTED", "SHAPES_NS", "ShaclReport", "Violation", "shapes_graph", "shapes_text", "store_data",
           "validate_graph", "validate_store"]

#: The namespace of the shapes themselves (``sgsh:CaseShape`` ...).
SHAPES_NS = "https://w3id.org/semgraph/shapes#"
#: At most this many violations are listed by :meth:`ShaclReport.format_text` (the count stays exact).
MAX_LISTED = 200

_DATA = """
CONSTRUCT { ?s ?p ?o } WHERE {
  GRAPH ?g { ?s ?p ?o }
  FILTER (!STRSTARTS(STR(?g), $ontologies) || ?s = ?g)
}"""


def shapes_text() -> str:
    """The shapes as shipped (Turtle)."""
    return resources.files("semgraph").joinpath("data/shapes.ttl").read_text(encoding="utf-8")


def shapes_graph() -> Graph:
    """The shapes as an rdflib graph."""
    return Graph().parse(data=shapes_text(), format="turtle")


@dataclass(frozen=True)
class Violation:
    """One SHACL result: the node that fails, the property path (``""`` for a node-level constraint), the value at
    fault (if any), the shape's message, the shape and the severity (``Violation`` | ``Warning`` | ``Info``)."""

    focus: str
    path: str
    message: str
    shape: str
    severity: str = "Violation"
    value: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ShaclReport:
    """What :func:`validate_graph` found: the violations, sorted by shape, focus node and path, and the size of
    the data validated."""

    violations: list[Violation] = field(default_factory=list)
    triples: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def by_shape(self) -> dict[str, int]:
        """How many violations each shape reported."""
        counts: dict[str, int] = {}
        for v in self.violations:
            counts[v.shape] = counts.get(v.shape, 0) + 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict:
        return {"ok": self.ok, "triples": self.triples, "violation_counts": self.by_shape(),
                "violations": [v.as_dict() for v in self.violations]}

    def format_text(self) -> str:
        lines = [f"validated {self.triples:,} triples against the SHACL shapes"]
        if self.ok:
            lines.append("the data conforms to the shapes")
            return "\n".join(lines)
        lines.append(f"{len(self.violations):,} violation(s): "
                     + ", ".join(f"{shape} {n:,}" for shape, n in self.by_shape().items()))
        for v in self.violations[:MAX_LISTED]:
            where = f" {v.path}" if v.path else ""
            value = f" (value {v.value})" if v.value else ""
            lines.append(f"  [{v.severity}] {v.focus}{where}: {v.message}{value}")
        if len(self.violations) > MAX_LISTED:
            lines.append(f"  ... and {len(self.violations) - MAX_LISTED:,} more (at most {MAX_LISTED} listed)")
        return "\n".join(lines)


#: The prefixes of the report, longest namespace first.
_PREFIXES = sorted({"sg": str(SG._NS), "sgsh": SHAPES_NS, "id": str(ID), "graph": str(GRAPH), "rdf": str(RDF),
                    "rdfs": str(RDFS), "prov": str(PROV), "skos": str(SKOS), "xsd": str(XSD),
                    "rid": "http://radlex.org/RID/"}.items(), key=lambda item: -len(item[1]))


def _iri(text: str) -> str:
    """An IRI as ``prefix:rest`` (the rest may hold slashes: this is for reading, not for parsing)."""
    for prefix, ns in _PREFIXES:
        if text.startswith(ns) and len(text) > len(ns):
            return f"{prefix}:{text[len(ns):]}"
    return f"<{text}>"


def _show(node: Node | None, results: Graph) -> str:
    """A node of a result as text: a prefixed IRI, an inverse path as ``^p``, a literal as its value and type."""
    if node is None:
        return ""
    if isinstance(node, BNode):
        inverse = results.value(node, SH.inversePath)
        return "^" + _show(inverse, results) if inverse is not None else "(a complex path)"
    if isinstance(node, Literal):
        return repr(str(node)) + (f"^^{_iri(str(node.datatype))}" if node.datatype else "")
    return _iri(str(node))


def validate_graph(data: Graph, shapes: Graph | None = None) -> ShaclReport:
    """Validate ``data`` against ``shapes`` (default: :func:`shapes_graph`) with pyshacl."""
    import pyshacl

    shapes = shapes if shapes is not None else shapes_graph()
    _, results, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none", advanced=False,
                                     allow_warnings=True)
    found = []
    for r in results.subjects(RDF.type, SH.ValidationResult):
        source = results.value(r, SH.sourceShape)
        if isinstance(source, BNode):  # a property shape: name the node shape that holds it
            source = shapes.value(predicate=SH.property, object=source) or source
        shape = _show(source, results) if not isinstance(source, BNode) else "(a property shape)"
        found.append(Violation(
            focus=_show(results.value(r, SH.focusNode), results),
            path=_show(results.value(r, SH.resultPath), results),
            message=str(results.value(r, SH.resultMessage) or ""),
            shape=shape,
            severity=str(results.value(r, SH.resultSeverity) or SH.Violation).rsplit("#", 1)[-1],
            value=_show(results.value(r, SH.value), results)))
    found.sort(key=lambda v: (v.shape, v.focus, v.path, v.message, v.value))
    return ShaclReport(found, len(data))


def store_data(store: Store) -> Graph:
    """The store's data that the shapes describe: every named graph merged, ontology graphs reduced to their
    self-description."""
    return store.construct(_DATA, {"ontologies": Literal(str(GRAPH["ontology/"]))})


def validate_store(store: Store) -> ShaclReport:
    """Validate the store's data (:func:`store_data`) against the shipped shapes."""
    return validate_graph(store_data(store))
