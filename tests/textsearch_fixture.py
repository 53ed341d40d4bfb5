"""A hand-checked store for text search: four cases, two terms, known HSBD distances and filters.

For the text "hypodense, water density" only the categories of the two mentioned terms count in HSBD, so the
distance of a case is ``|1 − hypodense| + |1 − water density|`` (its enhancement is in another category):
H1 0.0, C1 0.2, C2 0.6, M1 1.8. The captions of H1, C1 and C2 differ only in their dates, so among them the caption
channel is flat.
"""

from __future__ import annotations

import datetime as dt

import ontology
from semgraph.graph.casegraph import Annotation, Case, write_case

R = "http://radlex.org/RID/"
HYPO, WATER, ENH = R + "RID6042", R + "RID43336", R + "RID6055"
TEXT = "hypodense, water density"

CASES = {  # id: (patient, diagnosis, study date, reader likelihoods)
    "H1": ("P1", "hemangioma", dt.date(2020, 3, 1), {HYPO: 1.0, WATER: 1.0}),
    "C1": ("P2", "cyst", dt.date(2020, 6, 1), {HYPO: 0.9, WATER: 0.9}),
    "C2": ("P3", "cyst", dt.date(2021, 6, 1), {HYPO: 0.8, WATER: 0.6}),
    "M1": ("P4", "metastasis", dt.date(2021, 9, 1), {HYPO: 0.2, ENH: 0.9}),
}
#: HSBD distance of each case to the text's masked term vector (see the module docstring).
DISTANCE = {"H1": 0.0, "C1": 0.2, "C2": 0.6, "M1": 1.8}


def fill_small(store) -> None:
    ontology.load(store, "radlex-liver")
    for case_id, (patient, diagnosis, day, values) in CASES.items():
        write_case(store, Case(case_id, patient, f"S{case_id}", diagnosis=diagnosis, study_date=day),
                   [Annotation("reader", values)])
