"""Renderers: Siddon (exact line integrals) and trilinear ray marching, behind one dispatch point."""

from __future__ import annotations

from typing import cast

import torch

from drreg._checks import check_integer
from drreg.render.kernels import fused_unavailable_reason, siddon_fused, trilinear_fused, warn_fallback_once
from drreg.render.siddon import siddon
from drreg.render.trilinear import alpha_range, trilinear

__all__ = ["RENDERERS", "BACKENDS", "render", "integrate", "resolve_backend", "siddon", "trilinear", "alpha_range"]

RENDERERS = ("siddon", "trilinear")
BACKENDS = ("auto", "torch", "fused")


def resolve_backend(backend: str, density: torch.Tensor) -> str:
    """The backend that renders ``density``: ``"auto"`` takes ``"fused"`` where it can run, else ``"torch"``.

    Raises:
        ValueError: unknown backend, or ``"fused"`` asked for where it cannot run (the reason is given).
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)} (backend='torch' is the pure-torch "
            "reference and runs everywhere)"
        )
    if backend == "torch":
        return "torch"
    reason = fused_unavailable_reason(density)
    if reason is None:
        return "fused"
    if backend == "fused":
        raise ValueError(f"backend='fused' cannot render here: {reason}; use backend='torch' or backend='auto'")
    warn_fallback_once(density.device)
    return "torch"


def render(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    world_to_voxel: torch.Tensor,
    renderer: str = "siddon",
    labels: torch.Tensor | None = None,
    n_channels: int | None = None,
    n_points: int = 500,
    alpha_bounds: torch.Tensor | None = None,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> torch.Tensor:
    """Line integrals (mm × density) of a volume along rays given in world coordinates.

    Args:
        density: (X, Y, Z) voxel values.
        source: (B, 1, 3) or (B, N, 3) ray origins, world mm (float64 recommended, see Detector.forward).
        target: (B, N, 3) ray ends (pixel centres), world mm.
        world_to_voxel: (4, 4) affine from world mm to voxel indices (voxel centres at integers).
        renderer: ``"siddon"`` (exact) or ``"trilinear"`` (``n_points`` samples per ray).
        labels: optional (X, Y, Z) int64 labels: render one channel per label (``mask_to_channels``).
        n_channels: number of channels with ``labels`` (``labels.max() + 1`` by default).
        n_points: samples per ray for ``"trilinear"``.
        alpha_bounds: (2,) sampling range for ``"trilinear"``; by default the batch's entry/exit range.
        backend: ``"torch"`` (pure-torch references), ``"fused"`` (compiled kernels: numba on CPU, Triton on
            CUDA) or ``"auto"`` (fused where it can run, see :func:`drreg.render.kernels.fused_unavailable_reason`).
        memory_budget: bytes of temporaries per chunk of rays (default 256 MiB).

    Returns:
        (B, C, N) images in the dtype of ``density`` (float32 for a half-precision one); ``C = 1`` without labels.
        No ray (``B = 0`` or ``N = 0``) gives an empty image, still part of the autograd graph.

    Raises:
        ValueError: unknown renderer or backend, or a count that is not a positive integer (``n_points`` >= 2).
    """
    length = (target - source).norm(dim=-1)
    world_to_voxel = world_to_voxel.to(target.dtype)
    source = source @ world_to_voxel[:3, :3].mT + world_to_voxel[:3, 3]
    target = target @ world_to_voxel[:3, :3].mT + world_to_voxel[:3, 3]
    out = integrate(
        density, source, target, renderer, labels, n_channels, n_points, alpha_bounds, backend, memory_budget
    )
    return out * length[:, None].to(out.dtype)


def integrate(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    renderer: str = "siddon",
    labels: torch.Tensor | None = None,
    n_channels: int | None = None,
    n_points: int = 500,
    alpha_bounds: torch.Tensor | None = None,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> torch.Tensor:
    """The integrals of :func:`render` in voxel space and ray-parameter units (not yet times the ray length).

    Args:
        source: (B, 1, 3) or (B, N, 3) ray origins in voxel-index coordinates (voxel centres at integers).
        target: (B, N, 3) ray ends in voxel-index coordinates.
        others: as for :func:`render`.

    Returns:
        (B, C, N) sums of ``density * d(alpha)`` (Siddon) or of the samples times the parameter step (trilinear),
        as :func:`siddon` / :func:`trilinear` compute them; multiply by the ray length (mm) for line integrals.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}; expected one of: {', '.join(RENDERERS)}")
    n_points = check_integer(n_points, "n_points", minimum=2)
    n_channels = check_integer(n_channels, "n_channels", minimum=1, allow_none=True)
    memory_budget = check_integer(memory_budget, "memory_budget", minimum=1, allow_none=True, unit="bytes")
    backend = resolve_backend(backend, density)
    batch, n_pixels = target.shape[:2]
    if batch * n_pixels == 0:
        return _empty_image(density, source, target, labels, n_channels)
    source = source.expand_as(target).reshape(-1, 3)
    target = target.reshape(-1, 3)
    if renderer == "trilinear" and alpha_bounds is None:
        alpha_bounds = alpha_range(tuple(density.shape), source, target)
    if backend == "fused" and renderer == "siddon":
        out = siddon_fused(density, source, target, labels, n_channels)
    elif backend == "fused":
        # alpha_bounds was set above: renderer is "trilinear" here.
        out = trilinear_fused(density, source, target, n_points, cast(torch.Tensor, alpha_bounds), labels, n_channels)
    elif renderer == "siddon":
        out = siddon(density, source, target, labels, n_channels, memory_budget)
    else:
        out = trilinear(density, source, target, n_points, alpha_bounds, labels, n_channels, memory_budget)
    out = out.to(density.dtype) if density.dtype in (torch.float32, torch.float64) else out
    return out.reshape(batch, n_pixels, -1).transpose(1, 2)


def _empty_image(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor | None,
    n_channels: int | None,
) -> torch.Tensor:
    """The (B, C, N) image of no ray, as torch reduces an empty batch: zeros that backpropagate zero gradients."""
    channels = 1 if labels is None else (n_channels if n_channels is not None else int(labels.max()) + 1)
    dtype = density.dtype if density.dtype in (torch.float32, torch.float64) else torch.float32
    # Empty slices sum to an exact 0 that keeps the graph to the rays and the volume (backward works, as for any
    # empty batch in torch) without reading them.
    anchor = (source.flatten()[:0].sum() + target.flatten()[:0].sum()).to(dtype) + density.flatten()[:0].sum()
    return density.new_zeros(target.shape[0], channels, target.shape[1], dtype=dtype) + anchor
