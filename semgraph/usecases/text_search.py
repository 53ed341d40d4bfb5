"""Free-text search, once for the command line and the web: ``semgraph search`` / ``query --text`` / ``--note``,
the ``/search`` page and ``/api/v1/search/text`` all call :func:`text_search`.

:class:`TextIndex` is what a text search needs: the retrieval :class:`~semgraph.retrieval.engine.Engine` (cases,
vectors, ``D`` and the filters), the collection's text :class:`~semgraph.text.textquery.Vocabulary` (with the
store's synonyms) and a :class:`~semgraph.retrieval.fusion.Corpus` over *the engine's own rows* with the stored
captions. Filters are the engine's (:class:`~semgraph.retrieval.engine.Filters`, :meth:`Engine.mask`): the cases
they allow are the candidates of the fused ranking, so a filtered top-k is the top-k among the allowed cases and the
rescaling of both channels is over those cases.

:func:`text_search` returns one :class:`TextSearchResult`: the parsed query, the ranked hits (fused score, the
rescaled term-vector and caption similarities, HSBD distance, diagnosis, patient, study date, caption), the groups,
the diagnosis suggestion for the query, the filters applied and warnings. :func:`case_suggestion` and
:func:`case_timeline` are the decision-support panels of one case.

Parameters may be given as texts (a form field, a query parameter): :func:`parse_weight`, :func:`parse_k` and
:func:`parse_grouping` turn them into values or raise :class:`~semgraph.errors.InvalidInput` naming the parameter.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput, NotFound
from semgraph.retrieval.engine import Engine, Filters
from semgraph.retrieval.fusion import (
    Corpus,
    FusedHit,
    FusedRanking,
    rank_noted_query,
    rank_text_query,
)
from semgraph.retrieval.grouping import GROUPINGS, Group, group
from semgraph.retrieval.suggest import Suggestion, suggest, suggest_for_vector
from semgraph.text.textquery import TextQuery, Vocabulary

__all__ = ["DEFAULT_W_IMG", "CaseSuggestion", "TextHit", "TextIndex", "TextSearchResult", "case_suggestion",
           "case_timeline", "filters_as_dict", "parse_grouping", "parse_k", "parse_weight", "text_search"]

#: Weight of the term-vector (HSBD) channel unless given (LifeSeeker's 0.7; the caption channel gets 0.3).
DEFAULT_W_IMG = 0.7
#: How many of the top hits vote for the query's diagnosis suggestion.
SUGGESTION_K = 10


# --------------------------------------------------------------------------------------------------- parameters


def parse_weight(value, name: str = "w_img", default: float = DEFAULT_W_IMG) -> float:
    """A channel weight in [0, 1] from a number or a text (``default`` when None or blank)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number in [0, 1], got {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InvalidInput(f"{name} must be a number in [0, 1], got {value!r}")
    return number


def parse_k(value, *, default: int = DEFAULT_K, maximum: int | None = None, name: str = "k") -> int:
    """A number of results ``>= 1`` (and ``<= maximum``) from an int or a text of ASCII digits."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, str):
        text = value.strip()
        number = int(text) if text.isascii() and text.isdigit() else None
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        number = int(value)
    else:
        number = None
    if number is None or number < 1 or (maximum is not None and number > maximum):
        bounds = "a whole number from 1" + (f" to {maximum}" if maximum is not None else " up")
        raise InvalidInput(f"{name} must be {bounds}, got {value!r}")
    return number


def parse_grouping(value, name: str = "group") -> str | None:
    """One of :data:`~semgraph.retrieval.grouping.GROUPINGS`, or None for no grouping (None or blank)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    by = value.strip() if isinstance(value, str) else value
    if by not in GROUPINGS:
        raise InvalidInput(f"{name} must be one of {', '.join(GROUPINGS)} (or empty), got {value!r}")
    return by


def filters_as_dict(filters: Filters) -> dict:
    """The restrictions of ``filters`` that are set, JSON-ready (dates as ``YYYY-MM-DD``)."""
    out = {}
    for f in fields(Filters):
        value = getattr(filters, f.name)
        if value is None or value == ():
            continue
        if f.name == "study_date":
            value = [d.isoformat() if isinstance(d, dt.date) else None for d in value]
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[f.name] = value
    return out


def describe_filters(filters: Filters) -> list[str]:
    """The restrictions of ``filters`` that are set, one short text each (``'diagnosis: cyst, hcc'``)."""
    out = []
    f = filters
    if f.diagnosis is not None:
        out.append("diagnosis: " + ", ".join(f.diagnosis))
    out += [f"term: {term} > {threshold:g}" for term, threshold in f.terms]
    if f.age is not None:
        out.append(f"age: {'' if f.age[0] is None else f.age[0]}–{'' if f.age[1] is None else f.age[1]}")
    if f.sex is not None:
        out.append(f"sex: {f.sex}")
    if f.study_date is not None:
        lo, hi = (d.isoformat() if d else "…" for d in f.study_date)
        out.append(f"study date: {lo} to {hi}")
    if f.contrast_phase is not None:
        out.append(f"contrast phase: {f.contrast_phase}")
    if f.liver_segment is not None:
        out.append(f"liver segment: {f.liver_segment}")
    if f.exclude_patient:
        out.append("not patient: " + ", ".join(f.exclude_patient))
    return out


# --------------------------------------------------------------------------------------------------- the index


@dataclass(frozen=True, eq=False)
class TextIndex:
    """The engine, the text vocabulary and the captioned corpus over the engine's cases (rows in case id order),
    with the captions' TF-IDF fitted."""

    engine: Engine
    vocabulary: Vocabulary
    corpus: Corpus

    @classmethod
    def from_engine(cls, engine: Engine, *, vocabulary: Vocabulary | None = None,
                    captions: dict[str, str] | None = None) -> TextIndex:
        """Over ``engine``'s cases; ``captions`` (id → text) default to the generated ones
        (:meth:`Engine.caption`), ``vocabulary`` to the engine's."""
        vocab = engine.vocabulary if vocabulary is None else vocabulary
        if tuple(vocab.iris) != tuple(engine.terms):
            raise InvalidInput("the vocabulary and the engine must use the same terms in the same order")
        captions = captions or {}
        order = sorted(range(len(engine.ids)), key=lambda r: engine.ids[r])
        ids = [engine.ids[r] for r in order]
        texts = [captions[i] if i in captions else engine.caption(i) for i in ids]
        corpus = Corpus.build(ids, engine.vectors[order], engine.dissimilarity, texts, engine.terms,
                              {c.case_id: c for c in engine.cases}, linkage=engine.linkage, weights=engine.weights)
        corpus.fit_text()  # the caption channel's TF-IDF, once, here rather than on the first query
        return cls(engine, vocab, corpus)

    @classmethod
    def from_store(cls, store, engine: Engine | None = None, *, collection=None) -> TextIndex:
        """Over ``engine`` (default: :meth:`Engine.from_store` of ``collection``) with the vocabulary of the store
        (its synonyms) and the stored captions; a case without one gets it generated in memory."""
        from semgraph.text.captions import captions_for, read_captions

        if engine is None:
            engine = Engine.from_store(store, collection=collection)
        if engine.collection is None:
            raise InvalidInput("a text index from a store needs an engine loaded from that store")
        vocab = Vocabulary.from_store(store, collection=engine.collection)
        known = set(engine.ids)
        stored = {i: text for i, text in read_captions(store).items() if i in known}
        missing = [c for c in engine.cases if c.case_id not in stored]
        if missing:
            stored.update(captions_for(missing, engine.ids, engine.vectors, vocab))
        return cls.from_engine(engine, vocabulary=vocab, captions=stored)

    def captions(self) -> dict[str, str]:
        return dict(zip(self.corpus.ids, self.corpus.captions))


# --------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TextHit(FusedHit):
    """One ranked case of the fused ranking (:class:`semgraph.retrieval.fusion.FusedHit`) with what a result list
    shows of the case."""

    diagnosis: str | None
    patient_id: str | None
    study_date: dt.date | None
    caption: str

    def as_dict(self) -> dict:
        return {**self.__dict__, "study_date": self.study_date.isoformat() if self.study_date else None}


@dataclass(frozen=True, eq=False)
class TextSearchResult:
    """Everything a text search produced; :meth:`as_dict` is the JSON of ``/api/v1/search/text`` and of
    ``semgraph search --format json``."""

    text: str
    query: TextQuery
    hits: tuple[TextHit, ...]
    w_img: float
    w_txt: float
    masked: bool
    caption_text: str | None
    group_by: str | None
    groups: tuple[Group, ...] | None
    suggestion: Suggestion | None
    filters: Filters
    candidates: int  # cases ranked: those the filters allow, without the query case
    warnings: tuple[str, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [h.case_id for h in self.hits]

    def as_dict(self) -> dict:
        return {"query": self.query.as_dict(), "w_img": self.w_img, "w_txt": self.w_txt, "masked": self.masked,
                "caption_text": self.caption_text, "group": self.group_by,
                "filters": filters_as_dict(self.filters), "candidates": self.candidates,
                "hits": [h.as_dict() for h in self.hits],
                "groups": None if self.groups is None else [g.as_dict() for g in self.groups],
                "suggestion": None if self.suggestion is None else self.suggestion.as_dict(),
                "warnings": list(self.warnings)}


# --------------------------------------------------------------------------------------------------- use cases


def _candidates(index: TextIndex, filters: Filters, exclude: Sequence[str]) -> list[str] | None:
    """Ids the engine's filters allow, without ``exclude`` (None: every case)."""
    engine = index.engine
    allowed = engine.mask(filters, exclude=tuple(exclude))
    return None if allowed is None else [i for i, ok in zip(engine.ids, allowed) if ok]


def text_search(index: TextIndex, text: str, *, w_img=DEFAULT_W_IMG, k=DEFAULT_K, filters=None,
                group_by: str | None = None, all_terms: bool = False, like: str | None = None, vector=None,
                exclude: Sequence[str] = (), suggestion_k: int | None = SUGGESTION_K,
                max_k: int | None = None) -> TextSearchResult:
    """Rank the cases of ``index`` by ``w_img`` · HSBD similarity + (1 − ``w_img``) · caption similarity.

    Parameters
    ----------
    text : the query text (:func:`semgraph.text.textquery.parse_text`; blank or too long is InvalidInput).
    w_img, k : numbers or texts (:func:`parse_weight`, :func:`parse_k` with ``max_k``).
    filters : :class:`Filters`, a mapping of its fields or a list of filter texts (``diagnosis=cyst``, see
        :func:`semgraph.retrieval.engine.parse_filter`); only the cases they allow are ranked.
    group_by : ``'diagnosis'``, ``'patient'``, ``'cluster'`` or None (:func:`parse_grouping`).
    all_terms : compare every term in HSBD, not only the categories the text mentions.
    like : a case id: the query is that case's vector with ``text`` as a note on it; the case is left out.
    vector : a query vector (e.g. of an image region) with ``text`` as a note on it (instead of ``like``).
    exclude : case ids never returned (e.g. the case a session started from).
    suggestion_k : how many top hits vote for the query's diagnosis suggestion (None: no suggestion).
    """
    engine = index.engine
    w_img = parse_weight(w_img)
    w_txt = round(1.0 - w_img, 12)
    k = parse_k(k, maximum=max_k)
    group_by = parse_grouping(group_by)
    filters = Filters.coerce(filters)
    if like is not None and vector is not None:
        raise InvalidInput("give a query case (like) or a query vector, not both")
    exclude = tuple(exclude)
    if like is not None:
        vector = engine.vector(like)  # NotFound for an unknown case
        exclude = (*exclude, like)
    candidates = _candidates(index, filters, exclude)
    vocab, corpus = index.vocabulary, index.corpus
    if vector is None:
        ranking: FusedRanking = rank_text_query(text, corpus, vocab, w_img=w_img, w_txt=w_txt, masked=not all_terms,
                                                k=k, candidates=candidates)
    else:
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (len(engine.terms),):
            raise InvalidInput(f"the query vector must have {len(engine.terms)} values, got shape {vector.shape}")
        ranking = rank_noted_query(vector, text, corpus, vocab, w_img=w_img, w_txt=w_txt, k=k,
                                   candidates=candidates)
    captions = index.captions()
    hits = []
    for h in ranking.hits:
        case = corpus.cases.get(h.case_id)
        hits.append(TextHit(h.case_id, h.rank, h.score, h.sim_img, h.sim_txt, h.distance,
                            getattr(case, "diagnosis", None), getattr(case, "patient_id", None),
                            getattr(case, "study_date", None), captions[h.case_id]))
    ids, scores = ranking.ids, [h.score for h in ranking.hits]
    groups = None
    if group_by is not None:
        row = {i: r for r, i in enumerate(corpus.ids)}
        projected = corpus.vectors[[row[i] for i in ids]] @ corpus.projection.T if ids else None
        groups = tuple(group(ids, group_by, scores=scores, cases=corpus.cases, projected=projected,
                             top=len(ids))) if ids else ()
    advice = None
    if suggestion_k is not None:
        diagnoses = {i: c.diagnosis for i, c in corpus.cases.items() if getattr(c, "diagnosis", None)}
        advice = suggest(ids, scores, diagnoses, k=min(int(suggestion_k), max(1, len(ids))))
    n = len(corpus.ids) if candidates is None else len(candidates)
    return TextSearchResult(text, ranking.query, tuple(hits), ranking.w_img, ranking.w_txt, ranking.masked,
                            ranking.caption_text, group_by, groups, advice, filters, n,
                            tuple(_warnings(engine, ranking, filters, n, vector is not None)))


def _warnings(engine: Engine, ranking: FusedRanking, filters: Filters, candidates: int, noted: bool) -> list[str]:
    out = []
    if engine.left_out:
        shown = ", ".join(engine.left_out[:5]) + (" ..." if len(engine.left_out) > 5 else "")
        name = f" of collection {engine.collection.name!r}" if engine.collection is not None else ""
        out.append(f"{len(engine.left_out)} case(s){name} have no likelihood for any of its terms and are left "
                   f"out: {shown}")
    if candidates == 0 and filters != Filters():
        out.append("the filters allow no case")
    if not noted and ranking.query is not None and not ranking.query.mentioned and ranking.w_txt == 0:
        out.append("no word of the text matched a term and the caption weight is 0: every score is 0, so the "
                   "order is the case order")
    return out


@dataclass(frozen=True)
class CaseSuggestion:
    """The diagnosis suggestion for a stored case (:func:`case_suggestion`)."""

    case_id: str
    diagnosis_known: str | None
    include_same_patient: bool
    suggestion: Suggestion

    def as_dict(self) -> dict:
        return {"case_id": self.case_id, "diagnosis_known": self.diagnosis_known,
                "include_same_patient": self.include_same_patient, **self.suggestion.as_dict()}


def case_suggestion(index: TextIndex, case_id: str, *, k=SUGGESTION_K,
                    include_same_patient: bool = False) -> CaseSuggestion:
    """A diagnosis suggestion for a stored case: the similarity-weighted vote of its ``k`` nearest cases (HSBD),
    of other patients unless ``include_same_patient`` (the case itself never votes). Decision support only."""
    k = parse_k(k, default=SUGGESTION_K)
    corpus = index.corpus
    if case_id not in corpus.cases:
        raise NotFound(f"no case {case_id!r} with term likelihoods in the store")
    focus = corpus.cases[case_id]
    exclude = [case_id] if include_same_patient else \
        [i for i, c in corpus.cases.items() if c.patient_id == focus.patient_id]
    diagnoses = {i: c.diagnosis for i, c in corpus.cases.items() if c.diagnosis}
    s = suggest_for_vector(corpus.vectors[corpus.ids.index(case_id)], corpus.vectors, list(corpus.ids), diagnoses,
                           corpus.projection, k=k, exclude=exclude)
    return CaseSuggestion(case_id, focus.diagnosis, include_same_patient, s)


def case_timeline(index: TextIndex, store, case_id: str) -> dict:
    """The patient timeline of a case (:func:`semgraph.retrieval.timeline.patient_timeline`), every entry with its
    caption and the labels of its terms above 0.5."""
    from semgraph.retrieval.timeline import patient_timeline

    vocab = index.vocabulary
    timeline = patient_timeline(store, case_id, list(vocab.iris))
    labels = {t.iri: t.label for t in vocab.terms}
    captions = index.captions()
    data = timeline.as_dict()
    for entry in [data["focus"], *data["earlier"], *data["same_day"], *data["later"], *data["undated"]]:
        entry["caption"] = captions.get(entry["case_id"], "")
        entry["terms"] = [labels[t] for t, v in entry["likelihoods"].items() if v > 0.5 and t in labels]
    return data
