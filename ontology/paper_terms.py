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
