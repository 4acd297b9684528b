"""Synthetic registration targets: DRRs or physics-simulated X-rays of every view at known patient poses."""

from __future__ import annotations

import torch

from drreg.drr import DRR
from drreg.geometry import RigidTransform
from drreg.physics import XRayPhysics
from drreg.registration.imaging import Imaging
from drreg.registration.poses import POSE_DTYPE, compose_views, identity_view_transforms
from drreg.targets import synthetic_target

__all__ = ["synthetic_view_targets", "physics_view_targets"]


@torch.no_grad()
def synthetic_view_targets(
    drr: DRR, true_poses: RigidTransform, view_transforms: torch.Tensor | None = None
) -> torch.Tensor:
    """Render targets of every view at known patient poses (synthetic problems, demos, benchmarks).

    Args:
        drr: the DRR to render with, at the full-scale detector.
        true_poses: T poses of view 0 (camera to world).
        view_transforms: (V, 4, 4) view transforms (identity, one view, by default).

    Returns:
        (T, V, 1, H, W) float32 targets.
    """
    if view_transforms is None:
        view_transforms = identity_view_transforms(device=drr.device)
    true_matrices = true_poses.matrix.to(drr.device, POSE_DTYPE)  # not true_poses.to(...), which converts in place
    poses = compose_views(RigidTransform.unchecked(true_matrices), view_transforms.to(drr.device))
    images = synthetic_target(drr, poses)
    return images.reshape(len(true_poses), len(view_transforms), *images.shape[1:])


@torch.no_grad()
def physics_view_targets(
    imaging: Imaging,
    physics: XRayPhysics,
    true_poses: RigidTransform,
    view_transforms: torch.Tensor | None = None,
    bone_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Render physics-simulated X-rays (a tube spectrum, scatter, blur, noise) of every view at known patient poses.

    Args:
        imaging: the CT and the full-scale detector (its ``x0``, ``y0``, ``reverse_x_axis``, renderer and backend).
        physics: the :class:`~drreg.physics.XRayPhysics` of :class:`~drreg.physics.PhysicsDRR` (its default
            materials decomposition).
        true_poses: T poses of view 0 (camera to world).
        view_transforms: (V, 4, 4) view transforms (identity, one view, by default).
        bone_scale: factor on the density of bone (:class:`~drreg.physics.PhysicsDRR`).
        generator: random generator of the noise.

    Returns:
        (T, V, 1, H, W) float32 images as ``physics`` outputs them: raw detector intensities (``output="raw"``)
        or ``-log(I / I_air)``.
    """
    xray = imaging.load().build_physics_drr(physics=physics, bone_scale=bone_scale)
    if view_transforms is None:
        view_transforms = identity_view_transforms()
    poses = compose_views(RigidTransform.unchecked(true_poses.matrix.to(POSE_DTYPE)), view_transforms)
    images = xray(RigidTransform.unchecked(poses.matrix), generator=generator).to(torch.float32)
    return images.reshape(len(true_poses), len(view_transforms), *images.shape[1:])
