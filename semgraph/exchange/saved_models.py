"""The term models of a data folder: saved as ``DATA_DIR/models/<version>``, the latest named in
``DATA_DIR/models/LATEST``, and each version described in the annotations graph."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rdflib import Literal
from rdflib.namespace import PROV, RDF, RDFS, XSD

from kg import Store
from kg.namespaces import ANNOTATIONS_GRAPH, SG
from kg.sparql import insert_data
from semgraph.errors import NotFound
from semgraph.files import write_atomically
from semgraph.graph.casegraph import model_iri

if TYPE_CHECKING:  # loading a model imports scikit-learn; reading the marker must not
    from semgraph.terms.models import TermModels

__all__ = ["LATEST_MODEL", "MODELS_DIR", "latest_model", "latest_version", "models_dir", "record_model", "save_model"]

MODELS_DIR = "models"
LATEST_MODEL = "LATEST"


def models_dir(data_dir) -> Path:
    """``DATA_DIR/models``."""
    return Path(data_dir) / MODELS_DIR


def save_model(data_dir, model: TermModels) -> Path:
    """Save ``model`` as ``DATA_DIR/models/<version>`` and make it the latest; return the ``.npz`` path."""
    folder = models_dir(data_dir)
    path = model.save(folder / model.version_)
    write_atomically(folder / LATEST_MODEL, lambda f: f.write((model.version_ + "\n").encode("utf-8")))
    return path


def latest_version(data_dir, *, required: bool = False) -> str | None:
    """The version named in ``DATA_DIR/models/LATEST`` (None if there is none, unless ``required``: NotFound)."""
    marker = models_dir(data_dir) / LATEST_MODEL
    if not marker.is_file():
        if required:
            raise NotFound(f"no term model in {models_dir(data_dir)}; run `semgraph train` first")
        return None
    return marker.read_text(encoding="utf-8").strip()


def latest_model(data_dir, *, required: bool = False) -> TermModels | None:
    """The model named in ``DATA_DIR/models/LATEST`` (None if there is none, unless ``required``: NotFound)."""
    from semgraph.terms.models import TermModels

    version = latest_version(data_dir, required=required)
    return None if version is None else TermModels.load(models_dir(data_dir) / version)


def record_model(store: Store, model: TermModels) -> None:
    """Describe the model version in the annotations graph (``sg:TermModel``, a ``prov:SoftwareAgent``), replacing
    an earlier description of it."""
    meta = model.metadata()
    m = model_iri(model.version_)
    params = {"params": meta["params"], "feature_config": meta["feature_config"], "terms": meta["terms"],
              "libraries": meta["libraries"], "training_cases": len(meta["training_cases"])}
    triples = [
        (m, RDF.type, SG.TermModel), (m, RDF.type, PROV.SoftwareAgent), (m, RDFS.label, Literal(model.version_)),
        (m, SG.algorithm, Literal(meta["algorithm"])),
        (m, SG.parameters, Literal(json.dumps(params, sort_keys=True), datatype=RDF.JSON)),
        (m, PROV.generatedAtTime, Literal(dt.datetime.strptime(model.fitted_at_, "%Y%m%dT%H%M%SZ")
                                          .replace(tzinfo=dt.UTC).isoformat(), datatype=XSD.dateTime)),
    ]
    store.update("DELETE WHERE { GRAPH $g { $m ?p ?o } } ;\n" + insert_data(triples),
                 {"g": ANNOTATIONS_GRAPH, "m": m})
