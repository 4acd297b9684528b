"""numba kernels of the fused Siddon renderer: forward sums, pose gradients and density gradients.

Each kernel walks its rays with the traversal of :mod:`drreg.render.kernels._numba_traversal`; the host code
(:mod:`drreg.render.kernels._numba_host`) converts the tensors and launches them. Density gradients are
accumulated one slab of x-planes per task, every ray clipped to the slab in ray order (see the host module).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from drreg.render.kernels._numba_memory import load
from drreg.render.kernels._numba_traversal import JIT, advance, begin, ray, whole

__all__ = ["siddon_forward_kernel", "siddon_jacobian_kernel", "siddon_rays_kernel", "siddon_density_kernel"]


@njit(inline="always", **JIT)
def _channel(labels, flat, has_labels, n_channels):
    """Output channel of a voxel; labels outside [0, C) are dropped (-1) rather than written out of bounds."""
    if not has_labels:
        return 0
    c = load(labels, flat)
    return c if 0 <= c < n_channels else -1


@njit(inline="always", **JIT)
def _weighted(density, labels, has_labels, grad_out, r, flat, n_channels):
    """float32 grad_out[channel] * density of a voxel, as the reference forms it, in float64."""
    c = _channel(labels, flat, has_labels, n_channels)
    if c < 0:
        return 0.0
    return np.float64(grad_out[r, c] * load(density, flat))


@njit(inline="always", **JIT)
def _add_crossing(axis, jump, alpha, d0, d1, d2, gs0, gs1, gs2, gt0, gt1, gt2):
    """Add the pose terms of one crossing (parameter ``alpha``, plane of ``axis``) where the (weighted) density
    jumps by ``jump`` (before minus after) to the source and target sums.

    alpha = (plane - s_a) / d_a: d alpha / d s_a = (alpha - 1) / d_a and d alpha / d t_a = -alpha / d_a.
    """
    if axis == 0:
        coefficient = jump / d0
        gs0 += coefficient * (alpha - 1.0)
        gt0 += -coefficient * alpha
    elif axis == 1:
        coefficient = jump / d1
        gs1 += coefficient * (alpha - 1.0)
        gt1 += -coefficient * alpha
    else:
        coefficient = jump / d2
        gs2 += coefficient * (alpha - 1.0)
        gt2 += -coefficient * alpha
    return gs0, gs1, gs2, gt0, gt1, gt2


@njit(parallel=True, **JIT)
def siddon_forward_kernel(density, shape, box, labels, has_labels, source, target, order, out):
    """out[r, c] += sum of density * (alpha_{k+1} - alpha_k) over the voxels of ray r (channel c), rays in ``order``.

    Each ray is walked through ``box`` (6,) int64 only (:func:`~drreg.render.kernels._numba_traversal.enter`): the
    whole volume, or a box outside which every voxel is ±0.0 (:mod:`~drreg.render.kernels._numba_occupancy`),
    which gives bitwise the same sums.
    """
    ny, nz = shape[1], shape[2]
    clip = (box[0], box[1], box[2], box[3], box[4], box[5])
    n_channels = out.shape[1]
    for t in prange(order.shape[0]):
        r = order[t]
        s0, s1, s2, d0, d1, d2 = ray(source, target, r)
        hit, alpha, _, i0, i1, i2, flat, walk0, walk1, walk2, n0, n1, n2, m0, m1, m2 = begin(
            s0, s1, s2, d0, d1, d2, clip, ny, nz
        )
        if not hit:
            continue
        total = 0.0
        inside = True
        while inside:
            voxel = flat
            _, following, i0, i1, i2, flat, n0, n1, n2, m0, m1, m2, inside = advance(
                i0, i1, i2, flat, n0, n1, n2, m0, m1, m2, walk0, walk1, walk2, ny * nz, nz
            )
            contribution = np.float64(load(density, voxel)) * (following - alpha)
            if has_labels:
                c = _channel(labels, voxel, has_labels, n_channels)
                if c >= 0:
                    out[r, c] += contribution
            else:
                total += contribution
            alpha = following
        if not has_labels:
            out[r, 0] = total


@njit(parallel=True, **JIT)
def siddon_rays_kernel(density, shape, labels, has_labels, grad_out, source, target, order, grad_source, grad_target):
    """Pose gradients: sum over crossings of the jump of weighted density times d alpha / d (s, t), rays in order.

    Rays are walked through the whole volume: a weight ``grad_out`` of inf or nan makes even a zero voxel's
    weighted density nan, so skipping empty space would change these sums.
    """
    nx, ny, nz = shape[0], shape[1], shape[2]
    n_channels = grad_out.shape[1]
    for t in prange(order.shape[0]):
        r = order[t]
        s0, s1, s2, d0, d1, d2 = ray(source, target, r)
        gs0 = gs1 = gs2 = gt0 = gt1 = gt2 = 0.0
        hit, alpha, axis, i0, i1, i2, flat, walk0, walk1, walk2, n0, n1, n2, m0, m1, m2 = begin(
            s0, s1, s2, d0, d1, d2, whole(nx, ny, nz), ny, nz
        )
        if hit:
            previous = 0.0  # weighted density before the entry crossing (outside)
            inside = True
            while True:
                # Crossing (alpha, axis) separates `previous` from the current voxel (0 once outside).
                current = 0.0
                if inside:
                    current = _weighted(density, labels, has_labels, grad_out, r, flat, n_channels)
                gs0, gs1, gs2, gt0, gt1, gt2 = _add_crossing(
                    axis, previous - current, alpha, d0, d1, d2, gs0, gs1, gs2, gt0, gt1, gt2
                )
                if not inside:
                    break
                previous = current
                axis, alpha, i0, i1, i2, flat, n0, n1, n2, m0, m1, m2, inside = advance(
                    i0, i1, i2, flat, n0, n1, n2, m0, m1, m2, walk0, walk1, walk2, ny * nz, nz
                )
        grad_source[r, 0], grad_source[r, 1], grad_source[r, 2] = gs0, gs1, gs2
        grad_target[r, 0], grad_target[r, 1], grad_target[r, 2] = gt0, gt1, gt2


@njit(parallel=True, **JIT)
def siddon_density_kernel(shape, labels, has_labels, grad_out, source, target, grad_density, slab_width):
    """grad_density[voxel] += grad_out[channel] * (alpha_{k+1} - alpha_k), one slab of x-planes per task."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    n_channels = grad_out.shape[1]
    n_slabs = (nx + slab_width - 1) // slab_width
    for slab in prange(n_slabs):
        lo0 = slab * slab_width
        hi0 = min(nx, lo0 + slab_width)
        for r in range(source.shape[0]):
            s0, s1, s2, d0, d1, d2 = ray(source, target, r)
            hit, alpha, _, i0, i1, i2, flat, walk0, walk1, walk2, n0, n1, n2, m0, m1, m2 = begin(
                s0, s1, s2, d0, d1, d2, (lo0, hi0, 0, ny, 0, nz), ny, nz
            )
            if not hit:
                continue
            inside = True
            while inside:
                voxel = flat
                _, following, i0, i1, i2, flat, n0, n1, n2, m0, m1, m2, inside = advance(
                    i0, i1, i2, flat, n0, n1, n2, m0, m1, m2, walk0, walk1, walk2, ny * nz, nz
                )
                c = _channel(labels, voxel, has_labels, n_channels)
                if c >= 0:
                    grad_density[voxel] += grad_out[r, c] * np.float32(following - alpha)
                alpha = following


@njit(parallel=True, **JIT)
def siddon_jacobian_kernel(density, shape, box, source, target, order, out, jacobian):
    """The forward sums and, in the same walk, their derivatives with respect to each ray (no labels).

    ``jacobian[r]`` = (d out[r] / d source[r], d out[r] / d target[r]) (6,): the pose gradient of the rays kernel
    is linear in ``grad_out[r]``, so with one channel it is ``grad_out[r] * jacobian[r]``, and forward + backward
    walk every ray once instead of twice. ``out`` is bitwise the forward kernel's (same sums, same order). Rays
    are walked through ``box`` only, as in :func:`siddon_forward_kernel`.
    """
    ny, nz = shape[1], shape[2]
    clip = (box[0], box[1], box[2], box[3], box[4], box[5])
    for t in prange(order.shape[0]):
        r = order[t]
        s0, s1, s2, d0, d1, d2 = ray(source, target, r)
        js0 = js1 = js2 = jt0 = jt1 = jt2 = 0.0
        total = 0.0
        hit, alpha, axis, i0, i1, i2, flat, walk0, walk1, walk2, n0, n1, n2, m0, m1, m2 = begin(
            s0, s1, s2, d0, d1, d2, clip, ny, nz
        )
        if hit:
            previous = 0.0  # density before the entry crossing (outside)
            inside = True
            while True:
                # Crossing (alpha, axis) separates `previous` from the current voxel (0 once outside).
                current = np.float64(load(density, flat)) if inside else 0.0
                js0, js1, js2, jt0, jt1, jt2 = _add_crossing(
                    axis, previous - current, alpha, d0, d1, d2, js0, js1, js2, jt0, jt1, jt2
                )
                if not inside:
                    break
                previous = current
                axis, following, i0, i1, i2, flat_next, n0, n1, n2, m0, m1, m2, inside = advance(
                    i0, i1, i2, flat, n0, n1, n2, m0, m1, m2, walk0, walk1, walk2, ny * nz, nz
                )
                total += current * (following - alpha)
                alpha = following
                flat = flat_next
        out[r, 0] = total
        jacobian[r, 0], jacobian[r, 1], jacobian[r, 2] = js0, js1, js2
        jacobian[r, 3], jacobian[r, 4], jacobian[r, 5] = jt0, jt1, jt2
