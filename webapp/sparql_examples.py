"""Ready example queries of the query page, written over the ``sg:`` vocabulary (kg/vocab/sg.ttl).

The common prefixes (rdf rdfs owl xsd skos prov dcterms sg rid) are predeclared by the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from semgraph.graph.rounds import recorded


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    description: str
    query: str


EXAMPLES: tuple[Example, ...] = (
    Example(
        "term-hierarchy", "Terms and their hierarchy",
        "The direct parents of the RadLex terms whose label mentions 'margin'.",
        """SELECT ?term ?label ?parent ?parentLabel WHERE {
  ?term rdfs:label ?label ;
        rdfs:subClassOf ?parent .
  ?parent rdfs:label ?parentLabel .
  FILTER(CONTAINS(LCASE(STR(?label)), "margin"))
}
ORDER BY ?label
LIMIT 50"""),
    Example(
        "ontologies", "Loaded ontologies",
        "What the catalog graph says about each loaded ontology.",
        """SELECT ?name ?graph ?root ?triples WHERE {
  ?graph a sg:OntologyGraph ;
         sg:ontologyName ?name ;
         sg:root ?root .
  OPTIONAL { ?graph sg:tripleCount ?triples }
}"""),
    Example(
        "case-annotations", "Annotations of a case",
        "Every term likelihood of one case, by annotation kind (replace the case label).",
        """SELECT ?kind ?termLabel ?value ?who ?when WHERE {
  ?case a sg:Case ; rdfs:label "case-000001" .
  ?annotation sg:annotates ?case ;
              sg:annotationKind ?kind ;
              sg:likelihood ?l .
  ?l sg:term ?term ; sg:value ?value .
  OPTIONAL { ?term rdfs:label ?termLabel }
  OPTIONAL { ?annotation prov:wasAttributedTo ?who }
  OPTIONAL { ?annotation prov:generatedAtTime ?when }
}
ORDER BY ?kind DESC(?value)"""),
    Example(
        "learned-edges", "Learned edges with their provenance",
        "Term pairs whose dissimilarity was learned from feedback: old and new value, round, user and time.",
        """SELECT ?labelA ?labelB ?previous ?dissimilarity ?round ?user ?time WHERE {
  ?edge a sg:TermSimilarity ;
        sg:kind "learned" ;
        sg:termA ?a ; sg:termB ?b ;
        sg:dissimilarity ?dissimilarity .
  OPTIONAL { ?edge sg:previous ?previous }
  OPTIONAL { ?edge prov:wasGeneratedBy ?round .
             OPTIONAL { ?round prov:startedAtTime ?time } }
  OPTIONAL { ?edge prov:wasAttributedTo ?user }
  OPTIONAL { ?a rdfs:label ?labelA }
  OPTIONAL { ?b rdfs:label ?labelB }
}
ORDER BY DESC(?time)
LIMIT 100"""),
    Example(
        "user-rounds", "The rounds of one user",
        "Recorded feedback rounds of one user with their session, query case and number of marks (replace the "
        "user).",
        f"""SELECT ?session ?round ?number ?queryCase (COUNT(?mark) AS ?marks) WHERE {{
  ?round a sg:FeedbackRound ;
         prov:wasAssociatedWith <https://w3id.org/semgraph/id/user/alice> ;
         sg:session ?session ;
         sg:roundNumber ?number .
  {recorded("round")}
  OPTIONAL {{ ?session sg:queryCase ?queryCase }}
  OPTIONAL {{ ?round sg:mark ?mark }}
}}
GROUP BY ?session ?round ?number ?queryCase
ORDER BY ?session ?number"""),
    Example(
        "update-audit", "Audit trail of SPARQL updates",
        "Who changed the graph through /sparql, and when.",
        """SELECT ?activity ?agent ?time ?text WHERE {
  GRAPH <https://w3id.org/semgraph/graph/audit> {
    ?activity a prov:Activity ;
              prov:wasAssociatedWith ?agent ;
              prov:startedAtTime ?time ;
              prov:used [ prov:value ?text ] .
  }
}
ORDER BY DESC(?time)
LIMIT 50"""),
    Example(
        "graphs", "Named graphs and their size",
        "Each named graph of the store with its number of triples.",
        """SELECT ?graph (COUNT(*) AS ?triples) WHERE {
  GRAPH ?graph { ?s ?p ?o }
}
GROUP BY ?graph
ORDER BY DESC(?triples)"""),
)


def example(key: str) -> Example | None:
    return next((e for e in EXAMPLES if e.key == key), None)
