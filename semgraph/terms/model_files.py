"""The files of a saved term model: ``<path>.npz`` (arrays, no pickle) and ``<path>.json`` (the metadata sidecar).

This module owns the file format (:data:`MODEL_FORMAT`, :data:`MODEL_FORMAT_VERSION`) and its checks;
:meth:`semgraph.terms.models.TermModels.save` and :meth:`~semgraph.terms.models.TermModels.load` decide what goes in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import scipy
import sklearn

from semgraph.errors import InvalidInput, NotFound
from semgraph.features import FeatureConfig
from semgraph.files import write_atomically

__all__ = ["MODEL_FORMAT", "MODEL_FORMAT_VERSION", "feature_config_from_dict", "library_versions", "model_paths",
           "read_metadata", "write_model"]

#: File-format id of saved models; bumped when the layout changes.
MODEL_FORMAT = "semgraph-term-models"
MODEL_FORMAT_VERSION = 1


def model_paths(path) -> tuple[Path, Path]:
    """(``<path>.npz``, ``<path>.json``); ``path`` may already end in either suffix."""
    p = Path(path)
    base = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    return base.with_name(base.name + ".npz"), base.with_name(base.name + ".json")


def feature_config_from_dict(d: dict) -> FeatureConfig:
    """The :class:`FeatureConfig` of its ``to_dict()``; InvalidInput for an unknown field."""
    d = dict(d)
    if "hu_range" in d:
        d["hu_range"] = tuple(d["hu_range"])
    try:
        return FeatureConfig(**d)
    except TypeError as exc:
        raise InvalidInput(f"unknown feature configuration {d}: {exc}") from exc


def library_versions() -> dict[str, str | None]:
    """Versions of numpy, scipy, scikit-learn and semgraph (None when semgraph is not installed)."""
    try:
        semgraph_version = version("semgraph")
    except PackageNotFoundError:  # pragma: no cover - not installed
        semgraph_version = None
    return {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "semgraph": semgraph_version}


def write_model(path, arrays: Mapping[str, np.ndarray], metadata: dict) -> Path:
    """Write ``<path>.npz`` (``arrays``) and ``<path>.json`` (``metadata``), each atomically and durably; return
    the ``.npz`` path."""
    npz, sidecar = model_paths(path)
    write_atomically(npz, lambda f: np.savez(f, **arrays), durable=True)
    text = json.dumps(metadata, indent=1, ensure_ascii=False)
    write_atomically(sidecar, lambda f: f.write(text.encode("utf-8")), durable=True)
    return npz


def read_metadata(path, *, feature_config: FeatureConfig | None = None) -> tuple[Path, dict]:
    """(``.npz`` path, sidecar metadata) of the model saved at ``path``.

    Raises NotFound when either file is missing; InvalidInput for a sidecar that is not of this format or version,
    or (with ``feature_config``) a model trained on other features.
    """
    npz, sidecar = model_paths(path)
    if not npz.is_file() or not sidecar.is_file():
        raise NotFound(f"no term model at {npz} (+ {sidecar.name})")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{sidecar}: not a term-model sidecar ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise InvalidInput(f"{sidecar} is not a {MODEL_FORMAT} file")
    if meta.get("format_version") != MODEL_FORMAT_VERSION:
        raise InvalidInput(f"{sidecar}: model format {meta.get('format_version')} is not supported "
                           f"(this version reads {MODEL_FORMAT_VERSION}); retrain with `semgraph train`")
    stored = None if meta["feature_config"] is None else feature_config_from_dict(meta["feature_config"])
    if feature_config is not None and stored != feature_config:
        raise InvalidInput(
            f"model {meta['version']} was trained on features {meta['feature_config']} but the features here "
            f"use {feature_config.to_dict()}; re-extract the features or retrain the model")
    return npz, meta
