"""Small image helpers shared by the preprocessing, the pose-regression data and the figures (private).

Depends on torch only, so that any module may import it without reaching a higher floor.
"""

from __future__ import annotations

import torch

__all__ = ["min_max_rescale"]


def min_max_rescale(images: torch.Tensor, dims: tuple[int, ...] = (-2, -1)) -> torch.Tensor:
    """Min-max rescale images to ``[0, 1]``, each over ``dims``.

    Args:
        images: (*, H, W) floating-point images, e.g. (B, C, H, W).
        dims: the dimensions that make one image: ``(-2, -1)`` rescales each channel on its own, ``(1, 2, 3)``
            each (C, H, W) element of a batch as a whole.

    Returns:
        Images of the same shape and dtype in ``[0, 1]``: ``(x - min) / (max - min)``; a constant image maps
        to zeros.

    Convention: the range is clamped to the dtype's machine epsilon before dividing.

    Example:
        >>> min_max_rescale(torch.tensor([[1.0, 3.0], [2.0, 5.0]]))
        tensor([[0.0000, 0.5000],
                [0.2500, 1.0000]])
    """
    low = images.amin(dim=dims, keepdim=True)
    high = images.amax(dim=dims, keepdim=True)
    # Clamp the range before dividing: a constant image maps to zeros, not NaN.
    return (images - low) / (high - low).clamp_min(torch.finfo(images.dtype).eps)
