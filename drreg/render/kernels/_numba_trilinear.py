"""numba kernels of the fused trilinear renderer: forward sums, pose and sampling-range gradients, density gradients.

The samples are the reference's (:mod:`drreg.render.trilinear`): parameters ``alphas`` made by the host code
(:mod:`drreg.render.kernels._numba_host`) as the reference makes them, trilinear interpolation with zeros outside
the grid, labels by the nearest voxel. Density gradients are accumulated one slab of x-planes per task, every
ray in ray order, then sample and corner order (see the host module).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from drreg.render.kernels._numba_memory import lerp_pair, load
from drreg.render.kernels._numba_traversal import JIT, TINY, ray, whole

__all__ = ["trilinear_forward_kernel", "trilinear_jacobian_kernel", "trilinear_rays_kernel", "trilinear_density_kernel"]


@njit(inline="always", **JIT)
def _corner_weights(p, n):
    """Lower corner index, its weight, the upper one's, and whether each corner lies in the grid."""
    f = math.floor(p)
    low = int(f)
    w1 = p - f
    return low, 1.0 - w1, w1, 0 <= low, low + 1 < n


@njit(inline="always", **JIT)
def _in_reach(px, py, pz, nx, ny, nz):
    """Some corner of the sample lies in the grid (false for nan)."""
    return -1.0 <= px < nx and -1.0 <= py < ny and -1.0 <= pz < nz


@njit(inline="always", **JIT)
def _sample(density, nx, ny, nz, px, py, pz, with_gradient):
    """(reached, value, gx, gy, gz) at index point p: whether some corner of the sample lies in the grid, the
    trilinear value of the density (zeros outside the grid) and, optionally, its gradient (false and zeros for
    nan points)."""
    if _is_interior(px, py, pz, nx, ny, nz):  # most samples: no branches, nested interpolations
        value, gx, gy, gz = _interior_at(density, ny, nz, px, py, pz, with_gradient)
        return True, value, gx, gy, gz
    if not _in_reach(px, py, pz, nx, ny, nz):
        return False, 0.0, 0.0, 0.0, 0.0
    value, gx, gy, gz = _border(density, nx, ny, nz, px, py, pz, with_gradient)
    return True, value, gx, gy, gz


@njit(inline="always", **JIT)
def _is_interior(px, py, pz, nx, ny, nz):
    """All eight corners of the sample at p lie in the grid: 0 <= p < n - 1 on every axis, tested in floating point
    (false for nan; the conversions to int come after it)."""
    return (px >= 0.0) & (px < nx - 1.0) & (py >= 0.0) & (py < ny - 1.0) & (pz >= 0.0) & (pz < nz - 1.0)


@njit(inline="always", **JIT)
def _interior_at(density, ny, nz, px, py, pz, with_gradient):
    """:func:`_interior` at an interior point p (:func:`_is_interior`), where truncation is the floor."""
    x0, y0, z0 = int(px), int(py), int(pz)
    return _interior(density, ny, nz, x0, y0, z0, px - x0, py - y0, pz - z0, with_gradient)


@njit(**JIT)
def _interior_run(s0, s1, s2, d0, d1, d2, nx, ny, nz, alphas, monotone, first, last):
    """Samples [k0, k1) of [first, last) that are all interior (:func:`_is_interior`): those from the first interior
    sample to the last one. Each coordinate s + alpha_k d is monotone in k when ``alphas`` is (rounding is
    monotone), and the interior is convex, so a run whose two ends are interior is interior throughout. Empty when
    ``alphas`` is not monotone or no sample is interior."""
    k0 = first
    while monotone and k0 < last:
        a = alphas[k0]
        if _is_interior(s0 + a * d0, s1 + a * d1, s2 + a * d2, nx, ny, nz):
            break
        k0 += 1
    k1 = last if monotone else first
    while k1 > k0:
        a = alphas[k1 - 1]
        if _is_interior(s0 + a * d0, s1 + a * d1, s2 + a * d2, nx, ny, nz):
            break
        k1 -= 1
    return k0, max(k0, k1)


@njit(inline="always", **JIT)
def _add_samples(density, nx, ny, nz, s0, s1, s2, d0, d1, d2, alphas, first, last, total):
    """``total`` plus the values of the samples [first, last) (those out of reach add nothing), in order."""
    for k in range(first, last):
        alpha = load(alphas, k)
        total += _sample(density, nx, ny, nz, s0 + alpha * d0, s1 + alpha * d1, s2 + alpha * d2, False)[1]
    return total


@njit(**JIT)
def _border(density, nx, ny, nz, px, py, pz, with_gradient):
    """:func:`_sample` of a point with some corners outside the grid (and some inside): the corners inside only."""
    x0, wx0, wx1, vx0, vx1 = _corner_weights(px, nx)
    y0, wy0, wy1, vy0, vy1 = _corner_weights(py, ny)
    z0, wz0, wz1, vz0, vz1 = _corner_weights(pz, nz)
    value = gx = gy = gz = 0.0
    for a in range(2):
        if not (vx1 if a else vx0):
            continue
        wx = wx1 if a else wx0
        sx = 1.0 if a else -1.0
        for b in range(2):
            if not (vy1 if b else vy0):
                continue
            wy = wy1 if b else wy0
            sy = 1.0 if b else -1.0
            row = ((x0 + a) * ny + y0 + b) * nz + z0
            for c in range(2):
                if not (vz1 if c else vz0):
                    continue
                wz = wz1 if c else wz0
                rho = np.float64(density[row + c])
                value += wx * wy * wz * rho
                if with_gradient:
                    gx += sx * wy * wz * rho
                    gy += sy * wx * wz * rho
                    gz += (1.0 if c else -1.0) * wx * wy * rho
    return value, gx, gy, gz


@njit(inline="always", **JIT)
def _interior(density, ny, nz, x0, y0, z0, wx1, wy1, wz1, with_gradient):
    """:func:`_sample` of a point whose eight corners lie in the grid (lower corner (x0, y0, z0), upper weights
    w1), as nested linear interpolations (z, y, x): 7 interpolations instead of 8 products of 3 weights, and the
    gradient from their differences. The corners are in the grid, so they are read unchecked."""
    wx0, wy0, wz0 = 1.0 - wx1, 1.0 - wy1, 1.0 - wz1
    row = (x0 * ny + y0) * nz + z0
    plane = ny * nz
    if not with_gradient:  # the same products and sums, read and widened in pairs
        c0 = lerp_pair(density, row, wz0, wz1) * wy0 + lerp_pair(density, row + nz, wz0, wz1) * wy1
        c1 = lerp_pair(density, row + plane, wz0, wz1) * wy0 + lerp_pair(density, row + plane + nz, wz0, wz1) * wy1
        return c0 * wx0 + c1 * wx1, 0.0, 0.0, 0.0
    r000, r001 = np.float64(load(density, row)), np.float64(load(density, row + 1))
    r010, r011 = np.float64(load(density, row + nz)), np.float64(load(density, row + nz + 1))
    r100, r101 = np.float64(load(density, row + plane)), np.float64(load(density, row + plane + 1))
    r110, r111 = np.float64(load(density, row + plane + nz)), np.float64(load(density, row + plane + nz + 1))
    c00 = r000 * wz0 + r001 * wz1  # along z, at (x0, y0), (x0, y0 + 1), (x0 + 1, y0), (x0 + 1, y0 + 1)
    c01 = r010 * wz0 + r011 * wz1
    c10 = r100 * wz0 + r101 * wz1
    c11 = r110 * wz0 + r111 * wz1
    c0 = c00 * wy0 + c01 * wy1  # along y, at x0 and x0 + 1
    c1 = c10 * wy0 + c11 * wy1
    value = c0 * wx0 + c1 * wx1
    # d wx1 / d px = 1 = -d wx0 / d px, and likewise in y and z
    gx = c1 - c0
    gy = (c01 - c00) * wx0 + (c11 - c10) * wx1
    gz = ((r001 - r000) * wy0 + (r011 - r010) * wy1) * wx0 + ((r101 - r100) * wy0 + (r111 - r110) * wy1) * wx1
    return value, gx, gy, gz


@njit(inline="always", **JIT)
def _nearest_channel(labels, has_labels, nx, ny, nz, px, py, pz, n_channels):
    """Channel of the label of the nearest voxel (round half to even), label 0 outside the grid."""
    if not has_labels:
        return 0
    ix, iy, iz = np.rint(px), np.rint(py), np.rint(pz)
    if not (0 <= ix < nx and 0 <= iy < ny and 0 <= iz < nz):
        return 0
    c = labels[(int(ix) * ny + int(iy)) * nz + int(iz)]
    return c if 0 <= c < n_channels else -1


@njit(inline="always", **JIT)
def _samples_in_reach(s0, s1, s2, d0, d1, d2, box, alphas):
    """Indices [first, last) of the samples that may have a corner in ``box`` = (lo0, hi0, lo1, hi1, lo2, hi2)
    (every axis in [lo - 1, hi)), with margins: the whole grid, or the box outside which every voxel is ±0.0 (the
    samples left out then have eight zero corners: they add +0.0, which changes no sum)."""
    lo0, hi0, lo1, hi1, lo2, hi2 = box
    first, last = _sample_range(s0, d0, lo0 - 1.0, hi0, alphas)
    first1, last1 = _sample_range(s1, d1, lo1 - 1.0, hi1, alphas)
    first2, last2 = _sample_range(s2, d2, lo2 - 1.0, hi2, alphas)
    return max(first, max(first1, first2)), min(last, min(last1, last2))


@njit(parallel=True, **JIT)
def trilinear_forward_kernel(
    density, shape, box, labels, has_labels, source, target, order, alphas, monotone, step, out
):
    """out[r, c] = step * sum of the samples of ray r at parameters ``alphas`` (channel c), rays in ``order``.
    ``monotone``: ``alphas`` is monotone (then each ray's run of interior samples is summed without tests).
    ``box`` (6,) int64: only samples with a corner in it are summed (the whole grid, or a box outside which every
    voxel is ±0.0, :mod:`~drreg.render.kernels._numba_occupancy`: bitwise the same sums)."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    clip = (box[0], box[1], box[2], box[3], box[4], box[5])
    n_channels = out.shape[1]
    for t in prange(order.shape[0]):
        r = order[t]
        s0, s1, s2, d0, d1, d2 = ray(source, target, r)
        total = 0.0
        first, last = _samples_in_reach(s0, s1, s2, d0, d1, d2, clip, alphas)
        if not has_labels:  # samples in order: the border samples before the run, the run, the ones after it
            k0, k1 = _interior_run(s0, s1, s2, d0, d1, d2, nx, ny, nz, alphas, monotone, first, last)
            total = _add_samples(density, nx, ny, nz, s0, s1, s2, d0, d1, d2, alphas, first, k0, total)
            for k in range(k0, k1):
                alpha = load(alphas, k)
                total += _interior_at(density, ny, nz, s0 + alpha * d0, s1 + alpha * d1, s2 + alpha * d2, False)[0]
            total = _add_samples(density, nx, ny, nz, s0, s1, s2, d0, d1, d2, alphas, k1, last, total)
            out[r, 0] = total * step
            continue
        for k in range(first, last):
            alpha = load(alphas, k)
            px, py, pz = s0 + alpha * d0, s1 + alpha * d1, s2 + alpha * d2
            reached, value, _, _, _ = _sample(density, nx, ny, nz, px, py, pz, with_gradient=False)
            if not reached:
                continue
            c = _nearest_channel(labels, has_labels, nx, ny, nz, px, py, pz, n_channels)
            if c >= 0:
                out[r, c] += value
        for c in range(n_channels):
            out[r, c] *= step


@njit(inline="always", **JIT)
def _add_sample(g, gx, gy, gz, alpha, unit_k, d0, d1, d2, sums):
    """Add one sample's pose terms, its gradient scaled by ``g``, to ``sums`` = (a0, a1, a2, b0, b1, b2, lo, hi):
    the sums of dL/dp and of alpha * dL/dp, and dL/d alpha_min, dL/d alpha_max through the sample's alpha."""
    a0, a1, a2, b0, b1, b2, lo, hi = sums
    gx, gy, gz = g * gx, g * gy, g * gz
    along = gx * d0 + gy * d1 + gz * d2  # dL/d alpha_k
    return (
        a0 + gx,
        a1 + gy,
        a2 + gz,
        b0 + gx * alpha,
        b1 + gy * alpha,
        b2 + gz * alpha,
        lo + along * (1.0 - unit_k),
        hi + along * unit_k,
    )


@njit(inline="always", **JIT)
def _ray_gradients(d0, d1, d2, sums):
    """d/d source (3) and d/d target (3) of a ray from its sums: d p / d s = 1 - alpha and d p / d t = alpha,
    except where the direction was clamped (no gradient)."""
    a0, a1, a2, b0, b1, b2, _, _ = sums
    m0 = 0.0 if abs(d0) <= TINY else 1.0
    m1 = 0.0 if abs(d1) <= TINY else 1.0
    m2 = 0.0 if abs(d2) <= TINY else 1.0
    return a0 - m0 * b0, a1 - m1 * b1, a2 - m2 * b2, m0 * b0, m1 * b1, m2 * b2


@njit(parallel=True, **JIT)
def trilinear_rays_kernel(
    density,
    shape,
    labels,
    has_labels,
    grad_out,
    source,
    target,
    order,
    alphas,
    unit,
    step,
    grad_source,
    grad_target,
    grad_bounds,
):
    """Pose gradients through the sample points p = s + alpha (t - s + eps), and per-ray d/d alpha_bounds."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    n_channels = grad_out.shape[1]
    d_step = 1.0 / (alphas.shape[0] - 1)  # d step / d alpha_max = -d step / d alpha_min
    for t in prange(order.shape[0]):
        r = order[t]
        s0, s1, s2, d0, d1, d2 = ray(source, target, r)
        sums = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # see _add_sample
        by_step = 0.0  # dL/d step
        first, last = _samples_in_reach(s0, s1, s2, d0, d1, d2, whole(nx, ny, nz), alphas)
        for k in range(first, last):
            alpha = load(alphas, k)
            px, py, pz = s0 + alpha * d0, s1 + alpha * d1, s2 + alpha * d2
            reached, value, gx, gy, gz = _sample(density, nx, ny, nz, px, py, pz, with_gradient=True)
            if not reached:
                continue
            c = _nearest_channel(labels, has_labels, nx, ny, nz, px, py, pz, n_channels)
            if c < 0:
                continue
            weight = np.float64(grad_out[r, c])
            by_step += weight * value
            sums = _add_sample(weight * step, gx, gy, gz, alpha, unit[k], d0, d1, d2, sums)
        gs0, gs1, gs2, gt0, gt1, gt2 = _ray_gradients(d0, d1, d2, sums)
        grad_source[r, 0], grad_source[r, 1], grad_source[r, 2] = gs0, gs1, gs2
        grad_target[r, 0], grad_target[r, 1], grad_target[r, 2] = gt0, gt1, gt2
        grad_bounds[r, 0] = sums[6] - by_step * d_step
        grad_bounds[r, 1] = sums[7] + by_step * d_step


@njit(**JIT)
def _sample_range(s, d, lo, hi, alphas):
    """Indices [first, last) of the samples whose x lies in [lo, hi), two samples of margin each side."""
    n = alphas.shape[0]
    a_lo, a_hi = (lo - s) / d, (hi - s) / d
    if a_lo > a_hi:
        a_lo, a_hi = a_hi, a_lo
    span = alphas[n - 1] - alphas[0]
    if not span > 0:
        return 0, n
    k_lo = (a_lo - alphas[0]) / span * (n - 1) - 2.0
    k_hi = (a_hi - alphas[0]) / span * (n - 1) + 3.0
    first = 0 if not k_lo > 0 else (n if k_lo > n else int(k_lo))
    last = n if not k_hi < n else (0 if k_hi < 0 else int(k_hi))
    return first, last


@njit(parallel=True, **JIT)
def trilinear_density_kernel(
    shape, labels, has_labels, grad_out, source, target, alphas, step, grad_density, slab_width
):
    """grad_density[corner] += grad_out[channel] * step * weight, one slab of x-planes per task."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    n_channels = grad_out.shape[1]
    n_slabs = (nx + slab_width - 1) // slab_width
    for slab in prange(n_slabs):
        lo0 = slab * slab_width
        hi0 = min(nx, lo0 + slab_width)
        for r in range(source.shape[0]):
            s0, s1, s2, d0, d1, d2 = ray(source, target, r)
            first, last = _sample_range(s0, d0, lo0 - 1.0, hi0, alphas)
            for k in range(first, last):
                alpha = alphas[k]
                px, py, pz = s0 + alpha * d0, s1 + alpha * d1, s2 + alpha * d2
                if not _in_reach(px, py, pz, nx, ny, nz):
                    continue
                x0, wx0, wx1, _, _ = _corner_weights(px, nx)
                if x0 + 1 < lo0 or x0 >= hi0:
                    continue
                c = _nearest_channel(labels, has_labels, nx, ny, nz, px, py, pz, n_channels)
                if c < 0:
                    continue
                g = np.float64(grad_out[r, c]) * step
                y0, wy0, wy1, vy0, vy1 = _corner_weights(py, ny)
                z0, wz0, wz1, vz0, vz1 = _corner_weights(pz, nz)
                for a in range(2):
                    x = x0 + a
                    if x < lo0 or x >= hi0:
                        continue
                    wx = wx1 if a else wx0
                    for b in range(2):
                        if not (vy1 if b else vy0):
                            continue
                        wy = wy1 if b else wy0
                        row = (x * ny + y0 + b) * nz + z0
                        if vz0:
                            grad_density[row] += np.float32(g * wx * wy * wz0)
                        if vz1:
                            grad_density[row + 1] += np.float32(g * wx * wy * wz1)


@njit(parallel=True, **JIT)
def trilinear_jacobian_kernel(density, shape, box, source, target, order, alphas, unit, step, out, jacobian):
    """The forward sums and, in the same pass, their derivatives with respect to each ray and the bounds (no labels).

    ``jacobian[r]`` = (d out[r] / d source[r] (3), d out[r] / d target[r] (3), d out[r] / d alpha_bounds (2)): the
    rays kernel is linear in ``grad_out[r]``, so with one channel its gradients are ``grad_out[r]`` times these.
    ``out`` is bitwise the forward kernel's (same samples, same order). Only samples with a corner in ``box`` are
    visited, as in :func:`trilinear_forward_kernel` (a sample of eight zero corners has a zero gradient too).
    """
    nx, ny, nz = shape[0], shape[1], shape[2]
    clip = (box[0], box[1], box[2], box[3], box[4], box[5])
    d_step = 1.0 / (alphas.shape[0] - 1)  # d step / d alpha_max = -d step / d alpha_min
    for t in prange(order.shape[0]):
        r = order[t]
        s0, s1, s2, d0, d1, d2 = ray(source, target, r)
        sums = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # see _add_sample (with grad_out = 1)
        total = 0.0  # the sum of the samples (= d out / d step)
        first, last = _samples_in_reach(s0, s1, s2, d0, d1, d2, clip, alphas)
        for k in range(first, last):
            alpha = load(alphas, k)
            px, py, pz = s0 + alpha * d0, s1 + alpha * d1, s2 + alpha * d2
            reached, value, gx, gy, gz = _sample(density, nx, ny, nz, px, py, pz, with_gradient=True)
            if not reached:
                continue
            total += value
            sums = _add_sample(step, gx, gy, gz, alpha, unit[k], d0, d1, d2, sums)
        out[r, 0] = total * step
        js0, js1, js2, jt0, jt1, jt2 = _ray_gradients(d0, d1, d2, sums)
        jacobian[r, 0], jacobian[r, 1], jacobian[r, 2] = js0, js1, js2
        jacobian[r, 3], jacobian[r, 4], jacobian[r, 5] = jt0, jt1, jt2
        jacobian[r, 6] = sums[6] - total * d_step
        jacobian[r, 7] = sums[7] + total * d_step
