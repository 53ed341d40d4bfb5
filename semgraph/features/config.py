"""Every parameter of texture-feature extraction in one frozen dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from semgraph.errors import InvalidInput
from semgraph.features.registry import available_extractors
from semgraph.imaging._checks import check_int, check_range

_PRECISIONS = ("single", "double")


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of :func:`semgraph.features.extract` (defaults: docs/algorithms.md §4.2–4.4).

    Attributes
    ----------
    method : {'riesz', 'wavelet'} or any registered name
        Texture extractor (see :mod:`semgraph.features.registry`).
    order : int, default 4
        Riesz order N (N + 1 channels). Ignored by 'wavelet'.
    scales : int, default 4
        Number J of scales (Simoncelli bands, or wavelet levels).
    initial_highpass : bool, default False
        Riesz only: add the initial high-pass ĥ_0 as an extra scale ``hp`` (N + 1 more energies).
    align : bool, default False
        Local steering to the dominant orientation. **Not implemented**: True is rejected.
    wavelet : str, default 'haar'
        PyWavelets discrete wavelet of the 'wavelet' baseline.
    patch_size : int, default 12
        Side of the square patches; a patch "centred" at p covers ``p − size//2 .. p − size//2 + size − 1``.
    step : int, default 6
        Spacing of margin patches along the contour and of the internal patch grid.
    bins : int, default 8
        Gray-level histogram bins.
    hu_range : (float, float), default (-100, 200)
        Histogram range in HU; values outside fall into the end bins.
    padding : int, default 16
        Mirror padding (px) around the lesion box before the transform; at least ``patch_size // 2``.
        docs/algorithms.md §4.3 suggests ``>= 2^J · 6`` (96 for J = 4); 16 is the speed/edge-effect compromise.
    precision : {'single', 'double'}, default 'single'
        Floating-point precision of the transform (the histogram is always exact).
    margin_features : bool, default False
        Append the 7 margin/shape descriptors of :func:`semgraph.features.margin_descriptors` (compactness,
        solidity, contour roughness, edge contrast and sharpness, inner/outer ring sd) after the histogram, to the
        ROI vector and, as ROI context, to every patch row. Our addition beyond the paper (texture + shape);
        :data:`semgraph.exchange.feature_files.INGEST_FEATURE_CONFIG` turns it on by default because it raises the margin terms' AUC.
    """

    method: str = "riesz"
    order: int = 4
    scales: int = 4
    initial_highpass: bool = False
    align: bool = False
    wavelet: str = "haar"
    patch_size: int = 12
    step: int = 6
    bins: int = 8
    hu_range: tuple[float, float] = (-100.0, 200.0)
    padding: int = 16
    precision: str = "single"
    margin_features: bool = False

    def __post_init__(self):
        if self.method not in available_extractors():
            raise InvalidInput(
                f"Invalid feature method {self.method!r}; the available methods are {', '.join(available_extractors())}."
            )
        check_int(self.order, "order", minimum=0, maximum=20)
        check_int(self.scales, "scales", minimum=1, maximum=10)
        for flag in ("initial_highpass", "align", "margin_features"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(f"{flag} must be True or False, got {getattr(self, flag)!r}.")
        if self.align:
            raise InvalidInput("align=True (local steering to the dominant orientation) is not implemented; use align=False.")
        if not isinstance(self.wavelet, str) or not self.wavelet:
            raise InvalidInput(f"wavelet must be a PyWavelets name such as 'haar' or 'db2', got {self.wavelet!r}.")
        patch = check_int(self.patch_size, "patch_size", minimum=2, maximum=256)
        check_int(self.step, "step", minimum=1, maximum=256)
        check_int(self.bins, "bins", minimum=1, maximum=4096)
        object.__setattr__(self, "hu_range", check_range(self.hu_range, "hu_range"))
        check_int(self.padding, "padding", minimum=patch // 2, maximum=1024)
        if self.precision not in _PRECISIONS:
            raise InvalidInput(f"Invalid precision {self.precision!r}; choose one of {', '.join(_PRECISIONS)}.")

    def to_dict(self) -> dict:
        """Plain-dict form (JSON-serialisable), e.g. for provenance records."""
        out = asdict(self)
        out["hu_range"] = list(self.hu_range)
        return out
