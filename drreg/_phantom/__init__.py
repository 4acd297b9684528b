"""A synthetic adult chest CT generated in code: the example volume of :func:`drreg.volume.load_example_ct`.

Everything is analytic (ellipsoids, superellipses, tubes along polylines, plates on the rib-cage surface),
evaluated in float32 numpy inside each structure's bounding box, then painted in anatomical order
(later structures overwrite earlier ones). Deterministic: the only randomness (vessel tree, noise) comes
from a seeded ``numpy.random.Generator``.

Convention: world frame RAS+ in mm (x toward the patient's right, y anterior, z superior); the grid is
centred on the origin with a diagonal affine, so voxel ``(i, j, k)`` sits at ``spacing * (index - (shape - 1) / 2)``.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from drreg._phantom.anatomy import HU_AIR, LABEL_IDS, STRUCTURES, vertebra_levels
from drreg._phantom.painters import (
    paint_abdomen,
    paint_body,
    paint_clavicles,
    paint_heart,
    paint_lungs,
    paint_muscles,
    paint_pulmonary_vessels,
    paint_ribs,
    paint_scapulae,
    paint_spinal_canal,
    paint_spine,
    paint_sternum,
    paint_vessels_and_airways,
)
from drreg._phantom.raster import GRID_SHAPE, SPACING, Canvas, Tubes

__all__ = ["make_chest_phantom", "chest_phantom_arrays", "GRID_SHAPE", "SPACING", "SEED", "STRUCTURES"]

SEED = 20240607
"""Seed of the example phantom's ``numpy.random.Generator``."""


def make_chest_phantom(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Generate the synthetic chest CT.

    Args:
        seed: seed of the ``numpy.random.Generator`` behind the vessel tree, textures and noise.

    Returns:
        ``hu``: int16 ``(360, 280, 140)`` Hounsfield units; ``labels``: uint8, same shape, one id per structure
        (0 is unlabelled tissue and air); ``affine``: float64 ``(4, 4)`` diagonal RAS+ voxel-to-world matrix
        (1.0 x 1.0 x 2.5 mm, grid centred on the origin); ``structures``: ``pandas.DataFrame`` with columns
        ``group, structure, id`` (ids 1..N, contiguous).
    """
    rng = np.random.default_rng(seed)
    cv = Canvas(HU_AIR)
    tubes = Tubes(cv)
    levels = vertebra_levels()
    shape = paint_body(cv)
    paint_lungs(cv, rng)
    paint_abdomen(cv, shape["wall"])
    paint_heart(cv)
    paint_vessels_and_airways(tubes)
    paint_pulmonary_vessels(cv, tubes, rng)
    paint_muscles(cv, shape["level"])
    paint_spine(cv, levels)
    paint_spinal_canal(tubes, levels)
    paint_ribs(cv, tubes, levels)
    paint_sternum(cv)
    paint_clavicles(tubes)
    paint_scapulae(cv, tubes)

    # Light noise. Drawing 14M normals dominates the build time, so draw a quarter of the slices and reuse
    # them flipped in-plane (no visible pattern, 4x cheaper).
    quarter = rng.standard_normal((*GRID_SHAPE[:2], -(-GRID_SHAPE[2] // 4)), dtype=np.float32) * np.float32(12.0)
    noise = np.concatenate([quarter, quarter[::-1], quarter[:, ::-1], quarter[::-1, ::-1]], axis=2)
    cv.hu += noise[:, :, : GRID_SHAPE[2]]
    hu = np.clip(np.rint(cv.hu), -1024, 3071).astype(np.int16)
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = -(np.array(GRID_SHAPE) - 1) / 2.0 * np.array(SPACING)
    structures = pd.DataFrame(
        {"group": [g for g, _ in STRUCTURES], "structure": [s for _, s in STRUCTURES], "id": list(LABEL_IDS.values())}
    )
    return hu, cv.lab, affine, structures


@functools.lru_cache(maxsize=1)
def chest_phantom_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """:func:`make_chest_phantom` with the default seed, built once per process; the arrays are read-only.

    Returns:
        ``(hu, labels, affine, structures)`` as :func:`make_chest_phantom` returns them; copy them before writing.
    """
    hu, labels, affine, structures = make_chest_phantom()
    for array in (hu, labels, affine):
        array.flags.writeable = False
    return hu, labels, affine, structures
