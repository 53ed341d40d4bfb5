"""``semgraph sparql``: run a SPARQL query on the configured store."""

from __future__ import annotations

import sys

import click
from rdflib import URIRef

from kg import results

from . import State, cli, handle_errors

_FORMATS = {"table": results.to_table, "json": results.to_json, "csv": results.to_csv, "tsv": results.to_tsv}


def _parse_bindings(literals: tuple[str, ...], iris: tuple[str, ...]) -> dict:
    bindings: dict = {}
    for pairs, make in ((literals, str), (iris, URIRef)):
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not name:
                raise click.BadParameter(f"{pair!r}: expected NAME=VALUE")
            bindings[name] = make(value)
    return bindings


@cli.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(sorted(_FORMATS)), default="table", show_default=True,
              help="Output for SELECT/ASK (CONSTRUCT and DESCRIBE always print Turtle).")
@click.option("--param", "literals", multiple=True, metavar="NAME=VALUE",
              help="Bind $NAME to a string literal (repeatable).")
@click.option("--iri", "iris", multiple=True, metavar="NAME=IRI", help="Bind $NAME to an IRI (repeatable).")
@click.pass_obj
@handle_errors
def sparql(state: State, query: str, fmt: str, literals: tuple[str, ...], iris: tuple[str, ...]) -> None:
    """Run QUERY (text, @FILE, or - for standard input) on the store and print the result.

    Values are bound to $NAME parameters, never pasted into the query:

        semgraph sparql 'SELECT ?t WHERE { ?t rdfs:label ?l FILTER(STR(?l) = $l) }' --param l=hypodense

    The default graph is the union of all named graphs; common prefixes (rdf, rdfs, owl, xsd, skos, prov,
    dcterms, sg, rid) are predeclared.
    """
    if query == "-":
        query = sys.stdin.read()
    elif query.startswith("@"):
        with open(query[1:], encoding="utf-8") as handle:
            query = handle.read()
    with state.config.open_store(read_only=True) as store:
        result = store.query(query, _parse_bindings(literals, iris))
    if result.graph is not None:
        click.echo(result.graph.serialize(format="turtle"))
    else:
        click.echo(_FORMATS[fmt](result), nl=fmt == "table")

