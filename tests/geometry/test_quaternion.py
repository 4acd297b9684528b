"""Tests for drreg.geometry.quaternion: scipy as the oracle, the w >= 0 sign and half turns."""

from __future__ import annotations

import pytest
import torch
from scipy.spatial.transform import Rotation

from drreg.geometry.quaternion import matrix_to_quaternion, quaternion_to_matrix
from tests._tolerances import ATOL
from tests.geometry._random import randn, random_rotations


def test_quaternion_matches_scipy(device: torch.device, dtype: torch.dtype) -> None:
    wxyz = 3.0 * randn(32, 4, dtype=torch.float64, device=torch.device("cpu"), seed=8)  # not unit
    xyzw = wxyz[:, [1, 2, 3, 0]].numpy()
    expected = torch.as_tensor(Rotation.from_quat(xyzw).as_matrix(), dtype=dtype, device=device)
    torch.testing.assert_close(
        quaternion_to_matrix(wxyz.to(dtype=dtype, device=device)), expected, atol=ATOL[dtype], rtol=0
    )


def test_matrix_to_quaternion_is_unit_with_nonnegative_w(device: torch.device, dtype: torch.dtype) -> None:
    matrix = random_rotations(256, dtype, device, seed=9)
    quaternion = matrix_to_quaternion(matrix)
    assert (quaternion[:, 0] >= 0).all()
    torch.testing.assert_close(quaternion.norm(dim=-1), torch.ones_like(quaternion[:, 0]), atol=ATOL[dtype], rtol=0)
    xyzw = Rotation.from_matrix(matrix.double().cpu().numpy()).as_quat(canonical=True)
    expected = torch.as_tensor(xyzw[:, [3, 0, 1, 2]], dtype=dtype, device=device)
    torch.testing.assert_close(quaternion, expected, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize(
    "quaternion",
    [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1e-9, 0.6, 0.0, 0.8]],
    ids=["pi_x", "pi_y", "pi_z", "near_pi"],
)
def test_matrix_to_quaternion_half_turns(quaternion: list[float], device: torch.device) -> None:
    q = torch.tensor(quaternion, dtype=torch.float64, device=device)
    q = q / q.norm()
    recovered = matrix_to_quaternion(quaternion_to_matrix(q))
    torch.testing.assert_close(recovered, q, atol=1e-15, rtol=0)


@pytest.mark.parametrize("scale", [1e-25, 1e20, 1e30])
def test_quaternion_scale_does_not_overflow_issue10(scale: float) -> None:
    # |q|^2 of a float32 quaternion of 1e20 overflowed (NaN matrix) and of 1e-25 underflowed (refused as zero).
    quaternion = torch.tensor([[0.5, -0.1, 0.7, 0.2]])
    torch.testing.assert_close(quaternion_to_matrix(quaternion * scale), quaternion_to_matrix(quaternion))
