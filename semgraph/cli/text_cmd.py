"""``semgraph search TEXT`` (= ``semgraph query --text TEXT``): free-text search with fused ranking, filters and
grouping; ``semgraph suggest --case ID``.

The search itself is the use case :func:`semgraph.usecases.text_search.text_search` (the web's text search calls it
too); :func:`text_search` here loads it from the store and prints its result, and ``query --text`` / ``--note`` call
it.
"""

from __future__ import annotations

import json

import click

from semgraph.cli import State, cli, collection_option, handle_errors
from semgraph.config import DEFAULT_K
from semgraph.retrieval.engine import Engine, Filters
from semgraph.retrieval.grouping import GROUPINGS
from semgraph.retrieval.suggest import DISCLAIMER
from semgraph.usecases import text_search as usecase


def _match_lines(query) -> list[str]:
    lines = []
    for m in query.matches:
        rid = m.term.rsplit("/", 1)[-1]
        if m.source == "complement":
            lines.append(f"  {m.words!r:<32} → {m.label} ({rid}), complement of a negated term")
        else:
            lines.append(f"  {m.words!r:<32} → {'NOT ' if m.negated else ''}{m.label} ({rid})")
    return lines


def _index(state: State, collection: str | None) -> usecase.TextIndex:
    """The text index of the collection: its engine, vocabulary and captions (one load of the store)."""
    with state.config.open_store(read_only=True) as store:
        engine = Engine.from_store(store, collection=state.collection(store, collection))
        return usecase.TextIndex.from_store(store, engine)


def text_search(state: State, text: str, *, k: int = DEFAULT_K, group_by: str | None = None, w_img: float = 0.7,
                all_terms: bool = False, fmt: str = "table", filters=(), vector=None, exclude: str | None = None,
                collection: str | None = None) -> None:
    """Rank the store's cases by the fused text ranking and print it (shared by ``search`` and ``query --text``).

    Prints which words matched which terms and which were ignored, the fused-score formula and the hits (grouped
    with ``group_by``); ``fmt='json'`` prints one JSON object instead (the web API's, without ``chips``). ``filters``
    are filter texts as ``semgraph query --filter`` takes them; only the cases they allow are ranked. With ``vector``
    (a case's or an image region's likelihoods) ``text`` is a note on that query: the image channel is HSBD to
    ``vector`` and the text channel compares the note with the captions (``query --note``); ``exclude`` leaves the
    query case out.
    """
    index = _index(state, collection)
    result = usecase.text_search(index, text, w_img=w_img, k=k, filters=list(filters), group_by=group_by,
                                 all_terms=all_terms, vector=vector, exclude=() if exclude is None else (exclude,))
    if fmt == "json":
        out = result.as_dict()
        if out["groups"] is None:
            del out["groups"]
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    q = result.query
    click.echo("matched:" if q.matches else "matched: nothing (ranking by caption text only)")
    for line in _match_lines(q):
        click.echo(line)
    click.echo(f"ignored: {', '.join(q.ignored) if q.ignored else '-'}")
    click.echo(f"caption text compared: {result.caption_text or '(none)'}")
    if result.filters != Filters():
        click.echo(f"filters: {'; '.join(usecase.describe_filters(result.filters))} "
                   f"({result.candidates} case{'s' * (result.candidates != 1)} allowed)")
    scope = "mentioned categories" if result.masked else "all terms"
    click.echo(f"score = {result.w_img:.2f} · HSBD similarity ({scope}) + {result.w_txt:.2f} · caption similarity")
    if not result.hits:
        click.echo("no case matches")
        return
    by_id = {h.case_id: h for h in result.hits}

    def row(h) -> str:
        return (f"  {h.rank:>3}  {h.case_id:<14} {h.score:.3f}  img {h.sim_img:.3f}  txt {h.sim_txt:.3f}  "
                f"{h.diagnosis or '-':<26} {h.caption}")

    if result.groups is None:
        click.echo("  rank case           score  components              diagnosis                  caption")
        for h in result.hits:
            click.echo(row(h))
        return
    for g in result.groups:
        click.echo(f"== {g.key}: {g.size} case{'s' * (g.size != 1)}, best rank {g.best_rank}, "
                   f"best score {g.best_score:.3f}")
        for m in g.members:
            click.echo(row(by_id[m.case_id]))


@cli.command()
@click.argument("text")
@click.option("--k", "k", default=DEFAULT_K, show_default=True, type=click.IntRange(1, 1000),
              help="Number of results.")
@click.option("--group", "group_by", type=click.Choice(GROUPINGS), default=None,
              help="Group the results by diagnosis, patient or cluster (top groups first).")
@click.option("--w-img", default=0.7, show_default=True, type=click.FloatRange(0, 1),
              help="Weight of the term-vector (HSBD) channel; the caption-text channel gets 1 − w-img.")
@click.option("--all-terms", is_flag=True, help="Compare every term in HSBD, not only the mentioned categories.")
@click.option("--filter", "filters", multiple=True, metavar="FILTER",
              help="Rank only the cases this filter allows (repeatable), as `semgraph query --filter` takes it: "
                   "diagnosis=cyst,hcc; term:hypodense>0.5; age=40-70; sex=F; date=2020-01-01..2021-12-31; "
                   "phase=...; segment=...; exclude-patient=P1,P2.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@collection_option
@click.pass_obj
@handle_errors
def search(state: State, text: str, k: int, group_by: str | None, w_img: float, all_terms: bool, filters,
           fmt: str, collection: str | None) -> None:
    """Search cases by a free-text description, e.g. "well-defined hypodense lesion, no enhancement".

    Shows which words matched which RadLex terms (and which were ignored), then the ranking by
    w-img · HSBD similarity + (1 − w-img) · caption similarity. Same as ``semgraph query --text``.
    """
    text_search(state, text, k=k, group_by=group_by, w_img=w_img, all_terms=all_terms, fmt=fmt,
                filters=filters, collection=collection)


@cli.command()
@click.option("--case", "case_id", required=True, help="Id of the case to suggest a diagnosis for.")
@click.option("--k", "k", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Number of similar cases that vote.")
@click.option("--include-same-patient", is_flag=True, help="Let the patient's other cases vote too.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@collection_option
@click.pass_obj
@handle_errors
def suggest(state: State, case_id: str, k: int, include_same_patient: bool, fmt: str, collection: str | None) -> None:
    """Suggest a diagnosis for a case from its most similar cases (decision support only)."""
    s = usecase.case_suggestion(_index(state, collection), case_id, k=k,
                                include_same_patient=include_same_patient).suggestion
    if fmt == "json":
        click.echo(json.dumps({"case": case_id, **s.as_dict()}, indent=2))
        return
    click.echo(DISCLAIMER)
    if s.diagnosis is None:
        click.echo("no suggestion: no similar case with a diagnosis")
        return
    click.echo(f"suggested: {s.diagnosis} (confidence {s.confidence:.2f}, top {s.k} similar cases of other "
               f"patients)" if not include_same_patient else
               f"suggested: {s.diagnosis} (confidence {s.confidence:.2f}, top {s.k} similar cases)")
    for d, share in s.votes.items():
        click.echo(f"  {d:<28} {share:.2f}")
    click.echo(f"evidence: {', '.join(s.evidence)}")
