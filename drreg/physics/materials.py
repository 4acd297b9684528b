"""Materials of a CT: compositions, Hounsfield units to mass density, hard and soft decomposition.

A CT voxel holds one number (HU); an X-ray image depends on what the voxel is made of. The forward model of
:mod:`drreg.physics` splits the CT into a few materials, each with an elemental composition (mass fractions)
whose attenuation comes from xraydb's tables (:mod:`drreg.physics.attenuation`), and a mass density per voxel.

Compositions are ICRU Report 44 (1989) tissues, as tabulated by NIST (Hubbell & Seltzer, NISTIR 5632): facts,
not code. Convention: mass fractions sum to one; densities are g/cm³; thresholds are HU, half-open intervals
``[lower, upper)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from drreg._checks import check_finite, check_number, check_tensor

__all__ = [
    "Material",
    "MATERIALS",
    "DEFAULT_MATERIALS",
    "DEFAULT_THRESHOLDS_HU",
    "hu_to_mass_density",
    "material_labels",
    "material_weights",
]


@dataclass(frozen=True)
class Material:
    """A material by its elemental mass fractions and nominal density.

    Attributes:
        name: short name (a key of :data:`MATERIALS`).
        composition: element symbol -> mass fraction (sums to 1).
        density: nominal mass density (g/cm³): the density of a voxel of this material when the CT cannot tell
            (metal, whose HU saturate) and the density of a slab in the validation tests.
        source: where the composition comes from.
    """

    name: str
    composition: Mapping[str, float]
    density: float
    source: str


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material(
            "air",
            {"C": 0.000124, "N": 0.755268, "O": 0.231781, "Ar": 0.012827},
            0.001205,
            "dry air near sea level (NIST)",
        ),
        Material(
            "lung",
            {
                "H": 0.103,
                "C": 0.105,
                "N": 0.031,
                "O": 0.749,
                "Na": 0.002,
                "P": 0.002,
                "S": 0.003,
                "Cl": 0.003,
                "K": 0.002,
            },
            1.05,
            "ICRU-44 lung tissue (NIST); inflated lung is ~0.26 g/cm³, which the HU give",
        ),  # fmt: skip
        Material(
            "soft_tissue",
            {
                "H": 0.102,
                "C": 0.143,
                "N": 0.034,
                "O": 0.708,
                "Na": 0.002,
                "P": 0.003,
                "S": 0.003,
                "Cl": 0.002,
                "K": 0.003,
            },
            1.06,
            "ICRU-44 soft tissue (NIST)",
        ),  # fmt: skip
        Material(
            "bone",
            {
                "H": 0.034,
                "C": 0.155,
                "N": 0.042,
                "O": 0.435,
                "Na": 0.001,
                "Mg": 0.002,
                "P": 0.103,
                "S": 0.003,
                "Ca": 0.225,
            },
            1.92,
            "ICRU-44 cortical bone (NIST)",
        ),  # fmt: skip
        Material("water", {"H": 0.111894, "O": 0.888106}, 1.0, "H2O"),
        Material("aluminum", {"Al": 1.0}, 2.699, "element (filtration, HVL)"),
        Material("copper", {"Cu": 1.0}, 8.96, "element (filtration)"),
        Material("titanium", {"Ti": 1.0}, 4.506, "element (implants)"),
        Material("iron", {"Fe": 1.0}, 7.874, "element (steel implants)"),
        Material("csi", {"Cs": 0.511549, "I": 0.488451}, 4.51, "CsI scintillator (detector)"),
    )
}
"""The materials drreg knows, by name. Add one with ``MATERIALS[name] = Material(...)``."""

DEFAULT_MATERIALS = ("air", "lung", "soft_tissue", "bone")
"""The CT decomposition of :class:`drreg.physics.PhysicsDRR` (``"titanium"`` is appended for metal)."""

DEFAULT_THRESHOLDS_HU = (-950.0, -400.0, 350.0)
"""HU boundaries between consecutive :data:`DEFAULT_MATERIALS`: air | lung | soft tissue | bone (bone as DeepDRR's
thresholding and :data:`drreg.volume.BONE_HU`: above 350 HU)."""

_BONE_SLOPE = (1.92 - 1.0) / 1500.0  # water (0 HU, 1 g/cm³) to cortical bone (~1500 HU, 1.92 g/cm³)


def hu_to_mass_density(hu: torch.Tensor) -> torch.Tensor:
    """Mass density (g/cm³) of CT voxels: a two-segment calibration line through air, water and cortical bone.

    ``ρ = 1 + HU / 1000`` up to 0 HU (air -1000 HU to water), ``ρ = 1 + 0.000613 · HU`` above it (cortical bone
    ~1500 HU at 1.92 g/cm³), never below air's 0.0012. Continuous, so it is differentiable almost everywhere.

    Args:
        hu: ``(*)`` Hounsfield units.

    Returns:
        ``(*)`` g/cm³, same dtype (float32 for an integer CT).

    Example:
        >>> [round(x, 4) for x in hu_to_mass_density(torch.tensor([-1000.0, 0.0, 1500.0])).tolist()]  # air, water, bone
        [0.0012, 1.0, 1.92]
    """
    hu = check_tensor(hu, "hu")
    hu = hu if hu.is_floating_point() else hu.float()
    density = torch.where(hu <= 0, 1.0 + hu / 1000.0, 1.0 + _BONE_SLOPE * hu)
    return density.clamp_min(MATERIALS["air"].density)


def _check_thresholds(thresholds: Sequence[float], n_materials: int) -> list[float]:
    values = [check_number(t, "thresholds") for t in thresholds]
    if len(values) != n_materials - 1 or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(
            f"thresholds must be {n_materials - 1} increasing HU boundaries between {n_materials} materials, got "
            f"{list(thresholds)}"
        )
    return values


def material_labels(
    hu: torch.Tensor,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS_HU,
    metal_threshold: float | None = None,
) -> torch.Tensor:
    """Hard decomposition: the material index of each voxel, by HU thresholds (as DeepDRR's thresholding).

    Args:
        hu: ``(*)`` Hounsfield units.
        thresholds: ``M - 1`` increasing HU boundaries; material ``m`` is ``thresholds[m-1] <= HU < thresholds[m]``.
        metal_threshold: HU at or above which a voxel is metal, index ``M`` (one more material), or None.

    Returns:
        ``(*)`` int64 indices in ``[0, M]`` (``[0, M - 1]`` without metal).

    Example:
        >>> material_labels(torch.tensor([-1000.0, -700.0, 40.0, 900.0, 3500.0]), metal_threshold=3000.0)
        tensor([0, 1, 2, 3, 4])
    """
    hu = check_tensor(hu, "hu")
    bounds = torch.tensor(_check_thresholds(thresholds, len(thresholds) + 1), dtype=torch.float64, device=hu.device)
    labels = torch.bucketize(hu.to(torch.float64).contiguous(), bounds, right=True)  # bucketize warns on strides
    if metal_threshold is not None:
        metal_threshold = check_number(metal_threshold, "metal_threshold")
        if metal_threshold <= bounds[-1]:
            raise ValueError(
                f"metal_threshold must be above the last threshold {float(bounds[-1])} HU, got {metal_threshold}"
            )
        labels = torch.where(hu >= metal_threshold, len(bounds) + 1, labels)
    return labels


def material_weights(
    hu: torch.Tensor,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS_HU,
    width_hu: float = 50.0,
) -> torch.Tensor:
    """Soft decomposition: differentiable material fractions of each voxel, a partition of unity.

    ``w_m = σ((HU - t_{m-1}) / width) - σ((HU - t_m) / width)`` with ``σ`` the logistic function, ``t_{-1} = -∞``
    and ``t_M = +∞``: the fractions sum to 1 and tend to :func:`material_labels`' one-hot as ``width_hu -> 0``.

    Args:
        hu: ``(*)`` Hounsfield units (may require grad).
        thresholds: ``M - 1`` increasing HU boundaries.
        width_hu: logistic width (HU), > 0.

    Returns:
        ``(M, *)`` fractions in ``[0, 1]``, dtype of ``hu`` (float32 for an integer CT).

    Example:
        >>> material_weights(torch.tensor([-2000.0, 2000.0]), thresholds=(0.0,), width_hu=10.0).round(decimals=3)
        tensor([[1., 0.],
                [0., 1.]])
    """
    hu = check_tensor(hu, "hu")
    hu = hu if hu.is_floating_point() else hu.float()
    check_finite(hu, "hu")
    width_hu = check_number(width_hu, "width_hu", positive=True)
    bounds = _check_thresholds(thresholds, len(thresholds) + 1)
    above = torch.stack([torch.sigmoid((hu - t) / width_hu) for t in bounds])  # (M - 1, *): P(HU > t_m)
    ones = torch.ones_like(hu)[None]
    upper = torch.cat([ones, above])  # P(HU > t_{m-1})
    lower = torch.cat([above, torch.zeros_like(ones)])  # P(HU > t_m)
    return upper - lower
