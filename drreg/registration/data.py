"""The targets of a registration, as a ``LightningDataModule`` that yields the same batch at every step.

Targets are X-ray files (read and made DRR-like by :mod:`drreg.targets`), images in memory
(:meth:`RegistrationData.from_tensors`), or synthetic: rendered at hidden poses from the CT with a DRR the data
module builds itself. The data module owns the description of the imaging (:class:`~drreg.registration.Imaging`):
it completes it from what its files say and hands it to the model (``RegistrationModule(imaging=data.imaging)``);
the model never reaches back (ARCHITECTURE.md). What the model needs to know about each target travels in the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, IterableDataset
from typing_extensions import override

from drreg._checks import check_choice, check_finite, check_integer, check_number, check_shape
from drreg.drr import DRR
from drreg.geometry import EULER_CONVENTIONS, RigidTransform, pose_vectors_to_transform
from drreg.physics import XRayPhysics
from drreg.registration.imaging import Imaging
from drreg.registration.poses import POSE_DTYPE, identity_view_transforms, view_transforms_from_poses
from drreg.registration.synthetic import physics_view_targets, synthetic_view_targets
from drreg.targets import (
    XRayTarget,
    check_target_contrast,
    check_target_size,
    preprocess,
    read_xray,
)

if TYPE_CHECKING:
    from lightning.fabric.utilities.data import AttributeDict


__all__ = ["RegistrationData", "check_batch", "target_names"]


def target_names(n_targets: int, n_views: int, kind: str = "target") -> list[str]:
    """What to call each of T·V targets (target-major) in messages: ``"target t"``, plus ``" (view v)"`` when
    there are several views.

    Example:
        >>> target_names(1, 2)
        ['target 0 (view 0)', 'target 0 (view 1)']
    """
    suffix = [f" (view {view})" if n_views > 1 else "" for view in range(n_views)]
    return [f"{kind} {target}{suffix[view]}" for target in range(n_targets) for view in range(n_views)]


def check_batch(batch: dict[str, Any], n_targets: int, drr: DRR) -> None:
    """Refuse a registration batch that cannot be registered, naming the target at fault.

    Args:
        batch: ``{"targets": (T, V, 1, H, W), "view_transforms": (V, 4, 4) (optional), "names": T·V str
            (optional)}``, from :class:`RegistrationData` or any data module.
        n_targets: the targets the module has starting poses for.
        drr: the module's DRR, at full scale: the targets must fit its detector.

    Raises:
        ValueError: no ``targets``, wrong shapes, a blank or NaN/inf target, a target count other than
            ``n_targets``, targets of another size than the detector.
    """
    targets = batch.get("targets")
    if targets is None:
        raise ValueError("a registration batch needs 'targets' (T, V, 1, H, W); use RegistrationData")
    check_shape(targets, "T V 1 H W", name="targets")
    names = batch.get("names")
    if names is None or len(names) != targets.shape[0] * targets.shape[1]:
        names = target_names(*targets.shape[:2])
    for image, name in zip(targets.flatten(0, 1), names):
        check_target_contrast(image, name)  # NaN/inf or blank: refuse before optimising, naming the target
    if targets.shape[0] != n_targets:
        raise ValueError(
            f"the data holds {targets.shape[0]} target(s) but initial_poses gives {n_targets}; "
            "give one initial pose (or one row of starts) per target"
        )
    check_target_size(targets, drr, name=names[0] if names[0].startswith("X-ray ") else "target")
    views = batch.get("view_transforms")
    if views is not None:
        check_shape(views, "V 4 4", name="view_transforms")
        if views.shape[0] != targets.shape[1]:
            raise ValueError(f"{views.shape[0]} view transforms for {targets.shape[1]} views per target")


UINT16_MAX = 65535  # the full range of a 16-bit detector file


def _as_uint16(image: torch.Tensor) -> torch.Tensor:
    """A raw detector image as a 16-bit file holds it: scaled so that its brightest pixel is 65535, rounded."""
    peak = image.max().clamp_min(torch.finfo(torch.float32).tiny)  # clamp: an all-zero image stays zero
    return (image.clamp_min(0.0) * (UINT16_MAX / peak)).round().clamp_max(UINT16_MAX)


class _RepeatedBatch(Dataset):
    """The same batch ``length`` times (registration has one batch: the targets)."""

    def __init__(self, batch: dict[str, Any], length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.batch


class _EndlessBatch(IterableDataset):
    """The same batch for ever (no length): the module stops the trainer after its last stage."""

    def __init__(self, batch: dict[str, Any]) -> None:
        self.batch = batch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            yield self.batch


class RegistrationData(LightningDataModule):
    """Targets for registration, yielded as the same batch at every step.

    Give either X-ray files (``targets``) or hidden poses (``true_poses``) at which targets are rendered from
    the CT of ``imaging`` (synthetic problems, for demos and benchmarks); :meth:`from_tensors` takes images in
    memory.

    Args:
        targets: X-ray files (DICOM, PNG, TIFF), T·V of them, target-major (target 0's views first). Each is
            read with :func:`drreg.targets.read_xray` and made DRR-like with :func:`drreg.targets.preprocess`
            (the options below); it must then match the module's full detector. A file that is blank (no
            contrast, before or after preprocessing) is refused by name (:func:`drreg.targets.check_target_contrast`).
        true_poses: pose vectors (T, 6) (Euler degrees in ``pose_convention``, mm) of view 0 of each target:
            with ``targets`` the known truth (for errors), without them the poses synthetic targets are
            rendered at.
        view_poses: pose vectors (V, 6) of the C-arm for each view at one patient position (their relative
            geometry gives the view transforms, :func:`view_transforms_from_poses`).
        view_transforms: (V, 4, 4) view-``v`` camera to view-0 camera transforms (instead of ``view_poses``).
        pose_convention: Euler convention of the pose vectors.
        negative_log: preprocessing of files: ``-log(I / I0)`` linearisation of raw detector images.
        rescale: preprocessing: min-max rescale to [0, 1].
        crop: preprocessing: border pixels removed.
        flip_horizontal: preprocessing: mirror columns.
        flip_vertical: preprocessing: mirror rows.
        size: preprocessing: resize to (H, W) (after cropping).
        steps: batches per epoch; default ``trainer.max_steps`` when set, else unbounded (the module stops the
            run after its last stage).
        imaging: the CT, the detector and the renderer. Detector values left ``None`` are filled from the files'
            tags (:meth:`intrinsics`); synthetic targets are rendered with a DRR built from it. The model receives
            the result, :attr:`imaging` (``drreg register`` links it).
        physics: synthetic targets simulated as X-rays instead of DRRs: a :class:`~drreg.physics.XRayPhysics`
            (tube spectrum, scatter, blur, quantum noise) applied by :class:`~drreg.physics.PhysicsDRR` to the CT
            of ``imaging`` (``class_path: drreg.physics.XRayPhysics`` in YAML). Its images are then read as a
            user's files are: raw ones (``output="raw"``, which needs ``negative_log=True``) are stored as 16-bit
            images (brightest pixel 65535), and all go through :func:`drreg.targets.preprocess` with the options
            above. The registration's DRR stays the plain one: a domain gap, as with real X-rays.
        physics_seed: seed of the simulated quantum noise.
        bone_scale: factor on the density of bone in the simulation (:class:`~drreg.physics.PhysicsDRR`).
        physics_folder: a folder to write the simulated raw images to as 16-bit TIFF files
            (``synthetic_target_<t>_view_<v>.tif``), which are then read back with
            :func:`drreg.targets.read_xray` exactly as target files; ``None``: the same 16-bit values in memory.

    Attributes:
        imaging: the imaging set-up completed from the files (and with the CT read, for synthetic targets), or
            ``None`` when none was given: give it to :class:`RegistrationModule`.

    Raises:
        FileNotFoundError: a target file is missing.
        ValueError: a file that cannot be read or is blank; detector values neither given nor in the files' tags;
            ``physics`` with target files, or raw ``physics`` images without ``negative_log=True``.

    Batch: ``{"targets": (T, V, 1, H, W) float32, "view_transforms": (V, 4, 4) float64, "names": T·V str,
    "true_poses": (T, 4, 4) float64 (only when known)}``.
    """

    if TYPE_CHECKING:
        # save_hyperparameters() stores an AttributeDict; Lightning types hparams as any MutableMapping.
        @property
        def hparams(self) -> AttributeDict: ...

    def __init__(
        self,
        targets: list[str] | None = None,
        true_poses: list[list[float]] | None = None,
        view_poses: list[list[float]] | None = None,
        view_transforms: list[list[list[float]]] | None = None,
        pose_convention: str = "ZXY",
        negative_log: bool = False,
        rescale: bool = True,
        crop: int = 0,
        flip_horizontal: bool = False,
        flip_vertical: bool = False,
        size: list[int] | None = None,
        steps: int | None = None,
        imaging: Imaging | None = None,
        physics: XRayPhysics | None = None,
        physics_seed: int = 0,
        bone_scale: float = 1.0,
        physics_folder: str | None = None,
    ) -> None:
        super().__init__()
        # The imaging may hold the CT and the physics is a module: neither is a hyperparameter (the CLI's config.yaml
        # records both as configured).
        self.save_hyperparameters(ignore=["imaging", "physics"])
        self.physics = physics
        check_integer(physics_seed, "physics_seed", minimum=None)
        check_number(bone_scale, "bone_scale", minimum=0.0)
        if physics is not None:
            if not isinstance(physics, XRayPhysics):
                raise TypeError(f"physics must be a drreg.physics.XRayPhysics, got {type(physics).__name__}")
            output = physics.output
            if targets is not None:
                raise ValueError(
                    "physics simulates synthetic targets at true_poses: give it without target files (targets=[...])"
                )
            if output == "raw" and not negative_log:
                raise ValueError(
                    "physics with output='raw' makes raw detector images (bright where few photons were absorbed): "
                    "set negative_log=True to read them as raw X-ray files are read, or give the physics "
                    "output='negative_log'"
                )
            if physics_folder is not None and output != "raw":
                raise ValueError(
                    f"physics_folder holds 16-bit raw images: it needs physics output='raw', got {output!r}"
                )
        check_choice(pose_convention, EULER_CONVENTIONS, name="pose_convention")
        check_integer(crop, "crop", minimum=0, unit="pixels")
        check_integer(steps, "steps", minimum=1, allow_none=True)
        for value in size or ():
            check_integer(value, "size", minimum=1, unit="pixels")
        if view_poses is not None and view_transforms is not None:
            raise ValueError("give view_poses or view_transforms, not both")
        if targets is not None:
            missing = [path for path in targets if not Path(path).exists()]
            if missing:
                raise FileNotFoundError(f"X-ray target file(s) not found: {', '.join(map(str, missing))}")
        self._batch: dict[str, Any] | None = None
        self._detector: dict[str, dict[str, Any]] = {"intrinsics": {}, "sources": {}, "problems": {}}
        self._files: tuple[torch.Tensor, list[str]] | None = None
        if targets is not None:
            # Read now, not at setup: what the files say about the detector completes the imaging set-up that the
            # model receives at construction (its DRR, checks and logged hyperparameters need it before fitting).
            self._files = self._read_files(targets, len(self._view_transforms()))
            if imaging is not None:
                imaging = imaging.with_intrinsics(self._detector["intrinsics"], self._detector["sources"])
                imaging.check_complete(self._detector["problems"])
        elif true_poses is not None and imaging is not None:
            imaging = imaging.load()  # the CT is read once, here, and shared with the model that receives it
        self.imaging = imaging

    def intrinsics(self) -> dict[str, float | int]:
        """What the target files say about the detector: ``height``, ``width`` (pixels), and
        when their tags hold them ``delx``, ``dely`` (mm, after crop/resize) and ``sdd`` (mm). Empty for synthetic
        targets and images given in memory."""
        return dict(self._detector["intrinsics"])

    def intrinsic_sources(self) -> dict[str, str]:
        """Where each value of :meth:`intrinsics` came from, e.g. ``{"sdd": "DICOM tag DistanceSourceToDetector of
        file xray.dcm", "height": "DICOM tag Rows of file xray.dcm (resized from 1436x1436 to 128x128)"}``."""
        return dict(self._detector["sources"])

    def intrinsic_problems(self) -> dict[str, str]:
        """DICOM tags present but unusable (e.g. ``PixelSpacing`` ``0\\0``), by the intrinsic they would give: a
        message naming the tag, its value and the file, raised when that value is needed."""
        return dict(self._detector["problems"])

    def target_names(self) -> list[str] | None:
        """What to call each of the T·V targets (target-major) in messages: ``"X-ray <file>"``, ``"target t"``,
        ``"synthetic target t"`` (with the view when there are several); ``None`` before :meth:`setup`."""
        return None if self._batch is None else list(self._batch["names"])

    @classmethod
    def from_tensors(
        cls,
        targets: torch.Tensor,
        true_poses: RigidTransform | None = None,
        view_transforms: torch.Tensor | None = None,
        steps: int | None = None,
    ) -> RegistrationData:
        """Data from images in memory.

        Args:
            targets: (T, V, 1, H, W) or (T, 1, H, W) (one view) target images.
            true_poses: T known poses of view 0 (for errors), or ``None``.
            view_transforms: (V, 4, 4) view transforms (identity for one view by default).
            steps: batches per epoch (see the class).

        Raises:
            ValueError: shapes that do not fit together, NaN/inf targets.
        """
        if targets.dim() == 4:
            targets = targets[:, None]
        check_shape(targets, "T V 1 H W", name="targets")
        check_finite(targets, "targets")
        names = target_names(*targets.shape[:2])
        for image, name in zip(targets.flatten(0, 1), names):
            check_target_contrast(image, name)
        if view_transforms is None:
            view_transforms = identity_view_transforms(targets.shape[1])
        check_shape(view_transforms, "V 4 4", name="view_transforms")
        if view_transforms.shape[0] != targets.shape[1]:
            raise ValueError(f"{view_transforms.shape[0]} view transforms for {targets.shape[1]} views per target")
        data = cls(steps=steps)
        batch: dict[str, Any] = {
            "targets": targets.float().contiguous(),
            "view_transforms": view_transforms.to(POSE_DTYPE).contiguous(),
            "names": names,
        }
        if true_poses is not None:
            if len(true_poses) != targets.shape[0]:
                raise ValueError(f"{len(true_poses)} true poses for {targets.shape[0]} targets")
            batch["true_poses"] = true_poses.matrix.to(POSE_DTYPE)
        data._batch = batch
        return data

    def _view_transforms(self) -> torch.Tensor:
        hp = self.hparams
        if hp.view_transforms is not None:
            views = torch.as_tensor(hp.view_transforms, dtype=POSE_DTYPE)
            check_shape(views, "V 4 4", name="view_transforms")
            return views
        if hp.view_poses is not None:
            return view_transforms_from_poses(pose_vectors_to_transform(hp.view_poses, hp.pose_convention))
        return torch.eye(4, dtype=POSE_DTYPE)[None]

    @override
    def setup(self, stage: str) -> None:
        if self._batch is not None:
            return
        hp = self.hparams
        views = self._view_transforms()
        true_poses = None if hp.true_poses is None else pose_vectors_to_transform(hp.true_poses, hp.pose_convention)
        if self._files is not None:
            targets, names = self._files
            if true_poses is not None and len(true_poses) != targets.shape[0]:
                raise ValueError(f"{len(true_poses)} true poses for {targets.shape[0]} targets")
        elif true_poses is not None:
            targets, names = self._render(true_poses, views)
        else:
            raise ValueError("RegistrationData needs X-ray files (targets=[...]) or hidden poses (true_poses=[...])")
        batch: dict[str, Any] = {"targets": targets, "view_transforms": views, "names": names}
        if true_poses is not None:
            batch["true_poses"] = true_poses.matrix
        self._batch = batch

    def _read_files(self, paths: Sequence[str], n_views: int) -> tuple[torch.Tensor, list[str]]:
        """(T, V, 1, H, W) targets read from T·V files, their names; what their tags say goes to ``_detector``."""
        hp = self.hparams
        if len(paths) % n_views:
            raise ValueError(f"{len(paths)} X-ray files do not split into targets of {n_views} views")
        options = dict(
            negative_log=hp.negative_log,
            rescale=hp.rescale,
            crop=hp.crop,
            flip_horizontal=hp.flip_horizontal,
            flip_vertical=hp.flip_vertical,
            size=None if hp.size is None else tuple(hp.size),
        )
        xrays = []
        for path in paths:
            xray = read_xray(path)
            check_target_contrast(xray.image, f"X-ray {path}")
            xray = xray.preprocess(**options)
            check_target_contrast(xray.image, f"X-ray {path} after preprocessing")
            xrays.append(xray)
        intrinsics, sources, problems = _shared_intrinsics(xrays)
        self._detector = {"intrinsics": intrinsics, "sources": sources, "problems": problems}
        images = [xray.image for xray in xrays]
        shapes = {tuple(image.shape[-2:]) for image in images}
        if len(shapes) > 1:
            raise ValueError(f"the X-ray targets differ in size ({sorted(shapes)}); resize them with size=[H, W]")
        targets = torch.cat(images).reshape(len(images) // n_views, n_views, *images[0].shape[1:])
        return targets, [f"X-ray {path}" for path in paths]

    def _render(self, true_poses: RigidTransform, views: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """(T, V, 1, H, W) synthetic targets rendered with this data module's own DRR, their names."""
        if self.imaging is None:
            raise ValueError(
                "synthetic targets (true_poses without files) are rendered from the CT: give the imaging set-up, "
                "RegistrationData(true_poses=..., imaging=Imaging(...)), and the module imaging=data.imaging"
            )
        vectors = self.hparams.true_poses
        n_views = len(views)
        names = target_names(len(true_poses), n_views, "synthetic target")
        if self.physics is None:
            drr = self.imaging.build_drr()  # this module's own renderer, dropped once the targets are made
            targets = synthetic_view_targets(drr, true_poses, views).cpu()
            verb = "rendered"
        else:
            targets = self._simulate(true_poses, views, names)
            verb = "simulated"
        names = [f"{name} {verb} at true pose {list(vectors[index // n_views])}" for index, name in enumerate(names)]
        for image, name in zip(targets.flatten(0, 1), names):
            check_target_contrast(image, name)
        return targets, names

    def _simulate(self, true_poses: RigidTransform, views: torch.Tensor, names: list[str]) -> torch.Tensor:
        """(T, V, 1, H, W) physics-simulated targets, read as files are: 16-bit raw images (written and read back
        when ``physics_folder`` is given), then :func:`drreg.targets.preprocess` with this module's options."""
        hp = self.hparams
        if self.imaging is None or self.physics is None:
            raise RuntimeError("_simulate needs the imaging set-up and the physics")
        generator = torch.Generator().manual_seed(hp.physics_seed)
        images = physics_view_targets(self.imaging, self.physics, true_poses, views, hp.bone_scale, generator).cpu()
        raw = self.physics.output == "raw"
        options = dict(
            negative_log=hp.negative_log and raw,  # a negative_log physics output is already linear
            rescale=hp.rescale,
            crop=hp.crop,
            flip_horizontal=hp.flip_horizontal,
            flip_vertical=hp.flip_vertical,
            size=None if hp.size is None else tuple(hp.size),
        )
        folder = None if hp.physics_folder is None else Path(hp.physics_folder)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        made = []
        for index, (image, name) in enumerate(zip(images.flatten(0, 1), names)):
            check_target_contrast(image, name)
            if raw:
                image = _as_uint16(image)  # as a detector's 16-bit file stores it
            if folder is not None:
                from PIL import Image

                path = folder / f"synthetic_target_{index // len(views)}_view_{index % len(views)}.tif"
                Image.fromarray(image[0].numpy().astype("uint16")).save(path)
                image = read_xray(path).image
            made.append(preprocess(image, **options))
        return torch.cat(made).reshape(*images.shape[:2], *made[0].shape[1:])

    @property
    def batch(self) -> dict[str, Any]:
        """The batch (after :meth:`setup`)."""
        if self._batch is None:
            raise RuntimeError("RegistrationData.setup has not run yet")
        return self._batch

    @override
    def train_dataloader(self) -> DataLoader:
        length = self.hparams.get("steps")
        trainer = self.trainer
        if not length and trainer is not None and trainer.max_steps and trainer.max_steps > 0:
            length = trainer.max_steps
        dataset = _EndlessBatch(self.batch) if not length else _RepeatedBatch(self.batch, int(length))
        # batch_size=None: no collation, the batch dict goes through as it is.
        return DataLoader(dataset, batch_size=None, num_workers=0)


def _shared_intrinsics(
    xrays: Sequence[XRayTarget],
) -> tuple[dict[str, float | int], dict[str, str], dict[str, str]]:
    """Detector intrinsics that every X-ray file agrees on (the DRR has one detector), where each came from
    (``XRayTarget.sources``), and the unusable tags behind the missing ones, by intrinsic name."""
    first = xrays[0]
    intrinsics: dict[str, float | int] = {"height": first.height, "width": first.width}
    if first.pixel_spacing is not None:
        intrinsics["dely"], intrinsics["delx"] = first.pixel_spacing
    if first.sdd is not None:
        intrinsics["sdd"] = first.sdd
    sources = {name: source for name, source in first.sources.items() if name in intrinsics}
    problems: dict[str, str] = {}
    for xray in xrays:
        for tag_value, names in (("pixel_spacing", ("delx", "dely")), ("sdd", ("sdd",))):
            if tag_value in xray.tag_problems:
                problems.update({name: xray.tag_problems[tag_value] for name in names if name not in problems})
    for xray in xrays[1:]:
        if (xray.pixel_spacing, xray.sdd) != (first.pixel_spacing, first.sdd):
            unusable = "".join(f" ({problem})" for problem in dict.fromkeys(problems.values()))
            raise ValueError(
                f"the X-ray files disagree on the detector: {first.path} has pixel spacing {first.pixel_spacing} mm "
                f"and sdd {first.sdd} mm, {xray.path} has {xray.pixel_spacing} mm and {xray.sdd} mm{unusable}; "
                "drreg registers targets of one detector at a time"
            )
    return intrinsics, sources, problems
