"""A standard client, SPARQLWrapper, against the running app over real HTTP."""

from __future__ import annotations

from rdflib import URIRef
from SPARQLWrapper import JSON, POST, TURTLE, XML, SPARQLWrapper

RID = "http://radlex.org/RID/"
QUERY = ("PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
         "SELECT ?l WHERE { <http://radlex.org/RID/RID5715> rdfs:label ?l }")


def _wrapper(site, fmt, query=QUERY, method=None) -> SPARQLWrapper:
    wrapper = SPARQLWrapper(site.url + "/sparql")
    wrapper.setQuery(query)
    wrapper.setReturnFormat(fmt)
    if method:
        wrapper.setMethod(method)
    return wrapper


def test_select_json(site):
    result = _wrapper(site, JSON).queryAndConvert()
    assert [b["l"]["value"] for b in result["results"]["bindings"]] == ["irregular margin"]


def test_select_json_by_post(site):
    result = _wrapper(site, JSON, method=POST).queryAndConvert()
    assert [b["l"]["value"] for b in result["results"]["bindings"]] == ["irregular margin"]


def test_select_xml(site):
    document = _wrapper(site, XML).queryAndConvert()  # an xml.dom.minidom Document
    literals = document.getElementsByTagName("literal")
    assert [node.firstChild.data for node in literals] == ["irregular margin"]


def test_ask(site):
    query = "ASK { <http://radlex.org/RID/RID5715> <http://www.w3.org/2000/01/rdf-schema#subClassOf> " \
            "<http://radlex.org/RID/RID34355> }"
    assert _wrapper(site, JSON, query).queryAndConvert()["boolean"] is True
    query_false = query.replace("RID34355", "RID5709")
    assert _wrapper(site, JSON, query_false).queryAndConvert()["boolean"] is False


def test_construct_turtle(site):
    query = ("CONSTRUCT { ?s <http://www.w3.org/2000/01/rdf-schema#subClassOf> ?o } WHERE { "
             "VALUES ?s { <http://radlex.org/RID/RID5715> } ?s <http://www.w3.org/2000/01/rdf-schema#subClassOf> ?o }")
    data = _wrapper(site, TURTLE, query).queryAndConvert()
    from rdflib import Graph

    graph = Graph().parse(data=data, format="turtle")
    assert set(graph.objects(URIRef(RID + "RID5715"), None)) == {URIRef(RID + "RID34355")}


def test_construct_default_rdfxml(site):
    query = ("CONSTRUCT { ?s <http://www.w3.org/2000/01/rdf-schema#subClassOf> ?o } WHERE { "
             "VALUES ?s { <http://radlex.org/RID/RID5715> } ?s <http://www.w3.org/2000/01/rdf-schema#subClassOf> ?o }")
    wrapper = SPARQLWrapper(site.url + "/sparql")
    wrapper.setQuery(query)
    graph = wrapper.queryAndConvert()  # SPARQLWrapper asks for RDF/XML and parses it into an rdflib Graph
    assert set(graph.objects(URIRef(RID + "RID5715"), None)) == {URIRef(RID + "RID34355")}
