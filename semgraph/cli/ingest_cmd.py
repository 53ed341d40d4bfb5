"""``semgraph cohort generate``, ``semgraph ingest``, ``semgraph train`` and ``semgraph annotate``."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from semgraph.cli import State, cli, collection_option, handle_errors


@cli.group(name="cohort")
def cohort_group() -> None:
    """Synthetic liver-lesion cohorts (CT slices, masks and a manifest)."""


@cohort_group.command(name="generate")
@click.option("--n", "n", type=int, default=72, show_default=True, help="Number of cases (72 = the paper's cohort).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed; the case ids contain it (case-s<seed>-000000 ...), except seed 0's (case-000000 ...).")
@click.option("--out", "out", metavar="DIR", help="Output folder [default: DATA_DIR/cohort].")
@click.option("--format", "fmt", type=click.Choice(["dicom", "nifti"]), default="dicom", show_default=True)
@click.option("--size", type=int, default=256, show_default=True, help="Image side in pixels (128..1024).")
@click.pass_obj
@handle_errors
def cohort_generate(state: State, n: int, seed: int, out: str | None, fmt: str, size: int) -> None:
    """Write N synthetic cases (images, PNG masks, manifest.json/csv) to DIR."""
    from semgraph.cohort import generate

    folder = Path(out) if out else Path(state.config.data_dir) / "cohort"
    path = generate(n, seed, folder, image_format=fmt, size=size)
    click.echo(f"wrote {n:,} cases to {folder}; manifest {path}")
    click.echo(f"next: semgraph ingest {folder}")


def _print_report(report) -> None:
    for case_id, reason in report.failed:
        click.echo(f"failed {case_id}: {reason}", err=True)
    rate = f" in {report.seconds:.1f} s" if report.seconds else ""
    click.echo(report.summary() + rate)


@cli.command(name="ingest")
@click.argument("source", metavar="[MANIFEST_OR_FOLDER_OR_CSV]", required=False)
@click.option("--dicomweb", metavar="URL", help="Ingest studies of a PACS over DICOMweb instead of a file (URL: its "
                                                "DICOMweb root; '-' for the dicomweb_url setting); see docs/pacs.md.")
@click.option("--study", "studies", multiple=True, metavar="UID", help="With --dicomweb: this study (repeatable).")
@click.option("--series", "series", multiple=True, metavar="UID",
              help="With --dicomweb: the study that holds this series (repeatable).")
@click.option("--patient", metavar="ID", help="With --dicomweb: the studies of this patient id.")
@click.option("--date", "dates", metavar="FROM..TO", help="With --dicomweb: studies dated in this range (ISO dates, "
                                                           "either side may be empty).")
@click.option("--no-model", is_flag=True, help="Do not add predicted likelihoods even if a trained model exists.")
@collection_option
@click.option("--title", help="With a new --collection: its title.")
@click.option("--case-label", help="With a new --collection: what one case is, as captions begin (e.g. 'Lung "
                                   "nodule') [default: Case].")
@click.option("--term-root", metavar="TERM", help="With a new --collection: the class whose direct subclasses name "
                                                  "the terms' categories [default: the deepest class above every "
                                                  "term].")
@click.option("--strict", is_flag=True, help="AIM XML: reject the import when a code names no term of the loaded "
                                             "ontology, instead of skipping the code with a warning.")
@click.option("--zero-confidence", type=click.Choice(["auto", "absent", "selected"]), default="auto",
              show_default=True, help="AIM XML: annotatorConfidence 0 means 0.0 ('absent') or 'not given', 1.0 "
                                      "('selected'); 'auto': 'selected' in ePAD's AIMv4_2/AIMv4_3 files, else "
                                      "'absent' (docs/aim.md).")
@click.option("--jobs", type=click.IntRange(min=1), metavar="N",
              help="Manifest: worker processes computing the cases' features (1: none, all in this process) "
                   "[default: one per core, at most one per 200 new cases].")
@click.option("--batch", type=click.IntRange(min=1), metavar="N",
              help="Manifest and reader CSV: cases written per store transaction [default: 200].")
@click.pass_obj
@handle_errors
def ingest_command(state: State, source: str | None, dicomweb: str | None, studies: tuple[str, ...],
                   series: tuple[str, ...], patient: str | None, dates: str | None, no_model: bool, collection: str | None, title: str | None,
                   case_label: str | None, term_root: str | None, strict: bool, zero_confidence: str,
                   jobs: int | None, batch: int | None) -> None:
    """Ingest a cohort manifest (or a folder holding manifest.json), or a reader-ratings CSV.

    Image cases: features go to DATA_DIR/features, the case and its reader (and truth) terms to the store, and
    predicted likelihoods too when a model was trained (`semgraph train`). The features are computed in --jobs
    worker processes and the cases written --batch at a time, each batch in one transaction. Cases already in the
    store are skipped, so an interrupted ingest can simply be run again. Images and masks outside the data folder
    are copied to DATA_DIR/images/<case id>/ and the copies recorded (the count is printed; a re-run copies
    nothing); those inside it are recorded where they are. A reader CSV has columns case_id, patient_id, optional
    diagnosis/study_id/study_date/age/sex/contrast_phase/liver_segment, and one column per term (IRI, RadLex id or
    label) with values in [0, 1]; the whole file is checked before anything is written, then its cases are written
    --batch at a time.

    Cases go into a collection (--collection, default the store's only one). A new name defines the collection
    from the file's terms (a CSV's term columns in their order), with the categories of the ontology's branches
    (see docs/collections.md); terms outside an existing collection are refused (CSV) or left out with a warning
    (AIM; --strict refuses them).

    AIM XML (a .xml file or a folder of them, e.g. an ePAD export): codes without a term of the loaded ontology are
    skipped and listed per file (--strict rejects the import instead); see docs/aim.md.

    --dicomweb URL: each study of the PACS (filtered by --study, --series, --patient, --date) becomes a case, its slice and
    region taken from the study's DICOM SEG, RTSTRUCT or SR; see docs/pacs.md.
    """
    from semgraph.exchange.ingest import DEFAULT_BATCH, ingest, resolve_source
    from semgraph.exchange.saved_models import latest_model

    if (source is None) == (dicomweb is None):
        raise click.UsageError("give either a MANIFEST_OR_FOLDER_OR_CSV or --dicomweb URL")
    if (jobs or batch) and dicomweb is not None:
        raise click.UsageError("--jobs and --batch go with a cohort manifest or a reader CSV, not --dicomweb")
    if dicomweb is not None:
        _ingest_dicomweb(state, dicomweb, studies, series, patient, dates, no_model, collection, title, case_label)
        return
    if studies or series or patient or dates:
        raise click.UsageError("--study, --series, --patient and --date go with --dicomweb")
    kind, _ = resolve_source(source)
    if jobs and kind != "manifest":
        raise click.UsageError("--jobs goes with a cohort manifest")
    if batch and kind not in ("manifest", "reader"):
        raise click.UsageError("--batch goes with a cohort manifest or a reader CSV")
    data_dir = state.config.data_dir
    model = None if (no_model or kind == "reader") else latest_model(data_dir)
    new = {key: value for key, value in (("title", title), ("case_label", case_label), ("term_root", term_root))
           if value}
    with state.config.open_store() as store:
        if term_root:
            new["term_root"] = _resolve_term(store, term_root)
        report = ingest(store, source, data_dir, model=model, strict=strict, zero_confidence=zero_confidence,
                        collection=collection or state.config.collection or None, new_collection=new, jobs=jobs,
                        batch=batch or DEFAULT_BATCH)
    if model is not None:
        click.echo(f"predicted likelihoods by model {model.version_}")
    if kind == "aim":
        for line in report.file_lines():
            click.echo(line)
    _print_report(report)


def _ingest_dicomweb(state: State, url: str, studies, series, patient, dates, no_model: bool, collection, title,
                     case_label) -> None:
    from semgraph.exchange.pacs import connect
    from semgraph.exchange.pacs_ingest import ingest_pacs
    from semgraph.exchange.pacs_studies import parse_date_range
    from semgraph.exchange.saved_models import latest_model

    data_dir = state.config.data_dir
    model = None if no_model else latest_model(data_dir)
    client = connect(state.config, None if url == "-" else url)
    new = {key: value for key, value in (("title", title), ("case_label", case_label)) if value}
    with state.config.open_store() as store:
        report = ingest_pacs(store, client, data_dir, study_uids=studies, series_uids=series, patient=patient,
                             date_range=parse_date_range(dates), model=model,
                             collection=collection or state.config.collection or None, new_collection=new)
    if model is not None:
        click.echo(f"predicted likelihoods by model {model.version_}")
    elif report.ingested:
        click.echo("no term model: the new cases get likelihoods from `semgraph train` and `semgraph annotate`")
    _print_report(report)


def _resolve_term(store, text: str) -> str:
    """The IRI of a term of a loaded ontology named by IRI, label or local id."""
    import ontology

    for info in ontology.catalog(store):
        try:
            return ontology.hierarchy(store, info.name).resolve(text)
        except ontology.OntologyError:
            continue
    return ontology.hierarchy(store).resolve(text)  # raises with suggestions


def _auc_table(result, labels) -> list[str]:
    lines = [f"{'term':<46} {'positives':>9} {'AUC':>6} {'raw AUC':>8}"]
    for term, pos, auc, raw in zip(result.terms, result.positives, result.auc, result.auc_raw):
        lines.append(f"{labels.get(term, term):<46} {int(pos):>9} {auc:>6.3f} {raw:>8.3f}")
    lines.append(f"{'mean':<46} {'':>9} {result.mean_auc:>6.3f} {np.nanmean(result.auc_raw):>8.3f}")
    return lines


@cli.command(name="train")
@click.option("--lopo", is_flag=True, help="Also run leave-one-patient-out cross-validation, print per-term AUC and "
                                           "store the out-of-fold likelihoods as 'crossval' annotations.")
@click.option("--folds", type=int, help="With --lopo: GroupKFold over patients with this many folds instead.")
@click.option("--calibration", type=click.Choice(["platt", "isotonic"]), default="platt", show_default=True)
@click.option("--jobs", type=int, default=1, show_default=True, help="Folds fitted in parallel (--lopo).")
@click.pass_obj
@handle_errors
def train_command(state: State, lopo: bool, folds: int | None, calibration: str, jobs: int) -> None:
    """Train the term models on the ingested image cases (patch features + reader terms).

    The model is saved under DATA_DIR/models/ (npz + JSON sidecar) and becomes the one `ingest` and `annotate`
    use. Run `semgraph annotate` afterwards to predict the likelihoods of the cases already ingested.
    """
    from ontology.paper_terms import paper_terms
    from semgraph.exchange.saved_models import models_dir
    from semgraph.exchange.training import store_crossval, train, training_set
    from semgraph.terms.evaluation import lopo_auc
    from semgraph.terms.models import TermModels

    data_dir = state.config.data_dir
    with state.config.open_store() as store:
        data = training_set(store, data_dir)
        estimator = TermModels(feature_config=data.config, calibration=calibration)
        model, _ = train(store, data_dir, estimator=estimator, data=data)
        path = models_dir(data_dir) / f"{model.version_}.npz"
        click.echo(f"trained model {model.version_} on {len(data.case_ids):,} cases "
                   f"({len(set(data.groups)):,} patients, {len(data.patches):,} patches); saved {path}")
        constant = [t for t, k in zip(model.terms_, model.kinds_) if k == "constant"]
        if constant:
            click.echo(f"terms with a single class (constant likelihood): {', '.join(constant)}")
        if lopo:
            result = lopo_auc(data.X, data.Y, data.groups, patches=data.patches, patch_kinds=data.kinds,
                              patch_case=data.case, estimator=estimator, n_splits=folds, n_jobs=jobs, progress=True)
            store_crossval(store, data.case_ids, result.terms, result.likelihoods, model)
            labels = {t.iri: t.label for t in paper_terms()}
            click.echo(f"{result.scheme}: {result.n_folds} folds, out-of-fold likelihoods vs reader terms "
                       f"(stored as 'crossval' annotations for `semgraph evaluate --likelihoods crossval`)")
            for line in _auc_table(result, labels):
                click.echo(line)


@cli.command(name="annotate")
@click.pass_obj
@handle_errors
def annotate_command(state: State) -> None:
    """Re-predict the term likelihoods of every ingested image case with the latest model (from stored features)."""
    from semgraph.exchange.saved_models import latest_model
    from semgraph.exchange.training import annotate

    data_dir = state.config.data_dir
    model = latest_model(data_dir, required=True)
    with state.config.open_store() as store:
        report = annotate(store, data_dir, model)
    click.echo(f"annotated {len(report.ingested):,} cases with model {model.version_}")
    for case_id, reason in report.failed:
        click.echo(f"failed {case_id}: {reason}", err=True)
