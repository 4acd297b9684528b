"""Rasterising analytic shapes onto the phantom's voxel grid: the canvas, interval counting and tubes.

Shapes are evaluated in float32 numpy inside each structure's bounding box, then painted (later structures
overwrite earlier ones).

Convention: the grid is centred on the origin with a diagonal affine, so voxel ``(i, j, k)`` sits at
``spacing * (index - (shape - 1) / 2)`` (world mm, RAS+).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

__all__ = ["GRID_SHAPE", "SPACING", "Canvas", "Tubes", "count_intervals", "segment_distance", "smooth_curve"]

GRID_SHAPE = (360, 280, 140)  # voxels along x (right), y (anterior), z (superior)
SPACING = (1.0, 1.0, 2.5)  # mm


class Canvas:
    """The HU and label volumes plus world coordinates and bounding-box helpers; HU start at ``background``."""

    def __init__(self, background: float) -> None:
        self.axes = [
            ((np.arange(n) - (n - 1) / 2.0) * s).astype(np.float32) for n, s in zip(GRID_SHAPE, SPACING, strict=True)
        ]
        self.hu = np.full(GRID_SHAPE, background, dtype=np.float32)
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


def count_intervals(first: np.ndarray, last: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Count, per voxel, the index intervals ``[first, last]`` (2D arrays over the other axes) covering it.

    Builds +1/-1 steps at the interval ends and integrates them along ``axis``: one pass over the volume
    instead of two comparisons per interval.
    """
    shape = list(first.shape[1:])
    shape.insert(axis, length + 1)
    steps = np.zeros(shape, dtype=np.int8)
    grids: np.ndarray = np.indices(first.shape[1:])
    for lo, hi in zip(first, last, strict=True):
        valid = hi >= lo
        index = [g[valid] for g in grids]
        for where, step in ((lo[valid], 1), (hi[valid] + 1, -1)):
            full_index = list(index)
            full_index.insert(axis, where)
            np.add.at(steps, tuple(full_index), step)
    counts = np.cumsum(steps, axis=axis, dtype=np.int8)
    return np.ascontiguousarray(np.take(counts, np.arange(length), axis=axis)).view(np.uint8)


class Tubes:
    """Tubes along polylines, rasterised segment by segment into a normalised-distance buffer.

    Each voxel keeps the smallest normalised distance ``rho`` (1 on the tube surface) over all segments and
    the label of that segment; :meth:`flush` paints ``rho <= 1`` and resets the buffer.
    """

    def __init__(self, canvas: Canvas) -> None:
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


def smooth_curve(knots, samples: int) -> np.ndarray:
    """``samples`` points (samples, 3) on a natural cubic spline through ``knots`` (K, 3), chord-length parametrised."""
    knots = np.asarray(knots, dtype=np.float64)
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(knots, axis=0), axis=1))])
    spline = CubicSpline(chord, knots, bc_type="natural")
    return spline(np.linspace(0.0, chord[-1], samples))


def segment_distance(xb, yb, zb, p0, p1):
    """Distance (mm) from each voxel to the segment [p0, p1]."""
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    d = p1 - p0
    dx, dy, dz = xb - p0[0], yb - p0[1], zb - p0[2]
    s = np.clip((dx * d[0] + dy * d[1] + dz * d[2]) / float(d @ d), 0.0, 1.0)
    return np.sqrt((dx - s * d[0]) ** 2 + (dy - s * d[1]) ** 2 + (dz - s * d[2]) ** 2)
