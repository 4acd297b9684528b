"""Tiny subjects and DRRs for the fuzz suite: a 12 x 14 x 16 phantom and detectors of at most 6 x 5 pixels.

Each example then costs milliseconds. Built once per process (cached); the tests never modify them.
"""

from __future__ import annotations

import functools

import torch
import torchio

from drreg import DRR, read

SHAPE = (12, 14, 16)  # different sides: an axis mix-up changes the image
SPACING = (2.0, 2.0, 2.5)  # mm
HEIGHT, WIDTH = 6, 5
SDD = 1000.0
DISTANCE = 600.0  # source to the volume's centre (mm)
DELX = 20.0  # the detector spans 120 x 100 mm: the whole volume, magnified 1.7 times, fits
# Where the source goes at zero rotation for each orientation: the camera then looks at the volume's centre.
VIEW_AXIS = {"AP": (0.0, 1.0, 0.0), "PA": (0.0, -1.0, 0.0), None: (0.0, 0.0, -1.0)}


@functools.cache
def hu_and_labels() -> tuple[torch.Tensor, torch.Tensor]:
    """An ellipsoid of soft tissue (40 HU) with a bone core (700 HU) in air (-1000 HU), and its labels 0/1/2."""
    axes = [torch.linspace(-1.0, 1.0, n) for n in SHAPE]
    x, y, z = torch.meshgrid(*axes, indexing="ij")
    radius = (x / 0.9) ** 2 + (y / 0.8) ** 2 + (z / 0.95) ** 2
    labels = torch.zeros(SHAPE, dtype=torch.int64)
    labels[radius < 1.0] = 1
    labels[radius < 0.2] = 2
    hu = torch.tensor([-1000, 40, 700], dtype=torch.int16)[labels]
    return hu, labels


@functools.cache
def subject(orientation: str | None = "AP", labelmap: bool = False) -> torchio.Subject:
    hu, labels = hu_and_labels()
    affine = torch.diag(torch.tensor([*SPACING, 1.0], dtype=torch.float64))
    return read(hu, labelmap=labels if labelmap else None, orientation=orientation, affine=affine)


@functools.cache
def drr(
    renderer: str = "siddon",
    backend: str = "auto",
    orientation: str | None = "AP",
    labelmap: bool = False,
    p_subsample: float | None = None,
    reshape: bool = True,
) -> DRR:
    return DRR(
        subject(orientation, labelmap),
        sdd=SDD,
        height=HEIGHT,
        width=WIDTH,
        delx=DELX,
        renderer=renderer,
        backend=backend,
        p_subsample=p_subsample,
        reshape=reshape,
        n_points=16,
    )


def view_translation(orientation: str | None, distance: float = DISTANCE) -> torch.Tensor:
    """(3,) float64 translation that puts the source ``distance`` mm from the volume, looking at it, at any
    rotation (the translation is expressed before the rotation)."""
    return torch.tensor(VIEW_AXIS[orientation], dtype=torch.float64) * distance
