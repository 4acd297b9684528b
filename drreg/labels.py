"""Label ids of a labelmap: whole numbers >= 0 (0 the background), few enough to render one channel per id.

:func:`drreg.read` checks a labelmap's ids (:func:`check_label_ids`); ``DRR(...)(..., mask_to_channels=True)``,
which renders channel ``k`` from the voxels of id ``k``, also bounds their number (:func:`label_channels`, issue 10).
"""

from __future__ import annotations

import torch

from drreg._checks import check_finite, check_tensor

__all__ = ["MAX_LABEL_ID", "check_label_ids", "label_channels"]

MAX_LABEL_ID = 65_535
"""Largest label id that one-channel-per-label rendering (``mask_to_channels``) accepts.

Channel ``k`` holds label id ``k``, so id ``k`` needs ``k + 1`` channels (4 bytes each per pixel in float32).
65535 is the 16-bit range, which every atlas in common use fits in (FreeSurfer's colour table ends at 14175);
larger ids are instance or hashed ids, to relabel to consecutive ones (see :func:`label_channels`).
"""


def check_label_ids(labels: torch.Tensor, name: str) -> int:
    """The largest id in ``labels`` (0 if empty), whole numbers >= 0.

    Args:
        labels: ``(*)`` label ids, integers or whole-valued floats.
        name: what ``labels`` is, for error messages.

    Raises:
        ValueError: an id is negative, fractional, NaN or infinite.
    """
    if labels.numel() == 0:
        return 0
    if labels.is_floating_point():
        check_finite(labels, name)
        fractional = labels != labels.round()
        if bool(fractional.any()):
            raise ValueError(
                f"{name} must hold integer label ids, got {float(labels[fractional][0]):g} in "
                f"{int(fractional.sum())} voxel(s); was it resampled with linear interpolation? Resample labelmaps "
                "with nearest-neighbour interpolation"
            )
    # torch has no min/max kernels for uint16/uint32; widening only those avoids copying every labelmap.
    values = labels.to(torch.int64) if labels.dtype in (torch.uint16, torch.uint32) else labels
    lowest, highest = (int(value) for value in torch.aminmax(values))
    if lowest < 0:
        count = int((labels < 0).sum())
        guess = " (is it a CT in Hounsfield units rather than a segmentation?)" if lowest <= -500 else ""
        raise ValueError(
            f"{name} must hold label ids >= 0 (0 is the background), got {lowest} in {count} voxel(s){guess}; "
            "relabel the structures to ids 1, 2, ..."
        )
    return highest


def label_channels(labels: torch.Tensor, name: str = "labels", pixels: int | None = None) -> int:
    """Channels that rendering one channel per label id needs: ``max id + 1`` (id 0, the background, included).

    This is ``C`` of ``DRR(...)(..., mask_to_channels=True)``: channel ``k`` holds the voxels of id ``k``, so the
    channels are dense in the ids, and a single voxel of id 10**6 would make a million channels.

    Args:
        labels: ``(*)`` label ids, integers or whole-valued floats.
        name: what ``labels`` is, for error messages.
        pixels: pixels per rendered image, to state the memory of the channels in the error message.

    Returns:
        The channel count ``C = labels.max() + 1``, at most ``MAX_LABEL_ID + 1``.

    Raises:
        ValueError: an id is negative, fractional, NaN or infinite, or above :data:`MAX_LABEL_ID`.

    Example:
        >>> label_channels(torch.tensor([0, 2, 5]))
        6
    """
    check_tensor(labels, name)
    highest = check_label_ids(labels, name)
    if highest > MAX_LABEL_ID:
        per_pixel = (highest + 1) * 4  # float32 bytes of one pixel's channels
        size = f"{per_pixel / 1e6:.3g} MB per pixel in float32"
        if pixels is not None:
            size += f", {per_pixel * pixels / 1e9:.3g} GB per image of {pixels:,} pixels"
        count = int((labels.to(torch.int64) == highest).sum())
        raise ValueError(
            f"{name} must hold label ids <= MAX_LABEL_ID = {MAX_LABEL_ID} to render one channel per id, got "
            f"{highest} in {count} voxel(s): ids 0..{highest} would be {highest + 1:,} channels ({size}). "
            f"{MAX_LABEL_ID} is the 16-bit range, which every atlas fits in; relabel the structures to consecutive "
            "ids 1, 2, ... (0 = background), e.g. ids, new = numpy.unique(labels, return_inverse=True), and keep "
            "the old ids to name the channels"
        )
    return highest + 1
