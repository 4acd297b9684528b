"""X-ray physics: a differentiable polychromatic simulator from CT to raw detector images.

- :mod:`~drreg.physics.materials`: compositions, HU to mass density, hard and soft material decomposition;
- :mod:`~drreg.physics.attenuation`: energy-resolved mass attenuation from xraydb (NIST/Elam tables);
- :mod:`~drreg.physics.spectra`: tube spectra (a committed SpekPy table, or SpekPy), filtration, HVL;
- :mod:`~drreg.physics.detector`: scatter, blur, quantum noise, heel effect, collimation;
- :mod:`~drreg.physics.model`: :class:`XRayPhysics` and :class:`PhysicsDRR`.
"""

from drreg.physics.attenuation import (
    air_kerma_weights,
    attenuation_table,
    klein_nishina_transfer_fraction,
    mass_attenuation,
    transmission,
)
from drreg.physics.detector import add_scatter, collimation_mask, gaussian_blur_mm, heel_profile, quantum_noise
from drreg.physics.materials import (
    DEFAULT_MATERIALS,
    DEFAULT_THRESHOLDS_HU,
    MATERIALS,
    Material,
    hu_to_mass_density,
    material_labels,
    material_weights,
)
from drreg.physics.model import DECOMPOSITIONS, DETECTORS, OUTPUTS, PhysicsDRR, XRayPhysics
from drreg.physics.spectra import TABLE_KVP, Spectrum, table_summary, tube_spectrum

__all__ = [
    "Material",
    "MATERIALS",
    "DEFAULT_MATERIALS",
    "DEFAULT_THRESHOLDS_HU",
    "hu_to_mass_density",
    "material_labels",
    "material_weights",
    "mass_attenuation",
    "attenuation_table",
    "transmission",
    "air_kerma_weights",
    "klein_nishina_transfer_fraction",
    "Spectrum",
    "tube_spectrum",
    "table_summary",
    "TABLE_KVP",
    "gaussian_blur_mm",
    "add_scatter",
    "quantum_noise",
    "heel_profile",
    "collimation_mask",
    "XRayPhysics",
    "PhysicsDRR",
    "OUTPUTS",
    "DETECTORS",
    "DECOMPOSITIONS",
]
