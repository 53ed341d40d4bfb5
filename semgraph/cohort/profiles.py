"""Per-diagnosis term probabilities of the synthetic liver-lesion cohort.

A lesion's description is sampled in two steps. First a *profile* is chosen: usually the lesion's own diagnosis,
sometimes the profile of a classic mimic (a cystic metastasis that reads like a cyst, a hypervascular metastasis
that reads like an HCC, ...). Then each category of the vocabulary is drawn from that profile as one *state*, and
the states are turned into the 19 binary term labels. Mutual exclusion is built into the states: one contour
shape, one margin definition, one attenuation level, at most one spatial enhancement pattern.

The numbers are our own judgement of typical portal-venous CT appearances; they are not taken from any data set.
They are set so that the diagnoses are about as separable by their terms as radiologists find them (retrieval by
diagnosis on the ground-truth terms reaches a mean NDCG@K of roughly 0.75–0.85, see bench/cohort_separability.py):
each diagnosis has its hallmark terms with high probability (cyst: water, nonenhancing, smooth; hemangioma:
peripheral nodular enhancement; FNH: soft tissue, homogeneous hypervascular enhancement; HCC: soft tissue,
hypervascular, heterogeneous enhancement, internal nodules, capsule contact; metastasis: hypodense, heterogeneous
enhancement, irregular/lobulated, often a halo; abscess: water/hypodense, rim enhancement, septa drawn as internal
nodules, poorly-defined margin, abnormal perilesional tissue) and contradicting terms rare, while the classic
overlaps remain (metastasis and HCC share heterogeneous enhancement, some metastases are hypodense and
circumscribed like cysts, HCC and FNH are both hypervascular soft-tissue lesions) and a few percent of lesions
take a mimic's profile, so the diagnosis is never a function of the terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ontology.paper_terms import PaperTerm, paper_terms

#: Diagnoses in the order of the paper (§3.1) with their counts in the 72-image cohort.
PAPER_COUNTS = MappingProxyType(
    {
        "cyst": 21,
        "metastasis": 24,
        "hemangioma": 13,
        "hepatocellular carcinoma": 6,
        "focal nodular hyperplasia": 5,
        "abscess": 3,
    }
)
DIAGNOSES: tuple[str, ...] = tuple(PAPER_COUNTS)

# RadLex identifiers of the 19 vocabulary terms, by role.
CIRCUMSCRIBED, IRREGULAR, LOBULATED, INDISTINCT, SMOOTH = "RID5707", "RID5715", "RID5711", "RID5709", "RID5714"
INTERNAL_NODULES, NORMAL_PERILESIONAL = "RID43335", "RID43298"
HYPODENSE, SOFT_TISSUE, WATER = "RID6042", "RID43337", "RID43336"
ENHANCING, HYPERVASCULAR, NONENHANCING = "RID6055", "RID34389", "RID6056"
HETERO_ENH, HOMO_ENH, PERIPHERAL_NODULAR = "RID39457", "RID39563", "RID43319"
HETEROGENEOUS, HOMOGENEOUS = "RID6060", "RID6059"
ABUTS_CAPSULE = "RID43327"

# Categorical states: name -> RIDs set to 1 by that state.
SHAPES = {"smooth": (SMOOTH,), "lobulated": (LOBULATED,), "irregular": (IRREGULAR,)}
DEFINITIONS = {"circumscribed": (CIRCUMSCRIBED,), "indistinct": (INDISTINCT,)}
ATTENUATIONS = {"water": (WATER,), "hypodense": (HYPODENSE,), "soft tissue": (SOFT_TISSUE,)}
ENHANCEMENTS = {"none": (NONENHANCING,), "enhancing": (ENHANCING,), "hypervascular": (ENHANCING, HYPERVASCULAR)}
PATTERNS = {"heterogeneous": (HETERO_ENH,), "homogeneous": (HOMO_ENH,), "peripheral nodular": (PERIPHERAL_NODULAR,)}


@dataclass(frozen=True)
class Profile:
    """Probabilities of each categorical state (tuples follow the order of the state dictionaries above)."""

    shape: tuple[float, float, float]  # smooth, lobulated, irregular
    indistinct: float  # P(indistinct margin); otherwise circumscribed
    internal_nodules: float
    normal_perilesional: float
    attenuation: tuple[float, float, float]  # water, hypodense, soft tissue
    enhancement: tuple[float, float, float]  # none, enhancing (not hypervascular), hypervascular
    pattern: tuple[float, float, float]  # heterogeneous, homogeneous, peripheral nodular (if enhancing)
    heterogeneous: float  # P(heterogeneous) when the enhancement pattern does not decide it
    abuts_capsule: float
    diameter_mm: tuple[float, float]  # log-uniform range of the in-plane diameter


PROFILES = MappingProxyType(
    {
        "cyst": Profile(
            shape=(0.92, 0.07, 0.01), indistinct=0.03, internal_nodules=0.02, normal_perilesional=0.97,
            attenuation=(0.93, 0.07, 0.00), enhancement=(0.98, 0.02, 0.00), pattern=(0.80, 0.20, 0.00),
            heterogeneous=0.04, abuts_capsule=0.20, diameter_mm=(8.0, 55.0),
        ),
        "metastasis": Profile(
            shape=(0.08, 0.37, 0.55), indistinct=0.60, internal_nodules=0.04, normal_perilesional=0.40,
            attenuation=(0.03, 0.91, 0.06), enhancement=(0.06, 0.90, 0.04), pattern=(0.89, 0.09, 0.02),
            heterogeneous=0.88, abuts_capsule=0.20, diameter_mm=(10.0, 60.0),
        ),
        "hemangioma": Profile(
            shape=(0.70, 0.28, 0.02), indistinct=0.05, internal_nodules=0.03, normal_perilesional=0.97,
            attenuation=(0.03, 0.90, 0.07), enhancement=(0.01, 0.56, 0.43), pattern=(0.05, 0.04, 0.91),
            heterogeneous=0.30, abuts_capsule=0.30, diameter_mm=(12.0, 65.0),
        ),
        "hepatocellular carcinoma": Profile(
            shape=(0.25, 0.55, 0.20), indistinct=0.25, internal_nodules=0.50, normal_perilesional=0.75,
            attenuation=(0.00, 0.08, 0.92), enhancement=(0.02, 0.13, 0.85), pattern=(0.88, 0.09, 0.03),
            heterogeneous=0.85, abuts_capsule=0.60, diameter_mm=(18.0, 70.0),
        ),
        "focal nodular hyperplasia": Profile(
            shape=(0.80, 0.18, 0.02), indistinct=0.06, internal_nodules=0.04, normal_perilesional=0.97,
            attenuation=(0.00, 0.04, 0.96), enhancement=(0.02, 0.18, 0.80), pattern=(0.05, 0.93, 0.02),
            heterogeneous=0.08, abuts_capsule=0.30, diameter_mm=(15.0, 50.0),
        ),
        "abscess": Profile(
            shape=(0.20, 0.40, 0.40), indistinct=0.85, internal_nodules=0.85, normal_perilesional=0.08,
            attenuation=(0.70, 0.30, 0.00), enhancement=(0.04, 0.93, 0.03), pattern=(0.94, 0.03, 0.03),
            heterogeneous=0.95, abuts_capsule=0.15, diameter_mm=(25.0, 75.0),
        ),
    }
)

#: Probability that a lesion is drawn from another diagnosis' profile (classic imaging mimics).
MIMICS = MappingProxyType(
    {
        "cyst": {"abscess": 0.015},
        "metastasis": {"cyst": 0.025, "hepatocellular carcinoma": 0.02, "hemangioma": 0.015},
        "hemangioma": {"metastasis": 0.03, "focal nodular hyperplasia": 0.015},
        "hepatocellular carcinoma": {"focal nodular hyperplasia": 0.03, "metastasis": 0.03},
        "focal nodular hyperplasia": {"hepatocellular carcinoma": 0.03, "hemangioma": 0.015},
        "abscess": {"metastasis": 0.05},
    }
)


@dataclass(frozen=True)
class LesionTerms:
    """The sampled (ground-truth) description of one lesion, as categorical states."""

    shape: str
    definition: str
    internal_nodules: bool
    normal_perilesional: bool
    attenuation: str
    enhancement: str
    pattern: str | None
    uniformity: str
    abuts_capsule: bool

    def rids(self) -> frozenset[str]:
        """RadLex IDs of the terms present (label 1)."""
        out = [*SHAPES[self.shape], *DEFINITIONS[self.definition], *ATTENUATIONS[self.attenuation]]
        out += ENHANCEMENTS[self.enhancement]
        if self.pattern is not None:
            out += PATTERNS[self.pattern]
        out.append(HETEROGENEOUS if self.uniformity == "heterogeneous" else HOMOGENEOUS)
        if self.internal_nodules:
            out.append(INTERNAL_NODULES)
        if self.normal_perilesional:
            out.append(NORMAL_PERILESIONAL)
        if self.abuts_capsule:
            out.append(ABUTS_CAPSULE)
        return frozenset(out)

    def vector(self, terms: tuple[PaperTerm, ...] | None = None) -> np.ndarray:
        """0/1 labels in the order of :func:`ontology.paper_terms.paper_terms` (uint8, shape (19,))."""
        present = self.rids()
        return np.array([t.rid in present for t in (terms or paper_terms())], dtype=np.uint8)


def _choice(rng: np.random.Generator, names, probs) -> str:
    names = list(names)
    p = np.asarray(probs, dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def choose_profile(rng: np.random.Generator, diagnosis: str) -> str:
    """Return the profile a lesion of ``diagnosis`` is drawn from (its own, or a mimic's)."""
    mimics = MIMICS[diagnosis]
    u = rng.random()
    for other, p in mimics.items():
        if u < p:
            return other
        u -= p
    return diagnosis


def sample_terms(rng: np.random.Generator, profile_name: str) -> LesionTerms:
    """Draw one lesion description from a profile, then apply the consistency rules.

    Rules: a water-density lesion is never hypervascular nor homogeneously enhancing (an enhancing cystic lesion
    enhances by its wall, drawn as heterogeneous/rim enhancement); heterogeneous enhancement makes the lesion
    heterogeneous and homogeneous enhancement makes it homogeneous; a nonenhancing lesion has no spatial pattern.
    """
    p = PROFILES[profile_name]
    shape = _choice(rng, SHAPES, p.shape)
    definition = "indistinct" if rng.random() < p.indistinct else "circumscribed"
    nodules = bool(rng.random() < p.internal_nodules)
    normal = bool(rng.random() < p.normal_perilesional)
    attenuation = _choice(rng, ATTENUATIONS, p.attenuation)
    enhancement = _choice(rng, ENHANCEMENTS, p.enhancement)
    pattern = _choice(rng, PATTERNS, p.pattern)
    hetero = bool(rng.random() < p.heterogeneous)
    capsule = bool(rng.random() < p.abuts_capsule)
    if attenuation == "water":
        if enhancement == "hypervascular":
            enhancement = "enhancing"
        if pattern == "homogeneous":
            pattern = "heterogeneous"
    if enhancement == "none":
        pattern = None
    elif pattern == "heterogeneous":
        hetero = True
    elif pattern == "homogeneous":
        hetero = False
    return LesionTerms(
        shape=shape, definition=definition, internal_nodules=nodules, normal_perilesional=normal,
        attenuation=attenuation, enhancement=enhancement, pattern=pattern,
        uniformity="heterogeneous" if hetero else "homogeneous", abuts_capsule=capsule,
    )


def sample_diameter(rng: np.random.Generator, profile_name: str) -> float:
    """In-plane lesion diameter in mm, log-uniform in the profile's range."""
    lo, hi = PROFILES[profile_name].diameter_mm
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def reader_labels(rng: np.random.Generator, truth: np.ndarray, noise: float) -> np.ndarray:
    """A reader's labels: each ground-truth label flipped independently with probability ``noise``."""
    flips = rng.random(truth.shape) < noise
    return np.where(flips, 1 - truth, truth).astype(np.uint8)


def split_counts(n: int) -> dict[str, int]:
    """Cases per diagnosis for a cohort of ``n``: the paper's proportions, rounded by largest remainder.

    ``split_counts(72)`` gives exactly the paper's counts.
    """
    total = sum(PAPER_COUNTS.values())
    exact = {d: n * c / total for d, c in PAPER_COUNTS.items()}
    counts = {d: int(np.floor(x)) for d, x in exact.items()}
    rest = n - sum(counts.values())
    order = sorted(DIAGNOSES, key=lambda d: (-(exact[d] - counts[d]), DIAGNOSES.index(d)))
    for d in order[:rest]:
        counts[d] += 1
    return counts


def probability_table() -> list[dict[str, object]]:
    """Marginal P(term = 1) per diagnosis, estimated from the profiles and mimics (for docs and reports)."""
    rng = np.random.default_rng(12345)
    rows = []
    for d in DIAGNOSES:
        draws = np.stack([sample_terms(rng, choose_profile(rng, d)).vector() for _ in range(4000)])
        rows.append({"diagnosis": d, **{t.paper_label: float(m) for t, m in zip(paper_terms(), draws.mean(0))}})
    return rows
