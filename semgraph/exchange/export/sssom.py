"""The ontology-update proposal's links as an SSSOM mapping set (TSV with its YAML header, or SSSOM JSON).

One mapping per proposed link of :func:`semgraph.exchange.export.ontology_update.proposals` (re-parentings are
not mappings and are left out): ``subject_id`` / ``object_id`` the two terms (``term_a`` / ``term_b``, as CURIEs),
``predicate_id`` ``skos:closeMatch`` for a proposed ``closeMatch`` and ``skos:relatedMatch`` for a proposed
``related`` link, ``confidence`` the proposal's confidence, ``similarity_score`` ``1 − learned dissimilarity``,
``mapping_justification`` :data:`JUSTIFICATION`, ``author_id`` the users of the agreeing sessions,
``mapping_date`` the day the last of their rounds ended, ``see_also`` the IRIs of the supporting feedback rounds.
The set carries a stable ``mapping_set_id`` (the collection and the filters), :data:`LICENSE`, the tool and its
version, and ``creator_id`` = every author.

The files are built and written by sssom-py (``MappingSetDataFrame``, ``write_table``, ``write_json``), imported
only when an SSSOM export is asked for (it takes a second or two to import). Nothing here writes to the store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from kg import Store
from kg.namespaces import ID
from semgraph.exchange.export.ontology_update import RULE, Proposal, proposals
from semgraph.exchange.export.relations import (
    default_collection,
    filter_text,
    kept_edges,
    learned_relations,
)

if TYPE_CHECKING:
    from sssom.util import MappingSetDataFrame

__all__ = ["JUSTIFICATION", "LICENSE", "PREDICATES", "mapping_set", "sssom_json", "sssom_tsv"]

#: The semapv matching process of every mapping: the proposal rule keeps a pair when its similarity learned from
#: relevance feedback passes fixed thresholds (see docs/sssom.md for why not an instance-based or manual process).
JUSTIFICATION = "semapv:SemanticSimilarityThresholdMatching"
#: The licence stated for the exported mapping set.
LICENSE = "https://creativecommons.org/licenses/by/4.0/"
#: The SKOS mapping property of each proposal kind that is a link.
PREDICATES = {"closeMatch": "skos:closeMatch", "related": "skos:relatedMatch"}

_RADLEX = ("RADLEX", "http://radlex.org/RID/")
_USER = ("sguser", str(ID) + "user/")
_SIMILARITY = ("1 - learned term dissimilarity: the mean last value of the agreeing feedback sessions "
               "(semgraph relevance feedback)")


class _Prefixes:
    """CURIEs of IRIs: RadLex and semgraph users by name, any other namespace as ``ns1``, ``ns2`` ..."""

    def __init__(self) -> None:
        self.map = dict((_RADLEX, _USER))

    def curie(self, iri: str) -> str:
        for prefix, base in self.map.items():
            if iri.startswith(base) and len(iri) > len(base):
                return f"{prefix}:{iri[len(base):]}"
        split = max(iri.rfind("/"), iri.rfind("#")) + 1
        if split <= 0 or split == len(iri):
            raise ValueError(f"cannot write {iri!r} as a CURIE")
        prefix = f"ns{len(self.map) - 1}"
        self.map[prefix] = iri[:split]
        return f"{prefix}:{iri[split:]}"


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("semgraph")
    except PackageNotFoundError:
        return "unknown"


def _set_id(collection_name: str, filters: dict) -> str:
    """The same IRI for the same collection and filters, whenever and wherever exported."""
    shown = {k: filter_text(v) for k, v in sorted(filters.items()) if v is not None and k != "collection"}
    digest = hashlib.sha1(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return str(ID[f"mapping-set/{re.sub(r'[^A-Za-z0-9._-]', '_', collection_name)}/{digest}"])


def _support(store: Store, found: Iterable[Proposal], filters: dict) -> dict[tuple[str, str], tuple[set[str], str]]:
    """For each proposal's term pair: the user IRIs of its supporting rounds and the day the last of them ended."""
    relation_filters = {k: filters[k] for k in ("term", "min_change", "user", "since", "until", "collection")}
    relations = learned_relations(store, **relation_filters)
    edges = kept_edges(store, relations, filters["user"], filters["since"], filters["until"], filters["collection"])
    out: dict[tuple[str, str], tuple[set[str], str]] = {}
    for p in found:
        rounds = set(p.rounds)
        support = [e for e in edges if (e.term_a, e.term_b) == (p.term_a, p.term_b) and e.round in rounds]
        out[(p.term_a, p.term_b)] = ({e.user_iri for e in support},
                                     max(e.round_ended for e in support).date().isoformat())
    return out


def mapping_set(store: Store, filters: dict) -> MappingSetDataFrame:
    """The proposed links (``filters`` as for :func:`semgraph.exchange.export.export`) as an sssom-py
    ``MappingSetDataFrame``."""
    from sssom.util import MappingSetDataFrame
    from sssom_schema import Mapping

    filters = dict(filters, collection=default_collection(store, filters.get("collection")))
    links = [p for p in proposals(store, **filters) if p.kind in PREDICATES]
    support = _support(store, links, filters)
    prefixes = _Prefixes()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    mappings = []
    for p in links:
        users, last_day = support[(p.term_a, p.term_b)]
        mappings.append(Mapping(
            subject_id=prefixes.curie(p.term_a), subject_label=p.label_a,
            predicate_id=PREDICATES[p.kind],
            object_id=prefixes.curie(p.term_b), object_label=p.label_b,
            mapping_justification=JUSTIFICATION, confidence=p.confidence,
            similarity_score=round(1.0 - p.learned, 6), similarity_measure=_SIMILARITY,
            author_id=[prefixes.curie(u) for u in sorted(users)], mapping_date=last_day,
            see_also=list(p.rounds), comment=p.rationale))
    creators = sorted({u for users, _ in support.values() for u in users})
    collection = filters["collection"]
    metadata = {
        "mapping_set_id": _set_id(collection.name, filters),
        "mapping_set_version": today,
        "mapping_set_title": f"semgraph learned term relations of {collection.name}",
        "mapping_set_description": (
            "Term links proposed from relevance feedback (rule: " + json.dumps(RULE, sort_keys=True) + ")"),
        "license": LICENSE,
        "mapping_tool": "semgraph",
        "mapping_tool_version": _tool_version(),
        "publication_date": today,
        "creator_id": [prefixes.curie(u) for u in creators],
    }
    if not creators:
        del metadata["creator_id"]
    return MappingSetDataFrame.from_mappings(mappings, converter=dict(prefixes.map), metadata=metadata)


def sssom_tsv(store: Store, filters: dict) -> str:
    """:func:`mapping_set` as SSSOM/TSV with the metadata as its commented YAML header."""
    from sssom.writers import write_table

    out = io.StringIO()
    write_table(mapping_set(store, filters), out)
    return out.getvalue()


def sssom_json(store: Store, filters: dict) -> str:
    """:func:`mapping_set` as SSSOM JSON (JSON-LD with the SSSOM context)."""
    from sssom.writers import write_json

    out = io.StringIO()
    write_json(mapping_set(store, filters), out)
    return out.getvalue()
