"""``semgraph query``, ``semgraph feedback``, ``semgraph session`` and ``semgraph promote``: retrieval from the
command line, relevance feedback rounds recorded in the graph, and promotion of learned term dissimilarities."""

from __future__ import annotations

import json

import click

from semgraph.cli import State, cli, collection_option, handle_errors
from semgraph.cli.text_cmd import text_search
from semgraph.config import DEFAULT_K
from semgraph.errors import InvalidInput
from semgraph.feedback.algorithms import (
    DEFAULT_ALGORITHM,
    TEXT_ALGORITHM,
    available_algorithms,
)
from semgraph.retrieval.grouping import GROUPINGS

_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
                       help="Output format.")
_K = click.option("--k", "k", type=click.IntRange(min=1), default=DEFAULT_K, show_default=True,
                  help="Number of results.")
_FILTER = click.option("--filter", "filters", multiple=True, metavar="FILTER",
                       help="Restrict the cases searched (repeatable): diagnosis=cyst[,hcc], 'term:hypodense>0.5', "
                            "age=40-70, sex=F, date=2020-01-01..2021-12-31, phase=..., segment=VI, "
                            "exclude-patient=P1.")


def _ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _node_text(contribution, n_terms: int) -> str:
    labels = contribution.labels
    if len(labels) == n_terms and n_terms > 1:
        return "all terms"
    if len(labels) > 3:
        return f"{' + '.join(labels[:2])} + {len(labels) - 2} more"
    return " + ".join(labels)


def _echo_hits(hits, n_terms: int, fmt: str, extra: dict | None = None) -> None:
    if fmt == "json":
        click.echo(json.dumps({**(extra or {}), "results": [h.as_dict() for h in hits]}, indent=2,
                              ensure_ascii=False))
        return
    if not hits:
        click.echo("no case matches")
        return
    width = max(4, *(len(h.case_id) for h in hits))
    click.echo(f"{'rank':>4}  {'case':<{width}}  {'distance':>8}  {'diagnosis':<11} explanation (largest shares)")
    for rank, h in enumerate(hits, start=1):
        why = "; ".join(f"{_node_text(c, n_terms)} {c.value:.2f}" for c in h.explanation)
        click.echo(f"{rank:>4}  {h.case_id:<{width}}  {h.distance:>8.3f}  {h.diagnosis or '-':<11} {why}")


def _engine(state: State, store, collection: str | None):
    """The retrieval engine of the collection; cases left out (no likelihood of its terms) are reported."""
    from semgraph.retrieval.engine import Engine

    engine = Engine.from_store(store, collection=state.collection(store, collection))
    if engine.left_out:
        shown = ", ".join(engine.left_out[:5]) + (" ..." if len(engine.left_out) > 5 else "")
        click.echo(f"warning: {len(engine.left_out)} case(s) of collection {engine.collection.name!r} have no "
                   f"likelihood for any of its terms and are left out: {shown}", err=True)
    return engine


def _load_model(path: str | None, data_dir):
    """The term model at ``path``, else the latest trained one (a clear error saying how to train one)."""
    from semgraph.exchange.saved_models import latest_model
    from semgraph.terms.models import TermModels

    return TermModels.load(path) if path else latest_model(data_dir, required=True)


def _image_query(engine, image, mask, rect, polygon, slice_index, hu_range, model_path, data_dir):
    rois = {name: v for name, v in (("mask", mask), ("rectangle", rect), ("polygon", polygon)) if v}
    if len(rois) != 1:
        raise InvalidInput("--image needs exactly one of --mask FILE, --rect x0,y0,x1,y1 or --polygon JSON")
    if "rectangle" in rois:
        try:
            rois["rectangle"] = tuple(int(v) for v in rect.split(","))
        except ValueError:
            raise InvalidInput(f"--rect {rect!r}: expected four integers x0,y0,x1,y1") from None
    hu = None
    if hu_range:
        try:
            lo, hi = (float(v) for v in hu_range.split(","))
        except ValueError:
            raise InvalidInput(f"--hu-range {hu_range!r}: expected two numbers LOW,HIGH") from None
        hu = (lo, hi)
    from semgraph.terms.ood import check_image_query

    model = _load_model(model_path, data_dir)
    vector = engine.image_vector(image, rois, model=model, slice_index=slice_index, hu_range=hu)
    for warning in check_image_query(image, rois, model, slice_index=slice_index, hu_range=hu):
        click.echo(f"warning ({warning.code}): {warning.message}", err=True)  # the search still runs
    return vector


def _pacs_query(state: State, engine, url: str, uids, seg_uid, mask, rect, polygon, model_path):
    """The query vector of a slice retrieved from the PACS (docs/pacs.md), its region from --seg, --rect or
    --polygon."""
    import tempfile

    from semgraph.exchange.pacs import connect
    from semgraph.exchange.pacs_studies import save_slice

    if not all(uids):
        raise click.UsageError("--dicomweb needs --study, --series and --instance")
    if mask or len([v for v in (seg_uid, rect, polygon) if v]) != 1:
        raise InvalidInput("--dicomweb needs exactly one of --seg UID, --rect x0,y0,x1,y1 or --polygon JSON")
    client = connect(state.config, None if url == "-" else url)
    with tempfile.TemporaryDirectory(prefix="semgraph-pacs-") as folder:
        image, seg_mask = save_slice(client, *uids, folder, seg_uid=seg_uid)
        return _image_query(engine, str(image), seg_mask and str(seg_mask), rect, polygon, None, None, model_path,
                            state.config.data_dir)


@cli.command()
@click.option("--case", "case_id", metavar="ID", help="Query by an indexed case (the case itself is left out).")
@click.option("--terms", metavar="TERM=VALUE,...", help="Query by term likelihoods, e.g. 'hypodense=0.9,RID6042=1'.")
@click.option("--text", metavar="TEXT", help="Query by a free-text description (fused HSBD + caption ranking, as "
                                             "`semgraph search`), e.g. 'hypodense lesion, no enhancement'.")
@click.option("--note", metavar="TEXT", help="With --case, --terms or --image: a text note on the query, fused with "
                                             "it as a text query is (compared with the case captions).")
@click.option("--w-img", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="With --text or --note: weight of the term-vector (HSBD) channel; the caption channel gets "
                   "1 − w-img.")
@click.option("--all-terms", is_flag=True, help="With --text: compare every term in HSBD, not only the mentioned "
                                                "categories.")
@click.option("--group", "group_by", type=click.Choice(GROUPINGS), default=None,
              help="With --text: group the results by diagnosis, patient or cluster.")
@click.option("--image", type=click.Path(dir_okay=False), help="Query by an image (DICOM, NIfTI, PNG) and a ROI.")
@click.option("--mask", type=click.Path(dir_okay=False), help="ROI mask file of --image.")
@click.option("--rect", metavar="x0,y0,x1,y1", help="Rectangular ROI of --image (half-open, pixels).")
@click.option("--polygon", metavar="JSON", help="Polygon ROI of --image: JSON [[x,y],...] or a JSON file.")
@click.option("--slice", "slice_index", type=int, help="Slice of a multi-slice --image.")
@click.option("--hu-range", metavar="LOW,HIGH", help="HU values of the darkest and brightest pixel of a PNG/TIFF.")
@click.option("--model", "model_path", metavar="PATH", help="Term model for --image and --dicomweb (default: the "
                                                             "latest trained).")
@click.option("--dicomweb", metavar="URL", help="Query by a slice of a PACS (DICOMweb root; '-' for the dicomweb_url "
                                                "setting): --study, --series, --instance and a region (--rect, "
                                                "--polygon or --seg).")
@click.option("--study", "study_uid", metavar="UID", help="With --dicomweb: the study of the slice.")
@click.option("--series", "series_uid", metavar="UID", help="With --dicomweb: the series of the slice.")
@click.option("--instance", "sop_uid", metavar="UID", help="With --dicomweb: the slice (SOP Instance UID).")
@click.option("--seg", "seg_uid", metavar="UID", help="With --dicomweb: the region from this DICOM SEG, RTSTRUCT or SR "
                                                      "(SOP Instance UID) of the same study.")
@click.option("--exclude-same-patient", is_flag=True, help="With --case: leave out the query patient's cases.")
@collection_option
@_K
@_FILTER
@_FORMAT
@click.pass_obj
@handle_errors
def query(state: State, case_id, terms, text, note, w_img, all_terms, group_by, image, mask, rect, polygon,
          slice_index, hu_range, model_path, dicomweb, study_uid, series_uid, sop_uid, seg_uid, exclude_same_patient,
          collection, k, filters, fmt) -> None:
    """Rank the cases of the store by HSBD to a case, a term vector or an image region, or by a free text.

    Each result shows its distance, its diagnosis and the dendrogram nodes (terms or groups of terms) that make
    up most of the distance. With --text the ranking is the fused one of `semgraph search`: the words matched to
    terms (and those ignored), then w-img · HSBD similarity + (1 − w-img) · caption similarity per case.
    """
    from semgraph.retrieval.engine import Filters, parse_terms

    given = [name for name, v in (("--case", case_id), ("--terms", terms), ("--text", text), ("--image", image),
                                  ("--dicomweb", dicomweb)) if v is not None and v != ""]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --case, --terms, --text, --image or --dicomweb")
    if dicomweb is None and (study_uid or series_uid or sop_uid or seg_uid):
        raise click.UsageError("--study, --series, --instance and --seg go with --dicomweb")
    if text is None and (all_terms or (group_by is not None and note is None)):
        raise click.UsageError("--all-terms goes with --text, and --group with --text or --note")
    if note is not None and text is not None:
        raise click.UsageError("--note goes with --case, --terms or --image (a --text query is all text already)")
    if text is not None:
        if exclude_same_patient:
            raise click.UsageError("--exclude-same-patient goes with --case")
        text_search(state, text, k=k, group_by=group_by, w_img=w_img, all_terms=all_terms, fmt=fmt,
                    filters=filters, collection=collection)
        return
    parsed = Filters.coerce(list(filters))
    with state.config.open_store(read_only=True) as store:
        engine = _engine(state, store, collection)
    if case_id:
        vector = engine.vector(case_id)
    elif terms:
        vector = engine.vector_from_terms(parse_terms(terms))
    elif dicomweb:
        vector = _pacs_query(state, engine, dicomweb, (study_uid, series_uid, sop_uid), seg_uid, mask, rect, polygon,
                             model_path)
    else:
        vector = _image_query(engine, image, mask, rect, polygon, slice_index, hu_range, model_path,
                              state.config.data_dir)
    if note is not None:
        if exclude_same_patient:
            raise click.UsageError("--exclude-same-patient does not go with --note")
        text_search(state, note, k=k, group_by=group_by, w_img=w_img, fmt=fmt, filters=filters, vector=vector,
                    exclude=case_id, collection=collection)
        return
    if case_id:
        hits = engine.search_case(case_id, k, parsed, exclude_same_patient=exclude_same_patient)
    else:
        hits = engine.search_vector(vector, k, parsed)
    _echo_hits(hits, len(engine.terms), fmt, {"collection": engine.collection.name, "dissimilarity": engine.source})


def _weights_line(labels, weights) -> str:
    """The six term weights farthest from 1 (docs/algorithms.md §5.7), as one line."""
    largest = sorted(zip(labels, weights), key=lambda m: -abs(m[1] - 1.0))[:6]
    return "term weights, farthest from 1 (reweight): " + ", ".join(f"{lab} {w:.2f}" for lab, w in largest)


def _echo_round(session, rnd, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps({"session_id": session.session_id, "query_text": session.query_text,
                               "query": {t: float(v) for t, v in zip(session.terms, rnd.query)},
                               "weights": None if rnd.weights is None else dict(zip(session.terms,
                                                                                    map(float, rnd.weights))),
                               "round": rnd.as_dict(),
                               "results": [h.as_dict() for h in session.ranking]}, indent=2, ensure_ascii=False))
        return
    click.echo(f"session {session.session_id} · round {rnd.number} ({rnd.params.algorithm}) by {session.user}")
    if session.query_text:
        click.echo(f"query: {session.query_text!r}")
        moved = sorted(((lab, a, b) for lab, a, b in zip(session.engine.labels, session.query0, rnd.query)
                        if abs(a - b) > 5e-3), key=lambda m: -abs(m[2] - m[1]))
        if moved:
            more = f" (+ {len(moved) - 6} smaller)" if len(moved) > 6 else ""
            click.echo("query moved (Rocchio): " + ", ".join(f"{lab} {a:.2f} → {b:.2f}" for lab, a, b in moved[:6])
                       + more)
    if rnd.changes:
        click.echo(f"changed {len(rnd.changes)} term pair{'s' * (len(rnd.changes) != 1)}:")
        for c in rnd.changes:
            click.echo(f"  {c.describe()}")
    else:
        click.echo("no term dissimilarity changed")
    if rnd.weights is not None:
        click.echo(_weights_line(session.engine.labels, rnd.weights))
    click.echo("new ranking:")
    _echo_hits(session.ranking, len(session.terms), "table")


@cli.command()
@click.option("--session", "session_id", metavar="ID", help="The session to continue (or undo).")
@click.option("--new", "new", is_flag=True, help="Start a new session with --case, --terms or --text.")
@click.option("--case", "case_id", metavar="ID", help="With --new: the query case.")
@click.option("--terms", metavar="TERM=VALUE,...", help="With --new: a query term vector.")
@click.option("--text", metavar="TEXT", help="With --new: a free-text query; its parsed term vector is the "
                                             "session's query and the text is recorded with the session.")
@click.option("--relevant", metavar="C1,C2", help="Cases marked relevant.")
@click.option("--irrelevant", metavar="C1,C2", help="Cases marked irrelevant.")
@click.option("--neutral", metavar="C1,C2", help="Cases marked neutral (recorded, no effect).")
@click.option("--algorithm", default=None,
              help=f"{', '.join(available_algorithms())} or a '+'-joined combination [default: {TEXT_ALGORITHM} for "
                   f"a text session, else {DEFAULT_ALGORITHM}].")
@click.option("--user", metavar="NAME", help="Who gives the feedback (required with --new).")
@click.option("--undo", is_flag=True, help="Remove the session's last round (drops its named graph).")
@collection_option
@_K
@_FILTER
@_FORMAT
@click.pass_obj
@handle_errors
def feedback(state: State, session_id, new, case_id, terms, text, relevant, irrelevant, neutral, algorithm, user,
             undo, collection, k, filters, fmt) -> None:
    """Give relevance feedback: mark results, learn term dissimilarities, re-rank; each round is recorded.

    A session started with --text has the parsed term vector of the text as its query: Rocchio moves that vector
    towards the relevant cases and the regularised penalty learns term dissimilarities (the default for text
    sessions, regularised+rocchio).
    """
    from semgraph.feedback.algorithms import (
        FeedbackParams,
        check_algorithm,
        session_algorithm,
    )
    from semgraph.feedback.replay import load_session, session_collection
    from semgraph.feedback.sessions import start_session, start_text_session
    from semgraph.retrieval.engine import Filters, parse_terms

    if bool(session_id) == bool(new):
        raise click.UsageError("give either --session ID or --new")
    marks: dict[str, str] = {}
    for value, listed in (("relevant", relevant), ("irrelevant", irrelevant), ("neutral", neutral)):
        for cid in _ids(listed):
            if cid in marks and marks[cid] != value:
                raise InvalidInput(f"case {cid!r} is marked both {marks[cid]} and {value}")
            marks[cid] = value
    if undo and (new or marks):
        raise click.UsageError("--undo takes only --session ID")
    if not undo and not marks:
        raise click.UsageError("mark at least one case with --relevant, --irrelevant or --neutral")
    if not new and (case_id or terms or text is not None):
        raise click.UsageError("--case, --terms and --text start a session: use them with --new")
    if new and sum(1 for v in (case_id, terms, text) if v is not None and v != "") != 1:
        raise click.UsageError("with --new give exactly one of --case, --terms or --text")
    if new and not user:
        raise click.UsageError("with --new give --user NAME")
    if algorithm is not None:
        algorithm = check_algorithm(algorithm)  # before the store is opened
    parsed = Filters.coerce(list(filters))
    with state.config.open_store() as store:
        engine = _engine(state, store, collection or (None if new else session_collection(store, session_id)))
        if new and text is not None:
            session = start_text_session(store, engine, text, user, k=k, filters=parsed)
        elif new:
            query = case_id if case_id else engine.vector_from_terms(parse_terms(terms))
            session = start_session(store, engine, query, user, k=k, filters=parsed)
        else:
            session = load_session(store, session_id, engine, k=k, filters=parsed)
            if user and user != session.user:
                raise InvalidInput(f"session {session_id} belongs to {session.user}; start your own with --new")
        params = FeedbackParams(algorithm=session_algorithm(algorithm, text=session.query_text is not None))
        if undo:
            removed = session.undo()
            if fmt == "json":
                click.echo(json.dumps({"session_id": session.session_id, "removed_round": removed.number,
                                       "results": [h.as_dict() for h in session.ranking]}, indent=2))
                return
            click.echo(f"session {session.session_id}: round {removed.number} removed "
                       f"({len(session.rounds)} round{'s' * (len(session.rounds) != 1)} left)")
            _echo_hits(session.ranking, len(session.terms), "table")
            return
        rnd = session.feedback(marks, params)
    _echo_round(session, rnd, fmt)


@cli.group()
def session() -> None:
    """Inspect recorded retrieval sessions."""


@session.command("show")
@click.argument("session_id")
@_FORMAT
@click.pass_obj
@handle_errors
def session_show(state: State, session_id: str, fmt: str) -> None:
    """Show a session's query, rounds, marks and learned changes."""
    from semgraph.feedback.replay import load_session, session_collection

    with state.config.open_store(read_only=True) as store:
        s = load_session(store, session_id, _engine(state, store, session_collection(store, session_id)))
    if fmt == "json":
        click.echo(json.dumps({"session_id": s.session_id, "user": s.user, "query_case": s.query_case,
                               "query_text": s.query_text, "started_at": s.started_at.isoformat(), "rounds": [r.as_dict() for r in s.rounds]},
                              indent=2, ensure_ascii=False))
        return
    query = f"case {s.query_case}" if s.query_case else (f"text {s.query_text!r}" if s.query_text else
                                                          "a term vector")
    click.echo(f"session {s.session_id}: {query}, user {s.user}, started {s.started_at.isoformat()}")
    for r in s.rounds:
        marks = ", ".join(f"{c}={v}" for c, v in sorted(r.marks.items()))
        click.echo(f"round {r.number} ({r.params.algorithm}, {r.ended_at.isoformat()}): {marks}")
        for c in r.changes:
            click.echo(f"  {c.describe()}")
        if not r.changes:
            click.echo("  no change")
        if r.weights is not None:
            click.echo(f"  {_weights_line(s.engine.labels, r.weights)}")


@session.command("list")
@click.pass_obj
@handle_errors
def session_list(state: State) -> None:
    """List recorded sessions, newest first."""
    from semgraph.feedback.replay import list_sessions

    with state.config.open_store(read_only=True) as store:
        rows = list_sessions(store)
    if not rows:
        click.echo("no recorded session")
    for r in rows:
        query = f"case {r['query_case']}" if r["query_case"] else (
            f"text {r['query_text']!r}" if r.get("query_text") else "term vector")
        click.echo(f"{r['session_id']}  {r['user']}  {query}  {r['rounds']} round{'s' * (r['rounds'] != 1)}  "
                   f"{r['started_at']}")


@cli.command()
@click.option("--session", "session_id", metavar="ID", help="Promote the learned values of a session.")
@click.option("--round", "round_ids", multiple=True, metavar="ID", help="Promote these rounds (repeatable).")
@click.option("--user", metavar="NAME", help="The curator deciding the promotion.")
@click.option("--reason", help="Why the values should become the collection's baseline.")
@click.option("--candidates", is_flag=True, help="Only list pairs learned the same way in several sessions.")
@click.option("--min-sessions", type=click.IntRange(min=1), default=3, show_default=True,
              help="With --candidates: independent sessions needed.")
@collection_option
@click.pass_obj
@handle_errors
def promote(state: State, session_id, round_ids, user, reason, candidates, min_sessions, collection) -> None:
    """Make learned term dissimilarities part of the shared baseline (an explicit, recorded decision)."""
    from semgraph.feedback.promotion import promote as do_promote
    from semgraph.feedback.promotion import promotion_candidates
    from semgraph.feedback.replay import session_collection

    if candidates:
        with state.config.open_store(read_only=True) as store:
            chosen = state.collection(store, collection)
            found = promotion_candidates(store, min_sessions, collection=chosen)
        if not found:
            click.echo(f"no pair changed the same way in {min_sessions} or more independent sessions")
        name = dict(zip(chosen.terms, chosen.labels))
        for c in found:
            way = "closer" if c.sign < 0 else "farther apart"
            click.echo(f"{name.get(c.term_a, c.term_a)} ↔ {name.get(c.term_b, c.term_b)}: {way} in "
                       f"{len(c.sessions)} sessions ({c.against} against), proposed {c.proposed:.2f}; sessions "
                       f"{', '.join(c.sessions)}")
        return
    if bool(session_id) == bool(round_ids):
        raise click.UsageError("give either --session ID or --round ID (or --candidates)")
    if not user or not reason:
        raise click.UsageError("a promotion needs --user NAME and --reason TEXT")
    with state.config.open_store() as store:
        chosen = state.collection(store, collection or (session_collection(store, session_id) if session_id
                                                        else None))
        done = do_promote(store, session_id or list(round_ids), user=user, reason=reason, collection=chosen)
    name = dict(zip(chosen.terms, chosen.labels))
    click.echo(f"promotion {done['promotion_id']} by {user}: {len(done['changes'])} baseline value"
               f"{'s' * (len(done['changes']) != 1)} changed")
    for a, b, old, new in done["changes"]:
        click.echo(f"  {name.get(a, a)} ↔ {name.get(b, b)}: {old:.2f} → {new:.2f}")
