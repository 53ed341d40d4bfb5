"""Streaming generation of synthetic cases: :func:`iter_cases` yields one :class:`Case` at a time.

Case ids: ``case-000000``, ``case-000001`` … for seed 0 and ``case-s<seed>-000000`` … for any other seed
(:func:`case_id`), so cohorts of different seeds can be ingested into one store without their ids colliding.

Determinism: every random draw comes from a generator seeded by ``(seed, purpose, index)`` with
:class:`numpy.random.SeedSequence`, so the same arguments always give the same cases, and a case does not depend on
how many cases come after it. Only a compact per-patient plan (a few integers per patient) is built up front.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from pydicom.uid import generate_uid

from ontology.paper_terms import paper_terms
from semgraph.cohort.profiles import (
    DIAGNOSES,
    LesionTerms,
    choose_profile,
    reader_labels,
    sample_diameter,
    sample_terms,
    split_counts,
)
from semgraph.cohort.render import render_case
from semgraph.errors import InvalidInput

MAX_CASES = 1_000_000
PHASES = ("portal venous", "late arterial", "delayed")
PHASE_P = (0.90, 0.06, 0.04)

# (mean age, sd, min, max, P(female)) per diagnosis
_DEMOGRAPHY = {
    "cyst": (58, 13, 25, 88, 0.60),
    "metastasis": (63, 11, 30, 90, 0.50),
    "hemangioma": (48, 11, 22, 80, 0.70),
    "hepatocellular carcinoma": (64, 9, 35, 85, 0.20),
    "focal nodular hyperplasia": (36, 9, 18, 65, 0.85),
    "abscess": (60, 14, 20, 88, 0.40),
}
# P(patient contributes 1, 2, 3 cases) and P(several cases are follow-ups rather than several lesions)
_GROUP_SIZES = {
    "cyst": ((0.70, 0.20, 0.10), 0.3),
    "metastasis": ((0.60, 0.25, 0.15), 0.4),
    "hemangioma": ((0.80, 0.15, 0.05), 0.5),
    "hepatocellular carcinoma": ((0.80, 0.15, 0.05), 0.7),
    "focal nodular hyperplasia": ((0.85, 0.15, 0.00), 0.6),
    "abscess": ((0.85, 0.15, 0.00), 1.0),
}
_UID_ROOT = "semgraph-synthetic-cohort"
_FIRST_DATE = dt.date(2009, 1, 1)

_PLAN, _CASE, _PATIENT, _LESION = 1, 2, 3, 4  # purposes mixed into the seed


@dataclass
class CaseMetadata:
    """Patient and study information of one case."""

    patient_id: str
    age: int
    sex: str  # "F" or "M"
    study_date: str  # ISO date
    study_uid: str
    series_uid: str
    sop_uid: str
    study_number: int  # 1 = first study of the patient, 2.. = follow-ups
    lesion_number: int  # 1.. within the study
    phase: str
    liver_segment: str
    diameter_mm: float
    centre_row: int
    centre_col: int
    pixel_spacing_mm: float
    appearance_profile: str  # the profile the terms were drawn from (the diagnosis, or a mimic)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Case:
    """One synthetic lesion: pixels in HU, the lesion mask, its terms, diagnosis and metadata."""

    case_id: str
    index: int
    diagnosis: str
    hu: np.ndarray  # int16 (H, W)
    mask: np.ndarray  # bool (H, W)
    terms: LesionTerms  # ground truth, as categorical states
    true_labels: np.ndarray  # uint8 (19,), paper_terms() order
    reader_labels: np.ndarray  # uint8 (19,), ground truth with reader noise
    metadata: CaseMetadata
    enhancement_style: str | None = field(default=None, repr=False)

    @property
    def term_iris(self) -> tuple[str, ...]:
        return tuple(t.iri for t in paper_terms())

    def labels(self, which: str = "reader") -> dict[str, int]:
        """``{term IRI: 0/1}`` of the reader (noisy) or the ``"true"`` (noiseless) labels."""
        vec = {"reader": self.reader_labels, "true": self.true_labels}[which]
        return {iri: int(v) for iri, v in zip(self.term_iris, vec)}


def case_id(seed: int, index: int, width: int = 6) -> str:
    """Id of the ``index``-th case of the cohort of ``seed``: the seed is part of it except for seed 0 (whose ids
    were the only ones before), so two cohorts of different seeds never share an id."""
    prefix = "case-" if seed == 0 else f"case-s{seed}-"
    return f"{prefix}{index:0{width}d}"


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def _check(n, seed, size, spacing, reader_noise) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_CASES:
        raise InvalidInput(f"n must be an integer between 1 and {MAX_CASES}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInput(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 128 <= size <= 1024:
        raise InvalidInput(f"size must be an integer between 128 and 1024 pixels, got {size!r}")
    if not isinstance(spacing, (int, float)) or not 0.3 <= spacing <= 1.5:
        raise InvalidInput(f"spacing must be between 0.3 and 1.5 mm, got {spacing!r}")
    if not isinstance(reader_noise, (int, float)) or not 0.0 <= reader_noise <= 0.5:
        raise InvalidInput(f"reader_noise must be a probability between 0 and 0.5, got {reader_noise!r}")


def _plan(n: int, seed: int):
    """Patients as (diagnosis index, number of cases, follow-up?) in a shuffled order; O(#patients) integers."""
    rng = _rng(seed, _PLAN)
    groups = []
    for d_idx, (d, count) in enumerate(split_counts(n).items()):
        sizes_p, p_follow = _GROUP_SIZES[d]
        left = count
        while left > 0:
            k = min(left, 1 + int(rng.choice(3, p=sizes_p)))
            groups.append((d_idx, k, bool(k > 1 and rng.random() < p_follow)))
            left -= k
    order = rng.permutation(len(groups))
    return [groups[i] for i in order]


def iter_cases(
    n: int = 72,
    seed: int = 0,
    *,
    size: int = 256,
    spacing: float = 0.7,
    reader_noise: float = 0.05,
) -> Iterator[Case]:
    """Yield ``n`` synthetic cases one at a time, without writing anything.

    Parameters
    ----------
    n : int
        Number of lesions (1 … 1,000,000). Diagnoses follow the paper's proportions; ``n=72`` gives exactly
        cyst 21, metastasis 24, hemangioma 13, HCC 6, FNH 5, abscess 3.
    seed : int
        Non-negative seed; the same arguments give identical cases.
    size : int
        Matrix size (square), 128 … 1024.
    spacing : float
        Pixel spacing in mm (0.3 … 1.5); anatomy is laid out in mm, so this sets the field of view.
    reader_noise : float
        Probability that each reader label is flipped relative to the ground truth (0 … 0.5).

    Raises
    ------
    InvalidInput
        If an argument is out of range (checked before the first case is produced).
    """
    _check(n, seed, size, spacing, reader_noise)
    return _iter(int(n), int(seed), int(size), float(spacing), float(reader_noise))


class LesionLabels(NamedTuple):
    """The non-pixel part of a case, as yielded by :func:`iter_labels`."""

    case_id: str
    index: int
    diagnosis: str
    patient_id: str
    terms: LesionTerms
    true_labels: np.ndarray
    reader_labels: np.ndarray


def iter_labels(n: int = 72, seed: int = 0, *, reader_noise: float = 0.05) -> Iterator[LesionLabels]:
    """Yield the diagnoses and term labels of the cases :func:`iter_cases` would yield, without rendering pixels.

    Much faster than :func:`iter_cases` (no images); the labels are identical to the ones of
    ``iter_cases(n, seed, reader_noise=reader_noise)`` for any size and spacing.
    """
    _check(n, seed, 256, 0.7, reader_noise)
    return _iter(int(n), int(seed), 256, 0.7, float(reader_noise), render=False)


def _iter(n, seed, size, spacing, reader_noise, render=True) -> Iterator:
    terms_all = paper_terms()
    width = max(6, len(str(n - 1)))
    index = 0
    for p_no, (d_idx, k, follow_up) in enumerate(_plan(n, seed), start=1):
        diagnosis = DIAGNOSES[d_idx]
        prng = _rng(seed, _PATIENT, p_no)
        mu, sd, lo, hi, p_f = _DEMOGRAPHY[diagnosis]
        age0 = int(np.clip(round(prng.normal(mu, sd)), lo, hi))
        sex = "F" if prng.random() < p_f else "M"
        date = _FIRST_DATE + dt.timedelta(days=int(prng.integers(0, 9 * 365)))
        date0 = date
        patient_id = f"SYN{seed % 10000:04d}-P{p_no:06d}"
        phase = PHASES[0]
        for j in range(k):
            study_no = j + 1 if follow_up else 1
            lesion_no = 1 if follow_up else j + 1
            if follow_up and j > 0:
                date = date + dt.timedelta(days=int(prng.integers(90, 400)))
            if j == 0 or follow_up:  # several lesions of one study share its phase
                phase = PHASES[int(prng.choice(3, p=PHASE_P))]
            age = min(age0 + (date - date0).days // 365, 99)
            # a follow-up shows the same lesion: same profile and terms, size changed a little
            lrng = _rng(seed, _LESION, p_no, lesion_no)
            profile = choose_profile(lrng, diagnosis)
            terms = sample_terms(lrng, profile)
            diameter = sample_diameter(lrng, profile) * (float(prng.uniform(0.8, 1.3)) if study_no > 1 else 1.0)
            crng = _rng(seed, _CASE, index)
            img_rng, reader_rng = (np.random.default_rng(s) for s in crng.bit_generator.seed_seq.spawn(2))
            truth = terms.vector(terms_all)
            reader = reader_labels(reader_rng, truth, reader_noise)
            cid = case_id(seed, index, width)
            if not render:
                yield LesionLabels(cid, index, diagnosis, patient_id, terms, truth, reader)
                index += 1
                continue
            r = render_case(img_rng, terms, diameter, size=size, spacing=spacing, phase=phase)
            study_key = [_UID_ROOT, str(seed), patient_id, str(study_no)]
            meta = CaseMetadata(
                patient_id=patient_id, age=int(age), sex=sex, study_date=date.isoformat(),
                study_uid=generate_uid(entropy_srcs=study_key),
                series_uid=generate_uid(entropy_srcs=[*study_key, "series"]),
                sop_uid=generate_uid(entropy_srcs=[*study_key, cid]),
                study_number=study_no, lesion_number=lesion_no, phase=phase, liver_segment=r.liver_segment,
                diameter_mm=r.diameter_mm, centre_row=r.centre_rc[0], centre_col=r.centre_rc[1],
                pixel_spacing_mm=spacing, appearance_profile=profile,
            )
            yield Case(
                case_id=cid, index=index, diagnosis=diagnosis, hu=r.hu, mask=r.mask, terms=terms,
                true_labels=truth, reader_labels=reader, metadata=meta,
                enhancement_style=r.enhancement_style,
            )
            index += 1
