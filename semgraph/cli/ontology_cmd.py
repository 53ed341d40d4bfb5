"""``semgraph ontology``: load ontologies, describe them, compute term dissimilarities."""

from __future__ import annotations

import click

import ontology
from ontology.measures import MEASURES
from semgraph.cli import State, cli, handle_errors


@cli.group(name="ontology")
def ontology_group() -> None:
    """Load ontologies into the store and query their hierarchy."""


@ontology_group.command(name="load")
@click.argument("source")
@click.option("--name", help="Short name; the graph is .../graph/ontology/NAME (default: from the file name).")
@click.option("--root", metavar="IRI", help="Top class of the hierarchy (default: RID1 for RadLex, else the only "
                                             "class without a parent).")
@click.option("--format", "fmt", help="RDF format when the extension does not tell (turtle, ntriples, xml, ...).")
@click.pass_obj
@handle_errors
def load_command(state: State, source: str, name: str | None, root: str | None, fmt: str | None) -> None:
    """Load SOURCE: an RDF/OWL/SKOS file, a RadLex CSV export, or `radlex-liver` (the bundled subset).

    Loading a name again replaces that ontology, in one atomic write.
    """
    with state.config.open_store() as store:
        info = ontology.load(store, source, name, format=fmt, root=root)
        h = ontology.hierarchy(store, info.name)
    click.echo(f"loaded {info.name!r}: {info.triples:,} triples, {len(h):,} classes under {_show(h, h.root)}, "
               f"{len(h.clusters)} main branches, into <{info.graph}>")


@ontology_group.command(name="info")
@click.argument("name", required=False)
@click.pass_obj
@handle_errors
def info_command(state: State, name: str | None) -> None:
    """List the loaded ontologies, or describe ontology NAME (its main branches and their depths)."""
    with state.config.open_store(read_only=True) as store:
        loaded = ontology.catalog(store)
        if not loaded:
            click.echo("no ontology loaded; try: semgraph ontology load radlex-liver")
            return
        for info in loaded:
            if name not in (None, info.name):
                continue
            h = ontology.hierarchy(store, info.name)
            click.echo(f"{info.name}: {len(h):,} classes, {info.triples:,} triples, root {_show(h, h.root)}, "
                       f"loaded {info.loaded} from {info.source}")
            if name is not None:
                click.echo("  main branches (cluster: classes, deepest level D_c):")
                members: dict[str, int] = {}
                for term in h:
                    if term != h.root:
                        members[h.cluster(term)] = members.get(h.cluster(term), 0) + 1
                for cluster in sorted(members, key=members.get, reverse=True):
                    click.echo(f"    {_show(h, cluster)}: {members[cluster]:,} classes, D_c = {h.cluster_depth(cluster)}")
        if name is not None and name not in {i.name for i in loaded}:
            raise click.ClickException(f"no ontology named {name!r}; loaded: {', '.join(i.name for i in loaded)}")


@ontology_group.command(name="dissimilarity")
@click.argument("term_a")
@click.argument("term_b")
@click.option("--measure", type=click.Choice(sorted(MEASURES)), default="kurtz", show_default=True)
@click.option("--ontology", "name", help="Ontology name (default: the first one holding both terms).")
@click.pass_obj
@handle_errors
def dissimilarity_command(state: State, term_a: str, term_b: str, measure: str, name: str | None) -> None:
    """Ontological dissimilarity of two terms, given as IRIs, RadLex ids (RID5715) or labels.

    The kurtz and path values are normalised over the pair itself, so a pair of distinct terms gives 1;
    their raw value and the path details are printed too.
    """
    with state.config.open_store(read_only=True) as store:
        h = ontology.hierarchy(store, name) if name else None
        if h is None:
            from ontology.errors import UnknownTermError

            for info in ontology.catalog(store):
                candidate = ontology.hierarchy(store, info.name)
                try:
                    candidate.resolve(term_a), candidate.resolve(term_b)
                except (UnknownTermError, ontology.OntologyError):
                    continue
                h = candidate
                break
            else:
                h = ontology.hierarchy(store)
        a, b = h.resolve(term_a), h.resolve(term_b)
        spec = MEASURES[measure]
        raw = spec.pair(h, a, b, 1.0) if a != b else 0.0
        path, lca = h.path_and_lca(a, b)
    click.echo(f"{measure}({_show(h, a)}, {_show(h, b)}) = {raw:.6f}" + ("  (raw, before normalisation)"
                                                                         if spec.normalised else ""))
    click.echo(f"  path = {path} edges via LCA {_show(h, lca)} (depth {h.depth(lca)}); "
               f"depths {h.depth(a)} and {h.depth(b)}")


def _show(h: ontology.Hierarchy, term: str) -> str:
    label = h.label(term)
    local = term.rsplit("/", 1)[-1]
    return f"{label} [{local}]" if label else local
