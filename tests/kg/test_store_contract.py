"""The store contract, run on both backends and on a second SPARQL server implementation (rdflib-endpoint), so
that the remote store is known to need nothing Oxigraph-specific."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import Dataset, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDFS

from kg import LoadError, QueryError, StoreError

G1 = "https://example.org/graph/one"
G2 = "https://example.org/graph/two"
EX = "https://example.org/"

TTL = """@prefix ex: <https://example.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:a rdfs:label "alpha" ; ex:n 1 .
ex:b rdfs:label "beta"@en ; rdfs:subClassOf ex:a .
ex:c rdfs:label "gamma" ; rdfs:subClassOf ex:b .
"""


@pytest.fixture(params=["embedded", "remote", "second-server"])
def store(request, tmp_path):
    """An empty writable store on each backend, and on the second server (overrides conftest's ``store``)."""
    from conftest import open_backend

    opened = open_backend(request, request.param, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def ttl_file(tmp_path):
    path = tmp_path / "small.ttl"
    path.write_text(TTL)
    return path


def all_quads(store) -> set[tuple]:
    rows = store.select("SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }")
    return {(r["g"], r["s"], r["p"], r["o"]) for r in rows}


def test_load_file_then_query(store, ttl_file):
    assert store.load(ttl_file, G1) == 6
    assert store.graphs() == [G1]
    assert store.count(G1) == 6
    rows = store.select("SELECT ?l WHERE { GRAPH $g { $s <http://www.w3.org/2000/01/rdf-schema#label> ?l } }",
                        {"g": URIRef(G1), "s": URIRef(EX + "b")})
    assert rows == [{"l": Literal("beta", lang="en")}]
    assert store.ask("ASK { GRAPH ?g { ?s ?p $v } }", {"v": 1})
    assert not store.ask("ASK { GRAPH ?g { ?s ?p $v } }", {"v": 2})


def test_select_variables_and_unbound(store, ttl_file):
    store.load(ttl_file, G1)
    result = store.query("SELECT ?s ?n WHERE { GRAPH ?g { ?s ?p ?o OPTIONAL { ?s <https://example.org/n> ?n } } }"
                         " ORDER BY ?s LIMIT 1")
    assert result.form == "select" and result.variables == ["s", "n"]
    assert result.rows == [{"s": URIRef(EX + "a"), "n": Literal(1)}]
    row = store.select("SELECT ?s ?n WHERE { GRAPH ?g { ?s ?p ?o OPTIONAL { ?s <https://example.org/n> ?n } } }"
                       " ORDER BY DESC(?s) LIMIT 1")[0]
    assert row == {"s": URIRef(EX + "c")}


def test_select_values_gives_lexical_values_in_variable_order(store, ttl_file):
    store.load(ttl_file, G1)
    rows = store.select_values("SELECT ?l ?s ?n WHERE { GRAPH $g { ?s rdfs:label ?l "
                               "OPTIONAL { ?s <https://example.org/n> ?n } } } ORDER BY ?s", {"g": URIRef(G1)})
    # an IRI's text, a literal's lexical form without language or datatype, None for an unbound variable
    assert rows == [("alpha", EX + "a", "1"), ("beta", EX + "b", None), ("gamma", EX + "c", None)]
    with pytest.raises(QueryError, match="expected a SELECT query"):
        store.select_values("ASK { ?s ?p ?o }")


def test_construct_returns_graph(store, ttl_file):
    store.load(ttl_file, G1)
    g = store.construct("CONSTRUCT { ?s ?p ?o } WHERE { GRAPH $g { ?s ?p ?o } }", {"g": URIRef(G1)})
    assert isomorphic(g, Graph().parse(data=TTL, format="turtle"))


def test_dump_round_trip(store, ttl_file):
    store.load(ttl_file, G1)
    for fmt, rdflib_fmt in [("turtle", "turtle"), ("ntriples", "nt"), ("xml", "xml"), ("json-ld", "json-ld")]:
        data = store.dump(G1, format=fmt)
        assert isomorphic(Graph().parse(data=data, format=rdflib_fmt), Graph().parse(data=TTL, format="turtle"))


def test_load_rdflib_graph_and_dataset(store):
    g = Graph()
    g.add((URIRef(EX + "x"), RDFS.label, Literal("x")))
    assert store.load(g, G1) == 1
    ds = Dataset()
    ds.graph(URIRef(G1)).add((URIRef(EX + "y"), RDFS.label, Literal("y")))
    ds.graph(URIRef(G2)).add((URIRef(EX + "z"), RDFS.label, Literal("z")))
    assert store.load(ds) == 2
    assert store.graphs() == [G1, G2]
    assert store.count(G1) == 2 and store.count(G2) == 1


def test_replace_swaps_content(store, ttl_file):
    store.load(ttl_file, G1)
    g = Graph()
    g.add((URIRef(EX + "only"), RDFS.label, Literal("only")))
    store.load(g, G1, replace=True)
    assert store.count(G1) == 1
    assert store.ask("ASK { GRAPH $g { ?s ?p \"only\" } }", {"g": URIRef(G1)})


def test_drop_graph(store, ttl_file):
    store.load(ttl_file, G1)
    store.load(ttl_file, G2)
    store.drop(G1)
    assert store.graphs() == [G2]
    store.drop(G1)  # dropping a missing graph is not an error


def test_malformed_file_in_the_middle_writes_nothing(store, ttl_file, tmp_path):
    store.load(ttl_file, G1)
    before = all_quads(store)
    lines = [f"<{EX}s{i}> <{EX}p> \"{i}\" ." for i in range(1000)]
    lines[500] = f"<{EX}s500> <{EX}p> ."  # no object
    bad = tmp_path / "bad.nt"
    bad.write_text("\n".join(lines))
    with pytest.raises(LoadError, match="line 501"):
        store.load(bad, G2)
    with pytest.raises(LoadError, match="line 501"):
        store.load(bad, G1, replace=True)
    assert all_quads(store) == before


def test_rdf_text_as_bytes_loads_with_its_format_and_malformed_text_writes_nothing(store, ttl_file):
    text = f'<{EX}s> <{EX}p> "a \\"quoted\\"\\nline" .\n<{EX}s> <{EX}q> <{EX}o> .\n'.encode()
    assert store.load(text, G1, format="ntriples") == 2
    rows = store.select("SELECT ?o WHERE { GRAPH $g { ?s $p ?o } }", {"g": URIRef(G1), "p": URIRef(EX + "p")})
    assert rows == [{"o": Literal('a "quoted"\nline')}]
    before = all_quads(store)
    with pytest.raises(LoadError, match="format="):
        store.load(text, G2)
    with pytest.raises(LoadError, match="nothing was written"):
        store.load(text + f"<{EX}s> <{EX}p> .\n".encode(), G2, format="ntriples")
    assert all_quads(store) == before


def test_dump_quads_writes_every_named_graph_and_counts_them(store, ttl_file, tmp_path):
    store.load(ttl_file, G1)
    store.load(f'<{EX}x> <{EX}p> "line\\nbreak" .\n'.encode(), G2, format="ntriples")
    out = tmp_path / "all.nq"
    assert store.dump_quads(out) == {G1: 6, G2: 1}
    copy = Dataset()
    copy.parse(out, format="nquads")
    assert {(str(g), str(s), str(p), str(o)) for s, p, o, g in copy.quads((None, None, None, None))} == {
        (str(g), str(s), str(p), str(o)) for g, s, p, o in all_quads(store)}


def test_failing_last_operation_writes_nothing(store, ttl_file, request):
    if request.node.callspec.params["store"] == "second-server":
        # SPARQL 1.1 Update (section 2.2) says a request SHOULD be applied atomically; RDFLib applies operation after
        # operation. docs/deployment.md names this requirement of the store server; strict: we learn when it changes.
        request.applymarker(pytest.mark.xfail(strict=True, reason="rdflib-endpoint applies updates non-atomically"))
    store.load(ttl_file, G1)
    before = all_quads(store)
    with pytest.raises(StoreError):
        store.update(f"INSERT DATA {{ GRAPH <{G2}> {{ <{EX}s> <{EX}p> 1 }} }} ; "
                     f"DELETE DATA {{ GRAPH <{G1}> {{ <{EX}a> <{EX}n> 1 }} }} ; CREATE GRAPH <{G1}>")
    assert all_quads(store) == before


def test_multi_operation_update_lands_whole(store, ttl_file):
    store.load(ttl_file, G1)
    store.update("DELETE WHERE { GRAPH $g { $s ?p ?o } } ; INSERT DATA { GRAPH $g2 { $s $p $v } }",
                 {"g": URIRef(G1), "s": URIRef(EX + "a"), "g2": URIRef(G2), "p": RDFS.label, "v": "new"})
    assert store.count(G1) == 4 and store.count(G2) == 1


INJECTIONS = [
    '" } } ; DROP ALL ; INSERT DATA { GRAPH <x:y> { <x:a> <x:b> "',
    "' } DROP ALL #",
    "\\\" } ; DROP ALL",
    "$g ?s <x:p> \n\r\t\u2028 \U0001F600",
    '"""',
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_literal_bindings_cannot_inject(store, ttl_file, text):
    store.load(ttl_file, G1)
    store.update("INSERT DATA { GRAPH $g { $s $p $v } }", {"g": URIRef(G2), "s": URIRef(EX + "q"), "p": RDFS.label,
                                                            "v": text})
    assert store.count(G1) == 6
    rows = store.select("SELECT ?v WHERE { GRAPH $g { ?s ?p ?v } }", {"g": URIRef(G2)})
    assert rows == [{"v": Literal(text)}]


@given(text=st.text(max_size=40))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_round_trips_as_a_literal(store, text):
    store.update("DROP SILENT GRAPH $g ; INSERT DATA { GRAPH $g { $s $p $v } }",
                 {"g": URIRef(G2), "s": URIRef(EX + "q"), "p": RDFS.label, "v": text})
    assert store.select("SELECT ?v WHERE { GRAPH $g { ?s ?p ?v } }", {"g": URIRef(G2)}) == [{"v": Literal(text)}]
    assert store.ask("ASK { GRAPH ?g { ?s ?p $v } }", {"v": text})


@pytest.mark.parametrize("iri", ["http://a> . } DROP ALL ; <x", "not an iri", "http://a b", 'http://x"y'])
def test_invalid_iri_binding_is_rejected(store, iri):
    with pytest.raises(QueryError, match="cannot use"):
        store.ask("ASK { $s ?p ?o }", {"s": URIRef(iri)})


def test_parameter_errors(store):
    with pytest.raises(QueryError, match=r"\$s is not bound"):
        store.ask("ASK { $s ?p ?o }")
    with pytest.raises(QueryError, match="do not appear"):
        store.ask("ASK { ?s ?p ?o }", {"s": "x"})
    with pytest.raises(QueryError, match="expected a SELECT"):
        store.select("ASK { ?s ?p ?o }")
    with pytest.raises(QueryError):
        store.select("SELECT WHERE nonsense")
    with pytest.raises(QueryError, match="not a SPARQL query"):
        store.query("INSERT DATA { <x:a> <x:b> <x:c> }")


def test_missing_file_and_unknown_format(store, tmp_path):
    with pytest.raises(LoadError, match="no such RDF file"):
        store.load(tmp_path / "nope.ttl", G1)
    odd = tmp_path / "data.weird"
    odd.write_text(TTL)
    with pytest.raises(LoadError, match="cannot tell the RDF format"):
        store.load(odd, G1)
    assert store.load(odd, G1, format="turtle") == 6
    with pytest.raises(LoadError, match="outside a named graph"):
        store.load(odd, format="turtle")


def test_default_graph_is_the_union_of_named_graphs(store, ttl_file):
    store.load(ttl_file, G1)
    store.load(ttl_file, G2)
    rows = store.select("SELECT DISTINCT ?l WHERE { $s <http://www.w3.org/2000/01/rdf-schema#label> ?l }",
                        {"s": URIRef(EX + "a")})
    assert rows == [{"l": Literal("alpha")}]
    assert store.count() == 12


@pytest.mark.parametrize("text, position", [
    ("SELECT * WHERE { ?s ?p }", "1:24"),          # the column of the caller's text, not of the declared prefixes
    ("SELECT *\nWHERE { ?s ?p }", "2:15"),         # and its line numbers
])
def test_syntax_errors_point_into_the_callers_text(store, text, position, request):
    with pytest.raises(QueryError) as error:
        store.select(text)
    found = re.search(r"\b(\d+):(\d+)\b", str(error.value)).group(0)
    line, column = map(int, found.split(":"))
    want_line, want_column = map(int, position.split(":"))
    # Oxigraph points at the offending token or just after it; RDFLib at the start of the clause that failed
    lowest = 1 if request.node.callspec.params["store"] == "second-server" else want_column
    assert line == want_line and lowest <= column <= want_column + 1, str(error.value)


def test_update_syntax_errors_point_into_the_callers_text(store):
    with pytest.raises(QueryError) as error:
        store.update("INSERT DATA { <urn:a> <urn:b> }")
    line, column = map(int, re.search(r"\b(\d+):(\d+)\b", str(error.value)).group(0).split(":"))
    assert line == 1 and column <= len("INSERT DATA { <urn:a> <urn:b> }") + 1, str(error.value)
