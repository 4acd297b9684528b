"""Energy-resolved attenuation from xraydb's tables (Elam, Ravel & Sieber 2002; no hand-typed coefficients).

A material's mass attenuation coefficient is the mass-fraction mixture of its elements' (the mixture rule of NIST's
XCOM): ``μ/ρ(E) = Σ_i w_i (μ/ρ)_i(E)``. The linear attenuation of a voxel is that times its mass density.

Convention: energies in keV, mass attenuation in cm²/g, densities in g/cm³, lengths in mm where stated.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from drreg.physics.materials import MATERIALS, Material

__all__ = [
    "mass_attenuation",
    "attenuation_table",
    "transmission",
    "air_kerma_weights",
    "klein_nishina_transfer_fraction",
]

_ELECTRON_REST_KEV = 510.99895


def _xraydb() -> Any:
    try:
        import xraydb
    except ImportError as error:  # pragma: no cover - xraydb is a core dependency
        raise ImportError("drreg.physics needs xraydb: pip install xraydb") from error
    return xraydb


def _material(material: str | Material) -> Material:
    if isinstance(material, Material):
        return material
    if material not in MATERIALS:
        raise ValueError(f"unknown material {material!r}; known: {', '.join(MATERIALS)} (or pass a Material)")
    return MATERIALS[material]


@lru_cache(maxsize=4096)  # elements x energy grids: randomised kVp builds many grids
def _element_table(symbol: str, energies_kev: tuple[float, ...], kind: str) -> np.ndarray:
    return np.asarray(_xraydb().mu_elam(symbol, np.asarray(energies_kev) * 1000.0, kind=kind), dtype=np.float64)


def _energies(energies_kev: torch.Tensor | Sequence[float]) -> tuple[float, ...]:
    values = torch.as_tensor(energies_kev, dtype=torch.float64).flatten()
    if values.numel() == 0 or not bool(torch.isfinite(values).all()) or float(values.min()) < 1.0:
        raise ValueError(f"energies_kev must be finite photon energies >= 1 keV, got {values.tolist()[:8]}")
    return tuple(values.tolist())


def mass_attenuation(
    material: str | Material, energies_kev: torch.Tensor | Sequence[float], kind: str = "total"
) -> torch.Tensor:
    """Mass attenuation coefficient of a material at photon energies (xraydb's Elam tables, mixture rule).

    Args:
        material: a name of :data:`drreg.physics.MATERIALS` or a :class:`Material`.
        energies_kev: ``(E,)`` photon energies (keV, >= 1).
        kind: ``"total"`` (photoabsorption + coherent + incoherent), ``"photo"``, ``"coh"`` or ``"incoh"``.

    Returns:
        ``(E,)`` float64 cm²/g.

    Example:
        >>> round(float(mass_attenuation("water", [60.0])[0]), 3)  # NIST XCOM: 0.2059 cm²/g
        0.206
    """
    if kind not in ("total", "photo", "coh", "incoh"):
        raise ValueError(f"kind must be 'total', 'photo', 'coh' or 'incoh', got {kind!r}")
    spec = _material(material)
    energies = _energies(energies_kev)
    mu = sum(w * _element_table(symbol, energies, kind) for symbol, w in spec.composition.items())
    return torch.as_tensor(mu, dtype=torch.float64)


def attenuation_table(
    materials: Sequence[str | Material], energies_kev: torch.Tensor | Sequence[float]
) -> torch.Tensor:
    """Mass attenuation of several materials: the ``(M, E)`` matrix of the polychromatic forward model.

    Args:
        materials: ``M`` names or :class:`Material`.
        energies_kev: ``(E,)`` energies (keV).

    Returns:
        ``(M, E)`` float64 cm²/g.
    """
    return torch.stack([mass_attenuation(m, energies_kev) for m in materials])


def klein_nishina_transfer_fraction(energies_kev: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Mean fraction of a photon's energy given to the electron in a Compton (Klein-Nishina) scattering.

    ``σ_tr / σ_KN`` per electron (Attix, *Introduction to Radiological Physics*, eqs. 7.16 and 7.18), with
    ``k = E / m_e c²``: ~0.08 at 50 keV, ~0.14 at 100 keV, ~0.44 at 1 MeV.

    Args:
        energies_kev: ``(E,)`` photon energies (keV).

    Returns:
        ``(E,)`` float64 fractions in ``(0, 1)``.

    Example:
        >>> klein_nishina_transfer_fraction([1000.0]).round(decimals=2)
        tensor([0.4400], dtype=torch.float64)
    """
    k = torch.as_tensor(energies_kev, dtype=torch.float64) / _ELECTRON_REST_KEV
    a = 1.0 + 2.0 * k
    log_a = torch.log(a)
    sigma = (1 + k) / k**2 * (2 * (1 + k) / a - log_a / k) + log_a / (2 * k) - (1 + 3 * k) / a**2
    sigma_tr = (
        2 * (1 + k) ** 2 / (k**2 * a)
        - (1 + 3 * k) / a**2
        - (1 + k) * (2 * k**2 - 2 * k - 1) / (k**2 * a**2)
        - 4 * k**2 / (3 * a**3)
        - ((1 + k) / k**3 - 1 / (2 * k) + 1 / (2 * k**3)) * log_a
    )
    return sigma_tr / sigma


def air_kerma_weights(energies_kev: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Air kerma per photon at each energy, up to a constant: ``E · μ_tr/ρ(air)`` (keV·cm²/g).

    ``μ_tr/ρ ≈ μ_photo/ρ + f_KN(E) · μ_incoh/ρ``: photoabsorption deposits the whole energy in air (its
    fluorescence escapes are negligible, Z ≤ 18) and Compton scattering the Klein-Nishina fraction
    (:func:`klein_nishina_transfer_fraction`). Used for half-value layers, which are defined by air kerma.

    Args:
        energies_kev: ``(E,)`` energies (keV).

    Returns:
        ``(E,)`` float64.
    """
    energies = torch.as_tensor(energies_kev, dtype=torch.float64)
    photo = mass_attenuation("air", energies, kind="photo")
    incoh = mass_attenuation("air", energies, kind="incoh")
    return energies * (photo + klein_nishina_transfer_fraction(energies) * incoh)


def transmission(
    material: str | Material, thickness_mm: float, energies_kev: torch.Tensor | Sequence[float]
) -> torch.Tensor:
    """``exp(-μ/ρ(E) · ρ · t)`` of a slab of the material at its nominal density.

    Args:
        material: name or :class:`Material`.
        thickness_mm: slab thickness (mm).
        energies_kev: ``(E,)`` energies (keV).

    Returns:
        ``(E,)`` float64 fractions.
    """
    spec = _material(material)
    return torch.exp(-mass_attenuation(spec, energies_kev) * spec.density * (thickness_mm / 10.0))
