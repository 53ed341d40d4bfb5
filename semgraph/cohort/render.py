"""Draw one lesion into a synthetic CT slice from its sampled terms (never from its diagnosis).

Each term has a visible counterpart:

* contour (smooth / lobulated / irregular): the lesion is star-shaped around its centre with a radius function
  r(θ) that is an ellipse, an ellipse with a few rounded bulges, or a jagged many-harmonic outline with spicules;
* margin definition: circumscribed = a one-pixel transition; indistinct = a wide, ragged sigmoid transition;
* attenuation: water ≈ 3–18 HU, hypodense ≈ 40–68 HU, soft tissue ≈ liver − 25 … liver − 8 HU before enhancement;
* enhancement: nonenhancing = nothing added; enhancing raises parts of the lesion by 10–55 HU, hypervascular by
  15–25 HU more; the spatial pattern decides which parts: homogeneous = all of it, heterogeneous = blotches or an
  irregular rim, peripheral nodular = discontinuous nodules at blood-pool HU along the inside of the margin;
* uniformity: a low-frequency field of 10–15 HU (heterogeneous) or about 1.5 HU (homogeneous) inside;
* internal nodules: 1–5 small bright nodules in the central half;
* perilesional tissue: abnormal = a 3–7 mm hypo- (or hyper-) attenuating halo around the lesion;
* abuts capsule: the lesion is centred so it reaches and is cut by the liver surface where that surface faces fat
  (not where the liver borders the IVC or the spine); otherwise it stays ≥ 5 mm inside the liver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from semgraph.cohort.anatomy import (
    Background,
    liver_segment,
    render_background,
    smooth_field,
)
from semgraph.cohort.profiles import LesionTerms

N_ANGLES = 720


@dataclass
class RenderedSlice:
    """Pixels and lesion geometry of one rendered case."""

    hu: np.ndarray  # int16 (H, W)
    mask: np.ndarray  # bool (H, W)
    centre_rc: tuple[int, int]
    diameter_mm: float
    liver_segment: str
    enhancement_style: str | None  # "rim" or "blotchy" for heterogeneous enhancement


def _radius_table(rng: np.random.Generator, shape: str) -> np.ndarray:
    """Relative radius r(θ)/R on ``N_ANGLES`` angles, mean 1."""
    th = np.linspace(0.0, 2 * np.pi, N_ANGLES, endpoint=False)
    q = rng.uniform(0.72, 1.0)
    phi = rng.uniform(0, np.pi)
    f = 1.0 / np.sqrt(np.cos(th - phi) ** 2 + (np.sin(th - phi) / q) ** 2)
    if shape == "smooth":
        f *= 1.0 + 0.02 * np.cos(2 * th + rng.uniform(0, 2 * np.pi))
    elif shape == "lobulated":
        n = int(rng.integers(3, 7))
        centres = np.sort(rng.uniform(0, 2 * np.pi, n))
        bumps = np.zeros_like(th)
        for c in centres:
            d = np.angle(np.exp(1j * (th - c)))
            bumps = np.maximum(bumps, rng.uniform(0.18, 0.32) * np.exp(-((d / rng.uniform(0.3, 0.55)) ** 2)))
        f *= 0.84 + bumps
    else:  # irregular: many harmonics and spicules
        for k in range(2, 5):
            f *= 1.0 + rng.uniform(0.0, 0.1) * np.cos(k * th + rng.uniform(0, 2 * np.pi))
        jag = ndimage.gaussian_filter1d(rng.standard_normal(N_ANGLES), rng.uniform(14.0, 28.0), mode="wrap")
        f *= 1.0 + rng.uniform(0.08, 0.14) * jag / jag.std()
        for c in rng.uniform(0, 2 * np.pi, int(rng.integers(2, 5))):
            d = np.angle(np.exp(1j * (th - c)))
            f *= 1.0 + rng.uniform(0.12, 0.28) * np.exp(-np.abs(d / rng.uniform(0.02, 0.05)))
    return f / f.mean()


def _place(rng, bg: Background, radius_px: float, rmax_rel: float, abuts: bool, spacing: float):
    """Choose a lesion centre (row, col) and possibly shrink the radius so the lesion fits as asked."""
    size = bg.liver.shape[0]
    depth = ndimage.distance_transform_edt(bg.liver)
    if abuts:
        # the capsule is the liver surface facing fat: the nearest non-liver pixel must be fat, not the IVC or
        # the spine (which are cut out of the liver mask too), or the lesion would not reach the visible surface
        fat = ~bg.liver & (bg.hu < -30.0)
        to_fat = ndimage.distance_transform_edt(~fat) if fat.any() else np.full(bg.liver.shape, np.inf)
        faces_fat = np.abs(to_fat - depth) <= 1.0
    idx = np.arange(size)
    border = np.minimum.outer(np.minimum(idx, size - 1 - idx), np.minimum(idx, size - 1 - idx))
    for _ in range(12):
        rmax = radius_px * rmax_rel
        room = border >= rmax + 4
        if abuts:
            target = 0.72 * radius_px
            cand = room & (np.abs(depth - target) <= 1.5)
            if (cand & faces_fat).any():
                cand &= faces_fat
        else:
            cand = room & (depth >= rmax + max(5.0 / spacing, 3.0))
        rows, cols = np.nonzero(cand)
        if len(rows):
            k = int(rng.integers(len(rows)))
            return (int(rows[k]), int(cols[k])), radius_px
        radius_px *= 0.85
    # cannot fit as asked: deepest liver point
    r, c = np.unravel_index(int(np.argmax(depth * (border > 8))), depth.shape)
    return (int(r), int(c)), min(radius_px, max(float(depth[r, c]) * 0.8, 3.0))


def _disc(dist: np.ndarray, r: float) -> np.ndarray:
    return np.clip(r - dist + 0.5, 0.0, 1.0)


def render_case(
    rng: np.random.Generator,
    terms: LesionTerms,
    diameter_mm: float,
    *,
    size: int = 256,
    spacing: float = 0.7,
    phase: str = "portal venous",
) -> RenderedSlice:
    """Render a slice with one lesion described by ``terms``; returns int16 HU and the lesion mask."""
    bg = render_background(rng, size, spacing, phase)
    shape = bg.hu.shape
    rel = _radius_table(rng, terms.shape)
    (cr, cc), radius = _place(rng, bg, diameter_mm / 2.0 / spacing, float(rel.max()), terms.abuts_capsule, spacing)

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = yy - cr, xx - cc
    dist = np.hypot(dx, dy)
    theta_idx = ((np.arctan2(dy, dx) % (2 * np.pi)) / (2 * np.pi) * N_ANGLES).astype(int) % N_ANGLES
    r_theta = radius * rel[theta_idx]
    s = r_theta - dist  # approximate signed distance to the contour, px, > 0 inside
    liver_f = bg.liver.astype(np.float32)
    mask = (s > 0) & bg.liver

    liver, vhu = bg.liver_hu, bg.vessel_hu
    # --- lesion interior map ---------------------------------------------------------------------------------
    if terms.attenuation == "water":
        base = rng.uniform(3.0, 18.0)
    elif terms.attenuation == "hypodense":
        base = rng.uniform(30.0, 60.0)
    else:
        base = liver - rng.uniform(18.0, 32.0)
    val = np.full(shape, base, np.float32)
    het_sigma = max(radius / 4.0, 1.5)
    if terms.uniformity == "heterogeneous":
        amp = rng.uniform(5.0, 8.0) if terms.attenuation == "water" else rng.uniform(10.0, 15.0)
        val += amp * smooth_field(rng, shape, het_sigma)
    else:
        val += 1.5 * smooth_field(rng, shape, het_sigma)

    hyper = terms.enhancement == "hypervascular"
    style = None
    if terms.pattern == "homogeneous":
        if terms.attenuation == "soft tissue":  # enhances to above the liver
            val += (liver - base) + (rng.uniform(40.0, 55.0) if hyper else rng.uniform(24.0, 34.0))
        else:  # enhances but stays hypodense
            val += rng.uniform(5.0, 10.0) + (rng.uniform(8.0, 15.0) if hyper else 0.0)
    elif terms.pattern == "heterogeneous":
        p_rim = {"water": 1.0, "hypodense": 0.45, "soft tissue": 0.1}[terms.attenuation]
        style = "rim" if rng.random() < p_rim else "blotchy"
        if style == "rim":
            thick = max(2.0, radius * rng.uniform(0.1, 0.2)) * (1.0 + 0.45 * smooth_field(rng, shape, 3.0))
            rim = np.clip(thick - s + 0.5, 0.0, 1.0) * (s > -1)
            rim_hu = liver + rng.uniform(-5.0, 20.0) + (rng.uniform(15.0, 25.0) if hyper else 0.0)
            val = val * (1 - rim) + rim_hu * rim
        else:
            field = smooth_field(rng, shape, max(radius / 4.5, 1.5))
            blot = 1.0 / (1.0 + np.exp(-(field - 0.3) / 0.2))
            soft = terms.attenuation == "soft tissue"
            if soft:  # the non-enhancing parts (necrosis, washout) are darker
                val -= rng.uniform(8.0, 18.0)
            target = liver + (rng.uniform(25.0, 45.0) if soft else rng.uniform(-25.0, 0.0))
            target += rng.uniform(20.0, 35.0) if hyper else 0.0
            val = val * (1 - blot) + (target + (val - base)) * blot
    elif terms.pattern == "peripheral nodular":
        n = int(rng.integers(5, 9)) if hyper else int(rng.integers(3, 7))
        # discontinuous: random angles, with gaps, some nodules clustered
        angles = np.sort(rng.uniform(0, 2 * np.pi * rng.uniform(0.55, 0.9), n)) + rng.uniform(0, 2 * np.pi)
        nod = np.zeros(shape, np.float32)
        for a in angles:
            nr = max(1.6, radius * rng.uniform(0.08, 0.24) * (1.3 if hyper else 1.0))
            rr = radius * rel[int((a % (2 * np.pi)) / (2 * np.pi) * N_ANGLES) % N_ANGLES] - nr * rng.uniform(0.9, 1.3)
            ny, nx = cr + rr * np.sin(a), cc + rr * np.cos(a)
            nod = np.maximum(nod, _disc(np.hypot(yy - ny, xx - nx), nr))
        nod = ndimage.gaussian_filter(nod, 0.6)
        nod_hu = vhu - rng.uniform(0.0, 15.0)
        val = val * (1 - nod) + nod_hu * nod

    if terms.internal_nodules:
        n = int(rng.integers(1, 3)) if radius < 10 else int(rng.integers(2, 6))
        nod = np.zeros(shape, np.float32)
        for _ in range(n):
            a, rho = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1)) * 0.45
            ny, nx = cr + radius * rho * np.sin(a), cc + radius * rho * np.cos(a)
            nod = np.maximum(nod, _disc(np.hypot(yy - ny, xx - nx), max(1.8, radius * rng.uniform(0.08, 0.16))))
        val += rng.uniform(45.0, 70.0) * nod

    # --- margin definition ------------------------------------------------------------------------------------
    if terms.definition == "indistinct":
        width = max(1.8, radius * rng.uniform(0.1, 0.16))
        ragged = s + radius * 0.12 * smooth_field(rng, shape, 2.0)
        memb = 1.0 / (1.0 + np.exp(-ragged / width))
        memb = np.where(s > -5 * width, memb, 0.0)
    else:
        memb = np.clip(s + 0.5, 0.0, 1.0)
    memb = (memb * ndimage.gaussian_filter(liver_f, 0.7)).astype(np.float32)

    # --- compose ----------------------------------------------------------------------------------------------
    hu = bg.hu.copy()
    keep_vessels = bg.vessels * np.clip((-s - 3.0) / 3.0, 0.0, 1.0)
    hu = hu * (1 - keep_vessels) + vhu * keep_vessels
    if not terms.normal_perilesional:
        halo_w = rng.uniform(3.0, 7.0) / spacing
        delta = -rng.uniform(18.0, 30.0) if rng.random() < 0.75 else rng.uniform(15.0, 25.0)
        halo = np.clip(1.0 + s / halo_w, 0.0, 1.0) * (s <= 0) * liver_f
        hu += delta * halo
    hu = hu * (1 - memb) + val * memb

    hu = ndimage.gaussian_filter(hu, 0.6)  # partial volume
    hu += rng.uniform(7.0, 11.0) * smooth_field(rng, shape, 0.7)  # quantum noise, slightly correlated
    out = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)

    diameter = float(2.0 * radius * spacing)
    seg = liver_segment(float(bg.x_mm[cc]), float(bg.y_mm[cr]), bool(rng.random() < 0.5), bg.liver_centre[0])
    if not mask.any():  # a lesion always has at least its centre pixel
        mask[cr, cc] = True
    return RenderedSlice(
        hu=out, mask=mask, centre_rc=(cr, cc), diameter_mm=round(diameter, 1), liver_segment=seg,
        enhancement_style=style,
    )
