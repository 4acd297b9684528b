"""The DRR module: shapes, batches, sparse pixels, channels, detector changes, gradients and bad input."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from drreg import DRR, RigidTransform, convert, read
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
    sparse = DRR(
        subject, sdd=400.0, height=9, width=7, delx=2.0, p_subsample=0.3, reshape=False, resample_subset=True
    ).to(device=device, dtype=dtype)
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
    assert drr.detector.sdd == 500.0 and drr.detector.center_x == 3.0 and drr.detector.x0 == -3.0  # DiffDRR sign
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
    # sdd=400: the volume (300 mm from the source) lies in front of the detector; at sdd=200 it lay beyond it, where
    # trilinear renders zeros and this gradcheck passed vacuously (now refused, issue 10).
    drr = DRR(subject, sdd=400.0, height=3, width=2, delx=3.0, renderer=renderer, n_points=9).double()
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


# -- issue 10: nothing silent -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(height=True), r"height must be a positive integer \(pixels\), got True"),
        (dict(height="64"), "height must be a positive integer .*got '64'"),
        (dict(width=2.5), "width must be a positive integer .*got 2.5"),
        (dict(p_subsample="0.5"), r"p_subsample must be in \(0, 1\] or None, got '0.5'"),
        (dict(p_subsample=0.0), r"p_subsample must be in \(0, 1\]"),
        (dict(sdd=True), r"sdd must be a positive number \(mm\), got True"),
        (dict(delx=math.nan), "delx must be a positive number .*got nan"),
        (dict(dely=-1.0), "dely must be a positive number .*got -1.0"),
        (dict(x0=math.inf), r"x0 must be a finite number \(mm\), got inf"),
        (dict(y0="1"), "y0 must be a finite number .*got '1'"),
        (dict(n_points=True), "n_points must be an integer >= 2, got True"),
        (dict(patch_size=0), "patch_size must be a positive integer"),
        (dict(memory_budget="1e9"), "memory_budget must be a positive integer .*got '1e9'"),
    ],
)
def test_numeric_arguments_are_checked_by_name_issue10(options, match):
    # Every number of DRR goes through one checker: booleans, strings, NaN/inf and bad ranges are named.
    with pytest.raises(ValueError, match=match):
        DRR(_subject(), **{**dict(sdd=400.0, height=4, delx=2.0), **options})


def test_numeric_arguments_of_calls_are_checked_issue10():
    # forward's n_points, rescale_detector_, set_intrinsics_ and render() refuse non-numbers by name, and a
    # refused set_intrinsics_ leaves the detector as it was.
    from drreg.render import render

    drr = DRR(_subject(), sdd=400.0, height=4, delx=2.0, renderer="trilinear")
    with pytest.raises(ValueError, match="n_points must be an integer >= 2, got '8'"):
        drr(*_pose(1), n_points="8", **EULER)
    with pytest.raises(ValueError, match="scale must be a positive number, got True"):
        drr.rescale_detector_(True)
    with pytest.raises(ValueError, match="height must be a positive integer .*got True"):
        drr.set_intrinsics_(sdd=500.0, height=True)
    assert (drr.detector.sdd, drr.detector.height) == (400.0, 4)
    source, target = drr.detector(convert(*_pose(1), **EULER))
    with pytest.raises(ValueError, match="n_points must be an integer >= 2, got 1.5"):
        render(drr.density, source, target, drr.world_to_voxel, "trilinear", n_points=1.5)


def test_empty_pose_batch_renders_an_empty_image_issue10():
    # A (0, 3) batch gives a (0, C, H, W) image, whose backward gives empty gradients, like torch's reductions.
    drr = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0)
    rot, xyz = torch.zeros(0, 3, requires_grad=True), torch.zeros(0, 3, requires_grad=True)
    image = drr(rot, xyz, **EULER)
    assert image.shape == (0, 1, 9, 7)
    image.sum().backward()
    assert rot.grad.shape == (0, 3) and xyz.grad.shape == (0, 3)
    assert drr(rot, xyz, mask_to_channels=True, **EULER).shape == (0, 3, 9, 7)


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
@pytest.mark.parametrize("backend", ["torch", "auto"])
@pytest.mark.parametrize("p_subsample", [None, 0.5])
def test_empty_pose_batch_every_renderer_issue10(renderer, backend, p_subsample):
    # Both renderers and backends, dense and sparse, return the empty image of the right shape.
    drr = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0, renderer=renderer, backend=backend,
              p_subsample=p_subsample)  # fmt: skip
    assert drr(torch.zeros(0, 3), torch.zeros(0, 3), **EULER).shape == (0, 1, 9, 7)


def _pa_drr(renderer: str = "siddon") -> DRR:
    subject = read(_subject().volume.data[0], affine=torch.diag(torch.tensor([2.0, 2.5, 3.0, 1.0])), orientation="PA")
    return DRR(subject, sdd=400.0, height=9, width=7, delx=2.0, renderer=renderer)


@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_volume_behind_the_source_is_refused_issue10(renderer):
    # PA with the AP recipe's positive y puts the CT behind the source: refused with the fix, not rendered mirrored.
    drr = _pa_drr(renderer)
    rot = torch.zeros(1, 3)
    with pytest.raises(ValueError, match=r"behind the X-ray source.*pose 0.*camera \(x, y, z\) = \(0, 0, -300\).*"
                       r"orientation='PA'.*xyz = \(0, -850, 0\)"):  # fmt: skip
        drr(rot, torch.tensor([[0.0, 300.0, 0.0]]), **EULER)
    image = drr(rot, torch.tensor([[0.0, -300.0, 0.0]]), **EULER)
    assert image.shape == (1, 1, 9, 7) and image.max() > 0


def test_pa_view_has_the_ap_orientation():
    # Worked example of docs/pa_convention.md: PA from -y has the AP view's orientation (same projections).
    pa = _pa_drr()
    ap = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0)
    rot = torch.zeros(1, 3, dtype=torch.float64)
    points = torch.tensor([[[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]]], dtype=torch.float64)
    pa_pixels = pa.perspective_projection(convert(rot, torch.tensor([[0.0, -300.0, 0.0]]).double(), **EULER), points)
    ap_pixels = ap.perspective_projection(convert(rot, torch.tensor([[0.0, 300.0, 0.0]]).double(), **EULER), points)
    torch.testing.assert_close(pa_pixels, ap_pixels)


def test_volume_outside_the_field_of_view_is_refused_issue10():
    # A CT beside the viewing pyramid renders nothing: refused, naming the pose of the batch and the detector span.
    drr = DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0)
    xyz = torch.tensor([[0.0, 300.0, 0.0], [500.0, 300.0, 0.0]])
    with pytest.raises(ValueError, match=r"outside the detector's field of view: for pose 1 .*x in \[-7, 7\]"):
        drr(torch.zeros(2, 3), xyz, **EULER)


def test_trilinear_volume_beyond_the_detector_issue10():
    # Beyond the detector plane trilinear integrates nothing (refused); Siddon's whole lines still render (warned).
    rot, xyz = torch.zeros(1, 3), torch.tensor([[0.0, 300.0, 0.0]])
    with pytest.raises(ValueError, match="beyond the detector plane"):
        DRR(_subject(), sdd=200.0, height=9, width=7, delx=2.0, renderer="trilinear")(rot, xyz, **EULER)
    with pytest.warns(UserWarning, match="beyond the detector plane"):
        DRR(_subject(), sdd=200.0, height=9, width=7, delx=2.0)(rot, xyz, **EULER)


def test_source_inside_the_volume_warns_for_siddon_issue10():
    # A source inside the CT's box: Siddon adds the part behind it mirrored (warned); trilinear is silent.
    rot, xyz = torch.zeros(1, 3), torch.tensor([[0.0, 5.0, 0.0]])
    with pytest.warns(UserWarning, match="behind the X-ray source.*renderer='trilinear'"):
        DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0)(rot, xyz, **EULER)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DRR(_subject(), sdd=400.0, height=9, width=7, delx=2.0, renderer="trilinear")(rot, xyz, **EULER)


def test_non_rigid_pose_matrix_is_refused_issue10():
    # A "matrix" scaled by 2, or a zero quaternion, is not a camera pose: refused, not used as is.
    drr = DRR(_subject(), sdd=400.0, height=4, delx=2.0)
    matrix = convert(*_pose(2), **EULER).matrix.clone()
    matrix[1, :3, :3] *= 2.0
    with pytest.raises(ValueError, match="matrix at batch index 1 is not a rigid transform"):
        drr(matrix)
    with pytest.raises(ValueError, match="quaternion at batch index 0 is degenerate: its norm is 0"):
        drr(torch.zeros(1, 4), torch.zeros(1, 3), parameterization="quaternion")


def test_detector_too_large_for_memory_is_refused_issue10():
    # A 10^6 x 10^6 detector needs ~100 TiB: refused up front, naming height x width and the batch.
    huge = DRR(_subject(), sdd=400.0, height=10**6, delx=2.0)
    with pytest.raises(ValueError, match=r"batch of 2 pose\(s\) with a 1000000 x 1000000 \(height x width\) detector"
                       r".* needs at least .*TiB"):  # fmt: skip
        huge(*_pose(2), **EULER)
    with pytest.raises(ValueError, match="p_subsample=1e-09 of a 1000000 x 1000000"):  # drawn once, as DiffDRR
        DRR(_subject(), sdd=400.0, height=10**6, delx=2.0, p_subsample=1e-9)


@pytest.mark.parametrize(
    ("alpha_bounds", "error", "match"),
    [
        (torch.tensor([0.9, 0.2], dtype=torch.float64), ValueError, r"alpha_min <= alpha_max, got \[0.9, 0.2\]"),
        (torch.tensor([0.2, math.nan], dtype=torch.float64), ValueError, "alpha_bounds must be finite"),
        (torch.tensor([0.2, 0.5, 0.9]), ValueError, r"alpha_bounds must be \(2\), got \(3,\)"),
        ([0.2, 0.9], TypeError, "alpha_bounds must be a torch.Tensor, got list"),
        (torch.tensor([0, 1]), TypeError, "alpha_bounds must be a floating-point tensor"),
    ],
)
def test_alpha_bounds_are_checked_issue10(alpha_bounds: object, error: type[Exception], match: str) -> None:
    # Reversed bounds rendered negative images, NaN ones NaN images, a list an AttributeError (found by tests/fuzz).
    drr = DRR(_subject(with_mask=False), sdd=400.0, height=4, delx=8.0, renderer="trilinear")
    with pytest.raises(error, match=match):
        drr(*_pose(1), **EULER, alpha_bounds=alpha_bounds)
    assert torch.isfinite(drr(*_pose(1), **EULER, alpha_bounds=torch.tensor([0.0, 1.0]))).all()


def test_n_points_beyond_memory_is_refused_up_front_issue10() -> None:
    # n_points=10**11 failed in the allocator (RuntimeError): a trilinear ray holds its samples whatever the chunking.
    drr = DRR(_subject(with_mask=False), sdd=400.0, height=2, delx=8.0, renderer="trilinear")
    with pytest.raises(ValueError, match=r"n_points=100000000000 samples per ray needs at least"):
        drr(*_pose(1), **EULER, n_points=10**11)


@pytest.mark.parametrize(
    ("where", "flag"), [("reshape", "False"), ("reverse_x_axis", "no"), ("mask_to_channels", 1), ("degrees", "True")]
)
def test_flags_must_be_bools_issue10(where: str, flag: object) -> None:
    # A flag given as a string or a number was read by its truthiness ("False" is True).
    with pytest.raises(ValueError, match=f"{where} must be True or False"):
        if where in ("reshape", "reverse_x_axis"):
            DRR(_subject(), sdd=400.0, height=4, delx=8.0, **{where: flag})
        else:
            DRR(_subject(), sdd=400.0, height=4, delx=8.0)(*_pose(1), **EULER, **{where: flag})


def test_a_pose_that_is_neither_a_pose_nor_parameters_issue10() -> None:
    # drr([[...]]) asked for a parameterization, and degrees=True with a pose matrix was silently ignored.
    drr = DRR(_subject(), sdd=400.0, height=4, delx=8.0)
    pose = convert(*_pose(1), **EULER)
    with pytest.raises(TypeError, match="pose must be a RigidTransform or a .* tensor, got list"):
        drr(pose.matrix.tolist())
    with pytest.raises(ValueError, match="degrees=True only applies to euler_angles"):
        drr(pose, degrees=True)
