"""``semgraph search TEXT`` (= ``semgraph query --text TEXT``): free-text search with fused ranking and grouping;
``semgraph suggest --case ID``.

:func:`text_search` is the one implementation of the text ranking and its printing; ``query --text`` calls it.
"""

from __future__ import annotations

import json

import click

from semgraph.cli import State, cli, collection_option, handle_errors
from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput
from semgraph.retrieval.fusion import Corpus, rank_noted_query, rank_text_query
from semgraph.retrieval.grouping import GROUPINGS, group
from semgraph.retrieval.suggest import DISCLAIMER, suggest_for_vector
from semgraph.text.textquery import Vocabulary


def _match_lines(query) -> list[str]:
    lines = []
    for m in query.matches:
        rid = m.term.rsplit("/", 1)[-1]
        if m.source == "complement":
            lines.append(f"  {m.words!r:<32} → {m.label} ({rid}), complement of a negated term")
        else:
            lines.append(f"  {m.words!r:<32} → {'NOT ' if m.negated else ''}{m.label} ({rid})")
    return lines


def _load(store, collection):
    vocab = Vocabulary.from_store(store, collection=collection)
    return vocab, Corpus.from_store(store, vocab, collection=collection)


def _candidates(store, filters, corpus, collection) -> list[str] | None:
    """Ids of the corpus cases the filters allow (None: no filter, every case is a candidate)."""
    from semgraph.retrieval.engine import Engine, Filters

    if not filters:
        return None
    engine = Engine.from_store(store, collection=collection)
    allowed = engine.mask(Filters.coerce(list(filters)))
    ids = list(engine.ids) if allowed is None else [i for i, ok in zip(engine.ids, allowed) if ok]
    known = set(corpus.ids)
    return [i for i in ids if i in known]


def text_search(state: State, text: str, *, k: int = DEFAULT_K, group_by: str | None = None, w_img: float = 0.7,
                all_terms: bool = False, fmt: str = "table", filters=(), vector=None, exclude: str | None = None,
                collection: str | None = None) -> None:
    """Rank the store's cases by the fused text ranking and print it (shared by ``search`` and ``query --text``).

    Prints which words matched which terms and which were ignored, the fused-score formula and the hits (grouped
    with ``group_by``); ``fmt='json'`` prints one JSON object instead. ``filters`` are filter texts as
    ``semgraph query --filter`` takes them; only the cases they allow are ranked. With ``vector`` (a case's or an
    image region's likelihoods) ``text`` is a note on that query: the image channel is HSBD to ``vector`` and the
    text channel compares the note with the captions (``query --note``); ``exclude`` leaves the query case out.
    """
    with state.config.open_store(read_only=True) as store:
        chosen = state.collection(store, collection)
        vocab, corpus = _load(store, chosen)
        candidates = _candidates(store, filters, corpus, chosen)
    if exclude is not None:
        candidates = [i for i in (corpus.ids if candidates is None else candidates) if i != exclude]
    w_txt = round(1.0 - w_img, 12)
    if vector is None:
        ranking = rank_text_query(text, corpus, vocab, w_img=w_img, w_txt=w_txt, masked=not all_terms, k=k,
                                  candidates=candidates)
    else:
        ranking = rank_noted_query(vector, text, corpus, vocab, w_img=w_img, w_txt=w_txt, k=k,
                                   candidates=candidates)
    ids = ranking.ids
    groups = None
    if group_by is not None:
        row = {i: r for r, i in enumerate(corpus.ids)}
        projected = corpus.vectors[[row[i] for i in ids]] @ corpus.projection.T if ids else None
        groups = group(ids, group_by, scores=[h.score for h in ranking.hits], cases=corpus.cases,
                       projected=projected, top=len(ids))
    captions = dict(zip(corpus.ids, corpus.captions))
    if fmt == "json":
        out = {"query": ranking.query.as_dict(), "w_img": ranking.w_img, "w_txt": ranking.w_txt,
               "masked": ranking.masked, "caption_text": ranking.caption_text,
               "hits": [{**h.as_dict(), "diagnosis": getattr(corpus.cases.get(h.case_id), "diagnosis", None),
                         "caption": captions[h.case_id]} for h in ranking.hits]}
        if groups is not None:
            out["groups"] = [g.as_dict() for g in groups]
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    q = ranking.query
    click.echo("matched:" if q.matches else "matched: nothing (ranking by caption text only)")
    for line in _match_lines(q):
        click.echo(line)
    click.echo(f"ignored: {', '.join(q.ignored) if q.ignored else '-'}")
    click.echo(f"caption text compared: {ranking.caption_text or '(none)'}")
    scope = "mentioned categories" if ranking.masked else "all terms"
    click.echo(f"score = {ranking.w_img:.2f} · HSBD similarity ({scope}) + {ranking.w_txt:.2f} · caption similarity")
    if not ranking.hits:
        click.echo("no case matches")
        return
    by_id = {h.case_id: h for h in ranking.hits}

    def row(h) -> str:
        diagnosis = getattr(corpus.cases.get(h.case_id), "diagnosis", None) or "-"
        return (f"  {h.rank:>3}  {h.case_id:<14} {h.score:.3f}  img {h.sim_img:.3f}  txt {h.sim_txt:.3f}  "
                f"{diagnosis:<26} {captions[h.case_id]}")

    if groups is None:
        click.echo("  rank case           score  components              diagnosis                  caption")
        for h in ranking.hits:
            click.echo(row(h))
        return
    for g in groups:
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
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@collection_option
@click.pass_obj
@handle_errors
def search(state: State, text: str, k: int, group_by: str | None, w_img: float, all_terms: bool, fmt: str,
           collection: str | None) -> None:
    """Search cases by a free-text description, e.g. "well-defined hypodense lesion, no enhancement".

    Shows which words matched which RadLex terms (and which were ignored), then the ranking by
    w-img · HSBD similarity + (1 − w-img) · caption similarity. Same as ``semgraph query --text``.
    """
    text_search(state, text, k=k, group_by=group_by, w_img=w_img, all_terms=all_terms, fmt=fmt,
                collection=collection)


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
    with state.config.open_store() as store:
        _, corpus = _load(store, state.collection(store, collection))
    if case_id not in corpus.cases:
        raise InvalidInput(f"no case {case_id!r} with term likelihoods in the store")
    focus = corpus.cases[case_id]
    exclude = [i for i, c in corpus.cases.items() if c.patient_id == focus.patient_id] \
        if not include_same_patient else [case_id]
    row = corpus.ids.index(case_id)
    diagnoses = {i: c.diagnosis for i, c in corpus.cases.items() if c.diagnosis}
    s = suggest_for_vector(corpus.vectors[row], corpus.vectors, list(corpus.ids), diagnoses, corpus.projection,
                           k=k, exclude=exclude)
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
