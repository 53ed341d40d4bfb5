"""Generated captions: one sentence per case from its term likelihoods and metadata (LifeSeeker's "CapMeta").

A caption lists the asserted terms (:func:`asserted`: likelihood above a threshold, and of the terms of one
exclusive group only the most likely one), grouped by category in vocabulary order, then the contrast phase, the
liver segment, the patient's age and sex and the study date::

    Liver lesion, segment VI: circumscribed, smooth margin; water density; nonenhancing; homogeneous.
    Portal venous phase. 54-year-old woman, 2021-03-04.

Terms of one category are joined with ", " (a shared last word such as "margin" is written once), categories with
"; ". Missing metadata is left out. :func:`write_captions` stores ``sg:caption`` for every case of the annotations
graph in one update that also removes the old captions. Captions are deterministic: the same likelihoods and
metadata give the same text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from rdflib import Literal

from kg import Store
from kg.namespaces import ANNOTATIONS_GRAPH, SG
from kg.sparql import insert_data
from semgraph.errors import InvalidInput
from semgraph.graph.casegraph import (
    Case,
    case_iri,
    read_cases,
    read_likelihoods,
    update_annotations,
)
from semgraph.text.textquery import Vocabulary

__all__ = ["asserted", "caption", "captions_for", "read_captions", "write_captions"]

_SEX = {"F": "woman", "M": "man"}


def _values(likelihoods, vocabulary: Vocabulary) -> np.ndarray:
    """Likelihoods as a (k,) array in vocabulary order (a mapping IRI → value, or a sequence)."""
    k = len(vocabulary.terms)
    if isinstance(likelihoods, Mapping):
        v = np.array([float(likelihoods.get(t.iri, 0.0)) for t in vocabulary.terms])
    else:
        try:
            v = np.asarray(likelihoods, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput("likelihoods must be numbers") from None
        if v.shape != (k,):
            raise InvalidInput(f"likelihoods must have shape ({k},), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise InvalidInput("likelihoods contain NaN or infinite values")
    return v


def _join_category(labels: Sequence[str]) -> str:
    """``['circumscribed margin', 'smooth margin']`` → ``'circumscribed, smooth margin'``."""
    if len(labels) > 1:
        last = [lab.rsplit(" ", 1) for lab in labels]
        if all(len(p) == 2 for p in last) and len({p[1] for p in last}) == 1:
            return ", ".join(p[0] for p in last[:-1]) + ", " + labels[-1]
    return ", ".join(labels)


def _field(metadata, name: str):
    if metadata is None:
        return None
    if isinstance(metadata, Mapping):
        return metadata.get(name)
    return getattr(metadata, name, None)


def asserted(values, vocabulary: Vocabulary, threshold: float = 0.5) -> np.ndarray:
    """Which terms a case is said to have: (k,) bool, True where the likelihood is strictly above ``threshold``,
    except that of an exclusive group (:attr:`VocabularyTerm.exclusive_group`) only its most likely term can be
    (ties: the first in vocabulary order), so two terms of one group are never asserted together."""
    v = np.asarray(values, dtype=np.float64)
    out = v > threshold
    best: dict[str, int] = {}
    for i, term in enumerate(vocabulary.terms):
        group = term.exclusive_group
        if group and out[i]:
            if group in best and v[best[group]] >= v[i]:
                out[i] = False
            else:
                if group in best:
                    out[best[group]] = False
                best[group] = i
    return out


def _findings(values: np.ndarray, vocabulary: Vocabulary, threshold: float) -> str:
    """``'a, b margin; c; d'``: the asserted terms, by category in vocabulary order."""
    groups: dict[str, list[str]] = {}
    for term, said in zip(vocabulary.terms, asserted(values, vocabulary, threshold)):
        if said:
            groups.setdefault(term.category, []).append(term.caption_label)
    return "; ".join(_join_category(labels) for labels in groups.values())


def _metadata_sentences(metadata) -> list[str]:
    out = []
    phase = _field(metadata, "contrast_phase")
    if phase:
        text = str(phase).strip()
        out.append(text[:1].upper() + text[1:] + ("" if text.lower().endswith("phase") else " phase") + ".")
    age, sex, date = _field(metadata, "age"), _field(metadata, "sex"), _field(metadata, "study_date")
    who = []
    if age is not None:
        who.append(f"{int(age)}-year-old {_SEX.get(str(sex).upper(), 'patient') if sex else 'patient'}")
    elif sex:
        who.append(_SEX.get(str(sex).upper(), "patient"))
    if date is not None:
        who.append(date.isoformat() if hasattr(date, "isoformat") else str(date))
    if who:
        sentence = ", ".join(who)
        out.append(sentence[:1].upper() + sentence[1:] + ".")
    return out


def caption(likelihoods, vocabulary: Vocabulary | None = None, metadata=None, threshold: float = 0.5) -> str:
    """The caption of one case.

    Parameters
    ----------
    likelihoods : mapping of term IRI to float, or array_like of shape (k,), or None
        Term likelihoods (vector order of ``vocabulary``); ``None`` gives a metadata-only caption.
    vocabulary : Vocabulary, optional
        Terms, categories and caption labels (default :meth:`Vocabulary.default`).
    metadata : casegraph.Case or mapping, optional
        Fields ``liver_segment``, ``contrast_phase``, ``age``, ``sex`` (``'F'``/``'M'``), ``study_date``.
    threshold : float in [0, 1), default 0.5
        A term is written when its likelihood is strictly above ``threshold``.

    Examples
    --------
    >>> from ontology.paper_terms import paper_terms
    >>> v = {t.iri: 1.0 for t in paper_terms() if t.rid in ("RID5714", "RID43336", "RID6056")}
    >>> caption(v, metadata={"liver_segment": "VI", "age": 54, "sex": "F", "contrast_phase": "portal venous"})
    'Liver lesion, segment VI: smooth margin; water density; nonenhancing. Portal venous phase. 54-year-old woman.'
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold < 1.0 \
            or math.isnan(threshold):
        raise InvalidInput(f"threshold must be a number in [0, 1), got {threshold!r}")
    vocab = Vocabulary.default() if vocabulary is None else vocabulary
    head = vocab.subject
    segment = _field(metadata, "liver_segment")
    if segment:
        head += f", segment {segment}"
    findings = "" if likelihoods is None else _findings(_values(likelihoods, vocab), vocab, threshold)
    first = f"{head}: {findings}." if findings else f"{head}."
    return " ".join([first, *_metadata_sentences(metadata)])


def captions_for(cases: Sequence[Case], ids: Sequence[str], matrix, vocabulary: Vocabulary | None = None,
                 threshold: float = 0.5) -> dict[str, str]:
    """Captions of ``cases`` (id → caption) given the likelihood rows ``matrix`` of ``ids`` (cases missing from
    ``ids`` get a metadata-only caption)."""
    vocab = Vocabulary.default() if vocabulary is None else vocabulary
    row = {case_id: i for i, case_id in enumerate(ids)}
    A = np.asarray(matrix, dtype=np.float64)
    return {c.case_id: caption(A[row[c.case_id]] if c.case_id in row else None, vocab, c, threshold)
            for c in sorted(cases, key=lambda c: c.case_id)}


_DELETE_CAPTIONS = "DELETE WHERE { GRAPH $g { ?c sg:caption ?x } }"
_DELETE_COLLECTION_CAPTIONS = "DELETE WHERE { GRAPH $g { ?c sg:inCollection $collection ; sg:caption ?x } }"


def write_captions(store: Store, vocabulary: Vocabulary | None = None, threshold: float = 0.5, *,
                   kinds: Sequence[str] = ("predicted", "reader"), collection=None) -> dict[str, str]:
    """Generate a caption for every case of ``collection`` (default: the store's only one) and store it as
    ``sg:caption``, replacing the old captions of those cases.

    One update does both (all or nothing). Likelihoods come from the first of ``kinds`` a case has; ``vocabulary``
    defaults to the collection's. Returns the captions written (case id → text).
    """
    from semgraph.graph.collection import resolve

    collection = collection if collection is not None else resolve(store)
    vocab = Vocabulary.from_store(store, collection=collection) if vocabulary is None else vocabulary
    member = collection.case_filter
    cases = read_cases(store, collection=member)
    ids, A = read_likelihoods(store, vocab.iris, kinds=tuple(kinds), collection=member)
    out = captions_for(cases, ids, A, vocab, threshold)
    update = (_DELETE_CAPTIONS if member is None else _DELETE_COLLECTION_CAPTIONS) + " ;\n" + insert_data(
        (case_iri(i), SG.caption, Literal(text)) for i, text in out.items())
    update_annotations(store, update, None if member is None else {"collection": member})
    return out


_READ = "SELECT ?id ?text WHERE { GRAPH $g { ?c a sg:Case ; rdfs:label ?id ; sg:caption ?text } } ORDER BY ?id"


def read_captions(store: Store) -> dict[str, str]:
    """Stored captions, case id → text (cases without a caption are absent)."""
    return {str(r["id"]): str(r["text"]) for r in store.select(_READ, {"g": ANNOTATIONS_GRAPH})}
