"""Baseline texture extractor: separable (PyWavelets) stationary wavelet subband energies."""

from __future__ import annotations

import numpy as np

from semgraph.errors import ConfigurationError, InvalidInput

_ORIENTATIONS = ("h", "v", "d")


def _pywt():
    try:
        import pywt
    except ImportError as exc:  # optional at import time, required at call time
        raise ConfigurationError("The 'wavelet' feature method needs PyWavelets: pip install PyWavelets") from exc
    return pywt


class WaveletExtractor:
    """Undecimated separable wavelet transform (``pywt.swt2``, energy-normalised) of J levels.

    Channels: for each scale ``s = 0..J−1`` (0 finest) the horizontal, vertical and diagonal detail subbands,
    named ``{wavelet}_s{s}_{h|v|d}``; the approximation is dropped, like the Riesz low-pass.
    """

    def __init__(self, config):
        pywt = _pywt()
        if config.wavelet not in pywt.wavelist(kind="discrete"):
            raise InvalidInput(
                f"Invalid wavelet {config.wavelet!r}; use a discrete PyWavelets name such as 'haar', 'db2' or 'sym4'."
            )
        self.config = config

    def channel_names(self) -> list[str]:
        """Names ``{wavelet}_s{s}_{h,v,d}``."""
        return [f"{self.config.wavelet}_s{s}_{o}" for s in range(self.config.scales) for o in _ORIENTATIONS]

    def fit_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """Round each side up to a multiple of ``2^J`` (required by ``swt2``)."""
        m = 2**self.config.scales
        return -(-shape[0] // m) * m, -(-shape[1] // m) * m

    def maps(self, box: np.ndarray) -> np.ndarray:
        """Detail maps (3J, M, N), finest scale first."""
        pywt = _pywt()
        levels = pywt.swt2(box, self.config.wavelet, level=self.config.scales, trim_approx=True, norm=True)
        details = levels[1:][::-1]  # swt2 lists the coarsest level first
        return np.stack([band for level in details for band in level]).astype(box.dtype, copy=False)
