"""The ``drreg::`` custom ops of :mod:`drreg.render.kernels`: schema and autograd checks, and ``torch.compile``.

CPU tensors, so the ops run the numba kernels (their parity with the references: ``test_numba.py``).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from drreg.render import render
from drreg.render.trilinear import alpha_range
from tests.render._cases import N_CHANNELS, N_RAYS, SHAPE, rays, volume
from tests.render._parity import assert_bitwise_equal

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed")


def _op_args(op: str, with_labels: bool, requires_grad: bool):
    density, labels = volume(17)
    source, target = rays(18, torch.float64)
    leaves = [x.requires_grad_(requires_grad) for x in (density, source, target)]
    labels = labels if with_labels else torch.empty(0, dtype=torch.long)
    n_channels = N_CHANNELS if with_labels else 1
    if op == "siddon":
        return (*leaves, labels, n_channels)
    bounds = alpha_range(SHAPE, source.detach(), target.detach()).requires_grad_(requires_grad)
    return (*leaves, bounds, labels, n_channels, 16)


@pytest.mark.parametrize("op", ["siddon", "trilinear"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["single", "mask_to_channels"])
@pytest.mark.parametrize("requires_grad", [False, True], ids=["no-grad", "grad"])
def test_opcheck_forward_ops(op, with_labels, requires_grad):
    args = _op_args(op, with_labels, requires_grad)
    torch.library.opcheck(getattr(torch.ops.drreg, op).default, args)


@pytest.mark.parametrize("op", ["siddon", "trilinear"])
@pytest.mark.parametrize("need_density", [False, True], ids=["no-density", "density"])
@pytest.mark.parametrize("need_rays", [False, True], ids=["no-rays", "rays"])
def test_opcheck_backward_ops(op, need_density, need_rays):
    args = _op_args(op, True, False)
    grad_out = torch.randn(N_RAYS, N_CHANNELS, generator=torch.Generator().manual_seed(19))
    torch.library.opcheck(
        getattr(torch.ops.drreg, f"{op}_backward").default, (grad_out, *args, need_density, need_rays)
    )


def _render_loss(density, source, target, world_to_voxel, renderer):
    image = render(density, source, target, world_to_voxel, renderer, n_points=32, backend="fused")
    return image, (image * torch.linspace(-1, 1, image.numel()).reshape(image.shape)).sum()


def _image_and_grads(function, density, source, target, world_to_voxel, renderer) -> list[torch.Tensor]:
    leaves = [x.detach().clone().requires_grad_() for x in (density, source, target)]
    image, loss = function(*leaves, world_to_voxel, renderer)
    loss.backward()
    return [image.detach()] + [x.grad for x in leaves]


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_compiled_render_equals_eager(renderer):
    density, _ = volume(20)
    source, target = rays(21)
    source, target = source[None, :1].double(), target[None].double()  # one pose: (1, 1, 3) source, (1, N, 3)
    world_to_voxel = torch.diag(torch.tensor([0.5, 0.4, 1.0, 1.0], dtype=torch.float64))
    source, target = source / world_to_voxel.diagonal()[:3], target / world_to_voxel.diagonal()[:3]  # to world mm
    compiled = torch.compile(_render_loss, backend="aot_eager", fullgraph=True)
    eager = _image_and_grads(_render_loss, density, source, target, world_to_voxel, renderer)
    assert eager[0].abs().max() > 0
    assert_bitwise_equal(eager, _image_and_grads(compiled, density, source, target, world_to_voxel, renderer))
