"""The description of the imaging: the CT, the full-scale detector and the renderer, as one typed record.

:class:`Imaging` is what a data module owns and a model receives (ARCHITECTURE.md, "Who owns what"): each side
builds its own :class:`~drreg.drr.DRR` from it (:meth:`Imaging.build_drr`), and neither borrows the other's
renderer. Registration: :class:`~drreg.registration.RegistrationData` completes it from what its X-ray files say
(DICOM tags) and :class:`~drreg.registration.RegistrationModule` receives it (``imaging=data.imaging``; ``drreg
register`` links it). Pose regression: :class:`~drreg.regression.PoseRegressionDataModule` makes it from its
arguments and :class:`~drreg.regression.PoseRegressionModule` receives it (``drreg fit`` links it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import torchio

from drreg.drr import DRR
from drreg.physics import PhysicsDRR
from drreg.volume import load_volume

__all__ = ["Imaging", "INTRINSICS"]

INTRINSICS: tuple[str, ...] = ("sdd", "height", "width", "delx", "dely")
"""The detector values that may come from the target files when not given."""

_REQUIRED: tuple[str, ...] = ("sdd", "height", "delx")
_DEFAULTS = {"width": "height", "dely": "delx"}  # the DRR's own defaults when a value is not given


@dataclass(frozen=True)
class Imaging:
    """The CT, the full-scale detector and the renderer: what a data module describes and a model renders with.

    Args:
        volume: CT: a path :func:`drreg.read` accepts, ``"example"`` for :func:`drreg.load_example_ct`, or a
            ``torchio.Subject`` (after :meth:`load`, always the subject).
        orientation: patient orientation passed to ``read`` (``"AP"``, ``"PA"`` or ``None``).
        bone_attenuation_multiplier: factor on bone densities (``read``).
        sdd: source-to-detector distance (mm). ``None``: from the target files (DICOM
            ``DistanceSourceToDetector``), see :meth:`with_intrinsics`.
        height: detector rows at full scale (targets must match). ``None``: the targets' rows.
        delx: pixel spacing along a row at full scale (mm). ``None``: from the target files (DICOM
            ``ImagerPixelSpacing``, rescaled by any crop/resize).
        width: detector columns (default ``height``, or the targets' columns when ``height`` is ``None``).
        dely: pixel spacing along a column (mm, default ``delx``, or the files' spacing).
        x0: principal-point offset along x (mm).
        y0: principal-point offset along y (mm).
        reverse_x_axis: radiological view (DRR default).
        renderer: ``"siddon"`` or ``"trilinear"``.
        backend: ``"auto"``, ``"torch"`` or ``"fused"`` (see :func:`drreg.render.render`).
        n_points: samples per ray for ``"trilinear"`` (``None``: the DRR's default).
        voxel_size: resample the CT to this isotropic voxel size (mm) when it is read, or ``None`` to keep it.
        sources: where detector values came from when not from the configuration, by name (e.g. ``{"sdd":
            "DICOM tag DistanceSourceToDetector of file xray.dcm"}``); set by :meth:`with_intrinsics`.

    Convention: a plain record (a YAML mapping, ``--data.imaging.height 64``); nothing is read until :meth:`load`.

    Example:
        >>> Imaging(sdd=None).missing()
        ['sdd']
    """

    volume: str | Path | torchio.Subject = "example"
    orientation: str | None = "AP"
    bone_attenuation_multiplier: float = 1.0
    sdd: float | None = 1020.0
    height: int | None = 128
    delx: float | None = 2.5
    width: int | None = None
    dely: float | None = None
    x0: float = 0.0
    y0: float = 0.0
    reverse_x_axis: bool = True
    renderer: str = "siddon"
    backend: str = "auto"
    n_points: int | None = None
    voxel_size: float | None = None
    sources: dict[str, str] | None = None

    def load(self) -> Imaging:
        """The same set-up with the CT read (``volume`` becomes the ``torchio.Subject``), to share without a re-read.

        The CT is resampled to ``voxel_size`` when given (and not at that size already).

        Raises:
            FileNotFoundError: the CT path does not exist.
            ValueError: the file cannot be read as a CT (see :func:`drreg.read`).
        """
        if isinstance(self.volume, torchio.Subject) and self._resampled(self.volume):
            return self
        subject = load_volume(self.volume, self.orientation, self.bone_attenuation_multiplier)
        if not self._resampled(subject):
            # torchio resamples every image of the subject (linear for density, nearest for the labelmap).
            subject = torchio.Resample(float(self.voxel_size))(subject)  # type: ignore[arg-type]  # not None here
        return replace(self, volume=subject)

    def _resampled(self, subject: torchio.Subject) -> bool:
        """Whether ``subject`` is at :attr:`voxel_size` already (always, when that is ``None``)."""
        if self.voxel_size is None:
            return True
        spacing = cast(torchio.Image, subject["density"]).spacing
        return all(abs(float(s) - float(self.voxel_size)) <= 1e-9 * float(self.voxel_size) for s in spacing)

    @property
    def subject(self) -> torchio.Subject:
        """The CT as a ``torchio.Subject`` (read now unless :meth:`load` has read it)."""
        return cast(torchio.Subject, self.load().volume)

    def missing(self) -> list[str]:
        """The detector values the DRR needs that are not given (``sdd``, ``height``, ``delx``)."""
        return [name for name in _REQUIRED if getattr(self, name) is None]

    def with_intrinsics(self, known: dict[str, Any], sources: dict[str, str] | None = None) -> Imaging:
        """Fill every detector value not given from what the target files say, and record where it came from.

        Args:
            known: ``height``, ``width``, ``delx``, ``dely``, ``sdd`` read from the files (any subset).
            sources: where each of ``known`` came from (e.g. ``"DICOM tag Rows of file xray.dcm"``); ``"the
                target images"`` otherwise.

        Returns:
            The filled set-up (values the files do not give stay ``None``).
        """
        sources = sources or {}
        taken: dict[str, Any] = {name: known.get(name) for name in INTRINSICS if getattr(self, name) is None}
        where = {name: sources.get(name, "the target images") for name, value in taken.items() if value is not None}
        return replace(self, **taken, sources={**(self.sources or {}), **where})

    def detector_sources(self) -> dict[str, str]:
        """Where each of :data:`INTRINSICS` comes from: the files' words (:attr:`sources`), ``"config"``, or
        ``"= height"`` / ``"= delx"`` (the DRR's defaults for ``width`` and ``dely``)."""
        recorded = self.sources or {}
        return {
            name: recorded.get(name)
            or ("config" if getattr(self, name) is not None or name not in _DEFAULTS else f"= {_DEFAULTS[name]}")
            for name in INTRINSICS
        }

    def check_complete(self, problems: dict[str, str] | None = None) -> None:
        """Raise unless ``sdd``, ``height`` and ``delx`` are known.

        Args:
            problems: unusable DICOM tags behind missing values, by intrinsic name
                (:meth:`drreg.registration.RegistrationData.intrinsic_problems`), named in the error.

        Raises:
            ValueError: a value missing; the message names the flags and arguments that give it.
        """
        missing = self.missing()
        if not missing:
            return
        flags = " ".join(f"--data.imaging.{name} <{'rows' if name == 'height' else 'mm'}>" for name in missing)
        arguments = ", ".join(f"{name}=..." for name in missing)
        unusable = [problems[name] for name in missing if problems and name in problems]
        if unusable:
            raise ValueError(
                f"{'; '.join(dict.fromkeys(unusable))}: the detector's {', '.join(missing)} cannot come from it; "
                f"give {'it' if len(missing) == 1 else 'them'} yourself: {flags}"
                + (" (and --data.imaging.dely <mm> for non-square pixels)" if "delx" in missing else "")
                + f", or Imaging({arguments})"
            )
        raise ValueError(
            f"the detector needs {', '.join(missing)}: give them ({flags}, or Imaging({arguments})), or "
            "use DICOM targets whose tags hold them (ImagerPixelSpacing, DistanceSourceToDetector)"
        )

    def _drr_arguments(self) -> dict[str, Any]:
        """The detector and renderer arguments of :class:`~drreg.drr.DRR` (and :class:`~drreg.physics.PhysicsDRR`)."""
        self.check_complete()
        options: dict[str, Any] = {} if self.n_points is None else {"n_points": self.n_points}  # None: the DRR default
        return {
            "sdd": float(self.sdd),  # type: ignore[arg-type]  # checked complete
            "height": int(self.height),  # type: ignore[arg-type]
            "delx": float(self.delx),  # type: ignore[arg-type]
            "width": None if self.width is None else int(self.width),
            "dely": None if self.dely is None else float(self.dely),
            "x0": self.x0,
            "y0": self.y0,
            "reverse_x_axis": self.reverse_x_axis,
            "renderer": self.renderer,
            "backend": self.backend,
            **options,
        }

    def build_drr(self, reshape: bool = False) -> DRR:
        """The DRR of this set-up at full scale.

        Args:
            reshape: the DRR's ``reshape``: ``False`` (registration) returns (B, C, n) pixel sets, ``True`` (pose
                regression) (B, C, H, W) images.

        Raises:
            ValueError: ``sdd``, ``height`` or ``delx`` missing (:meth:`check_complete`), or values the DRR rejects.
        """
        return DRR(self.subject, reshape=reshape, **self._drr_arguments())

    def build_physics_drr(self, **physics_options: Any) -> PhysicsDRR:
        """The :class:`~drreg.physics.PhysicsDRR` of this set-up at full scale: realistic X-rays of its CT.

        Args:
            **physics_options: for :class:`~drreg.physics.PhysicsDRR` (``physics``, ``decomposition``,
                ``bone_scale``, ``metal``, ...).

        Raises:
            ValueError: ``sdd``, ``height`` or ``delx`` missing (:meth:`check_complete`), a CT without its HU
                ``volume`` image (one given as a subject not made by :func:`drreg.read`), or values
                :class:`~drreg.physics.PhysicsDRR` rejects.
        """
        arguments = self._drr_arguments()
        subject = self.subject
        if "volume" not in subject:
            raise ValueError(
                "X-ray physics needs the CT in HU: a subject from drreg.read or drreg.load_example_ct (with a "
                f"'volume' image), got one with {sorted(subject.keys())}"
            )
        return PhysicsDRR(subject, **physics_options, **arguments)

    def record(self) -> dict[str, Any]:
        """The set-up as plain values (for ``hparams.yaml``): a loaded CT is written as ``"torchio.Subject"``."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        volume = values["volume"]
        values["volume"] = "torchio.Subject" if isinstance(volume, torchio.Subject) else str(volume)
        return values
