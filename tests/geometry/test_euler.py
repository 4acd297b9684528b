"""Tests for drreg.geometry.euler: the 12 conventions against scipy, angle ranges and gimbal lock."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.spatial.transform import Rotation

from drreg.geometry.euler import EULER_CONVENTIONS, euler_angles_to_matrix, matrix_to_euler_angles
from tests._tolerances import ATOL
from tests.geometry._random import randn, random_rotations

TAIT_BRYAN = [c for c in EULER_CONVENTIONS if c[0] != c[2]]
PROPER = [c for c in EULER_CONVENTIONS if c[0] == c[2]]


def test_conventions() -> None:
    assert len(EULER_CONVENTIONS) == len(set(EULER_CONVENTIONS)) == 12
    assert set(EULER_CONVENTIONS) == {a + b + c for a in "XYZ" for b in "XYZ" for c in "XYZ" if a != b and b != c}


@pytest.mark.parametrize("convention", EULER_CONVENTIONS)
def test_euler_matches_scipy(convention: str, device: torch.device, dtype: torch.dtype) -> None:
    # scipy's uppercase sequence is intrinsic: R = R_a @ R_b @ R_c, the same as PyTorch3D's.
    angles = randn(32, 3, dtype=torch.float64, device=torch.device("cpu"), seed=5)
    expected = torch.as_tensor(Rotation.from_euler(convention, angles.numpy()).as_matrix(), dtype=dtype, device=device)
    matrix = euler_angles_to_matrix(angles.to(dtype=dtype, device=device), convention)
    torch.testing.assert_close(matrix, expected, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("convention", EULER_CONVENTIONS)
def test_matrix_to_euler_matches_scipy(convention: str, device: torch.device) -> None:
    matrix = random_rotations(64, torch.float64, device, seed=6)
    expected = torch.as_tensor(Rotation.from_matrix(matrix.cpu().numpy()).as_euler(convention), device=device)
    angles = matrix_to_euler_angles(matrix, convention)
    difference = torch.remainder(angles - expected + math.pi, 2 * math.pi) - math.pi
    torch.testing.assert_close(difference, torch.zeros_like(difference), atol=1e-12, rtol=0)


@pytest.mark.parametrize("convention", EULER_CONVENTIONS)
def test_euler_angle_ranges_round_trip(convention: str, device: torch.device) -> None:
    generator = torch.Generator().manual_seed(7)
    unit = torch.rand(64, 3, generator=generator, dtype=torch.float64)
    low, high = (-math.pi / 2, math.pi / 2) if convention[0] != convention[2] else (0.0, math.pi)
    angles = torch.stack(
        (
            (2 * unit[:, 0] - 1) * 0.999 * math.pi,
            low + (high - low) * (0.001 + 0.998 * unit[:, 1]),
            (2 * unit[:, 2] - 1) * 0.999 * math.pi,
        ),
        -1,
    ).to(device)
    recovered = matrix_to_euler_angles(euler_angles_to_matrix(angles, convention), convention)
    torch.testing.assert_close(recovered, angles, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("convention", "middle"),
    [(c, m) for c in TAIT_BRYAN for m in (math.pi / 2, -math.pi / 2)]
    + [(c, m) for c in PROPER for m in (0.0, math.pi)],
)
def test_euler_gimbal_lock(convention: str, middle: float, device: torch.device) -> None:
    angles = torch.tensor([0.3, middle, -0.2], dtype=torch.float64, device=device)
    matrix = euler_angles_to_matrix(angles, convention)
    recovered = matrix_to_euler_angles(matrix, convention)
    assert recovered[2].abs() < 1e-12  # the free angle goes to zero, as in scipy
    torch.testing.assert_close(euler_angles_to_matrix(recovered, convention), matrix, atol=1e-14, rtol=0)


def test_euler_composition_order(device: torch.device) -> None:
    # "ZXY" means R_Z(t0) @ R_X(t1) @ R_Y(t2).
    angles = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64, device=device)
    expected = (
        euler_angles_to_matrix(torch.stack((angles[0], angles.new_zeros(()), angles.new_zeros(()))), "ZXY")
        @ euler_angles_to_matrix(torch.stack((angles[1], angles.new_zeros(()), angles.new_zeros(()))), "XYZ")
        @ euler_angles_to_matrix(torch.stack((angles[2], angles.new_zeros(()), angles.new_zeros(()))), "YXZ")
    )
    torch.testing.assert_close(euler_angles_to_matrix(angles, "ZXY"), expected, atol=1e-15, rtol=0)


@pytest.mark.parametrize("convention", ["XXY", "zxy", "XYZX", None])
def test_unknown_euler_convention_raises(convention: object) -> None:
    with pytest.raises(ValueError, match="unknown Euler convention.*'XYZ'.*'ZYZ'"):
        euler_angles_to_matrix(torch.zeros(3), convention)  # type: ignore[arg-type]


def test_unknown_euler_convention_raises_from_matrix() -> None:
    with pytest.raises(ValueError, match="unknown Euler convention 'xyz'"):
        matrix_to_euler_angles(torch.eye(3), "xyz")
