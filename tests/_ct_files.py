"""Small real CT files for the file-check tests: written by SimpleITK or nibabel, then damaged as downloads and
copies damage them (cut short)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE_ZYX = (12, 20, 16)  # slices, rows, columns: a small CT that still compresses like one


def hu_volume(shape_zyx: tuple[int, int, int] = SHAPE_ZYX) -> np.ndarray:
    """A smooth int16 CT-like volume (z, y, x): soft tissue with a bone-like band, no constant runs."""
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape_zyx), indexing="ij")
    hu = 40.0 + 300.0 * np.sin(x / 3.0) * np.cos(y / 4.0) + 25.0 * z
    hu[:, :, : shape_zyx[2] // 4] = 900.0 + 5.0 * y[:, :, : shape_zyx[2] // 4]
    return hu.astype(np.int16)


def sitk_image(shape_zyx: tuple[int, int, int] = SHAPE_ZYX) -> sitk.Image:
    """The volume of :func:`hu_volume` as a SimpleITK image with 1 x 1.5 x 2.5 mm voxels."""
    image = sitk.GetImageFromArray(hu_volume(shape_zyx))
    image.SetSpacing((1.0, 1.5, 2.5))
    return image


def cut(path: Path, keep: float | int) -> Path:
    """Cut ``path`` in place to ``keep`` bytes (an int) or that fraction of its size (a float)."""
    data = path.read_bytes()
    size = keep if isinstance(keep, int) else int(len(data) * keep)
    path.write_bytes(data[:size])
    return path
