"""Tests for drreg.geometry.so3: the SO(3) exponential and logarithm against torch.linalg.matrix_exp and scipy."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.spatial.transform import Rotation

from drreg.geometry.so3 import (
    SMALL_ANGLE_SQUARED,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    rotation_geodesic_distance,
    skew,
    so3_coefficients,
)
from tests._tolerances import ATOL
from tests.geometry._random import randn, random_pose

ANGLES = [0.0, 1e-12, 1e-8, 1e-4, 0.0999, 0.1001, 1.0, 3.0, math.pi - 1e-6, math.pi]


@pytest.mark.parametrize("angle", ANGLES)
def test_axis_angle_matches_matrix_exp(angle: float, device: torch.device) -> None:
    axis = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, device=device)
    axis_angle = axis / axis.norm() * angle
    expected = torch.linalg.matrix_exp(skew(axis_angle))
    torch.testing.assert_close(axis_angle_to_matrix(axis_angle), expected, atol=1e-15, rtol=0)


@pytest.mark.parametrize("angle", ANGLES[:-1])
def test_axis_angle_log_accuracy(angle: float, device: torch.device) -> None:
    axis = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, device=device)
    axis_angle = axis / axis.norm() * angle
    # Relative accuracy at tiny angles, absolute near pi.
    torch.testing.assert_close(
        matrix_to_axis_angle(axis_angle_to_matrix(axis_angle)), axis_angle, atol=1e-14, rtol=1e-13
    )


def test_axis_angle_log_at_pi(device: torch.device) -> None:
    axis_angle = torch.tensor([0.0, math.pi, 0.0], dtype=torch.float64, device=device)
    log = matrix_to_axis_angle(axis_angle_to_matrix(axis_angle))
    # At exactly pi both +axis and -axis are valid.
    torch.testing.assert_close(log.abs(), axis_angle.abs(), atol=1e-15, rtol=0)


def test_axis_angle_matches_scipy(device: torch.device, dtype: torch.dtype) -> None:
    rotvec = randn(32, 3, dtype=torch.float64, device=torch.device("cpu"), seed=4)
    expected = torch.as_tensor(Rotation.from_rotvec(rotvec.numpy()).as_matrix(), dtype=dtype, device=device)
    torch.testing.assert_close(
        axis_angle_to_matrix(rotvec.to(dtype=dtype, device=device)), expected, atol=ATOL[dtype], rtol=0
    )
    log = torch.as_tensor(Rotation.from_matrix(expected.double().cpu().numpy()).as_rotvec(), dtype=dtype, device=device)
    torch.testing.assert_close(matrix_to_axis_angle(expected), log, atol=10 * ATOL[dtype], rtol=0)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 0.0999, 0.1001, 1.0, math.pi - 1e-3])
def test_gradcheck_axis_angle_to_matrix(angle: float, device: torch.device) -> None:
    axis = torch.tensor([[0.6, -0.8, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64, device=device)
    axis_angle = (axis * angle).requires_grad_()
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (axis_angle,))


def test_axis_angle_gradient_at_identity_is_skew(device: torch.device) -> None:
    # d exp(K(w)) / d w_i at w = 0 is the generator K(e_i).
    zero = torch.zeros(3, dtype=torch.float64, device=device)
    jacobian = torch.autograd.functional.jacobian(axis_angle_to_matrix, zero)  # (3, 3, 3): R index, then w index
    expected = skew(torch.eye(3, dtype=torch.float64, device=device)).permute(1, 2, 0)
    torch.testing.assert_close(jacobian, expected, atol=1e-15, rtol=0)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 0.5, math.pi - 1e-3])
def test_gradcheck_matrix_to_axis_angle(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    matrix = axis_angle_to_matrix(axis * angle).detach().requires_grad_()
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (matrix,))


def test_skew_is_the_cross_product(device: torch.device) -> None:
    vector, other = randn(2, 5, 3, dtype=torch.float64, device=device, seed=20).unbind(0)
    expected = torch.linalg.cross(vector, other, dim=-1)
    torch.testing.assert_close((skew(vector) @ other[..., None])[..., 0], expected, atol=1e-15, rtol=0)
    assert skew(vector).shape == (5, 3, 3)


@pytest.mark.parametrize("side", [-1.0, 1.0], ids=["taylor", "closed_form"])
def test_so3_coefficients_at_the_branch_switch(side: float) -> None:
    # Both branches give sin(t) / t and (1 - cos t) / t^2 to float64 accuracy where they meet.
    theta_squared = torch.tensor(SMALL_ANGLE_SQUARED * (1.0 + side * 1e-9), dtype=torch.float64)
    theta = float(theta_squared.sqrt())
    sin_over_theta, one_minus_cos = so3_coefficients(theta_squared)
    assert float(sin_over_theta) == pytest.approx(math.sin(theta) / theta, rel=1e-15, abs=0)
    assert float(one_minus_cos) == pytest.approx(2.0 * math.sin(theta / 2) ** 2 / theta**2, rel=1e-14, abs=0)


@pytest.mark.parametrize(("value", "precision"), [(1e20, torch.float32), (1e200, torch.float64)])
def test_huge_rotation_vector_is_refused_issue10(value: float, precision: torch.dtype) -> None:
    # An angle whose square overflows the dtype gave a NaN rotation; it determines none, so it is refused by name.
    with pytest.raises(ValueError, match=r"axis_angle at batch index 1 is degenerate: its angle is too large"):
        axis_angle_to_matrix(torch.tensor([[0.1, 0.2, 0.3], [value, 0.0, 0.0]], dtype=precision))


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
    rotations = random_pose(5, torch.float64, device).rotation
    assert rotation_geodesic_distance(rotations, rotations[:1]).shape == (5,)
