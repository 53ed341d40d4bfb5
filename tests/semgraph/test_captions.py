"""Captions (text by hand, deterministic, stored atomically) and the synonym graph round trip."""

from __future__ import annotations

import datetime as dt

import pytest
from rdflib import URIRef

import ontology
from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput
from semgraph.graph.casegraph import Annotation, Case, annotation_stamps, write_case
from semgraph.text.captions import caption, read_captions, write_captions
from semgraph.text.synonyms import (
    SYNONYMS_GRAPH,
    Synonym,
    bundled_synonyms,
    read_synonyms,
    write_synonyms,
)
from semgraph.text.textquery import Vocabulary, parse_text

R = "http://radlex.org/RID/"


def values(*rids, low=0.2):
    on = set(rids)
    return {t.iri: (0.8 if t.rid in on else low) for t in paper_terms()}


CASE = Case("C1", "P1", "S1", diagnosis="cyst", study_date=dt.date(2021, 3, 4), age=54, sex="F",
            contrast_phase="portal venous", liver_segment="VI")


def test_caption_by_hand():
    text = caption(values("RID5707", "RID5714", "RID43336", "RID6056", "RID6059"), metadata=CASE)
    assert text == ("Liver lesion, segment VI: circumscribed, smooth margin; water density; nonenhancing; "
                    "homogeneous. Portal venous phase. 54-year-old woman, 2021-03-04.")


def test_caption_threshold_is_strict_and_metadata_optional():
    v = values("RID6042")
    v[R + "RID6055"] = 0.5
    assert caption(v) == "Liver lesion: hypodense."
    assert caption(v, threshold=0.4) == "Liver lesion: hypodense; enhancing."
    assert caption(None, metadata={"sex": "M"}) == "Liver lesion. Man."
    assert caption(values()) == "Liver lesion."


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), "0.5", True])
def test_caption_rejects_bad_threshold(bad):
    with pytest.raises(InvalidInput):
        caption(values(), threshold=bad)


def test_caption_rejects_bad_vector():
    with pytest.raises(InvalidInput):
        caption([0.5, 0.5])
    with pytest.raises(InvalidInput):
        caption([float("nan")] * len(paper_terms()))


def test_caption_words_parse_back_to_the_terms():
    """The caption's findings, parsed as a query, name the same terms (captions and queries share a vocabulary)."""
    v = values("RID5715", "RID5709", "RID43337", "RID6055", "RID34389", "RID39457", "RID6060", "RID43327")
    q = parse_text(caption(v).split(":", 1)[1], implications=False)
    assert {t for t, x in zip(q.terms, q.vector) if x == 1} == {t for t, x in v.items() if x > 0.5}


def test_write_captions_replaces_old_ones_in_one_update(store):
    write_case(store, CASE, [Annotation("reader", values("RID43336", "RID6056"))])
    write_case(store, Case("C2", "P2", "S2", liver_segment="II"), [])
    out = write_captions(store)
    assert out == {"C1": "Liver lesion, segment VI: water density; nonenhancing. Portal venous phase. "
                         "54-year-old woman, 2021-03-04.",
                   "C2": "Liver lesion, segment II."}
    assert read_captions(store) == out
    write_case(store, CASE, [Annotation("reader", values("RID6042"))], replace=True)
    again = write_captions(store)
    assert again["C1"].startswith("Liver lesion, segment VI: hypodense.")
    n = store.select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?c sg:caption ?x } }")[0]["n"]
    assert int(n) == 2  # old captions removed, one per case
    stamps = annotation_stamps(store)
    assert write_captions(store) == again  # deterministic
    assert len(stamps) == 1 and annotation_stamps(store) not in ([], stamps)  # caches derived from it see a change


def test_synonyms_round_trip_and_curator_edit(store):
    ontology.load(store, "radlex-liver")
    n = write_synonyms(store)
    assert n == len({(s.rid, s.synonym) for s in bundled_synonyms()})
    stored = read_synonyms(store)
    assert "well-circumscribed" in stored[R + "RID5707"]
    # a curator adds a synonym with SPARQL; the parser picks it up from the store
    store.update('INSERT DATA { GRAPH $g { rid:RID6042 skos:altLabel "darker than liver"@en } }',
                 {"g": URIRef(SYNONYMS_GRAPH)})
    vocab = Vocabulary.from_store(store)
    assert parse_text("darker than liver", vocab).vector.sum() == 1
    assert parse_text("darker than liver").vector.sum() == 0  # not in the shipped list
    # writing again replaces the graph (the curator's edit is gone)
    write_synonyms(store, [Synonym("RID6042", "dark")])
    assert read_synonyms(store) == {R + "RID6042": ["dark"]}


def test_write_synonyms_rejects_bad_rows_and_writes_nothing(store):
    with pytest.raises(InvalidInput):
        write_synonyms(store, [("RID1", "x")])
    assert read_synonyms(store) == {}
