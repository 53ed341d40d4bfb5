"""``semgraph collection list`` and ``semgraph collection show``: the collections of a store and their terms."""

from __future__ import annotations

import json

import click

from kg.namespaces import ANNOTATIONS_GRAPH
from semgraph.cli import State, cli, handle_errors

_COUNTS = "SELECT ?c (COUNT(?case) AS ?n) WHERE { GRAPH $a { ?case a sg:Case ; sg:inCollection ?c } } GROUP BY ?c"
_ALL = "SELECT (COUNT(?case) AS ?n) WHERE { GRAPH $a { ?case a sg:Case } }"


def _case_counts(store, collections) -> dict[str, int]:
    """Cases per collection (every case of the store for the stand-in liver collection of an older store)."""
    if any(not c.stored for c in collections):
        return {c.name: int(store.select(_ALL, {"a": ANNOTATIONS_GRAPH})[0]["n"]) for c in collections}
    counts = {str(r["c"]): int(r["n"]) for r in store.select(_COUNTS, {"a": ANNOTATIONS_GRAPH})}
    return {c.name: counts.get(str(c.iri), 0) for c in collections}


@cli.group(name="collection")
def collection_group() -> None:
    """Collections: named sets of cases with their ontology, terms and categories."""


@collection_group.command(name="list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
@handle_errors
def collection_list(state: State, fmt: str) -> None:
    """List the collections of the store with their number of cases and terms."""
    from semgraph.graph.collection import bundled, stored_collections

    with state.config.open_store(read_only=True) as store:
        collections = stored_collections(store) or [bundled()]
        counts = _case_counts(store, collections)
    if fmt == "json":
        click.echo(json.dumps([{**c.as_dict(), "cases": counts[c.name]} for c in collections], indent=2,
                              ensure_ascii=False))
        return
    for c in collections:
        note = "" if c.stored else "  (bundled definition; not stored yet)"
        click.echo(f"{c.name:<20} {counts[c.name]:>8,} cases {len(c):>4} terms  ontology {c.ontology or '-'}  "
                   f"{c.title}{note}")


@collection_group.command(name="show")
@click.argument("name", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
@handle_errors
def collection_show(state: State, name: str | None, fmt: str) -> None:
    """Show a collection's terms in vector order with their categories (default: the only collection)."""
    with state.config.open_store(read_only=True) as store:
        c = state.collection(store, name)
        cases = _case_counts(store, [c])[c.name]
    if fmt == "json":
        click.echo(json.dumps({**c.as_dict(), "cases": cases}, indent=2, ensure_ascii=False))
        return
    click.echo(f"{c.name}: {c.title or '-'} · {cases:,} cases · ontology {c.ontology or '-'} · modality "
               f"{c.modality or '-'} · captions begin {c.case_label!r}")
    if c.term_root:
        click.echo(f"categories: the branches under {c.term_root}")
    width = max(len(lab) for lab in c.labels)
    for i, (term, label, category) in enumerate(zip(c.terms, c.labels, c.categories)):
        click.echo(f"{i:>3}  {label:<{width}}  {category:<30}  {term}")
