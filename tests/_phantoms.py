"""Small structured CT volumes for fast registration and training tests (no file, no download)."""

from __future__ import annotations

import torch
import torchio

from drreg import read

SHAPE = (40, 40, 32)
SPACING = (5.0, 5.0, 6.0)  # mm: a 200 x 200 x 192 mm field of view


def blob_hu(shape: tuple[int, int, int] = SHAPE) -> torch.Tensor:
    """An asymmetric HU volume: a body ellipsoid, an off-centre 'spine', two bone blobs, a lung (any flip shows)."""
    axes = [torch.linspace(-1, 1, n, dtype=torch.float64) for n in shape]
    x, y, z = torch.meshgrid(*axes, indexing="ij")
    hu = torch.full(shape, -1000.0, dtype=torch.float64)
    hu[(x / 0.85) ** 2 + (y / 0.65) ** 2 + (z / 0.95) ** 2 < 1] = 40.0
    hu[((x + 0.35) / 0.3) ** 2 + (y / 0.35) ** 2 + (z / 0.6) ** 2 < 1] = -750.0  # lung
    hu[(x - 0.1) ** 2 + (y + 0.4) ** 2 < 0.02] = 700.0  # spine along z
    hu[(x - 0.45) ** 2 + (y - 0.2) ** 2 + (z - 0.3) ** 2 < 0.03] = 1200.0  # bone blob
    hu[(x + 0.2) ** 2 + (y - 0.35) ** 2 + (z + 0.45) ** 2 < 0.02] = 900.0  # another one
    return hu.to(torch.int16)


def blob_subject(shape: tuple[int, int, int] = SHAPE, spacing: tuple[float, float, float] = SPACING) -> torchio.Subject:
    """:func:`blob_hu` read with a diagonal affine of ``spacing`` mm, centred, AP orientation."""
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    return read(blob_hu(shape), affine=affine)
