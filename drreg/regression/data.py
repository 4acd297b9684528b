"""On-the-fly data for pose regression: cheap pose batches from CPU workers, DRRs rendered on the training device.

The data loaders yield only poses (``{"pose": (B, 4, 4)}``); each pose is a pure function of
``(seed, split, index)``, so any number of workers and DDP ranks draw the same poses, and the validation set
is the same every epoch. After the batch reaches the module's device, :meth:`PoseRegressionDataModule.
on_after_batch_transfer` renders the DRRs there (no gradient), rescales them to ``[0, 1]`` and, in training
only, applies the physics domain randomisation (:class:`~drreg.regression.PhysicsRandomization`: some or all
images are simulated X-rays instead of DRRs) and the sim-to-real augmentation. The batch the ``LightningModule``
sees:

- ``pose``: (B, 4, 4) float32 true poses (camera to world, mm);
- ``target``: (B, 1, H, W) rendered images rescaled to ``[0, 1]`` (per image, min-max): DRRs, or in training the
  simulated X-rays ``-log(I / I_air)`` of the images drawn for physics randomisation;
- ``image``: (B, 1, H, W) what the network reads: ``target`` augmented in training, ``target`` otherwise;
- ``rays``: number of rays rendered for the batch (an ``int``, for throughput logging).

A batch that already holds an ``image`` (real X-rays, for ``predict``) is passed through unrendered.

The data module owns the description of the imaging (:attr:`PoseRegressionDataModule.imaging`, an
:class:`~drreg.imaging.Imaging` made from its arguments) and renders with a DRR of its own built from it; the
model receives the description (``drreg fit`` links ``data.imaging`` to ``model.imaging``) and builds its own.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
import torchio
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset
from typing_extensions import override

from drreg._checks import check_integer, check_number
from drreg._images import min_max_rescale
from drreg._pixels import sample_pixel_indices
from drreg.drr import DRR
from drreg.geometry.pose import RigidTransform
from drreg.imaging import Imaging
from drreg.physics import PhysicsDRR
from drreg.regression.augment import SimToRealAugmentation
from drreg.regression.randomization import PhysicsRandomization
from drreg.regression.sampling import PoseSampler, UniformPoseSampler
from drreg.volume import EXAMPLE_VOLUME, load_volume

if TYPE_CHECKING:
    from lightning.fabric.utilities.data import AttributeDict

__all__ = ["PoseDataset", "PoseRegressionDataModule", "load_volume", "rescale_images", "fill_sparse", "SPLITS"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Data splits; each has its own stream of seeded poses."""

# Odd 64-bit constant (the golden ratio's) that spreads (seed, split, index) over the generator's seed space.
_MIX = 0x9E3779B97F4A7C15


def _item_seed(seed: int, split: int, index: int) -> int:
    """A 63-bit generator seed, distinct for every ``(seed, split, index)`` in practice."""
    return ((seed * 3 + split) * _MIX + index * 0xBF58476D1CE4E5B9) % (2**63 - 1)


def rescale_images(images: torch.Tensor) -> torch.Tensor:
    """Min-max rescale each image to ``[0, 1]``, its channels together (for one channel, as
    :func:`drreg.targets.preprocess` with ``rescale=True``).

    Args:
        images: (B, C, H, W) images.

    Returns:
        (B, C, H, W) images in ``[0, 1]``; a constant image maps to zeros.

    Example:
        >>> rescale_images(torch.tensor([[[[1.0, 3.0]]]]))
        tensor([[[[0., 1.]]]])
    """
    return min_max_rescale(images, dims=tuple(range(1, images.dim())))  # each (C, H, W) element as a whole


def fill_sparse(images: torch.Tensor, rendered: torch.Tensor) -> torch.Tensor:
    """Fill the pixels that were not rendered with the mean of the rendered ones nearby (normalized convolution).

    Args:
        images: (B, C, H, W) images, zero where not rendered.
        rendered: (B, 1, H, W) or (H, W) boolean mask of the rendered pixels.

    Returns:
        (B, C, H, W) images: rendered pixels unchanged, the others the mean of the rendered pixels in a
        ``k x k`` window, ``k`` odd and about ``2 / sqrt(fraction rendered)`` (0 if none is in the window).
    """
    mask = rendered.to(images.dtype).expand(images.shape[0], 1, *images.shape[-2:])
    fraction = float(mask.mean().clamp_min(1e-6))
    size = 2 * math.ceil(1.0 / math.sqrt(fraction)) + 1
    total = F.avg_pool2d(images * mask, size, stride=1, padding=size // 2, count_include_pad=False)
    weight = F.avg_pool2d(mask, size, stride=1, padding=size // 2, count_include_pad=False)
    # Clamp the weight before dividing: a window with no rendered pixel gives 0, not NaN.
    filled = total / weight.clamp_min(1e-6)
    return torch.where(mask > 0, images, filled)


class PoseDataset(Dataset):
    """A virtual dataset of ``size`` random poses; pose ``i`` is a pure function of ``(seed, split, i)``.

    Args:
        sampler: the pose sampler.
        size: number of poses (the length of an epoch).
        seed: base seed.
        split: index of the split in :data:`SPLITS` (0 train, 1 val, 2 test), so splits never share poses.
        offset: item ``i`` is pose ``offset + i`` of the stream (a resumed training continues the stream).

    Convention: items are ``{"pose": (4, 4) float32}`` camera-to-world matrices (mm); an epoch replays the same
    poses, so take ``size >= max_steps * batch_size`` for training poses never seen twice.

    Example:
        >>> dataset = PoseDataset(UniformPoseSampler(), size=10, seed=0)
        >>> torch.equal(dataset[3]["pose"], PoseDataset(UniformPoseSampler(), size=10, seed=0)[3]["pose"])
        True
    """

    def __init__(self, sampler: PoseSampler, size: int, seed: int = 0, split: int = 0, offset: int = 0) -> None:
        self.sampler = sampler
        self.size = check_integer(size, "size", minimum=1)
        self.seed = check_integer(seed, "seed", minimum=None)
        self.split = check_integer(split, "split", minimum=0)
        self.offset = check_integer(offset, "offset", minimum=0)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for a PoseDataset of {self.size} poses")
        index = index % self.size + self.offset
        generator = torch.Generator().manual_seed(_item_seed(self.seed, self.split, index))
        return {"pose": self.sampler(1, generator).matrix[0].to(torch.float32)}


class PoseRegressionDataModule(pl.LightningDataModule):
    """Sampled poses and their DRRs, rendered on the training device.

    Args:
        volume: ``"example"`` (the embedded chest phantom) or a CT path (see :func:`load_volume`); a
            ``torchio.Subject`` also works from Python.
        sdd: source-to-detector distance (mm).
        height: image rows.
        delx: pixel spacing (mm).
        width: image columns (default ``height``).
        dely: row spacing (mm, default ``delx``).
        renderer: ``"siddon"`` or ``"trilinear"``.
        n_points: samples per ray for ``"trilinear"``.
        backend: ``"auto"``, ``"torch"`` or ``"fused"`` (see :func:`drreg.render.render`).
        p_subsample: render only this fraction of the pixels of *training* images (a fresh subset per batch)
            and fill the others with :func:`fill_sparse`; validation and test images are always dense.
        orientation: ``"AP"``, ``"PA"`` or ``None`` (see :func:`drreg.read`).
        bone_attenuation_multiplier: factor on bone voxels.
        voxel_size: resample the CT to this isotropic voxel size (mm) before rendering, or ``None`` to keep it.
            Small DRRs gain nothing from fine voxels, and a coarse volume fits in the CPU's caches: at 64 x 64
            pixels of 6 mm, 4 mm voxels render the example CT about 4x faster than its 1 x 1 x 2.5 mm ones.
        sampler: the pose sampler (default :class:`UniformPoseSampler` with its default ranges).
        augmentation: sim-to-real augmentation of training images (none by default).
        physics: physics domain randomisation of training images (none by default): the images it draws are
            simulated X-rays (:class:`~drreg.physics.PhysicsDRR` line integrals of the CT's HU, through random
            physics), rescaled like the DRRs, then augmented by ``augmentation`` if given. They are always dense
            (scatter and blur need whole images; ``p_subsample`` applies to the plain DRRs), and ignore
            ``bone_attenuation_multiplier`` (the randomisation has its own ``bone_scale``).
        batch_size: poses per batch (per device under DDP).
        train_size: training poses per epoch (a virtual dataset; see :class:`PoseDataset`).
        val_size: fixed validation poses (seeded: the same every epoch).
        test_size: fixed test poses (also the ``predict`` set).
        seed: base seed of all pose streams (and of the sparse pixel subsets, augmentation and physics).
        num_workers: CPU workers sampling poses (0 samples in the main process: poses are cheap).

    Attributes:
        imaging: the description of the CT, the detector and the renderer made from these arguments (the CT is
            read at ``setup``, then shared), for the model: ``PoseRegressionModule(imaging=data.imaging)``.

    Raises:
        ValueError: invalid sizes or ``p_subsample``, or (at ``setup``) a volume/detector the DRR rejects.
    """

    if TYPE_CHECKING:
        # save_hyperparameters() stores an AttributeDict; Lightning types hparams as any MutableMapping.
        @property
        def hparams(self) -> AttributeDict: ...

    def __init__(
        self,
        volume: str = EXAMPLE_VOLUME,
        sdd: float = 1020.0,
        height: int = 64,
        delx: float = 6.0,
        width: int | None = None,
        dely: float | None = None,
        renderer: str = "trilinear",
        n_points: int = 128,
        backend: str = "auto",
        p_subsample: float | None = None,
        orientation: str | None = "AP",
        bone_attenuation_multiplier: float = 1.0,
        voxel_size: float | None = None,
        sampler: PoseSampler | None = None,
        augmentation: SimToRealAugmentation | None = None,
        physics: PhysicsRandomization | None = None,
        batch_size: int = 16,
        train_size: int = 100_000,
        val_size: int = 64,
        test_size: int = 256,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("train_size", train_size)):
            check_integer(value, name, minimum=1)
        for name, value in (("val_size", val_size), ("test_size", test_size), ("num_workers", num_workers)):
            check_integer(value, name, minimum=0)
        check_number(p_subsample, "p_subsample", positive=True, maximum=1.0, allow_none=True)
        check_number(voxel_size, "voxel_size", positive=True, allow_none=True, unit="mm")
        check_integer(seed, "seed", minimum=None)
        # The sampler, augmentation and physics are objects (the CLI records their configuration); a subject is data.
        ignore = ["sampler", "augmentation", "physics"] + ([] if isinstance(volume, (str, Path)) else ["volume"])
        self.save_hyperparameters(ignore=ignore)
        self.volume = volume
        self.sampler = UniformPoseSampler() if sampler is None else sampler
        self.augmentation = augmentation
        if physics is not None and not isinstance(physics, PhysicsRandomization):
            raise TypeError(f"physics must be a PhysicsRandomization or None, got {type(physics).__name__}")
        self.physics = physics
        self.batch_size = int(batch_size)
        self.imaging = Imaging(
            volume=volume,
            orientation=orientation,
            bone_attenuation_multiplier=bone_attenuation_multiplier,
            sdd=sdd,
            height=height,
            delx=delx,
            width=width,
            dely=dely,
            renderer=renderer,
            backend=backend,
            n_points=n_points,
            voxel_size=voxel_size,
        )
        self.subject: torchio.Subject | None = None
        self.drr: DRR | None = None
        self.physics_drr: PhysicsDRR | None = None
        self._sparse_generator: torch.Generator | None = None
        self._augment_generator: torch.Generator | None = None
        self._physics_generator: torch.Generator | None = None

    # -- the reference pose (linked to the model by the CLI) --------------------------------------------

    @property
    def reference_pose(self) -> list[list[float]]:
        """The sampler's reference pose as a (4, 4) nested list (camera to world, mm)."""
        return self.sampler.reference.matrix[0].tolist()

    # -- set-up ---------------------------------------------------------------------------------------------

    @override
    def setup(self, stage: str) -> None:
        if self.drr is not None:
            return
        hp = self.hparams
        self.imaging = self.imaging.load()  # read (and resampled to voxel_size) once, then shared
        self.subject = self.imaging.subject
        self.drr = self.imaging.build_drr(reshape=True)
        rank = self.trainer.global_rank if self.trainer is not None else 0
        # Per-rank streams: ranks draw different pixel subsets and augmentations, reproducibly.
        self._sparse_generator = torch.Generator().manual_seed(_item_seed(hp.seed, 3, rank))
        self._augment_generator = torch.Generator().manual_seed(_item_seed(hp.seed, 4, rank))
        self._physics_generator = torch.Generator().manual_seed(_item_seed(hp.seed, 5, rank))
        if self.physics is not None:
            self.physics_drr = self._build_physics_drr()
        rank_zero_info(
            f"pose regression data: volume {tuple(self.drr.density.shape)}, {self.drr.detector.height}x"
            f"{self.drr.detector.width} DRRs ({hp.renderer}), sampler {self.sampler!r}"
            + ("" if self.physics is None else f", physics {self.physics!r}")
        )

    def _build_physics_drr(self) -> PhysicsDRR:
        """The :class:`~drreg.physics.PhysicsDRR` of the imaging (the same CT, detector and renderer as the DRR)."""
        return self.imaging.load().build_physics_drr()

    def dataset(self, split: str, offset: int = 0) -> PoseDataset:
        """The :class:`PoseDataset` of a split (``"train"``, ``"val"`` or ``"test"``), starting ``offset`` poses into
        its stream."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
        size = {"train": self.hparams.train_size, "val": self.hparams.val_size, "test": self.hparams.test_size}[split]
        if size < 1:
            raise ValueError(f"the {split} split is empty: set {split}_size >= 1")
        return PoseDataset(self.sampler, size, self.hparams.seed, SPLITS.index(split), offset)

    def _loader(self, split: str, shuffle: bool, offset: int = 0) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            self.dataset(split, offset),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
            drop_last=split == "train",
        )

    @override
    def train_dataloader(self) -> DataLoader:
        # No shuffle: the poses are already i.i.d. draws; under DDP Lightning gives each rank its own indices.
        # A training resumed from a checkpoint continues the pose stream where it stopped, instead of replaying it.
        trainer = self.trainer
        offset = 0 if trainer is None else trainer.global_step * self.batch_size * trainer.world_size
        return self._loader("train", shuffle=False, offset=offset)

    @override
    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", shuffle=False) if self.hparams.val_size > 0 else []

    @override
    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    @override
    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # -- rendering --------------------------------------------------------------------------------------

    @override
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if not isinstance(batch, dict) or "pose" not in batch or "image" in batch:
            return batch
        training = self.trainer is not None and self.trainer.training
        return self.render_batch(batch, training)

    def render_batch(self, batch: dict[str, Any], training: bool = False) -> dict[str, Any]:
        """Render the images of a batch of poses on the poses' device.

        Args:
            batch: ``{"pose": (B, 4, 4)}`` camera-to-world poses (mm).
            training: apply ``p_subsample``, the physics randomisation and the augmentation.

        Returns:
            The batch with ``target``, ``image`` ((B, 1, H, W), in ``[0, 1]``) and ``rays`` added.
        """
        if self.drr is None:
            self.setup("fit")
        pose = batch["pose"]
        simulated: torch.Tensor | None = None
        if training and self.physics is not None:
            simulated = self.physics.choose(len(pose), self._physics_generator).to(pose.device)
        with torch.no_grad():
            if simulated is None or not bool(simulated.any()):
                target, rays = self._render_drrs(pose, training)
            else:
                drr = cast(DRR, self.drr)
                target = pose.new_empty(len(pose), 1, drr.detector.height, drr.detector.width, dtype=torch.float32)
                rays = drr.detector.n_pixels * int(simulated.sum())  # simulated images are whole
                plain = ~simulated
                if bool(plain.any()):
                    target[plain], plain_rays = self._render_drrs(pose[plain], training)
                    rays += plain_rays
                physics = cast(PhysicsRandomization, self.physics)
                target[simulated] = self.render_physics(pose[simulated], physics, self._physics_generator)
            image = target
            if training and self.augmentation is not None:
                image = self.augmentation(target, generator=self._augment_generator)
        return {**batch, "target": target, "image": image, "rays": rays}

    def _render_drrs(self, pose: torch.Tensor, training: bool) -> tuple[torch.Tensor, int]:
        """``(B, 1, H, W)`` DRRs rescaled to ``[0, 1]`` (sparse, then filled, in training with ``p_subsample``) and
        the number of rays rendered."""
        drr = cast(DRR, self.drr)  # setup has built it
        if drr.device != pose.device:
            drr.to(pose.device)
        hp = self.hparams
        n_pixels = drr.detector.n_pixels
        if training and hp.p_subsample is not None and hp.p_subsample < 1:
            count = max(1, int(n_pixels * hp.p_subsample))
            indices = sample_pixel_indices(n_pixels, count, generator=self._sparse_generator, device=pose.device)
            image = drr(RigidTransform(pose), indices=indices)
            rendered = torch.zeros(n_pixels, dtype=torch.bool, device=pose.device)
            rendered[indices] = True
            image = fill_sparse(image, rendered.reshape(drr.detector.height, drr.detector.width))
            rays = count * len(pose)
        else:
            image = drr(RigidTransform(pose))
            rays = n_pixels * len(pose)
        return rescale_images(image.to(torch.float32)), rays

    def render_physics(
        self, pose: torch.Tensor, physics: PhysicsRandomization, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Simulated X-rays at poses, through draws of ``physics``, rescaled to ``[0, 1]`` as the DRRs are.

        The training images of the ``physics`` option; also a way to make physics-simulated test images of the
        same CT and detector (e.g. ``PhysicsRandomization.fixed(...)`` for one known physics).

        Args:
            pose: ``(B, 4, 4)`` camera-to-world poses (mm).
            physics: the physics to draw from.
            generator: CPU random generator of the draws and the noise (seeded: the same images again).

        Returns:
            ``(B, 1, H, W)`` float32 ``-log(I / I_air)`` rescaled per image to ``[0, 1]``, on the poses' device.

        Raises:
            ValueError: a CT without HU (a ``volume`` image), see :class:`~drreg.physics.PhysicsDRR`.
        """
        if self.drr is None:
            self.setup("fit")
        if self.physics_drr is None:
            self.physics_drr = self._build_physics_drr()
        physics_drr = self.physics_drr
        if physics_drr.hu.device != pose.device:
            physics_drr.to(pose.device)
        detector = physics_drr.drr.detector
        with torch.no_grad():
            line_integrals = physics_drr.line_integrals(RigidTransform(pose))
            images, _ = physics.simulate(
                line_integrals, physics_drr.materials, (detector.dely, detector.delx), generator
            )
        return rescale_images(images.to(torch.float32))

    @override
    def state_dict(self) -> dict[str, Any]:
        generators = {
            "sparse": self._sparse_generator,
            "augment": self._augment_generator,
            "physics": self._physics_generator,
        }
        return {name: g.get_state() for name, g in generators.items() if g is not None}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self._sparse_generator is not None and "sparse" in state_dict:
            self._sparse_generator.set_state(state_dict["sparse"])
        if self._augment_generator is not None and "augment" in state_dict:
            self._augment_generator.set_state(state_dict["augment"])
        if self._physics_generator is not None and "physics" in state_dict:
            self._physics_generator.set_state(state_dict["physics"])
