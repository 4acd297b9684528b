"""Quaternions: to and from rotation matrices, and their algebra (PyTorch3D semantics).

Every function acts on the last dimensions and broadcasts over any leading batch shape ``*``.

Convention: quaternions are ``(w, x, y, z)``, scalar first; ``q`` and ``-q`` are the same rotation; rotation
matrices act on column vectors (``p' = R @ p``).
"""

from __future__ import annotations

import torch

from drreg._checks import check_shape
from drreg.geometry._degenerate import refuse_degenerate, scale_free

__all__ = [
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "standardize_quaternion",
    "quaternion_raw_multiply",
    "quaternion_multiply",
    "quaternion_invert",
    "quaternion_apply",
]


def quaternion_to_matrix(quaternions: torch.Tensor) -> torch.Tensor:
    """Quaternions (need not be unit) to rotation matrices.

    Args:
        quaternions: (*, 4) quaternions ``(w, x, y, z)``, any nonzero norm.

    Returns:
        (*, 3, 3) rotation matrices of the normalised quaternions.

    Raises:
        ValueError: ``quaternions`` is not (*, 4), or one is zero (there is nothing to normalise).

    Convention: scalar first (wxyz); ``q`` and ``-q`` give the same matrix; the quaternion is
    normalised first (scaled by its largest component, then divided by ``|q|^2`` in the quadratic form).

    Example:
        >>> quaternion_to_matrix(torch.tensor([2.0, 0.0, 0.0, 0.0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_shape(quaternions, "* 4", name="quaternion")
    scaled = scale_free(quaternions)  # |q|^2 of 1e20 (float32) overflowed to inf, of 1e-25 underflowed to 0
    norm_squared = (scaled * scaled).sum(-1)
    tiny = torch.finfo(quaternions.dtype).tiny
    refuse_degenerate(
        quaternions,
        "quaternion",
        (norm_squared.detach() < tiny, "its norm is 0, so it gives no rotation (any |q| > 0 does)"),
    )
    return unit_quaternion_to_matrix(scaled, norm_squared)


def unit_quaternion_to_matrix(quaternion: torch.Tensor, norm_squared: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`quaternion_to_matrix` without its checks, for quaternions known to be nonzero (unit ones, mostly).

    Args:
        quaternion: (*, 4) nonzero quaternions ``(w, x, y, z)``.
        norm_squared: (*) their squared norms, when already computed.

    Returns:
        (*, 3, 3) rotation matrices.
    """
    if norm_squared is None:
        norm_squared = (quaternion * quaternion).sum(-1)
    w, x, y, z = quaternion.unbind(-1)
    # Dividing the quadratic form by |q|^2 normalises; the clamp only keeps an unchecked zero input finite.
    two_s = 2.0 / norm_squared.clamp_min(torch.finfo(quaternion.dtype).tiny)
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
    quaternion = standardize_quaternion(quaternion)
    # Renormalise so slightly non-orthogonal inputs still give a unit quaternion.
    return quaternion / quaternion.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(matrix.dtype).tiny)


def standardize_quaternion(quaternions: torch.Tensor) -> torch.Tensor:
    """The representative with a non-negative real part of each quaternion (``q`` and ``-q`` are one rotation).

    Args:
        quaternions: (*, 4) quaternions ``(w, x, y, z)``.

    Returns:
        (*, 4) ``-q`` where ``w < 0``, else ``q``.

    Convention: scalar first (wxyz).

    Example:
        >>> standardize_quaternion(torch.tensor([-1.0, 0.0, 0.0, 0.0]))
        tensor([1., -0., -0., -0.])
    """
    return torch.where(quaternions[..., :1] < 0, -quaternions, quaternions)


def quaternion_raw_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of quaternions, without standardising the result.

    Args:
        a: (*, 4) quaternions ``(w, x, y, z)``.
        b: (*, 4) quaternions, broadcast against ``a``.

    Returns:
        (*, 4) products ``a b`` (the rotation ``b`` first, then ``a``).

    Convention: scalar first (wxyz); ``quaternion_to_matrix(a b) = quaternion_to_matrix(a) @ quaternion_to_matrix(b)``.

    Example:
        >>> i, j = torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0, 0.0])
        >>> quaternion_raw_multiply(i, j)  # i j = k
        tensor([0., 0., 0., 1.])
    """
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        -1,
    )


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Composition of the rotations of two quaternions, standardised (``w >= 0``).

    Args:
        a: (*, 4) quaternions ``(w, x, y, z)``.
        b: (*, 4) quaternions, broadcast against ``a``.

    Returns:
        (*, 4) :func:`standardize_quaternion` of the Hamilton product ``a b`` (``b`` applied first).

    Example:
        >>> q = torch.tensor([0.0, 0.0, 0.0, 1.0])  # a half turn about z
        >>> quaternion_multiply(q, q)[0]  # a full turn: w = -1, standardised to +1
        tensor(1.)
    """
    return standardize_quaternion(quaternion_raw_multiply(a, b))


def quaternion_invert(quaternion: torch.Tensor) -> torch.Tensor:
    """Inverse of unit quaternions: their conjugate ``(w, -x, -y, -z)``.

    Args:
        quaternion: (*, 4) unit quaternions ``(w, x, y, z)``.

    Returns:
        (*, 4) conjugates; the inverse rotation (for a non-unit ``q``, the inverse times ``|q|^2``).

    Example:
        >>> quaternion_invert(torch.tensor([0.5, 0.5, -0.5, 0.5]))
        tensor([ 0.5000, -0.5000,  0.5000, -0.5000])
    """
    return torch.cat((quaternion[..., :1], -quaternion[..., 1:]), -1)


def quaternion_apply(quaternion: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """Rotate points by unit quaternions: the vector part of ``q (0, p) q^-1``.

    Args:
        quaternion: (*, 4) unit quaternions ``(w, x, y, z)``.
        point: (*, 3) points, broadcast against ``quaternion``.

    Returns:
        (*, 3) rotated points ``quaternion_to_matrix(q) @ p``.

    Raises:
        ValueError: ``point`` is not (*, 3).

    Example:
        >>> q = torch.tensor([0.5 ** 0.5, 0.0, 0.0, 0.5 ** 0.5])  # a quarter turn about z
        >>> quaternion_apply(q, torch.tensor([1.0, 0.0, 0.0])).round(decimals=6)
        tensor([0., 1., 0.])
    """
    check_shape(point, "* 3", name="point")
    point_quaternion = torch.cat((torch.zeros_like(point[..., :1]), point), -1)
    rotated = quaternion_raw_multiply(
        quaternion_raw_multiply(quaternion, point_quaternion), quaternion_invert(quaternion)
    )
    return rotated[..., 1:]
