"""Parity of the Triton kernels (``drreg/render/kernels/_triton_*.py``) with the torch references (values, gradients).

Two groups:

- interpreter checks (``interpreted_*`` functions; CPU, tiny inputs): the kernels run under ``TRITON_INTERPRET=1``,
  in a child pytest process started by :func:`test_interpreter_parity`;
- ``@pytest.mark.gpu`` tests (CUDA, realistic sizes, compiled kernels through the ``drreg::`` custom ops), skipped
  visibly without a CUDA device.

Both hold the kernels to the references with :class:`tests.render._parity.Parity`, as ``test_numba.py`` does.

Why a child process: triton (checked for 3.9) fixes interpreter mode per process at ``import triton``. It reads
``TRITON_INTERPRET`` whenever ``@triton.jit`` decorates a function, and its own standard library (``tl.max``,
``tl.sum``, ...) is decorated when ``triton.language`` is imported. A kernel module imported under the interpreter in a
process whose triton was imported without it fails ("Cannot call @triton.jit'd outside of the scope of a kernel"), and
a triton imported under the interpreter cannot compile real kernels. So the variable is set only in the child (by the
parent, and again at the top of this module before anything imports triton there); the parent process, and every
other test module, never see it. The child collects only the ``interpreted_*`` functions
(``-o python_functions=interpreted_*``) and reports each one.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

_CHILD_FLAG = "DRREG_TRITON_INTERPRETER_CHILD"
INTERPRETER_CHILD = os.environ.get(_CHILD_FLAG) == "1"
if INTERPRETER_CHILD:
    os.environ["TRITON_INTERPRET"] = "1"  # before anything in this process imports triton

import torch  # noqa: E402

import drreg.render.kernels  # noqa: E402
from drreg.render.siddon import siddon  # noqa: E402
from drreg.render.trilinear import alpha_range, trilinear  # noqa: E402
from tests._tolerances import relative_l2  # noqa: E402
from tests.render._parity import (  # noqa: E402
    Parity,
    Result,
    assert_bitwise_equal,
    stable_sort,
    value_and_grads,
)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")

if INTERPRETER_CHILD:
    from drreg.render.kernels import _triton_host as kernels
    from drreg.render.kernels import _triton_siddon

SHAPE = (6, 5, 4)
N_RAYS = 16
N_POINTS = 8
N_CHANNELS = 3
NO_LABELS = torch.empty(0, dtype=torch.long)
PARITY = Parity()
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (GPU parity tests)")


def _rays(seed: int, n_rays: int = N_RAYS, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Random lines around the SHAPE grid: most cross it, some start inside it, some miss, one is axis-aligned."""
    generator = torch.Generator().manual_seed(seed)
    centre = torch.tensor(SHAPE, dtype=torch.float64) / 2 - 0.5
    source = centre + torch.randn(n_rays, 3, generator=generator, dtype=torch.float64) * 6
    target = centre + torch.randn(n_rays, 3, generator=generator, dtype=torch.float64) * 3
    source[0] = centre + torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64)  # source inside the volume
    source[1], target[1] = torch.tensor([20.0, 20.0, 20.0]), torch.tensor([30.0, 22.0, 21.0])  # misses the volume
    source[2], target[2] = torch.tensor([2.2, -9.0, 1.3]), torch.tensor([2.2, 9.0, 1.3])  # axis-aligned (d_x = 1e-8)
    return source.to(dtype), target.to(dtype)


def _volume(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    density = torch.rand(SHAPE, generator=generator)
    labels = torch.randint(0, N_CHANNELS, SHAPE, generator=generator)
    return density, labels


# -- the child process --------------------------------------------------------------------------------------------


def test_interpreter_parity():
    """Runs this module's ``interpreted_*`` checks under the Triton interpreter in a child pytest process."""
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, _CHILD_FLAG: "1", "TRITON_INTERPRET": "1"}
    command = [sys.executable, "-m", "pytest", str(Path(__file__).resolve()), "-q", "-p", "no:cacheprovider"]
    command += ["-o", "python_functions=interpreted_*", "-o", "addopts=", "-rfE"]
    child = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    report = child.stdout[-6000:] + child.stderr[-2000:]
    assert child.returncode == 0, f"interpreter checks failed:\n{report}"
    assert " passed" in child.stdout and "skipped" not in child.stdout, report


def interpreted_isolation():
    from triton.runtime.interpreter import InterpretedFunction

    assert isinstance(_triton_siddon.siddon_kernel, InterpretedFunction)
    assert os.environ["TRITON_INTERPRET"] == "1"


# -- interpreter: Siddon -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("float64_traversal", [True, False], ids=["f64-traversal", "f32-traversal"])
@pytest.mark.parametrize("ray_dtype", [torch.float32, torch.float64], ids=["f32-rays", "f64-rays"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["single", "mask_to_channels"])
def interpreted_siddon_matches_reference(float64_traversal, ray_dtype, with_labels):
    density, labels = _volume(0)
    source, target = _rays(1, dtype=ray_dtype)
    labels, n_channels = (labels, N_CHANNELS) if with_labels else (None, 1)
    grad_out = torch.randn(N_RAYS, n_channels, generator=torch.Generator().manual_seed(2))
    expected = value_and_grads(
        lambda d, s, t: siddon(d, s, t, labels, n_channels if with_labels else None),
        density,
        source,
        target,
        grad_out=grad_out,
    )
    labels = NO_LABELS if labels is None else labels
    out = kernels.siddon_forward(density, source, target, labels, n_channels, float64_traversal=float64_traversal)
    grads = kernels.siddon_backward(
        grad_out,
        density,
        source,
        target,
        labels,
        n_channels,
        need_density=True,
        need_rays=True,
        float64_traversal=float64_traversal,
    )
    assert out.dtype == torch.float32 and out.shape == (N_RAYS, n_channels)
    assert grads[1].dtype == ray_dtype and grads[2].dtype == ray_dtype
    PARITY(Result(out, grads), expected)


def interpreted_siddon_edge_and_corner_rays_match_stable_reference(monkeypatch):
    # Rays through voxel edges and corners: crossings tie exactly. The kernel orders tied planes x, then y, then z
    # (a stable sort of the reference's concatenation); the reference's unstable torch.sort has no defined tie order,
    # so it is compared here with a stable sort. float64 traversal: same crossings, so same pose gradients.
    monkeypatch.setattr(torch.Tensor, "sort", stable_sort(torch.Tensor.sort))
    density, _ = _volume(3)
    lines = [
        ((-3.5, -3.5, 1.0), (6.5, 6.5, 1.0)),  # through the edges x = y
        ((-0.5, -0.5, -0.5), (5.5, 4.5, 3.5)),  # from a corner of the box
        ((-2.0, -2.0, -2.0), (8.0, 8.0, 8.0)),  # through voxel corners
        ((5.5, 4.5, 3.5), (-0.5, -0.5, -0.5)),  # into a corner, backwards
        ((-1.5, 0.5, 0.5), (6.5, 0.5, 0.5)),  # along an edge line
        ((2.5, -10.0, 1.0), (2.5, 10.0, 1.0)),  # in a voxel plane
    ]
    source = torch.tensor([line[0] for line in lines])
    target = torch.tensor([line[1] for line in lines])
    grad_out = torch.randn(len(lines), 1, generator=torch.Generator().manual_seed(4))
    expected = value_and_grads(siddon, density, source, target, grad_out=grad_out)
    out = kernels.siddon_forward(density, source, target, NO_LABELS, 1, float64_traversal=True)
    grads = kernels.siddon_backward(
        grad_out, density, source, target, NO_LABELS, 1, need_density=True, need_rays=True, float64_traversal=True
    )
    PARITY(Result(out, grads), expected)


@pytest.mark.parametrize("storage", [torch.float16, torch.bfloat16])
def interpreted_siddon_half_density_accumulates_in_float32(storage):
    # The stored values are read exactly and summed in float32: same as the reference on the upcast volume.
    density, _ = _volume(5)
    density = density.to(storage)
    source, target = _rays(6)
    grad_out = torch.randn(N_RAYS, 1, generator=torch.Generator().manual_seed(7))
    expected = value_and_grads(siddon, density.float(), source, target, grad_out=grad_out)
    out = kernels.siddon_forward(density, source, target, NO_LABELS, 1)
    grads = kernels.siddon_backward(grad_out, density, source, target, NO_LABELS, 1, need_density=True, need_rays=True)
    PARITY(Result(out, grads), expected)


# -- interpreter: trilinear --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ray_dtype", [torch.float32, torch.float64], ids=["f32-rays", "f64-rays"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["single", "mask_to_channels"])
def interpreted_trilinear_matches_reference(ray_dtype, with_labels):
    density, labels = _volume(8)
    source, target = _rays(9, dtype=ray_dtype)
    bounds = alpha_range(SHAPE, source, target)
    labels, n_channels = (labels, N_CHANNELS) if with_labels else (None, 1)
    grad_out = torch.randn(N_RAYS, n_channels, generator=torch.Generator().manual_seed(10))
    expected = value_and_grads(
        lambda d, s, t, b: trilinear(d, s, t, N_POINTS, b, labels, n_channels if with_labels else None),
        density,
        source,
        target,
        bounds,
        grad_out=grad_out,
    )
    labels = NO_LABELS if labels is None else labels
    out = kernels.trilinear_forward(density, source, target, bounds, labels, n_channels, N_POINTS)
    grads = kernels.trilinear_backward(
        grad_out, density, source, target, bounds, labels, n_channels, N_POINTS, need_density=True, need_rays=True
    )
    assert out.dtype == torch.float32 and out.shape == (N_RAYS, n_channels)
    assert grads[3].shape == (2,) and grads[3].dtype == bounds.dtype
    # The bounds' gradient sums float32 sample gradients over all rays: compared relative to its size.
    PARITY(Result(out, grads), expected, alpha_bounds=True)


@pytest.mark.parametrize("storage", [torch.float16, torch.bfloat16])
def interpreted_trilinear_half_density_accumulates_in_float32(storage):
    # Geometry stays float32 (the reference casts its sample grid to the density dtype; the kernel does not).
    density, _ = _volume(11)
    density = density.to(storage)
    source, target = _rays(12)
    bounds = alpha_range(SHAPE, source, target)
    grad_out = torch.randn(N_RAYS, 1, generator=torch.Generator().manual_seed(13))
    expected = value_and_grads(
        lambda d, s, t: trilinear(d, s, t, N_POINTS, bounds), density.float(), source, target, grad_out=grad_out
    )
    out = kernels.trilinear_forward(density, source, target, bounds, NO_LABELS, 1, N_POINTS)
    grads = kernels.trilinear_backward(
        grad_out, density, source, target, bounds, NO_LABELS, 1, N_POINTS, need_density=True, need_rays=True
    )
    PARITY(Result(out, grads[:3]), expected)  # the bounds are no input of the reference here


# -- interpreter: determinism, subsets, flags --------------------------------------------------------------------------


def _backward(renderer, density, source, target, grad_out, labels=NO_LABELS, n_channels=1):
    if renderer == "siddon":
        return kernels.siddon_backward(
            grad_out, density, source, target, labels, n_channels, need_density=True, need_rays=True
        )
    bounds = alpha_range(SHAPE, source, target)
    return kernels.trilinear_backward(
        grad_out, density, source, target, bounds, labels, n_channels, N_POINTS, need_density=True, need_rays=True
    )


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def interpreted_gradients_are_bitwise_deterministic(renderer):
    density, _ = _volume(14)
    source, target = _rays(15)
    grad_out = torch.randn(N_RAYS, 1, generator=torch.Generator().manual_seed(16))
    assert_bitwise_equal(
        _backward(renderer, density, source, target, grad_out), _backward(renderer, density, source, target, grad_out)
    )


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def interpreted_ray_subset_is_independent_of_the_batch(renderer):
    # Rays are plain rows: a subset renders (and differentiates) as the same rows of the full batch.
    density, _ = _volume(17)
    source, target = _rays(18)
    bounds = alpha_range(SHAPE, source, target)
    rows = torch.tensor([3, 7, 8, 15])
    if renderer == "siddon":
        full = kernels.siddon_forward(density, source, target, NO_LABELS, 1)
        part = kernels.siddon_forward(density, source[rows], target[rows], NO_LABELS, 1)
    else:
        full = kernels.trilinear_forward(density, source, target, bounds, NO_LABELS, 1, N_POINTS)
        part = kernels.trilinear_forward(density, source[rows], target[rows], bounds, NO_LABELS, 1, N_POINTS)
    assert torch.equal(full[rows], part)


def interpreted_empty_ray_set_and_missing_rays():
    density, _ = _volume(19)
    empty = torch.empty(0, 3)
    assert kernels.siddon_forward(density, empty, empty, NO_LABELS, 1).shape == (0, 1)
    grads = kernels.siddon_backward(
        torch.empty(0, 1), density, empty, empty, NO_LABELS, 1, need_density=True, need_rays=True
    )
    assert torch.equal(grads[0], torch.zeros(SHAPE)) and grads[1].shape == (0, 3)
    source, target = torch.tensor([[20.0, 20.0, 20.0]]), torch.tensor([[30.0, 22.0, 21.0]])
    assert torch.equal(kernels.siddon_forward(density, source, target, NO_LABELS, 1), torch.zeros(1, 1))
    grads = kernels.siddon_backward(
        torch.ones(1, 1), density, source, target, NO_LABELS, 1, need_density=True, need_rays=True
    )
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads)


def interpreted_backward_flags_select_outputs():
    density, _ = _volume(20)
    source, target = _rays(21)
    grad_out = torch.ones(N_RAYS, 1)
    args = (grad_out, density, source, target, NO_LABELS, 1)
    only_density = kernels.siddon_backward(*args, need_density=True, need_rays=False)
    only_rays = kernels.siddon_backward(*args, need_density=False, need_rays=True)
    both = kernels.siddon_backward(*args, need_density=True, need_rays=True)
    assert only_density[1].numel() == 0 and only_rays[0].numel() == 0
    assert torch.equal(only_density[0], both[0]) and torch.equal(only_rays[1], both[1])


# -- GPU (compiled kernels through the custom ops) ---------------------------------------------------------------------


def _cone_beam(height: int, shape: tuple[int, int, int], dtype: torch.dtype, device: str):
    """A cone-beam fan in voxel coordinates: source ~600 voxels from the centre, a (height, height) detector."""
    centre = torch.tensor(shape, dtype=torch.float64) / 2 - 0.5
    source = centre + torch.tensor([3.0, -600.0, 2.0], dtype=torch.float64)
    u = torch.linspace(-0.6, 0.6, height, dtype=torch.float64) * shape[0]
    v = torch.linspace(-0.6, 0.6, height, dtype=torch.float64) * shape[2]
    grid_u, grid_v = torch.meshgrid(u, v, indexing="ij")
    target = centre + torch.stack([grid_u, torch.full_like(grid_u, 400.0), grid_v], dim=-1).reshape(-1, 3)
    return source.expand_as(target).to(dtype=dtype, device=device), target.to(dtype=dtype, device=device)


def _fused_and_reference(renderer, density, source, target, labels, n_channels, bounds=None):
    results = []
    for implementation in ("fused", "torch"):
        leaves = [x.detach().clone().requires_grad_() for x in (density, source, target)]
        if renderer == "siddon":
            call = drreg.render.kernels.siddon_fused if implementation == "fused" else siddon
            out = call(*leaves, labels, n_channels)
        else:
            call = drreg.render.kernels.trilinear_fused if implementation == "fused" else trilinear
            out = call(*leaves, 200, bounds, labels, n_channels)
        out.backward(torch.linspace(-1, 1, out.numel(), device=out.device).reshape(out.shape))
        results.append([out.detach()] + [x.grad for x in leaves])
    return results


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["single", "mask_to_channels"])
def test_cuda_parity_realistic(renderer, with_labels):
    shape = (128, 128, 64)
    generator = torch.Generator().manual_seed(22)
    density = torch.rand(shape, generator=generator).cuda()
    labels = torch.randint(0, 4, shape, generator=generator).cuda() if with_labels else None
    n_channels = 4 if with_labels else None
    source, target = _cone_beam(96, shape, torch.float32, "cuda")
    bounds = alpha_range(shape, source, target) if renderer == "trilinear" else None
    fused, reference = _fused_and_reference(renderer, density, source, target, labels, n_channels, bounds)
    # Relative L2 over the whole tensor; float32 accumulation in both (pose grads: float64 crossings in both).
    Parity(relative_l2=1e-4, strict=True).tensors(fused, reference, ("value", "density", "source", "target"))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_cuda_gradients_are_bitwise_deterministic(renderer):
    shape = (128, 128, 64)
    density = torch.rand(shape, generator=torch.Generator().manual_seed(23)).cuda()
    source, target = _cone_beam(96, shape, torch.float32, "cuda")
    bounds = alpha_range(shape, source, target) if renderer == "trilinear" else None
    first, _ = _fused_and_reference(renderer, density, source, target, None, None, bounds)
    second, _ = _fused_and_reference(renderer, density, source, target, None, None, bounds)
    assert_bitwise_equal(first, second)


@pytest.mark.gpu
@needs_cuda
def test_cuda_half_density():
    shape = (128, 128, 64)
    density = torch.rand(shape, generator=torch.Generator().manual_seed(24)).cuda()
    source, target = _cone_beam(64, shape, torch.float32, "cuda")
    half = drreg.render.kernels.siddon_fused(density.half(), source, target)
    full = siddon(density.half().float(), source, target)
    assert relative_l2(half, full) < 1e-5
