"""The published sg: vocabulary and the closed namespace stay in step, and every term is documented."""

from __future__ import annotations

import pytest
from rdflib import URIRef
from rdflib.namespace import OWL, RDF, RDFS

from kg.namespaces import SG, vocabulary_graph


def published_terms():
    g = vocabulary_graph()
    ns = str(SG._NS)
    return g, {s for s in g.subjects(RDF.type, None) if isinstance(s, URIRef) and str(s).startswith(ns) and str(s) != ns}


def test_every_namespace_term_is_published_with_label_and_comment():
    g, terms = published_terms()
    declared = {SG[name] for name in SG.__annotations__}
    assert declared == terms
    for term in terms:
        assert g.value(term, RDFS.label) is not None, term
        assert g.value(term, RDFS.comment) is not None, term


def test_classes_reuse_prov_o():
    g, _ = published_terms()
    prov = "http://www.w3.org/ns/prov#"
    for cls, parent in [(SG.FeedbackRound, "Activity"), (SG.TermSimilarity, "Entity"), (SG.TermModel, "SoftwareAgent")]:
        assert (cls, RDFS.subClassOf, URIRef(prov + parent)) in g
    assert (SG.Case, RDF.type, OWL.Class) in g


def test_typo_is_an_attribute_error():
    with pytest.raises(AttributeError):
        SG.Cse  # noqa: B018
