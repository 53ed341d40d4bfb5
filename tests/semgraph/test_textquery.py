"""Free-text query parsing: phrases, synonyms, negation, complements, masks, and a fuzz test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput
from semgraph.text.synonyms import bundled_synonyms, parse_synonyms
from semgraph.text.textquery import (
    MAX_TEXT_LENGTH,
    Vocabulary,
    VocabularyTerm,
    normalise,
    normalise_word,
    parse_text,
)

R = "http://radlex.org/RID/"
VOCAB = Vocabulary.default()
INDEX = {t.iri: i for i, t in enumerate(VOCAB.terms)}


def asserted(q) -> set[str]:
    return {t.rsplit("/", 1)[-1] for t, v in zip(q.terms, q.vector) if v == 1}


def negated(q) -> set[str]:
    return {m.term.rsplit("/", 1)[-1] for m in q.matches if m.negated}


# ------------------------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("word, norm", [("Nodules", "nodule"), ("margins", "margin"), ("arteries", "artery"),
                                        ("heterogeneous", "heterogeneous"), ("abscess", "abscess"),
                                        ("has", "has"), ("status", "status")])
def test_normalise_word(word, norm):
    assert normalise_word(word) == norm


def test_hyphens_spaces_and_non_prefix_normalise_alike():
    assert normalise("non-enhancing") == normalise("nonenhancing") == normalise("Non enhancing") == ("nonenhancing",)
    assert normalise("well-defined") == normalise("well  defined") == ("well", "defined")


# ------------------------------------------------------------------------------------------- matching


def test_every_paper_term_is_reachable_by_its_labels_and_synonyms():
    by_rid: dict[str, list[str]] = {}
    for s in bundled_synonyms():
        by_rid.setdefault(s.rid, []).append(s.synonym)
    for t in paper_terms():
        assert t.rid in by_rid, f"no synonym for {t.rid}"
        for phrase in [t.label, t.paper_label]:
            q = parse_text(phrase)
            assert q.vector[INDEX[t.iri]] == 1, phrase


@pytest.mark.parametrize("text, rids", [
    ("well-circumscribed", {"RID5707"}),
    ("Well defined", {"RID5707"}),
    ("ill-defined margins", {"RID5709"}),
    ("cystic", {"RID43336"}),
    ("fluid attenuation", {"RID43336"}),
    ("low attenuation", {"RID6042"}),
    ("hypoattenuating", {"RID6042"}),
    ("hyperenhancing", {"RID34389", "RID6055"}),
    ("arterially enhancing", {"RID34389", "RID6055"}),
    ("peripheral puddling", {"RID43319", "RID6055"}),
    ("peripheral nodular enhancement", {"RID43319", "RID6055"}),
    ("rim enhancement", {"RID6055"}),
    ("uniform", {"RID6059"}),
    ("mixed", {"RID6060"}),
    ("subcapsular", {"RID43327"}),
    ("abutting the capsule", {"RID43327"}),
    ("NON-ENHANCING", {"RID6056"}),
])
def test_synonyms_map_to_terms(text, rids):
    q = parse_text(text)
    assert asserted(q) == rids
    assert q.ignored == ()


def test_longest_match_wins_over_its_parts():
    # "heterogeneous enhancement" is one term, not heterogeneous + enhancing
    q = parse_text("heterogeneous enhancement", implications=False)
    assert asserted(q) == {"RID39457"}
    assert len(q.matches) == 1 and q.matches[0].span == (0, 25)


def test_spans_point_into_the_original_text():
    text = "Lesion: Well-Circumscribed, HYPODENSE"
    q = parse_text(text)
    assert [(text[a:b], m.label) for m, (a, b) in zip(q.matches, [m.span for m in q.matches])] == [
        ("Well-Circumscribed", "circumscribed margin"), ("HYPODENSE", "hypodense")]


def test_ignored_words_exclude_function_words_and_cues():
    q = parse_text("a hypodense lesion in the liver of an elderly patient")
    assert q.ignored == ("lesion", "liver", "elderly", "patient")


# ------------------------------------------------------------------------------------------- negation


def test_negation_scope_runs_to_the_clause_boundary():
    q = parse_text("hypodense, without capsule contact or internal nodules, homogeneous")
    assert negated(q) == {"RID43327", "RID43335"}
    assert asserted(q) == {"RID6042", "RID6059"}


@pytest.mark.parametrize("text", ["no enhancement", "not enhancing", "absence of enhancement",
                                  "negative for enhancement", "free of enhancement", "without enhancement"])
def test_negation_cues(text):
    q = parse_text(text, complement=False)
    assert negated(q) == {"RID6055"}
    assert asserted(q) == set()


@pytest.mark.parametrize("boundary", ["but", "with", ";", ".", ","])
def test_boundaries_end_negation(boundary):
    q = parse_text(f"no capsule contact {boundary} hypodense")
    assert negated(q) == {"RID43327"}
    assert "RID6042" in asserted(q)


def test_fixed_phrase_with_a_negation_word_is_not_a_negation():
    q = parse_text("not well-defined")
    assert asserted(q) == {"RID5709"} and negated(q) == set()


def test_complement_flag():
    on = parse_text("no enhancement")
    off = parse_text("no enhancement", complement=False)
    assert asserted(on) == {"RID6056"}
    assert asserted(off) == set()
    assert [m.source for m in on.matches] == ["synonym", "complement"]
    # homogeneous <-> heterogeneous; a term named by the query itself is not overridden by a complement
    assert asserted(parse_text("not homogeneous")) == {"RID6060"}
    assert asserted(parse_text("not homogeneous, but not heterogeneous either")) == set()


def test_implications_apply_to_asserted_terms_only():
    q = parse_text("peripheral nodular enhancement")
    assert asserted(q) == {"RID43319", "RID6055"}
    assert [m.source for m in q.matches] == ["label", "implied"]
    assert asserted(parse_text("peripheral nodular enhancement", implications=False)) == {"RID43319"}
    # an explicit negation beats an implication
    assert asserted(parse_text("hypervascular; not enhancing", complement=False)) == {"RID34389"}


def test_negated_term_without_complement_only_gets_zero():
    q = parse_text("not hypervascular")
    assert asserted(q) == set() and negated(q) == {"RID34389"}


# ------------------------------------------------------------------------------------------- vector and mask


def test_vector_and_mask_by_hand():
    q = parse_text("smooth margin, no enhancement")
    k = len(VOCAB)
    expected = np.zeros(k)
    expected[INDEX[R + "RID5714"]] = 1
    expected[INDEX[R + "RID6056"]] = 1
    np.testing.assert_array_equal(q.vector, expected)
    margin = {R + r for r in ("RID5707", "RID5715", "RID5711", "RID5709", "RID5714")}
    overall = {R + r for r in ("RID6055", "RID34389", "RID6056")}
    assert {t for t, m in zip(q.terms, q.mask) if m} == margin | overall


def test_no_term_gives_zero_vector_and_empty_mask():
    q = parse_text("something unrelated")
    assert not q.mentioned and q.vector.sum() == 0 and not q.mask.any()
    assert q.ignored == ("something", "unrelated")


def test_custom_vocabulary_and_synonyms():
    terms = [VocabularyTerm("x:a", "alpha", "c1"), VocabularyTerm("x:b", "beta", "c2")]
    vocab = Vocabulary.build(terms, {"x:a": ["alpha"], "x:b": ["beta"]}, {"x:a": ["first letter", "beta"],
                                                                           "x:zzz": ["ignored"]})
    q = parse_text("First letters, beta", vocab)
    np.testing.assert_array_equal(q.vector, [1, 1])
    # 'beta' is a label of x:b and a synonym of x:a: it names both
    assert [(m.term, m.source) for m in q.matches] == [("x:a", "synonym"), ("x:a", "label"), ("x:b", "label")]


# ------------------------------------------------------------------------------------------- errors and fuzz


@pytest.mark.parametrize("bad", ["", "   \n\t", "x" * (MAX_TEXT_LENGTH + 1), None, 42, b"bytes"])
def test_bad_text_is_invalid_input(bad):
    with pytest.raises(InvalidInput):
        parse_text(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_any_text_parses_or_is_blank(text):
    if not text.strip():
        with pytest.raises(InvalidInput):
            parse_text(text)
        return
    q = parse_text(text)
    assert q.vector.shape == (len(VOCAB),) and set(np.unique(q.vector)) <= {0.0, 1.0}
    assert all(0 <= a < b <= len(text) for a, b in (m.span for m in q.matches))
    assert all(text[m.span[0]:m.span[1]] == m.words for m in q.matches)
    # every asserted term's category is in the mask
    assert np.all(q.mask[q.vector == 1])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(sorted({s.synonym for s in bundled_synonyms()} | {t.label for t in paper_terms()})),
                min_size=1, max_size=6))
def test_joined_vocabulary_phrases_are_all_matched(phrases):
    q = parse_text(", ".join(phrases))
    assert q.ignored == ()
    assert len({m.span for m in q.matches if m.source != "complement"}) >= 1


def test_synonym_list_errors_name_the_line():
    with pytest.raises(InvalidInput, match="header"):
        parse_synonyms("a\tb\n")
    with pytest.raises(InvalidInput, match="line 2"):
        parse_synonyms("rid\tsynonym\tnote\nRIDx\tfoo\t\n")
    with pytest.raises(InvalidInput, match="line 3: duplicate"):
        parse_synonyms("rid\tsynonym\tnote\nRID1\tfoo\t\nRID1\tFoo\t\n")
