"""Riesz transform of order N and the Simoncelli isotropic band-limited wavelet frame, in the Fourier domain.

All filters are given on the ``numpy.fft.rfft2`` half grid (M, N // 2 + 1) unless ``half=False``.
"""

from __future__ import annotations

import functools
from math import comb, pi
from typing import NamedTuple

import numpy as np
import scipy.fft

from semgraph.errors import InvalidInput
from semgraph.imaging._checks import check_image, check_int, check_shape

_MAX_ORDER = 20
_MAX_SCALES = 10


def _check_order_scales(order, scales=None) -> tuple[int, int | None]:
    order = check_int(order, "order", minimum=0, maximum=_MAX_ORDER)
    if scales is not None:
        scales = check_int(scales, "scales", minimum=1, maximum=_MAX_SCALES)
    return order, scales


def frequency_grid(shape, *, half: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Angular frequencies ``(ω1, ω2)`` in ``[−π, π)`` of the DFT grid, as broadcastable arrays (M, 1) and (1, K).

    ``ω1`` runs along rows and ``ω2`` along columns; ``K = N // 2 + 1`` if ``half`` else ``N``.
    """
    rows, cols = check_shape(shape)
    w1 = 2 * pi * np.fft.fftfreq(rows)
    w2 = 2 * pi * (np.fft.rfftfreq(cols) if half else np.fft.fftfreq(cols))
    return w1[:, None], w2[None, :]


def riesz_filters(shape, order: int, *, half: bool = True) -> np.ndarray:
    """Frequency responses of the N + 1 Riesz channels of order N.

    Parameters
    ----------
    shape : (int, int)
        Image shape (M, N).
    order : int
        Riesz order N >= 0.
    half : bool, default True
        Return the ``rfft2`` half grid (M, N // 2 + 1) instead of the full grid (M, N).

    Returns
    -------
    ndarray (order + 1, M, K) of complex128
        Channel ``n`` (``n = 0..order``) is the ``(n, order − n)`` Riesz component.

    Notes
    -----
    With ``u = ω / ||ω||`` (docs/algorithms.md §4.2):

    .. math:: \\hat R^{(n, N-n)}(\\omega) = \\sqrt{\\binom{N}{n}}\\,(-j u_1)^n (-j u_2)^{N-n},

    so ``Σ_n |R̂_n(ω)|² = (u_1² + u_2²)^N = 1``. Conventions that keep the outputs real and the energy exact:

    - **DC**: ``u`` is replaced by 1 and each channel divided by ``sqrt(2^N)``: ``R̂_n(0) = sqrt(C(N, n) / 2^N)``,
      hence ``Σ_n |R̂_n(0)|² = 1`` and ``Σ_n ||R_n f||² = ||f||²`` for every ``f``, not only zero-mean ones.
    - **Nyquist row/column** (even sizes): the frequency ``±π`` is ambiguous. On the Nyquist row ``ω1`` takes the
      sign of ``ω2`` (and on the Nyquist column ``ω2`` the sign of ``ω1``), so each bin and its mirror are exact
      negatives and the response is Hermitian. The self-mirrored bins (``(π, 0)``, ``(0, π)``, ``(π, π)``) get
      the real value ``sqrt(C(N, n)) |u_1|^n |u_2|^{N−n}``, i.e. the factor ``(−j)^N`` dropped.

    Only moduli enter the channel energies, so the energy identity and the exact swap ``E_n ↔ E_{N−n}`` under
    ``np.rot90`` hold on every grid.

    References
    ----------
    M. Unser, D. Van De Ville, "Wavelet steerability and the higher-order Riesz transform", IEEE TIP 19(3),
    2010, doi:10.1109/TIP.2009.2036713.
    """
    rows, cols = check_shape(shape)
    order, _ = _check_order_scales(order)
    return _riesz_filters(rows, cols, order, bool(half))


@functools.lru_cache(maxsize=32)
def _riesz_filters(rows: int, cols: int, order: int, half: bool) -> np.ndarray:
    w1 = np.broadcast_to(2 * pi * np.fft.fftfreq(rows)[:, None], (rows, cols)).copy()
    w2 = np.broadcast_to(2 * pi * np.fft.fftfreq(cols)[None, :], (rows, cols)).copy()
    a1, a2 = np.abs(w1), np.abs(w2)
    special = np.zeros((rows, cols), dtype=bool)
    nyq_r = rows // 2 if rows % 2 == 0 else None
    nyq_c = cols // 2 if cols % 2 == 0 else None
    if nyq_r is not None:
        w1[nyq_r, :] = pi * np.sign(w2[nyq_r, :])
    if nyq_c is not None:
        w2[:, nyq_c] = pi * np.sign(w1[:, nyq_c])
    for r in (0, nyq_r):
        for c in (0, nyq_c):
            if r is not None and c is not None:
                special[r, c] = True
    radius = np.hypot(w1, w2)
    radius[special | (radius == 0)] = 1.0
    u1, u2 = w1 / radius, w2 / radius
    norm = np.hypot(a1, a2)
    norm[0, 0] = 1.0
    v1, v2 = a1 / norm, a2 / norm
    out = np.empty((order + 1, rows, cols), dtype=np.complex128)
    for n in range(order + 1):
        gain = np.sqrt(comb(order, n))
        channel = gain * (-1j * u1) ** n * (-1j * u2) ** (order - n)
        channel[special] = gain * v1[special] ** n * v2[special] ** (order - n)
        channel[0, 0] = np.sqrt(comb(order, n) / 2.0**order)
        out[n] = channel
    if half:
        out = np.ascontiguousarray(out[:, :, : cols // 2 + 1])
    out.flags.writeable = False
    return out


def _psi(radius: np.ndarray) -> np.ndarray:
    """Simoncelli mother wavelet ``cos(π/2 · log2(2r/π))`` on ``π/4 < r <= π``, 0 elsewhere."""
    out = np.zeros_like(radius)
    inside = (radius > pi / 4) & (radius <= pi)
    out[inside] = np.cos(pi / 2 * np.log2(2 * radius[inside] / pi))
    return out


class SimoncelliFrame(NamedTuple):
    """Radial filters of the Simoncelli frame (real, non-negative)."""

    bandpass: np.ndarray  #: (J, M, K) ψ̂_s, s = 0 finest
    lowpass: np.ndarray  #: (M, K) φ̂_J
    highpass: np.ndarray | None  #: (M, K) ĥ_0, or None without the initial high-pass


def simoncelli_filters(shape, scales: int, *, initial_highpass: bool = False, half: bool = True) -> SimoncelliFrame:
    """Isotropic band-limited (Simoncelli) wavelet frame of ``scales`` dyadic bands.

    Parameters
    ----------
    shape : (int, int)
        Image shape (M, N).
    scales : int
        Number J >= 1 of band-pass scales.
    initial_highpass : bool, default False
        Add ĥ_0 for ``||ω|| > π/2`` (including the corners ``||ω|| > π``). False matches the reference MATLAB
        code (``Simoncelli.initial = false``).
    half : bool, default True
        ``rfft2`` half grid (M, N // 2 + 1) instead of the full grid.

    Returns
    -------
    SimoncelliFrame
        ``bandpass`` (J, M, K), ``lowpass`` (M, K), ``highpass`` (M, K) or None.

    Notes
    -----
    ``ψ̂(ω) = cos(π/2 · log2(2||ω||/π))`` for ``π/4 < ||ω|| <= π``, else 0, and ``ψ̂_s(ω) = ψ̂(2^s ω)``.
    ``φ̂_J² = 1`` on ``||ω|| <= π/2^{J+1}``, ``1 − ψ̂(2^{J−1}ω)²`` on ``(π/2^{J+1}, π/2^J]``, 0 beyond;
    ``ĥ_0² = ψ̂(ω/2)²`` on ``(π/2, π]`` and 1 for ``||ω|| > π``. Then
    ``ĥ_0² + Σ_s ψ̂_s² + φ̂_J² = 1`` on the whole grid; without ĥ_0 only on ``||ω|| <= π/2`` (docs/algorithms.md §4.3).

    References
    ----------
    J. Portilla, E. P. Simoncelli, "A parametric texture model based on joint statistics of complex wavelet
    coefficients", IJCV 40(1), 2000, doi:10.1023/A:1026553619983.
    """
    rows, cols = check_shape(shape)
    _, scales = _check_order_scales(0, scales)
    return _simoncelli(rows, cols, scales, bool(initial_highpass), bool(half))


@functools.lru_cache(maxsize=32)
def _simoncelli(rows: int, cols: int, scales: int, initial_highpass: bool, half: bool) -> SimoncelliFrame:
    w1, w2 = frequency_grid((rows, cols), half=half)
    radius = np.hypot(w1, w2)
    bands = np.stack([_psi(radius * 2.0**s) for s in range(scales)])
    low_sq = np.where(radius <= pi / 2 ** (scales + 1), 1.0, 0.0)
    ring = (radius > pi / 2 ** (scales + 1)) & (radius <= pi / 2**scales)
    low_sq[ring] = 1.0 - _psi(radius[ring] * 2.0 ** (scales - 1)) ** 2
    low = np.sqrt(np.clip(low_sq, 0.0, 1.0))
    high = None
    if initial_highpass:
        high = np.where(radius > pi, 1.0, _psi(radius / 2) * (radius > pi / 2))
    for array in (bands, low, high):
        if array is not None:
            array.flags.writeable = False
    return SimoncelliFrame(bands, low, high)


def riesz_transform(image, order: int) -> np.ndarray:
    """Riesz transform of order N of a 2-D image.

    Parameters
    ----------
    image : ndarray (M, N)
    order : int

    Returns
    -------
    ndarray (order + 1, M, N) of float64
        ``R^{(n, order−n)} f`` for ``n = 0..order``; ``Σ_n ||R_n f||² = ||f||²`` (see :func:`riesz_filters`).

    Examples
    --------
    >>> f = np.random.default_rng(0).normal(size=(32, 48))
    >>> r = riesz_transform(f, 3)
    >>> bool(np.isclose((r ** 2).sum(), (f ** 2).sum()))
    True
    """
    image = check_image(image, "image")
    spectrum = np.fft.rfft2(image)
    return np.fft.irfft2(riesz_filters(image.shape, order) * spectrum, s=image.shape)


class RieszWavelet(NamedTuple):
    """Output of :func:`riesz_wavelet_transform`."""

    bandpass: np.ndarray  #: (J, N + 1, M, N) c_{s,n}
    lowpass: np.ndarray  #: (M, N) φ_J * f
    highpass: np.ndarray | None  #: (N + 1, M, N) h_0 * R_n f, or None


def riesz_wavelet_transform(image, order: int, scales: int, *, initial_highpass: bool = False) -> RieszWavelet:
    """Undecimated Riesz-wavelet transform: Riesz channels of each Simoncelli band.

    Parameters
    ----------
    image : ndarray (M, N)
    order : int
        Riesz order N.
    scales : int
        Number of scales J.
    initial_highpass : bool, default False

    Returns
    -------
    RieszWavelet
        ``bandpass[s, n] = IDFT(ψ̂_s · R̂_n · f̂)``, the low-pass residual and, if requested, the high-pass channels.

    Notes
    -----
    ``Σ_{s,n} ||c_{s,n}||² + ||φ_J * f||² + Σ_n ||h_0 * R_n f||² = ||f||²`` (with ĥ_0); without ĥ_0 the identity holds
    for images band-limited to ``||ω|| <= π/2``.
    """
    image = check_image(image, "image")
    order, scales = _check_order_scales(order, scales)
    frame = simoncelli_filters(image.shape, scales, initial_highpass=initial_highpass)
    riesz = riesz_filters(image.shape, order)
    spectrum = np.fft.rfft2(image)
    band = np.fft.irfft2(frame.bandpass[:, None] * riesz[None] * spectrum, s=image.shape)
    low = np.fft.irfft2(frame.lowpass * spectrum, s=image.shape)
    high = None
    if frame.highpass is not None:
        high = np.fft.irfft2(frame.highpass * riesz * spectrum, s=image.shape)
    return RieszWavelet(band, low, high)


@functools.lru_cache(maxsize=16)
def _subband_filters(rows: int, cols: int, order: int, scales: int, initial_highpass: bool, dtype: str) -> np.ndarray:
    """Products ψ̂_s · R̂_n stacked (K, M, N // 2 + 1), cached by shape and parameters."""
    frame = _simoncelli(rows, cols, scales, initial_highpass, True)
    riesz = _riesz_filters(rows, cols, order, True)
    stack = [frame.bandpass[s] * riesz for s in range(scales)]
    if initial_highpass:
        stack.append(frame.highpass * riesz)
    out = np.concatenate(stack).astype(dtype)
    out.flags.writeable = False
    return out


class RieszExtractor:
    """Coefficient maps ``c_{s,n}`` of the Riesz-wavelet transform, for :mod:`semgraph.features.extract`.

    Channels are ordered scale-major: ``(s=0, n=0), (s=0, n=1), …, (s=J−1, n=N)``, then, with
    ``initial_highpass``, the N + 1 high-pass channels.
    """

    def __init__(self, config):
        if config.align:
            raise InvalidInput("align=True (local steering) is not implemented for the 'riesz' method; use align=False.")
        self.config = config

    def channel_names(self) -> list[str]:
        """Names ``riesz_s{s}_n{n}`` (and ``riesz_hp_n{n}``)."""
        cfg = self.config
        names = [f"riesz_s{s}_n{n}" for s in range(cfg.scales) for n in range(cfg.order + 1)]
        if cfg.initial_highpass:
            names += [f"riesz_hp_n{n}" for n in range(cfg.order + 1)]
        return names

    def fit_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """Smallest FFT-friendly shape at least ``shape`` whose excess is even on each side.

        An even excess is split equally between both ends, which keeps the padded box, hence the features,
        exactly equivariant under ``np.rot90``.
        """
        from scipy.fft import next_fast_len

        def fit(n: int) -> int:
            m = next_fast_len(n, real=True)
            while (m - n) % 2:
                m = next_fast_len(m + 1, real=True)
            return m

        return fit(shape[0]), fit(shape[1])

    def maps(self, box: np.ndarray) -> np.ndarray:
        """Coefficient maps (K, M, N) of a (mirror-padded) box (M, N), in the box's dtype."""
        cfg = self.config
        ctype = "complex64" if box.dtype == np.float32 else "complex128"
        filters = _subband_filters(box.shape[0], box.shape[1], cfg.order, cfg.scales, cfg.initial_highpass, ctype)
        # scipy.fft (pocketfft, native single precision) is ~15% faster than numpy.fft here; overwrite the product
        spectrum = filters * scipy.fft.rfft2(box)
        return scipy.fft.irfft2(spectrum, s=box.shape, overwrite_x=True)
