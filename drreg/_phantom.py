"""A synthetic adult chest CT generated in code: the example volume of :func:`drreg.volume.load_example_ct`.

Everything is analytic (ellipsoids, superellipses, tubes along polylines, plates on the rib-cage surface),
evaluated in float32 numpy inside each structure's bounding box, then painted in anatomical order
(later structures overwrite earlier ones). Deterministic: the only randomness (vessel tree, noise) comes
from a seeded ``numpy.random.Generator``.

Convention: world frame RAS+ in mm (x toward the patient's right, y anterior, z superior); the grid is
centred on the origin with a diagonal affine, so voxel ``(i, j, k)`` sits at ``spacing * (index - (shape - 1) / 2)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline

__all__ = ["make_chest_phantom", "GRID_SHAPE", "SPACING", "STRUCTURES"]

GRID_SHAPE = (360, 280, 140)  # voxels along x (right), y (anterior), z (superior)
SPACING = (1.0, 1.0, 2.5)  # mm
SEED = 20240607

_VERTEBRAE = ["C7"] + [f"T{i}" for i in range(1, 13)] + ["L1", "L2"]
STRUCTURES: list[tuple[str, str]] = (
    [
        ("skeleton", "clavicula_left"),
        ("skeleton", "clavicula_right"),
        ("skeleton", "scapula_left"),
        ("skeleton", "scapula_right"),
        ("skeleton", "sternum"),
        ("skeleton", "costal_cartilages"),
    ]
    + [("ribs", f"rib_left_{k}") for k in range(1, 13)]
    + [("ribs", f"rib_right_{k}") for k in range(1, 13)]
    + [("vertebrae", f"vertebrae_{name}") for name in _VERTEBRAE]
    + [("vertebrae", "intervertebral_discs")]
    + [
        ("cardiac", "heart"),
        ("cardiac", "aorta"),
        ("cardiac", "pulmonary_artery"),
        ("cardiac", "superior_vena_cava"),
        ("cardiac", "inferior_vena_cava"),
        ("cardiac", "brachiocephalic_trunk"),
        ("cardiac", "common_carotid_artery_left"),
        ("cardiac", "subclavian_artery_left"),
        ("organs", "lung_left"),
        ("organs", "lung_right"),
        ("organs", "trachea"),
        ("organs", "esophagus"),
        ("organs", "liver"),
        ("organs", "stomach"),
        ("organs", "spleen"),
        ("organs", "kidney_left"),
        ("organs", "kidney_right"),
        ("organs", "spinal_cord"),
        ("muscles", "pectoralis_major_left"),
        ("muscles", "pectoralis_major_right"),
        ("muscles", "autochthon_left"),
        ("muscles", "autochthon_right"),
    ]
)
_ID = {name: index + 1 for index, (_, name) in enumerate(STRUCTURES)}

# Hounsfield units.
HU_AIR, HU_LUNG, HU_FAT, HU_SKIN, HU_MUSCLE, HU_SOFT = -1000.0, -860.0, -100.0, 30.0, 48.0, 35.0
HU_BLOOD, HU_LIVER, HU_SPLEEN, HU_KIDNEY, HU_DISC, HU_CARTILAGE = 40.0, 60.0, 48.0, 32.0, 85.0, 150.0
HU_CORTEX, HU_RIB_CORTEX, HU_CANCELLOUS, HU_POSTERIOR_ELEMENTS = 1000.0, 1150.0, 220.0, 420.0

# Body outline: a superellipse per slice, |x/a|^n + |y/b|^n <= 1 (b anterior or posterior), knots in z (mm).
_BODY_N = 2.6
_BODY_Z = [-175.0, -100.0, -40.0, 40.0, 110.0, 140.0, 155.0, 175.0]
_BODY_A = [150.0, 155.0, 160.0, 163.0, 167.0, 170.0, 165.0, 135.0]
_BODY_B_ANT = [108.0, 112.0, 113.0, 112.0, 102.0, 96.0, 88.0, 70.0]
_BODY_B_POST = [118.0, 120.0, 122.0, 122.0, 122.0, 120.0, 117.0, 110.0]

# Rib cage: polar curve around (0, _CAGE_CY); phi is the angle from the posterior midline (0) to the
# anterior midline (pi). The posterior dent wraps the ribs toward the spine (paravertebral gutters).
_CAGE_CY = 0.0
_CAGE_A, _CAGE_B_ANT, _CAGE_B_POST = 140.0, 92.0, 100.0
_DENT, _DENT_WIDTH = 0.5, np.deg2rad(28.0)
_CAGE_Z = [-180.0, -140.0, -110.0, 0.0, 30.0, 55.0, 80.0, 104.0, 128.0, 150.0, 165.0, 180.0]
_CAGE_S = [0.94, 0.98, 1.0, 1.0, 0.98, 0.95, 0.9, 0.83, 0.7, 0.52, 0.4, 0.3]
_LUNG_GAP = 7.0  # mm from the rib centreline to the lung surface


def _cage_radius(phi: np.ndarray) -> np.ndarray:
    """Rib-cage radius (mm, at scale 1) for angles ``phi`` from the posterior midline (radians)."""
    b = np.where(np.cos(phi) > 0, _CAGE_B_POST, _CAGE_B_ANT)
    radius = 1.0 / np.sqrt((np.sin(phi) / _CAGE_A) ** 2 + (np.cos(phi) / b) ** 2)
    return radius * (1.0 - _DENT * np.exp(-((phi / _DENT_WIDTH) ** 4)))


def _cage_scale(z: np.ndarray | float) -> np.ndarray:
    return np.interp(z, _CAGE_Z, _CAGE_S)


def _cage_point(phi: np.ndarray, z: np.ndarray, side: float, offset: float = 0.0) -> np.ndarray:
    """World points (N, 3) on the cage surface (plus ``offset`` mm outward) at angles ``phi`` and heights ``z``."""
    radius = _cage_scale(z) * _cage_radius(phi) + offset
    return np.stack([side * radius * np.sin(phi), _CAGE_CY - radius * np.cos(phi), z], axis=1)


class _Canvas:
    """The HU and label volumes plus world coordinates and bounding-box helpers."""

    def __init__(self) -> None:
        self.axes = [
            ((np.arange(n) - (n - 1) / 2.0) * s).astype(np.float32) for n, s in zip(GRID_SHAPE, SPACING, strict=True)
        ]
        self.hu = np.full(GRID_SHAPE, HU_AIR, dtype=np.float32)
        self.lab = np.zeros(GRID_SHAPE, dtype=np.uint8)

    def box(self, lo, hi):
        """Slices of the grid inside the world box ``[lo, hi]`` (mm) and broadcastable coordinates, or None."""
        slices = []
        for coords, a, b in zip(self.axes, lo, hi, strict=True):
            i0, i1 = np.searchsorted(coords, a, "left"), np.searchsorted(coords, b, "right")
            if i1 <= i0:
                return None
            slices.append(slice(int(i0), int(i1)))
        x = self.axes[0][slices[0]][:, None, None]
        y = self.axes[1][slices[1]][None, :, None]
        z = self.axes[2][slices[2]][None, None, :]
        return tuple(slices), x, y, z

    def paint(self, sl, mask, value, label: int | None) -> None:
        """Set HU (scalar or array broadcast to the box) and, unless ``label`` is None, the label where ``mask``."""
        np.copyto(self.hu[sl], value, where=mask, casting="unsafe")
        if label is not None:
            np.copyto(self.lab[sl], np.uint8(label), where=mask)

    def index_range(self, axis: int, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last grid index with coordinate in ``[lo, hi]`` along ``axis`` (empty when last < first)."""
        start, step = float(self.axes[axis][0]), SPACING[axis]
        first = np.clip(np.ceil((lo - start) / step - 1e-6), 0, GRID_SHAPE[axis]).astype(np.int64)
        last = np.clip(np.floor((hi - start) / step + 1e-6), -1, GRID_SHAPE[axis] - 1).astype(np.int64)
        return first, last


def _intervals(first: np.ndarray, last: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Count, per voxel, the index intervals ``[first, last]`` (2D arrays over the other axes) covering it.

    Builds +1/-1 steps at the interval ends and integrates them along ``axis``: one pass over the volume
    instead of two comparisons per interval.
    """
    shape = list(first.shape[1:])
    shape.insert(axis, length + 1)
    steps = np.zeros(shape, dtype=np.int8)
    grids = np.indices(first.shape[1:])
    for lo, hi in zip(first, last, strict=True):
        valid = hi >= lo
        index = [g[valid] for g in grids]
        for where, step in ((lo[valid], 1), (hi[valid] + 1, -1)):
            full_index = list(index)
            full_index.insert(axis, where)
            np.add.at(steps, tuple(full_index), step)
    counts = np.cumsum(steps, axis=axis, dtype=np.int8)
    return np.ascontiguousarray(np.take(counts, np.arange(length), axis=axis)).view(np.uint8)


class _Tubes:
    """Tubes along polylines, rasterised segment by segment into a normalised-distance buffer.

    Each voxel keeps the smallest normalised distance ``rho`` (1 on the tube surface) over all segments and
    the label of that segment; :meth:`flush` paints ``rho <= 1`` and resets the buffer.
    """

    def __init__(self, canvas: _Canvas) -> None:
        self.canvas = canvas
        self.best = np.full(GRID_SHAPE, np.inf, dtype=np.float32)
        self.best_label = np.zeros(GRID_SHAPE, dtype=np.uint8)
        self.boxes: list[tuple[slice, slice, slice]] = []

    def add(self, points, radius, label: int, radius_m=None, normals=None) -> None:
        """Add a tube. ``points`` (N, 3) mm; ``radius`` (N,) mm, or along ``normals`` when ``radius_m`` is given."""
        points = np.asarray(points, dtype=np.float64)
        radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(points),))
        elliptic = radius_m is not None
        if elliptic:
            radius_m = np.broadcast_to(np.asarray(radius_m, dtype=np.float64), (len(points),))
        for i in range(len(points) - 1):
            p0, p1 = points[i], points[i + 1]
            delta = p1 - p0
            length = float(np.linalg.norm(delta))
            if length < 1e-6:
                continue
            t = delta / length
            reach = max(radius[i], radius[i + 1])
            if elliptic:
                reach = max(reach, radius_m[i], radius_m[i + 1])
            found = self.canvas.box(np.minimum(p0, p1) - reach, np.maximum(p0, p1) + reach)
            if found is None:
                continue
            sl, x, y, z = found
            dx, dy, dz = x - np.float32(p0[0]), y - np.float32(p0[1]), z - np.float32(p0[2])
            s = np.clip((dx * t[0] + dy * t[1] + dz * t[2]) * np.float32(1.0 / length), 0.0, 1.0)
            along = s * np.float32(length)
            ex, ey, ez = dx - along * t[0], dy - along * t[1], dz - along * t[2]
            r = np.float32(radius[i]) + s * np.float32(radius[i + 1] - radius[i])
            if elliptic:
                n = normals[i] - np.dot(normals[i], t) * t
                n /= np.linalg.norm(n)
                m = np.cross(t, n)
                rm = np.float32(radius_m[i]) + s * np.float32(radius_m[i + 1] - radius_m[i])
                en = (ex * n[0] + ey * n[1] + ez * n[2]) / r
                em = (ex * m[0] + ey * m[1] + ez * m[2]) / rm
                rho = np.sqrt(en * en + em * em)
            else:
                rho = np.sqrt(ex * ex + ey * ey + ez * ez) / r
            best = self.best[sl]
            closer = rho < best
            best[closer] = rho[closer]
            self.best_label[sl][closer] = label
            self.boxes.append(sl)

    def flush(self, value, keep_label: bool = False, where=None) -> None:
        """Paint every voxel with ``rho <= 1``: HU ``value(rho, label)``; labels unless ``keep_label``."""
        for sl in self.boxes:
            best = self.best[sl]
            inside = best <= 1.0
            if where is not None:
                inside &= where(sl)
            if inside.any():
                labels = self.best_label[sl][inside]
                self.canvas.hu[sl][inside] = value(best[inside], labels)
                if not keep_label:
                    self.canvas.lab[sl][inside] = labels
            best[...] = np.inf
        self.boxes = []


def _smooth_curve(knots, samples: int) -> np.ndarray:
    """``samples`` points (samples, 3) on a natural cubic spline through ``knots`` (K, 3), chord-length parametrised."""
    knots = np.asarray(knots, dtype=np.float64)
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(knots, axis=0), axis=1))])
    spline = CubicSpline(chord, knots, bc_type="natural")
    return spline(np.linspace(0.0, chord[-1], samples))


# --------------------------------------------------------------------------------------------------------
# Anatomy, painted in order.
# --------------------------------------------------------------------------------------------------------


def _body(cv: _Canvas) -> dict:
    """Skin, subcutaneous fat, chest-wall muscle layer and the soft-tissue interior.

    Each layer is a superellipse per slice, ``|x/a|^n + |y/b|^n <= 1``; for every (x, z) column it covers an
    interval of y, so the nested layers are counted with :func:`_intervals` in one pass.
    """
    x, _, z = cv.axes
    a = np.interp(z, _BODY_Z, _BODY_A)
    b_ant = np.interp(z, _BODY_Z, _BODY_B_ANT)
    b_post = np.interp(z, _BODY_Z, _BODY_B_POST)
    # (shrink of a, of b anterior, of b posterior) in mm: skin, 2 mm of skin, subcutaneous fat, muscle layer.
    shells = ((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), (18.0, 11.0, 12.0), (30.0, 22.0, 24.0))
    firsts, lasts = [], []
    for shrink_a, shrink_ant, shrink_post in shells:
        tx = (np.abs(x)[:, None] / (a - shrink_a)[None, :]) ** _BODY_N  # (X, Z)
        extent = np.clip(1.0 - tx, 0.0, None) ** (1.0 / _BODY_N)
        first, last = cv.index_range(
            1, -(b_post - shrink_post)[None, :] * extent, (b_ant - shrink_ant)[None, :] * extent
        )
        last = np.where(tx < 1.0, last, -1)
        firsts.append(first)
        lasts.append(last)
    level = _intervals(np.stack(firsts), np.stack(lasts), GRID_SHAPE[1], axis=1)
    np.take(np.array([HU_AIR, HU_SKIN, HU_FAT, HU_MUSCLE, HU_SOFT], dtype=np.float32), level, out=cv.hu)
    return {"wall": level == 4, "level": level}


def _diaphragm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height (mm) of the diaphragm under each (x, y): two domes (the right one higher) and the central tendon."""
    back = np.clip(5.0 - y, 0.0, None) ** 2 / 80.0 + np.clip(y - 5.0, 0.0, None) ** 2 / 200.0
    right = -36.0 - (x - 50.0) ** 2 / 110.0 - back
    left = -50.0 - (x + 58.0) ** 2 / 110.0 - back
    centre = -64.0 - (x + 5.0) ** 2 / 400.0 - np.clip(-y - 10.0, 0.0, None) ** 2 / 80.0
    return np.maximum(np.maximum(np.maximum(right, left), centre), -150.0)


def _lungs(cv: _Canvas, rng: np.random.Generator) -> None:
    """Lungs: inside the rib cage, above the diaphragm, outside the mediastinum; with parenchymal texture.

    For each (x, y) column the cage and the diaphragm bound an interval of z (the cage scale rises to 1 below
    z = 0 and falls above), so the lung is an index interval per column; the mediastinum carves the middle.
    """
    found = cv.box((-150, -115, -150), (150, 110, 180))
    sl, xb, yb, zb = found
    x2, y2 = xb[:, :, 0], yb[:, :, 0]  # (X, 1), (1, Y)
    q = (np.hypot(x2, y2 - _CAGE_CY) + _LUNG_GAP) / _cage_radius(np.arctan2(np.abs(x2), _CAGE_CY - y2))
    # The cage scale s(z) exceeds q between z_low (rising branch) and z_high (falling branch).
    rising = np.array(_CAGE_Z) <= -110.0
    falling = np.array(_CAGE_Z) >= 0.0
    z_low = np.interp(q, np.array(_CAGE_S)[rising], np.array(_CAGE_Z)[rising], left=-1e9, right=1e9)
    z_high = np.interp(q, np.array(_CAGE_S)[falling][::-1], np.array(_CAGE_Z)[falling][::-1], left=1e9, right=-1e9)
    z_low = np.maximum(z_low, _diaphragm(x2, y2) + 0.5 * SPACING[2])
    first, last = cv.index_range(2, z_low, z_high)
    k = np.arange(sl[2].start, sl[2].stop, dtype=np.int64)[None, None, :]
    inside = (k >= first[:, :, None]) & (k <= last[:, :, None])  # (X, Y, Z) in the box
    # Mediastinum: a midline band the lungs never cross (wider posteriorly: oesophagus, azygos, aorta) and,
    # above the heart, the great-vessel block between the right paratracheal line and the aortic knob.
    zz = zb[0, 0]
    band = np.abs(x2) <= np.where(y2 < -30.0, 15.0, 4.0)
    width = np.interp(zz, [25.0, 45.0, 85.0, 95.0, 110.0, 140.0, 175.0], [0.0, 30.0, 33.0, 35.0, 28.0, 19.0, 14.0])
    shift = np.interp(zz, [40.0, 90.0, 120.0], [4.0, -3.0, 0.0])
    middle = slice(int(np.searchsorted(xb[:, 0, 0], -42.0)), int(np.searchsorted(xb[:, 0, 0], 42.0)))
    xm = xb[middle]
    block = ((xm - shift.astype(np.float32)) / np.maximum(width, 1e-3).astype(np.float32)) ** 2
    block = (block + ((y2 + 5.0) / 42.0)[:, :, None] ** 2 <= 1.0) & (width > 0)
    mediastinum = block | band[middle][:, :, None]
    lung = inside.copy()
    lung[middle] &= ~mediastinum
    # Mediastinal fat fills the band and the block; organs and vessels are painted over it later.
    box_middle = (slice(sl[0].start + middle.start, sl[0].start + middle.stop), sl[1], sl[2])
    cv.paint(box_middle, inside[middle] & mediastinum, HU_FAT + 30.0, 0)
    # Parenchyma: denser posteriorly (gravity) plus a low-frequency texture of separable waves.
    value = np.float32(HU_LUNG) + (25.0 * np.clip(-y2 / 100.0, -0.5, 1.0)).astype(np.float32)[:, :, None]
    value = np.broadcast_to(value, lung.shape).copy()
    for _ in range(2):
        kx, ky, kz = rng.uniform(0.03, 0.09, size=3)
        px, py, pz = rng.uniform(0, 2 * np.pi, size=3)
        plane = (15.0 * np.cos(kx * x2 + px) * np.cos(ky * y2 + py)).astype(np.float32)
        value += plane[:, :, None] * np.cos(kz * zb + pz).astype(np.float32)
    split = int(np.searchsorted(xb[:, 0, 0], 0.0))  # x < 0 is the patient's left
    left = (slice(sl[0].start, sl[0].start + split), sl[1], sl[2])
    right = (slice(sl[0].start + split, sl[0].stop), sl[1], sl[2])
    cv.paint(left, lung[:split], value[:split], _ID["lung_left"])
    cv.paint(right, lung[split:], value[split:], _ID["lung_right"])


def _abdomen(cv: _Canvas, wall: np.ndarray) -> None:
    found = cv.box((-160, -130, -180), (160, 120, -20))
    sl, xb, yb, zb = found
    below = zb < (_diaphragm(xb[:, :, 0], yb[:, :, 0])[:, :, None] - 4.0)
    inner = wall[sl] & below
    # Liver: right upper quadrant, the left lobe reaching across the midline anteriorly.
    edge = -25.0 - 0.45 * np.clip(yb, 0, None)
    lower = -175.0 + 0.35 * np.clip(-xb + 60.0, 0.0, None) + 0.25 * np.clip(yb + 20, 0, None)
    liver = inner & (xb > edge) & (zb > lower)
    cv.paint(sl, liver, HU_LIVER, _ID["liver"])
    # Spleen: posterolateral left, an ellipsoid turned about z.
    c, s = np.cos(0.7), np.sin(0.7)
    u, v = (xb + 85.0) * c + (yb + 45.0) * s, -(xb + 85.0) * s + (yb + 45.0) * c
    spleen = inner & ((u / 22.0) ** 2 + (v / 55.0) ** 2 + ((zb + 115.0) / 45.0) ** 2 <= 1.0)
    cv.paint(sl, spleen, HU_SPLEEN, _ID["spleen"])
    # Stomach: left upper quadrant with gas in its non-dependent (anterior) part, fluid below.
    e = ((xb + 55.0) / 45.0) ** 2 + ((yb - 10.0) / 42.0) ** 2 + ((zb + 105.0) / 55.0) ** 2
    stomach = inner & (e <= 1.0)
    content = np.where(e > 0.8, 40.0, np.where((yb > 0.0) & (zb > -88.0), HU_AIR, 15.0)).astype(np.float32)
    cv.paint(sl, stomach, content, _ID["stomach"])
    # Kidneys: upper poles at the bottom of the field of view.
    for name, side, top in (("kidney_right", 1.0, -190.0), ("kidney_left", -1.0, -182.0)):
        kidney = wall[sl] & (
            ((xb - side * 62.0) / 28.0) ** 2 + ((yb + 62.0) / 26.0) ** 2 + ((zb - top) / 55.0) ** 2 <= 1
        )
        cv.paint(sl, kidney, HU_KIDNEY, _ID[name])


def _muscles(cv: _Canvas, level: np.ndarray) -> None:
    """Pectoralis major (anterior chest wall) and the autochthonous back muscles (paraspinal)."""
    found = cv.box((-170, 0, 0), (170, 120, 150))
    sl, xb, yb, zb = found
    muscle_layer = level[sl] >= 3
    cage_r = _cage_scale(zb) * _cage_radius(np.arctan2(np.abs(xb), _CAGE_CY - yb))
    outside_cage = np.hypot(xb, yb - _CAGE_CY) > cage_r + 5.0
    lower = 40.0 + 0.55 * np.clip(np.abs(xb) - 40.0, 0.0, None)  # inferior border rising to the axilla
    pect = muscle_layer & outside_cage & (np.abs(xb) > 14.0) & (zb > lower) & (zb < 140.0) & (np.abs(xb) < 150.0)
    cv.paint(sl, pect & (xb < 0), HU_MUSCLE, _ID["pectoralis_major_left"])
    cv.paint(sl, pect & (xb >= 0), HU_MUSCLE, _ID["pectoralis_major_right"])

    found = cv.box((-75, -135, -180), (75, -50, 180))
    sl, xb, yb, zb = found
    muscle_layer = level[sl] >= 3
    y_spine = _spine_y(zb) - 12.0
    cage_r = _cage_scale(zb) * _cage_radius(np.arctan2(np.abs(xb), _CAGE_CY - yb))
    outside_cage = np.hypot(xb, yb - _CAGE_CY) > cage_r + 5.0
    back = muscle_layer & (yb < y_spine) & (np.abs(xb) > 4.0) & (np.abs(xb) < 62.0) & outside_cage
    cv.paint(sl, back & (xb < 0), HU_MUSCLE, _ID["autochthon_left"])
    cv.paint(sl, back & (xb >= 0), HU_MUSCLE, _ID["autochthon_right"])


def _spine_y(z):
    """Centre (y, mm) of the vertebral bodies at height z: a mild thoracic kyphosis."""
    return -42.0 - 6.0 * np.sin(np.pi * np.clip((np.asarray(z) + 150.0) / 330.0, 0.0, 1.0))


def _vertebra_levels() -> list[dict]:
    """Centre height, pitch and body size of each vertebra, from C7 to L2."""
    pitch = {"C7": 19.0, "L1": 31.0, "L2": 32.0}
    for i in range(1, 13):
        pitch[f"T{i}"] = 21.0 + (i - 1) * 6.0 / 11.0
    levels, z = [], 150.0 + (pitch["C7"] + pitch["T1"]) / 2.0
    for name in _VERTEBRAE:
        if name != "C7":
            z -= (levels[-1]["pitch"] + pitch[name]) / 2.0
        t = (_VERTEBRAE.index(name)) / (len(_VERTEBRAE) - 1)
        lumbar = name.startswith("L")
        disc = 9.0 if lumbar else 5.0
        levels.append(
            {
                "name": name,
                "z": z,
                "pitch": pitch[name],
                "height": pitch[name] - disc,
                "disc": disc,
                "rx": 13.0 + 11.0 * t,
                "ry": 11.0 + 7.0 * t,
                "y": float(_spine_y(z)),
                "lumbar": lumbar,
            }
        )
    return levels


def _segment_distance(xb, yb, zb, p0, p1):
    """Distance (mm) from each voxel to the segment [p0, p1]."""
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    d = p1 - p0
    dx, dy, dz = xb - p0[0], yb - p0[1], zb - p0[2]
    s = np.clip((dx * d[0] + dy * d[1] + dz * d[2]) / float(d @ d), 0.0, 1.0)
    return np.sqrt((dx - s * d[0]) ** 2 + (dy - s * d[1]) ** 2 + (dz - s * d[2]) ** 2)


def _spine(cv: _Canvas, levels: list[dict]) -> None:
    for lv in levels:
        zc, h, rx, ry, yc_body = lv["z"], lv["height"], lv["rx"], lv["ry"], lv["y"]
        canal_r = 9.5 if lv["lumbar"] or lv["name"] == "C7" else 8.0
        y_canal = yc_body - ry - canal_r - 1.0
        found = cv.box((-rx - 36, y_canal - 45, zc - h / 2 - 24), (rx + 36, yc_body + ry + 2, zc + h / 2 + 1))
        sl, xb, yb, zb = found
        label = _ID[f"vertebrae_{lv['name']}"]
        # Vertebral body: cortical shell and endplates around cancellous bone.
        e = np.sqrt((xb / rx) ** 2 + ((yb - yc_body) / ry) ** 2)
        dzc = np.abs(zb - zc)
        body = (e <= 1.0) & (dzc <= h / 2)
        cortex = (e > 1.0 - 1.2 / ry) | (dzc > h / 2 - 1.2)
        cv.paint(sl, body, np.where(cortex, HU_CORTEX, HU_CANCELLOUS).astype(np.float32), label)
        # Posterior elements: pedicles, laminae, spinous process, transverse processes.
        rr = np.hypot(xb, yb - y_canal)
        zmid = zc + 0.1 * h
        pedicle = (np.abs(np.abs(xb) - (canal_r + 2.5)) <= 4.0) & (yb <= yc_body - ry * 0.5) & (yb >= y_canal)
        pedicle = pedicle & (np.abs(zb - zmid) <= 0.32 * h)
        lamina = (rr >= canal_r) & (rr <= canal_r + 5.5) & (yb <= y_canal + 1.0) & (np.abs(zb - zc) <= 0.45 * h)
        slope = 0.25 if (lv["lumbar"] or lv["name"] == "C7") else 0.75
        reach = 26.0 if lv["lumbar"] else 25.0
        y0 = y_canal - canal_r
        z_spine = zc + slope * np.clip(yb - y0, -reach, 0.0)
        spinous = (np.abs(xb) <= 3.0) & (yb <= y0 + 2) & (yb >= y0 - reach) & (np.abs(zb - z_spine) <= 4.5)
        tip_x = rx + (30.0 if lv["lumbar"] else 22.0)
        transverse = np.zeros_like(spinous)
        for side in (-1.0, 1.0):
            p0 = (side * (canal_r + 3.0), y_canal + 2.0, zc + 1.0)
            p1 = (side * tip_x, y_canal - (2.0 if lv["lumbar"] else 10.0), zc + 3.0)
            transverse |= _segment_distance(xb, yb, zb, p0, p1) <= (4.0 if lv["lumbar"] else 5.0)
        posterior = (pedicle | lamina | spinous | transverse) & ~body
        cv.paint(sl, posterior, HU_POSTERIOR_ELEMENTS, label)
        # Disc below this vertebra.
        zd = zc - lv["pitch"] / 2.0
        disc = ((xb / rx) ** 2 + ((yb - yc_body) / ry) ** 2 <= 1.0) & (np.abs(zb - zd) <= lv["disc"] / 2.0)
        cv.paint(sl, disc, HU_DISC, _ID["intervertebral_discs"])


def _rib_paths(levels: list[dict]):
    """Centreline, radii and outward normals of each rib, and the costal cartilage paths (world mm)."""
    by_name = {lv["name"]: lv for lv in levels}
    phi_start = np.deg2rad(18.0)
    drops = [34, 48, 60, 72, 80, 86, 88, 86, 78, 66, 44, 26]
    ends = [150, 152, 152, 152, 152, 150, 147, 140, 130, 118, 100, 76]
    sternal_z = [125, 100, 78, 58, 38, 18, 0, -12, -26, -40]
    ribs, cartilages = [], []
    rise_phi = np.deg2rad([0, 25, 45, 70, 95, 125, 155, 180])
    rise = np.array([0.0, 0.08, 0.08, -0.05, -0.22, -0.55, -0.88, -1.0])
    for k in range(1, 13):
        lv = by_name[f"T{k}"]
        z_head = lv["z"] + 0.3 * lv["pitch"]
        phi_end = np.deg2rad(ends[k - 1])
        phi = np.linspace(phi_start, phi_end, 36)
        z = z_head + drops[k - 1] * np.interp(phi, rise_phi, rise) / 1.0
        width = 1.0 if k > 1 else 1.5  # the first rib is broad and flat
        rn = np.full_like(phi, 3.8)
        rm = np.interp(phi, np.deg2rad([0, 30, 60, 180]), [4.2, 5.5, 6.5 * width, 7.0 * width])
        for side in (-1.0, 1.0):
            points = _cage_point(phi, z, side)
            normals = np.stack([np.sin(phi) * side, -np.cos(phi), np.zeros_like(phi)], axis=1)
            name = f"rib_{'left' if side < 0 else 'right'}_{k}"
            ribs.append((points, rn, rm, normals, _ID[name]))
            if k <= 10:
                # Costal cartilage from the bony end toward the sternum (ribs 8-10 join the cartilage above).
                z_end = z[-1]
                phi_to = np.deg2rad(173.0 if k <= 7 else 168.0 - 8.0 * (k - 7))
                pc = np.linspace(phi_end, phi_to, 16)
                w = np.linspace(0.0, 1.0, 16)
                zc = z_end + (sternal_z[k - 1] - z_end) * (w**1.6)
                points_c = _cage_point(pc, zc, side, offset=-1.0)
                normals_c = np.stack([np.sin(pc) * side, -np.cos(pc), np.zeros_like(pc)], axis=1)
                cartilages.append((points_c, np.full(16, 3.0), np.full(16, 5.0), normals_c))
    return ribs, cartilages


def _ribs(cv: _Canvas, tubes: _Tubes, levels: list[dict]) -> None:
    ribs, cartilages = _rib_paths(levels)
    for points, rn, rm, normals, label in ribs:
        tubes.add(points, rn, label, radius_m=rm, normals=normals)
    tubes.flush(lambda rho, lab: np.where(rho > 0.6, HU_RIB_CORTEX, HU_CANCELLOUS).astype(np.float32))
    for points, rn, rm, normals in cartilages:
        tubes.add(points, rn, _ID["costal_cartilages"], radius_m=rm, normals=normals)
    tubes.flush(lambda rho, lab: np.where(rho > 0.7, HU_CARTILAGE + 60.0, HU_CARTILAGE).astype(np.float32))


def _sternum(cv: _Canvas) -> None:
    found = cv.box((-32, 40, -50), (32, 125, 135))
    sl, xb, yb, zb = found
    front = _CAGE_CY + _cage_scale(zb) * _cage_radius(np.pi) + 4.0
    half_width = np.interp(zb, [-48, -20, -10, 88, 95, 100, 130, 134], [5, 8, 14, 16, 20, 27, 24, 18])
    half_depth = np.interp(zb, [-48, -20, -10, 95, 100, 134], [2.5, 3, 6, 6, 8, 8])
    e = np.sqrt((xb / half_width) ** 2 + ((yb - front) / half_depth) ** 2)
    sternum = (e <= 1.0) & (zb >= -48) & (zb <= 134)
    cv.paint(sl, sternum, np.where(e > 0.65, HU_CORTEX, HU_CANCELLOUS + 40).astype(np.float32), _ID["sternum"])


def _clavicles(tubes: _Tubes) -> None:
    for side in (-1.0, 1.0):
        knots = [(20, 72, 128), (45, 80, 133), (80, 74, 139), (112, 52, 145), (140, 20, 150), (158, -6, 151)]
        knots = np.array([(side * kx, ky, kz) for kx, ky, kz in knots], dtype=np.float64)
        path = _smooth_curve(knots, 40)
        radius = np.interp(np.linspace(0, 1, 40), [0, 0.15, 0.8, 1], [10.0, 8.0, 7.0, 8.0])
        tubes.add(path, radius, _ID[f"clavicula_{'left' if side < 0 else 'right'}"])
    tubes.flush(lambda rho, lab: np.where(rho > 0.6, HU_RIB_CORTEX, HU_CANCELLOUS).astype(np.float32))


def _scapulae(cv: _Canvas, tubes: _Tubes) -> None:
    """Thin triangular plates on the posterior cage, with a thick lateral border, spine and glenoid."""
    for side in (-1.0, 1.0):
        lo = (40.0, -140.0, 10.0) if side > 0 else (-172.0, -140.0, 10.0)
        hi = (172.0, 10.0, 160.0) if side > 0 else (-40.0, 10.0, 160.0)
        found = cv.box(lo, hi)
        sl, xb, yb, zb = found
        phi = np.arctan2(np.abs(xb), _CAGE_CY - yb)
        r = np.hypot(xb, yb - _CAGE_CY)
        surface = _cage_scale(np.clip(zb, None, 100.0)) * _cage_radius(phi) + 13.0
        deg = np.rad2deg(phi)
        # Triangle in (phi, z): medial border ~35 deg, superior border ~132 mm, lateral border to the glenoid.
        medial = deg >= 33.0 + 0.04 * (132.0 - zb)
        superior = zb <= 132.0 - 0.15 * (deg - 33.0)
        lateral = deg <= 40.0 + (zb - 18.0) * (42.0 / 110.0)
        inferior = zb >= 18.0
        plate = medial & superior & lateral & inferior
        lateral_edge = np.abs(deg - (40.0 + (zb - 18.0) * (42.0 / 110.0))) < 5.0
        thickness = np.where(lateral_edge, 5.0, 2.0)
        blade = plate & (np.abs(r - surface) <= thickness)
        label = _ID[f"scapula_{'left' if side < 0 else 'right'}"]
        cv.paint(sl, blade, np.where(lateral_edge, HU_CORTEX, 500.0).astype(np.float32), label)
        # Spine of the scapula and acromion (toward the clavicle), glenoid (lateral, facing the arm).
        spine_knots = np.array(
            [(side * 72, -100, 118), (side * 110, -92, 124), (side * 145, -60, 138), (side * 162, -22, 148)]
        )
        tubes.add(_smooth_curve(spine_knots, 24), np.linspace(5.0, 6.5, 24), label)
        glenoid = np.array([(side * 135, -40, 118), (side * 150, -32, 122)])
        tubes.add(glenoid, np.array([11.0, 13.0]), label)
    tubes.flush(lambda rho, lab: np.where(rho > 0.6, HU_CORTEX, HU_CANCELLOUS + 60).astype(np.float32))


def _heart(cv: _Canvas) -> None:
    found = cv.box((-120, -50, -80), (80, 100, 50))
    sl, xb, yb, zb = found
    axis = np.array([-0.8, 0.38, -0.45])
    axis /= np.linalg.norm(axis)
    side = np.cross(axis, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    up = np.cross(side, axis)
    cx, cy, cz = -30.0, 18.0, -20.0
    dx, dy, dz = xb - cx, yb - cy, zb - cz
    u = dx * axis[0] + dy * axis[1] + dz * axis[2]
    v = dx * side[0] + dy * side[1] + dz * side[2]
    w = dx * up[0] + dy * up[1] + dz * up[2]
    e = (u / 66.0) ** 2 + (v / 50.0) ** 2 + (w / 46.0) ** 2
    atrium = ((xb - 20.0) / 28.0) ** 2 + ((yb - 2.0) / 30.0) ** 2 + ((zb + 12.0) / 36.0) ** 2
    e = np.minimum(e, atrium)
    floor = _diaphragm(xb[:, :, 0], yb[:, :, 0])[:, :, None] - 2.0
    heart = (e <= 1.0) & (zb > floor)
    fat = (e <= 1.15) & (zb > floor) & ~heart
    cv.paint(sl, fat, HU_FAT + 10.0, 0)
    cv.paint(sl, heart, HU_BLOOD, _ID["heart"])


def _vessels_and_airways(tubes: _Tubes) -> None:
    aorta = _smooth_curve(
        [
            (2, 12, 5),
            (10, 16, 40),
            (10, 10, 72),
            (0, -2, 96),
            (-18, -20, 98),
            (-28, -32, 84),
            (-27, -35, 55),
            (-22, -33, 0),
            (-14, -24, -60),
            (-6, -14, -120),
            (-4, -12, -185),
        ],
        48,
    )
    radius = np.interp(np.linspace(0, 1, 48), [0, 0.2, 0.35, 0.5, 1.0], [15, 15, 13, 12, 10])
    tubes.add(aorta, radius, _ID["aorta"])
    tubes.add(_smooth_curve([(4, 2, 96), (14, 4, 125), (22, 6, 180)], 20), 6.5, _ID["brachiocephalic_trunk"])
    tubes.add(_smooth_curve([(-8, -6, 99), (-12, -4, 140), (-16, -2, 180)], 20), 4.5, _ID["common_carotid_artery_left"])
    tubes.add(
        _smooth_curve([(-20, -18, 99), (-35, -14, 135), (-70, -8, 152), (-120, -12, 150)], 24),
        5.0,
        _ID["subclavian_artery_left"],
    )
    pa = _ID["pulmonary_artery"]
    tubes.add(_smooth_curve([(-12, 34, 15), (-20, 28, 42), (-12, 8, 58)], 20), 13.0, pa)
    tubes.add(_smooth_curve([(-12, 8, 58), (-38, -2, 52), (-60, -8, 44)], 20), 10.0, pa)
    tubes.add(_smooth_curve([(-12, 8, 58), (15, 0, 55), (40, -6, 46), (56, -8, 40)], 24), 10.0, pa)
    tubes.add(_smooth_curve([(30, 10, 130), (30, 9, 70), (25, 8, 18)], 24), 10.0, _ID["superior_vena_cava"])
    tubes.add(_smooth_curve([(20, -8, -185), (20, -4, -90), (20, 2, -40)], 24), 11.0, _ID["inferior_vena_cava"])
    tubes.flush(lambda rho, lab: np.full(rho.shape, HU_BLOOD, np.float32))
    # Airways: air lumen inside a soft-tissue wall.
    trachea = _ID["trachea"]
    tubes.add(_smooth_curve([(4, -8, 185), (4, -8, 120), (1, -6, 66)], 30), 10.0, trachea)
    tubes.add(_smooth_curve([(1, -6, 66), (24, -8, 55), (48, -10, 44)], 20), np.linspace(7, 5.5, 20), trachea)
    tubes.add(_smooth_curve([(1, -6, 66), (-26, -8, 58), (-52, -10, 44)], 20), np.linspace(6.5, 5.0, 20), trachea)
    tubes.flush(lambda rho, lab: np.where(rho > 0.8, HU_SOFT, HU_AIR).astype(np.float32))
    esophagus = _smooth_curve([(-4, -27, 185), (-6, -28, 60), (-12, -24, -50), (-30, -8, -90)], 40)
    tubes.add(esophagus, 7.0, _ID["esophagus"])
    tubes.flush(lambda rho, lab: np.where(rho < 0.25, -700.0, HU_SOFT).astype(np.float32))


def _pulmonary_vessels(cv: _Canvas, tubes: _Tubes, rng: np.random.Generator) -> None:
    """A random branching vessel tree from each hilum, kept inside the lungs (lung markings)."""
    lungs = {_ID["lung_left"], _ID["lung_right"]}
    origin = np.array([(n - 1) / 2.0 for n in GRID_SHAPE])
    spacing = np.array(SPACING)

    def in_lung(p: np.ndarray) -> bool:
        index = np.round(p / spacing + origin).astype(int)
        if np.any(index < 0) or np.any(index >= GRID_SHAPE):
            return False
        return int(cv.lab[tuple(index)]) in lungs

    roots = []
    for side, hilum in ((1.0, (50.0, -8.0, 42.0)), (-1.0, (-56.0, -8.0, 40.0))):
        for direction in (
            (0.3, 0.1, 1.0),
            (1.0, 0.2, 0.4),
            (1.0, 0.3, -0.3),
            (0.6, -0.6, -0.8),
            (0.4, 0.5, -0.9),
            (0.3, -0.9, 0.2),
        ):
            d = np.array([side * direction[0], direction[1], direction[2]])
            roots.append((np.array(hilum), d / np.linalg.norm(d), 4.5))
    stack = [(p, d, r, 0) for p, d, r in roots]
    while stack:
        p, d, r, depth = stack.pop()
        length = float(np.clip(r * 7.0, 7.0, 28.0)) * rng.uniform(0.8, 1.2)
        q = p + d * length
        if depth > 0 and not in_lung(q):
            continue
        tubes.add(np.stack([p, q]), np.array([r, r * 0.9]), 1)  # label unused: the lung label is kept
        if r < 0.9 or depth >= 9:
            continue
        perp = np.cross(d, rng.normal(size=3))
        perp /= np.linalg.norm(perp)
        for sign in (1.0, -1.0):
            angle = rng.uniform(0.35, 0.7)
            child = d * np.cos(angle) + sign * perp * np.sin(angle)
            stack.append((q, child / np.linalg.norm(child), r * rng.uniform(0.68, 0.8), depth + 1))
    lung_ids = np.array(sorted(lungs), dtype=np.uint8)
    tubes.flush(
        lambda rho, lab: np.full(rho.shape, HU_BLOOD, np.float32),
        keep_label=True,
        where=lambda sl: np.isin(cv.lab[sl], lung_ids),
    )


def _spinal_canal(tubes: _Tubes, levels: list[dict]) -> None:
    z = np.linspace(185.0, -185.0, 40)
    ry = np.interp(z, [lv["z"] for lv in levels[::-1]], [lv["ry"] for lv in levels[::-1]])
    canal_r = np.where((z > 160) | (z < -125), 9.5, 8.0)
    y = _spine_y(z) - ry - canal_r - 1.0
    tubes.add(np.stack([np.zeros_like(z), y, z], axis=1), canal_r, _ID["spinal_cord"])
    tubes.flush(lambda rho, lab: np.where(rho < 0.55, 35.0, 10.0).astype(np.float32))
    # Only the cord is labelled; the cerebrospinal fluid around it is left unlabelled (0).


def make_chest_phantom(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Generate the synthetic chest CT.

    Args:
        seed: seed of the ``numpy.random.Generator`` behind the vessel tree, textures and noise.

    Returns:
        ``hu``: int16 ``(360, 280, 140)`` Hounsfield units; ``labels``: uint8, same shape, one id per structure
        (0 is unlabelled tissue and air); ``affine``: float64 ``(4, 4)`` diagonal RAS+ voxel-to-world matrix
        (1.0 x 1.0 x 2.5 mm, grid centred on the origin); ``structures``: ``pandas.DataFrame`` with columns
        ``group, structure, id`` (ids 1..N, contiguous).
    """
    rng = np.random.default_rng(seed)
    cv = _Canvas()
    tubes = _Tubes(cv)
    levels = _vertebra_levels()
    shape = _body(cv)
    _lungs(cv, rng)
    _abdomen(cv, shape["wall"])
    _heart(cv)
    _vessels_and_airways(tubes)
    _pulmonary_vessels(cv, tubes, rng)
    _muscles(cv, shape["level"])
    _spine(cv, levels)
    _spinal_canal(tubes, levels)
    _ribs(cv, tubes, levels)
    _sternum(cv)
    _clavicles(tubes)
    _scapulae(cv, tubes)

    # Light noise. Drawing 14M normals dominates the build time, so draw a quarter of the slices and reuse
    # them flipped in-plane (no visible pattern, 4x cheaper).
    quarter = rng.standard_normal((*GRID_SHAPE[:2], -(-GRID_SHAPE[2] // 4)), dtype=np.float32) * np.float32(12.0)
    noise = np.concatenate([quarter, quarter[::-1], quarter[:, ::-1], quarter[::-1, ::-1]], axis=2)
    cv.hu += noise[:, :, : GRID_SHAPE[2]]
    hu = np.clip(np.rint(cv.hu), -1024, 3071).astype(np.int16)
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = -(np.array(GRID_SHAPE) - 1) / 2.0 * np.array(SPACING)
    structures = pd.DataFrame(
        {"group": [g for g, _ in STRUCTURES], "structure": [s for _, s in STRUCTURES], "id": list(_ID.values())}
    )
    return hu, cv.lab, affine, structures
