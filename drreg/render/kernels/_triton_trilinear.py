"""Triton kernel of the fused trilinear renderer, forward and backward (constexpr flags ``FORWARD``,
``DENSITY_GRAD``, ``RAY_GRAD``), launched by :mod:`drreg.render.kernels._triton_host`.

One program per block of ``BLOCK_RAYS`` rays, marching through the ``n_points`` samples in tiles of
``BLOCK_SAMPLES``; sample parameters ``u * (hi - lo) + lo`` with ``u`` the reference's float32 ``linspace`` (passed
in), geometry in the dtype of the rays (float32 or float64), trilinear interpolation with zeros outside the grid,
labels by the nearest voxel (round half to even, label 0 outside).
"""

from __future__ import annotations

import triton
import triton.language as tl

from drreg.render.kernels._triton_traversal import load_rays, ray_direction, scatter_fixed_point, store_points

__all__ = ["trilinear_kernel"]


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
def trilinear_kernel(
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
    rays, valid, rows, sx, sy, sz, tx, ty, tz = load_rays(source_ptr, target_ptr, n_rays, BLOCK_RAYS)
    # In the dtype of the rays, as drreg.render.trilinear does.
    dx, dy, dz = ray_direction(sx, sy, sz, tx, ty, tz, TINY)
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
            scatter_fixed_point(grad_density_ptr + base, scaled * (gx * gy * gz), m00 & z0_in, fixed_scale)
            scatter_fixed_point(grad_density_ptr + base + 1, scaled * (gx * gy * fz), m00 & z1_in, fixed_scale)
            scatter_fixed_point(grad_density_ptr + base + size_z, scaled * (gx * fy * gz), m01 & z0_in, fixed_scale)
            scatter_fixed_point(grad_density_ptr + base + size_z + 1, scaled * (gx * fy * fz), m01 & z1_in, fixed_scale)
            scatter_fixed_point(grad_density_ptr + base + yz, scaled * (fx * gy * gz), m10 & z0_in, fixed_scale)
            scatter_fixed_point(grad_density_ptr + base + yz + 1, scaled * (fx * gy * fz), m10 & z1_in, fixed_scale)
            corner = base + yz + size_z
            scatter_fixed_point(grad_density_ptr + corner, scaled * (fx * fy * gz), m11 & z0_in, fixed_scale)
            scatter_fixed_point(grad_density_ptr + corner + 1, scaled * (fx * fy * fz), m11 & z1_in, fixed_scale)
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
        store_points(grad_source_ptr, rows, sum_sx * step, sum_sy * step, sum_sz * step, valid)
        store_points(grad_target_ptr, rows, sum_tx * step, sum_ty * step, sum_tz * step, valid)
        # out = step * sum(w f) with step = (high - low) / (n_points - 1): per-ray partials, reduced by the caller.
        per_point = sum_value / (n_points - 1)
        tl.store(grad_bounds_ptr + rays.to(tl.int64) * 2, sum_low * step - per_point, mask=valid)
        tl.store(grad_bounds_ptr + rays.to(tl.int64) * 2 + 1, sum_high * step + per_point, mask=valid)
