"""Compiled CPU kernels (numba) of the fused renderers: Siddon traversal and trilinear ray marching.

Interface (called by the ``drreg::siddon`` / ``drreg::trilinear`` custom ops of :mod:`drreg.render.kernels`)::

    siddon_forward(density, source, target, labels, n_channels) -> (R, C) float32
    siddon_backward(grad_out, density, source, target, labels, n_channels, need_density, need_rays)
        -> (grad_density (X, Y, Z) float32 | empty, grad_source (R, 3) | empty, grad_target (R, 3) | empty)
    trilinear_forward(density, source, target, alpha_bounds, labels, n_channels, n_points) -> (R, C) float32
    trilinear_backward(grad_out, density, source, target, alpha_bounds, labels, n_channels, n_points,
                       need_density, need_rays)
        -> (grad_density | empty, grad_source | empty, grad_target | empty, grad_alpha_bounds (2,) | empty)

The semantics are those of the pure-torch references :mod:`drreg.render.siddon` and :mod:`drreg.render.trilinear`.

Siddon is an incremental (Amanatides-Woo) traversal, one ray per loop iteration: the next crossing of each
axis is ``(plane - s_a) / d_a`` in float64, computed with the reference's formula (so the crossing parameters
are bitwise the reference's), and the traversal always crosses the smallest one next.

Convention: ties between the crossings of different axes (rays through voxel edges) are crossed in axis order
(x, then y, then z), the order a stable sort of the reference's concatenated (x, y, z) parameters gives. The
reference's ``torch.sort`` is not stable on rows longer than 16, so at such ties (kinks of the image) the
two may take different one-sided pose gradients; values agree. A ray that only touches the box (entry = exit)
misses it, as in the reference.

Density gradients are accumulated without races and in an order that does not depend on the thread count:
the volume is cut into slabs of ``_SLAB_WIDTH`` planes along x, one task per slab, and each task walks every
ray clipped to its slab, in ray order. Every voxel thus sums its contributions in ray order (then sample and
corner order for trilinear), whatever the scheduling. Pose gradients are per ray and bitwise reproducible.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import njit, prange

from drreg.render.siddon import DIRECTION_EPS
from drreg.render.trilinear import _alphas, _step, _unit_steps

__all__ = ["siddon_forward", "siddon_backward", "trilinear_forward", "trilinear_backward"]

# x-planes per density-gradient slab: 64 tasks on a 512-wide volume, contiguous in memory (x is the slowest axis).
_SLAB_WIDTH = 8
# Rays per work item handed to a thread (numba's default static split balances poorly: rays differ in length).
_RAY_CHUNK = 32
# The reference clamps |direction| below sqrt(tiny) of float64 (its crossings are computed in float64).
_TINY = torch.finfo(torch.float64).tiny ** 0.5
_EPS = DIRECTION_EPS
_JIT = dict(cache=True, fastmath=False, error_model="numpy")


# -- shared helpers ----------------------------------------------------------------------------------------


@njit(inline="always", **_JIT)
def _direction(s, t):
    """One component of the reference's direction ``t - s + 1e-8``, clamped away from 0."""
    d = t - s + _EPS
    if abs(d) < _TINY:
        d = -_TINY if d < 0 else _TINY
    return d


@njit(inline="always", **_JIT)
def _ray(source, target, r):
    """Origin (s0, s1, s2) and direction (d0, d1, d2) of ray ``r``, the direction as the reference makes it."""
    s0, s1, s2 = source[r, 0], source[r, 1], source[r, 2]
    return s0, s1, s2, _direction(s0, target[r, 0]), _direction(s1, target[r, 1]), _direction(s2, target[r, 2])


@njit(**_JIT)
def _slab(s, d, lo, hi):
    """Entry and exit parameters of a line on the slab ``[lo - 1/2, hi - 1/2]`` of one axis."""
    a = (lo - 0.5 - s) / d
    b = (hi - 0.5 - s) / d
    return (a, b) if a <= b else (b, a)


@njit(**_JIT)
def _before(alpha, axis, entry, entry_axis):
    """The crossing (alpha, axis) comes no later than (entry, entry_axis) in (parameter, axis) order."""
    return alpha < entry or (alpha == entry and axis <= entry_axis)


@njit(**_JIT)
def _start_index(s, d, lo, hi, axis, entry, entry_axis):
    """Voxel index along one axis right after the crossing (entry, entry_axis): planes crossed so far."""
    guess = s + entry * d + 0.5
    # Clamp in floating point first: the conversion of a nan or huge value to int is undefined.
    if not guess >= lo:
        k = lo
    elif guess > hi - 1:
        k = hi - 1
    else:
        k = int(math.floor(guess))
    if d > 0:  # voxel k is entered through plane k - 1/2
        while k + 1 < hi and _before((k + 0.5 - s) / d, axis, entry, entry_axis):
            k += 1
        while k > lo and not _before((k - 0.5 - s) / d, axis, entry, entry_axis):
            k -= 1
    else:  # voxel k is entered through plane k + 1/2
        while k - 1 >= lo and _before((k - 0.5 - s) / d, axis, entry, entry_axis):
            k -= 1
        while k < hi - 1 and not _before((k + 0.5 - s) / d, axis, entry, entry_axis):
            k += 1
    return k


@njit(**_JIT)
def _enter(s0, s1, s2, d0, d1, d2, lo0, hi0, hi1, hi2):
    """Where the line enters the box of voxels ``[lo0, hi0) x [0, hi1) x [0, hi2)``.

    Returns (hit, entry parameter, entry axis, i0, i1, i2): the entry crossing is the last, in (parameter, axis)
    order, of the three axes' entry crossings, and (i0, i1, i2) the first voxel inside.
    """
    e0, x0 = _slab(s0, d0, lo0, hi0)
    e1, x1 = _slab(s1, d1, 0, hi1)
    e2, x2 = _slab(s2, d2, 0, hi2)
    entry = e0
    entry_axis = 0
    if e1 >= entry:
        entry = e1
        entry_axis = 1
    if e2 >= entry:
        entry = e2
        entry_axis = 2
    exit_ = min(x0, min(x1, x2))
    if not entry < exit_:
        return False, entry, entry_axis, 0, 0, 0
    i0 = _start_index(s0, d0, lo0, hi0, 0, entry, entry_axis)
    i1 = _start_index(s1, d1, 0, hi1, 1, entry, entry_axis)
    i2 = _start_index(s2, d2, 0, hi2, 2, entry, entry_axis)
    return True, entry, entry_axis, i0, i1, i2


@njit(inline="always", **_JIT)
def _walk_setup(s, d, i, lo, hi):
    """Step, plane offset, stop index and next crossing parameter of one axis from voxel ``i``."""
    if d > 0:
        return 1, 0.5, hi, (i + 0.5 - s) / d
    return -1, -0.5, lo - 1, (i - 0.5 - s) / d


@njit(inline="always", **_JIT)
def _cross(i, step, half, end, s, d):
    """Cross the next plane of one axis: the voxel index moves by ``step``; returns the new index, the parameter of
    that axis's next plane and whether the index is still inside the box."""
    i += step
    return i, (i + half - s) / d, i != end


@njit(inline="always", **_JIT)
def _next_axis(n0, n1, n2):
    """Axis crossed next and its parameter; ties go to the lowest axis (see the module docstring)."""
    if n0 <= n1 and n0 <= n2:
        return 0, n0
    if n1 <= n2:
        return 1, n1
    return 2, n2


@njit(inline="always", **_JIT)
def _channel(labels, flat, has_labels, n_channels):
    """Output channel of a voxel; labels outside [0, C) are dropped (-1) rather than written out of bounds."""
    if not has_labels:
        return 0
    c = labels[flat]
    return c if 0 <= c < n_channels else -1


# -- Siddon ------------------------------------------------------------------------------------------------


@njit(parallel=True, **_JIT)
def _siddon_forward_kernel(density, shape, labels, has_labels, source, target, out):
    """out[r, c] += sum of density * (alpha_{k+1} - alpha_k) over the voxels of ray r (channel c)."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    n_channels = out.shape[1]
    for r in prange(source.shape[0]):
        s0, s1, s2, d0, d1, d2 = _ray(source, target, r)
        hit, alpha, _, i0, i1, i2 = _enter(s0, s1, s2, d0, d1, d2, 0, nx, ny, nz)
        if not hit:
            continue
        st0, h0, end0, n0 = _walk_setup(s0, d0, i0, 0, nx)
        st1, h1, end1, n1 = _walk_setup(s1, d1, i1, 0, ny)
        st2, h2, end2, n2 = _walk_setup(s2, d2, i2, 0, nz)
        total = 0.0
        while True:
            axis, following = _next_axis(n0, n1, n2)
            flat = (i0 * ny + i1) * nz + i2
            contribution = np.float64(density[flat]) * (following - alpha)
            if has_labels:
                c = _channel(labels, flat, has_labels, n_channels)
                if c >= 0:
                    out[r, c] += contribution
            else:
                total += contribution
            alpha = following
            if axis == 0:
                i0, n0, inside = _cross(i0, st0, h0, end0, s0, d0)
            elif axis == 1:
                i1, n1, inside = _cross(i1, st1, h1, end1, s1, d1)
            else:
                i2, n2, inside = _cross(i2, st2, h2, end2, s2, d2)
            if not inside:
                break
        if not has_labels:
            out[r, 0] = total


@njit(inline="always", **_JIT)
def _weighted(density, labels, has_labels, grad_out, r, flat, n_channels):
    """float32 grad_out[channel] * density of a voxel, as the reference forms it, in float64."""
    c = _channel(labels, flat, has_labels, n_channels)
    if c < 0:
        return 0.0
    return np.float64(grad_out[r, c] * density[flat])


@njit(parallel=True, **_JIT)
def _siddon_rays_kernel(density, shape, labels, has_labels, grad_out, source, target, grad_source, grad_target):
    """Pose gradients: sum over crossings of the jump of weighted density times d alpha / d (s, t)."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    n_channels = grad_out.shape[1]
    for r in prange(source.shape[0]):
        s0, s1, s2, d0, d1, d2 = _ray(source, target, r)
        gs0 = gs1 = gs2 = gt0 = gt1 = gt2 = 0.0
        hit, alpha, axis, i0, i1, i2 = _enter(s0, s1, s2, d0, d1, d2, 0, nx, ny, nz)
        if hit:
            st0, h0, end0, n0 = _walk_setup(s0, d0, i0, 0, nx)
            st1, h1, end1, n1 = _walk_setup(s1, d1, i1, 0, ny)
            st2, h2, end2, n2 = _walk_setup(s2, d2, i2, 0, nz)
            previous = 0.0  # weighted density before the entry crossing (outside)
            inside = True
            while True:
                # Crossing (alpha, axis) separates `previous` from the current voxel (0 once outside).
                current = 0.0
                if inside:
                    current = _weighted(density, labels, has_labels, grad_out, r, (i0 * ny + i1) * nz + i2, n_channels)
                # alpha = (plane - s_a) / d_a: d alpha / d s_a = (alpha - 1) / d_a, d alpha / d t_a = -alpha / d_a.
                if axis == 0:
                    coefficient = (previous - current) / d0
                    gs0 += coefficient * (alpha - 1.0)
                    gt0 += -coefficient * alpha
                elif axis == 1:
                    coefficient = (previous - current) / d1
                    gs1 += coefficient * (alpha - 1.0)
                    gt1 += -coefficient * alpha
                else:
                    coefficient = (previous - current) / d2
                    gs2 += coefficient * (alpha - 1.0)
                    gt2 += -coefficient * alpha
                if not inside:
                    break
                previous = current
                axis, alpha = _next_axis(n0, n1, n2)
                if axis == 0:
                    i0, n0, inside = _cross(i0, st0, h0, end0, s0, d0)
                elif axis == 1:
                    i1, n1, inside = _cross(i1, st1, h1, end1, s1, d1)
                else:
                    i2, n2, inside = _cross(i2, st2, h2, end2, s2, d2)
        grad_source[r, 0], grad_source[r, 1], grad_source[r, 2] = gs0, gs1, gs2
        grad_target[r, 0], grad_target[r, 1], grad_target[r, 2] = gt0, gt1, gt2


@njit(parallel=True, **_JIT)
def _siddon_density_kernel(shape, labels, has_labels, grad_out, source, target, grad_density, slab_width):
    """grad_density[voxel] += grad_out[channel] * (alpha_{k+1} - alpha_k), one slab of x-planes per task."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    n_channels = grad_out.shape[1]
    n_slabs = (nx + slab_width - 1) // slab_width
    for slab in prange(n_slabs):
        lo0 = slab * slab_width
        hi0 = min(nx, lo0 + slab_width)
        for r in range(source.shape[0]):
            s0, s1, s2, d0, d1, d2 = _ray(source, target, r)
            hit, alpha, _, i0, i1, i2 = _enter(s0, s1, s2, d0, d1, d2, lo0, hi0, ny, nz)
            if not hit:
                continue
            st0, h0, end0, n0 = _walk_setup(s0, d0, i0, lo0, hi0)
            st1, h1, end1, n1 = _walk_setup(s1, d1, i1, 0, ny)
            st2, h2, end2, n2 = _walk_setup(s2, d2, i2, 0, nz)
            while True:
                axis, following = _next_axis(n0, n1, n2)
                flat = (i0 * ny + i1) * nz + i2
                c = _channel(labels, flat, has_labels, n_channels)
                if c >= 0:
                    grad_density[flat] += grad_out[r, c] * np.float32(following - alpha)
                alpha = following
                if axis == 0:
                    i0, n0, inside = _cross(i0, st0, h0, end0, s0, d0)
                elif axis == 1:
                    i1, n1, inside = _cross(i1, st1, h1, end1, s1, d1)
                else:
                    i2, n2, inside = _cross(i2, st2, h2, end2, s2, d2)
                if not inside:
                    break


# -- trilinear ---------------------------------------------------------------------------------------------


@njit(inline="always", **_JIT)
def _corner_weights(p, n):
    """Lower corner index, its weight, the upper one's, and whether each corner lies in the grid."""
    f = math.floor(p)
    low = int(f)
    w1 = p - f
    return low, 1.0 - w1, w1, 0 <= low, low + 1 < n


@njit(inline="always", **_JIT)
def _in_reach(px, py, pz, nx, ny, nz):
    """Some corner of the sample lies in the grid (false for nan)."""
    return -1.0 <= px < nx and -1.0 <= py < ny and -1.0 <= pz < nz


@njit(inline="always", **_JIT)
def _sample(density, nx, ny, nz, px, py, pz, with_gradient):
    """Trilinear value of the density at index point p (zeros outside the grid) and, optionally, its gradient."""
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


@njit(inline="always", **_JIT)
def _nearest_channel(labels, has_labels, nx, ny, nz, px, py, pz, n_channels):
    """Channel of the label of the nearest voxel (round half to even), label 0 outside the grid."""
    if not has_labels:
        return 0
    ix, iy, iz = np.rint(px), np.rint(py), np.rint(pz)
    if not (0 <= ix < nx and 0 <= iy < ny and 0 <= iz < nz):
        return 0
    c = labels[(int(ix) * ny + int(iy)) * nz + int(iz)]
    return c if 0 <= c < n_channels else -1


@njit(parallel=True, **_JIT)
def _trilinear_forward_kernel(density, shape, labels, has_labels, source, target, alphas, step, out):
    """out[r, c] = step * sum of the samples of ray r at parameters ``alphas`` (channel c)."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    n_channels = out.shape[1]
    for r in prange(source.shape[0]):
        s0, s1, s2, d0, d1, d2 = _ray(source, target, r)
        total = 0.0
        for k in range(alphas.shape[0]):
            alpha = alphas[k]
            px, py, pz = s0 + alpha * d0, s1 + alpha * d1, s2 + alpha * d2
            if not _in_reach(px, py, pz, nx, ny, nz):
                continue
            value = _sample(density, nx, ny, nz, px, py, pz, False)[0]
            if has_labels:
                c = _nearest_channel(labels, has_labels, nx, ny, nz, px, py, pz, n_channels)
                if c >= 0:
                    out[r, c] += value
            else:
                total += value
        if has_labels:
            for c in range(n_channels):
                out[r, c] *= step
        else:
            out[r, 0] = total * step


@njit(parallel=True, **_JIT)
def _trilinear_rays_kernel(
    density,
    shape,
    labels,
    has_labels,
    grad_out,
    source,
    target,
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
    for r in prange(source.shape[0]):
        s0, s1, s2, d0, d1, d2 = _ray(source, target, r)
        a0 = a1 = a2 = b0 = b1 = b2 = 0.0  # sums of dL/dp and of alpha * dL/dp
        by_step = lo = hi = 0.0  # dL/d step, dL/d alpha_min and dL/d alpha_max through the alphas
        for k in range(alphas.shape[0]):
            alpha = alphas[k]
            px, py, pz = s0 + alpha * d0, s1 + alpha * d1, s2 + alpha * d2
            if not _in_reach(px, py, pz, nx, ny, nz):
                continue
            c = _nearest_channel(labels, has_labels, nx, ny, nz, px, py, pz, n_channels)
            if c < 0:
                continue
            weight = np.float64(grad_out[r, c])
            value, gx, gy, gz = _sample(density, nx, ny, nz, px, py, pz, True)
            by_step += weight * value
            g = weight * step
            gx, gy, gz = g * gx, g * gy, g * gz
            a0 += gx
            a1 += gy
            a2 += gz
            b0 += gx * alpha
            b1 += gy * alpha
            b2 += gz * alpha
            along = gx * d0 + gy * d1 + gz * d2  # dL/d alpha_k
            hi += along * unit[k]
            lo += along * (1.0 - unit[k])
        # d p / d s = 1 - alpha and d p / d t = alpha, except where the direction was clamped (no gradient).
        m0 = 0.0 if abs(d0) <= _TINY else 1.0
        m1 = 0.0 if abs(d1) <= _TINY else 1.0
        m2 = 0.0 if abs(d2) <= _TINY else 1.0
        grad_source[r, 0], grad_source[r, 1], grad_source[r, 2] = a0 - m0 * b0, a1 - m1 * b1, a2 - m2 * b2
        grad_target[r, 0], grad_target[r, 1], grad_target[r, 2] = m0 * b0, m1 * b1, m2 * b2
        grad_bounds[r, 0] = lo - by_step * d_step
        grad_bounds[r, 1] = hi + by_step * d_step


@njit(**_JIT)
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


@njit(parallel=True, **_JIT)
def _trilinear_density_kernel(
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
            s0, s1, s2, d0, d1, d2 = _ray(source, target, r)
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


# -- torch <-> numpy -------------------------------------------------------------------------------------


def _threads() -> None:
    # Honour torch.set_num_threads (numba's count is per calling thread and capped by NUMBA_NUM_THREADS).
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def _volume(density: torch.Tensor) -> np.ndarray:
    """Flat float32 view of the density (half storage is widened once per call: numba reads no half types)."""
    return density.detach().to(torch.float32).contiguous().reshape(-1).numpy()


def _labels(labels: torch.Tensor) -> tuple[np.ndarray, bool]:
    if labels.numel() == 0:
        return np.zeros(1, dtype=np.int64), False
    return labels.detach().to(torch.int64).contiguous().reshape(-1).numpy(), True


def _rays(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float64).contiguous().numpy()


def _shape(density: torch.Tensor) -> np.ndarray:
    return np.asarray(density.shape, dtype=np.int64)


def _grad_out(grad_out: torch.Tensor) -> np.ndarray:
    return grad_out.detach().to(torch.float32).contiguous().numpy()


def _marching(alpha_bounds: torch.Tensor, n_points: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Sample parameters, unit steps (both float64, made as the reference makes them) and the step."""
    bounds = alpha_bounds.detach()
    unit = _unit_steps(n_points, bounds)
    alphas = _alphas(unit, bounds)
    return alphas.double().contiguous().numpy(), unit.double().contiguous().numpy(), float(_step(bounds, n_points))


def siddon_forward(
    density: torch.Tensor, source: torch.Tensor, target: torch.Tensor, labels: torch.Tensor, n_channels: int
) -> torch.Tensor:
    """Per-ray sums (R, C) float32 of density × parameter length, as :func:`drreg.render.siddon.siddon`."""
    _threads()
    label_array, has_labels = _labels(labels)
    channels = n_channels if has_labels else 1
    out = np.zeros((target.shape[0], channels), dtype=np.float64)
    with numba.parallel_chunksize(_RAY_CHUNK):
        _siddon_forward_kernel(
            _volume(density), _shape(density), label_array, has_labels, _rays(source), _rays(target), out
        )
    return torch.from_numpy(out).to(torch.float32)


def siddon_backward(
    grad_out: torch.Tensor,
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    need_density: bool,
    need_rays: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`siddon_forward` (float32 density gradient, pose gradients in the rays' dtype)."""
    _threads()
    label_array, has_labels = _labels(labels)
    weights = _grad_out(grad_out)
    source_array, target_array = _rays(source), _rays(target)
    grad_density, grad_source, grad_target = density.new_empty(0), source.new_empty(0), target.new_empty(0)
    if need_rays:
        gs, gt = np.zeros_like(source_array), np.zeros_like(target_array)
        with numba.parallel_chunksize(_RAY_CHUNK):
            _siddon_rays_kernel(
                _volume(density),
                _shape(density),
                label_array,
                has_labels,
                weights,
                source_array,
                target_array,
                gs,
                gt,
            )
        grad_source, grad_target = torch.from_numpy(gs).to(source.dtype), torch.from_numpy(gt).to(target.dtype)
    if need_density:
        flat = np.zeros(density.numel(), dtype=np.float32)
        with numba.parallel_chunksize(1):
            _siddon_density_kernel(
                _shape(density), label_array, has_labels, weights, source_array, target_array, flat, _SLAB_WIDTH
            )
        grad_density = torch.from_numpy(flat).reshape(density.shape)
    return grad_density, grad_source, grad_target


def trilinear_forward(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    alpha_bounds: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    n_points: int,
) -> torch.Tensor:
    """Per-ray sums (R, C) float32 of samples × step, as :func:`drreg.render.trilinear.trilinear`."""
    _threads()
    label_array, has_labels = _labels(labels)
    alphas, _, step = _marching(alpha_bounds, n_points)
    out = np.zeros((target.shape[0], n_channels if has_labels else 1), dtype=np.float64)
    with numba.parallel_chunksize(_RAY_CHUNK):
        _trilinear_forward_kernel(
            _volume(density),
            _shape(density),
            label_array,
            has_labels,
            _rays(source),
            _rays(target),
            alphas,
            step,
            out,
        )
    return torch.from_numpy(out).to(torch.float32)


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
    """Gradients of :func:`trilinear_forward` (density float32; rays and bounds in their own dtypes)."""
    _threads()
    label_array, has_labels = _labels(labels)
    alphas, unit, step = _marching(alpha_bounds, n_points)
    weights = _grad_out(grad_out)
    source_array, target_array = _rays(source), _rays(target)
    grad_density, grad_source, grad_target = density.new_empty(0), source.new_empty(0), target.new_empty(0)
    grad_bounds = alpha_bounds.new_empty(0)
    if need_rays:
        gs, gt = np.zeros_like(source_array), np.zeros_like(target_array)
        per_ray = np.zeros((len(source_array), 2), dtype=np.float64)
        with numba.parallel_chunksize(_RAY_CHUNK):
            _trilinear_rays_kernel(
                _volume(density),
                _shape(density),
                label_array,
                has_labels,
                weights,
                source_array,
                target_array,
                alphas,
                unit,
                step,
                gs,
                gt,
                per_ray,
            )
        grad_source, grad_target = torch.from_numpy(gs).to(source.dtype), torch.from_numpy(gt).to(target.dtype)
        # A reduction over rays in a fixed order: the bounds' gradient is reproducible bit for bit.
        grad_bounds = torch.from_numpy(np.add.reduce(per_ray, axis=0)).to(alpha_bounds.dtype)
    if need_density:
        flat = np.zeros(density.numel(), dtype=np.float32)
        with numba.parallel_chunksize(1):
            _trilinear_density_kernel(
                _shape(density),
                label_array,
                has_labels,
                weights,
                source_array,
                target_array,
                alphas,
                step,
                flat,
                _SLAB_WIDTH,
            )
        grad_density = torch.from_numpy(flat).reshape(density.shape)
    return grad_density, grad_source, grad_target, grad_bounds
