"""What one registration step computes: the pixels it renders, the targets at the stage's scale, and the loss.

Plain functions that run without a ``Trainer``: :func:`draw_pixel_indices` (a fresh subset each step),
:func:`downsample_targets` (coarse-to-fine stages) and :func:`registration_loss` (render B poses, compare with B
targets on the drawn pixels); :func:`resolve_loss` turns the recipes' loss (a class or a short name) into a
:class:`~drreg.losses.SimilarityLoss` and checks that it can compare the pixels drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from drreg._checks import check_integer, check_number
from drreg._pixels import sample_pixel_indices
from drreg.drr import DRR
from drreg.geometry import RigidTransform
from drreg.losses import SimilarityLoss, gather_pixels, loss_from_name, sample_patch_indices

__all__ = [
    "SPARSE_LOSSES",
    "PATCH_LOSSES",
    "resolve_loss",
    "check_pixel_subset",
    "draw_pixel_indices",
    "downsample_targets",
    "registration_loss",
]

SPARSE_LOSSES: tuple[str, ...] = ("ncc", "mse")
"""Loss names that compare scattered pixels: used with uniformly drawn subsets."""

PATCH_LOSSES: tuple[str, ...] = ("patch_ncc",)
"""Loss names that compare square patches: used with randomly placed patches (the loss's ``patch_size``)."""


def resolve_loss(loss: SimilarityLoss | str, p_subsample: float | None) -> SimilarityLoss:
    """The loss a registration optimises, checked against the pixels it will see.

    Args:
        loss: a :class:`~drreg.losses.SimilarityLoss`, or a short name of :data:`drreg.losses.LOSSES`
            (``"ncc"``, ``"mse"``, ``"multiscale_ncc"``, ``"gradient_ncc"``; ``"patch_ncc"`` needs its
            ``patch_size``, so give it as ``PatchNCCLoss(patch_size=...)``).
        p_subsample: the fraction of pixels rendered per step, ``None`` for whole images.

    Returns:
        The loss module.

    Raises:
        ValueError: an unknown name, ``"patch_ncc"`` by name, or a dense-only loss with ``p_subsample``.
    """
    if isinstance(loss, str):
        if loss in PATCH_LOSSES:
            raise ValueError(
                f"loss {loss!r} needs a patch_size: give the class, e.g. loss: {{class_path: "
                "drreg.losses.PatchNCCLoss, init_args: {patch_size: 9}}"
            )
        loss = loss_from_name(loss)
    if p_subsample is not None and not getattr(loss, "sparse", False):
        raise ValueError(
            f"loss {type(loss).__name__} needs whole images (p_subsample=None); pixel subsets work with the "
            "sparse losses (MSELoss, NCCLoss, and PatchNCCLoss on whole patches)"
        )
    return loss


def check_pixel_subset(height: int, width: int, p_subsample: float | None, patch_size: int | None = None) -> int:
    """Check that a pixel draw is possible and say how many pixels it renders.

    Args:
        height: detector rows ``H``.
        width: detector columns ``W``.
        p_subsample: fraction of the pixels to render, or ``None`` for the whole image.
        patch_size: side of the square patches drawn instead of scattered pixels, or ``None``.

    Returns:
        The number of pixels drawn: ``H * W`` for whole images, ``int(p * H * W)`` scattered pixels, or
        ``max(1, round(p * H * W / patch_size²))`` patches of ``patch_size²`` pixels.

    Raises:
        ValueError: ``p_subsample`` outside (0, 1], a subset with no pixel, a patch larger than the detector.
    """
    p_subsample = check_number(p_subsample, "p_subsample", positive=True, maximum=1.0, allow_none=True)
    height, width = check_integer(height, "height", minimum=1), check_integer(width, "width", minimum=1)
    patch_size = check_integer(patch_size, "patch_size", minimum=1, allow_none=True)
    n_pixels = height * width
    if p_subsample is None:
        return n_pixels
    if patch_size is not None:
        if patch_size > min(height, width):
            raise ValueError(f"patch_size={patch_size} does not fit a {height}x{width} detector")
        return max(1, round(p_subsample * n_pixels / patch_size**2)) * patch_size**2
    n = int(n_pixels * p_subsample)
    if n < 1:
        raise ValueError(
            f"p_subsample={p_subsample} selects no pixel of a {height}x{width} detector (empty pixel subset); "
            "raise p_subsample or use a larger detector scale"
        )
    return n


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
        p_subsample: fraction of the detector's pixels to render, or ``None`` for the whole image.
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
    n = check_pixel_subset(height, width, p_subsample, patch_size)
    if p_subsample is None:
        return None
    if patch_size is not None:
        n_patches = n // patch_size**2
        return sample_patch_indices(height, width, patch_size, n_patches, generator=generator, device=device)
    return sample_pixel_indices(height * width, n, generator=generator, device=device)


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
        loss: ``loss(pred, target) -> (B,)`` accepting (B, 1, H, W) or (B, 1, n), e.g. :class:`drreg.losses.NCCLoss`.
        indices: (n,) row-major pixel indices to compare (:func:`draw_pixel_indices`), or ``None`` for all.

    Returns:
        (B,) losses, differentiable with respect to ``pose``.
    """
    if indices is None:
        return loss(drr(pose).reshape(targets.shape), targets)  # reshape=False renders (B, 1, H*W)
    prediction = drr(pose, indices=indices)
    if prediction.dim() == 4:  # a DRR built with reshape=True scattered the pixels back: gather them again
        prediction = gather_pixels(prediction, indices)
    return loss(prediction, gather_pixels(targets, indices))
