"""Fused ranking: similarity maps, weights, HSBD distances, TF-IDF channel, the §7.2 check, store and CLI."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ontology
from ontology.paper_terms import paper_terms
from semgraph.cli import load_commands
from semgraph.cohort import iter_labels
from semgraph.errors import InvalidInput
from semgraph.graph.casegraph import Annotation, Case, write_case
from semgraph.retrieval import hsbd
from semgraph.retrieval.fusion import (
    Corpus,
    caption_query_text,
    distance_to_similarity,
    fuse,
    hsbd_distances,
    rank_fused,
    rank_noted_query,
    rank_text_query,
    rescale,
    text_similarity,
)
from semgraph.text.textquery import Vocabulary, parse_text

TERMS = paper_terms()
K = len(TERMS)


def chain_D(k: int) -> np.ndarray:
    """|i - j|: a dissimilarity whose dendrogram is easy to reason about."""
    i = np.arange(k)
    return np.abs(i[:, None] - i[None, :]).astype(float)


# ------------------------------------------------------------------------------------------- maps and fusion


def test_rescale_by_hand():
    np.testing.assert_allclose(rescale([2.0, 4.0, 3.0]), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(rescale([0.3, 0.3]), [0.0, 0.0])


def test_distance_maps_by_hand():
    np.testing.assert_allclose(distance_to_similarity([0, 2, 4]), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(distance_to_similarity([0, 2, 4], "exp"), [1.0, np.exp(-1), np.exp(-2)])
    np.testing.assert_array_equal(distance_to_similarity([0.0, 0.0]), [1.0, 1.0])
    with pytest.raises(ValueError, match="linear"):
        distance_to_similarity([1.0], "cosine")
    with pytest.raises(InvalidInput):
        distance_to_similarity([-1.0])


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.integers(2, 30), elements=st.floats(0, 1e6)), st.sampled_from(["linear", "exp"]))
def test_distance_map_is_monotone_decreasing_in_unit_range(d, method):
    s = distance_to_similarity(d, method)
    assert np.all((s >= 0) & (s <= 1))
    order = np.argsort(d, kind="stable")
    assert np.all(np.diff(s[order]) <= 1e-12)


def test_fuse_by_hand_and_weight_validation():
    np.testing.assert_allclose(fuse([1.0, 0.5], [0.0, 1.0]), [0.7, 0.65])
    np.testing.assert_allclose(fuse([1.0, 0.5], [0.0, 1.0], 0.5, 0.5), [0.5, 0.75])
    for w in [(0.6, 0.3), (1.2, -0.2), (float("nan"), 0.3), (True, 0.0)]:
        with pytest.raises(InvalidInput):
            fuse([1.0], [1.0], *w)
    with pytest.raises(InvalidInput, match="shape"):
        fuse([1.0, 2.0], [1.0])


def test_hsbd_distances_match_hsbd_distance_and_mask():
    rng = np.random.default_rng(0)
    D = chain_D(4)
    M = hsbd.projection(D)
    A = rng.random((5, 4))
    q = rng.random(4)
    expected = [hsbd.distance(q, a, D) for a in A]
    np.testing.assert_allclose(hsbd_distances(q, A, M), expected)
    mask = np.array([True, True, False, False])
    np.testing.assert_allclose(hsbd_distances(q, A, M, mask), [hsbd.distance(q * mask, a * mask, D) for a in A])


def test_hsbd_distance_by_hand():
    # D = [[0,1,4],[1,0,4],[4,4,0]]: gap weights w = (1/4, 3/4, 0); a leaf-0 vs leaf-1 difference costs 2 * 1/4
    M = hsbd.projection([[0, 1, 4], [1, 0, 4], [4, 4, 0]])
    np.testing.assert_allclose(hsbd_distances([1, 0, 0], [[0, 1, 0], [0, 0, 1], [1, 0, 0]], M), [0.5, 2.0, 0.0])


def test_tfidf_channel_prefers_the_caption_with_the_query_words():
    caps = ["Liver lesion: water density; nonenhancing.", "Liver lesion: soft tissue density; enhancing.",
            "Liver lesion: hypodense; peripheral nodular enhancement."]
    s = text_similarity("peripheral nodular enhancement", caps)
    assert int(np.argmax(s)) == 2 and s[0] == pytest.approx(0.0)
    assert np.all(text_similarity("zzz qqq", caps) == 0)


def _corpus(vectors, captions=None, D=None):
    n = len(vectors)
    ids = [f"c{i:02d}" for i in range(n)]
    return Corpus.build(ids, vectors, chain_D(K) + 0.0 if D is None else D,
                        captions or ["Liver lesion."] * n, [t.iri for t in TERMS])


def test_weights_zero_one_gives_the_text_ranking():
    A = np.zeros((3, K))
    caps = ["Liver lesion: water density.", "Liver lesion: hypodense.", "Liver lesion: soft tissue density."]
    r = rank_text_query("soft tissue density", _corpus(A, caps), w_img=0.0, w_txt=1.0)
    assert r.ids[0] == "c02"
    assert r.hits[0].sim_txt == pytest.approx(1.0)


def test_a_note_on_a_vector_query_fuses_hsbd_to_the_vector_with_the_note_text():
    # three cases: c00 equals the query vector, c01 and c02 are farther; only c02's caption fits the note
    A = np.zeros((3, K))
    A[0, 7] = 1.0                       # hypodense, like the query
    A[1, 9] = 1.0                       # water density
    A[2, 9], A[2, 15] = 1.0, 1.0        # water density + peripheral nodular enhancement
    caps = ["Liver lesion: hypodense.", "Liver lesion: water density.",
            "Liver lesion: water density; peripheral nodular enhancement."]
    query = np.zeros(K)
    query[7] = 1.0
    image_only = rank_noted_query(query, "peripheral nodular enhancement", _corpus(A, caps), w_img=1.0, w_txt=0.0)
    assert image_only.ids[0] == "c00" and image_only.hits[0].sim_img == pytest.approx(1.0)
    note_only = rank_noted_query(query, "peripheral nodular enhancement", _corpus(A, caps), w_img=0.0, w_txt=1.0)
    assert note_only.ids[0] == "c02" and note_only.hits[0].sim_txt == pytest.approx(1.0)
    assert note_only.caption_text == "enhancing peripheral nodular enhancement"
    fused = rank_noted_query(query, "peripheral nodular enhancement", _corpus(A, caps), candidates=["c01", "c02"])
    # rescaled over the two candidates: c01 has img 1, txt 0; c02 img 0, txt 1 -> 0.7 and 0.3 (c00 is not ranked)
    assert fused.ids == ["c01", "c02"]
    assert [h.score for h in fused.hits] == pytest.approx([0.7, 0.3])


def test_negated_term_does_not_pull_captions_that_mention_it():
    """'no enhancement' must rank the nonenhancing caption above the enhancing ones in the caption channel.

    With the raw text, TF-IDF shares the words 'lesion' and 'enhancement' with captions 1 and 2 and only 'lesion'
    with caption 0, so caption 0 came last.
    """
    A = np.zeros((3, K))
    caps = ["Liver lesion: nonenhancing.", "Liver lesion: enhancing; heterogeneous enhancement.",
            "Liver lesion: enhancing; peripheral nodular enhancement."]
    r = rank_text_query("lesion, no enhancement", _corpus(A, caps), w_img=0.0, w_txt=1.0)
    assert r.ids[0] == "c00"
    assert r.hits[0].sim_txt == pytest.approx(1.0)
    assert r.caption_text == "nonenhancing lesion"


def test_negated_term_without_complement_leaves_no_caption_words():
    A = np.zeros((2, K))
    caps = ["Liver lesion: abuts capsule of liver.", "Liver lesion: hypodense."]
    r = rank_text_query("hypodense, not abutting the capsule", _corpus(A, caps), w_img=0.0, w_txt=1.0)
    assert "capsule" not in r.caption_text
    assert r.ids[0] == "c01"


@pytest.mark.parametrize("text, expected", [
    ("round lesion, no enhancement", "nonenhancing round lesion"),
    ("enhancing, not heterogeneous", "enhancing homogeneous"),
    ("hypervascular mass in a woman", "enhancing hypervascular mass woman"),  # implied term in vector order
    ("well-defined, without internal nodules", "circumscribed margin"),
    ("no internal nodules", ""),
])
def test_caption_query_text_by_hand(text, expected):
    assert caption_query_text(parse_text(text)) == expected


def test_caption_query_text_checks_the_vocabulary():
    small = Vocabulary.build(Vocabulary.default().terms[:3], {t.iri: [t.label] for t in Vocabulary.default().terms[:3]})
    with pytest.raises(InvalidInput, match="same terms"):
        caption_query_text(parse_text("hypodense"), small)


def test_rank_fused_scores_are_the_weighted_rescaled_components():
    rng = np.random.default_rng(1)
    A = rng.random((6, K))
    caps = [f"Liver lesion: {'hypodense' if i % 2 else 'water density'}." for i in range(6)]
    r = rank_fused(_corpus(A, caps), A[0], "hypodense", w_img=0.6, w_txt=0.4)
    for h in r.hits:
        assert h.score == pytest.approx(0.6 * h.sim_img + 0.4 * h.sim_txt)
    assert [h.score for h in r.hits] == sorted((h.score for h in r.hits), reverse=True)
    assert r.hits[0].case_id == "c00" or r.hits[0].sim_txt == 1.0


@pytest.mark.parametrize("masked", [True, False])
def test_algorithms_7_2_check_exact_terms_rank_first(masked):
    """ALGORITHMS §7.2: with W = (1, 0) and a query naming exactly the terms with a_i > τ of case n, n ranks first."""
    labels = np.array([c.reader_labels for c in iter_labels(72, seed=5)], dtype=float)
    _, first, counts = np.unique(labels, axis=0, return_index=True, return_counts=True)
    unique_rows = sorted(first[counts == 1])
    # masked: soft likelihoods 0.9 / 0.1 (τ = 0.5). Full HSBD: binary likelihoods, because with soft ones the
    # coarse dendrogram levels of a binary query can sit closer to another case (the check is not "by construction")
    A = 0.8 * labels + 0.1 if masked else labels
    D = hsbd.clamp(np.asarray(chain_D(K) / K))
    corpus = _corpus(A, D=D)
    checked = 0
    for n in unique_rows[:25]:
        text = ", ".join(TERMS[i].label for i in np.flatnonzero(A[n] > 0.5))
        r = rank_text_query(text, corpus, w_img=1.0, w_txt=0.0, masked=masked, implications=False)
        top = [h.case_id for h in r.hits if h.score == r.hits[0].score]
        if not masked:
            assert r.ids[0] == corpus.ids[n], text
        else:
            # unmentioned categories are "don't care": n is tied at the top with the cases that share its terms in
            # the mentioned categories, and only with those
            m = r.query.mask
            assert corpus.ids[n] in top, text
            assert all(np.array_equal(labels[corpus.ids.index(i)][m], labels[n][m]) for i in top)
        checked += 1
    assert checked >= 10


def test_rank_text_query_checks_vocabulary_and_candidates():
    corpus = _corpus(np.zeros((2, K)))
    with pytest.raises(InvalidInput):
        rank_text_query("hypodense", corpus, candidates=["nope"])
    with pytest.raises(InvalidInput):
        rank_text_query("", corpus)
    r = rank_text_query("hypodense", corpus, candidates=["c01"], k=5)
    assert r.ids == ["c01"]


# ------------------------------------------------------------------------------------------- store and CLI


def fill(store, n: int = 40, seed: int = 3) -> dict[str, str]:
    """Write n cohort cases (reader likelihoods 0.9/0.1) with hand-made metadata; return id -> diagnosis."""
    ontology.load(store, "radlex-liver")
    out = {}
    for c in iter_labels(n, seed=seed):
        values = {t.iri: 0.9 if v else 0.1 for t, v in zip(TERMS, c.reader_labels)}
        case = Case(c.case_id, c.patient_id, f"{c.patient_id}-S{c.index}", diagnosis=c.diagnosis,
                    study_date=dt.date(2020, 1, 1) + dt.timedelta(days=30 * c.index), age=40 + c.index % 30,
                    sex="F" if c.index % 2 else "M", contrast_phase="portal venous", liver_segment="VI")
        write_case(store, case, [Annotation("reader", values)])
        out[c.case_id] = c.diagnosis
    return out


def test_corpus_from_store_and_text_search(store):
    diagnoses = fill(store)
    corpus = Corpus.from_store(store)
    assert len(corpus.ids) == 40 and corpus.captions[0].startswith("Liver lesion, segment VI:")
    r = rank_text_query("water density, nonenhancing, homogeneous, smooth margin", corpus, k=10)
    top = [diagnoses[i] for i in r.ids[:5]]
    assert top.count("cyst") >= 4, top


def test_cli_search_and_suggest(store, tmp_path):
    if store.location.startswith("http"):
        pytest.skip("the CLI test uses the embedded store folder")
    diagnoses = fill(store)
    store.close()
    runner = CliRunner()
    cli = load_commands()
    args = ["--store", store.location]
    res = runner.invoke(cli, [*args, "search", "cystic lesion, no enhancement", "--k", "5", "--group", "diagnosis"])
    assert res.exit_code == 0, res.output
    assert "'cystic'" in res.output and "water density (RID43336)" in res.output
    assert "NOT enhancing (RID6055)" in res.output and "ignored: lesion" in res.output
    assert res.output.count("== ") >= 1
    res = runner.invoke(cli, [*args, "search", "hypodense", "--format", "json", "--k", "3", "--group", "cluster"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert len(data["hits"]) == 3 and data["groups"][0]["best_rank"] == 1
    assert sum(g["size"] for g in data["groups"]) == 3
    case_id = next(iter(diagnoses))
    res = runner.invoke(cli, [*args, "suggest", "--case", case_id, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["diagnosis"] in set(diagnoses.values()) and 0 < data["confidence"] <= 1
    assert "Decision support" in data["disclaimer"]
    res = runner.invoke(cli, [*args, "suggest", "--case", "nope"])
    assert res.exit_code == 1 and "no case 'nope'" in res.output
    res = runner.invoke(cli, [*args, "search", "  "])
    assert res.exit_code == 1 and "empty" in res.output
