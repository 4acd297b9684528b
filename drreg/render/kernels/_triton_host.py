"""Host side of the Triton kernels (CUDA tensors; CPU tensors under ``TRITON_INTERPRET=1`` for tests).

Implements the interface documented in :mod:`drreg.render.kernels` with the semantics of the pure-torch references
:func:`drreg.render.siddon.siddon` and :func:`drreg.render.trilinear.trilinear` (values and gradients). Rays are flat
(R, 3) rows in voxel-index coordinates; each op returns the per-ray sums (R, C) before the multiplication by the ray
length. Density is read as float32, float16 or bfloat16 and every sum is accumulated in float32 (or float64 where
said). This module imports triton at its top: :mod:`drreg.render.kernels` imports it only for CUDA tensors.

The kernels, one per method, live in :mod:`~drreg.render.kernels._triton_siddon` (the traversal and its
float64/float32 crossing convention, :data:`FLOAT64_TRAVERSAL`) and :mod:`~drreg.render.kernels._triton_trilinear`.
Forward and backward share each kernel, selected by constexpr flags (``FORWARD``, ``DENSITY_GRAD``, ``RAY_GRAD``);
all launches go through :func:`_launch`.

Determinism: pose gradients (source, target) are per-ray sums computed by one lane in a fixed order, no atomics:
bitwise reproducible. The alpha-bounds gradient is a per-ray partial reduced by ``torch.sum``. The density gradient
is a scatter over rays; it is accumulated with *integer* atomics in 62-bit fixed point (see ``_fixed_point_scale``):
integer addition is associative, so the result is bitwise reproducible as well, and more accurate than a float32
scatter (absolute resolution ~2^-61 of a bound on any voxel's total).
"""

from __future__ import annotations

import functools

import torch
import triton

from drreg.render.kernels._triton_siddon import siddon_kernel
from drreg.render.kernels._triton_trilinear import trilinear_kernel
from drreg.render.siddon import DIRECTION_EPS
from drreg.render.trilinear import unit_steps

__all__ = ["siddon_forward", "siddon_backward", "trilinear_forward", "trilinear_backward"]

# -- tile constants (untuned guesses, not yet timed on a GPU: benchmarks/render.py on a CUDA machine) ------------
# One warp per block of Siddon rays: the loop condition (any ray still inside) is then a warp vote, no barrier.
SIDDON_BLOCK_RAYS = 32
SIDDON_NUM_WARPS = 1
# (rays, samples) tile of the trilinear march; 2 samples per thread keep the backward near 100 registers (sm_90).
TRILINEAR_BLOCK_RAYS = 16
TRILINEAR_BLOCK_SAMPLES = 32
TRILINEAR_NUM_WARPS = 8
# Largest per-program one-hot tile (elements) for mask_to_channels: (rays, channels) or (rays, samples, channels).
CHANNEL_TILE = 1024
# No contraction of a * b + c into FMA: the kernels round like the torch references, whatever Triton's default.
FP_FUSION = False
# Crossing parameters of the Siddon traversal in float64 (see drreg.render.kernels._triton_siddon).
FLOAT64_TRAVERSAL = True
# Fixed-point density gradients: contributions are scaled so that any voxel's total stays below 2**62 (int64).
_FIXED_POINT_BITS = 62
_FIXED_POINT_MAX_EXPONENT = 100  # scale <= 2**100 keeps the float32 product x * scale finite


@functools.lru_cache(maxsize=16)
def _cached_unit_steps(n_points: int, dtype: torch.dtype, device: torch.device, default_dtype: torch.dtype):
    # The reference's linspace (made on the CPU in the default dtype), copied to the device once per setting.
    return unit_steps(n_points, torch.empty(0, dtype=dtype, device=device))


def _tiny(dtype: torch.dtype) -> float:
    # As the reference (drreg.render.siddon) does: direction components are kept at least sqrt(tiny) away from 0.
    return torch.finfo(dtype).tiny ** 0.5


def _launch(kernel, n_blocks: int, num_warps: int, /, **arguments) -> None:
    """The one place kernels are launched: a 1-D grid of ``n_blocks`` programs, kernel arguments by keyword only."""
    kernel[(n_blocks,)](**arguments, num_warps=num_warps, enable_fp_fusion=FP_FUSION)


def _channel_tile(labels: torch.Tensor, n_channels: int) -> tuple[bool, int]:
    has_labels = labels.numel() > 0
    return has_labels, (triton.next_power_of_2(max(n_channels, 1)) if has_labels else 1)


def _geometry(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = torch.promote_types(torch.promote_types(source.dtype, target.dtype), torch.float32)
    return source.to(dtype).contiguous(), target.to(dtype).contiguous()


def _fixed_point_scale(bound: torch.Tensor) -> torch.Tensor:
    """Power-of-2 scale (1,) float32 putting the fixed-point density gradient in int64 (no host sync).

    ``bound`` is an upper bound on the sum of absolute contributions any one voxel receives; after scaling it is at
    most 2**62, so no partial sum overflows whatever the order of the atomics.
    """
    exponent = _FIXED_POINT_BITS - torch.ceil(torch.log2(bound.double().clamp_min(1e-300)))
    exponent = exponent.clamp(-_FIXED_POINT_MAX_EXPONENT, _FIXED_POINT_MAX_EXPONENT)
    return torch.exp2(exponent).float().reshape(1)


def _from_fixed_point(accumulator: torch.Tensor, scale: torch.Tensor, bound: torch.Tensor, shape) -> torch.Tensor:
    grad = (accumulator.double() / scale.double()).float()
    # A non-finite upstream gradient has no fixed-point image: report nan, as a float scatter would.
    grad = torch.where(torch.isfinite(bound), grad, torch.full_like(grad, float("nan")))
    return grad.reshape(shape)


def _placeholder(device: torch.device) -> torch.Tensor:
    """A one-element float32 tensor passed for the pointers a pass does not read or write."""
    return torch.empty(1, dtype=torch.float32, device=device)


def _launch_rays(
    kernel,
    n_blocks: int,
    num_warps: int,
    *,
    density: torch.Tensor,
    labels: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    n_channels: int,
    grad_out: torch.Tensor | None,
    bound: torch.Tensor | None,
    need_rays: bool,
    ray_dtype: torch.dtype,
    **arguments,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the Siddon or trilinear kernel with the arguments both take, plus the kernel's own ``arguments``.

    The forward pass runs without ``grad_out``; the density gradient is computed when ``bound`` (an upper bound on
    any voxel's total, see :func:`_fixed_point_scale`) is given, pose gradients (in ``ray_dtype``) with
    ``need_rays``. Returns (out (R, C) | placeholder, grad_density (X, Y, Z) float32 | empty, grad_source (R, 3) |
    empty, grad_target (R, 3) | empty).
    """
    forward = grad_out is None
    need_density = bound is not None
    density = density.contiguous()
    labels = labels.contiguous()
    n_rays = source.shape[0]
    has_labels, channels = _channel_tile(labels, n_channels)
    device = density.device
    dummy = _placeholder(device)
    out = torch.zeros(n_rays, n_channels if has_labels else 1, dtype=torch.float32, device=device) if forward else dummy
    empty = torch.empty(0, dtype=ray_dtype, device=device)
    grad_source = torch.zeros(source.shape, dtype=ray_dtype, device=device) if need_rays else empty
    grad_target = torch.zeros(target.shape, dtype=ray_dtype, device=device) if need_rays else empty
    accumulator = torch.zeros(density.shape, dtype=torch.int64, device=device) if need_density else dummy
    scale = _fixed_point_scale(bound) if bound is not None else dummy
    if n_rays > 0:
        _launch(
            kernel,
            n_blocks,
            num_warps,
            density_ptr=density,
            labels_ptr=labels if has_labels else dummy,
            source_ptr=source,
            target_ptr=target,
            grad_out_ptr=dummy if grad_out is None else grad_out,  # the forward pass reads no upstream gradient
            fixed_scale_ptr=scale,
            out_ptr=out,
            grad_density_ptr=accumulator,
            grad_source_ptr=grad_source if need_rays else dummy,
            grad_target_ptr=grad_target if need_rays else dummy,
            n_rays=n_rays,
            n_channels=n_channels,
            size_x=density.shape[0],
            size_y=density.shape[1],
            size_z=density.shape[2],
            FORWARD=forward,
            DENSITY_GRAD=need_density,
            RAY_GRAD=need_rays,
            HAS_LABELS=has_labels,
            CHANNELS=channels,
            **arguments,
        )
    if bound is None:
        return out, density.new_empty(0), grad_source, grad_target
    return out, _from_fixed_point(accumulator, scale, bound, density.shape), grad_source, grad_target


def _run_siddon(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    *,
    float64: bool,
    grad_out: torch.Tensor | None = None,
    need_density: bool = False,
    need_rays: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One launch of the Siddon kernel: the forward pass without ``grad_out``, else the gradients asked for with
    ``grad_out`` (R, C) float32. Returns (out (R, C) | placeholder, grad_density | empty, grad_source | empty,
    grad_target | empty)."""
    source, target = _geometry(source, target)
    has_labels, channels = _channel_tile(labels, n_channels)
    block = SIDDON_BLOCK_RAYS
    if grad_out is None and has_labels:
        # Keep the (rays, channels) one-hot tile of the labelled forward near CHANNEL_TILE elements.
        block = min(block, max(16, CHANNEL_TILE // channels))
    bound = None
    if need_density and grad_out is not None:
        # A ray's chord through one voxel is at most sqrt(3) voxels, i.e. sqrt(3) / |d| in ray-parameter units.
        direction = target.double() - source.double() + DIRECTION_EPS
        chord = 3**0.5 / direction.norm(dim=-1).clamp_min(1e-300)
        bound = 2 * (grad_out.double().abs().amax(dim=-1) * chord).sum()
    return _launch_rays(
        siddon_kernel,
        triton.cdiv(source.shape[0], block),
        SIDDON_NUM_WARPS,
        density=density,
        labels=labels,
        source=source,
        target=target,
        n_channels=n_channels,
        grad_out=grad_out,
        bound=bound,
        need_rays=need_rays,
        ray_dtype=source.dtype,
        FLOAT64=float64,
        TINY=_tiny(torch.float64 if float64 else torch.float32),
        BLOCK=block,
    )


def siddon_forward(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    *,
    float64_traversal: bool | None = None,
) -> torch.Tensor:
    """Per-ray Siddon sums (R, C) float32; see :mod:`drreg.render.kernels` for the interface.

    Args:
        density: (X, Y, Z) float32/float16/bfloat16 voxel values.
        source: (R, 3) ray origins, voxel-index coordinates (float32 or float64).
        target: (R, 3) ray ends, voxel-index coordinates.
        labels: (X, Y, Z) int64 channel of each voxel, in ``[0, n_channels)``, or an empty tensor (one channel).
        n_channels: number of output channels (ignored without labels).
        float64_traversal: crossing parameters in float64 (default ``FLOAT64_TRAVERSAL``; see ``_triton_siddon``).
    """
    float64 = FLOAT64_TRAVERSAL if float64_traversal is None else float64_traversal
    out, *_ = _run_siddon(density, source, target, labels, n_channels, float64=float64)
    return out


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
    float64_traversal: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`siddon_forward`: (density (X, Y, Z) float32 | empty, source (R, 3) | empty, target | empty).

    ``grad_out`` is (R, C). Source and target gradients come in the dtype of ``source``/``target``.
    """
    float64 = FLOAT64_TRAVERSAL if float64_traversal is None else float64_traversal
    grad_out = grad_out.float().contiguous()
    if not (need_density or need_rays):
        return density.new_empty(0), source.new_empty(0), target.new_empty(0)
    _, grad_density, grad_source, grad_target = _run_siddon(
        density,
        source,
        target,
        labels,
        n_channels,
        float64=float64,
        grad_out=grad_out,
        need_density=need_density,
        need_rays=need_rays,
    )
    if need_rays:
        grad_source, grad_target = grad_source.to(source.dtype), grad_target.to(target.dtype)
    return grad_density, grad_source, grad_target


def _run_trilinear(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    alpha_bounds: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    n_points: int,
    *,
    grad_out: torch.Tensor | None = None,
    need_density: bool = False,
    need_rays: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One launch of the trilinear kernel: the forward pass without ``grad_out``, else the gradients asked for with
    ``grad_out`` (R, C) float32. Returns (out (R, C) | placeholder, grad_density | empty, grad_source | empty,
    grad_target | empty, per-ray alpha-bounds partials (R, 2) | empty)."""
    source, target = _geometry(source, target)
    alpha_bounds = alpha_bounds.to(torch.promote_types(alpha_bounds.dtype, torch.float32)).contiguous()
    n_rays = source.shape[0]
    has_labels, channels = _channel_tile(labels, n_channels)
    block_samples = TRILINEAR_BLOCK_SAMPLES
    if has_labels:
        # Keep the (rays, samples, channels) one-hot tile of the labelled forward within CHANNEL_TILE elements.
        block_samples = min(block_samples, max(1, CHANNEL_TILE // (TRILINEAR_BLOCK_RAYS * channels)))
    device = density.device
    geometry = torch.promote_types(source.dtype, alpha_bounds.dtype)
    grad_bounds = (
        torch.zeros(n_rays, 2, dtype=geometry, device=device)
        if need_rays
        else torch.empty(0, dtype=geometry, device=device)
    )
    bound = None
    if need_density and grad_out is not None:
        # Each sample's eight corner weights sum to 1: a ray gives any voxel at most |w| |step| n_points.
        step = (alpha_bounds[1] - alpha_bounds[0]).double().abs() / (n_points - 1)
        bound = 2 * grad_out.double().abs().amax(dim=-1).sum() * step * n_points
    out, grad_density, grad_source, grad_target = _launch_rays(
        trilinear_kernel,
        triton.cdiv(n_rays, TRILINEAR_BLOCK_RAYS),
        TRILINEAR_NUM_WARPS,
        density=density,
        labels=labels,
        source=source,
        target=target,
        n_channels=n_channels,
        grad_out=grad_out,
        bound=bound,
        need_rays=need_rays,
        ray_dtype=geometry,
        bounds_ptr=alpha_bounds,
        unit_ptr=_cached_unit_steps(n_points, alpha_bounds.dtype, alpha_bounds.device, torch.get_default_dtype()),
        grad_bounds_ptr=grad_bounds if need_rays else _placeholder(device),
        n_points=n_points,
        TINY=_tiny(source.dtype),
        BLOCK_RAYS=TRILINEAR_BLOCK_RAYS,
        BLOCK_SAMPLES=block_samples,
    )
    return out, grad_density, grad_source, grad_target, grad_bounds


def trilinear_forward(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    alpha_bounds: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    n_points: int,
) -> torch.Tensor:
    """Per-ray trilinear sums (R, C) float32 (samples times the parameter step); interface of the kernels package.

    Args:
        density: (X, Y, Z) float32/float16/bfloat16 voxel values.
        source: (R, 3) ray origins, voxel-index coordinates (float32 or float64).
        target: (R, 3) ray ends, voxel-index coordinates.
        alpha_bounds: (2,) ``[alpha_min, alpha_max]`` sampling range.
        labels: (X, Y, Z) int64 channel of each voxel, in ``[0, n_channels)``, or an empty tensor (one channel).
        n_channels: number of output channels (ignored without labels).
        n_points: samples per ray (at least 2).
    """
    out, *_ = _run_trilinear(density, source, target, alpha_bounds, labels, n_channels, n_points)
    return out


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
    """Gradients of :func:`trilinear_forward`: (density | empty, source | empty, target | empty, bounds (2,) | empty).

    ``grad_out`` is (R, C). Ray and bound gradients come in the dtypes of ``source``, ``target`` and ``alpha_bounds``;
    the bounds' gradient is a deterministic ``torch.sum`` of per-ray partials (in float64).
    """
    grad_out = grad_out.float().contiguous()
    if not (need_density or need_rays):
        return density.new_empty(0), source.new_empty(0), target.new_empty(0), alpha_bounds.new_empty(0)
    _, grad_density, grad_source, grad_target, grad_bounds = _run_trilinear(
        density,
        source,
        target,
        alpha_bounds,
        labels,
        n_channels,
        n_points,
        grad_out=grad_out,
        need_density=need_density,
        need_rays=need_rays,
    )
    if not need_rays:
        return grad_density, source.new_empty(0), target.new_empty(0), alpha_bounds.new_empty(0)
    return (
        grad_density,
        grad_source.to(source.dtype),
        grad_target.to(target.dtype),
        grad_bounds.double().sum(dim=0).to(alpha_bounds.dtype),
    )
