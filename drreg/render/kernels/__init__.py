"""Fused renderers: one ``torch.library`` custom op per method, compiled CPU (numba) and CUDA (Triton) kernels.

The ops have the semantics of the pure-torch references in :mod:`drreg.render.siddon` and
:mod:`drreg.render.trilinear` (those are the specification; tests hold the kernels to them, values and
gradients). Each op computes, for flat rays in voxel-index coordinates, the per-ray sums (R, C) *before*
the multiplication by the ray length, exactly like the reference functions.

Kernel modules, imported lazily so that numba/triton are only needed when used, one set per device type and
one module per method (``traversal``: the ray primitives the kernels share; ``siddon``, ``trilinear``: the
kernels; ``host``: tensor conversion, launches and the interface below):

- ``_numba_traversal.py``, ``_numba_siddon.py``, ``_numba_trilinear.py``, ``_numba_host.py`` (CPU tensors;
  ``_numba_order.py`` orders the rays for the caches, ``_numba_memory.py`` reads voxels unchecked,
  ``_numba_occupancy.py`` finds the box of non-zero voxels the walks and samples are clipped to);
- ``_triton_traversal.py``, ``_triton_siddon.py``, ``_triton_trilinear.py``, ``_triton_host.py`` (CUDA tensors).

Each host module provides::

    siddon_forward(density, source, target, labels, n_channels) -> (R, C)
    siddon_jacobian(density, source, target) -> ((R, 1), d out / d (source, target) (R, 6) float64)  [CPU only]
    siddon_backward(grad_out, density, source, target, labels, n_channels, *, need_density, need_rays)
        -> (grad_density (X, Y, Z) | empty, grad_source (R, 3) | empty, grad_target (R, 3) | empty)
    trilinear_forward(density, source, target, alpha_bounds, labels, n_channels, n_points) -> (R, C)
    trilinear_jacobian(density, source, target, alpha_bounds, n_points)
        -> ((R, 1), d out / d (source, target, alpha_bounds) (R, 8) float64)                   [CPU only]
    trilinear_backward(grad_out, density, source, target, alpha_bounds, labels, n_channels, n_points, *,
                       need_density, need_rays)
        -> (grad_density | empty, grad_source | empty, grad_target | empty, grad_alpha_bounds (2,) | empty)

``labels`` is an (X, Y, Z) int64 tensor or an empty tensor (no channels; then C = 1).
"""

from __future__ import annotations

import functools
import importlib
import warnings

import torch

__all__ = [
    "fused_unavailable_reason",
    "kernel_load_error",
    "warn_fallback_once",
    "siddon_fused",
    "trilinear_fused",
]

# Device type -> (package the kernels need, host module of the kernels).
_MODULES = {
    "cpu": ("numba", "drreg.render.kernels._numba_host"),
    "cuda": ("triton", "drreg.render.kernels._triton_host"),
}
_INSTALL = {
    "cpu": "numba is a dependency of drreg: `pip install 'numba>=0.59'` (or reinstall drreg) restores it",
    "cuda": "triton comes with the CUDA builds of torch on Linux; otherwise `pip install 'drreg[triton]'`",
}
_DENSITY_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_WARNED: set[str] = set()


@functools.cache
def _load_error(device_type: str) -> str | None:
    package, module = _MODULES[device_type]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == package:
            return f"{package} is not installed; {_INSTALL[device_type]}"
        return f"{module} cannot be imported ({exc}); {_INSTALL[device_type]}"
    except Exception as exc:  # a broken install (e.g. numba built for another numpy) raises anything on import
        return f"{module} failed to load ({type(exc).__name__}: {exc}); {_INSTALL[device_type]}"
    return None


# torch.compile cannot trace functools.cache's wrapper or the import: it evaluates this once while tracing.
@torch.compiler.assume_constant_result
def _cached_load_error(device_type: str) -> str | None:
    return _load_error(device_type) if device_type in _MODULES else None


def kernel_load_error(device: torch.device) -> str | None:
    """Why the fused kernels of ``device`` exist but cannot be loaded here, or ``None`` (loaded, or no kernel).

    The kernel module is imported on the first call for a device type (numba on ``cpu``, triton on ``cuda``)
    and the answer is cached.
    """
    return _cached_load_error(device.type)


def warn_fallback_once(device: torch.device) -> None:
    """Warn (once per device type and process) that ``backend="auto"`` renders with the slow torch reference
    because the fused kernels of ``device`` cannot be loaded; says why and what to install."""
    if torch.compiler.is_compiling():  # a warning breaks a fullgraph trace; the eager calls before it warned
        return
    error = kernel_load_error(device)
    if error is None or device.type in _WARNED:
        return
    _WARNED.add(device.type)
    warnings.warn(
        f"drreg: backend='auto' renders on {device.type} with the pure-torch reference (10-30x slower) because the "
        f"fused kernels cannot be loaded: {error}. Pass backend='torch' to silence this warning.",
        RuntimeWarning,
        stacklevel=3,
    )


def fused_unavailable_reason(density: torch.Tensor) -> str | None:
    """Why the fused path cannot render this volume here, or ``None`` if it can.

    Hard limits: CPU or CUDA tensors; density stored as float32, float16 or bfloat16 (accumulation is float32);
    numba (CPU) or triton (CUDA) importable.
    """
    if density.device.type not in _MODULES:
        return f"no fused kernel for device {density.device.type!r} (cpu and cuda have one)"
    if density.dtype not in _DENSITY_DTYPES:
        return f"fused kernels store density as float32/float16/bfloat16, got {density.dtype}"
    return kernel_load_error(density.device)


def _kernels(device: torch.device):
    return importlib.import_module(_MODULES[device.type][1])


def _no_labels(labels: torch.Tensor | None, density: torch.Tensor) -> torch.Tensor:
    return torch.empty(0, dtype=torch.long, device=density.device) if labels is None else labels


def _fake_gradients(
    density: torch.Tensor, source: torch.Tensor, target: torch.Tensor, need_density: bool, need_rays: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # The (density, source, target) gradients both backward ops return: float32 density, rays in their own dtype.
    return (
        density.new_empty(density.shape, dtype=torch.float32) if need_density else density.new_empty(0),
        source.new_empty(source.shape) if need_rays else source.new_empty(0),
        target.new_empty(target.shape) if need_rays else target.new_empty(0),
    )


# -- Siddon ----------------------------------------------------------------------------------------------


@torch.library.custom_op("drreg::siddon", mutates_args=())
def _siddon_op(
    density: torch.Tensor, source: torch.Tensor, target: torch.Tensor, labels: torch.Tensor, n_channels: int
) -> torch.Tensor:
    return _kernels(density.device).siddon_forward(density, source, target, labels, n_channels)


@_siddon_op.register_fake
def _(density, source, target, labels, n_channels):
    return density.new_empty(target.shape[0], n_channels, dtype=torch.float32)


@torch.library.custom_op("drreg::siddon_backward", mutates_args=())
def _siddon_backward_op(
    grad_out: torch.Tensor,
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    need_density: bool,
    need_rays: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _kernels(density.device).siddon_backward(
        grad_out, density, source, target, labels, n_channels, need_density=need_density, need_rays=need_rays
    )


@_siddon_backward_op.register_fake
def _(grad_out, density, source, target, labels, n_channels, need_density, need_rays):
    return _fake_gradients(density, source, target, need_density, need_rays)


def _siddon_setup(ctx, inputs, output):
    density, source, target, labels, n_channels = inputs
    ctx.save_for_backward(density, source, target, labels)
    ctx.n_channels = n_channels


def _siddon_autograd(ctx, grad_out):
    density, source, target, labels = ctx.saved_tensors
    need_density = ctx.needs_input_grad[0]
    need_rays = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
    grad_density, grad_source, grad_target = _siddon_backward_op(
        grad_out.contiguous(), density, source, target, labels, ctx.n_channels, need_density, need_rays
    )
    return (
        grad_density.to(density.dtype) if need_density else None,
        grad_source if need_rays else None,
        grad_target if need_rays else None,
        None,
        None,
    )


_siddon_op.register_autograd(_siddon_autograd, setup_context=_siddon_setup)


@torch.library.custom_op("drreg::siddon_jacobian", mutates_args=())
def _siddon_jacobian_op(
    density: torch.Tensor, source: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    return _kernels(density.device).siddon_jacobian(density, source, target)


@_siddon_jacobian_op.register_fake
def _(density, source, target):
    return (
        density.new_empty(target.shape[0], 1, dtype=torch.float32),
        source.new_empty(target.shape[0], 6, dtype=torch.float64),
    )


def _siddon_jacobian_setup(ctx, inputs, output):
    density, source, target = inputs
    jacobian = output[1]
    ctx.save_for_backward(density, source, target, jacobian)
    ctx.mark_non_differentiable(jacobian)


def _siddon_jacobian_autograd(ctx, grad_out, grad_jacobian):
    density, source, target, jacobian = ctx.saved_tensors
    need_density = ctx.needs_input_grad[0]
    need_rays = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
    grad_density = grad_source = grad_target = None
    if need_density:
        no_labels = _no_labels(None, density)
        grad = _siddon_backward_op(grad_out.contiguous(), density, source, target, no_labels, 1, True, False)[0]
        grad_density = grad.to(density.dtype)
    if need_rays:
        # The pose gradient is linear in grad_out: grad_out[r] times the ray's derivatives from the forward walk.
        weight = grad_out.to(torch.float64)
        grad_source = (weight * jacobian[:, :3]).to(source.dtype)
        grad_target = (weight * jacobian[:, 3:]).to(target.dtype)
    return grad_density, grad_source, grad_target


_siddon_jacobian_op.register_autograd(_siddon_jacobian_autograd, setup_context=_siddon_jacobian_setup)


def siddon_fused(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    labels: torch.Tensor | None = None,
    n_channels: int | None = None,
) -> torch.Tensor:
    """Fused :func:`drreg.render.siddon.siddon` (same arguments and result, float32 output).

    On the CPU, a one-channel render whose rays need gradients also returns, from the same walk, each ray's
    derivatives (``drreg::siddon_jacobian``): the backward pass then multiplies instead of walking the rays again.
    """
    rays_need_grad = torch.is_grad_enabled() and (source.requires_grad or target.requires_grad)
    if labels is None and density.device.type == "cpu" and rays_need_grad:
        return _siddon_jacobian_op(density, source.contiguous(), target.contiguous())[0]
    n_channels = 1 if labels is None else (int(labels.max()) + 1 if n_channels is None else n_channels)
    return _siddon_op(density, source.contiguous(), target.contiguous(), _no_labels(labels, density), n_channels)


# -- trilinear -------------------------------------------------------------------------------------------


@torch.library.custom_op("drreg::trilinear", mutates_args=())
def _trilinear_op(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    alpha_bounds: torch.Tensor,
    labels: torch.Tensor,
    n_channels: int,
    n_points: int,
) -> torch.Tensor:
    return _kernels(density.device).trilinear_forward(
        density, source, target, alpha_bounds, labels, n_channels, n_points
    )


@_trilinear_op.register_fake
def _(density, source, target, alpha_bounds, labels, n_channels, n_points):
    return density.new_empty(target.shape[0], n_channels, dtype=torch.float32)


@torch.library.custom_op("drreg::trilinear_backward", mutates_args=())
def _trilinear_backward_op(
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
    return _kernels(density.device).trilinear_backward(
        grad_out,
        density,
        source,
        target,
        alpha_bounds,
        labels,
        n_channels,
        n_points,
        need_density=need_density,
        need_rays=need_rays,
    )


@_trilinear_backward_op.register_fake
def _(grad_out, density, source, target, alpha_bounds, labels, n_channels, n_points, need_density, need_rays):
    return (
        *_fake_gradients(density, source, target, need_density, need_rays),
        alpha_bounds.new_empty(2) if need_rays else alpha_bounds.new_empty(0),
    )


def _trilinear_setup(ctx, inputs, output):
    density, source, target, alpha_bounds, labels, n_channels, n_points = inputs
    ctx.save_for_backward(density, source, target, alpha_bounds, labels)
    ctx.settings = (n_channels, n_points)


def _trilinear_autograd(ctx, grad_out):
    density, source, target, alpha_bounds, labels = ctx.saved_tensors
    n_channels, n_points = ctx.settings
    need_density = ctx.needs_input_grad[0]
    need_rays = any(ctx.needs_input_grad[1:4])
    grads = _trilinear_backward_op(
        grad_out.contiguous(),
        density,
        source,
        target,
        alpha_bounds,
        labels,
        n_channels,
        n_points,
        need_density,
        need_rays,
    )
    return (
        grads[0].to(density.dtype) if need_density else None,
        grads[1] if need_rays else None,
        grads[2] if need_rays else None,
        grads[3] if need_rays else None,
        None,
        None,
        None,
    )


_trilinear_op.register_autograd(_trilinear_autograd, setup_context=_trilinear_setup)


@torch.library.custom_op("drreg::trilinear_jacobian", mutates_args=())
def _trilinear_jacobian_op(
    density: torch.Tensor, source: torch.Tensor, target: torch.Tensor, alpha_bounds: torch.Tensor, n_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    return _kernels(density.device).trilinear_jacobian(density, source, target, alpha_bounds, n_points)


@_trilinear_jacobian_op.register_fake
def _(density, source, target, alpha_bounds, n_points):
    return (
        density.new_empty(target.shape[0], 1, dtype=torch.float32),
        source.new_empty(target.shape[0], 8, dtype=torch.float64),
    )


def _trilinear_jacobian_setup(ctx, inputs, output):
    density, source, target, alpha_bounds, n_points = inputs
    jacobian = output[1]
    ctx.save_for_backward(density, source, target, alpha_bounds, jacobian)
    ctx.n_points = n_points
    ctx.mark_non_differentiable(jacobian)


def _trilinear_jacobian_autograd(ctx, grad_out, grad_jacobian):
    density, source, target, alpha_bounds, jacobian = ctx.saved_tensors
    need_density = ctx.needs_input_grad[0]
    need_rays = any(ctx.needs_input_grad[1:4])
    grad_density = grad_source = grad_target = grad_bounds = None
    if need_density:
        no_labels = _no_labels(None, density)
        grad = _trilinear_backward_op(
            grad_out.contiguous(), density, source, target, alpha_bounds, no_labels, 1, ctx.n_points, True, False
        )[0]
        grad_density = grad.to(density.dtype)
    if need_rays:
        # The gradients are linear in grad_out: grad_out[r] times the ray's derivatives from the forward pass.
        weighted = grad_out.to(torch.float64) * jacobian
        grad_source = weighted[:, :3].to(source.dtype)
        grad_target = weighted[:, 3:6].to(target.dtype)
        grad_bounds = weighted[:, 6:].sum(0).to(alpha_bounds.dtype)
    return grad_density, grad_source, grad_target, grad_bounds, None


_trilinear_jacobian_op.register_autograd(_trilinear_jacobian_autograd, setup_context=_trilinear_jacobian_setup)


def trilinear_fused(
    density: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    n_points: int,
    alpha_bounds: torch.Tensor,
    labels: torch.Tensor | None = None,
    n_channels: int | None = None,
) -> torch.Tensor:
    """Fused :func:`drreg.render.trilinear.trilinear` (same arguments and result, float32 output).

    On the CPU, a one-channel render whose rays or bounds need gradients also returns each ray's derivatives from
    the same pass (``drreg::trilinear_jacobian``), so the backward pass multiplies instead of sampling again.
    """
    needs_grad = source.requires_grad or target.requires_grad or alpha_bounds.requires_grad
    if labels is None and density.device.type == "cpu" and torch.is_grad_enabled() and needs_grad:
        rays = (source.contiguous(), target.contiguous())
        return _trilinear_jacobian_op(density, *rays, alpha_bounds, n_points)[0]
    n_channels = 1 if labels is None else (int(labels.max()) + 1 if n_channels is None else n_channels)
    return _trilinear_op(
        density,
        source.contiguous(),
        target.contiguous(),
        alpha_bounds,
        _no_labels(labels, density),
        n_channels,
        n_points,
    )
