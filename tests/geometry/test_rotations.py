"""Tests for drreg.geometry.rotations: every parameterization (round trips, batches, gradients, errors, compiled
== eager) and the dispatch by name; the 6D/9D/10D and adjugate layouts against their definitions."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
import torch

from drreg.geometry.rotations import (
    EULER_CONVENTIONS,
    ROTATION_PARAMETERIZATIONS,
    axis_angle_to_matrix,
    euler_angles_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler_angles,
    matrix_to_quaternion,
    matrix_to_quaternion_adjugate,
    matrix_to_rotation,
    matrix_to_rotation_6d,
    matrix_to_rotation_9d,
    matrix_to_rotation_10d,
    quaternion_adjugate_to_matrix,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
    rotation_9d_to_matrix,
    rotation_10d_to_matrix,
    rotation_to_matrix,
)
from tests._tolerances import ATOL
from tests.geometry._random import assert_rotation, randn, random_rotations

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


# ------------------------------------------------------------------------------------------ constants


def test_parameterization_names() -> None:
    assert set(ROTATION_PARAMETERIZATIONS) == {name.split(":")[0] for name in PAIRS} | {"matrix"}


# ---------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", list(PAIRS))
def test_matrix_round_trip(name: str, device: torch.device, dtype: torch.dtype) -> None:
    to_matrix, from_matrix, _ = PAIRS[name]
    rotations = random_rotations(64, dtype, device)
    torch.testing.assert_close(to_matrix(from_matrix(rotations)), rotations, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("name", list(PAIRS))
def test_parameter_round_trip(name: str, device: torch.device, dtype: torch.dtype) -> None:
    to_matrix, from_matrix, size = PAIRS[name]
    parameters = randn(64, size, dtype=dtype, device=device, seed=1)
    matrix = to_matrix(parameters)
    assert_rotation(matrix, atol=ATOL[dtype])
    torch.testing.assert_close(to_matrix(from_matrix(matrix)), matrix, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("batch_shape", [(), (0,), (2, 5)], ids=["unbatched", "empty", "2x5"])
def test_batch_shapes(name: str, batch_shape: tuple[int, ...], device: torch.device) -> None:
    to_matrix, from_matrix, size = PAIRS[name]
    parameters = randn(*batch_shape, size, dtype=torch.float64, device=device)
    matrix = to_matrix(parameters)
    assert matrix.shape == (*batch_shape, 3, 3)
    assert from_matrix(matrix).shape == (*batch_shape, size)


@pytest.mark.parametrize("name", list(PAIRS))
def test_gradcheck_to_matrix(name: str, device: torch.device) -> None:
    to_matrix, _, size = PAIRS[name]
    parameters = randn(3, size, dtype=torch.float64, device=device, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(to_matrix, (parameters,))


@pytest.mark.parametrize("name", list(PAIRS))
def test_gradcheck_from_matrix(name: str, device: torch.device) -> None:
    _, from_matrix, _ = PAIRS[name]
    matrix = random_rotations(3, torch.float64, device, seed=3).requires_grad_()
    assert torch.autograd.gradcheck(from_matrix, (matrix,))


# ----------------------------------------------------------------------------- adjugate and 10D layouts


def test_quaternion_adjugate_packing(device: torch.device) -> None:
    q = torch.tensor([0.5, 0.5, -0.5, 0.5], dtype=torch.float64, device=device)
    rows, cols = torch.triu_indices(4, 4)
    expected = torch.outer(q, q)[rows, cols]
    packed = matrix_to_quaternion_adjugate(quaternion_to_matrix(q))
    torch.testing.assert_close(packed, expected, atol=1e-15, rtol=0)
    # Any positive multiple of q q^T (and a row other than the first being largest) gives q back.
    torch.testing.assert_close(quaternion_adjugate_to_matrix(7.0 * packed), quaternion_to_matrix(q), atol=1e-15, rtol=0)


def test_rotation_10d_smallest_eigenvector(device: torch.device) -> None:
    matrix = random_rotations(8, torch.float64, device, seed=10)
    packed = matrix_to_rotation_10d(matrix)
    rows, cols = torch.triu_indices(4, 4)
    symmetric = torch.zeros(8, 4, 4, dtype=torch.float64, device=device)
    symmetric[:, rows, cols] = packed
    symmetric[:, cols, rows] = packed
    eigenvalues, eigenvectors = torch.linalg.eigh(symmetric)
    torch.testing.assert_close(
        eigenvalues, torch.tensor([-1.0, 0.0, 0.0, 0.0], dtype=torch.float64, device=device).expand(8, 4)
    )
    q = matrix_to_quaternion(matrix)
    torch.testing.assert_close(
        (eigenvectors[:, :, 0] * q).sum(-1).abs(), torch.ones(8, dtype=torch.float64, device=device)
    )


# ----------------------------------------------------------------------------------- 6D and 9D layouts


def test_rotation_6d_vectors_are_rows(device: torch.device) -> None:
    matrix = random_rotations(4, torch.float64, device, seed=11)
    rows = torch.cat((2.0 * matrix[:, 0], matrix[:, 1] + 0.3 * matrix[:, 0]), -1)  # scaled and skewed
    torch.testing.assert_close(rotation_6d_to_matrix(rows), matrix, atol=1e-15, rtol=0)
    torch.testing.assert_close(matrix_to_rotation_6d(matrix), matrix[:, :2].flatten(1))


def test_rotation_9d_is_polar_factor(device: torch.device) -> None:
    # For M = R @ S with S symmetric positive definite, the closest rotation is R.
    matrix = random_rotations(4, torch.float64, device, seed=12)
    a = randn(4, 3, 3, dtype=torch.float64, device=device, seed=13)
    spd = a @ a.mT + 0.5 * torch.eye(3, dtype=torch.float64, device=device)
    torch.testing.assert_close(rotation_9d_to_matrix((matrix @ spd).flatten(1)), matrix, atol=1e-13, rtol=0)


def test_rotation_9d_fixes_reflections(device: torch.device) -> None:
    reflection = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64, device=device)) @ torch.diag(
        torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64, device=device)
    )
    matrix = rotation_9d_to_matrix(reflection.flatten())
    assert torch.linalg.det(matrix) > 0
    assert_rotation(matrix, atol=1e-15)


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
    matrix = random_rotations(4, torch.float64, device, seed=14)
    inputs = randn(4, size, dtype=torch.float64, device=device, seed=15) if direction == "to_matrix" else matrix
    compiled = torch.compile(function, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(inputs), function(inputs), atol=1e-15, rtol=0)


# ------------------------------------------------------------------------------ degenerate parameters (issue 10)


def _outer(a: list[float], b: list[float]) -> list[float]:
    return torch.outer(torch.tensor(a), torch.tensor(b)).flatten().tolist()


DEGENERATE = {
    "zero quaternion": (quaternion_to_matrix, [0.0] * 4, "quaternion is degenerate: its norm is 0"),
    "zero adjugate": (quaternion_adjugate_to_matrix, [0.0] * 10, "quaternion_adjugate is degenerate: .* is zero"),
    "zero a1": (rotation_6d_to_matrix, [0.0, 0.0, 0.0, 0.0, 1.0, 0.0], "rotation_6d is degenerate: .*a1 is zero"),
    "zero a2": (rotation_6d_to_matrix, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0], "rotation_6d is degenerate: .*collinear"),
    "collinear": (rotation_6d_to_matrix, [1.0, 2.0, 3.0, -2.0, -4.0, -6.0], "rotation_6d is degenerate: .*collinear"),
    "nearly collinear": (rotation_6d_to_matrix, [1.0, 0.0, 0.0, 1.0, 1e-10, 0.0], "collinear"),
    "zero 9d": (rotation_9d_to_matrix, [0.0] * 9, "rotation_9d is degenerate: .*no unique nearest rotation"),
    "rank-1 9d": (rotation_9d_to_matrix, _outer([1.0, 2.0, 3.0], [0.0, 1.0, 1.0]), "no unique nearest rotation"),
    "ambiguous reflection": (rotation_9d_to_matrix, [1.0, 0, 0, 0, 1.0, 0, 0, 0, -1.0], "no unique nearest rotation"),
    "zero 10d": (rotation_10d_to_matrix, [0.0] * 10, "rotation_10d is degenerate: .*repeated"),
    "identity 10d": (rotation_10d_to_matrix, [1.0, 0, 0, 0, 1.0, 0, 0, 1.0, 0, 1.0], "smallest eigenvalue .* repeated"),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_parameters_are_refused_issue10(case: str, dtype: torch.dtype) -> None:
    # Parameters that determine no rotation raise, naming the parameterization and the problem (no silent identity).
    function, values, match = DEGENERATE[case]
    with pytest.raises(ValueError, match=match):
        function(torch.tensor(values, dtype=dtype))


def test_degenerate_parameter_names_the_batch_index_issue10() -> None:
    # In a batch, the first offending index is named, with its values.
    quaternions = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"quaternion at batch index 2 is degenerate.*got \[0.0, 0.0, 0.0, 0.0\]"):
        quaternion_to_matrix(quaternions)
    with pytest.raises(ValueError, match=r"rotation_6d at batch index \(1, 0\)"):
        rotation_6d_to_matrix(torch.tensor([[[1.0, 0, 0, 0, 1, 0]], [[1.0, 0, 0, 2, 0, 0]]]))


@pytest.mark.parametrize(
    ("function", "values"),
    [
        (quaternion_to_matrix, [1e-12, 1e-12, 0.0, 0.0]),  # tiny but nonzero: normalised as before
        (quaternion_to_matrix, [3.0, 0.0, 4.0, 0.0]),
        (rotation_6d_to_matrix, [1.0, 0.0, 0.0, 1.0, 1e-3, 0.0]),  # 1e-3 apart: well determined in float32
        (rotation_9d_to_matrix, [2.0, 0.0, 0.0, 0.0, 1e-2, 0.0, 0.0, 0.0, 0.0]),  # rank 2: a unique rotation
        (rotation_9d_to_matrix, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -0.5]),  # a reflection, s2 > s3
    ],
)
def test_unusual_but_determined_parameters_are_kept(function: Callable, values: list[float], dtype) -> None:
    # Non-unit, non-orthogonal but determined parameters still give a rotation (DiffDRR's semantics).
    matrix = function(torch.tensor(values, dtype=dtype))
    assert_rotation(matrix, atol=10 * ATOL[dtype])


# ------------------------------------------------------------------------------------------ dispatch


@pytest.mark.parametrize("name", list(PAIRS))
def test_dispatch_matches_the_pairs(name: str) -> None:
    # rotation_to_matrix / matrix_to_rotation by name are the parameterization's own functions.
    to_matrix, from_matrix, size = PAIRS[name]
    parameterization, _, convention = name.partition(":")
    parameters = randn(4, size, dtype=torch.float64, device=torch.device("cpu"), seed=16)
    matrix = random_rotations(4, torch.float64, torch.device("cpu"), seed=17)
    expected = to_matrix(parameters)
    torch.testing.assert_close(rotation_to_matrix(parameters, parameterization, convention or None), expected)
    torch.testing.assert_close(matrix_to_rotation(matrix, parameterization, convention or None), from_matrix(matrix))


def test_dispatch_matrix_is_unchanged() -> None:
    matrix = random_rotations(4, torch.float64, torch.device("cpu"), seed=18)
    assert rotation_to_matrix(matrix, "matrix") is matrix
    assert matrix_to_rotation(matrix, "matrix") is matrix


@pytest.mark.parametrize(
    ("parameterization", "convention", "match"),
    [
        ("se3_log_map", None, r"unknown parameterization 'se3_log_map'; expected one of: 'axis_angle'"),
        ("euler", None, "unknown parameterization 'euler'"),
        ("euler_angles", None, "euler_angles needs a convention"),
        ("euler_angles", "xyz", "unknown Euler convention 'xyz'"),
    ],
)
@pytest.mark.parametrize("function", [rotation_to_matrix, matrix_to_rotation], ids=["to_matrix", "from_matrix"])
def test_dispatch_refuses_unknown_names(
    function: Callable[..., torch.Tensor], parameterization: str, convention: str | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        function(torch.eye(3), parameterization, convention)


@pytest.mark.parametrize(
    ("function", "size"),
    [
        (quaternion_adjugate_to_matrix, 10),
        (rotation_6d_to_matrix, 6),
        (rotation_9d_to_matrix, 9),
        (rotation_10d_to_matrix, 10),
    ],
)
@pytest.mark.parametrize("scale", [1e20, 3e30])
def test_huge_parameters_do_not_overflow_issue10(
    function: Callable[..., torch.Tensor], size: int, scale: float
) -> None:
    # Squares and products of float32 parameters of 1e20 overflowed: a silent identity, a non-rotation or NaN.
    parameters = randn(2, size, dtype=torch.float64, device=torch.device("cpu"), seed=91)
    expected = function(parameters)
    torch.testing.assert_close(function((parameters * scale).float()), expected.float(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("function", "size"), [(rotation_9d_to_matrix, 9), (rotation_10d_to_matrix, 10)])
def test_half_precision_9d_and_10d_issue10(function: Callable[..., torch.Tensor], size: int, half: torch.dtype) -> None:
    # torch has no half-precision SVD or eigh (NotImplementedError); they are solved in float32, returned in half.
    parameters = randn(3, size, dtype=torch.float64, device=torch.device("cpu"), seed=92)
    rotation = function(parameters.to(half))
    assert rotation.dtype == half
    torch.testing.assert_close(rotation.double(), function(parameters.to(half).double()), atol=1e-2, rtol=0)
