"""Independent oracles for the physics tests: xraydb called directly, NIST figures typed from the tables, and small
CT subjects with a known geometry. Nothing here calls drreg.physics."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torchio
import xraydb

from drreg import read

# ICRU Report 44 compositions as NIST tabulates them (mass fractions), and their nominal densities (g/cm³).
ICRU44_SOFT_TISSUE = {
    "H": 0.102,
    "C": 0.143,
    "N": 0.034,
    "O": 0.708,
    "Na": 0.002,
    "P": 0.003,
    "S": 0.003,
    "Cl": 0.002,
    "K": 0.003,
}
ICRU44_CORTICAL_BONE = {
    "H": 0.034,
    "C": 0.155,
    "N": 0.042,
    "O": 0.435,
    "Na": 0.001,
    "Mg": 0.002,
    "P": 0.103,
    "S": 0.003,
    "Ca": 0.225,
}
DRY_AIR = {"C": 0.000124, "N": 0.755268, "O": 0.231781, "Ar": 0.012827}
WATER = {"H": 0.111894, "O": 0.888106}  # NIST "Water, liquid"
AIR_DENSITY = 0.001205  # g/cm³

# NIST XCOM, water, total attenuation with coherent scattering (cm²/g).
XCOM_WATER = {20.0: 0.8096, 40.0: 0.2683, 60.0: 0.2059, 100.0: 0.1707}
# NIST (Hubbell & Seltzer), dry air near sea level, mass energy-absorption coefficient μ_en/ρ (cm²/g).
NIST_AIR_MU_EN = {30.0: 0.1505, 40.0: 0.06947, 50.0: 0.04223, 60.0: 0.03041, 80.0: 0.02407, 100.0: 0.02325}

# The AP view of the tests: camera at 850 mm along world y, detector 1020 mm from the source.
AP_POSE = (torch.zeros(1, 3), torch.tensor([[0.0, 850.0, 0.0]]))
AP_KWARGS: dict[str, Any] = {"parameterization": "euler_angles", "convention": "ZXY"}


def xraydb_mu(composition: dict[str, float], energies_kev: np.ndarray, kind: str = "total") -> np.ndarray:
    """Mixture-rule mass attenuation (cm²/g) straight from xraydb's Elam tables."""
    energies_ev = np.asarray(energies_kev, dtype=np.float64) * 1000.0
    mu = np.zeros_like(energies_ev)
    for symbol, w in composition.items():
        mu += w * np.asarray(xraydb.mu_elam(symbol, energies_ev, kind=kind))
    return mu


def slab_subject(
    hu_slab: float, slab_voxels: int, air_voxels: int = 2, spacing_mm: float = 5.0, side: int = 6
) -> tuple[torchio.Subject, float, float]:
    """A CT of air with a slab of ``hu_slab`` across world y, ``slab_voxels`` thick.

    The central pixel of an odd detector at :data:`AP_POSE` sees the slab along y, perpendicularly.

    Returns:
        the subject, the slab thickness (mm) and the air thickness a ray along y crosses (mm).
    """
    hu = torch.full((side, slab_voxels + 2 * air_voxels, side), -1000.0)
    hu[:, air_voxels : air_voxels + slab_voxels] = hu_slab
    hu[0, 0, 0] = 40.0  # one soft-tissue voxel in a corner, off the central ray: drreg.read checks the HU scale by it
    affine = torch.diag(torch.tensor([spacing_mm, spacing_mm, spacing_mm, 1.0], dtype=torch.float64))
    return read(hu, affine=affine), slab_voxels * spacing_mm, 2 * air_voxels * spacing_mm
