"""Parameter binding and query-form detection (no store needed)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rdflib import BNode, Literal, URIRef

from kg.errors import QueryError
from kg.sparql import (
    bind,
    check_nesting,
    outbound_operations,
    query_form,
    to_oxigraph,
    to_rdflib,
)


def test_bind_leaves_strings_iris_comments_and_variables_alone():
    template = 'SELECT ?x WHERE { ?x <http://e/$a> "$a" ; <http://e/p> \'$a\' , """$a""" , $a } # $a'
    out = bind(template, {"a": 7})
    # the declared prefixes stand before the caller's text, on its first line
    assert out.endswith(' SELECT ?x WHERE { ?x <http://e/$a> "$a" ; <http://e/p> \'$a\' , """$a""" , '
                        '"7"^^<http://www.w3.org/2001/XMLSchema#integer> } # $a')
    assert len(out.splitlines()) == 1


def test_bind_typed_values():
    out = bind("ASK { ?s ?p $i . ?s ?p $f . ?s ?p $b . ?s ?p $d . ?s ?p $l . ?s ?p $u }", {
        "i": 3, "f": 0.5, "b": True, "d": dt.date(2024, 1, 2), "l": Literal("chat", lang="fr"),
        "u": URIRef("http://e/x")})
    assert '"3"^^<http://www.w3.org/2001/XMLSchema#integer>' in out
    assert '"0.5"^^<http://www.w3.org/2001/XMLSchema#double>' in out
    assert '"true"^^<http://www.w3.org/2001/XMLSchema#boolean>' in out
    assert '"2024-01-02"^^<http://www.w3.org/2001/XMLSchema#date>' in out
    assert '"chat"@fr' in out and "<http://e/x>" in out


def test_plain_string_is_a_literal_not_an_iri():
    assert bind("ASK { $s ?p ?o }", {"s": "http://e/x"}).endswith(' ASK { "http://e/x" ?p ?o }')


@given(st.text())
def test_literal_round_trip_through_term_conversion(text):
    assert to_rdflib(to_oxigraph(text)) == Literal(text)


def test_blank_node_round_trip():
    node = BNode("b1")
    assert to_rdflib(to_oxigraph(node)) == node


@pytest.mark.parametrize("query, form", [
    ("SELECT * {}", "select"),
    ("# comment with ASK\nPREFIX a: <http://e/#>\nBASE <http://e/>\n  construct {} where {}", "construct"),
    ("ask {}", "ask"),
    ("PREFIX : <http://e/>\nDESCRIBE :x", "describe"),
])
def test_query_form(query, form):
    assert query_form(query) == form


def test_query_form_rejects_updates():
    with pytest.raises(QueryError, match="not a SPARQL query"):
        query_form("DELETE WHERE { ?s ?p ?o }")


@pytest.mark.parametrize("text, found", [
    ("SELECT * WHERE { SERVICE <http://x/> { ?s ?p ?o } }", ["SERVICE"]),
    ("select * { service silent ?endpoint {} }", ["SERVICE"]),
    ("SELECT*{SERVICE<x:y>{?s?p?o}}", ["SERVICE"]),
    ("LOAD <http://x/data.ttl> INTO GRAPH <urn:g> ; LOAD SILENT <file:///etc/passwd>", ["LOAD", "LOAD"]),
    ("INSERT { ?s ?p ?o } WHERE { Service <http://x/> { ?s ?p ?o } }", ["SERVICE"]),
    # not operations: a variable, prefixed names, a string, an IRI, a comment, a blank node label
    ('SELECT ?service WHERE { ?s ex:load "SERVICE" . <http://x/LOAD> service:a _:service } # SERVICE', []),
    ("SELECT $load WHERE { ?x ex:SERVICE ?load }", []),
])
def test_outbound_operations(text, found):
    assert outbound_operations(text) == found


@pytest.mark.parametrize("text, deepest", [
    ("ASK {}", 1), ("SELECT * { { ?s ?p ?o } UNION { ?s ?p (?o) } }", 3),
    ('SELECT * { ?s ?p "{{{{{{{{" } # ((((((((', 1), ("SELECT * { ?s <urn:x:(((((> ?o }", 1),
])
def test_check_nesting_counts_only_brackets_of_the_query(text, deepest):
    check_nesting(text, limit=deepest)
    with pytest.raises(QueryError, match=f"nests brackets {deepest} deep; the limit is {deepest - 1}"):
        check_nesting(text, limit=deepest - 1)
