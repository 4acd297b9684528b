"""Tests for drreg.geometry.se3: the exponential map against torch.linalg.matrix_exp, the log as its inverse."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from drreg.geometry.se3 import homogeneous, se3_exp_map, se3_log_map
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
    torch.testing.assert_close(se3_exp_map(log), torch.linalg.matrix_exp(_twist_matrix(log)), atol=1e-14, rtol=1e-14)


@pytest.mark.parametrize("angle", SE3_ANGLES)
def test_se3_log_inverts_exp(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    log = torch.cat((torch.tensor([30.0, -20.0, 10.0], dtype=torch.float64, device=device), axis * angle))
    torch.testing.assert_close(se3_log_map(se3_exp_map(log)), log, atol=1e-12, rtol=1e-12)


def test_se3_round_trip_random(device: torch.device, dtype: torch.dtype) -> None:
    pose = random_pose(32, dtype, device, seed=10)
    torch.testing.assert_close(se3_exp_map(se3_log_map(pose.matrix)), pose.matrix, atol=100 * ATOL[dtype], rtol=0)


def test_se3_batch_shapes(device: torch.device) -> None:
    log = randn(2, 5, 6, dtype=torch.float64, device=device)
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


@pytest.mark.parametrize(
    ("function", "match"), [(se3_exp_map, r"log must be \(\*, 6\)"), (se3_log_map, r"matrix must be \(\*, 4, 4\)")]
)
def test_se3_rejects_bad_shape(function: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        function(torch.zeros(2, 5))


@pytest.mark.parametrize("function", [se3_exp_map, se3_log_map], ids=["exp", "log"])
def test_se3_compiled_matches_eager(function: Any, device: torch.device) -> None:
    inputs = (
        random_pose(4, torch.float64, device).matrix
        if function is se3_log_map
        else randn(4, 6, dtype=torch.float64, device=device)
    )
    compiled = torch.compile(function, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(inputs), function(inputs), atol=1e-15, rtol=0)


def test_huge_twist_angle_is_refused_issue10() -> None:
    # An angle |ω| whose square overflows float32 gave a NaN pose; it is refused, naming the map.
    with pytest.raises(ValueError, match="se3_log_map is degenerate: its angle is too large"):
        se3_exp_map(torch.tensor([1.0, 2.0, 3.0, 1e20, 0.0, 0.0]))
