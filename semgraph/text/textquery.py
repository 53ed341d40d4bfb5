"""Free-text queries to term vectors: ``"well-circumscribed, without enhancement"`` → t(q) ∈ [0, 1]^k.

:func:`parse_text` maps a query onto the vocabulary (docs/algorithms.md §7.1, the term-vector channel):

1. **Tokens.** Words are runs of letters and digits; hyphens, slashes and spaces separate words, so
   ``well-defined`` = ``well defined``. Each word is lower-cased and a plural ``s`` is dropped (:func:`normalise_word`);
   ``non`` is glued to the next word (``non-enhancing`` = ``nonenhancing``). ``, ; . : ! ? ( )`` are clause marks.
2. **Phrases, longest match first.** From left to right, the longest run of words (within a clause) that equals a
   phrase of the :class:`Vocabulary` (RadLex preferred label, the paper's label, or a synonym, normalised the same
   way) is matched; a phrase may name several terms (``hyperenhancing`` → hypervascular + enhancing).
3. **Negation.** A cue (``no``, ``not``, ``without``, ``absence of``, ``absent``, ``negative for``, ``free of``,
   ``lack of``, ``lacking``, ``nor``) negates every term matched after it until a clause boundary: a clause mark or
   one of the words ``but``, ``with``, ``however``, ``although``, ``except``, ``whereas``. Cue words inside a
   matched phrase (``not well-defined``, ``does not enhance``) belong to the phrase.
4. **Vector.** A term matched outside negation gets 1; a negated term gets 0. With ``complement=True`` (default)
   a negated term's complement (:data:`COMPLEMENTS`: enhancing ↔ nonenhancing, homogeneous ↔ heterogeneous,
   homogeneous ↔ heterogeneous enhancement, circumscribed ↔ indistinct margin) gets 1 unless the query names it
   itself. With ``implications=True`` (default) an asserted term's implied terms (:data:`IMPLIES`: hypervascular
   and the three spatial enhancement patterns ⇒ enhancing) get 1 unless the query names them itself. Every other
   term is 0. Added terms appear in ``matches`` with ``source`` ``'complement'`` or ``'implied'``.
5. **Mask.** ``mask[i]`` is True when term ``i``'s category was mentioned (asserted, negated or implied), so a
   caller can compare only the mentioned categories (masked HSBD, docs/algorithms.md §7.1); unmentioned categories are
   "don't care" rather than "absent".

Words that were neither matched, cues, boundaries nor function words are returned as ``ignored``, so the user
sees what the parser did not understand.

Errors: an empty or over-long text (or a non-string) raises :class:`semgraph.errors.InvalidInput`. Any other text is
parsed without error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ontology.paper_terms import RADLEX_BASE, paper_exclusive_groups, paper_terms
from semgraph.errors import InvalidInput

__all__ = ["COMPLEMENTS", "IMPLIES", "MAX_TEXT_LENGTH", "Match", "TextQuery", "Vocabulary", "VocabularyTerm", "normalise",
           "normalise_word", "parse_text"]

#: Longest accepted query text (characters).
MAX_TEXT_LENGTH = 2000

#: Complementary terms used for negated mentions when ``complement=True`` (RadLex IRIs, symmetric).
COMPLEMENTS: Mapping[str, str] = {
    RADLEX_BASE + a: RADLEX_BASE + b
    for x, y in [("RID6055", "RID6056"), ("RID6059", "RID6060"), ("RID39563", "RID39457"), ("RID5707", "RID5709")]
    for a, b in [(x, y), (y, x)]
}

#: Implications applied to asserted (non-negated) terms when ``implications=True``: a hypervascular lesion, or one
#: with a spatial enhancement pattern, is enhancing (as in the synthetic cohort's generative model).
IMPLIES: Mapping[str, tuple[str, ...]] = {
    RADLEX_BASE + a: (RADLEX_BASE + "RID6055",) for a in ("RID34389", "RID39457", "RID39563", "RID43319")
}

_NEGATION_CUES: tuple[tuple[str, ...], ...] = (
    ("absence", "of"), ("negative", "for"), ("free", "of"), ("lack", "of"),
    ("no",), ("not",), ("without",), ("absent",), ("lacking",), ("nor",), ("never",),
)
_BOUNDARY_WORDS = frozenset({"but", "with", "however", "although", "except", "whereas", "yet"})
_CLAUSE_MARKS = frozenset(",;.:!?()")
# Function words never reported as ignored.
_STOPWORDS = frozenset(
    ["a", "an", "the", "of", "and", "or", "in", "on", "at", "to", "by", "for", "from", "as", "is", "are", "was", "were", "be", "been", "being", "has", "have", "having", "had", "show", "show", "showing", "shown", "seen", "it", "its", "this", "that", "there", "which", "who", "very", "also", "some", "any", "one"]
)
_TOKEN = re.compile(r"[^\W_]+|[,;.:!?()]")
_KEEP_S = ("ss", "us", "is", "ous", "as")


def normalise_word(word: str) -> str:
    """Lower-case a word and drop a plural ending: ``Nodules`` → ``nodule``, ``arteries`` → ``artery``.

    Words of three letters or fewer and endings ``-ss``, ``-us``, ``-is``, ``-ous``, ``-as`` are kept as they are.
    """
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(_KEEP_S):
        return w[:-1]
    return w


class _Token(NamedTuple):
    norm: str
    start: int
    end: int
    is_mark: bool


def _tokens(text: str) -> list[_Token]:
    """Tokens with character spans in ``text``; ``non`` is glued to the following word."""
    raw = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    out: list[_Token] = []
    i = 0
    while i < len(raw):
        word, start, end = raw[i]
        if word in _CLAUSE_MARKS:
            out.append(_Token(word, start, end, True))
            i += 1
            continue
        norm = normalise_word(word)
        if norm == "non" and i + 1 < len(raw) and raw[i + 1][0] not in _CLAUSE_MARKS \
                and text[end:raw[i + 1][1]].strip() in ("", "-"):
            nxt, _, nend = raw[i + 1]
            out.append(_Token("non" + normalise_word(nxt), start, nend, False))
            i += 2
            continue
        out.append(_Token(norm, start, end, False))
        i += 1
    return out


def normalise(phrase: str) -> tuple[str, ...]:
    """The normalised word tuple of a phrase, as the parser sees it (clause marks dropped)."""
    return tuple(t.norm for t in _tokens(phrase) if not t.is_mark)


# ----------------------------------------------------------------------------------------------------------------
# vocabulary
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VocabularyTerm:
    """One term of the query vector: its IRI, display label, category, short label (for captions) and exclusive
    group ("" for none; terms of one group are never asserted together, see
    :attr:`semgraph.graph.collection.Collection.exclusive`)."""

    iri: str
    label: str
    category: str = ""
    short: str = ""
    exclusive_group: str = ""

    @property
    def caption_label(self) -> str:
        """The short label if any, else the label."""
        return self.short or self.label


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The k terms of the query vector and the phrases that name them.

    Build it with :meth:`default` (paper terms + the shipped synonym list, no store needed) or :meth:`from_store`
    (paper terms + the ``skos:altLabel`` synonyms the store holds).

    Attributes
    ----------
    terms : tuple of VocabularyTerm
        Vector order.
    phrases : dict
        Normalised word tuple → (term indices, source) with source ``'label'`` or ``'synonym'``.
    """

    terms: tuple[VocabularyTerm, ...]
    phrases: Mapping[tuple[str, ...], tuple[tuple[int, ...], str]] = field(repr=False)
    max_words: int = field(repr=False)
    #: What a case of the collection is, the head of its captions ("Liver lesion", "Lung nodule").
    subject: str = "Liver lesion"

    @classmethod
    def build(cls, terms: Sequence[VocabularyTerm], labels: Mapping[str, Iterable[str]],
              synonyms: Mapping[str, Iterable[str]] | None = None, *, subject: str = "Liver lesion") -> Vocabulary:
        """A vocabulary over ``terms``; ``labels`` and ``synonyms`` map a term IRI to its phrases.

        Synonyms of IRIs outside ``terms`` are skipped. A phrase that several terms share names all of them (a
        synonym may add a term to another term's label, e.g. ``hypervascular`` → hypervascular + enhancing); the
        phrase's source is ``'label'`` when it is a label of any of them.
        """
        terms = tuple(terms)
        if not terms:
            raise InvalidInput("the vocabulary is empty")
        index = {t.iri: i for i, t in enumerate(terms)}
        if len(index) != len(terms):
            raise InvalidInput("the vocabulary has a duplicate term IRI")
        phrases: dict[tuple[str, ...], tuple[set[int], str]] = {}
        for source, mapping in (("label", labels), ("synonym", synonyms or {})):
            for iri, names in mapping.items():
                if iri not in index:
                    continue
                for name in names:
                    key = normalise(str(name))
                    if not key:
                        continue
                    have = phrases.get(key)
                    if have is None:
                        phrases[key] = ({index[iri]}, source)
                    else:
                        have[0].add(index[iri])
        frozen = {k: (tuple(sorted(v)), s) for k, (v, s) in phrases.items()}
        return cls(terms, frozen, max((len(k) for k in frozen), default=1), subject)

    @classmethod
    def default(cls, synonyms: Mapping[str, Iterable[str]] | None = None) -> Vocabulary:
        """The 19 paper terms with RadLex and paper labels and (by default) the shipped synonym list."""
        if synonyms is None:
            return _shipped_vocabulary()
        pts = paper_terms()
        group_of = {t: g for g, members in paper_exclusive_groups().items() for t in members}
        terms = [VocabularyTerm(t.iri, t.label, t.category, t.paper_label, group_of.get(t.iri, "")) for t in pts]
        labels = {t.iri: [t.label, t.paper_label] for t in pts}
        return cls.build(terms, labels, synonyms)

    @classmethod
    def from_collection(cls, collection, synonyms: Mapping[str, Iterable[str]] | None = None) -> Vocabulary:
        """A collection's terms (labels, other names, categories) with ``synonyms``; captions are headed by the
        collection's subject (:attr:`semgraph.graph.collection.Collection.subject`)."""
        aliases = collection.aliases or ((),) * len(collection.terms)
        exclusive = collection.exclusive or ("",) * len(collection.terms)
        terms = [VocabularyTerm(iri, label, category, other[0] if other else "", group)
                 for iri, label, category, other, group in zip(collection.terms, collection.labels,
                                                               collection.categories, aliases, exclusive)]
        labels = {iri: [label, *other] for iri, label, other in zip(collection.terms, collection.labels, aliases)}
        return cls.build(terms, labels, synonyms, subject=collection.subject)

    @classmethod
    def from_store(cls, store, *, fallback: bool = True, collection=None) -> Vocabulary:
        """The terms of ``collection`` (default: the store's only one) with the synonyms held by ``store``
        (``skos:altLabel`` in any graph).

        With ``fallback`` and no synonym in the store, the liver collection uses the shipped list instead.
        """
        from semgraph.graph.collection import LIVER_CT
        from semgraph.graph.collection import resolve as resolve_collection
        from semgraph.text.synonyms import read_synonyms

        if collection is None or isinstance(collection, str):
            collection = resolve_collection(store, collection)
        stored = read_synonyms(store, list(collection.terms))
        if collection.name == LIVER_CT and collection.terms == cls.default().iris:
            return cls.default() if not stored and fallback else cls.default(synonyms=stored)
        return cls.from_collection(collection, stored)

    @property
    def iris(self) -> tuple[str, ...]:
        return tuple(t.iri for t in self.terms)

    @property
    def categories(self) -> tuple[str, ...]:
        """Distinct categories in vector order of first appearance."""
        return tuple(dict.fromkeys(t.category for t in self.terms))

    def __len__(self) -> int:
        return len(self.terms)


# ----------------------------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------------------------


class Match(NamedTuple):
    """One term named by the query: character ``span`` in the text, term IRI, its label, whether negated.

    ``words`` is the matched text; ``source`` is ``'label'``, ``'synonym'``, ``'complement'`` (a term set to 1
    because its complement was negated) or ``'implied'`` (a term implied by an asserted one); a derived match has
    the span of the phrase it was derived from.
    """

    span: tuple[int, int]
    term: str
    label: str
    negated: bool
    words: str = ""
    source: str = "label"

    def as_dict(self) -> dict:
        return {"span": list(self.span), "term": self.term, "label": self.label, "negated": self.negated,
                "words": self.words, "source": self.source}


@dataclass(frozen=True, eq=False)
class TextQuery:
    """The parsed query: term vector, matches, ignored words and the mask of mentioned categories."""

    text: str
    vector: np.ndarray  # (k,) float64 in {0, 1}
    matches: tuple[Match, ...]
    ignored: tuple[str, ...]
    mask: np.ndarray  # (k,) bool: term's category was mentioned
    terms: tuple[str, ...]

    @property
    def mentioned(self) -> bool:
        """True when at least one term was matched."""
        return bool(self.matches)

    def as_dict(self) -> dict:
        return {"text": self.text, "vector": {t: float(v) for t, v in zip(self.terms, self.vector) if v},
                "matches": [m.as_dict() for m in self.matches], "ignored": list(self.ignored),
                "mentioned_terms": [t for t, m in zip(self.terms, self.mask) if m]}


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise InvalidInput(f"the query text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InvalidInput("the query text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidInput(f"the query text is too long ({len(text)} characters; at most {MAX_TEXT_LENGTH})")
    return text


def _cue_length(words: Sequence[str], i: int) -> int:
    """Number of words of the negation cue starting at ``words[i]`` (0 if none)."""
    for cue in _NEGATION_CUES:
        if tuple(words[i:i + len(cue)]) == cue:
            return len(cue)
    return 0


def _longest_phrase(vocab: Vocabulary, words: Sequence[str], i: int):
    """(length, (term indices, source)) of the longest vocabulary phrase starting at ``words[i]``, or (0, None)."""
    for n in range(min(vocab.max_words, len(words) - i), 0, -1):
        hit = vocab.phrases.get(tuple(words[i:i + n]))
        if hit is not None:
            return n, hit
    return 0, None


def _clauses(tokens: list[_Token]) -> list[list[_Token]]:
    """Split tokens at clause marks (marks dropped)."""
    out: list[list[_Token]] = [[]]
    for t in tokens:
        if t.is_mark:
            out.append([])
        else:
            out[-1].append(t)
    return [c for c in out if c]


def parse_text(text: str, vocabulary: Vocabulary | None = None, *, complement: bool = True,
               implications: bool = True) -> TextQuery:
    """Parse a free-text query into a term vector (see the module notes for the rules).

    Parameters
    ----------
    text : str
        The query, 1 to :data:`MAX_TEXT_LENGTH` characters, not blank.
    vocabulary : Vocabulary, optional
        Terms and phrases (default :meth:`Vocabulary.default`).
    complement : bool, default True
        Give a negated term's complement (:data:`COMPLEMENTS`) the value 1.
    implications : bool, default True
        Give an asserted term's implied terms (:data:`IMPLIES`) the value 1.

    Returns
    -------
    TextQuery

    Raises
    ------
    semgraph.errors.InvalidInput
        If ``text`` is not a string, is blank or is too long.

    Examples
    --------
    >>> q = parse_text("Well-defined hypodense lesion, no enhancement")
    >>> [(m.words, m.label, m.negated) for m in q.matches]  # doctest: +NORMALIZE_WHITESPACE
    [('Well-defined', 'circumscribed margin', False), ('hypodense', 'hypodense', False),
     ('enhancement', 'enhancing', True), ('enhancement', 'nonenhancing', False)]
    >>> q.ignored
    ('lesion',)
    """
    text = _check_text(text)
    vocab = Vocabulary.default() if vocabulary is None else vocabulary
    k = len(vocab.terms)
    matches: list[Match] = []
    ignored: list[str] = []
    for clause in _clauses(_tokens(text)):
        words = [t.norm for t in clause]
        negating = False
        i = 0
        while i < len(clause):
            n, hit = _longest_phrase(vocab, words, i)
            if n:
                start, end = clause[i].start, clause[i + n - 1].end
                for idx in hit[0]:
                    term = vocab.terms[idx]
                    matches.append(Match((start, end), term.iri, term.label, negating, text[start:end], hit[1]))
                i += n
                continue
            n = _cue_length(words, i)
            if n:
                negating = True
                i += n
                continue
            if words[i] in _BOUNDARY_WORDS:
                negating = False
            elif words[i] not in _STOPWORDS:
                ignored.append(text[clause[i].start:clause[i].end])
            i += 1
    matches = _add_derived(matches, vocab, complement, implications)
    vector, mask = _vector_and_mask(matches, vocab, k)
    return TextQuery(text, vector, tuple(matches), tuple(ignored), mask, vocab.iris)


def _add_derived(matches: list[Match], vocab: Vocabulary, complement: bool, implications: bool) -> list[Match]:
    """Insert after each match its complement (if negated) or implied terms (if asserted), unless the query names
    them itself."""
    named = {m.term for m in matches}
    by_iri = {t.iri: t for t in vocab.terms}
    out: list[Match] = []
    for m in matches:
        out.append(m)
        if m.negated:
            derived = [(COMPLEMENTS.get(m.term), "complement")] if complement else []
        else:
            derived = [(t, "implied") for t in IMPLIES.get(m.term, ())] if implications else []
        for other, source in derived:
            if other in by_iri and other not in named:
                out.append(Match(m.span, other, by_iri[other].label, False, m.words, source))
                named.add(other)
    return out


def _vector_and_mask(matches: Sequence[Match], vocab: Vocabulary, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Term vector (later explicit mentions override earlier ones) and the mentioned-category mask."""
    index = {t.iri: i for i, t in enumerate(vocab.terms)}
    vector = np.zeros(k)
    explicit: set[int] = set()
    for m in matches:
        i = index[m.term]
        if m.source in ("complement", "implied") and i in explicit:
            continue
        vector[i] = 0.0 if m.negated else 1.0
        if m.source not in ("complement", "implied"):
            explicit.add(i)
    categories = {vocab.terms[index[m.term]].category for m in matches}
    mask = np.array([t.category in categories for t in vocab.terms], dtype=bool)
    return vector, mask


@functools.cache
def _shipped_vocabulary() -> Vocabulary:
    """The default vocabulary with the shipped synonym list, built once per process (it is immutable)."""
    from semgraph.text.synonyms import bundled_synonyms

    grouped: dict[str, list[str]] = {}
    for s in bundled_synonyms():
        grouped.setdefault(s.iri, []).append(s.synonym)
    return Vocabulary.default(synonyms=grouped)
