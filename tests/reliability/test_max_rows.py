"""``max_rows`` on both backends: query() keeps at most N rows and flags the rest; select() refuses to cut."""

from __future__ import annotations

import pytest

from kg.errors import QueryError, ResultTooLargeError


@pytest.fixture
def fifty(store):
    body = " ".join(f"<urn:x:s{i}> <urn:x:p> {i} ." for i in range(50))
    store.update("INSERT DATA { GRAPH <urn:x:g> { " + body + " } }")
    return store


def test_query_keeps_n_rows_and_sets_truncated(fifty):
    q = "SELECT ?s ?o WHERE { ?s <urn:x:p> ?o }"
    cut = fifty.query(q, max_rows=10)
    assert (len(cut.rows), cut.truncated, cut.variables) == (10, True, ["s", "o"])
    exact = fifty.query(q, max_rows=50)
    assert (len(exact.rows), exact.truncated) == (50, False)
    assert {int(r["o"]) for r in exact.rows} == set(range(50))
    assert fifty.query(q).truncated is False and len(fifty.query(q).rows) == 50


def test_select_refuses_instead_of_cutting(fifty):
    q = "SELECT ?s WHERE { ?s <urn:x:p> ?o }"
    assert len(fifty.select(q, max_rows=50)) == 50
    with pytest.raises(ResultTooLargeError, match="more than 49") as info:
        fifty.select(q, max_rows=49)
    assert isinstance(info.value, QueryError) and info.value.max_rows == 49


def test_construct_is_capped_in_triples(fifty):
    r = fifty.query("CONSTRUCT { ?s <urn:x:q> ?o } WHERE { ?s <urn:x:p> ?o }", max_rows=7)
    assert (len(r.graph), r.truncated) == (7, True)
    assert fifty.query("ASK { ?s <urn:x:p> 3 }", max_rows=1).boolean is True


@pytest.mark.parametrize("bad", [0, -1, 2.5, "10", True])
def test_bad_max_rows(fifty, bad):
    with pytest.raises(QueryError, match="max_rows"):
        fifty.query("SELECT * WHERE { ?s ?p ?o }", max_rows=bad)
