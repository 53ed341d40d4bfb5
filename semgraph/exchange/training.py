"""Term models from the ingested image cases: the training set, training, re-annotation, out-of-fold storage.

Every annotation written here goes through :func:`semgraph.graph.casegraph.replace_annotation` ("predicted" and
"crossval", attributed to the model version).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kg import Store
from ontology.paper_terms import paper_terms
from semgraph.errors import InvalidInput, NotFound
from semgraph.exchange.feature_files import features_path, load_features
from semgraph.exchange.ingest_report import IngestReport
from semgraph.exchange.saved_models import record_model, save_model
from semgraph.features import FeatureConfig
from semgraph.graph.casegraph import (
    Annotation,
    Case,
    model_iri,
    read_cases,
    read_likelihoods,
    replace_annotation,
)
from semgraph.progress import track
from semgraph.terms.models import TermModels

__all__ = ["TrainingSet", "annotate", "store_crossval", "train", "training_set"]


@dataclass
class TrainingSet:
    """Features and reader labels of the ingested image cases."""

    case_ids: list[str]
    groups: np.ndarray  # patient id per case
    X: np.ndarray  # (N, D)
    Y: np.ndarray  # (N, k)
    patches: np.ndarray
    kinds: np.ndarray
    case: np.ndarray
    terms: list[str]
    config: FeatureConfig


def _image_cases(store: Store, data_dir) -> list[tuple[Case, Path]]:
    """The cases with an image file and a feature file, with the path of the latter."""
    out = []
    for case in read_cases(store):
        path = features_path(data_dir, case.case_id)
        if case.image_file is not None and path.is_file():
            out.append((case, path))
    return out


def training_set(store: Store, data_dir, terms: Iterable[str] | None = None, *, kind: str = "reader") -> TrainingSet:
    """Stack the stored features and the ``kind`` labels ("reader" or "truth") of every ingested image case
    (``terms``: default the paper's); NotFound with fewer than two such cases, InvalidInput when their features
    were extracted with different configurations."""
    terms = [t.iri for t in paper_terms()] if terms is None else list(terms)
    cases = _image_cases(store, data_dir)
    ids, matrix = read_likelihoods(store, terms, kinds=(kind,))
    labels = dict(zip(ids, matrix))
    cases = [(c, p) for c, p in cases if c.case_id in labels]
    if len(cases) < 2:
        raise NotFound(f"fewer than two ingested image cases with {kind} labels in the store; "
                       "run `semgraph ingest MANIFEST` first")
    X, Y, P, K, idx, groups, config = [], [], [], [], [], [], None
    for i, (case, path) in enumerate(cases):
        f = load_features(path)
        if config is None:
            config = f.config
        elif f.config != config:
            raise InvalidInput(f"case {case.case_id}: its features were extracted with {f.config.to_dict()}, "
                               f"other cases with {config.to_dict()}; re-ingest with one configuration")
        X.append(f.roi)
        Y.append(labels[case.case_id])
        P.append(f.patches)
        K.append(f.kinds)
        idx.append(np.full(len(f.patches), i))
        groups.append(case.patient_id)
    return TrainingSet([c.case_id for c, _ in cases], np.array(groups), np.vstack(X), np.vstack(Y),
                       np.vstack(P), np.concatenate(K), np.concatenate(idx), terms, config)


def train(store: Store, data_dir, *, estimator: TermModels | None = None, data: TrainingSet | None = None,
          save: bool = True) -> tuple[TermModels, TrainingSet]:
    """Fit term models on the ingested cases (patch features + reader labels); save them as the latest model.

    Returns ``(model, data)``. ``data`` defaults to :func:`training_set` of the store.
    """
    if data is None:
        data = training_set(store, data_dir, None if estimator is None or estimator.terms is None else estimator.terms)
    model = estimator if estimator is not None else TermModels(feature_config=data.config)
    if model.feature_config is None:
        model.set_params(feature_config=data.config)
    model.fit(data.X, data.Y, patches=data.patches, patch_kinds=data.kinds, patch_case=data.case,
              groups=data.groups, case_ids=data.case_ids)
    if save:
        save_model(data_dir, model)
        record_model(store, model)
    return model, data


def annotate(store: Store, data_dir, model: TermModels, *, progress: bool = True) -> IngestReport:
    """Re-predict the likelihoods of every ingested image case from its stored features and rewrite its
    "predicted" annotation, attributed to ``model``'s version. Other annotations are kept."""
    start = time.perf_counter()
    record_model(store, model)
    report = IngestReport()
    agent = model_iri(model.version_)
    for case, path in track(_image_cases(store, data_dir), desc="annotate", unit="case", enabled=progress):
        f = load_features(path)
        if model.feature_config_ is not None and f.config != model.feature_config_:
            report.failed.append((case.case_id, "features extracted with another configuration than the model's"))
            continue
        annotation = Annotation("predicted", model.likelihoods(f.roi, f.patches, f.kinds), attributed_to=agent)
        replace_annotation(store, case.case_id, annotation)
        report.ingested.append(case.case_id)
    report.seconds = time.perf_counter() - start
    return report


def store_crossval(store: Store, case_ids, terms, likelihoods, model: TermModels) -> None:
    """Store out-of-fold likelihoods (``crossval`` annotations, attributed to ``model``'s version) of ``case_ids``,
    replacing earlier ones; the evaluation protocol ranks these (``semgraph evaluate --likelihoods crossval``)."""
    agent = model_iri(model.version_)
    for case_id, row in zip(case_ids, np.asarray(likelihoods, dtype=np.float64)):
        values = {t: float(np.clip(v, 0.0, 1.0)) for t, v in zip(terms, row)}
        replace_annotation(store, case_id, Annotation("crossval", values, attributed_to=agent))
