"""Random volumes and lines for the tests of the fused CPU path (numba kernels, custom ops, ``render`` dispatch).

The grid is 19 voxels long in x so that the density gradient is accumulated over three x-slabs of the numba
kernels (``_SLAB_WIDTH = 8``: 8 + 8 + 3 planes), and some rays cross the slab boundaries.
"""

from __future__ import annotations

import torch

__all__ = ["SHAPE", "N_RAYS", "N_POINTS", "N_CHANNELS", "rays", "volume"]

SHAPE = (19, 6, 5)
N_RAYS = 24
N_POINTS = 40
N_CHANNELS = 3


def rays(seed: int, dtype: torch.dtype = torch.float32, shape=SHAPE, n_rays: int = N_RAYS):
    """Random lines around the grid: most cross it, one starts inside, one misses, three are axis-aligned."""
    generator = torch.Generator().manual_seed(seed)
    centre = torch.tensor(shape, dtype=torch.float64) / 2 - 0.5
    scale = torch.tensor(shape, dtype=torch.float64)
    source = centre + torch.randn(n_rays, 3, generator=generator, dtype=torch.float64) * scale
    target = centre + torch.randn(n_rays, 3, generator=generator, dtype=torch.float64) * scale / 2
    source[0] = centre + torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64)  # source inside the volume
    source[1], target[1] = torch.tensor([40.0, 20.0, 20.0]), torch.tensor([50.0, 22.0, 21.0])  # misses the volume
    source[2], target[2] = torch.tensor([2.2, -9.0, 1.3]), torch.tensor([2.2, 9.0, 1.3])  # along y (d_x = 1e-8)
    # Along x through every slab. (Not from -9 to 30: with 40 samples over [0, 1] every sample would sit on a voxel
    # centre, a kink of the trilinear interpolant where the one-sided gradient depends on the last bit of rounding.)
    source[3], target[3] = torch.tensor([-9.3, 2.3, 1.6]), torch.tensor([30.1, 2.3, 1.6])
    source[4], target[4] = torch.tensor([7.9, 1.1, -5.0]), torch.tensor([8.3, 3.7, 9.0])  # across a slab boundary
    return source.to(dtype), target.to(dtype)


def volume(seed: int, shape=SHAPE) -> tuple[torch.Tensor, torch.Tensor]:
    """Random density in [0, 1) and labels in [0, N_CHANNELS)."""
    generator = torch.Generator().manual_seed(seed)
    density = torch.rand(shape, generator=generator)
    labels = torch.randint(0, N_CHANNELS, shape, generator=generator)
    return density, labels
