"""The polychromatic forward model: CT to a raw detector image, differentiable in the pose and the volume.

:class:`XRayPhysics` turns per-material line integrals into a detector image (Beer-Lambert at each energy of a tube
spectrum, an energy-integrating or photon-counting detector, scatter, blur, heel effect, collimation, quantum noise).
:class:`PhysicsDRR` renders those line integrals from a CT in one pass of the fused kernels (one label channel per
material) and applies it.

The model, per pixel, with ``L_m = ∫ ρ_m dl`` (g/cm²) the line integral of material ``m``'s mass density::

    T(E)  = exp(-Σ_m μ_m(E) L_m)                       transmission at energy E (μ_m: mass attenuation, cm²/g)
    q     = N0 · h · c · Σ_E s(E) η(E) T(E)           detected quanta (s: photon fraction, η: detector efficiency)
    I     = N0 · h · c · Σ_E s(E) η(E) E T(E) / Ē     energy-integrating signal (Ē: mean detected energy in air)
    I'    = I + SPR · G_σ * I,  then blur, then noise  scatter, detector blur, quantum noise of q quanta

``N0`` is the photons per pixel in air, ``h`` the heel profile, ``c`` the collimator mask. ``I`` is in detected-photon
units: ``N0 Σ s η`` in air. ``output="negative_log"`` gives ``-log(I' / I_air)`` (flat-field corrected), which equals
the monochromatic line integral ``Σ_m μ_m L_m`` for a single energy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
import torchio as tio

from drreg._checks import check_choice, check_number, check_shape
from drreg.drr import DRR
from drreg.physics.attenuation import attenuation_table, mass_attenuation
from drreg.physics.detector import add_scatter, collimation_mask, gaussian_blur_mm, heel_profile, quantum_noise
from drreg.physics.materials import (
    DEFAULT_MATERIALS,
    DEFAULT_THRESHOLDS_HU,
    MATERIALS,
    hu_to_mass_density,
    material_labels,
    material_weights,
)
from drreg.physics.spectra import TABLE_FILTRATION_MM_AL, Spectrum, tube_spectrum

__all__ = ["XRayPhysics", "PhysicsDRR", "OUTPUTS", "DETECTORS", "DECOMPOSITIONS"]

OUTPUTS = ("raw", "negative_log")
DETECTORS = ("integrating", "counting")
DECOMPOSITIONS = ("hard", "soft")
_MM_TO_CM = 0.1


class XRayPhysics(torch.nn.Module):
    """Per-material line integrals to a detector image: polychromatic Beer-Lambert, detector, scatter, blur, noise.

    Args:
        kvp: tube voltage (kV), for :func:`drreg.physics.tube_spectrum` (ignored when ``spectrum`` is given).
        filtration_mm_al: total tube filtration (mm Al).
        materials: the ``M`` material names of the line-integral channels, in order.
        spectrum: a :class:`Spectrum` to use instead of ``tube_spectrum(kvp, filtration_mm_al)``.
        energy_step_kev: energy bin width of the model (a multiple of the spectrum's 1 keV bins): fewer bins, faster.
        photons_per_pixel: ``N0``, photons reaching a pixel in air (unattenuated, at the detector centre).
        detector: ``"integrating"`` (signal weighted by photon energy, as flat-panel detectors) or ``"counting"``.
        scintillator_mm: CsI thickness (mm) for the detection efficiency ``η(E) = 1 - exp(-μ_CsI ρ t)``; 0: ideal.
        scatter_to_primary: scatter-to-primary ratio of the convolution scatter model (0: none).
        scatter_sigma_mm: width of the scatter kernel on the detector (mm).
        blur_mm: Gaussian detector blur, standard deviation (mm; 0: none).
        noise: ``None``, ``"poisson"`` or ``"gaussian"`` (differentiable), see :func:`drreg.physics.quantum_noise`.
        heel: anode heel effect, relative intensity ``1 ± heel`` across the detector rows (0: none).
        collimation: ``(fraction of H, fraction of W)`` of a centred open field, each in ``(0, 1]``, or None.
        output: ``"raw"`` detector intensities, or ``"negative_log"`` ``-log(I / I_air)``.

    Shapes: ``forward`` takes ``(B, M, H, W)`` line integrals of mass density (mm · g/cm³, as a DRR of a density
    volume in g/cm³ gives) and returns ``(B, 1, H, W)``.
    """

    mu: torch.Tensor  # (M, E) cm²/g
    detected: torch.Tensor  # (E,) s(E) η(E): detected photons per incident photon, by energy
    energies: torch.Tensor  # (E,) keV

    def __init__(
        self,
        kvp: float = 80.0,
        filtration_mm_al: float = TABLE_FILTRATION_MM_AL,
        materials: Sequence[str] = DEFAULT_MATERIALS,
        spectrum: Spectrum | None = None,
        energy_step_kev: float = 1.0,
        photons_per_pixel: float = 1e4,
        detector: str = "integrating",
        scintillator_mm: float = 0.6,
        scatter_to_primary: float = 0.0,
        scatter_sigma_mm: float = 40.0,
        blur_mm: float = 0.0,
        noise: str | None = None,
        heel: float = 0.0,
        collimation: tuple[float, float] | None = None,
        output: str = "raw",
    ) -> None:
        super().__init__()
        check_choice(detector, DETECTORS, "detector")
        check_choice(output, OUTPUTS, "output")
        check_choice(noise, (None, "poisson", "gaussian"), "noise")
        unknown = [m for m in materials if m not in MATERIALS]
        if not materials or unknown:
            raise ValueError(
                f"materials must be names of drreg.physics.MATERIALS ({', '.join(MATERIALS)}), got {unknown}"
            )
        self.materials = tuple(materials)
        spectrum = tube_spectrum(kvp, filtration_mm_al) if spectrum is None else spectrum
        if energy_step_kev != 1.0:
            spectrum = spectrum.rebin(energy_step_kev)
        self.spectrum = spectrum
        self.photons_per_pixel = check_number(photons_per_pixel, "photons_per_pixel", positive=True)
        self.detector = detector
        self.scatter_to_primary = check_number(scatter_to_primary, "scatter_to_primary", minimum=0.0)
        self.scatter_sigma_mm = check_number(scatter_sigma_mm, "scatter_sigma_mm", positive=True, unit="mm")
        self.blur_mm = check_number(blur_mm, "blur_mm", minimum=0.0, unit="mm")
        self.noise = noise
        self.heel = check_number(heel, "heel", minimum=0.0, maximum=0.999)
        if collimation is not None:
            if not isinstance(collimation, Sequence) or len(collimation) != 2:
                raise ValueError(f"collimation must be (fraction of H, fraction of W) or None, got {collimation!r}")
            collimation = (
                check_number(collimation[0], "collimation[0]", positive=True, maximum=1.0),
                check_number(collimation[1], "collimation[1]", positive=True, maximum=1.0),
            )
        self.collimation = collimation
        self.output = output
        scintillator_mm = check_number(scintillator_mm, "scintillator_mm", minimum=0.0, unit="mm")
        energies = spectrum.energies_kev
        efficiency = torch.ones_like(energies)
        if scintillator_mm > 0:
            csi = MATERIALS["csi"]
            efficiency = 1.0 - torch.exp(-mass_attenuation(csi, energies) * csi.density * scintillator_mm * _MM_TO_CM)
        self.register_buffer("energies", energies.clone(), persistent=False)
        self.register_buffer("mu", attenuation_table(self.materials, energies), persistent=False)
        self.register_buffer("detected", spectrum.probabilities * efficiency, persistent=False)

    @property
    def air_signal(self) -> float:
        """``N0 Σ s η``: the signal (and detected quanta) of a pixel in air, before heel, scatter and noise."""
        return self.photons_per_pixel * float(self.detected.sum())

    def transmission(self, line_integrals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Detected quanta and signal per incident photon, before image-domain effects.

        Args:
            line_integrals: ``(B, M, H, W)`` mm · g/cm³.

        Returns:
            ``(q, I)``, each ``(B, 1, H, W)``: ``Σ s η T`` and the detector's signal, both ``Σ s η`` in air.
        """
        check_shape(line_integrals, "B C H W", "line_integrals")
        if line_integrals.shape[1] != len(self.materials):
            raise ValueError(
                f"line_integrals must have one channel per material {self.materials}, got {line_integrals.shape[1]}"
            )
        dtype = line_integrals.dtype
        mu = self.mu.to(dtype)
        attenuation = torch.einsum("me,bmhw->behw", mu, line_integrals * _MM_TO_CM)
        transmitted = torch.exp(-attenuation)  # (B, E, H, W)
        detected = self.detected.to(dtype)
        quanta = torch.einsum("e,behw->bhw", detected, transmitted)[:, None]
        if self.detector == "counting":
            return quanta, quanta
        energy = self.energies.to(dtype)
        mean_energy = (detected * energy).sum() / detected.sum()  # Ē of the detected photons in air
        signal = torch.einsum("e,behw->bhw", detected * energy / mean_energy, transmitted)[:, None]
        return quanta, signal

    def forward(
        self,
        line_integrals: torch.Tensor,
        spacing_mm: tuple[float, float] = (1.0, 1.0),
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Detector image of per-material line integrals.

        Args:
            line_integrals: ``(B, M, H, W)`` line integrals of each material's mass density (mm · g/cm³).
            spacing_mm: ``(dely, delx)`` detector pixel spacing (mm), for scatter and blur.
            generator: random generator of the noise.

        Returns:
            ``(B, 1, H, W)`` raw intensities (detected-photon units) or ``-log(I / I_air)``.
        """
        quanta, signal = self.transmission(line_integrals)
        _, _, height, width = line_integrals.shape
        dtype, device = signal.dtype, signal.device
        incident = torch.full((height, width), self.photons_per_pixel, dtype=dtype, device=device)
        if self.heel > 0:
            incident = incident * heel_profile(height, width, self.heel, dtype=dtype, device=device)
        flat_field = incident * float(self.detected.sum())  # the detector's gain map: I in air without collimator
        if self.collimation is not None:
            incident = incident * collimation_mask(height, width, self.collimation, dtype=dtype, device=device)
        # The quanta only set the noise, and a counting detector's signal is its quanta: carry a second channel
        # through scatter and blur only when it differs and is needed.
        separate = self.noise is not None and quanta is not signal
        images = torch.cat([signal, quanta], dim=1) if separate else signal
        images = images * incident
        if self.scatter_to_primary > 0:
            images = add_scatter(images, self.scatter_to_primary, self.scatter_sigma_mm, spacing_mm)
        if self.blur_mm > 0:
            images = gaussian_blur_mm(images, self.blur_mm, spacing_mm)
        signal = images[:, :1]
        if self.noise is not None:
            signal = quantum_noise(signal, images[:, 1:] if separate else signal, self.noise, generator)
        if self.output == "raw":
            return signal
        # Less than half a detected photon (signal unit: one photon) cannot be told from none: clamp there (noise-free:
        # a tiny floor).
        floor = 0.5 if self.noise is not None else 1e-30
        return -torch.log(signal.clamp_min(floor) / flat_field)

    def extra_repr(self) -> str:
        return (
            f"kvp={self.spectrum.kvp}, materials={self.materials}, energies={len(self.energies)}, "
            f"detector={self.detector!r}, N0={self.photons_per_pixel:g}, SPR={self.scatter_to_primary}, "
            f"blur_mm={self.blur_mm}, noise={self.noise!r}, output={self.output!r}"
        )


class PhysicsDRR(torch.nn.Module):
    """Realistic X-rays of a CT: per-material line integrals (one render) through :class:`XRayPhysics`.

    Args:
        subject: a ``torchio.Subject`` from :func:`drreg.read` (its ``volume`` in HU is decomposed).
        sdd: source-to-detector distance (mm).
        height: image rows ``H``.
        delx: pixel spacing along a row (mm).
        width: image columns (default ``height``).
        dely: pixel spacing along a column (mm, default ``delx``).
        physics: the :class:`XRayPhysics` (default: 80 kVp, integrating CsI detector, no scatter, blur or noise);
            its ``materials`` must be the decomposition's (:data:`DEFAULT_MATERIALS`, plus ``metal`` if set).
        decomposition: ``"hard"`` (HU thresholds: one render of all materials as label channels) or ``"soft"``
            (logistic weights, differentiable in the HU; one render per material).
        thresholds: HU boundaries between the materials (see :func:`drreg.physics.material_labels`).
        soft_width_hu: logistic width of the soft decomposition (HU).
        metal: a name of :data:`~drreg.physics.MATERIALS` for metal voxels (appended as the last channel), or None.
        metal_threshold: HU at or above which a voxel is metal (above the last of ``thresholds``).
        metal_labels: ids of the subject's ``mask`` that are metal (an implant segmentation), besides the threshold.
        bone_scale: factor on the density of bone (a bone-weighting knob for domain randomisation).
        **drr_kwargs: for :class:`drreg.DRR` (``x0``, ``y0``, ``renderer``, ``backend``, ``reverse_x_axis``, ...);
            images are always whole (``reshape=True``, no pixel subset).

    Example:
        >>> from drreg import load_example_ct
        >>> xray = PhysicsDRR(load_example_ct(), sdd=1020.0, height=32, delx=8.0, physics=XRayPhysics(noise="poisson"))
        >>> image = xray(torch.zeros(1, 3), torch.tensor([[0.0, 850.0, 0.0]]), parameterization="euler_angles",
        ...              convention="ZXY", generator=torch.Generator().manual_seed(0))
        >>> image.shape
        torch.Size([1, 1, 32, 32])
    """

    hu: torch.Tensor  # (X, Y, Z) float32
    metal_mask: torch.Tensor  # (X, Y, Z) bool: metal by the subject's labels

    def __init__(
        self,
        subject: tio.Subject,
        sdd: float,
        height: int,
        delx: float,
        width: int | None = None,
        dely: float | None = None,
        physics: XRayPhysics | None = None,
        decomposition: str = "hard",
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS_HU,
        soft_width_hu: float = 50.0,
        metal: str | None = None,
        metal_threshold: float | None = None,
        metal_labels: Sequence[int] = (),
        bone_scale: float = 1.0,
        **drr_kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(subject, tio.Subject) or "volume" not in subject:
            raise TypeError(f"subject must be a torchio.Subject from drreg.read (with a 'volume'), got {type(subject)}")
        check_choice(decomposition, DECOMPOSITIONS, "decomposition")
        if metal is None and (metal_threshold is not None or metal_labels):
            raise ValueError("metal_threshold and metal_labels need metal=<material name>, e.g. metal='titanium'")
        if metal is not None and metal_threshold is None and not metal_labels:
            raise ValueError("metal needs metal_threshold (HU) or metal_labels (ids of the subject's mask)")
        if metal is not None and metal not in MATERIALS:
            raise ValueError(f"metal must be a name of drreg.physics.MATERIALS ({', '.join(MATERIALS)}), got {metal!r}")
        if metal_threshold is not None:
            metal_threshold = check_number(metal_threshold, "metal_threshold", unit="HU")
            if thresholds and metal_threshold <= max(float(t) for t in thresholds):
                raise ValueError(
                    f"metal_threshold must be above the last threshold {max(float(t) for t in thresholds)} HU, got "
                    f"{metal_threshold}"
                )
        for key in ("reshape", "p_subsample"):
            if key in drr_kwargs:
                raise ValueError(f"PhysicsDRR renders whole images (scatter and blur need them): remove {key}=")
        materials = tuple(DEFAULT_MATERIALS[: len(thresholds) + 1]) + ((metal,) if metal else ())
        if len(thresholds) + 1 != len(DEFAULT_MATERIALS):
            raise ValueError(
                f"thresholds must be {len(DEFAULT_MATERIALS) - 1} HU boundaries between {DEFAULT_MATERIALS}"
            )
        physics = XRayPhysics(materials=materials) if physics is None else physics
        if physics.materials != materials:
            raise ValueError(f"physics.materials must be {materials} for this decomposition, got {physics.materials}")
        self.physics = physics
        self.decomposition = decomposition
        self.thresholds = tuple(float(t) for t in thresholds)
        self.soft_width_hu = check_number(soft_width_hu, "soft_width_hu", positive=True)
        self.metal = metal
        self.metal_threshold = metal_threshold
        self.bone_scale = check_number(bone_scale, "bone_scale", minimum=0.0)
        volume = cast(tio.ScalarImage, subject["volume"])
        hu = volume.data[0].to(torch.float32)
        metal_mask = torch.zeros(hu.shape, dtype=torch.bool)
        if metal_labels:
            if subject.get("mask") is None:
                raise ValueError("metal_labels needs a subject with a 'mask' labelmap (read(..., labelmap=...))")
            metal_mask = torch.isin(cast(tio.LabelMap, subject["mask"]).data[0], torch.as_tensor(list(metal_labels)))
        self.register_buffer("hu", hu.contiguous())
        self.register_buffer("metal_mask", metal_mask.contiguous())
        labels = self._labels(hu)
        reference = tio.Subject(
            volume=volume,
            density=tio.ScalarImage(tensor=hu_to_mass_density(hu)[None], affine=volume.affine),
            mask=tio.LabelMap(tensor=labels[None], affine=volume.affine),
            reorient=subject.get("reorient"),
            orientation=subject.get("orientation"),
        )
        self.drr = DRR(reference, sdd, height, delx, width, dely, **drr_kwargs)

    @property
    def materials(self) -> tuple[str, ...]:
        """The material of each line-integral channel."""
        return self.physics.materials

    def _labels(self, hu: torch.Tensor) -> torch.Tensor:
        labels = material_labels(hu.detach(), self.thresholds)
        return torch.where(self._metal(hu), len(self.materials) - 1, labels) if self.metal else labels

    def _metal(self, hu: torch.Tensor) -> torch.Tensor:
        metal = self.metal_mask.to(hu.device)
        return metal | (hu.detach() >= self.metal_threshold) if self.metal_threshold is not None else metal

    def mass_density(self, hu: torch.Tensor | None = None) -> torch.Tensor:
        """``(X, Y, Z)`` g/cm³ of the CT (or of ``hu``), bone scaled by ``bone_scale``, metal at its nominal density."""
        hu = self.hu if hu is None else hu
        density = hu_to_mass_density(hu)
        bone = material_labels(hu.detach(), self.thresholds) == DEFAULT_MATERIALS.index("bone")
        density = torch.where(bone, density * self.bone_scale, density)
        if self.metal:
            density = torch.where(self._metal(hu), torch.full_like(density, MATERIALS[self.metal].density), density)
        return density

    def line_integrals(self, *pose: Any, hu: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """``(B, M, H, W)`` line integrals of each material's mass density (mm · g/cm³).

        Args:
            *pose: as for :meth:`drreg.DRR.forward` (a RigidTransform, or rotation and translation).
            hu: an ``(X, Y, Z)`` HU volume to use instead of the subject's (e.g. one that requires grad).
            **kwargs: for :meth:`drreg.DRR.forward` (``parameterization``, ``convention``, ``degrees``, ...).
        """
        if hu is not None and (not isinstance(hu, torch.Tensor) or hu.shape != self.hu.shape):
            raise ValueError(
                f"hu must be a tensor of the CT's shape {tuple(self.hu.shape)}, got {getattr(hu, 'shape', hu)}"
            )
        density = self.mass_density(hu)
        n_materials = len(self.materials)
        if self.decomposition == "hard":
            subject_labels = self.drr.mask
            if hu is not None:  # the labels follow the given volume, for this call only
                self.drr.mask = self._labels(hu).to(hu.device)
            try:
                image = self.drr(*pose, mask_to_channels=True, density=density, **kwargs)
            finally:
                self.drr.mask = subject_labels
            return F.pad(image, (0, 0, 0, 0, 0, n_materials - image.shape[1]))  # materials absent from the CT: 0
        weights = material_weights(self.hu if hu is None else hu, self.thresholds, self.soft_width_hu)
        if self.metal:
            metal = self._metal(self.hu if hu is None else hu)
            weights = torch.cat([torch.where(metal, 0.0, weights), metal[None].to(weights.dtype)])
        channels = [self.drr(*pose, density=density * w, **kwargs) for w in weights]
        return torch.cat(channels, dim=1)

    def forward(
        self, *pose: Any, hu: torch.Tensor | None = None, generator: torch.Generator | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """``(B, 1, H, W)`` X-ray images at the poses (see :class:`XRayPhysics` for the units).

        Args:
            *pose: as for :meth:`drreg.DRR.forward`.
            hu: optional ``(X, Y, Z)`` HU volume in place of the subject's.
            generator: random generator of the noise.
            **kwargs: for :meth:`drreg.DRR.forward`.
        """
        line_integrals = self.line_integrals(*pose, hu=hu, **kwargs)
        detector = self.drr.detector
        return self.physics(line_integrals, (detector.dely, detector.delx), generator)
