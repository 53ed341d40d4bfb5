"""``semgraph sparql``: run a SPARQL query on the configured store."""

from __future__ import annotations

import sys

import click
from rdflib import URIRef

import kg
from kg import results
from semgraph.cli import State, cli, handle_errors

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
@click.option("--endpoint", metavar="URL", help="Send QUERY to this SPARQL endpoint instead of opening the store: "
              "a running `semgraph serve`'s http://HOST:PORT/sparql (which holds its store folder), or any SPARQL "
              "1.1 query URL.")
@click.pass_obj
@handle_errors
def sparql(state: State, query: str, fmt: str, literals: tuple[str, ...], iris: tuple[str, ...],
           endpoint: str | None) -> None:
    """Run QUERY (text, @FILE, or - for standard input) on the store and print the result.

    Values are bound to $NAME parameters, never pasted into the query:

        semgraph sparql 'SELECT ?t WHERE { ?t rdfs:label ?l FILTER(STR(?l) = $l) }' --param l=hypodense

    The default graph is the union of all named graphs; common prefixes (rdf, rdfs, owl, xsd, skos, prov,
    dcterms, sg, rid) are predeclared. The store is opened read-only; a store folder that `semgraph serve` holds
    is read through its endpoint: --endpoint http://HOST:PORT/sparql.
    """
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise click.BadParameter(f"{endpoint!r} is not an http(s):// URL", param_hint="--endpoint")
    if query == "-":
        query = sys.stdin.read()
    elif query.startswith("@"):
        with open(query[1:], encoding="utf-8") as handle:
            query = handle.read()
    # an http(s) URL opened read-only is a kg.remote.RemoteStore without an update URL
    store = (kg.open_store(endpoint, read_only=True, timeout=state.config.timeout) if endpoint is not None
             else state.config.open_store(read_only=True))
    with store:
        result = store.query(query, _parse_bindings(literals, iris))
    if result.graph is not None:
        click.echo(result.graph.serialize(format="turtle"))
    else:
        click.echo(_FORMATS[fmt](result), nl=fmt == "table")

