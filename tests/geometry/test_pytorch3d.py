"""drreg's rotation and SE(3) functions against PyTorch3D's own (``pytorch3d.transforms``) and scipy's ``Rotation``.

Values and gradients, in float32 and float64, near the identity, at a generic angle and near pi. Gradients are taken
with respect to rotation vectors (or Euler angles, or twists) that the inputs are built from, i.e. along the rotation
manifold: off it (a scaled quaternion, a non-orthogonal matrix) the functions are free to differ.
Needs ``pip install "drreg[pytorch3d]"``; skipped otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import drreg.pose as ours
from drreg.geometry import EULER_CONVENTIONS, RigidTransform

p3d = pytest.importorskip("pytorch3d.transforms")
p3d_so3 = pytest.importorskip("pytorch3d.transforms.so3")  # hat and hat_inv are not re-exported by the package
p3d_math = pytest.importorskip("pytorch3d.transforms.math")

ANGLES = {"identity": 1e-3, "generic": 1.0, "near_pi": math.pi - 1e-3}
AXES = ((0.48, 0.6, 0.64), (-0.36, 0.48, 0.8), (0.0, -0.6, 0.8))
# (values, gradients) tolerances; near pi the float32 gradients of acos / atan2 lose digits.
TOLERANCE = {torch.float32: (2e-5, 2e-3), torch.float64: (1e-10, 1e-7)}


def _rotation_vectors(angle: float, dtype: torch.dtype) -> torch.Tensor:
    """(3, 3) rotation vectors of the given angle about three axes, float64-built then cast (a leaf)."""
    return (torch.tensor(AXES, dtype=torch.float64) * angle).to(dtype).requires_grad_()


def _euler(middle: float, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor([[0.3, middle, -0.4], [-2.0, middle, 1.1]], dtype=torch.float64).to(dtype).requires_grad_()


def _twists(angle: float, dtype: torch.dtype) -> torch.Tensor:
    rotation = torch.tensor(AXES, dtype=torch.float64) * angle
    translation = torch.tensor([[30.0, -20.0, 10.0], [1.0, 2.0, 3.0], [-5.0, 0.0, 7.0]], dtype=torch.float64)
    return torch.cat((translation, rotation), -1).to(dtype).requires_grad_()


def _matrix_exp_row_vector(twist: torch.Tensor) -> torch.Tensor:
    """(N, 4, 4) row-vector SE(3) matrices of (N, 6) twists ``[v, ω]`` by ``torch.linalg.matrix_exp``: an oracle
    independent of both libraries (PyTorch3D's float32 se3_exp_map loses digits near the identity)."""
    algebra = torch.zeros(len(twist), 4, 4, dtype=twist.dtype)
    algebra = algebra + torch.nn.functional.pad(p3d_so3.hat(twist[:, 3:]), (0, 1, 0, 1))
    algebra = algebra + torch.nn.functional.pad(twist[:, :3, None], (3, 0, 0, 1))
    return torch.linalg.matrix_exp(algebra).mT


def _point_cloud(dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor([[1.0, 2.0, 3.0], [-4.0, 0.5, 2.0], [0.0, 0.0, -1.0]], dtype=dtype)


# name -> (drreg function, PyTorch3D function, leaf builder (angle, dtype) -> leaf, leaf -> arguments)
Builder = Callable[[torch.Tensor], tuple[Any, ...]]
CASES: dict[
    str, tuple[Callable[..., Any], Callable[..., Any], Callable[[float, torch.dtype], torch.Tensor], Builder]
] = {
    "quaternion_to_matrix": (
        ours.quaternion_to_matrix,
        p3d.quaternion_to_matrix,
        _rotation_vectors,
        lambda v: (p3d.axis_angle_to_quaternion(v),),
    ),
    "matrix_to_quaternion": (
        ours.matrix_to_quaternion,
        p3d.matrix_to_quaternion,
        _rotation_vectors,
        lambda v: (p3d.axis_angle_to_matrix(v),),
    ),
    "axis_angle_to_matrix": (ours.axis_angle_to_matrix, p3d.axis_angle_to_matrix, _rotation_vectors, lambda v: (v,)),
    "matrix_to_axis_angle": (
        ours.matrix_to_axis_angle,
        p3d.matrix_to_axis_angle,
        _rotation_vectors,
        lambda v: (p3d.axis_angle_to_matrix(v),),
    ),
    "axis_angle_to_quaternion": (
        ours.axis_angle_to_quaternion,
        p3d.axis_angle_to_quaternion,
        _rotation_vectors,
        lambda v: (v,),
    ),
    "quaternion_to_axis_angle": (
        ours.quaternion_to_axis_angle,
        p3d.quaternion_to_axis_angle,
        _rotation_vectors,
        lambda v: (p3d.axis_angle_to_quaternion(v),),
    ),
    "rotation_6d_to_matrix": (
        ours.rotation_6d_to_matrix,
        p3d.rotation_6d_to_matrix,
        _rotation_vectors,
        lambda v: (p3d.matrix_to_rotation_6d(p3d.axis_angle_to_matrix(v)) * 2.0 + 0.1,),
    ),
    "matrix_to_rotation_6d": (
        ours.matrix_to_rotation_6d,
        p3d.matrix_to_rotation_6d,
        _rotation_vectors,
        lambda v: (p3d.axis_angle_to_matrix(v),),
    ),
    "so3_exp_map": (ours.so3_exp_map, p3d.so3_exp_map, _rotation_vectors, lambda v: (v,)),
    "so3_log_map": (ours.so3_log_map, p3d.so3_log_map, _rotation_vectors, lambda v: (p3d.so3_exp_map(v),)),
    "so3_rotation_angle": (
        ours.so3_rotation_angle,
        p3d.so3_rotation_angle,
        _rotation_vectors,
        lambda v: (p3d.so3_exp_map(v),),
    ),
    "so3_relative_angle": (
        ours.so3_relative_angle,
        p3d.so3_relative_angle,
        _rotation_vectors,
        lambda v: (p3d.so3_exp_map(v), p3d.so3_exp_map(0.3 * v.flip(0))),
    ),
    "hat": (ours.hat, p3d_so3.hat, _rotation_vectors, lambda v: (v,)),
    "hat_inv": (ours.hat_inv, p3d_so3.hat_inv, _rotation_vectors, lambda v: (p3d_so3.hat(v),)),
    "se3_exp_map": (ours.se3_exp_map, p3d.se3_exp_map, _twists, lambda x: (x,)),
    "se3_log_map": (ours.se3_log_map, p3d.se3_log_map, _twists, lambda x: (_matrix_exp_row_vector(x),)),
    "standardize_quaternion": (
        ours.standardize_quaternion,
        p3d.standardize_quaternion,
        _rotation_vectors,
        lambda v: (-p3d.axis_angle_to_quaternion(v),),
    ),
    "quaternion_raw_multiply": (
        ours.quaternion_raw_multiply,
        p3d.quaternion_raw_multiply,
        _rotation_vectors,
        lambda v: (p3d.axis_angle_to_quaternion(v), p3d.axis_angle_to_quaternion(v.flip(0))),
    ),
    "quaternion_multiply": (
        ours.quaternion_multiply,
        p3d.quaternion_multiply,
        _rotation_vectors,
        lambda v: (p3d.axis_angle_to_quaternion(v), p3d.axis_angle_to_quaternion(v.flip(0))),
    ),
    "quaternion_invert": (
        ours.quaternion_invert,
        p3d.quaternion_invert,
        _rotation_vectors,
        lambda v: (p3d.axis_angle_to_quaternion(v),),
    ),
    "quaternion_apply": (
        ours.quaternion_apply,
        p3d.quaternion_apply,
        _rotation_vectors,
        lambda v: (p3d.axis_angle_to_quaternion(v), _point_cloud(v.dtype)),
    ),
}
CASES.update(
    {
        f"euler_angles_to_matrix:{c}": (
            lambda e, c=c: ours.euler_angles_to_matrix(e, c),
            lambda e, c=c: p3d.euler_angles_to_matrix(e, c),
            lambda angle, dtype: _euler(angle if angle < 3 else 1.2, dtype),
            lambda e: (e,),
        )
        for c in EULER_CONVENTIONS
    }
)
# Euler angles from matrices, away from gimbal lock (middle 0 for proper, +-pi/2 for Tait-Bryan conventions):
# near the identity / pi means the middle angle is near 0 (Tait-Bryan) or near pi (proper).
MIDDLE = {
    "tait_bryan": {"identity": 1e-3, "generic": 0.7, "near_pi": 1.2},
    "proper": {"identity": 0.05, "generic": 1.2, "near_pi": math.pi - 0.05},
}


def _from_euler_case(convention: str) -> tuple[Any, ...]:
    kind = "proper" if convention[0] == convention[2] else "tait_bryan"
    middles = {ANGLES[key]: value for key, value in MIDDLE[kind].items()}
    return (
        lambda R: ours.matrix_to_euler_angles(R, convention),
        lambda R: p3d.matrix_to_euler_angles(R, convention),
        lambda angle, dtype: _euler(middles[angle], dtype),
        lambda e: (p3d.euler_angles_to_matrix(e, convention),),
    )


CASES.update({f"matrix_to_euler_angles:{c}": _from_euler_case(c) for c in EULER_CONVENTIONS})


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad:UserWarning")  # PyTorch3D's hat_inv
@pytest.mark.parametrize("angle", list(ANGLES.values()), ids=list(ANGLES))
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_pytorch3d(name: str, angle: float, dtype: torch.dtype) -> None:
    function, reference, make_leaf, build = CASES[name]
    value_tolerance, gradient_tolerance = TOLERANCE[dtype]
    leaf = make_leaf(angle, dtype)
    # The oracle runs in float64 on the same (float32-rounded) leaf: PyTorch3D's own float32 results lose digits
    # where drreg's do not (e.g. (θ - sin θ) / θ³ of se3 near the identity, acos near 0 and pi).
    reference_leaf = leaf.detach().double().requires_grad_()
    actual, expected = function(*build(leaf)), reference(*build(reference_leaf)).to(dtype)
    torch.testing.assert_close(actual, expected, atol=value_tolerance * 10, rtol=value_tolerance)
    if not actual.requires_grad:  # hat_inv of an exact hat, standardize of constants... still differentiable
        return
    weights = torch.linspace(-1.0, 1.0, expected.numel(), dtype=dtype).reshape(expected.shape)
    (gradient,) = torch.autograd.grad((actual * weights).sum(), leaf)
    (expected_gradient,) = torch.autograd.grad((expected * weights).sum(), reference_leaf)
    expected_gradient = expected_gradient.to(dtype)
    scale = float(expected_gradient.abs().max().clamp_min(1.0))
    torch.testing.assert_close(gradient, expected_gradient, atol=gradient_tolerance * scale, rtol=0)


def test_acos_linear_extrapolation_matches_pytorch3d() -> None:
    x = torch.tensor([-1.5, -0.99995, -0.3, 0.0, 0.5, 0.99995, 1.0, 1.5], dtype=torch.float64, requires_grad=True)
    actual, expected = ours.acos_linear_extrapolation(x), p3d_math.acos_linear_extrapolation(x)
    torch.testing.assert_close(actual, expected, atol=1e-12, rtol=0)
    (gradient,) = torch.autograd.grad(actual.sum(), x)
    (expected_gradient,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(gradient, expected_gradient, atol=1e-9, rtol=0)


# ------------------------------------------------------------------------------------------------ scipy


def _scipy_rotations(angle: float) -> Rotation:
    return Rotation.from_rotvec(np.array(AXES) * angle)


@pytest.mark.parametrize("angle", list(ANGLES.values()), ids=list(ANGLES))
def test_matrix_quaternion_axis_angle_match_scipy(angle: float, dtype: torch.dtype) -> None:
    atol = TOLERANCE[dtype][0] * 10
    rotation = _scipy_rotations(angle)
    matrix = torch.tensor(rotation.as_matrix(), dtype=dtype)
    quaternion_wxyz = torch.tensor(rotation.as_quat(scalar_first=True, canonical=True), dtype=dtype)
    rotation_vector = torch.tensor(rotation.as_rotvec(), dtype=dtype)
    torch.testing.assert_close(ours.quaternion_to_matrix(quaternion_wxyz), matrix, atol=atol, rtol=0)
    torch.testing.assert_close(ours.matrix_to_quaternion(matrix), quaternion_wxyz, atol=atol, rtol=0)
    torch.testing.assert_close(ours.axis_angle_to_matrix(rotation_vector), matrix, atol=atol, rtol=0)
    # Near pi float32 matrices pin the angle to ~sqrt(eps): compare the rotation rather than the vector.
    back = ours.axis_angle_to_matrix(ours.matrix_to_axis_angle(matrix))
    torch.testing.assert_close(back, matrix, atol=10 * atol, rtol=0)
    torch.testing.assert_close(ours.quaternion_to_axis_angle(quaternion_wxyz), rotation_vector, atol=atol, rtol=atol)


@pytest.mark.parametrize("convention", EULER_CONVENTIONS)
def test_euler_angles_match_scipy(convention: str) -> None:
    kind = "proper" if convention[0] == convention[2] else "tait_bryan"
    angles = _euler(MIDDLE[kind]["generic"], torch.float64).detach()
    expected_matrix = Rotation.from_euler(convention, angles.numpy()).as_matrix()
    torch.testing.assert_close(
        ours.euler_angles_to_matrix(angles, convention).numpy(), expected_matrix, atol=1e-12, rtol=0
    )
    recovered = ours.matrix_to_euler_angles(torch.tensor(expected_matrix), convention)
    torch.testing.assert_close(recovered, torch.tensor(Rotation.from_matrix(expected_matrix).as_euler(convention)))


@pytest.mark.parametrize("angle", list(ANGLES.values()), ids=list(ANGLES))
def test_quaternion_algebra_matches_scipy(angle: float) -> None:
    first, second = _scipy_rotations(angle), _scipy_rotations(0.7)
    q1 = torch.tensor(first.as_quat(scalar_first=True))
    q2 = torch.tensor(second.as_quat(scalar_first=True))
    product = torch.tensor((first * second).as_quat(scalar_first=True, canonical=True))
    torch.testing.assert_close(ours.quaternion_multiply(q1, q2), product, atol=1e-12, rtol=0)
    points = _point_cloud(torch.float64)
    torch.testing.assert_close(ours.quaternion_apply(q1, points), torch.tensor(first.apply(points.numpy())))
    inverse = torch.tensor(first.inv().as_quat(scalar_first=True))
    torch.testing.assert_close(ours.quaternion_invert(q1), inverse, atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------------------------- Transform3d


def test_rigid_transform_round_trips_through_transform3d(dtype: torch.dtype) -> None:
    pose = ours.random_rigid_transform(3, generator=torch.Generator().manual_seed(0)).to(dtype)
    points = torch.randn(3, 7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype) * 50
    transform = pose.to_pytorch3d()
    assert isinstance(transform, p3d.Transform3d)
    atol = TOLERANCE[dtype][0] * 1e3
    torch.testing.assert_close(transform.transform_points(points), pose(points), atol=atol, rtol=0)
    back = RigidTransform.from_pytorch3d(transform)
    torch.testing.assert_close(back.matrix, pose.matrix)
    composed = RigidTransform.from_pytorch3d(transform.compose(pose.inverse().to_pytorch3d()))
    torch.testing.assert_close(composed.matrix, pose.compose(pose.inverse()).matrix)


def test_from_pytorch3d_builds_rigid_transforms_from_rotations_and_translations() -> None:
    rotation = p3d.axis_angle_to_matrix(torch.tensor([[0.1, 0.2, 0.3]], dtype=torch.float64))
    transform = p3d.Rotate(rotation, dtype=torch.float64).translate(
        torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    )
    pose = RigidTransform.from_pytorch3d(transform)
    points = _point_cloud(torch.float64)[None]
    torch.testing.assert_close(pose(points), transform.transform_points(points))


def test_from_pytorch3d_refuses_a_scale() -> None:
    with pytest.raises(ValueError, match="not a rigid transform"):
        RigidTransform.from_pytorch3d(p3d.Scale(2.0))
    with pytest.raises(TypeError, match="must be a pytorch3d.transforms.Transform3d"):
        RigidTransform.from_pytorch3d(torch.eye(4))  # type: ignore[arg-type]


def test_gradients_flow_through_to_pytorch3d() -> None:
    translation = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64, requires_grad=True)
    pose = ours.convert(
        torch.tensor([[0.1, 0.2, 0.3]], dtype=torch.float64), translation, parameterization="axis_angle"
    )
    pose.to_pytorch3d().transform_points(_point_cloud(torch.float64)[None]).sum().backward()
    assert translation.grad is not None and bool(translation.grad.abs().sum() > 0)
