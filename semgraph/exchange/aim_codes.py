"""AIM codes → terms of the loaded ontology (used by :mod:`semgraph.exchange.aim`).

An AIM coded entity names its term by code system and code (``typeCode/@codeSystemName`` and ``@code`` in AIM 4,
``@codingSchemeDesignator`` and ``@codeValue`` in AIM 3). :class:`CodeResolver` finds the term of the loaded ontology;
the first rule that gives one wins:

1. its own IRI, when that is a term of the ontology: RadLex ``RIDnnnn`` (any case) is ``http://radlex.org/RID/RIDnnnn``
   (or the older ``http://www.radlex.org/RID/RIDnnnn`` and ``http://www.radlex.org/RID/#RIDnnnn``), NCIt (``NCI``,
   ``NCIt``) ``http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#CODE`` or
   ``http://purl.obolibrary.org/obo/NCIT_CODE``, SNOMED CT (``SCT``) ``http://snomed.info/id/CODE``
   (:data:`CODE_SYSTEM_IRIS`; other systems have no own IRI);
2. the single term the graph of a loaded ontology maps it to: ``skos:exactMatch`` (either direction) between the term
   and an IRI of rule 1, or a ``skos:notation``, ``oboInOwl:hasDbXref`` or ``skos:exactMatch`` literal equal to
   ``SYSTEM:CODE`` (case-insensitive), and for RadLex, whose ids carry their own prefix, to the bare code too. So
   RadLex's old ``REX...`` ids, ePAD's private systems (``99EPAD``, ``ISIS_LIVER``) or any other resolve when the
   ontology records the mapping. The look-up is a SPARQL query with bound parameters.

A code that gives no term (or several) gets the reason why; the caller skips it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rdflib import URIRef

from kg import Store
from kg.namespaces import SG
from ontology import Hierarchy
from ontology.paper_terms import RADLEX_BASE

__all__ = ["CODE_SYSTEM_IRIS", "CodeResolver", "Resolve"]

_NCIT = ("http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#", "http://purl.obolibrary.org/obo/NCIT_")
#: A code's own IRIs: IRI prefixes by code-system name (lower case); the code follows the prefix.
CODE_SYSTEM_IRIS: dict[str, tuple[str, ...]] = {
    "radlex": (RADLEX_BASE, "http://www.radlex.org/RID/", "http://www.radlex.org/RID/#"),
    "nci": _NCIT,
    "ncit": _NCIT,
    "sct": ("http://snomed.info/id/",),
}
_RID = re.compile(r"^RID\d+$", re.IGNORECASE)
_REX = re.compile(r"^REX", re.IGNORECASE)
_IRI_SAFE = re.compile(r"^[\w.\-]+$")  # a code that can end an IRI as it is
_OBO_IN_OWL = "http://www.geneontology.org/formats/oboInOwl#"
_MAPPINGS = "skos:exactMatch, skos:notation or oboInOwl:hasDbXref"

#: (code system, code) → (term IRI, "") or (None, why there is none): the contract of :class:`CodeResolver`.
Resolve = Callable[[str | None, str | None], tuple[str | None, str]]


def _mapping_query(iris: int) -> str:
    """Terms that a loaded ontology's graph maps to the literal ``$key`` or ``$bare``, or to one of the IRIs
    ``$i0`` ... (``iris`` of them) by ``skos:exactMatch`` in either direction."""
    by_iri = ""
    if iris:
        values = " ".join(f"$i{n}" for n in range(iris))
        by_iri = f"UNION {{ VALUES ?x {{ {values} }} {{ ?t skos:exactMatch ?x }} UNION {{ ?x skos:exactMatch ?t }} }}"
    return (f"PREFIX oboInOwl: <{_OBO_IN_OWL}>\n"
            "SELECT DISTINCT ?t WHERE { GRAPH ?g { ?g a $cls .\n"
            "  { ?t skos:notation|oboInOwl:hasDbXref|skos:exactMatch ?n\n"
            "    FILTER(isLiteral(?n) && LCASE(STR(?n)) IN ($key, $bare)) }\n"
            f"  {by_iri}\n"
            "  FILTER(isIRI(?t)) } }")


class CodeResolver:
    """The term of the loaded ontology that an AIM code names (module notes, rules 1 and 2); answers are cached.

    ``resolver(system, code)`` returns (term IRI, "") or (None, the reason there is none). Mappings are read from the
    graphs of every loaded ontology; only a term of ``hierarchy`` counts.
    """

    def __init__(self, hierarchy: Hierarchy, store: Store):
        self.hierarchy = hierarchy
        self.store = store
        self._answers: dict[tuple[str, str], tuple[str | None, str]] = {}

    def __call__(self, system: str | None, code: str | None) -> tuple[str | None, str]:
        if not code:
            return None, "no code"
        if not system:
            return None, "no code system"
        key = (system.casefold(), code)
        if key not in self._answers:
            self._answers[key] = self._resolve(system, code)
        return self._answers[key]

    def _resolve(self, system: str, code: str) -> tuple[str | None, str]:
        radlex = system.casefold() == "radlex"
        rid = radlex and _RID.match(code) is not None
        if rid:
            code = "RID" + code[3:]
        own = (rid or not radlex) and _IRI_SAFE.match(code) is not None
        iris = [prefix + code for prefix in CODE_SYSTEM_IRIS.get(system.casefold(), ())] if own else []
        for iri in iris:
            if iri in self.hierarchy:
                return iri, ""
        key = f"{system}:{code}".casefold()
        bindings = {"cls": SG.OntologyGraph, "key": key, "bare": code.casefold() if radlex else key,
                    **{f"i{n}": URIRef(iri) for n, iri in enumerate(iris)}}
        rows = self.store.select(_mapping_query(len(iris)), bindings)
        found = sorted(t for t in {str(r["t"]) for r in rows} if t in self.hierarchy)
        if len(found) == 1:
            return found[0], ""
        if found:
            return None, f"the loaded ontology maps it to several terms ({', '.join(found)})"
        if radlex and _REX.match(code):
            return None, f"an old RadLex id (REX) that the loaded ontology maps to no term ({_MAPPINGS})"
        if radlex and not rid:
            return None, "not a RadLex id (RID followed by digits), nor mapped to a term of the loaded ontology"
        return None, f"not a term of the loaded ontology, nor mapped to one ({_MAPPINGS})"
