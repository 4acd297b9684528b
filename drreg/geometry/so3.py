"""SO(3): the exponential and logarithm (axis-angle, also via quaternions), rotation angles and the geodesic distance,
the hat (cross-product) matrix, the small-angle series, and PyTorch3D's ``so3_*`` functions.

All functions act on the last dimensions and broadcast over any leading batch shape ``*``.

Convention: rotation matrices act on column vectors (``p' = R @ p``); a rotation vector is a unit axis
times an angle in radians (right-handed); the series helpers take the squared angle ``theta^2``.
"""

from __future__ import annotations

import math
import warnings

import torch

from drreg._checks import check_shape
from drreg.geometry._degenerate import refuse_huge_angle
from drreg.geometry.quaternion import matrix_to_quaternion

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
    "rotation_geodesic_distance",
    "skew",
    "hat",
    "hat_inv",
    "DEFAULT_ACOS_BOUND",
    "acos_linear_extrapolation",
    "so3_rotation_angle",
    "so3_relative_angle",
    "so3_exp_map",
    "so3_exponential_map",
    "so3_log_map",
]

SMALL_ANGLE_SQUARED = 1e-2
"""Squared angle (rad^2) below which the closed forms lose digits or have 0/0 gradients, so a Taylor series in
``theta^2`` takes over; with terms up to ``theta^8`` its truncation error is below 1e-17."""

# Taylor coefficients in powers of theta^2 (checked against mpmath to 20 digits).
SIN_OVER_THETA = (1.0, -1.0 / 6.0, 1.0 / 120.0, -1.0 / 5040.0, 1.0 / 362880.0)  # sin(t) / t
ONE_MINUS_COS_OVER_THETA2 = (0.5, -1.0 / 24.0, 1.0 / 720.0, -1.0 / 40320.0, 1.0 / 3628800.0)  # (1 - cos t) / t^2
COS_HALF = (1.0, -1.0 / 8.0, 1.0 / 384.0, -1.0 / 46080.0, 1.0 / 10321920.0)  # cos(t / 2)
SIN_HALF_OVER_THETA = (0.5, -1.0 / 48.0, 1.0 / 3840.0, -1.0 / 645120.0, 1.0 / 185794560.0)  # sin(t / 2) / t
ATAN_OVER_X = (1.0, -1.0 / 3.0, 1.0 / 5.0, -1.0 / 7.0, 1.0 / 9.0)  # atan(x) / x in powers of x^2

DEFAULT_ACOS_BOUND: float = 1.0 - 1e-4
"""Default bound of :func:`acos_linear_extrapolation`: ``acos`` is linear outside ``[-bound, bound]`` (PyTorch3D)."""

_HAT_INV_SKEW_SYMMETRIC_TOLERANCE = 1e-5  # largest |h + h^T| that hat_inv accepts (PyTorch3D's)


def polynomial(x: torch.Tensor, coefficients: tuple[float, ...]) -> torch.Tensor:
    """Evaluate ``sum_k coefficients[k] * x**k`` by Horner's rule (``x`` of any shape)."""
    result = torch.full_like(x, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        result = result * x + coefficient
    return result


def safe_angle(theta_squared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(small, theta)`` where ``theta`` is ``sqrt(theta_squared)`` but 1 on the small branch.

    The small branch then uses a Taylor series, so the square root (infinite slope at 0) and the
    divisions by theta never see a zero, and no NaN leaks into the gradient through ``where``.
    """
    small = theta_squared < SMALL_ANGLE_SQUARED
    theta = torch.where(small, torch.ones_like(theta_squared), theta_squared).sqrt()
    return small, theta


def so3_coefficients(theta_squared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``sin(t) / t`` and ``(1 - cos(t)) / t^2`` as functions of ``t^2`` (any shape), Taylor near 0."""
    small, theta = safe_angle(theta_squared)
    sin_over_theta = torch.where(small, polynomial(theta_squared, SIN_OVER_THETA), theta.sin() / theta)
    # (1 - cos t) / t^2 = 0.5 * (sin(t/2) / (t/2))^2 has no cancellation, unlike 1 - cos t.
    half_sinc = (0.5 * theta).sin() / (0.5 * theta)
    one_minus_cos = torch.where(
        small, polynomial(theta_squared, ONE_MINUS_COS_OVER_THETA2), 0.5 * half_sinc * half_sinc
    )
    return sin_over_theta, one_minus_cos


def skew(vector: torch.Tensor) -> torch.Tensor:
    """Cross-product (hat) matrices of vectors.

    Args:
        vector: (*, 3) vectors ``v``.

    Returns:
        (*, 3, 3) antisymmetric matrices ``K`` with ``K @ u = v x u``.

    Example:
        >>> skew(torch.tensor([1.0, 2.0, 3.0]))
        tensor([[ 0., -3.,  2.],
                [ 3.,  0., -1.],
                [-2.,  1.,  0.]])
    """
    x, y, z = vector.unbind(-1)
    zero = torch.zeros_like(x)
    rows = (
        torch.stack((zero, -z, y), -1),
        torch.stack((z, zero, -x), -1),
        torch.stack((-y, x, zero), -1),
    )
    return torch.stack(rows, -2)


def identity_like(matrix: torch.Tensor) -> torch.Tensor:
    """Identity with the trailing square shape, dtype and device of ``matrix`` (*, n, n)."""
    return torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors to rotation matrices (the SO(3) exponential map, Rodrigues' formula).

    Args:
        axis_angle: (*, 3) rotation vectors: unit axis times angle (radians).

    Returns:
        (*, 3, 3) rotation matrices ``exp(K)``, ``K`` the cross-product matrix of ``axis_angle``.

    Raises:
        ValueError: ``axis_angle`` is not (*, 3), or an angle so large that its square overflows the dtype.

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
    refuse_huge_angle(axis_angle, theta_squared[..., 0, 0], "axis_angle")
    sin_over_theta, one_minus_cos = so3_coefficients(theta_squared)
    cross = skew(axis_angle)
    return identity_like(cross) + sin_over_theta * cross + one_minus_cos * (cross @ cross)


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
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors to unit quaternions.

    Args:
        axis_angle: (*, 3) rotation vectors: unit axis times angle (radians).

    Returns:
        (*, 4) unit quaternions ``(cos(θ/2), sin(θ/2) axis)``, ``θ = |axis_angle|``; not standardised (``w < 0``
        for ``θ > pi``), as in PyTorch3D.

    Raises:
        ValueError: ``axis_angle`` is not (*, 3).

    Convention: scalar first (wxyz). A Taylor series near 0 keeps values and gradients exact at the identity.

    Example:
        >>> axis_angle_to_quaternion(torch.tensor([0.0, 0.0, torch.pi]))
        tensor([-4.3711e-08,  0.0000e+00,  0.0000e+00,  1.0000e+00])
    """
    check_shape(axis_angle, "* 3", name="axis_angle")
    theta_squared = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small, theta = safe_angle(theta_squared)
    cos_half = torch.where(small, polynomial(theta_squared, COS_HALF), (0.5 * theta).cos())
    sin_half = (0.5 * theta).sin() / theta
    sin_half_over_theta = torch.where(small, polynomial(theta_squared, SIN_HALF_OVER_THETA), sin_half)
    return torch.cat((cos_half, axis_angle * sin_half_over_theta), -1)


def quaternion_to_axis_angle(quaternions: torch.Tensor) -> torch.Tensor:
    """Quaternions to rotation vectors.

    Args:
        quaternions: (*, 4) nonzero quaternions ``(w, x, y, z)``.

    Returns:
        (*, 3) rotation vectors ``2 atan2(|v|, w) v / |v|`` (``v = (x, y, z)``): angle in ``[0, pi]`` for ``w >= 0``,
        in ``(pi, 2 pi]`` for ``w < 0`` (not standardised, as in PyTorch3D).

    Raises:
        ValueError: ``quaternions`` is not (*, 4).

    Convention: scalar first (wxyz). ``atan2`` keeps full precision near pi, where ``acos(w)`` loses digits, and a
    Taylor branch keeps values and gradients exact near the identity. The result does not depend on ``|q|`` (PyTorch3D
    assumes unit quaternions and scales a non-unit one's large-angle result by ``|q|``).

    Example:
        >>> quaternion_to_axis_angle(torch.tensor([0.0, 0.0, 0.0, 1.0]))
        tensor([0.0000, 0.0000, 3.1416])
    """
    check_shape(quaternions, "* 4", name="quaternion")
    w = quaternions[..., :1]
    vector = quaternions[..., 1:]
    norm_squared = (vector * vector).sum(-1, keepdim=True)
    # Taylor branch (angle below ~0.02 rad): 2 atan(n / w) / n = (2 / w) atan(r) / r, r = n / w.
    small = (norm_squared < 1e-4 * w * w) & (w > 0)
    w_safe = torch.where(small, w, torch.ones_like(w))
    taylor = (2.0 / w_safe) * polynomial(norm_squared / (w_safe * w_safe), ATAN_OVER_X)
    # A zero vector part with w < 0 (a full turn) has no axis: any finite factor gives the zero vector.
    norm = torch.where(small | (norm_squared == 0), torch.ones_like(norm_squared), norm_squared).sqrt()
    exact = 2.0 * torch.atan2(norm, w) / norm
    return vector * torch.where(small, taylor, exact)


def rotation_geodesic_distance(rotation_1: torch.Tensor, rotation_2: torch.Tensor) -> torch.Tensor:
    """Angle of the relative rotation ``R1^T R2`` (the geodesic distance on SO(3)).

    Args:
        rotation_1: (*, 3, 3) rotation matrices.
        rotation_2: (*, 3, 3) rotation matrices (broadcast against ``rotation_1``).

    Returns:
        (*,) angles in radians, in ``[0, pi]``.

    Raises:
        ValueError: an input is not (*, 3, 3).

    Convention: ``atan2(|sin|, cos)`` with the sine from the antisymmetric part and the cosine from
    the trace, accurate at 0 and at pi (``acos`` of the trace loses half the digits at both ends).

    Example:
        >>> R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 0.5]))
        >>> rotation_geodesic_distance(torch.eye(3), R)
        tensor(0.5000)
    """
    check_shape(rotation_1, "* 3 3", name="rotation_1")
    check_shape(rotation_2, "* 3 3", name="rotation_2")
    relative = rotation_1.mT @ rotation_2
    antisymmetric = relative - relative.mT
    sine = 0.5 * torch.stack((antisymmetric[..., 2, 1], antisymmetric[..., 0, 2], antisymmetric[..., 1, 0]), -1)
    cosine = 0.5 * (relative.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0)
    # hypot-style norm via sqrt(clamp): finite (zero) gradient at the identity, where |sine| = 0.
    sine_norm = (sine * sine).sum(-1).clamp_min(torch.finfo(sine.dtype).tiny).sqrt()
    return torch.atan2(sine_norm, cosine)


# ------------------------------------------------------------------------------ hat, acos, PyTorch3D's so3_*


def _check_batch(x: torch.Tensor, pattern: str, message: str) -> int:
    """Raise ``ValueError(message, got shape)`` unless ``x`` matches ``pattern``; return its batch size ``N``."""
    try:
        return check_shape(x, pattern, name="input")["N"]
    except ValueError:
        raise ValueError(f"{message}, got {tuple(x.shape)}") from None


def hat(v: torch.Tensor) -> torch.Tensor:
    """The hat operator: 3-vectors to their cross-product (skew-symmetric) matrices (PyTorch3D's ``hat``).

    Args:
        v: (N, 3) vectors.

    Returns:
        (N, 3, 3) matrices ``[[0, -z, y], [z, 0, -x], [-y, x, 0]]`` (``hat(v) @ u = v x u``).

    Raises:
        ValueError: ``v`` is not (N, 3).

    Example:
        >>> hat(torch.tensor([[1.0, 2.0, 3.0]]))
        tensor([[[ 0., -3.,  2.],
                 [ 3.,  0., -1.],
                 [-2.,  1.,  0.]]])
    """
    _check_batch(v, "N 3", "v must be (N, 3) vectors")
    return skew(v)


def hat_inv(h: torch.Tensor) -> torch.Tensor:
    """The inverse hat operator: skew-symmetric matrices to 3-vectors (PyTorch3D's ``hat_inv``).

    Args:
        h: (N, 3, 3) skew-symmetric matrices.

    Returns:
        (N, 3) vectors ``(h[2, 1], h[0, 2], h[1, 0])``.

    Raises:
        ValueError: ``h`` is not (N, 3, 3), or ``max |h + h^T| > 1e-5`` (not skew-symmetric).

    Example:
        >>> hat_inv(hat(torch.tensor([[1.0, 2.0, 3.0]])))
        tensor([[1., 2., 3.]])
    """
    _check_batch(h, "N 3 3", "h must be (N, 3, 3) matrices")
    if not torch.compiler.is_compiling():
        asymmetry = float((h + h.mT).detach().abs().amax()) if h.numel() else 0.0
        if asymmetry > _HAT_INV_SKEW_SYMMETRIC_TOLERANCE:
            raise ValueError(
                f"h must be skew-symmetric: max |h + h^T| = {asymmetry:.3g} > {_HAT_INV_SKEW_SYMMETRIC_TOLERANCE:g}"
            )
    return torch.stack((h[:, 2, 1], h[:, 0, 2], h[:, 1, 0]), 1)


def acos_linear_extrapolation(
    x: torch.Tensor, bounds: tuple[float, float] = (-DEFAULT_ACOS_BOUND, DEFAULT_ACOS_BOUND)
) -> torch.Tensor:
    """``acos(x)`` inside ``bounds``, its tangent line outside (PyTorch3D's ``acos_linear_extrapolation``).

    Args:
        x: (*) cosines; any real value.
        bounds: ``(lower, upper)`` with ``-1 < lower <= upper < 1``: ``acos`` is replaced by its first-order Taylor
            expansion at ``upper`` for ``x >= upper`` and at ``lower`` for ``x <= lower``.

    Returns:
        (*) angles (radians), finite with finite gradients for every finite ``x``.

    Raises:
        ValueError: ``lower > upper``, or a bound outside ``(-1, 1)``.

    Example:
        >>> acos_linear_extrapolation(torch.tensor([0.0, 1.0]), (-0.5, 0.5)).round(decimals=4)
        tensor([1.5708, 0.4698])
    """
    lower, upper = bounds
    if lower > upper:
        raise ValueError(f"bounds must be (lower, upper) with lower <= upper, got {bounds}")
    if lower <= -1.0 or upper >= 1.0:
        raise ValueError(f"bounds must lie within (-1, 1), got {bounds}")

    def tangent(bound: float) -> torch.Tensor:
        return math.acos(bound) - (x - bound) / math.sqrt(1.0 - bound * bound)

    # Clamp before acos so that the unused branch is never NaN (a NaN would leak into the gradient via where).
    inside = torch.acos(x.clamp(lower, upper))
    return torch.where(x >= upper, tangent(upper), torch.where(x <= lower, tangent(lower), inside))


def so3_rotation_angle(
    R: torch.Tensor, eps: float = 1e-4, cos_angle: bool = False, cos_bound: float = 1e-4
) -> torch.Tensor:
    """Rotation angles ``acos((trace(R) - 1) / 2)`` (PyTorch3D's ``so3_rotation_angle``).

    Args:
        R: (N, 3, 3) rotation matrices.
        eps: tolerance of the trace check, which requires ``-1 - eps <= trace(R) <= 3 + eps``.
        cos_angle: return the cosines of the angles instead of the angles.
        cos_bound: when positive, ``acos`` is linearly extrapolated outside ``[-1 + cos_bound, 1 - cos_bound]``
            (:func:`acos_linear_extrapolation`) to keep gradients finite near 0 and pi; 0 uses ``acos`` as is.

    Returns:
        (N,) angles in radians (or their cosines).

    Raises:
        ValueError: ``R`` is not (N, 3, 3), or a trace is out of range.

    Convention: ``acos`` of the trace loses half the digits near 0 and pi; :func:`rotation_geodesic_distance` and
    :func:`matrix_to_axis_angle` do not.

    Example:
        >>> so3_rotation_angle(axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.5]]))).round(decimals=4)
        tensor([0.5000])
    """
    _check_batch(R, "N 3 3", "R must be (N, 3, 3) rotation matrices")
    trace = R.diagonal(dim1=-2, dim2=-1).sum(-1)
    if not torch.compiler.is_compiling() and bool(((trace < -1.0 - eps) | (trace > 3.0 + eps)).any()):
        raise ValueError(f"R must be rotations: a trace is outside [-1 - eps, 3 + eps] with eps = {eps:g}")
    cosine = (trace - 1.0) * 0.5
    if cos_angle:
        return cosine
    if cos_bound > 0.0:
        return acos_linear_extrapolation(cosine, (cos_bound - 1.0, 1.0 - cos_bound))
    return torch.acos(cosine)


def so3_relative_angle(
    R1: torch.Tensor, R2: torch.Tensor, cos_angle: bool = False, cos_bound: float = 1e-4, eps: float = 1e-4
) -> torch.Tensor:
    """Angles of the relative rotations ``R1 @ R2^T`` (PyTorch3D's ``so3_relative_angle``).

    Args:
        R1: (N, 3, 3) rotation matrices.
        R2: (N, 3, 3) rotation matrices.
        cos_angle: return cosines instead of angles.
        cos_bound: see :func:`so3_rotation_angle`.
        eps: tolerance of the trace check, see :func:`so3_rotation_angle`.

    Returns:
        (N,) geodesic distances in radians (or their cosines).

    Raises:
        ValueError: an input is not (N, 3, 3), or a trace is out of range.

    Example:
        >>> R = axis_angle_to_matrix(torch.tensor([[0.0, 0.3, 0.0]]))
        >>> so3_relative_angle(R, torch.eye(3)[None]).round(decimals=4)
        tensor([0.3000])
    """
    _check_batch(R1, "N 3 3", "R1 must be (N, 3, 3) rotation matrices")
    _check_batch(R2, "N 3 3", "R2 must be (N, 3, 3) rotation matrices")
    return so3_rotation_angle(R1 @ R2.mT, cos_angle=cos_angle, cos_bound=cos_bound, eps=eps)


def so3_exp_map(log_rot: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Rotation vectors to rotation matrices (PyTorch3D's ``so3_exp_map``): :func:`axis_angle_to_matrix`.

    Args:
        log_rot: (N, 3) rotation vectors (radians).
        eps: accepted for compatibility; the Taylor branch of :func:`axis_angle_to_matrix` needs no clamp.

    Returns:
        (N, 3, 3) rotation matrices.

    Raises:
        ValueError: ``log_rot`` is not (N, 3).

    Example:
        >>> so3_exp_map(torch.zeros(1, 3))
        tensor([[[1., 0., 0.],
                 [0., 1., 0.],
                 [0., 0., 1.]]])
    """
    _check_batch(log_rot, "N 3", "log_rot must be (N, 3) rotation vectors")
    return axis_angle_to_matrix(log_rot)


def so3_exponential_map(log_rot: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Deprecated name of :func:`so3_exp_map` (as in PyTorch3D); warns ``PendingDeprecationWarning``."""
    warnings.warn("so3_exponential_map is deprecated, use so3_exp_map instead", PendingDeprecationWarning, stacklevel=2)
    return so3_exp_map(log_rot, eps)


def so3_log_map(R: torch.Tensor, eps: float = 1e-4, cos_bound: float = 1e-4) -> torch.Tensor:
    """Rotation matrices to rotation vectors (PyTorch3D's ``so3_log_map``): :func:`matrix_to_axis_angle`.

    Args:
        R: (N, 3, 3) rotation matrices.
        eps: unused (kept for compatibility, as in PyTorch3D).
        cos_bound: unused (kept for compatibility, as in PyTorch3D).

    Returns:
        (N, 3) rotation vectors with angle in ``[0, pi]``.

    Raises:
        ValueError: ``R`` is not (N, 3, 3).

    Example:
        >>> so3_log_map(so3_exp_map(torch.tensor([[0.1, -0.2, 0.3]])))
        tensor([[ 0.1000, -0.2000,  0.3000]])
    """
    _check_batch(R, "N 3 3", "R must be (N, 3, 3) rotation matrices")
    return matrix_to_axis_angle(R)
