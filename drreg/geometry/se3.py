"""SE(3): homogeneous 4x4 matrices, the exponential map from twists and the logarithm back.

All functions act on the last dimensions and broadcast over any leading batch shape ``*``.

Convention: a rigid transform is ``[[R, t], [0, 1]]`` acting on column vectors ``[p; 1]`` (t in mm); a twist is
``[v, ω]``, translation first (PyTorch3D), ``ω`` a rotation vector in radians.
"""

from __future__ import annotations

import torch

from drreg._checks import check_shape
from drreg.geometry._degenerate import refuse_huge_angle
from drreg.geometry.so3 import identity_like, matrix_to_axis_angle, polynomial, safe_angle, skew, so3_coefficients

__all__ = ["homogeneous", "se3_exp_map", "se3_log_map"]

# Taylor coefficients in powers of theta^2 (checked against mpmath to 20 digits), used below SMALL_ANGLE_SQUARED.
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


def _left_jacobian_coefficient(theta_squared: torch.Tensor) -> torch.Tensor:
    """``(t - sin(t)) / t^3`` as a function of ``t^2`` (the K^2 weight of SE(3)'s V), Taylor near 0."""
    small, theta = safe_angle(theta_squared)
    exact = (theta - theta.sin()) / (theta * theta * theta)
    return torch.where(small, polynomial(theta_squared, _THETA_MINUS_SIN_OVER_THETA3), exact)


def _inverse_left_jacobian_coefficient(theta_squared: torch.Tensor) -> torch.Tensor:
    """``(1 - (t/2) cot(t/2)) / t^2`` as a function of ``t^2`` (the K^2 weight of V^-1), Taylor near 0.

    Valid for ``0 <= t < 2 pi``; the SO(3) log returns ``t <= pi``, where ``sin(t/2) >= sin(0.05)``.
    """
    small, theta = safe_angle(theta_squared)
    half = 0.5 * theta
    exact = (1.0 - half * half.cos() / half.sin()) / (theta * theta)
    return torch.where(small, polynomial(theta_squared, _ONE_MINUS_HALF_COT_OVER_THETA2), exact)


def homogeneous(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Stack rotations and translations into homogeneous 4x4 matrices.

    Args:
        rotation: (*, 3, 3) rotation blocks ``R``.
        translation: (*, 3) translation columns ``t`` (mm).

    Returns:
        (*, 4, 4) matrices ``[[R, t], [0, 0, 0, 1]]``, in the dtype and on the device of the inputs.

    Convention: column vectors, ``[[R, t], [0, 1]] @ [p; 1] = [R @ p + t; 1]``. Unchecked: ``rotation`` is taken
    as given, so gradients flow to both inputs.

    Example:
        >>> homogeneous(torch.eye(3), torch.tensor([1.0, 2.0, 3.0]))
        tensor([[1., 0., 0., 1.],
                [0., 1., 0., 2.],
                [0., 0., 1., 3.],
                [0., 0., 0., 1.]])
    """
    top = torch.cat((rotation, translation[..., :, None]), -1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat((top, bottom), -2)


def se3_exp_map(log: torch.Tensor) -> torch.Tensor:
    """SE(3) exponential map: twist coordinates to rigid 4x4 matrices.

    Args:
        log: (*, 6) twists ``[v, ω]``: ``v`` the translational part (mm), ``ω`` the rotation vector
            (radians).

    Returns:
        (*, 4, 4) matrices ``[[exp(ω^), V(ω) @ v], [0, 1]]`` with
        ``V = I + (1 - cos θ)/θ² ω^ + (θ - sin θ)/θ³ ω^²``, ``θ = |ω|``.

    Raises:
        ValueError: ``log`` is not (*, 6), or an angle ``|ω|`` so large that its square overflows the dtype.

    Convention: translation first, ``[v, ω]`` (PyTorch3D); column vectors. Taylor series near
    ``θ = 0`` keep values and gradients exact at the identity.

    Example:
        >>> se3_exp_map(torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 0.0]))
        tensor([[1., 0., 0., 1.],
                [0., 1., 0., 2.],
                [0., 0., 1., 3.],
                [0., 0., 0., 1.]])
    """
    check_shape(log, "* 6", name="log")
    translation_log, rotation_log = log[..., :3], log[..., 3:]
    theta_squared = (rotation_log * rotation_log).sum(-1)[..., None, None]
    refuse_huge_angle(log, theta_squared[..., 0, 0], "se3_log_map")
    sin_over_theta, one_minus_cos = so3_coefficients(theta_squared)
    cross = skew(rotation_log)
    cross_squared = cross @ cross
    identity = identity_like(cross)
    rotation = identity + sin_over_theta * cross + one_minus_cos * cross_squared
    left_jacobian = identity + one_minus_cos * cross + _left_jacobian_coefficient(theta_squared) * cross_squared
    translation = (left_jacobian @ translation_log[..., None]).squeeze(-1)
    return homogeneous(rotation, translation)


def se3_log_map(matrix: torch.Tensor) -> torch.Tensor:
    """SE(3) logarithm: rigid 4x4 matrices to twist coordinates.

    Args:
        matrix: (*, 4, 4) rigid transforms ``[[R, t], [0, 1]]`` (t in mm).

    Returns:
        (*, 6) twists ``[v, ω]`` with ``ω = log(R)`` (radians, ``|ω| <= pi``) and ``v = V(ω)^-1 @ t``,
        ``V^-1 = I - ω^/2 + (1 - (θ/2) cot(θ/2))/θ² ω^²``.

    Raises:
        ValueError: ``matrix`` is not (*, 4, 4).

    Convention: translation first, ``[v, ω]``, inverse of :func:`se3_exp_map`. The rotation log is
    :func:`~drreg.geometry.so3.matrix_to_axis_angle` (stable at 0 and near pi); the last row
    of ``matrix`` is not read.

    Example:
        >>> log = torch.tensor([1.0, 2.0, 3.0, 0.1, -0.2, 0.3])
        >>> se3_log_map(se3_exp_map(log))
        tensor([ 1.0000,  2.0000,  3.0000,  0.1000, -0.2000,  0.3000])
    """
    check_shape(matrix, "* 4 4", name="matrix")
    rotation_log = matrix_to_axis_angle(matrix[..., :3, :3])
    theta_squared = (rotation_log * rotation_log).sum(-1)[..., None, None]
    cross = skew(rotation_log)
    inverse_left_jacobian = (
        identity_like(cross) - 0.5 * cross + _inverse_left_jacobian_coefficient(theta_squared) * (cross @ cross)
    )
    translation_log = (inverse_left_jacobian @ matrix[..., :3, 3:]).squeeze(-1)
    return torch.cat((translation_log, rotation_log), -1)
