"""Random pixel subsets of a detector: the one sorted draw that every sparse render uses.

Private to drreg (no public API of its own): the DRR's ``p_subsample``, registration's pixel draws and
pose regression's sparse training images all draw their pixels here, so that one seed gives one subset.
"""

from __future__ import annotations

import torch

__all__ = ["sample_pixel_indices"]


def sample_pixel_indices(
    n_pixels: int,
    n: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``n`` distinct pixels of a detector uniformly at random, in row-major order.

    Args:
        n_pixels: pixels of the detector ``H * W``.
        n: pixels to draw, ``1 <= n <= n_pixels`` (not checked: the callers word their own errors).
        generator: CPU ``torch.Generator`` for reproducible draws.
        device: device of the result (drawn on the CPU, then moved).

    Returns:
        (n,) int64 row-major pixel indices ``r * W + c``, sorted ascending.

    Convention: sorted, so that the rays of a sparse render read the volume in detector order (and a seed gives
    the same subset whatever the device).

    Example:
        >>> sample_pixel_indices(10, 4, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4])
    """
    # randperm holds an int64 per pixel of the detector, however few are kept: callers check the memory first.
    return torch.randperm(n_pixels, generator=generator)[:n].sort().values.to(device)
