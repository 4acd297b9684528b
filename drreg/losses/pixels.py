"""Sparse pixel sets: draw whole square patches (:func:`sample_patch_indices`) and read images at pixel indices
(:func:`gather_pixels`), the (B, C, n) inputs of the sparse losses.
"""

from __future__ import annotations

import torch

from drreg._checks import check_tensor
from drreg.losses._checks import check_patch_fits, check_patch_size, format_shape


def sample_patch_indices(
    height: int,
    width: int,
    patch_size: int,
    n_patches: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw whole square patches at random and list their pixels, patch-major.

    Args:
        height: image rows ``H``.
        width: image columns ``W``.
        patch_size: patch side ``p`` (pixels), at most ``min(H, W)``.
        n_patches: number of patches ``P``.
        generator: optional CPU ``torch.Generator`` for reproducible draws.
        device: device of the result (drawn on the CPU, then moved).

    Returns:
        (P * p²,) int64 row-major pixel indices ``r * W + c``: patch after patch, each patch's pixels row-major;
        top-left corners uniform over the ``(H - p + 1)(W - p + 1)`` positions that keep the patch inside the
        image. Patches are drawn independently and may overlap.

    Raises:
        ValueError: a size is not a positive integer, or the patch does not fit in the image.

    Convention: feed the result to ``drr(pose, indices=..., ...)`` with ``reshape=False`` and to
    :func:`gather_pixels` for the target, then call :func:`~drreg.losses.patch_ncc` with the same ``patch_size``.

    Example:
        >>> sample_patch_indices(4, 5, 2, 1, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4])
    """
    for name, value in (("height", height), ("width", width), ("n_patches", n_patches)):
        check_patch_size(value, name)
    patch_size = check_patch_size(patch_size)
    check_patch_fits(patch_size, height, width)
    rows = torch.randint(0, height - patch_size + 1, (n_patches, 1, 1), generator=generator)
    cols = torch.randint(0, width - patch_size + 1, (n_patches, 1, 1), generator=generator)
    offsets = torch.arange(patch_size)
    indices = (rows + offsets[None, :, None]) * width + (cols + offsets[None, None, :])
    return indices.reshape(-1).to(device)


def gather_pixels(image: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Read the pixels of images at row-major indices.

    Args:
        image: (B, C, H, W) images.
        indices: (n,) row-major pixel indices ``r * W + c`` shared by the batch, or (B, n) (or (1, n)) per
            element; integer dtype, in ``[0, H * W)``.

    Returns:
        (B, C, n) pixel values, in the order of ``indices`` (differentiable with respect to ``image``).

    Raises:
        TypeError: ``image`` is not a tensor or ``indices`` not an integer tensor.
        ValueError: wrong shapes, indices out of range, different devices, empty ``indices``.

    Example:
        >>> gather_pixels(torch.arange(6.0).reshape(1, 1, 2, 3), torch.tensor([5, 0]))
        tensor([[[5., 0.]]])
    """
    check_tensor(image, "image")
    check_tensor(indices, "indices")
    if image.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got {format_shape(image.shape)}")
    batch, channels, height, width = image.shape
    if indices.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"indices must be an integer tensor of pixel indices, got {indices.dtype}")
    if indices.dim() not in (1, 2) or (indices.dim() == 2 and indices.shape[0] not in (1, batch)):
        raise ValueError(f"indices must be (n,) or (B, n) with B = {batch}, got {format_shape(indices.shape)}")
    if indices.shape[-1] == 0:
        raise ValueError("indices is empty: select at least one pixel")
    if indices.device != image.device:
        raise ValueError(f"indices is on {indices.device} but image is on {image.device}")
    if int(indices.min()) < 0 or int(indices.max()) >= height * width:
        raise ValueError(f"indices must lie in [0, {height * width}) for a {height} x {width} image")
    indices = indices.long()
    if indices.dim() == 1:
        return image.flatten(2)[:, :, indices]
    index = indices[:, None, :].expand(batch, channels, -1)
    return image.flatten(2).gather(2, index)
