"""The text helpers of the query page in kg/sparql.py: adding LIMIT/OFFSET for paging, naming an undeclared prefix,
the prefixes a text declares; each result checked against a real store where it matters."""

from __future__ import annotations

import pytest

import kg
from kg.sparql import PREFIXES, declared_prefixes, undeclared_prefix, with_page


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    opened = kg.open_store(tmp_path_factory.mktemp("paging") / "graph")
    numbers = " ".join(f"<urn:s> <urn:p> {n} ." for n in range(1, 8))
    opened.update(f"INSERT DATA {{ GRAPH <urn:g> {{ {numbers} }} }}")
    yield opened
    opened.close()


def _numbers(store, query: str) -> list[int]:
    return [int(row["n"]) for row in store.select(query)]


def test_a_page_is_appended_on_a_line_of_its_own(store):
    query = "SELECT ?n WHERE { ?s <urn:p> ?n } ORDER BY ?n # a final comment"
    paged = with_page(query, 3, 2)
    assert paged == query + "\nLIMIT 3 OFFSET 2"
    assert _numbers(store, paged) == [3, 4, 5]
    assert _numbers(store, with_page(query, 3, 6)) == [7]
    assert _numbers(store, with_page(query, 3, 7)) == []


def test_a_page_goes_before_a_trailing_values_block(store):
    query = "SELECT ?n WHERE { ?s <urn:p> ?n } ORDER BY DESC(?n) VALUES ?n { 2 5 6 }"
    paged = with_page(query, 2, 1)
    assert paged == "SELECT ?n WHERE { ?s <urn:p> ?n } ORDER BY DESC(?n) LIMIT 2 OFFSET 1 VALUES ?n { 2 5 6 }"
    assert _numbers(store, paged) == [5, 2]


@pytest.mark.parametrize("query", [
    "SELECT ?n WHERE { ?s ?p ?n } LIMIT 4",
    "SELECT ?n WHERE { ?s ?p ?n } offset 2",
])
def test_a_query_with_its_own_limit_or_offset_is_left_alone(query):
    assert with_page(query, 10, 0) is None


@pytest.mark.parametrize("query", [
    "SELECT ?n WHERE { { SELECT ?n WHERE { ?s ?p ?n } LIMIT 3 } }",  # a subquery's LIMIT is not the query's
    'SELECT ?n WHERE { ?s ?p ?n FILTER(?n != "LIMIT 3") }',  # nor one in a string
    "SELECT ?n WHERE { ?s <urn:LIMIT> ?n } # LIMIT 3",  # nor one in an IRI or a comment
])
def test_limit_inside_braces_strings_iris_and_comments_does_not_count(query):
    assert with_page(query, 10, 0) == query + "\nLIMIT 10 OFFSET 0"


def test_the_undeclared_prefix_is_named_with_its_position():
    assert undeclared_prefix("SELECT * WHERE {\n  ?s foo:bar ?o }") == ("foo", 2, 6)
    assert undeclared_prefix("SELECT * WHERE { ?s :bar ?o }") == ("", 1, 21)  # the empty prefix
    declared = "PREFIX ex: <http://example.org/>\nSELECT * WHERE { ?s ex:a _:b ; rdfs:label 'x:y' ; <urn:a:b> ?o }"
    assert undeclared_prefix(declared) is None
    assert undeclared_prefix("SELECT * WHERE { ?s ?p ?o } # nope:x") is None


def test_declared_prefixes_are_the_predeclared_and_the_texts_own():
    prefixes = declared_prefixes("PREFIX ex: <http://example.org/>\nPREFIX rid: <urn:rid:>\n# PREFIX no: <urn:no>\n"
                                 "SELECT * WHERE { ?s ?p ?o }")
    assert prefixes == {**PREFIXES, "ex": "http://example.org/", "rid": "urn:rid:"}
