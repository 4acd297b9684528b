"""Host side of the numba kernels (CPU tensors): torch <-> numpy, thread settings and the kernel interface.

Interface (called by the ``drreg::siddon`` / ``drreg::trilinear`` custom ops of :mod:`drreg.render.kernels`)::

    siddon_forward(density, source, target, labels, n_channels) -> (R, C) float32
    siddon_jacobian(density, source, target) -> ((R, 1) float32, d out / d (source, target) (R, 6) float64)
    siddon_backward(grad_out, density, source, target, labels, n_channels, *, need_density, need_rays)
        -> (grad_density (X, Y, Z) float32 | empty, grad_source (R, 3) | empty, grad_target (R, 3) | empty)
    trilinear_forward(density, source, target, alpha_bounds, labels, n_channels, n_points) -> (R, C) float32
    trilinear_jacobian(density, source, target, alpha_bounds, n_points)
        -> ((R, 1) float32, d out / d (source, target, alpha_bounds) (R, 8) float64)
    trilinear_backward(grad_out, density, source, target, alpha_bounds, labels, n_channels, n_points, *,
                       need_density, need_rays)
        -> (grad_density | empty, grad_source | empty, grad_target | empty, grad_alpha_bounds (2,) | empty)

The semantics are those of the pure-torch references :mod:`drreg.render.siddon` and :mod:`drreg.render.trilinear`;
the kernels live in :mod:`~drreg.render.kernels._numba_siddon` and :mod:`~drreg.render.kernels._numba_trilinear`.

Density gradients are accumulated without races and in an order that does not depend on the thread count:
the volume is cut into slabs of ``_SLAB_WIDTH`` planes along x, one task per slab, and each task walks every
ray clipped to its slab, in ray order. Every voxel thus sums its contributions in ray order (then sample and
corner order for trilinear), whatever the scheduling. Pose gradients are per ray and bitwise reproducible.

The forward and pose-gradient kernels walk the rays in a cache-friendly order (tiles of their end points,
:func:`~drreg.render.kernels._numba_order.ray_order`) rather than raster order; each ray's result does not depend
on the order, so images and pose gradients are bitwise those of the raster order.

The Siddon forward and jacobian kernels walk each ray only through the box of non-zero voxels
(:mod:`~drreg.render.kernels._numba_occupancy`), and the trilinear forward and jacobian kernels visit only the
samples with a corner in it; the box is searched at every call when the rays are many enough to repay the search
(:func:`_clipped_volume`). The images and pose gradients are bitwise those of the whole volume.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from drreg.render.kernels._numba_occupancy import occupied_box
from drreg.render.kernels._numba_order import ray_order
from drreg.render.kernels._numba_siddon import (
    siddon_density_kernel,
    siddon_forward_kernel,
    siddon_jacobian_kernel,
    siddon_rays_kernel,
)
from drreg.render.kernels._numba_trilinear import (
    trilinear_density_kernel,
    trilinear_forward_kernel,
    trilinear_jacobian_kernel,
    trilinear_rays_kernel,
)
from drreg.render.trilinear import sample_alphas, sample_step, unit_steps

__all__ = [
    "siddon_forward",
    "siddon_jacobian",
    "siddon_backward",
    "trilinear_forward",
    "trilinear_jacobian",
    "trilinear_backward",
]

# x-planes per density-gradient slab: 64 tasks on a 512-wide volume, contiguous in memory (x is the slowest axis).
_SLAB_WIDTH = 8
# Rays per work item handed to a thread (numba's default static split balances poorly: rays differ in length).
_RAY_CHUNK = 32
# Side (voxels) of the tiles of ray end points walked together by the forward and pose-gradient kernels.
_TILE_VOXELS = 8.0
# Empty-space skipping pays when the rays' walks (about n_rays x the longest side, in voxel visits) reach the
# volume's voxels / _SKIP_RATIO: the box search reads the empty shell once (~0.5 ns per voxel on 2 cores), a visit
# skipped saves ~2-4 ns. Measured on the 512 x 512 x 133 CT-like volume of benchmarks/render.py (38 % of it an
# empty shell) with random pixel subsets, through siddon_forward: break-even near 10 000 rays (walks / voxels =
# 0.15; with the search 28.6 ms against 27.0 without at 8 000, 34.9 against 37.8 at 14 000), and a quarter of
# the time saved at 40 000 rays (0.59). The factor 4 (0.25) keeps sparse subsets near the break-even out.
_SKIP_RATIO = 4


def _threads() -> None:
    # Honour torch.set_num_threads (numba's count is per calling thread and capped by NUMBA_NUM_THREADS).
    # numba.config sets NUMBA_NUM_THREADS at import time through globals(), invisible to its type information.
    n_max = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    numba.set_num_threads(max(1, min(torch.get_num_threads(), n_max)))


def _volume(density: torch.Tensor) -> np.ndarray:
    """Flat float32 view of the density (half storage is widened once per call: numba reads no half types)."""
    return density.detach().to(torch.float32).contiguous().reshape(-1).numpy()


def _labels(labels: torch.Tensor) -> tuple[np.ndarray, bool]:
    if labels.numel() == 0:
        return np.zeros(1, dtype=np.int64), False
    return labels.detach().to(torch.int64).contiguous().reshape(-1).numpy(), True


def _rays(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float64).contiguous().numpy()


def _order(target: np.ndarray) -> np.ndarray:
    """The cache-friendly order of the rays (:mod:`~drreg.render.kernels._numba_order`)."""
    return ray_order(target, _TILE_VOXELS)


def _shape(density: torch.Tensor) -> np.ndarray:
    return np.asarray(density.shape, dtype=np.int64)


def _clipped_volume(density: torch.Tensor, n_rays: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat float32 density, shape, and the box (6,) int64 the kernels walk: the occupied box of the density when
    ``n_rays`` are many enough to repay its search (:mod:`~drreg.render.kernels._numba_occupancy`), else the whole
    volume."""
    volume, shape = _volume(density), _shape(density)
    nx, ny, nz = (int(n) for n in shape)
    if n_rays * max(nx, ny, nz) * _SKIP_RATIO >= volume.size:
        return volume, shape, occupied_box(volume.view(np.uint32), nx, ny, nz)
    return volume, shape, np.array([0, nx, 0, ny, 0, nz], dtype=np.int64)


def _grad_out(grad_out: torch.Tensor) -> np.ndarray:
    return grad_out.detach().to(torch.float32).contiguous().numpy()


def _marching(alpha_bounds: torch.Tensor, n_points: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Sample parameters, unit steps (both float64, made as the reference makes them) and the step."""
    bounds = alpha_bounds.detach()
    unit = unit_steps(n_points, bounds)
    alphas = sample_alphas(unit, bounds)
    return (
        alphas.double().contiguous().numpy(),
        unit.double().contiguous().numpy(),
        float(sample_step(bounds, n_points)),
    )


def _monotone(alphas: np.ndarray) -> bool:
    """The sample parameters never turn back (the kernels then sum each ray's interior samples untested)."""
    steps = np.diff(alphas)
    return bool((steps >= 0).all() or (steps <= 0).all())


def _volume_arguments(
    density: torch.Tensor, label_array: np.ndarray, has_labels: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The leading arguments of the forward and ray kernels: flat density, shape, flat labels, has_labels."""
    return _volume(density), _shape(density), label_array, has_labels


def _pose_gradients(
    gs: np.ndarray, gt: np.ndarray, source: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ray kernels' float64 source and target gradients, in the dtypes of ``source`` and ``target``."""
    return torch.from_numpy(gs).to(source.dtype), torch.from_numpy(gt).to(target.dtype)


def siddon_forward(
    density: torch.Tensor, source: torch.Tensor, target: torch.Tensor, labels: torch.Tensor, n_channels: int
) -> torch.Tensor:
    """Per-ray sums (R, C) float32 of density × parameter length, as :func:`drreg.render.siddon.siddon`."""
    _threads()
    label_array, has_labels = _labels(labels)
    channels = n_channels if has_labels else 1
    out = np.zeros((target.shape[0], channels), dtype=np.float64)
    volume, shape, box = _clipped_volume(density, target.shape[0])
    with numba.parallel_chunksize(_RAY_CHUNK):
        target_array = _rays(target)
        siddon_forward_kernel(
            volume, shape, box, label_array, has_labels, _rays(source), target_array, _order(target_array), out
        )
    return torch.from_numpy(out).to(torch.float32)


def siddon_jacobian(
    density: torch.Tensor, source: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`siddon_forward` of one channel (R, 1) float32, and d out / d (source, target) (R, 6) float64."""
    _threads()
    source_array, target_array = _rays(source), _rays(target)
    out = np.zeros((target.shape[0], 1), dtype=np.float64)
    jacobian = np.zeros((target.shape[0], 6), dtype=np.float64)
    volume, shape, box = _clipped_volume(density, target.shape[0])
    with numba.parallel_chunksize(_RAY_CHUNK):
        siddon_jacobian_kernel(volume, shape, box, source_array, target_array, _order(target_array), out, jacobian)
    return torch.from_numpy(out).to(torch.float32), torch.from_numpy(jacobian)


def siddon_backward(
    grad_out: torch.Tensor,
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    *,
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
            siddon_rays_kernel(
                *_volume_arguments(density, label_array, has_labels),
                weights,
                source_array,
                target_array,
                _order(target_array),
                gs,
                gt,
            )
        grad_source, grad_target = _pose_gradients(gs, gt, source, target)
    if need_density:
        flat = np.zeros(density.numel(), dtype=np.float32)
        with numba.parallel_chunksize(1):
            siddon_density_kernel(
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
    target_array = _rays(target)
    volume, shape, box = _clipped_volume(density, target.shape[0])
    with numba.parallel_chunksize(_RAY_CHUNK):
        trilinear_forward_kernel(
            volume,
            shape,
            box,
            label_array,
            has_labels,
            _rays(source),
            target_array,
            _order(target_array),
            alphas,
            _monotone(alphas),
            step,
            out,
        )
    return torch.from_numpy(out).to(torch.float32)


def trilinear_jacobian(
    density: torch.Tensor, source: torch.Tensor, target: torch.Tensor, alpha_bounds: torch.Tensor, n_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`trilinear_forward` of one channel (R, 1) float32, and d out / d (source, target, alpha_bounds)
    (R, 8) float64."""
    _threads()
    alphas, unit, step = _marching(alpha_bounds, n_points)
    source_array, target_array = _rays(source), _rays(target)
    out = np.zeros((target.shape[0], 1), dtype=np.float64)
    jacobian = np.zeros((target.shape[0], 8), dtype=np.float64)
    volume, shape, box = _clipped_volume(density, target.shape[0])
    with numba.parallel_chunksize(_RAY_CHUNK):
        trilinear_jacobian_kernel(
            volume,
            shape,
            box,
            source_array,
            target_array,
            _order(target_array),
            alphas,
            unit,
            step,
            out,
            jacobian,
        )
    return torch.from_numpy(out).to(torch.float32), torch.from_numpy(jacobian)


def trilinear_backward(
    grad_out: torch.Tensor,
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    alpha_bounds: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    n_points: int,
    *,
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
            trilinear_rays_kernel(
                *_volume_arguments(density, label_array, has_labels),
                weights,
                source_array,
                target_array,
                _order(target_array),
                alphas,
                unit,
                step,
                gs,
                gt,
                per_ray,
            )
        grad_source, grad_target = _pose_gradients(gs, gt, source, target)
        # A reduction over rays in a fixed order: the bounds' gradient is reproducible bit for bit.
        grad_bounds = torch.from_numpy(np.add.reduce(per_ray, axis=0)).to(alpha_bounds.dtype)
    if need_density:
        flat = np.zeros(density.numel(), dtype=np.float32)
        with numba.parallel_chunksize(1):
            trilinear_density_kernel(
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
