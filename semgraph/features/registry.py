"""Feature-extractor registry: a method name maps to ``"module:Class"``, imported on first use.

An extractor class is built from a :class:`~semgraph.features.config.FeatureConfig` and provides
``channel_names() -> list[str]`` (K names), ``fit_shape((M, N)) -> (M', N')`` (a working shape >= the padded box,
e.g. an FFT-friendly size) and ``maps(box) -> ndarray (K, M', N')`` (coefficient maps of the padded box, same
dtype). Built-ins are registered the same way as third-party extractors.
"""

from __future__ import annotations

import importlib

from semgraph.errors import InvalidInput

_EXTRACTORS: dict[str, str] = {}


def register_extractor(name: str, target: str, *, replace: bool = False) -> None:
    """Register ``target`` (``"package.module:ClassName"``) under ``name``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidInput(f"extractor name must be an identifier, got {name!r}.")
    if not isinstance(target, str) or target.count(":") != 1:
        raise InvalidInput(f"extractor target must look like 'package.module:ClassName', got {target!r}.")
    if name in _EXTRACTORS and not replace and _EXTRACTORS[name] != target:
        raise InvalidInput(f"extractor {name!r} is already registered as {_EXTRACTORS[name]!r}; pass replace=True.")
    _EXTRACTORS[name] = target


def available_extractors() -> tuple[str, ...]:
    """Registered method names, sorted."""
    return tuple(sorted(_EXTRACTORS))


def get_extractor(name: str) -> type:
    """Import and return the extractor class registered under ``name``."""
    if name not in _EXTRACTORS:
        raise InvalidInput(f"Unknown feature method {name!r}; the available methods are {', '.join(available_extractors())}.")
    module_name, class_name = _EXTRACTORS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


register_extractor("riesz", "semgraph.features.riesz:RieszExtractor")
register_extractor("wavelet", "semgraph.features.baseline:WaveletExtractor")
