"""The 18 RadLex terms of the liver-lesion paper (Table 1), shipped with the package.

Source: ``liver18_radlex_terms.tsv`` (RadLex 2017-01 CSV export, RadLex License; see ``ontology/data/README.md``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

RADLEX_BASE = "http://radlex.org/RID/"


@dataclass(frozen=True)
class PaperTerm:
    """One vocabulary term: its RadLex IRI, RadLex preferred name, the paper's label and its Table 1 category."""

    iri: str
    rid: str
    label: str
    paper_label: str
    category: str


@cache
def paper_terms() -> tuple[PaperTerm, ...]:
    """Return the 18 paper terms in the order of Table 1 (the order of the likelihood vectors)."""
    text = resources.files("ontology.data").joinpath("liver18_radlex_terms.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return tuple(
        PaperTerm(
            iri=RADLEX_BASE + row["rid"],
            rid=row["rid"],
            label=row["radlex_preferred_name_2017"],
            paper_label=row["paper_term"],
            category=row["paper_category"],
        )
        for row in rows
    )


@cache
def paper_exclusive_groups() -> dict[str, tuple[str, ...]]:
    """The exclusive groups of the paper's terms: group name → term IRIs (Table 1 order) of which a lesion has at
    most one (one margin definition, one contour, one attenuation, ...). Our reading of the terms' RadLex
    definitions, shipped as ``liver18_exclusive_groups.tsv``; a term is in at most one group."""
    text = resources.files("ontology.data").joinpath("liver18_exclusive_groups.tsv").read_text(encoding="utf-8")
    group_of = {RADLEX_BASE + row["rid"]: row["group"] for row in csv.DictReader(text.splitlines(), delimiter="\t")}
    groups: dict[str, list[str]] = {}
    for term in paper_terms():
        if term.iri in group_of:
            groups.setdefault(group_of.pop(term.iri), []).append(term.iri)
    if group_of:
        raise ValueError(f"liver18_exclusive_groups.tsv names terms outside Table 1: {sorted(group_of)}")
    return {name: tuple(members) for name, members in groups.items()}
