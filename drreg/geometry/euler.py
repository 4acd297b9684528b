"""Euler angles to and from rotation matrices, in the 12 intrinsic conventions (PyTorch3D semantics).

All functions act on the last dimensions and broadcast over any leading batch shape ``*``.

Convention: ``"abc"`` means ``R = R_a(θ0) @ R_b(θ1) @ R_c(θ2)`` (intrinsic rotations, scipy's uppercase
``from_euler``); each ``R_x`` is the right-handed rotation about that axis, acting on column vectors; radians.
"""

from __future__ import annotations

import math

import torch

from drreg._checks import check_choice, check_shape
from drreg.geometry.quaternion import matrix_to_quaternion

__all__ = ["EULER_CONVENTIONS", "euler_angles_to_matrix", "matrix_to_euler_angles"]

EULER_CONVENTIONS: tuple[str, ...] = (
    # Tait-Bryan: three distinct axes.
    "XYZ",
    "XZY",
    "YXZ",
    "YZX",
    "ZXY",
    "ZYX",
    # Proper Euler: first and last axes equal.
    "XYX",
    "XZX",
    "YXY",
    "YZY",
    "ZXZ",
    "ZYZ",
)
"""The 12 Euler conventions; ``"abc"`` means ``R = R_a(θ0) @ R_b(θ1) @ R_c(θ2)`` (intrinsic)."""

_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}


def _check_convention(convention: object) -> str:
    check_choice(convention, EULER_CONVENTIONS, name="Euler convention")
    return str(convention)


def _elementary_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """(*,) angles (radians) -> (*, 3, 3) right-handed rotations about ``axis`` ("X", "Y" or "Z")."""
    cos, sin = angle.cos(), angle.sin()
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == "X":
        rows = ((one, zero, zero), (zero, cos, -sin), (zero, sin, cos))
    elif axis == "Y":
        rows = ((cos, zero, sin), (zero, one, zero), (-sin, zero, cos))
    else:
        rows = ((cos, -sin, zero), (sin, cos, zero), (zero, zero, one))
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def _wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """Wrap radians into ``[-pi, pi)``."""
    return torch.remainder(angle + math.pi, 2.0 * math.pi) - math.pi


def euler_angles_to_matrix(euler_angles: torch.Tensor, convention: str) -> torch.Tensor:
    """Euler angles to rotation matrices.

    Args:
        euler_angles: (*, 3) angles ``(θ0, θ1, θ2)`` in radians.
        convention: one of :data:`EULER_CONVENTIONS`, e.g. ``"ZXY"``.

    Returns:
        (*, 3, 3) rotation matrices ``R_a(θ0) @ R_b(θ1) @ R_c(θ2)`` for ``convention = "abc"``.

    Raises:
        ValueError: bad shape or unknown convention.

    Convention: intrinsic rotations (PyTorch3D and scipy's uppercase ``from_euler``); each
    ``R_x`` is the usual right-handed rotation about that axis; radians.

    Example:
        >>> R = euler_angles_to_matrix(torch.tensor([torch.pi / 2, 0.0, 0.0]), "ZXY")
        >>> (R @ torch.tensor([1.0, 0.0, 0.0])).round(decimals=4).abs()  # x turns into y about Z
        tensor([0., 1., 0.])
    """
    check_shape(euler_angles, "* 3", name="euler_angles")
    convention = _check_convention(convention)
    first, second, third = (
        _elementary_rotation(axis, angle) for axis, angle in zip(convention, euler_angles.unbind(-1), strict=True)
    )
    return first @ second @ third


def matrix_to_euler_angles(matrix: torch.Tensor, convention: str) -> torch.Tensor:
    """Rotation matrices to Euler angles.

    Args:
        matrix: (*, 3, 3) rotation matrices.
        convention: one of :data:`EULER_CONVENTIONS`, e.g. ``"ZXY"``.

    Returns:
        (*, 3) angles ``(θ0, θ1, θ2)`` in radians with ``R = R_a(θ0) @ R_b(θ1) @ R_c(θ2)``: ``θ0, θ2`` in
        ``[-pi, pi)``, ``θ1`` in ``[-pi/2, pi/2]`` (Tait-Bryan) or ``[0, pi]`` (proper Euler).

    Raises:
        ValueError: bad shape or unknown convention.

    Convention: intrinsic, as :func:`euler_angles_to_matrix`. At gimbal lock ``θ2`` is set to 0
    (as scipy does). The angles come from half-angle sums and differences of the unit quaternion,
    which stay accurate close to gimbal lock (no ``asin``/``acos``).

    Example:
        >>> angles = torch.tensor([0.3, -0.2, 0.1])
        >>> matrix_to_euler_angles(euler_angles_to_matrix(angles, "ZXY"), "ZXY")
        tensor([ 0.3000, -0.2000,  0.1000])
    """
    check_shape(matrix, "* 3 3", name="matrix")
    convention = _check_convention(convention)
    i, j = _AXIS_INDEX[convention[0]], _AXIS_INDEX[convention[1]]
    proper = convention[0] == convention[2]
    k = 3 - i - j if proper else _AXIS_INDEX[convention[2]]
    parity = 1.0 if (j - i) % 3 == 1 else -1.0  # sign of the permutation (i, j, k)

    quaternion = matrix_to_quaternion(matrix)
    w, q_i, q_j, q_k = quaternion[..., 0], quaternion[..., 1 + i], quaternion[..., 1 + j], quaternion[..., 1 + k]
    q_k = parity * q_k
    if proper:
        # q = (cos(b/2) cos(s), cos(b/2) sin(s) e_i + sin(b/2) cos(d) e_j + sin(b/2) sin(d) e_k), with
        # s = (θ0 + θ2) / 2, d = (θ0 - θ2) / 2, b = θ1.
        plus_cos, plus_sin, minus_cos, minus_sin = w, q_i, q_j, q_k
    else:
        # Tait-Bryan: these combinations carry (cos(b/2) + sin(b/2)) and (cos(b/2) - sin(b/2)) instead.
        plus_cos, plus_sin, minus_cos, minus_sin = w + q_j, q_i + q_k, w - q_j, q_i - q_k
    plus_norm = torch.hypot(plus_cos, plus_sin)
    minus_norm = torch.hypot(minus_cos, minus_sin)
    half_sum = torch.atan2(plus_sin, plus_cos)
    half_difference = torch.atan2(minus_sin, minus_cos)
    # Gimbal lock: one half-angle is undetermined (atan2 of ~0, ~0); choose it so that θ2 = 0.
    eps = torch.finfo(matrix.dtype).eps
    half_difference = torch.where(minus_norm <= eps, half_sum, half_difference)
    half_sum = torch.where(plus_norm <= eps, half_difference, half_sum)

    if proper:
        middle = 2.0 * torch.atan2(minus_norm, plus_norm)
        last = half_sum - half_difference
    else:
        middle = 2.0 * torch.atan2(plus_norm, minus_norm) - 0.5 * math.pi
        last = parity * (half_sum - half_difference)
    first = half_sum + half_difference
    return torch.stack((_wrap_angle(first), middle, _wrap_angle(last)), -1)
