"""Background anatomy of one synthetic axial CT slice through the upper abdomen.

Everything is laid out in millimetres in patient coordinates (x: patient right is negative and shown on the image
left, y: anterior is negative and shown at the top) and sampled onto the pixel grid, so a change of matrix size or
pixel spacing changes the field of view, not the anatomy. The view is a zoomed reconstruction centred on the liver:
the right lateral body wall (skin, subcutaneous fat, muscle, ribs) is at the image left, the IVC, aorta and the
top of a vertebral body at the lower right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

AIR, FAT, MUSCLE, BOWEL = -1000.0, -100.0, 50.0, 30.0

#: Liver parenchyma and vessel HU per contrast phase: (liver low, liver high, vessel over liver low, high).
PHASE_LEVELS = {
    "portal venous": (100.0, 118.0, 45.0, 65.0),
    "late arterial": (78.0, 92.0, 70.0, 110.0),
    "delayed": (88.0, 100.0, 25.0, 40.0),
}


@dataclass
class Background:
    """The slice without a lesion, plus what the lesion renderer needs to place and blend a lesion."""

    hu: np.ndarray  # float32 (H, W), no noise yet
    liver: np.ndarray  # bool (H, W)
    vessels: np.ndarray  # float32 (H, W) vessel membership in [0, 1]
    vessel_hu: float
    liver_hu: float
    x_mm: np.ndarray  # float32 (W,) patient x of each column
    y_mm: np.ndarray  # float32 (H,) patient y of each row
    liver_centre: tuple[float, float]  # mm


def grid(size: int, spacing: float, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Patient coordinates (mm) of the pixel centres: x per column, y per row."""
    offs = (np.arange(size, dtype=np.float32) - (size - 1) / 2.0) * np.float32(spacing)
    return offs + np.float32(centre[0]), offs + np.float32(centre[1])


def _ellipse(xx, yy, cx, cy, ax, ay, angle=0.0):
    """Normalised ellipse radius (< 1 inside)."""
    c, s = np.cos(angle), np.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    return np.sqrt((u / ax) ** 2 + (v / ay) ** 2)


def smooth_field(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ``sigma`` pixels."""
    step = int(sigma // 3)
    if step >= 2:  # wide kernels: filter a coarse grid, then interpolate up (same statistics, much faster)
        coarse = tuple(-(-n // step) + 2 for n in shape)
        f = ndimage.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), sigma / step, mode="wrap")
        f = ndimage.zoom(f, step, order=1, grid_mode=True, mode="grid-wrap")[: shape[0], : shape[1]]
    else:
        f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    sd = float(f.std())
    return f / sd if sd > 0 else f


def _tube_centrelines(rng, liver_centre, n_main, spacing):
    """Points (mm) and radii (mm) along a few curved, tapering vessel branches starting near the hilum."""
    pts, radii = [], []
    hx, hy = liver_centre[0] + 35.0, liver_centre[1] + 25.0
    for _ in range(n_main):
        ang = rng.uniform(np.pi * 0.65, np.pi * 1.55)
        length = rng.uniform(55.0, 105.0)
        bend = rng.uniform(-0.5, 0.5)
        r0 = rng.uniform(1.8, 3.6)
        t = np.linspace(0.0, 1.0, max(int(length / (0.4 * spacing)), 8))
        a = ang + bend * t
        step = length / len(t)
        x = hx + rng.uniform(-8, 8) + np.cumsum(np.cos(a) * step)
        y = hy + rng.uniform(-8, 8) + np.cumsum(np.sin(a) * step)
        pts.append(np.stack([x, y], 1))
        radii.append(r0 * (1.0 - 0.65 * t))
        # one side branch per main branch
        k = int(rng.integers(len(t) // 4, 3 * len(t) // 4))
        a2 = a[k] + rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
        l2 = rng.uniform(20.0, 45.0)
        t2 = np.linspace(0.0, 1.0, max(int(l2 / (0.4 * spacing)), 6))
        x2 = x[k] + np.cumsum(np.full_like(t2, np.cos(a2) * l2 / len(t2)))
        y2 = y[k] + np.cumsum(np.full_like(t2, np.sin(a2) * l2 / len(t2)))
        pts.append(np.stack([x2, y2], 1))
        radii.append(radii[-1][k] * 0.8 * (1.0 - 0.5 * t2))
    return np.concatenate(pts), np.concatenate(radii)


def render_background(rng: np.random.Generator, size: int, spacing: float, phase: str) -> Background:
    """Draw body wall, ribs, fat, bowel, IVC, aorta, spine and a textured liver with vessels (no noise)."""
    liver_lo, liver_hi, ves_lo, ves_hi = PHASE_LEVELS[phase]
    liver_hu = float(rng.uniform(liver_lo, liver_hi))
    vessel_hu = liver_hu + float(rng.uniform(ves_lo, ves_hi))

    # body and field of view
    bx, by = rng.uniform(135.0, 160.0), rng.uniform(100.0, 120.0)
    fov_c = (float(-bx + 90.0 + rng.uniform(-6, 6)), float(rng.uniform(-16.0, -4.0)))
    xs, ys = grid(size, spacing, fov_c)
    xx, yy = np.meshgrid(xs, ys)
    shape = xx.shape

    fat_t, mus_t = rng.uniform(8.0, 28.0), rng.uniform(7.0, 12.0)
    body_r = _ellipse(xx, yy, 0.0, 0.0, bx, by)
    inner_scale = 1.0 - (fat_t + mus_t) / bx
    muscle_r = _ellipse(xx, yy, 0.0, 0.0, bx - fat_t, by - fat_t * 0.8)
    cavity_r = _ellipse(xx, yy, 0.0, 0.0, bx * inner_scale, by * inner_scale)
    hu = np.full(shape, AIR, np.float32)
    hu[body_r < 1.0] = FAT
    hu[muscle_r < 1.0] = MUSCLE + 8.0 * smooth_field(rng, shape, 2.0)[muscle_r < 1.0]
    cavity = cavity_r < 1.0
    # intra-abdominal fat with bowel loops
    bowel = smooth_field(rng, shape, 9.0 / spacing) > 0.3
    hu[cavity] = np.where(bowel[cavity], BOWEL, FAT + 10.0)

    # ribs: bright ovals inside the lateral wall muscle
    for ang in np.linspace(np.pi * 0.72, np.pi * 1.3, int(rng.integers(3, 6))) + rng.uniform(-0.1, 0.1):
        rr = 1.0 - (fat_t + mus_t * 0.5) / bx
        cx, cy = bx * rr * np.cos(ang), by * rr * np.sin(ang)
        d = _ellipse(xx, yy, cx, cy, 5.5, 9.0, ang)
        hu[d < 1.0] = 250.0
        hu[d < 0.6] = 600.0 if rng.random() < 0.5 else 180.0

    # spine (top of a vertebral body), aorta, IVC at the lower right
    sx, sy = rng.uniform(-5, 10), by * 0.72
    vert = _ellipse(xx, yy, sx, sy, 22.0, 20.0)
    hu[vert < 1.0] = 650.0
    hu[vert < 0.85] = 250.0 + 40.0 * smooth_field(rng, shape, 1.5)[vert < 0.85]
    aorta = _ellipse(xx, yy, sx + 22.0, sy - 32.0, 11.0, 11.0) < 1.0
    hu[aorta] = vessel_hu + 25.0

    # liver: a lobulated blob filling the right upper quadrant, kept inside the muscle wall
    lc = (float(-bx * 0.42 + rng.uniform(-6, 6)), float(rng.uniform(-12.0, 2.0)))
    ang = np.arctan2(yy - lc[1], xx - lc[0])
    rad = np.hypot(xx - lc[0], yy - lc[1])
    r_theta = np.full(shape, rng.uniform(78.0, 92.0), np.float32)
    for k in range(2, 6):
        r_theta += rng.uniform(0.0, 7.0 / k) * np.cos(k * ang + rng.uniform(0, 2 * np.pi))
    liver = rad < r_theta
    left_lobe = _ellipse(xx, yy, lc[0] + 70.0, lc[1] - 30.0 + rng.uniform(-8, 8), rng.uniform(35, 55), 24.0, -0.35)
    liver |= left_lobe < 1.0
    wall_gap = _ellipse(xx, yy, 0.0, 0.0, bx * inner_scale - 2.5, by * inner_scale - 2.5) < 1.0
    liver &= wall_gap
    ivc_c = (lc[0] + 42.0 + rng.uniform(-5, 5), lc[1] + 52.0 + rng.uniform(-5, 5))
    ivc = _ellipse(xx, yy, ivc_c[0], ivc_c[1], 13.0, 10.0) < 1.0
    liver &= ~ivc
    liver &= vert > 1.15
    # gallbladder fossa / fissure notch
    notch = _ellipse(xx, yy, lc[0] + 45.0, lc[1] - 55.0, 6.0, 20.0, 0.3) < 1.0
    liver &= ~notch
    hu[ivc] = vessel_hu

    texture = 4.0 * smooth_field(rng, shape, 2.5) + 2.5 * smooth_field(rng, shape, 1.0)
    hu[liver] = liver_hu + texture[liver]

    # vessels: tapering branches plus a few cross-sections, drawn by distance to their centrelines
    pts, radii = _tube_centrelines(rng, lc, int(rng.integers(3, 6)), spacing)
    n_dots = int(rng.integers(4, 10))
    dots = np.stack([rng.uniform(xs[0], xs[-1], n_dots), rng.uniform(ys[0], ys[-1], n_dots)], 1)
    pts = np.concatenate([pts, dots])
    radii = np.concatenate([radii, rng.uniform(1.2, 3.0, n_dots)])
    cols = np.round((pts[:, 0] - xs[0]) / spacing).astype(int)
    rows = np.round((pts[:, 1] - ys[0]) / spacing).astype(int)
    ok = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    vessels = np.zeros(shape, np.float32)
    if ok.any():
        seed_img = np.ones(shape, bool)
        rad_img = np.zeros(shape, np.float32)
        seed_img[rows[ok], cols[ok]] = False
        rad_img[rows[ok], cols[ok]] = radii[ok] / spacing
        dist, idx = ndimage.distance_transform_edt(seed_img, return_indices=True)
        r_near = rad_img[idx[0], idx[1]]
        vessels = np.clip(r_near - dist + 0.5, 0.0, 1.0).astype(np.float32)
        inside = ndimage.binary_erosion(liver, iterations=2)
        vessels *= inside
    return Background(
        hu=hu, liver=liver, vessels=vessels, vessel_hu=vessel_hu, liver_hu=liver_hu, x_mm=xs, y_mm=ys,
        liver_centre=lc,
    )


def liver_segment(x_mm: float, y_mm: float, cranial: bool, liver_centre_x: float) -> str:
    """Couinaud segment (I–VIII) of a point of an axial slice, from its position relative to the liver.

    A coarse map: caudate next to the IVC, left lateral (II/III) and medial (IV) sections on the patient's left,
    right anterior (V/VIII) and posterior (VI/VII) sections on the right; ``cranial`` picks the upper segment.
    """
    rel = x_mm - liver_centre_x
    if rel > 55.0:
        return "II" if cranial else "III"
    if rel > 25.0:
        return "I" if y_mm > 25.0 else "IV"
    if y_mm < -5.0:
        return "VIII" if cranial else "V"
    return "VII" if cranial else "VI"
