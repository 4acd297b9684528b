"""Tests for drreg.geometry.rotations: oracles are scipy, torch.linalg.matrix_exp and round trips."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from drreg.geometry.rotations import (
    EULER_CONVENTIONS,
    ROTATION_PARAMETERIZATIONS,
    _skew,
    axis_angle_to_matrix,
    euler_angles_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler_angles,
    matrix_to_quaternion,
    matrix_to_quaternion_adjugate,
    matrix_to_rotation_6d,
    matrix_to_rotation_9d,
    matrix_to_rotation_10d,
    quaternion_adjugate_to_matrix,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
    rotation_9d_to_matrix,
    rotation_10d_to_matrix,
)
from tests._tolerances import ATOL

# name -> (parameters to matrix, matrix to parameters, number of parameters)
Pair = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor], int]
PAIRS: dict[str, Pair] = {
    "axis_angle": (axis_angle_to_matrix, matrix_to_axis_angle, 3),
    "quaternion": (quaternion_to_matrix, matrix_to_quaternion, 4),
    "quaternion_adjugate": (quaternion_adjugate_to_matrix, matrix_to_quaternion_adjugate, 10),
    "rotation_6d": (rotation_6d_to_matrix, matrix_to_rotation_6d, 6),
    "rotation_9d": (rotation_9d_to_matrix, matrix_to_rotation_9d, 9),
    "rotation_10d": (rotation_10d_to_matrix, matrix_to_rotation_10d, 10),
}
for _convention in EULER_CONVENTIONS:
    PAIRS[f"euler_angles:{_convention}"] = (
        partial(euler_angles_to_matrix, convention=_convention),
        partial(matrix_to_euler_angles, convention=_convention),
        3,
    )
TAIT_BRYAN = [c for c in EULER_CONVENTIONS if c[0] != c[2]]
PROPER = [c for c in EULER_CONVENTIONS if c[0] == c[2]]


def _random_rotations(n: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> torch.Tensor:
    """(n, 3, 3) uniformly random rotations drawn by scipy (an independent oracle)."""
    return torch.as_tensor(Rotation.random(n, random_state=seed).as_matrix(), dtype=dtype, device=device)


def _randn(*shape: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)


def _assert_rotation(matrix: torch.Tensor, atol: float) -> None:
    identity = torch.eye(3, dtype=matrix.dtype, device=matrix.device).expand_as(matrix)
    torch.testing.assert_close(matrix.mT @ matrix, identity, atol=atol, rtol=0)
    torch.testing.assert_close(torch.linalg.det(matrix), torch.ones_like(matrix[..., 0, 0]), atol=atol, rtol=0)


# ------------------------------------------------------------------------------------------ constants


def test_constants() -> None:
    assert len(EULER_CONVENTIONS) == len(set(EULER_CONVENTIONS)) == 12
    assert set(EULER_CONVENTIONS) == {a + b + c for a in "XYZ" for b in "XYZ" for c in "XYZ" if a != b and b != c}
    assert set(ROTATION_PARAMETERIZATIONS) == {name.split(":")[0] for name in PAIRS} | {"matrix"}


# ---------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", list(PAIRS))
def test_matrix_round_trip(name: str, device: torch.device, dtype: torch.dtype) -> None:
    to_matrix, from_matrix, _ = PAIRS[name]
    rotations = _random_rotations(64, dtype, device)
    torch.testing.assert_close(to_matrix(from_matrix(rotations)), rotations, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("name", list(PAIRS))
def test_parameter_round_trip(name: str, device: torch.device, dtype: torch.dtype) -> None:
    to_matrix, from_matrix, size = PAIRS[name]
    parameters = _randn(64, size, dtype=dtype, device=device, seed=1)
    matrix = to_matrix(parameters)
    _assert_rotation(matrix, atol=ATOL[dtype])
    torch.testing.assert_close(to_matrix(from_matrix(matrix)), matrix, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("batch_shape", [(), (0,), (2, 5)], ids=["unbatched", "empty", "2x5"])
def test_batch_shapes(name: str, batch_shape: tuple[int, ...], device: torch.device) -> None:
    to_matrix, from_matrix, size = PAIRS[name]
    parameters = _randn(*batch_shape, size, dtype=torch.float64, device=device)
    matrix = to_matrix(parameters)
    assert matrix.shape == (*batch_shape, 3, 3)
    assert from_matrix(matrix).shape == (*batch_shape, size)


@pytest.mark.parametrize("name", list(PAIRS))
def test_gradcheck_to_matrix(name: str, device: torch.device) -> None:
    to_matrix, _, size = PAIRS[name]
    parameters = _randn(3, size, dtype=torch.float64, device=device, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(to_matrix, (parameters,))


@pytest.mark.parametrize("name", list(PAIRS))
def test_gradcheck_from_matrix(name: str, device: torch.device) -> None:
    _, from_matrix, _ = PAIRS[name]
    matrix = _random_rotations(3, torch.float64, device, seed=3).requires_grad_()
    assert torch.autograd.gradcheck(from_matrix, (matrix,))


# ----------------------------------------------------------------------------------------- axis-angle

ANGLES = [0.0, 1e-12, 1e-8, 1e-4, 0.0999, 0.1001, 1.0, 3.0, math.pi - 1e-6, math.pi]


@pytest.mark.parametrize("angle", ANGLES)
def test_axis_angle_matches_matrix_exp(angle: float, device: torch.device) -> None:
    axis = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, device=device)
    axis_angle = axis / axis.norm() * angle
    expected = torch.linalg.matrix_exp(_skew(axis_angle))
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
    rotvec = _randn(32, 3, dtype=torch.float64, device=torch.device("cpu"), seed=4)
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
    expected = _skew(torch.eye(3, dtype=torch.float64, device=device)).permute(1, 2, 0)
    torch.testing.assert_close(jacobian, expected, atol=1e-15, rtol=0)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 0.5, math.pi - 1e-3])
def test_gradcheck_matrix_to_axis_angle(angle: float, device: torch.device) -> None:
    axis = torch.tensor([0.48, 0.6, 0.64], dtype=torch.float64, device=device)
    matrix = axis_angle_to_matrix(axis * angle).detach().requires_grad_()
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (matrix,))


# -------------------------------------------------------------------------------------- Euler angles


@pytest.mark.parametrize("convention", EULER_CONVENTIONS)
def test_euler_matches_scipy(convention: str, device: torch.device, dtype: torch.dtype) -> None:
    # scipy's uppercase sequence is intrinsic: R = R_a @ R_b @ R_c, the same as PyTorch3D's.
    angles = _randn(32, 3, dtype=torch.float64, device=torch.device("cpu"), seed=5)
    expected = torch.as_tensor(Rotation.from_euler(convention, angles.numpy()).as_matrix(), dtype=dtype, device=device)
    matrix = euler_angles_to_matrix(angles.to(dtype=dtype, device=device), convention)
    torch.testing.assert_close(matrix, expected, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("convention", EULER_CONVENTIONS)
def test_matrix_to_euler_matches_scipy(convention: str, device: torch.device) -> None:
    matrix = _random_rotations(64, torch.float64, device, seed=6)
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


# ---------------------------------------------------------------------------------------- quaternions


def test_quaternion_matches_scipy(device: torch.device, dtype: torch.dtype) -> None:
    wxyz = 3.0 * _randn(32, 4, dtype=torch.float64, device=torch.device("cpu"), seed=8)  # not unit
    xyzw = wxyz[:, [1, 2, 3, 0]].numpy()
    expected = torch.as_tensor(Rotation.from_quat(xyzw).as_matrix(), dtype=dtype, device=device)
    torch.testing.assert_close(
        quaternion_to_matrix(wxyz.to(dtype=dtype, device=device)), expected, atol=ATOL[dtype], rtol=0
    )


def test_matrix_to_quaternion_is_unit_with_nonnegative_w(device: torch.device, dtype: torch.dtype) -> None:
    matrix = _random_rotations(256, dtype, device, seed=9)
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


def test_quaternion_adjugate_packing(device: torch.device) -> None:
    q = torch.tensor([0.5, 0.5, -0.5, 0.5], dtype=torch.float64, device=device)
    rows, cols = torch.triu_indices(4, 4)
    expected = torch.outer(q, q)[rows, cols]
    packed = matrix_to_quaternion_adjugate(quaternion_to_matrix(q))
    torch.testing.assert_close(packed, expected, atol=1e-15, rtol=0)
    # Any positive multiple of q q^T (and a row other than the first being largest) gives q back.
    torch.testing.assert_close(quaternion_adjugate_to_matrix(7.0 * packed), quaternion_to_matrix(q), atol=1e-15, rtol=0)


def test_rotation_10d_smallest_eigenvector(device: torch.device) -> None:
    matrix = _random_rotations(8, torch.float64, device, seed=10)
    packed = matrix_to_rotation_10d(matrix)
    rows, cols = torch.triu_indices(4, 4)
    symmetric = torch.zeros(8, 4, 4, dtype=torch.float64, device=device)
    symmetric[:, rows, cols] = packed
    symmetric[:, cols, rows] = packed
    eigenvalues, eigenvectors = torch.linalg.eigh(symmetric)
    torch.testing.assert_close(
        eigenvalues, torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64, device=device).expand(8, 4)
    )
    q = matrix_to_quaternion(matrix)
    torch.testing.assert_close(
        (eigenvectors[:, :, 0] * q).sum(-1).abs(), torch.ones(8, dtype=torch.float64, device=device)
    )


# ----------------------------------------------------------------------------------- 6D and 9D layouts


def test_rotation_6d_vectors_are_rows(device: torch.device) -> None:
    matrix = _random_rotations(4, torch.float64, device, seed=11)
    rows = torch.cat((2.0 * matrix[:, 0], matrix[:, 1] + 0.3 * matrix[:, 0]), -1)  # scaled and skewed
    torch.testing.assert_close(rotation_6d_to_matrix(rows), matrix, atol=1e-15, rtol=0)
    torch.testing.assert_close(matrix_to_rotation_6d(matrix), matrix[:, :2].flatten(1))


def test_rotation_9d_is_polar_factor(device: torch.device) -> None:
    # For M = R @ S with S symmetric positive definite, the closest rotation is R.
    matrix = _random_rotations(4, torch.float64, device, seed=12)
    a = _randn(4, 3, 3, dtype=torch.float64, device=device, seed=13)
    spd = a @ a.mT + 0.5 * torch.eye(3, dtype=torch.float64, device=device)
    torch.testing.assert_close(rotation_9d_to_matrix((matrix @ spd).flatten(1)), matrix, atol=1e-13, rtol=0)


def test_rotation_9d_fixes_reflections(device: torch.device) -> None:
    reflection = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64, device=device)) @ torch.diag(
        torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64, device=device)
    )
    matrix = rotation_9d_to_matrix(reflection.flatten())
    assert torch.linalg.det(matrix) > 0
    _assert_rotation(matrix, atol=1e-15)


# --------------------------------------------------------------------------------------------- errors

ROTATION_FUNCTIONS = {
    "axis_angle_to_matrix": (axis_angle_to_matrix, "axis_angle", r"\(\*, 3\)"),
    "quaternion_to_matrix": (quaternion_to_matrix, "quaternion", r"\(\*, 4\)"),
    "quaternion_adjugate_to_matrix": (quaternion_adjugate_to_matrix, "quaternion_adjugate", r"\(\*, 10\)"),
    "rotation_6d_to_matrix": (rotation_6d_to_matrix, "rotation_6d", r"\(\*, 6\)"),
    "rotation_9d_to_matrix": (rotation_9d_to_matrix, "rotation_9d", r"\(\*, 9\)"),
    "rotation_10d_to_matrix": (rotation_10d_to_matrix, "rotation_10d", r"\(\*, 10\)"),
    "euler_angles_to_matrix": (partial(euler_angles_to_matrix, convention="ZXY"), "euler_angles", r"\(\*, 3\)"),
    "matrix_to_axis_angle": (matrix_to_axis_angle, "matrix", r"\(\*, 3, 3\)"),
    "matrix_to_quaternion": (matrix_to_quaternion, "matrix", r"\(\*, 3, 3\)"),
    "matrix_to_quaternion_adjugate": (matrix_to_quaternion_adjugate, "matrix", r"\(\*, 3, 3\)"),
    "matrix_to_rotation_6d": (matrix_to_rotation_6d, "matrix", r"\(\*, 3, 3\)"),
    "matrix_to_rotation_9d": (matrix_to_rotation_9d, "matrix", r"\(\*, 3, 3\)"),
    "matrix_to_rotation_10d": (matrix_to_rotation_10d, "matrix", r"\(\*, 3, 3\)"),
    "matrix_to_euler_angles": (partial(matrix_to_euler_angles, convention="ZXY"), "matrix", r"\(\*, 3, 3\)"),
}


@pytest.mark.parametrize("name", list(ROTATION_FUNCTIONS))
def test_wrong_shape_raises(name: str) -> None:
    function, argument, expected = ROTATION_FUNCTIONS[name]
    with pytest.raises(ValueError, match=rf"{argument} must be {expected}, got \(2, 5\)"):
        function(torch.zeros(2, 5))


@pytest.mark.parametrize("convention", ["XXY", "zxy", "XYZX", None])
def test_unknown_euler_convention_raises(convention: object) -> None:
    with pytest.raises(ValueError, match="unknown Euler convention.*'XYZ'.*'ZYZ'"):
        euler_angles_to_matrix(torch.zeros(3), convention)  # type: ignore[arg-type]


def test_unknown_euler_convention_raises_from_matrix() -> None:
    with pytest.raises(ValueError, match="unknown Euler convention 'xyz'"):
        matrix_to_euler_angles(torch.eye(3), "xyz")


def test_non_tensor_raises() -> None:
    with pytest.raises(TypeError, match="axis_angle must be a torch.Tensor, got ndarray"):
        axis_angle_to_matrix(np.zeros(3))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ compiled == eager

COMPILED = ["axis_angle", "quaternion", "quaternion_adjugate", "rotation_6d", "rotation_9d", "rotation_10d"]


@pytest.mark.parametrize("name", [*COMPILED, "euler_angles:ZXY", "euler_angles:ZYZ"])
@pytest.mark.parametrize("direction", ["to_matrix", "from_matrix"])
def test_compiled_matches_eager(name: str, direction: str, device: torch.device) -> None:
    # aot_eager traces the whole graph (fullgraph: no breaks) without the slow C++ codegen of inductor.
    to_matrix, from_matrix, size = PAIRS[name]
    function = to_matrix if direction == "to_matrix" else from_matrix
    matrix = _random_rotations(4, torch.float64, device, seed=14)
    inputs = _randn(4, size, dtype=torch.float64, device=device, seed=15) if direction == "to_matrix" else matrix
    compiled = torch.compile(function, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(inputs), function(inputs), atol=1e-15, rtol=0)
