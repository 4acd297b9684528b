"""``PoseRegressionModule``: train a network to read a camera pose off an X-ray, with DRRs rendered on the fly.

The math is in plain functions (:func:`geodesic_pose_loss`, :func:`warmup_cosine`, the networks in
:mod:`drreg.regression.networks`, whose image encoder is injected by ``class_path``); the module orchestrates:
it predicts poses, adds an optional image term (the DRR at the predicted pose against the target, multiscale
NCC), logs pose errors from
:mod:`drreg.metrics`, and exposes what the :mod:`drreg.callbacks` need (:meth:`PoseRegressionModule.
overlay_images`, :attr:`PoseRegressionModule.render_stats`).

The module receives the description of the imaging (:class:`~drreg.imaging.Imaging`: the CT, the detector and the
renderer) from the data, by injection (``imaging=data.imaging``; ``drreg fit`` links it), and builds its own DRR
from it at ``setup``, never reaching into the data module: the image term renders with the detector that made the
training images, and checkpoints hold the network only (the DRR and its CT are not saved).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.aggregation import CatMetric
from typing_extensions import override

from drreg._checks import check_integer, check_number
from drreg.drr import DRR
from drreg.geometry.pose import RigidTransform, rotation_geodesic_distance, translation_distance
from drreg.imaging import Imaging
from drreg.losses import multiscale_ncc
from drreg.metrics import (
    DoubleGeodesicError,
    MeanTargetRegistrationError3D,
    RotationError,
    TranslationError,
    ct_grid_points,
    rotation_error_deg,
    translation_error_mm,
)
from drreg.regression.data import rescale_images
from drreg.regression.networks import PoseRegressor

if TYPE_CHECKING:
    from lightning.fabric.utilities.data import AttributeDict

__all__ = ["PoseRegressionModule", "geodesic_pose_loss", "warmup_cosine", "ARCHITECTURE_KEYS"]

ARCHITECTURE_KEYS: tuple[str, ...] = ("parameterization", "convention")
"""Hyperparameters a checkpoint must share with the module that loads its weights (besides the network's layout:
the names and shapes of its weights, which say whatever the encoder, injected or named by the shortcut)."""

_OVERLAY_IMAGES = 4  # images kept from the last step for the overlay callback
_PREFIX = "network."  # of the network's weights in the module's state dict
_LISTED = 3  # differences named in a layout-mismatch message


def _layout_mismatches(checkpoint_state: dict[str, Any], network_state: dict[str, torch.Tensor]) -> list[str]:
    """How a checkpoint's network weights differ in names and shapes from a network's (empty if they match)."""
    theirs = {k[len(_PREFIX) :]: tuple(v.shape) for k, v in checkpoint_state.items() if k.startswith(_PREFIX)}
    ours = {k: tuple(v.shape) for k, v in network_state.items()}
    if not theirs or theirs == ours:  # no network weights at all: nothing to compare
        return []
    missing, extra = sorted(ours.keys() - theirs.keys()), sorted(theirs.keys() - ours.keys())
    shapes = [f"{k} {theirs[k]} vs {ours[k]}" for k in sorted(ours.keys() & theirs.keys()) if theirs[k] != ours[k]]
    parts = [
        f"{what}: {', '.join(names[:_LISTED])}{', ...' if len(names) > _LISTED else ''}"
        for what, names in (
            ("weights of other shapes (checkpoint vs this model)", shapes),
            ("weights missing from the checkpoint", missing),
            ("weights this model lacks", extra),
        )
        if names
    ]
    return [f"the network layout differs ({'; '.join(parts)})"]


def geodesic_pose_loss(
    pred: RigidTransform, true: RigidTransform, rotation_weight: float = 1.0, translation_weight: float = 0.01
) -> torch.Tensor:
    """Geodesic SE(3) loss: weighted rotation angle plus translation distance.

    Args:
        pred: B predicted poses (camera to world, mm).
        true: B true poses.
        rotation_weight: weight per radian of the geodesic angle between the rotations.
        translation_weight: weight per mm of the distance between the parameter translations ``R^T t``.

    Returns:
        (B,) losses ``rotation_weight * angle + translation_weight * distance``.

    Convention: the translation term compares ``R^T t`` (:func:`drreg.metrics.translation_error_mm`: where the
    world origin sits in each camera's axes), which does not grow with the rotation error, unlike the
    distance between the camera centres ``t``.

    Example:
        >>> eye = RigidTransform(torch.eye(4))
        >>> shifted = torch.eye(4); shifted[0, 3] = 10.0
        >>> geodesic_pose_loss(RigidTransform(shifted), eye, 1.0, 0.1)
        tensor([1.])
    """
    angle = rotation_geodesic_distance(pred.rotation, true.rotation.to(pred.dtype))
    pred_translation = pred.parameter_translation
    true_translation = true.parameter_translation.to(pred.dtype)
    return rotation_weight * angle + translation_weight * translation_distance(pred_translation, true_translation)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, final_fraction: float = 0.01) -> float:
    """Learning-rate factor: linear warm-up from 0, then a cosine decay to ``final_fraction``.

    Args:
        step: optimizer step (0-based).
        warmup_steps: steps of linear warm-up.
        total_steps: steps of the whole schedule (the factor stays at ``final_fraction`` after it).
        final_fraction: factor at the end.

    Returns:
        The factor in ``[0, 1]``.

    Example:
        >>> [round(warmup_cosine(s, 2, 10), 3) for s in (0, 1, 2, 10)]
        [0.5, 1.0, 1.0, 0.01]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


class PoseRegressionModule(pl.LightningModule):
    """Pose regression: a network predicts the camera pose of a DRR / X-ray; trained on poses sampled on the fly.

    Args:
        parameterization: rotation parameterization of the network's head (see
            :data:`~drreg.regression.networks.ROTATION_OUTPUT_SIZES`), e.g. ``"rotation_6d"``, ``"quaternion"``,
            ``"euler_angles"``, ``"se3_log_map"``.
        convention: Euler convention for ``"euler_angles"``.
        encoder: the image encoder (an ``nn.Module`` with ``out_features``), given by ``class_path`` in a recipe:
            :class:`~drreg.regression.networks.ResNetEncoder` (drreg's 1-channel ResNet),
            :class:`~drreg.regression.networks.TimmEncoder` (optional timm), or your own. If ``None``, the one the
            shortcut arguments below name (drreg's ResNet with 32 base channels and depths (2, 2, 2, 2) by default).
        backbone: shortcut for ``encoder``: ``"resnet"`` or ``"timm/<model>"``; not with ``encoder``.
        base_channels: shortcut: first-stage channels of the built-in ResNet; not with ``encoder``.
        depths: shortcut: blocks per stage of the built-in ResNet; not with ``encoder``.
        pretrained: shortcut: pretrained timm weights; not with ``encoder``.
        reference_pose: (4, 4) reference pose (camera to world, mm): the network predicts offsets from it
            (the CLI links it to the data module's sampler). Identity if ``None``.
        translation_scale: mm per unit of the translation head.
        rotation_weight: loss weight per radian of rotation error.
        translation_weight: loss weight per mm of translation error.
        image_loss_weight: weight of the image term ``1 - multiscale_ncc(DRR(pred), target)`` (0 = off; on,
            it renders B more DRRs per step, with gradients).
        image_patch_sizes: window sizes of the image term's multiscale NCC (``None`` = global).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps of the learning rate (then a cosine decay over the training).
        init_checkpoint: fine-tuning: a checkpoint whose network weights are loaded when fitting starts (its
            architecture and parameterization must match); the optimizer starts fresh.
        mtre_points_per_axis: the 3D mTRE uses an ``n³`` grid of CT points (:func:`drreg.metrics.ct_grid_points`).
        imaging: the CT, the detector and the renderer of the training images: the data's
            (``PoseRegressionDataModule.imaging``; the CLI links it). At ``setup`` the module builds its own DRR from
            it, for the image term, the overlays, the double geodesic error (its ``sdd``) and the mTRE (its CT). If
            ``None``, none of these: the image term must be off.

    Raises:
        ValueError: unknown parameterization, convention or backbone, bad weights, an ``encoder`` together with a
            shortcut argument; at ``setup``, an image term without ``imaging``; at fit time, an ``init_checkpoint``
            or a resumed checkpoint of another network layout or parameterization.
        TypeError: an ``encoder`` that is not an ``nn.Module`` with an ``out_features``.
        ImportError: a timm backbone without timm.

    Convention: with the ``drreg`` command (LightningCLI) the checkpoint's hyperparameters hold the encoder's
    ``class_path`` and ``init_args``, and ``load_from_checkpoint`` rebuilds it; a module built in Python with an
    encoder object stores that object (Lightning warns), so pass ``encoder=`` again to ``load_from_checkpoint``.
    ``imaging`` is not a hyperparameter (it may hold the CT): pass ``imaging=data.imaging`` to
    ``load_from_checkpoint`` too.

    Batch (see :mod:`drreg.regression.data`): ``image`` (B, 1, H, W) network input in ``[0, 1]``, ``pose``
    (B, 4, 4) true poses (optional in ``predict``), ``target`` (B, 1, H, W) clean DRRs for the image term.
    """

    if TYPE_CHECKING:
        # save_hyperparameters() stores an AttributeDict; Lightning types hparams as any MutableMapping.
        @property
        def hparams(self) -> AttributeDict: ...

    def __init__(
        self,
        parameterization: str = "rotation_6d",
        convention: str | None = None,
        encoder: nn.Module | None = None,
        backbone: str | None = None,
        base_channels: int | None = None,
        depths: Sequence[int] | None = None,
        pretrained: bool | None = None,
        reference_pose: list[list[float]] | None = None,
        translation_scale: float = 50.0,
        rotation_weight: float = 1.0,
        translation_weight: float = 0.01,
        image_loss_weight: float = 0.0,
        image_patch_sizes: Sequence[int | None] = (None, 9),
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_steps: int = 100,
        init_checkpoint: str | None = None,
        mtre_points_per_axis: int = 5,
        imaging: Imaging | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("rotation_weight", rotation_weight),
            ("translation_weight", translation_weight),
            ("image_loss_weight", image_loss_weight),
            ("weight_decay", weight_decay),
        ):
            check_number(value, name, minimum=0.0)
        check_number(lr, "lr", positive=True)
        check_integer(warmup_steps, "warmup_steps", minimum=0)
        check_integer(mtre_points_per_axis, "mtre_points_per_axis", minimum=0)
        if init_checkpoint is not None and not Path(init_checkpoint).is_file():
            raise FileNotFoundError(f"init_checkpoint {init_checkpoint!r} does not exist")
        self.save_hyperparameters(ignore=["imaging"])  # the imaging may hold the CT: not a hyperparameter
        self.imaging = imaging
        self.network = PoseRegressor(
            parameterization,
            convention,
            encoder,
            reference_pose,
            translation_scale,
            backbone=backbone,
            base_channels=base_channels,
            depths=depths,
            pretrained=pretrained,
        )
        self.render_stats: dict[str, int] = {"drrs": 0, "rays": 0}
        self.drr: DRR | None = None
        self._last: dict[str, torch.Tensor] | None = None
        self._metrics: torch.nn.ModuleDict | None = None
        self._mtre_points: torch.Tensor | None = None

    # -- prediction ------------------------------------------------------------------------------------

    @override
    def forward(self, images: torch.Tensor) -> RigidTransform:
        """Predict poses.

        Args:
            images: (B, 1, H, W) images rescaled to ``[0, 1]`` (min-max per image, as the training DRRs).

        Returns:
            (B, 4, 4) float32 :class:`RigidTransform` (camera to world, mm).
        """
        return self.network.predict(images)

    @property
    def reference(self) -> RigidTransform:
        """The reference pose (batch of 1): the prediction of an untrained network, the mean of the sampler."""
        return RigidTransform(self.network.reference[None])

    # -- set-up ----------------------------------------------------------------------------------------

    def _build_renderer(self, imaging: Imaging) -> None:
        """Build the module's own DRR (for the image term and overlays) and the mTRE points from ``imaging``.

        The DRR is kept out of the module's children, so that it is not saved in checkpoints (nor its CT);
        :meth:`_renderer` moves it to the module's device when used.
        """
        imaging = imaging.load()  # the CT as the data renders it (resampled to its voxel_size)
        object.__setattr__(self, "drr", imaging.build_drr(reshape=True))
        if self.hparams.mtre_points_per_axis > 0:
            points = ct_grid_points(imaging.subject, self.hparams.mtre_points_per_axis, threshold=0.0)
            self._mtre_points = torch.as_tensor(points, dtype=torch.float64)

    def _renderer(self) -> DRR:
        """The module's DRR on the module's device (:meth:`setup` has built it)."""
        drr = cast(DRR, self.drr)
        if drr.device != self.device:
            drr.to(self.device)
        return drr

    @override
    def setup(self, stage: str) -> None:
        if self.imaging is not None and self.drr is None:
            self._build_renderer(self.imaging)
        if self.hparams.image_loss_weight > 0 and self.drr is None and stage != "predict":
            raise ValueError(
                "image_loss_weight > 0 renders DRRs at the predicted poses and needs the imaging set-up: give "
                "imaging=data.imaging (the PoseRegressionDataModule's; drreg fit links it), or set image_loss_weight=0"
            )
        self._metrics = torch.nn.ModuleDict({s: self._make_metrics() for s in ("val", "test")}).to(self.device)
        if stage == "fit" and self.hparams.init_checkpoint is not None:
            self.load_network_weights(self.hparams.init_checkpoint)

    def _make_metrics(self) -> torch.nn.ModuleDict:
        pose_metrics: dict[str, Any] = {
            "rotation_error_deg": RotationError(),
            "translation_error_mm": TranslationError(),
        }
        if self.drr is not None:
            pose_metrics["double_geodesic_mm"] = DoubleGeodesicError(sdd=self.drr.detector.sdd)
        if self._mtre_points is not None:
            pose_metrics["mtre_mm"] = MeanTargetRegistrationError3D(points=self._mtre_points)
        return torch.nn.ModuleDict(
            {
                "pose": MetricCollection(pose_metrics),
                "rotation_errors": CatMetric(),
                "baseline_rotation_errors": CatMetric(),
                "baseline_translation_errors": CatMetric(),
            }
        )

    def load_network_weights(self, path: str | Path) -> None:
        """Load the network weights of a checkpoint (fine-tuning), checking that the architectures match.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the checkpoint's parameterization or convention differ, or its network weights have other
                names or shapes (another encoder).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        self._check_architecture(checkpoint.get("hyper_parameters", {}), str(path), checkpoint.get("state_dict"))
        weights = {k[len(_PREFIX) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(_PREFIX)}
        self.network.load_state_dict(weights)

    def _check_architecture(self, hparams: dict[str, Any], source: str, state_dict: dict[str, Any] | None) -> None:
        mismatches = []
        for key in ARCHITECTURE_KEYS:
            if key not in hparams:
                continue
            theirs, ours = hparams[key], self.hparams[key]
            if key == "convention" and self.hparams.parameterization != "euler_angles":
                continue
            if theirs != ours:
                mismatches.append(f"{key}={theirs!r} (checkpoint) vs {ours!r} (this model)")
        if state_dict is not None:
            mismatches += _layout_mismatches(state_dict, self.network.state_dict())
        if mismatches:
            raise ValueError(
                f"checkpoint {source} was trained with another network: {'; '.join(mismatches)}. Use the "
                "checkpoint's settings (PoseRegressionModule.load_from_checkpoint keeps them), or train anew"
            )

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._check_architecture(checkpoint.get("hyper_parameters", {}), "being loaded", checkpoint.get("state_dict"))

    @override
    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = 1
        if self._trainer is not None:
            # max_steps when set: estimated_stepping_batches would build the train loader before a checkpoint's
            # step is restored (and a resumed training would replay its first poses).
            steps = self.trainer.max_steps
            total = steps if steps > 0 else int(self.trainer.estimated_stepping_batches)
        warmup = self.hparams.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, max(total, warmup + 1))
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- steps -----------------------------------------------------------------------------------------

    def _shared_step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        images = batch["image"]
        true = RigidTransform(batch["pose"].float())
        pred = self(images)
        batch_size = len(images)
        hp = self.hparams
        pose_loss = geodesic_pose_loss(pred, true, hp.rotation_weight, hp.translation_weight).mean()
        loss = pose_loss
        logs = {f"{stage}/pose_loss": pose_loss.detach()}
        drrs, rays = batch_size, int(batch.get("rays", images[0].numel() * batch_size))
        predicted_images = None
        if hp.image_loss_weight > 0 and stage != "predict":
            # setup checks that a renderer is attached when the image term is on.
            predicted_images = rescale_images(self._renderer()(pred).float())
            similarity = multiscale_ncc(predicted_images, batch["target"], list(hp.image_patch_sizes))
            image_loss = (1.0 - similarity).mean()
            loss = loss + hp.image_loss_weight * image_loss
            logs[f"{stage}/image_loss"] = image_loss.detach()
            drrs, rays = drrs + batch_size, rays + predicted_images[0].numel() * batch_size
        with torch.no_grad():
            rotation_errors = rotation_error_deg(pred, true)
            translation_errors = translation_error_mm(pred, true)
        self.log(f"{stage}/loss", loss.detach(), prog_bar=True, batch_size=batch_size, sync_dist=stage != "train")
        if stage == "train":
            self.render_stats = {"drrs": drrs, "rays": rays}
            self._last = {
                "target": batch.get("target", images)[:_OVERLAY_IMAGES].detach(),
                "pose": pred.matrix[:_OVERLAY_IMAGES].detach(),
            }
            if predicted_images is not None:
                self._last["drr"] = predicted_images[:_OVERLAY_IMAGES].detach()
            logs[f"{stage}/rotation_error_deg"] = rotation_errors.mean()
            logs[f"{stage}/translation_error_mm"] = translation_errors.mean()
            self.log_dict(logs, batch_size=batch_size)
        else:
            self.log_dict(logs, batch_size=batch_size, sync_dist=True)
            # Made in setup; the values are torchmetrics objects of different types.
            metrics: Any = cast(torch.nn.ModuleDict, self._metrics)[stage]
            metrics["pose"].update(pred.matrix.detach(), true.matrix)
            metrics["rotation_errors"].update(rotation_errors)
            reference = self.reference.matrix.expand(batch_size, 4, 4)
            metrics["baseline_rotation_errors"].update(rotation_error_deg(reference, true.matrix))
            metrics["baseline_translation_errors"].update(translation_error_mm(reference, true.matrix))
        return loss

    @override
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    @override
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val")

    @override
    def test_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "test")

    def _log_epoch_metrics(self, stage: str) -> None:
        # Made in setup; the values are torchmetrics objects of different types.
        metrics: Any = cast(torch.nn.ModuleDict, self._metrics)[stage]
        if metrics["rotation_errors"].update_count == 0:
            return
        values = {f"{stage}/{name}": value.float() for name, value in metrics["pose"].compute().items()}
        values[f"{stage}/rotation_error_deg_median"] = metrics["rotation_errors"].compute().median().float()
        values[f"{stage}/baseline_rotation_error_deg_median"] = (
            metrics["baseline_rotation_errors"].compute().median().float()
        )
        values[f"{stage}/baseline_translation_error_mm_median"] = (
            metrics["baseline_translation_errors"].compute().median().float()
        )
        self.log_dict(values)
        for metric in metrics.values():
            metric.reset()

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    @override
    def predict_step(self, batch: dict[str, Any] | torch.Tensor, batch_idx: int) -> dict[str, torch.Tensor]:
        """Predicted poses of a batch: ``{"pose": (B, 4, 4)}`` plus ``"true_pose"`` when the batch has one.

        A batch is a dict with ``image`` (B, 1, H, W) (and optionally ``pose``), or a bare image tensor.
        """
        if isinstance(batch, torch.Tensor):
            batch = {"image": batch}
        output = {"pose": self(batch["image"]).matrix}
        if "pose" in batch:
            output["true_pose"] = batch["pose"]
        return output

    # -- for the callbacks -------------------------------------------------------------------------------

    @torch.no_grad()
    def overlay_images(self) -> dict[str, torch.Tensor]:
        """The last training step's targets and the DRRs at the predicted poses.

        Returns:
            ``{"target": (n, 1, H, W), "drr": (n, 1, H, W)}`` float32 in ``[0, 1]``, ``n <= 4``.

        Raises:
            RuntimeError: no training step yet, or no renderer attached.
        """
        if self._last is None:
            raise RuntimeError("overlay_images needs a training step first (it shows the last batch)")
        drr = self._last.get("drr")
        if drr is None:
            if self.drr is None:
                raise RuntimeError("overlay_images needs a renderer: give the module imaging=data.imaging")
            drr = rescale_images(self._renderer()(RigidTransform(self._last["pose"])).float())
        return {"target": self._last["target"].float(), "drr": drr}
