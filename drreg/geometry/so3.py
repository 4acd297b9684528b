"""SO(3): the exponential and logarithm (axis-angle), the geodesic distance, the cross-product matrix and the
small-angle series.

All functions act on the last dimensions and broadcast over any leading batch shape ``*``.

Convention: rotation matrices act on column vectors (``p' = R @ p``); a rotation vector is a unit axis
times an angle in radians (right-handed); the series helpers take the squared angle ``theta^2``.
"""

from __future__ import annotations

import torch

from drreg._checks import check_shape
from drreg.geometry._degenerate import refuse_huge_angle
from drreg.geometry.quaternion import matrix_to_quaternion

__all__ = ["axis_angle_to_matrix", "matrix_to_axis_angle", "rotation_geodesic_distance", "skew"]

SMALL_ANGLE_SQUARED = 1e-2
"""Squared angle (rad^2) below which the closed forms lose digits or have 0/0 gradients, so a Taylor series in
``theta^2`` takes over; with terms up to ``theta^8`` its truncation error is below 1e-17."""

# Taylor coefficients in powers of theta^2 (checked against mpmath to 20 digits).
SIN_OVER_THETA = (1.0, -1.0 / 6.0, 1.0 / 120.0, -1.0 / 5040.0, 1.0 / 362880.0)  # sin(t) / t
ONE_MINUS_COS_OVER_THETA2 = (0.5, -1.0 / 24.0, 1.0 / 720.0, -1.0 / 40320.0, 1.0 / 3628800.0)  # (1 - cos t) / t^2


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


def _unit_quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """Unit (*, 4) wxyz quaternion with ``w >= 0`` -> (*, 3) axis-angle (radians), stable at 0 and pi."""
    w = quaternion[..., :1]
    vector = quaternion[..., 1:]
    norm_squared = (vector * vector).sum(-1, keepdim=True)
    # Taylor branch: 2 atan(n / w) / n = (2 / w) (1 - u/3 + u^2/5 - ...), u = (n / w)^2; w ~ 1 there.
    small = norm_squared < 1e-4
    w_safe = torch.where(small, w, torch.ones_like(w)).clamp_min(0.5)
    u = norm_squared / (w_safe * w_safe)
    taylor = (2.0 / w_safe) * polynomial(u, (1.0, -1.0 / 3.0, 1.0 / 5.0, -1.0 / 7.0, 1.0 / 9.0))
    norm = torch.where(small, torch.ones_like(norm_squared), norm_squared).sqrt()
    # atan2 keeps full precision for the angle near pi, where w -> 0, unlike acos(w).
    exact = 2.0 * torch.atan2(norm, w) / norm
    return vector * torch.where(small, taylor, exact)


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
    return _unit_quaternion_to_axis_angle(matrix_to_quaternion(matrix))


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
