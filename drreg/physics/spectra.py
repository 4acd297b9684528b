"""X-ray tube spectra: a committed SpekPy table, SpekPy itself when installed, filtration, HVL and mean energy.

:func:`tube_spectrum` gives the photon fluence per energy bin of a tungsten-anode tube. By default it reads
``drreg/physics/data/spectra.csv`` (SpekPy, 40-150 kVp every 5 kVp, 12° anode, 2.5 mm Al, written by
``scripts/make_spectra.py``); more filtration is applied with xraydb's attenuation, other kVp are interpolated
between the two neighbouring rows. With ``source="spekpy"`` (``pip install drreg[spectra]``), SpekPy computes it.

Convention: energies are bin centres in keV; fluence is photons / (cm² mAs) per bin at 1 m from the focal spot.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from drreg._checks import check_choice, check_number
from drreg.physics.attenuation import air_kerma_weights, transmission
from drreg.physics.materials import Material

__all__ = ["Spectrum", "tube_spectrum", "TABLE_KVP", "TABLE_FILTRATION_MM_AL", "TABLE_ANODE_ANGLE_DEG", "table_summary"]

_DATA = Path(__file__).parent / "data"
TABLE_FILTRATION_MM_AL = 2.5
"""Total aluminium filtration of the committed spectra (mm)."""
TABLE_ANODE_ANGLE_DEG = 12.0
"""Anode angle of the committed spectra (degrees)."""


@dataclass(frozen=True)
class Spectrum:
    """A photon spectrum on energy bins.

    Attributes:
        energies_kev: ``(E,)`` float64 bin centres (keV), increasing.
        fluence: ``(E,)`` float64 photons / (cm² mAs) per bin at 1 m (any common scale works for the forward model,
            which normalises it).
        kvp: tube voltage (kV).
        filtration_mm_al: total filtration in mm Al equivalent (added filters of other materials are in ``filters``).
        filters: extra filters as ``(material name, mm)``.
    """

    energies_kev: torch.Tensor
    fluence: torch.Tensor
    kvp: float
    filtration_mm_al: float = TABLE_FILTRATION_MM_AL
    filters: tuple[tuple[str, float], ...] = ()

    @property
    def probabilities(self) -> torch.Tensor:
        """``(E,)`` the fraction of the photons in each bin (sums to 1)."""
        return self.fluence / self.fluence.sum()

    @property
    def mean_energy_kev(self) -> float:
        """Fluence-weighted mean energy (keV)."""
        return float((self.probabilities * self.energies_kev).sum())

    def filter(self, material: str | Material, thickness_mm: float) -> Spectrum:
        """The spectrum behind a slab of a material (Beer-Lambert at each energy, xraydb attenuation).

        Args:
            material: a name of :data:`drreg.physics.MATERIALS` (``"aluminum"``, ``"copper"``, ...) or a Material.
            thickness_mm: slab thickness (mm, >= 0).
        """
        thickness_mm = check_number(thickness_mm, "thickness_mm", minimum=0.0)
        fluence = self.fluence * transmission(material, thickness_mm, self.energies_kev)
        name = material if isinstance(material, str) else material.name
        if name == "aluminum":
            return Spectrum(self.energies_kev, fluence, self.kvp, self.filtration_mm_al + thickness_mm, self.filters)
        return Spectrum(
            self.energies_kev, fluence, self.kvp, self.filtration_mm_al, self.filters + ((name, thickness_mm),)
        )

    def air_kerma(self) -> torch.Tensor:
        """Air kerma of the spectrum, up to a constant (see :func:`drreg.physics.attenuation.air_kerma_weights`)."""
        return (self.fluence * air_kerma_weights(self.energies_kev)).sum()

    def half_value_layer(self, material: str | Material = "aluminum", tol_mm: float = 1e-6) -> float:
        """First half-value layer: the slab (mm) that halves the air kerma (bisection).

        Example:
            >>> round(tube_spectrum(80).half_value_layer(), 1)  # SpekPy: 2.7 mm Al
            2.7
        """
        target = 0.5 * float(self.air_kerma())
        low, high = 0.0, 1.0
        while float(self.filter(material, high).air_kerma()) > target:
            low, high = high, 2.0 * high
        while high - low > tol_mm:
            mid = 0.5 * (low + high)
            low, high = (mid, high) if float(self.filter(material, mid).air_kerma()) > target else (low, mid)
        return 0.5 * (low + high)

    def rebin(self, step_kev: float) -> Spectrum:
        """Coarser bins of ``step_kev`` (a whole number of the current bins): fewer energies for a faster forward.

        Each new bin sums the photons of the bins it covers and sits at their fluence-weighted mean energy.
        """
        widths = torch.diff(self.energies_kev)
        width = float(widths[0]) if len(widths) else 1.0
        factor = round(check_number(step_kev, "step_kev", positive=True) / width)
        if (
            factor < 1
            or abs(factor * width - step_kev) > 1e-9
            or (len(widths) and not torch.allclose(widths, widths[0]))
        ):
            raise ValueError(f"step_kev must be a whole multiple of the {width} keV bins, got {step_kev}")
        n = -(-len(self.fluence) // factor) * factor
        pad = n - len(self.fluence)
        fluence = torch.nn.functional.pad(self.fluence, (0, pad)).reshape(-1, factor)
        energies = torch.nn.functional.pad(self.energies_kev, (0, pad)).reshape(-1, factor)
        total = fluence.sum(dim=1)
        keep = total > 0
        mean = (fluence * energies).sum(dim=1) / total.clamp_min(1e-300)
        return Spectrum(mean[keep], total[keep], self.kvp, self.filtration_mm_al, self.filters)


@lru_cache(maxsize=1)
def _table() -> dict[float, tuple[np.ndarray, np.ndarray]]:
    rows: dict[float, list[tuple[float, float]]] = {}
    with open(_DATA / "spectra.csv") as file:
        for row in csv.DictReader(line for line in file if not line.startswith("#")):
            rows.setdefault(float(row["kvp"]), []).append((float(row["energy_kev"]), float(row["fluence"])))
    return {kvp: (np.array([e for e, _ in r]), np.array([f for _, f in r])) for kvp, r in rows.items()}


TABLE_KVP: tuple[float, ...] = tuple(range(40, 155, 5))
"""The tube voltages of the committed table (kV)."""


def table_summary() -> dict[float, dict[str, float]]:
    """SpekPy's own figures for the committed spectra, by kVp: ``hvl1_mm_al``, ``mean_energy_kev``, ``fluence``."""
    with open(_DATA / "spectra_summary.csv") as file:
        rows = csv.DictReader(line for line in file if not line.startswith("#"))
        return {float(r["kvp"]): {k: float(v) for k, v in r.items() if k != "kvp"} for r in rows}


def _from_table(kvp: float) -> tuple[np.ndarray, np.ndarray]:
    table = _table()
    if kvp in table:
        return table[kvp]
    kvps = sorted(table)
    upper = next(k for k in kvps if k > kvp)
    lower = max(k for k in kvps if k < kvp)
    energies, high = table[upper]
    low = np.zeros_like(high)
    low[: len(table[lower][1])] = table[lower][1]
    t = (kvp - lower) / (upper - lower)
    fluence = (1 - t) * low + t * high
    fluence[energies > kvp] = 0.0  # no photon above the tube voltage
    return energies, fluence


def _from_spekpy(kvp: float, filtration_mm_al: float, anode_angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    try:
        import spekpy
    except ImportError as error:
        raise ImportError(
            "this spectrum needs SpekPy: pip install 'drreg[spectra]' (or spekpy); without it, tube_spectrum takes "
            f"kvp in [40, 150], anode_angle_deg={TABLE_ANODE_ANGLE_DEG} and filtration_mm_al >= "
            f"{TABLE_FILTRATION_MM_AL}"
        ) from error
    spek = spekpy.Spek(kvp=kvp, th=anode_angle_deg, dk=1.0)
    spek.filter("Al", filtration_mm_al)
    energies, fluence = spek.get_spectrum()
    return np.asarray(energies, dtype=np.float64), np.asarray(fluence, dtype=np.float64)


def tube_spectrum(
    kvp: float,
    filtration_mm_al: float = TABLE_FILTRATION_MM_AL,
    anode_angle_deg: float = TABLE_ANODE_ANGLE_DEG,
    source: str = "auto",
) -> Spectrum:
    """The spectrum of a tungsten-anode X-ray tube, 1 keV bins.

    Args:
        kvp: tube voltage (kV).
        filtration_mm_al: total filtration (mm Al).
        anode_angle_deg: anode angle (degrees).
        source: ``"table"`` (the committed SpekPy table: ``kvp`` in [40, 150], 12° anode, ``filtration_mm_al >= 2.5``;
            the extra aluminium is applied with xraydb, a kVp between rows is interpolated), ``"spekpy"`` (computed now;
            needs SpekPy) or ``"auto"`` (the table where it applies, else SpekPy).

    Returns:
        :class:`Spectrum` (float64).

    Raises:
        ValueError: a kVp outside [20, 300], a negative filtration, an unknown source, or ``source="table"`` for a
            spectrum the table does not hold.
        ImportError: SpekPy is needed and absent (the message says how to install it).

    Example:
        >>> spectrum = tube_spectrum(80)
        >>> round(spectrum.mean_energy_kev, 1)  # SpekPy: 42.9 keV
        42.9
    """
    kvp = check_number(kvp, "kvp", minimum=20.0, maximum=300.0, unit="kV")
    filtration_mm_al = check_number(filtration_mm_al, "filtration_mm_al", minimum=0.0, unit="mm")
    anode_angle_deg = check_number(anode_angle_deg, "anode_angle_deg", positive=True, maximum=90.0, unit="degrees")
    check_choice(source, ("auto", "table", "spekpy"), "source")
    in_table = (
        TABLE_KVP[0] <= kvp <= TABLE_KVP[-1]
        and anode_angle_deg == TABLE_ANODE_ANGLE_DEG
        and filtration_mm_al >= TABLE_FILTRATION_MM_AL
    )
    if source == "table" and not in_table:
        raise ValueError(
            f"the spectrum table holds kvp in [{TABLE_KVP[0]}, {TABLE_KVP[-1]}] at anode_angle_deg="
            f"{TABLE_ANODE_ANGLE_DEG} and filtration_mm_al >= {TABLE_FILTRATION_MM_AL}; got kvp={kvp}, "
            f"anode_angle_deg={anode_angle_deg}, filtration_mm_al={filtration_mm_al}: use source='spekpy'"
        )
    if source == "spekpy" or (source == "auto" and not in_table):
        energies, fluence = _from_spekpy(kvp, filtration_mm_al, anode_angle_deg)
        return Spectrum(torch.from_numpy(energies), torch.from_numpy(fluence), kvp, filtration_mm_al)
    energies, fluence = _from_table(kvp)
    spectrum = Spectrum(torch.from_numpy(energies.copy()), torch.from_numpy(fluence.copy()), kvp)
    extra = filtration_mm_al - TABLE_FILTRATION_MM_AL
    return spectrum.filter("aluminum", extra) if extra > 0 else spectrum
