"""The retrieval engine: the cases of a store in an HSBD index, searched by case, term vector or image.

:meth:`Engine.from_store` reads every case with term likelihoods (:func:`semgraph.graph.casegraph.read_likelihoods`;
from the derived snapshot beside an embedded store when it is current, :mod:`semgraph.graph.snapshot`), the term
dissimilarity ``D`` (the shared baseline, see :func:`baseline_dissimilarity`) and builds an
:class:`semgraph.retrieval.index.HSBDIndex`. A search returns :class:`Hit` objects: case id, HSBD distance, diagnosis and an
explanation, the dendrogram nodes (groups of terms) that contribute most to the distance (:mod:`semgraph.retrieval.explain`,
computed for all hits in one pass).

Filters (:class:`Filters`) become a boolean mask over the index rows that the index applies *during* its scan, so a
filtered top-K is the top-K among the allowed cases, never a post-filtered global top-K.

Errors: bad input (unknown case or term, malformed vector or filter) raises :class:`semgraph.errors.InvalidInput`
or :class:`semgraph.errors.NotFound`.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from kg import Store
from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput, NotFound
from semgraph.graph.casegraph import Case
from semgraph.graph.collection import Collection
from semgraph.graph.collection import resolve as resolve_collection
from semgraph.graph.snapshot import cases_and_likelihoods
from semgraph.retrieval import hsbd
from semgraph.retrieval.explain import (
    Contribution,
    NodeGroups,
    contributions,
    node_groups,
    top_contributions,
)
from semgraph.retrieval.index import HSBDIndex
from semgraph.text.captions import caption

__all__ = ["Contribution", "Engine", "Filters", "Hit", "baseline_dissimilarity", "parse_filter", "parse_terms"]


# --------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Hit:
    """One search result."""

    case_id: str
    distance: float
    diagnosis: str | None
    explanation: tuple[Contribution, ...]

    def as_dict(self) -> dict:
        return {"case_id": self.case_id, "distance": self.distance, "diagnosis": self.diagnosis,
                "explanation": [c.as_dict() for c in self.explanation]}


# --------------------------------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    """Restrictions on which cases a search may return (all given restrictions must hold).

    ``terms`` holds ``(term, threshold)`` pairs: the case's likelihood of the term (IRI, RadLex id or label) must be
    strictly above the threshold. Ranges are inclusive; ``None`` means unrestricted.
    """

    diagnosis: tuple[str, ...] | None = None
    terms: tuple[tuple[str, float], ...] = ()
    age: tuple[int | None, int | None] | None = None
    sex: str | None = None
    study_date: tuple[dt.date | None, dt.date | None] | None = None
    contrast_phase: str | None = None
    liver_segment: str | None = None
    exclude_patient: tuple[str, ...] = ()

    @classmethod
    def coerce(cls, value) -> Filters:
        """A :class:`Filters` from ``None``, a Filters, a mapping of its fields or a list of ``key=value`` texts."""
        if value is None:
            return cls()
        if isinstance(value, Filters):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise InvalidInput(f"unknown filter(s) {sorted(unknown)}; use {sorted(cls.__dataclass_fields__)}")
            out = cls()
            for key, v in value.items():
                if key in ("diagnosis", "exclude_patient") and isinstance(v, str):
                    v = (v,)
                elif key in ("diagnosis", "exclude_patient", "terms") and v is not None:
                    v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
                out = replace(out, **{key: v})
            return out
        if isinstance(value, (list, tuple)):
            out = cls()
            for text in value:
                out = parse_filter(text, out)
            return out
        raise InvalidInput(f"filters must be a mapping or a list of 'key=value' texts, got {type(value).__name__}")


_FILTER_KEYS = "diagnosis, term:<term><op><threshold>, age, sex, date, phase, segment, exclude-patient"


def _date(text: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def parse_filter(text: str, base: Filters | None = None) -> Filters:
    """Add one filter written as text to ``base``.

    Forms: ``diagnosis=cyst`` or ``diagnosis=cyst,hcc``; ``term:hypodense>0.5`` (``>=`` accepted, means the same
    threshold); ``age=40-70`` (``40-`` and ``-70`` open-ended); ``sex=F``; ``date=2020-01-01..2021-12-31``;
    ``phase=portal venous``; ``segment=VI``; ``exclude-patient=P1,P2``.
    """
    base = base or Filters()
    text = (text or "").strip()
    if text.startswith("term:"):
        m = re.fullmatch(r"term:(.+?)\s*(>=|>)\s*([0-9.eE+-]+)", text)
        if not m:
            raise InvalidInput(f"filter {text!r}: expected term:<term>><threshold>, e.g. 'term:hypodense>0.5'")
        try:
            threshold = float(m.group(3))
        except ValueError:
            raise InvalidInput(f"filter {text!r}: {m.group(3)!r} is not a number") from None
        return replace(base, terms=base.terms + ((m.group(1).strip(), threshold),))
    key, sep, value = text.partition("=")
    key, value = key.strip().lower().replace("_", "-"), value.strip()
    if not sep or not value:
        raise InvalidInput(f"filter {text!r}: expected key=value with key one of {_FILTER_KEYS}")
    if key == "diagnosis":
        return replace(base, diagnosis=tuple(v.strip() for v in value.split(",") if v.strip()))
    if key == "age":
        m = re.fullmatch(r"(\d*)\s*-\s*(\d*)|(\d+)", value)
        if not m:
            raise InvalidInput(f"filter {text!r}: expected age=MIN-MAX (e.g. 40-70) or age=N")
        if m.group(3):
            return replace(base, age=(int(m.group(3)), int(m.group(3))))
        lo, hi = (int(x) if x else None for x in m.group(1, 2))
        return replace(base, age=(lo, hi))
    if key == "sex":
        return replace(base, sex=value)
    if key in ("date", "study-date"):
        lo, dots, hi = value.partition("..")
        if not dots:
            return replace(base, study_date=(_date(value), _date(value)))
        return replace(base, study_date=(_date(lo.strip()), _date(hi.strip())))
    if key in ("phase", "contrast-phase"):
        return replace(base, contrast_phase=value)
    if key in ("segment", "liver-segment"):
        return replace(base, liver_segment=value)
    if key == "exclude-patient":
        return replace(base, exclude_patient=base.exclude_patient + tuple(v.strip() for v in value.split(",")))
    raise InvalidInput(f"filter {text!r}: unknown key {key!r}; use one of {_FILTER_KEYS}")


def parse_terms(text: str) -> dict[str, float]:
    """``'hypodense=0.9,RID6042=1'`` → ``{'hypodense': 0.9, 'RID6042': 1.0}`` (terms resolved later)."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.rpartition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"{part!r}: expected TERM=VALUE (e.g. 'hypodense=0.9')")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidInput(f"{part!r}: {value!r} is not a number") from None
    if not out:
        raise InvalidInput("no terms given; write them as 'label=0.9,RID6042=1'")
    return out


# --------------------------------------------------------------------------------------------------- baseline


def baseline_dissimilarity(store: Store, collection: Collection) -> tuple[np.ndarray, str]:
    """The baseline ``D`` of ``collection`` and where it came from.

    Reads the collection's stored baseline (:func:`semgraph.retrieval.similarity.read_baseline` of its
    :attr:`~semgraph.graph.collection.Collection.baseline_graph`); when the store holds none, falls back to the
    ontological dissimilarity δΘ alone (``ontology.dissimilarity_matrix`` in the collection's ontology, Kurtz
    measure). The matrix is clamped to ``D_ij >= 1e-3`` so that HSBD stays a metric.
    """
    from semgraph.retrieval.similarity import read_baseline

    terms = list(collection.terms)
    try:
        D, source = read_baseline(store, terms, graph=collection.baseline_graph), "baseline"
    except NotFound:
        import ontology

        D = ontology.dissimilarity_matrix(store, terms, ontology=collection.ontology)
        source = "ontology (no baseline in the store)"
    return hsbd.clamp(np.asarray(D, dtype=np.float64)), source


# --------------------------------------------------------------------------------------------------- engine


class Engine:
    """Cases of a store, their likelihoods and an HSBD index over them, for one term dissimilarity ``D``.

    Build it with :meth:`from_store`; :meth:`with_dissimilarity` gives an engine over the same cases for another
    ``D`` and term weights ``w`` (for instance a session's learned ones): it then ranks and explains by
    ``HSBD(w ⊙ x, w ⊙ a)``.
    """

    #: Where :meth:`from_store` read the cases and likelihoods: ``'snapshot'`` or ``'graph'`` (``'given'`` otherwise).
    loaded_from = "given"
    #: The collection :meth:`from_store` loaded (None for an engine built from arrays).
    collection: Collection | None = None
    #: Ids of the collection's cases :meth:`from_store` left out because their vectors are all zero.
    left_out: tuple[str, ...] = ()
    #: Term weights ``w`` of the ranking (docs/algorithms.md §5.7), None for none (``w = 1``).
    term_weights: np.ndarray | None = None

    def __init__(self, terms: Sequence[str], cases: Sequence[Case], vectors, dissimilarity, *,
                 labels: Sequence[str] | None = None, categories: Sequence[str] | None = None,
                 linkage: str = "average", weights: str = "gap", resolver=None, source: str = "given"):
        self.terms = tuple(terms)
        self.labels = tuple(labels) if labels is not None else tuple(t.rsplit("/", 1)[-1] for t in self.terms)
        # without categories every term is its own: no pair counts as alternatives of one another
        self.categories = tuple(categories) if categories is not None else self.terms
        self.cases = tuple(cases)
        self.ids = tuple(c.case_id for c in self.cases)
        self.vectors = np.asarray(vectors, dtype=np.float64)
        if self.vectors.shape != (len(self.cases), len(self.terms)):
            raise InvalidInput(f"vectors must have shape ({len(self.cases)}, {len(self.terms)}); "
                               f"got {self.vectors.shape}")
        self.linkage, self.weights, self.source = linkage, weights, source
        self._resolver = resolver
        self._row = {case_id: i for i, case_id in enumerate(self.ids)}
        self._meta = _metadata_columns(self.cases)
        self.dissimilarity = hsbd.clamp(dissimilarity)
        self.index = HSBDIndex(self.dissimilarity, self.ids, self.vectors, linkage=linkage, weights=weights)
        self._node_cache: tuple[hsbd.Dendrogram, NodeGroups] | None = None
        self._captions: dict[str, str] = {}  # shared with the engines derived by with_dissimilarity

    @classmethod
    def from_store(cls, store: Store, *, collection: Collection | str | None = None,
                   terms: Sequence[str] | None = None, dissimilarity=None, linkage: str = "average",
                   weights: str = "gap", likelihood_kinds: Sequence[str] = ("predicted", "reader"),
                   use_snapshot: bool = True, snapshot_file: str | os.PathLike | None = None) -> Engine:
        """Load the cases of ``collection`` with likelihoods of ``likelihood_kinds`` and index them.

        ``collection`` is a :class:`semgraph.graph.collection.Collection` or a name (default: the store's only one, see
        :func:`semgraph.graph.collection.resolve`); it gives the terms, their labels and categories. ``terms`` restricts
        the index to some of its terms (in the given order). ``dissimilarity`` defaults to
        :func:`baseline_dissimilarity`. With ``use_snapshot`` (embedded stores, or any store with a
        ``snapshot_file``) the cases and likelihoods come from :func:`semgraph.graph.snapshot.cases_and_likelihoods`,
        which gives the same values as the graph; :attr:`loaded_from` says which was read.

        Cases whose vector is zero for every term (their annotations name other terms) are left out and listed in
        :attr:`left_out`; :class:`NotFound` when no case is left.
        """
        if not isinstance(collection, Collection):
            collection = resolve_collection(store, collection)
        if terms is not None:
            positions = [collection.position(str(t)) for t in terms]
            if not positions:
                raise InvalidInput("the vocabulary is empty")
            collection = collection.subset(positions)
        hierarchy = None
        try:
            import ontology

            hierarchy = ontology.hierarchy(store, collection.ontology)
        except Exception:  # noqa: BLE001 - no ontology loaded: terms resolve by the collection's labels only
            hierarchy = None
        cases, A, loaded_from = cases_and_likelihoods(store, collection.terms, likelihood_kinds,
                                                      use_snapshot=use_snapshot, snapshot_file=snapshot_file,
                                                      collection=collection.case_filter)
        empty = ~np.any(A > 0, axis=1) if len(cases) else np.zeros(0, dtype=bool)
        left_out = tuple(c.case_id for c, e in zip(cases, empty) if e)
        if left_out:
            cases = [c for c, e in zip(cases, empty) if not e]
            A = A[~empty]
        if not cases:
            what = f"{' or '.join(likelihood_kinds)} likelihoods of its terms"
            hint = (f" ({len(left_out)} case(s) have likelihoods only of other terms: are they in another "
                    "collection? see `semgraph collection list`)" if left_out else
                    "; ingest cases first (for example `semgraph demo`)")
            raise NotFound(f"no case of collection {collection.name!r} in {store.location} has {what}{hint}")
        source = "given"
        if dissimilarity is None:
            dissimilarity, source = baseline_dissimilarity(store, collection)
        engine = cls(collection.terms, cases, A, dissimilarity, labels=collection.labels,
                     categories=collection.categories, linkage=linkage, weights=weights, resolver=hierarchy,
                     source=source)
        engine.collection = collection
        engine.left_out = left_out
        engine.loaded_from = loaded_from
        return engine

    def with_dissimilarity(self, dissimilarity, *, source: str = "given", term_weights=None) -> Engine:
        """A new engine over the same cases with another ``D`` and term weights ``w`` (None: none); this engine is
        unchanged.

        Its index shares this engine's vectors and projects them while scanning
        (:meth:`semgraph.retrieval.index.HSBDIndex.with_dissimilarity`, projection ``M diag(w)``): building it costs
        one dendrogram, independent of the number of cases, and it ranks exactly as an engine built from scratch
        with that ``D`` and ``w``.
        """
        other = object.__new__(Engine)
        other.__dict__.update(self.__dict__)
        other.source = source
        other.dissimilarity = hsbd.clamp(dissimilarity)
        if other.dissimilarity.shape != self.dissimilarity.shape:
            raise InvalidInput(f"D must be {len(self.terms)} x {len(self.terms)}; got {other.dissimilarity.shape}")
        other.index = self.index.with_dissimilarity(other.dissimilarity, term_weights)
        other.term_weights = other.index.term_weights
        return other

    def _set_dissimilarity(self, dissimilarity, term_weights=None) -> None:
        """Change ``D`` and the term weights in place (the index is rebuilt in place); used by a session that owns
        this engine."""
        D = hsbd.clamp(dissimilarity)
        self.index.rebuild(D, term_weights)
        self.dissimilarity = D
        self.term_weights = self.index.term_weights

    def weighted(self, vectors) -> np.ndarray:
        """``w ⊙ x`` for a vector or every row of ``vectors`` (float64; unchanged without term weights)."""
        x = np.asarray(vectors, dtype=np.float64)
        return x if self.term_weights is None else x * self.term_weights

    def __len__(self) -> int:
        return len(self.ids)

    # ------------------------------------------------------------------ lookups
    def case(self, case_id: str) -> Case:
        try:
            return self.cases[self._row[case_id]]
        except KeyError:
            raise NotFound(f"no case {case_id!r} with likelihoods in the index") from None

    def vector(self, case_id: str) -> np.ndarray:
        """The likelihood vector of an indexed case (a copy)."""
        self.case(case_id)
        return self.vectors[self._row[case_id]].copy()

    def caption(self, case_id: str) -> str:
        """The caption of an indexed case (:func:`semgraph.text.captions.caption` of its likelihoods and metadata).

        Computed once per case and kept: the engines derived with :meth:`with_dissimilarity` share the cases, the
        vectors and these captions."""
        text = self._captions.get(case_id)
        if text is None:
            text = self._captions[case_id] = caption(dict(zip(self.terms, self.vector(case_id))), self.vocabulary,
                                                     metadata=self.case(case_id))
        return text

    @property
    def vocabulary(self):
        """The text vocabulary of the engine's collection (:class:`semgraph.text.textquery.Vocabulary`; the paper's
        with its shipped synonyms for the liver collection and for engines built from arrays)."""
        from semgraph.text.textquery import Vocabulary

        default = Vocabulary.default()
        c = self.collection
        return default if c is None or c.terms == default.iris else _collection_vocabulary(c)

    def resolve_term(self, text: str) -> int:
        """Index of a vocabulary term given by IRI, local id (such as RID5715), label or another name of it in the
        collection (case-insensitive); else through the ontology's labels."""
        key = str(text).strip()
        folded = key.casefold()
        for i, (iri, label) in enumerate(zip(self.terms, self.labels)):
            if key == iri or folded == iri.rsplit("/", 1)[-1].casefold() or folded == label.casefold():
                return i
        for i, other in enumerate(self.collection.aliases if self.collection is not None else ()):
            if any(folded == alias.casefold() for alias in other):
                return i
        if self._resolver is not None:
            try:
                iri = self._resolver.resolve(key)
            except Exception as exc:  # noqa: BLE001 - the ontology explains (suggestions) why it is unknown
                raise InvalidInput(f"unknown term {text!r}: {exc}") from None
            if iri in self.terms:
                return self.terms.index(iri)
            raise InvalidInput(f"term {text!r} ({iri}) is not in the retrieval vocabulary")
        raise InvalidInput(f"unknown term {text!r}; the vocabulary is: {', '.join(self.labels)}")

    def vector_from_terms(self, values: Mapping[str, float]) -> np.ndarray:
        """A likelihood vector from ``{term: value}`` (terms resolved by :meth:`resolve_term`; others are 0)."""
        a = np.zeros(len(self.terms))
        for name, value in values.items():
            v = float(value)
            if not 0.0 <= v <= 1.0:
                raise InvalidInput(f"the likelihood of {name!r} must be in [0, 1], got {value!r}")
            a[self.resolve_term(name)] = v
        return a

    # ------------------------------------------------------------------ filters
    def mask(self, filters=None, *, exclude: Sequence[str] = ()) -> np.ndarray | None:
        """Boolean mask over the index rows allowed by ``filters`` and not in ``exclude`` (None = all rows)."""
        f = Filters.coerce(filters)
        meta, n = self._meta, len(self.ids)
        allowed = np.ones(n, dtype=bool)
        restricted = False
        if f.diagnosis is not None:
            wanted = {d.casefold() for d in f.diagnosis}
            allowed &= np.array([d is not None and d.casefold() in wanted for d in meta["diagnosis"]], dtype=bool)
            restricted = True
        for term, threshold in f.terms:
            if not 0.0 <= float(threshold) <= 1.0:
                raise InvalidInput(f"term filter threshold must be in [0, 1], got {threshold!r}")
            allowed &= self.vectors[:, self.resolve_term(term)] > float(threshold)
            restricted = True
        if f.age is not None:
            lo, hi = f.age
            age = meta["age"]
            ok = ~np.isnan(age)
            if lo is not None:
                ok &= age >= lo
            if hi is not None:
                ok &= age <= hi
            allowed &= ok
            restricted = True
        if f.study_date is not None:
            lo, hi = f.study_date
            allowed &= np.array([d is not None and (lo is None or d >= lo) and (hi is None or d <= hi)
                                 for d in meta["study_date"]], dtype=bool)
            restricted = True
        for key in ("sex", "contrast_phase", "liver_segment"):
            wanted = getattr(f, key)
            if wanted is not None:
                allowed &= np.array([v is not None and v.casefold() == wanted.casefold() for v in meta[key]],
                                    dtype=bool)
                restricted = True
        if f.exclude_patient:
            allowed &= ~np.isin(meta["patient_id"], list(f.exclude_patient))
            restricted = True
        for case_id in exclude:
            if case_id in self._row:
                allowed[self._row[case_id]] = False
                restricted = True
        return allowed if restricted else None

    # ------------------------------------------------------------------ searching
    def search_vector(self, vector, k: int = DEFAULT_K, filters=None, *, exclude: Sequence[str] = (),
                      explain: int = 3) -> list[Hit]:
        """The ``k`` nearest allowed cases to a likelihood vector (array of length k_terms, or ``{term: value}``)."""
        if isinstance(vector, Mapping):
            vector = self.vector_from_terms(vector)
        a = hsbd._as_vector(vector, len(self.terms), "query")
        if not np.any(a > 0):
            name = f" of collection {self.collection.name!r}" if self.collection is not None else ""
            raise InvalidInput(f"the query has a likelihood of 0 for every one of the {len(self.terms)} terms{name}, "
                               "so every ranking would be arbitrary; give at least one term a value above 0")
        result = self.index.search(a, k=k, mask=self.mask(filters, exclude=exclude))
        rows = [self._row[case_id] for case_id in result.ids]
        tree, groups = self._nodes()
        why = top_contributions(tree, groups, self.weighted(a), self.weighted(self.vectors[rows]), explain)
        return [Hit(self.ids[row], float(d), self.cases[row].diagnosis, e)
                for row, d, e in zip(rows, result.distances, why)]

    def search_case(self, case_id: str, k: int = DEFAULT_K, filters=None, *, exclude_same_patient: bool = False,
                    explain: int = 3) -> list[Hit]:
        """The ``k`` nearest allowed cases to an indexed case (the case itself is never returned)."""
        query = self.case(case_id)
        f = Filters.coerce(filters)
        if exclude_same_patient:
            f = replace(f, exclude_patient=f.exclude_patient + (query.patient_id,))
        return self.search_vector(self.vector(case_id), k, f, exclude=(case_id,), explain=explain)

    def search_image(self, image_path, roi: Mapping, k: int = DEFAULT_K, filters=None, *, model=None,
                     slice_index: int | None = None, hu_range=None, explain: int = 3) -> list[Hit]:
        """Search with an image and a region of interest, through features and a term model.

        ``roi`` is ``{"mask": FILE_OR_ARRAY}``, ``{"polygon": ...}`` or ``{"rectangle": (x0, y0, x1, y1)}`` (see
        :func:`semgraph.imaging.roi_mask`); ``model`` has ``predict_proba(X) -> (n, k_terms)`` and optionally a
        ``feature_config`` attribute.
        """
        return self.search_vector(self.image_vector(image_path, roi, model=model, slice_index=slice_index,
                                                    hu_range=hu_range), k, filters, explain=explain)

    def image_vector(self, image_path, roi: Mapping, *, model=None, slice_index=None, hu_range=None) -> np.ndarray:
        """Term likelihoods of an image ROI predicted by ``model``."""
        if model is None:
            raise NotFound("searching by image needs a trained term model, and none was given; "
                           "train one with `semgraph train`")
        from semgraph import imaging
        from semgraph.terms.models import roi_likelihoods

        if not isinstance(roi, Mapping) or set(roi) - {"mask", "polygon", "rectangle"} or len(roi) != 1:
            raise InvalidInput("roi must be exactly one of {'mask': ...}, {'polygon': ...}, {'rectangle': ...}")
        image = imaging.load_image(image_path, slice_index=slice_index, hu_range=hu_range)
        mask = imaging.roi_mask(image.hu.shape, **roi)
        predicted = roi_likelihoods(model, image.hu, mask)
        missing = [t for t in self.terms if t not in predicted]
        if missing:
            raise InvalidInput(f"the term model does not predict {len(missing)} of the index's terms, e.g. {missing[0]}")
        return np.clip(np.array([predicted[t] for t in self.terms], dtype=np.float64), 0.0, 1.0)

    # ------------------------------------------------------------------ explanations
    def _nodes(self) -> tuple[hsbd.Dendrogram, NodeGroups]:
        """The index's current dendrogram and the terms under each of its nodes (kept until the dendrogram changes)."""
        tree = self.index.tree
        cached = self._node_cache
        if cached is None or cached[0] is not tree:
            cached = self._node_cache = (tree, node_groups(tree, self.terms, self.labels))
        return cached

    def contributions(self, a, b) -> list[Contribution]:
        """Every dendrogram node's contribution ``|(M diag(w) a)_v - (M diag(w) b)_v|``; they sum to the engine's
        distance HSBD(w ⊙ a, w ⊙ b)."""
        return contributions(*self._nodes(), self.weighted(a), self.weighted(b))

    def explain(self, a, b, top: int = 3) -> tuple[Contribution, ...]:
        """The ``top`` nodes contributing most to HSBD(w ⊙ a, w ⊙ b) (ties: smaller node first; zero shares left
        out)."""
        return top_contributions(*self._nodes(), self.weighted(a), self.weighted(b)[None, :], top)[0]


@functools.cache
def _collection_vocabulary(collection: Collection):
    from semgraph.text.textquery import Vocabulary

    return Vocabulary.from_collection(collection)


def _metadata_columns(cases: Sequence[Case]) -> dict:
    return {
        "diagnosis": [c.diagnosis for c in cases],
        "patient_id": np.array([c.patient_id for c in cases], dtype=object),
        "age": np.array([np.nan if c.age is None else float(c.age) for c in cases]),
        "sex": [c.sex for c in cases],
        "study_date": [c.study_date for c in cases],
        "contrast_phase": [c.contrast_phase for c in cases],
        "liver_segment": [c.liver_segment for c in cases],
    }

