"""Seeded synthetic cohort of liver-lesion CT slices annotated with the paper's 19 RadLex terms."""

from semgraph.cohort.build import generate
from semgraph.cohort.manifest import CaseRecord, Manifest, read_manifest
from semgraph.cohort.profiles import (
    DIAGNOSES,
    PAPER_COUNTS,
    PROFILES,
    probability_table,
    split_counts,
)
from semgraph.cohort.sheet import contact_sheet
from semgraph.cohort.stream import (
    Case,
    CaseMetadata,
    LesionLabels,
    iter_cases,
    iter_labels,
)
from semgraph.cohort.writers import read_image, read_mask

__all__ = [
    "DIAGNOSES",
    "PAPER_COUNTS",
    "PROFILES",
    "Case",
    "CaseMetadata",
    "CaseRecord",
    "LesionLabels",
    "Manifest",
    "contact_sheet",
    "generate",
    "iter_cases",
    "iter_labels",
    "probability_table",
    "read_image",
    "read_manifest",
    "read_mask",
    "split_counts",
]
