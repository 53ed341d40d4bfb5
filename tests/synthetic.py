"""Shared by tests that need a store of cases: synthetic cases whose likelihoods are their noisy reader labels.

Importable as ``synthetic`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ontology.paper_terms import paper_terms
from semgraph.cohort import iter_labels
from semgraph.graph.casegraph import Annotation, Case, write_case

TERMS = [t.iri for t in paper_terms()]


def write_synthetic_cases(store, n: int, seed: int, details: Callable[[int], dict] | None = None) -> None:
    """Write ``n`` cases of the seeded synthetic cohort (study ``S{i}``), each with one predicted annotation.

    Likelihoods are ``clip(0.1 + 0.8·reader label + U(−0.08, 0.08), 0, 1)`` per term; ``details(i)`` gives more
    :class:`~semgraph.graph.casegraph.Case` fields (dates, age, sex ...) for the i-th case.
    """
    rng = np.random.default_rng(seed)
    for i, lab in enumerate(iter_labels(n, seed)):
        values = np.clip(0.1 + 0.8 * lab.reader_labels + rng.uniform(-0.08, 0.08, len(TERMS)), 0, 1)
        extra = details(i) if details is not None else {}
        write_case(store, Case(lab.case_id, lab.patient_id, f"S{i}", diagnosis=lab.diagnosis, **extra),
                   [Annotation("predicted", dict(zip(TERMS, map(float, values))))])

