"""``semgraph demo``: build the demo data folder if missing and summarise it."""

from __future__ import annotations

import click

import ontology
from ontology.paper_terms import paper_terms

from . import State, cli, handle_errors


@cli.command()
@click.pass_obj
@handle_errors
def demo(state: State) -> None:
    """Create the data folder with the bundled RadLex liver subset (if not there yet) and print a summary."""
    with state.config.open_store() as store:
        if ontology.BUNDLED_RADLEX not in {info.name for info in ontology.catalog(store)}:
            click.echo(f"loading the bundled RadLex liver subset into {state.config.store_location} ...")
            ontology.load(store, ontology.BUNDLED_RADLEX)
        info = next(i for i in ontology.catalog(store) if i.name == ontology.BUNDLED_RADLEX)
        h = ontology.hierarchy(store, info.name)
        terms = paper_terms()
        matrix = ontology.dissimilarity_matrix(store, [t.iri for t in terms], ontology=info.name)
        graphs = store.graphs()
    click.echo(f"store:      {state.config.store_location} ({len(graphs)} named graph{'s' * (len(graphs) != 1)})")
    click.echo(f"ontology:   {info.name}: {len(h):,} RadLex classes, {info.triples:,} triples, graph <{info.graph}>")
    click.echo(f"vocabulary: {len(terms)} liver-lesion terms, all in the hierarchy")
    i, j = divmod(int(matrix.argmax()), len(terms))
    pairs = [(matrix[a, b], a, b) for a in range(len(terms)) for b in range(a + 1, len(terms))]
    close = min(pairs)
    click.echo(f"δΘ (kurtz): closest pair {terms[close[1]].label} ↔ {terms[close[2]].label} = {close[0]:.3f}; "
               f"farthest {terms[i].label} ↔ {terms[j].label} = {matrix[i, j]:.3f}")
    click.echo("next:       semgraph ontology info radlex-liver | semgraph ontology dissimilarity "
               "'irregular margin' 'lobulated margin' | semgraph sparql 'SELECT ...'")
