"""Physics domain randomisation for pose regression: training X-rays through :mod:`drreg.physics` with random settings.

A DRR is a monochromatic, scatter-free, noise-free line integral; an X-ray is not. Instead of imitating the
differences in image space (:class:`~drreg.regression.SimToRealAugmentation`), :class:`PhysicsRandomization`
simulates them: each training image is the per-material line integrals of its pose (one render of the CT,
:meth:`drreg.physics.PhysicsDRR.line_integrals`) put through an :class:`~drreg.physics.XRayPhysics` of its own
random tube voltage, scatter, detector blur, quantum noise and bone density, then linearised (``-log(I / I_air)``,
the DRR-like quantity) and rescaled like the DRRs.

Bone weighting costs no extra render: line integrals are linear in the density and the material labels do not
depend on it, so ``bone_scale`` times the bone channel is the line integral of the CT with its bone density scaled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from drreg._checks import check_choice, check_integer, check_number, check_shape
from drreg.physics import XRayPhysics

__all__ = ["PhysicsRandomization", "PhysicsSettings", "NOISE_MODELS"]

NOISE_MODELS: tuple[str | None, ...] = ("poisson", "gaussian", None)
"""Quantum-noise models of the simulated images (see :func:`drreg.physics.quantum_noise`)."""

_BONE = "bone"


@dataclass(frozen=True)
class PhysicsSettings:
    """The physics of one simulated X-ray (one draw of :class:`PhysicsRandomization`).

    Attributes:
        kvp: tube voltage (kV).
        scatter_to_primary: scatter-to-primary ratio (0: none).
        scatter_sigma_mm: width of the scatter kernel on the detector (mm).
        blur_mm: detector blur, standard deviation (mm; 0: none).
        photons_per_pixel: photons reaching a pixel in air (the noise level: fewer, noisier).
        bone_scale: factor on the mass density of bone.
    """

    kvp: float
    scatter_to_primary: float
    scatter_sigma_mm: float
    blur_mm: float
    photons_per_pixel: float
    bone_scale: float

    def physics(
        self, materials: Sequence[str], noise: str | None = "poisson", energy_step_kev: float = 1.0
    ) -> XRayPhysics:
        """The :class:`~drreg.physics.XRayPhysics` of these settings, with ``-log(I / I_air)`` output.

        Args:
            materials: the material of each line-integral channel.
            noise: ``"poisson"``, ``"gaussian"`` or ``None``.
            energy_step_kev: energy bin width of the model (keV).
        """
        return XRayPhysics(
            kvp=self.kvp,
            materials=materials,
            energy_step_kev=energy_step_kev,
            photons_per_pixel=self.photons_per_pixel,
            scatter_to_primary=self.scatter_to_primary,
            scatter_sigma_mm=self.scatter_sigma_mm,
            blur_mm=self.blur_mm,
            noise=noise,
            output="negative_log",
        )


def _range(value: Sequence[float], name: str, minimum: float = 0.0, positive: bool = False) -> tuple[float, float]:
    """A ``(min, max)`` pair of finite numbers with ``minimum <= min <= max`` (``0 < min`` if ``positive``)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name} must be a (min, max) pair, got {value!r}")
    low, high = (check_number(v, name) for v in value)
    if not minimum <= low <= high or (positive and low <= 0):
        bound = "0 < min <= max" if positive else f"{minimum:g} <= min <= max"
        raise ValueError(f"{name} must be a (min, max) pair with {bound}, got {tuple(value)}")
    return low, high


class PhysicsRandomization:
    """Random X-ray physics for training images: tube voltage, scatter, blur, quantum noise and bone density.

    Each setting is drawn independently per image, uniformly in its range, except ``photons_per_pixel``, drawn
    log-uniformly (noise levels span decades). A range ``(v, v)`` fixes the setting: ``PhysicsRandomization.
    fixed(...)`` makes one physics for every image (a test set).

    Args:
        kvp: range of the tube voltage (kV), within the spectra table (see :data:`drreg.physics.TABLE_KVP`).
        scatter_to_primary: range of the scatter-to-primary ratio.
        scatter_sigma_mm: range of the width of the scatter kernel on the detector (mm).
        blur_mm: range of the detector blur's standard deviation (mm).
        photons_per_pixel: range of the photons per pixel in air (log-uniform).
        bone_scale: range of the factor on the mass density of bone.
        noise: quantum-noise model, one of :data:`NOISE_MODELS`.
        probability: chance that a training image is simulated (the others stay plain DRRs).
        group_size: consecutive images of a batch that share one draw of the settings (each still gets its own
            noise); 1: a draw per image. Larger groups simulate faster (one physics call per group), at the cost of
            correlated images within a batch.
        kvp_step: draw the tube voltage on a grid of this step (kV) from the range's minimum; ``None``: continuous.
        energy_step_kev: energy bin width of the physics model (keV, a whole number of 1 keV bins). The default 4
            keV model runs about 4x faster than 1 keV bins, and its images, rescaled to ``[0, 1]``, differ from
            theirs by less than 1e-3 between 60 and 120 kVp (the example CT, 64 x 64 pixels of 6 mm).

    Raises:
        ValueError: a range that is not ``(min, max)`` with ``min <= max`` within its bounds, an unknown noise
            model, a probability outside ``[0, 1]``; the message names the argument.

    Convention: the simulated images are ``-log(I / I_air)`` (flat-field corrected, dimensionless), the quantity
    a DRR approximates; the data module rescales them to ``[0, 1]`` per image as it does DRRs. Every draw comes from
    the ``generator`` passed in: the same generator state gives the same settings and the same noise.

    Example:
        >>> randomization = PhysicsRandomization(kvp=(70.0, 90.0))
        >>> settings = randomization.sample(3, torch.Generator().manual_seed(0))
        >>> len(settings), all(70.0 <= s.kvp <= 90.0 for s in settings)
        (3, True)
    """

    def __init__(
        self,
        kvp: Sequence[float] = (60.0, 120.0),
        scatter_to_primary: Sequence[float] = (0.0, 0.4),
        scatter_sigma_mm: Sequence[float] = (30.0, 60.0),
        blur_mm: Sequence[float] = (0.0, 1.5),
        photons_per_pixel: Sequence[float] = (1e3, 1e5),
        bone_scale: Sequence[float] = (0.8, 2.0),
        noise: str | None = "poisson",
        probability: float = 1.0,
        group_size: int = 1,
        kvp_step: float | None = 5.0,
        energy_step_kev: float = 4.0,
    ) -> None:
        self.kvp = _range(kvp, "kvp", positive=True)
        self.scatter_to_primary = _range(scatter_to_primary, "scatter_to_primary")
        self.scatter_sigma_mm = _range(scatter_sigma_mm, "scatter_sigma_mm", positive=True)
        self.blur_mm = _range(blur_mm, "blur_mm")
        self.photons_per_pixel = _range(photons_per_pixel, "photons_per_pixel", positive=True)
        self.bone_scale = _range(bone_scale, "bone_scale")
        check_choice(noise, NOISE_MODELS, "noise")
        self.noise = noise
        self.probability = check_number(probability, "probability", minimum=0.0, maximum=1.0)
        self.group_size = check_integer(group_size, "group_size", minimum=1)
        # Each kVp has its own energy bins once rebinned, and drreg.physics caches attenuation per bins: a 5 kV grid
        # (the spectra table's own) keeps every table of 60-120 kVp cached, where continuous draws recompute them.
        self.kvp_step = check_number(kvp_step, "kvp_step", positive=True, allow_none=True, unit="kV")
        self.energy_step_kev = check_number(energy_step_kev, "energy_step_kev", positive=True, unit="keV")

    @classmethod
    def fixed(
        cls,
        kvp: float,
        scatter_to_primary: float,
        blur_mm: float,
        photons_per_pixel: float,
        bone_scale: float = 1.0,
        scatter_sigma_mm: float = 40.0,
        noise: str | None = "poisson",
        energy_step_kev: float = 4.0,
    ) -> PhysicsRandomization:
        """One physics for every image (all ranges a single value, probability 1): e.g. a test set's.

        Example:
            >>> PhysicsRandomization.fixed(kvp=90.0, scatter_to_primary=0.25, blur_mm=0.7, photons_per_pixel=5e3)
            PhysicsRandomization(kvp=(90.0, 90.0), scatter_to_primary=(0.25, 0.25), scatter_sigma_mm=(40.0, 40.0), \
blur_mm=(0.7, 0.7), photons_per_pixel=(5000.0, 5000.0), bone_scale=(1.0, 1.0), noise='poisson', probability=1.0, \
group_size=1, kvp_step=None, energy_step_kev=4.0)
        """
        return cls(
            kvp=(kvp, kvp),
            scatter_to_primary=(scatter_to_primary, scatter_to_primary),
            scatter_sigma_mm=(scatter_sigma_mm, scatter_sigma_mm),
            blur_mm=(blur_mm, blur_mm),
            photons_per_pixel=(photons_per_pixel, photons_per_pixel),
            bone_scale=(bone_scale, bone_scale),
            noise=noise,
            kvp_step=None,
            energy_step_kev=energy_step_kev,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kvp={self.kvp}, scatter_to_primary={self.scatter_to_primary}, "
            f"scatter_sigma_mm={self.scatter_sigma_mm}, blur_mm={self.blur_mm}, "
            f"photons_per_pixel={self.photons_per_pixel}, bone_scale={self.bone_scale}, noise={self.noise!r}, "
            f"probability={self.probability}, group_size={self.group_size}, kvp_step={self.kvp_step}, "
            f"energy_step_kev={self.energy_step_kev})"
        )

    def choose(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Which of ``n`` training images to simulate: ``(n,)`` bool, each ``True`` with :attr:`probability`."""
        check_integer(n, "n", minimum=0)
        return torch.rand(n, generator=generator, dtype=torch.float64) < self.probability

    def sample(self, n: int, generator: torch.Generator | None = None) -> list[PhysicsSettings]:
        """``n`` independent draws of the settings.

        Args:
            n: number of images.
            generator: CPU random generator of the draws.

        Returns:
            ``n`` :class:`PhysicsSettings`.
        """
        check_integer(n, "n", minimum=0)
        uniform = torch.rand(n, 6, generator=generator, dtype=torch.float64).tolist()

        def between(bounds: tuple[float, float], u: float) -> float:
            return bounds[0] + (bounds[1] - bounds[0]) * u

        low, high = self.photons_per_pixel
        return [
            PhysicsSettings(
                kvp=self._kvp(u[0]),
                scatter_to_primary=between(self.scatter_to_primary, u[1]),
                scatter_sigma_mm=between(self.scatter_sigma_mm, u[2]),
                blur_mm=between(self.blur_mm, u[3]),
                # Log-uniform: as many images between 1e3 and 1e4 photons as between 1e4 and 1e5.
                # Clamped: exp(log(x)) may miss x by a rounding error.
                photons_per_pixel=min(max(math.exp(between((math.log(low), math.log(high)), u[4])), low), high),
                bone_scale=between(self.bone_scale, u[5]),
            )
            for u in uniform
        ]

    def _kvp(self, u: float) -> float:
        """The tube voltage at quantile ``u`` in ``[0, 1)``: uniform in the range, or on the ``kvp_step`` grid."""
        low, high = self.kvp
        if self.kvp_step is None:
            return low + (high - low) * u
        # Uniform over the grid points low, low + step, ... <= high (a little slack: 120 is on a 5 kV grid from 60).
        count = math.floor((high - low) / self.kvp_step + 1e-9) + 1
        return low + self.kvp_step * min(math.floor(u * count), count - 1)

    def simulate(
        self,
        line_integrals: torch.Tensor,
        materials: Sequence[str],
        spacing_mm: tuple[float, float],
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, list[PhysicsSettings]]:
        """X-rays of line integrals, each through its own draw of the physics.

        Args:
            line_integrals: ``(B, M, H, W)`` line integrals of each material's mass density (mm · g/cm³), as
                :meth:`drreg.physics.PhysicsDRR.line_integrals` returns them (bone unscaled).
            materials: the ``M`` material names of the channels (a ``"bone"`` channel is scaled by ``bone_scale``;
                without one, ``bone_scale`` has no effect).
            spacing_mm: ``(dely, delx)`` detector pixel spacing (mm), for scatter and blur.
            generator: CPU random generator of the settings and the noise (for images on another device, it seeds
                a generator there).

        Returns:
            ``(images, settings)``: ``(B, 1, H, W)`` ``-log(I / I_air)`` of ``line_integrals``' dtype, and the
            settings of each image (``B``; consecutive images share theirs with ``group_size`` > 1).

        Raises:
            ValueError: ``line_integrals`` not ``(B, M, H, W)`` with one channel per material.
        """
        sizes = check_shape(line_integrals, "B M H W", "line_integrals")
        if sizes["M"] != len(materials):
            raise ValueError(f"line_integrals must have one channel per material {tuple(materials)}, got {sizes['M']}")
        size = self.group_size
        draws = self.sample(-(-sizes["B"] // size), generator)
        noise_generator = generator
        if generator is not None and line_integrals.device != generator.device:
            # The noise is drawn on the images' device: seed a generator there from the given one.
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            noise_generator = torch.Generator(line_integrals.device).manual_seed(seed)
        bone = list(materials).index(_BONE) if _BONE in materials else None
        images = []
        for group, setting in enumerate(draws):
            channels = line_integrals[group * size : (group + 1) * size]
            if bone is not None and setting.bone_scale != 1.0:
                # Exact: a line integral is linear in the density, and the labels do not depend on it.
                scale = torch.ones(len(materials), dtype=channels.dtype, device=channels.device)
                scale[bone] = setting.bone_scale
                channels = channels * scale[:, None, None]
            physics = setting.physics(materials, self.noise, self.energy_step_kev).to(channels.device)
            images.append(physics(channels, spacing_mm, noise_generator))
        settings = [setting for setting in draws for _ in range(size)][: sizes["B"]]
        if not images:
            return line_integrals.new_zeros(0, 1, *line_integrals.shape[2:]), settings
        return torch.cat(images).to(line_integrals.dtype), settings
