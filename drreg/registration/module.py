"""``RegistrationModule``: 2D/3D registration as a LightningModule whose parameters are the poses.

The module orchestrates; the math is in plain objects and functions: the poses in :mod:`.poses`, the step in
:mod:`.objective`, the stages in :class:`~drreg.registration.CoarseToFine`, the results in :mod:`.results`, the
CT and detector in :class:`~drreg.registration.Imaging`. It owns the DRR it optimises through, built from the
imaging set-up it is given (``imaging=data.imaging``, ARCHITECTURE.md); what it learns about each target (its
image, its name) comes in the batch of :class:`~drreg.registration.RegistrationData`.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, NoReturn

import torch
from lightning import Callback, LightningModule, Trainer
from typing_extensions import override

from drreg._checks import check_choice, check_integer, check_number
from drreg.drr import DRR
from drreg.geometry import EULER_CONVENTIONS, RigidTransform, check_parameterization
from drreg.losses import SimilarityLoss
from drreg.metrics import ct_grid_points
from drreg.registration.data import check_batch
from drreg.registration.imaging import Imaging, describe_detector
from drreg.registration.objective import (
    check_pixel_subset,
    downsample_targets,
    draw_pixel_indices,
    registration_loss,
    resolve_loss,
)
from drreg.registration.poses import (
    OPTIMIZABLE_PARAMETERIZATIONS,
    POSE_DTYPE,
    MultiStart,
    compose_views,
    identity_view_transforms,
    parameters_from_pose,
    pose_from_parameters,
    pose_grid,
)
from drreg.registration.results import (
    ResultsWriter,
    as_record,
    pose_errors,
    registration_results,
    write_json_atomically,
)
from drreg.registration.schedule import CoarseToFine

__all__ = ["RegistrationModule"]


class RegistrationModule(LightningModule):
    """Registration: the pose parameters of T targets × K starts are the module's parameters.

    Each training step renders a fresh pixel subset of every (target, start, view) at the current poses,
    compares it with the same pixels of the targets, and Adam takes one step (separate learning rates for
    rotation and translation). The ``schedule`` runs the coarse-to-fine stages, the plateau stop, the smoothed
    losses that pick each target's best start, and the learning rates; after its last stage the module stops the
    trainer.

    Args:
        initial_poses: starting poses, one per target (T, 6) or K per target (T, K, 6), as pose vectors (Euler
            degrees in ``pose_convention``, mm; see :mod:`drreg.registration.poses`), or matrices (T, 4, 4) /
            (T, K, 4, 4).
        imaging: the CT, the full-scale detector and the renderer: the data's (``data.imaging``, completed from
            the files' DICOM tags); default :class:`Imaging` ``()`` (the example CT, 128 × 128 pixels of 2.5 mm at
            1020 mm).
        parameterization: optimised pose parameterization, one of :data:`OPTIMIZABLE_PARAMETERIZATIONS`.
        convention: Euler convention when ``parameterization="euler_angles"``.
        pose_convention: Euler convention of the pose vectors in ``initial_poses`` (and in the results).
        starts: how many starts per target, how the extra ones are drawn, and after which stage only each target's
            best start goes on (default: the K given, all to the end).
        loss: a :class:`~drreg.losses.SimilarityLoss` (default :class:`~drreg.losses.NCCLoss`), or a short name
            (``"ncc"``, ``"mse"``, ``"multiscale_ncc"``, ``"gradient_ncc"``, :func:`drreg.losses.loss_from_name`).
        p_subsample: fraction of the detector's pixels rendered per step (a fresh draw each step), or ``None``
            for whole images. Only sparse losses work on subsets (``MSELoss``, ``NCCLoss``; ``PatchNCCLoss``
            draws whole patches of its ``patch_size``).
        schedule: the coarse-to-fine stages and learning rates (default :class:`CoarseToFine` ``()``: one
            full-scale stage of 200 steps). The module works on its own copy.
        n_points_per_axis: the 3D mTRE uses an ``n³`` grid of points spanning the CT
            (:func:`drreg.metrics.ct_grid_points`).
        results_writer: writes the results JSON during the run and at its end (:class:`ResultsWriter`);
            ``True``: ``ResultsWriter()`` (``<trainer.log_dir>/poses.json`` every 10 steps); ``False``: keep them
            in memory (:meth:`results`).
        seed: seed of the pixel draws and of the random starts.

    Attributes:
        drr: the :class:`~drreg.drr.DRR` (detector at the current stage's scale).
        imaging: the imaging set-up with the CT read (``imaging.volume`` is the ``torchio.Subject``).
        schedule: the module's :class:`CoarseToFine` (stage, smoothed losses, plateau scheduler).
        loss: the :class:`~drreg.losses.SimilarityLoss`.
        rotation: (T·K, k) rotation parameters (``nn.Parameter``, float64), target-major.
        translation: (T·K, 3) translation parameters (``nn.Parameter``, float64, mm).
        batch: the targets batch (after the first step).
        render_stats: ``{"drrs": ..., "rays": ...}`` rendered in the last step.
    """

    initial_matrices: torch.Tensor  # buffer (T·K, 4, 4)
    mtre_points: torch.Tensor  # buffer (N, 3)

    def __init__(
        self,
        initial_poses: list[list[float]] | list[list[list[float]]] | torch.Tensor,
        imaging: Imaging | None = None,
        parameterization: str = "euler_angles",
        convention: str | None = "ZXY",
        pose_convention: str = "ZXY",
        starts: MultiStart | None = None,
        loss: SimilarityLoss | str = "ncc",
        p_subsample: float | None = 0.1,
        schedule: CoarseToFine | None = None,
        n_points_per_axis: int = 5,
        results_writer: ResultsWriter | bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        imaging = Imaging() if imaging is None else imaging
        starts = MultiStart() if starts is None else starts
        schedule = CoarseToFine() if schedule is None else copy.deepcopy(schedule)  # holds the run's state
        writer = ResultsWriter() if results_writer is True else results_writer or None
        hparams: dict[str, Any] = dict(
            initial_poses=initial_poses, imaging=imaging, parameterization=parameterization, convention=convention,
            pose_convention=pose_convention, starts=starts, loss=loss, p_subsample=p_subsample, schedule=schedule,
            n_points_per_axis=n_points_per_axis, results_writer=writer or False, seed=seed,
        )  # fmt: skip
        self.save_hyperparameters({name: as_record(value) for name, value in hparams.items()})  # YAML-safe

        check_parameterization(parameterization, convention, choices=OPTIMIZABLE_PARAMETERIZATIONS)
        check_choice(pose_convention, EULER_CONVENTIONS, name="pose_convention")
        self.p_subsample = check_number(p_subsample, "p_subsample", positive=True, maximum=1.0, allow_none=True)
        self.loss = resolve_loss(loss, self.p_subsample)
        self._patch_size: int | None = getattr(self.loss, "patch_size", None)  # sparse draws: whole patches
        check_integer(n_points_per_axis, "n_points_per_axis", minimum=1)
        check_integer(seed, "seed", minimum=None)
        poses = pose_grid(initial_poses, pose_convention, "initial_poses")  # (T, K0, 4, 4)
        self.parameterization, self.convention, self.pose_convention = parameterization, convention, pose_convention
        self.schedule, self.results_writer = schedule, writer
        self.keep_best_after = starts.keep_best_after

        self.imaging = imaging.load()
        self.drr, self._detector = self._build_drr()

        self._generator = torch.Generator().manual_seed(seed)
        poses = starts.starting_poses(poses, pose_convention, self._generator)  # (T, K, 4, 4)
        self.n_targets, self.n_starts = poses.shape[:2]
        rotation, translation = parameters_from_pose(RigidTransform(poses.flatten(0, 1)), parameterization, convention)
        self.rotation = torch.nn.Parameter(rotation)
        self.translation = torch.nn.Parameter(translation)
        self.register_buffer("initial_matrices", poses.flatten(0, 1).clone(), persistent=False)
        points = ct_grid_points(self.imaging.subject, n_points_per_axis)
        self.register_buffer("mtre_points", torch.as_tensor(points).to(POSE_DTYPE), persistent=False)

        self.render_stats: dict[str, int] = {"drrs": 0, "rays": 0}
        self.batch: dict[str, Any] | None = None
        self.finished = False
        self._start_time: float | None = None
        self._step_loss: torch.Tensor | None = None

    # -- the detector -----------------------------------------------------------------------------------------

    def _build_drr(self) -> tuple[DRR, dict[str, Any]]:
        """The full-scale DRR and its description; every stage must render at least one pixel (fail now, not after
        minutes)."""
        drr = self.imaging.build_drr().to(self.device)
        detector = drr.detector
        self._full_intrinsics: dict[str, Any] = dict(
            height=detector.height, width=detector.width, delx=detector.delx, dely=detector.dely
        )
        sizes = self.schedule.stage_sizes(detector.height, detector.width)
        for rows, cols in sizes:
            check_pixel_subset(rows, cols, self.p_subsample, self._patch_size)
        return drr, describe_detector(drr, sizes, self.schedule.scales, self.imaging.detector_sources())

    def detector_info(self) -> dict[str, Any]:
        """The detector in use, JSON-ready: see :func:`describe_detector` (``sources``: where each value came from,
        ``"config"``, ``"= height"`` / ``"= delx"``, or e.g. ``"DICOM tag ImagerPixelSpacing of file xray.dcm
        (resized from 1436x1436 to 128x128)"``)."""
        return copy.deepcopy(self._detector)

    def _set_scale(self, scale: float) -> None:
        """Put the detector at ``scale`` of its full size (from the full intrinsics, so nothing drifts)."""
        self.drr.set_intrinsics_(**self._full_intrinsics)
        if scale != 1.0:
            self.drr.rescale_detector_(scale, same_area=True)

    # -- poses ------------------------------------------------------------------------------------------------

    @property
    def max_steps(self) -> int:
        """Total steps of all stages (a stage may end earlier on a plateau)."""
        return self.schedule.max_steps

    def current_poses(self) -> RigidTransform:
        """(T·K) current poses of view 0, target-major (index ``t * K + k``), float64."""
        return pose_from_parameters(self.rotation, self.translation, self.parameterization, self.convention)

    def best_starts(self) -> torch.Tensor:
        """(T,) index of each target's best start (lowest smoothed loss; the first before any step)."""
        return self.schedule.best_starts(self.n_targets)

    def best_poses(self) -> RigidTransform:
        """T poses of view 0 (camera to world, float64): the best start of each target, detached."""
        with torch.no_grad():
            poses = self.current_poses().matrix.reshape(self.n_targets, self.n_starts, 4, 4)
            return RigidTransform(poses[torch.arange(self.n_targets), self.best_starts().to(poses.device)].clone())

    def pose_errors(self, estimate: RigidTransform, truth: RigidTransform) -> dict[str, torch.Tensor]:
        """(T,) pose errors of ``estimate`` against ``truth``: degrees, mm, and 3D mTRE (mm)."""
        return pose_errors(estimate, truth, self.mtre_points.to(estimate.device))

    # -- Lightning hooks --------------------------------------------------------------------------------------

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        # The schedule's plateau scheduler is stepped by on_train_batch_end, fresh at every stage.
        return torch.optim.Adam(
            [
                {"params": [self.rotation], "lr": self.schedule.lr_rotation, "name": "rotation"},
                {"params": [self.translation], "lr": self.schedule.lr_translation, "name": "translation"},
            ]
        )

    @override
    def configure_callbacks(self) -> list[Callback]:
        return [] if self.results_writer is None else [self.results_writer]

    @override
    def setup(self, stage: str) -> None:
        # The CLI's config.yaml holds sdd: null when the DICOM tags give it: the detector actually used goes to the
        # loggers' hyperparameters (hparams.yaml, written once, after this hook) and to the results (poses.json).
        for logger in self.loggers:
            logger.log_hyperparams({"detector": self.detector_info()})

    @override
    def on_train_start(self) -> None:
        self._start_time = time.perf_counter()
        self.finished = False
        self._enter_stage(0)

    @override
    def on_train_batch_start(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.batch is None:
            self._set_scale(1.0)
            check_batch(batch, self.n_targets, self.drr)  # refuse bad targets by name, before optimising
            self._set_scale(self.schedule.scale)
        self.batch = batch
        if self.schedule.stage_over and not self.schedule.finished:
            self._enter_stage(self.schedule.stage + 1)

    @override
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    @override
    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # A NaN gradient would make the poses NaN at this step: stop while they are still the last finite ones.
        for name, parameter in (("rotation", self.rotation), ("translation", self.translation)):
            if parameter.grad is not None and not torch.isfinite(parameter.grad).all():
                self._diverged(f"the {name} gradient", ~torch.isfinite(parameter.grad).all(-1))

    @override
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._step_loss is not None:  # after the optimiser's step, as Lightning steps a plateau scheduler
            self.schedule.step_learning_rate(float(self._step_loss))

    @override
    def on_train_end(self) -> None:
        self.finished = True

    def _enter_stage(self, stage: int) -> None:
        """Start coarse-to-fine stage ``stage``: the schedule's bookkeeping and learning rates, the detector scale."""
        trainer = self._attached_trainer()
        optimizer = trainer.optimizers[0] if trainer is not None and trainer.optimizers else None
        if self.keep_best_after is not None and stage == self.keep_best_after + 1 and self.n_starts > 1:
            self._keep_best_starts(optimizer)  # before the schedule forgets the finished stage's losses
        self.schedule.enter_stage(stage, optimizer)
        self._set_scale(self.schedule.scale)

    @torch.no_grad()
    def _keep_best_starts(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Drop every start but each target's best (lowest smoothed loss): K becomes 1, with the kept starts' Adam
        moments (clearing them cost precision on the demo recipe, see :class:`CoarseToFine`)."""
        best = self.best_starts().to(self.rotation.device)
        keep = torch.arange(self.n_targets, device=best.device) * self.n_starts + best  # (T,) indices into T·K
        for parameter in (self.rotation, self.translation):
            state = {} if optimizer is None else optimizer.state.get(parameter, {})
            for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                if key in state:
                    state[key] = state[key][keep].clone()
            parameter.data = parameter.data[keep].clone()  # the same Parameter: the optimiser keeps its reference
            parameter.grad = None
        self.initial_matrices = self.initial_matrices[keep].clone()
        self.n_starts = 1

    # -- the step ---------------------------------------------------------------------------------------------

    def _shared_step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        targets = batch["targets"]
        n_targets, n_views = targets.shape[:2]
        drr = self.drr
        height, width = drr.detector.height, drr.detector.width
        targets = downsample_targets(targets.flatten(0, 1), height, width)
        targets = targets.reshape(n_targets, 1, n_views, 1, height, width).expand(-1, self.n_starts, -1, -1, -1, -1)
        indices = draw_pixel_indices(
            height, width, self.p_subsample, self._patch_size, generator=self._generator, device=self.device
        )
        poses = compose_views(self.current_poses(), self._view_transforms(batch))
        losses = registration_loss(drr, poses, targets.reshape(-1, 1, height, width), self.loss, indices)
        losses = losses.reshape(n_targets, self.n_starts, n_views).mean(-1)  # (T, K): views share one pose
        if not torch.isfinite(losses).all():
            self._diverged("the loss", ~torch.isfinite(losses.detach().flatten()))
        n_rays = height * width if indices is None else indices.numel()
        self.render_stats = {"drrs": len(poses), "rays": len(poses) * n_rays}
        self.schedule.update(losses.detach())
        trainer = self._attached_trainer()
        if self.schedule.finished and trainer is not None:
            trainer.should_stop = True

        self._step_loss = losses.detach().mean()
        best_loss = self.schedule.smoothed_loss.min(dim=1).values.mean()  # type: ignore[union-attr]  # just set
        rates = self.schedule.current_learning_rates()
        logs: dict[str, torch.Tensor | float] = {f"{stage}/best_loss": best_loss, f"{stage}/stage": self.schedule.stage}
        logs.update({f"{stage}/lr_rotation": rates[0], f"{stage}/lr_translation": rates[1]})
        true_poses = batch.get("true_poses")
        if true_poses is not None:
            errors = self.pose_errors(self.best_poses(), RigidTransform(true_poses.to(POSE_DTYPE)))
            logs.update({f"{stage}/{name}": value.mean() for name, value in errors.items()})
        self.log(f"{stage}/loss", self._step_loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=1)
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=1)
        # The starts are independent problems: summing keeps each one's gradient its own.
        return losses.sum()

    def _view_transforms(self, batch: dict[str, Any]) -> torch.Tensor:
        views = batch.get("view_transforms")
        return identity_view_transforms(device=self.device) if views is None else views

    def _diverged(self, what: str, bad: torch.Tensor) -> NoReturn:
        """Stop the run on a NaN/inf ``what``; ``bad`` (T·K,) marks the (target, start) pairs it hit."""
        hit = bad.nonzero().flatten().tolist()
        which = ", ".join(f"target {i // self.n_starts} start {i % self.n_starts}" for i in hit[:4])
        which += f" and {len(hit) - 4} more" if len(hit) > 4 else ""
        trainer = self._attached_trainer()
        step = "?" if trainer is None else trainer.global_step
        schedule = self.schedule
        raise FloatingPointError(
            f"{what} became NaN/inf at step {step} (stage {schedule.stage}, scale {schedule.scale}) for {which}; "
            "the registration stops here rather than go on with NaN poses (the poses of the last finite step are "
            "the results). Check the targets and the CT, or lower the schedule's lr_rotation "
            f"({schedule.lr_rotation}) and lr_translation ({schedule.lr_translation})"
        )

    def _attached_trainer(self) -> Trainer | None:
        try:
            return self.trainer
        except RuntimeError:  # not attached to a Trainer (plain-Python use)
            return None

    # -- outputs ----------------------------------------------------------------------------------------------

    @torch.no_grad()
    def overlay_images(self) -> dict[str, torch.Tensor]:
        """Targets and DRRs at each target's best pose, every view, on the current detector.

        Returns:
            ``{"target": (T·V, 1, h, w), "drr": (T·V, 1, h, w)}`` float32 (target-major, then view).

        Raises:
            RuntimeError: no batch has been seen yet.
        """
        if self.batch is None:
            raise RuntimeError("overlay_images needs a training step first (it uses the last batch's targets)")
        drr = self.drr
        detector = drr.detector
        target = downsample_targets(self.batch["targets"].flatten(0, 1), detector.height, detector.width)
        poses = compose_views(self.best_poses().to(self.device), self._view_transforms(self.batch))
        image = drr(poses, indices=torch.arange(detector.n_pixels, device=self.device))
        return {"target": target.float(), "drr": image.reshape(target.shape).float()}

    def results(self) -> dict[str, Any]:
        """JSON-ready results: each target's best pose (parameters, 4x4, pose vector), every start, errors.

        Returns:
            :func:`registration_results` with ``status`` (``"running"``, ``"finished"``, ``"interrupted"``),
            ``step``, ``stage``, ``scale``, ``elapsed_s``, the parameterization and ``detector``
            (:meth:`detector_info`: the values used and where each came from).
        """
        with torch.no_grad():
            poses = self.current_poses()
            errors = None
            true_poses = None if self.batch is None else self.batch.get("true_poses")
            if true_poses is not None:
                truth = RigidTransform(true_poses.to(POSE_DTYPE)).to(self.device)
                truth = RigidTransform(truth.matrix.repeat_interleave(self.n_starts, 0))
                errors = self.pose_errors(RigidTransform(poses.matrix), truth)
        trainer = self._attached_trainer()
        status = "running"
        if trainer is not None and trainer.interrupted:
            status = "interrupted"
        elif self.finished:
            status = "finished"
        header = {
            "status": status,
            "step": 0 if trainer is None else int(trainer.global_step),
            "stage": self.schedule.stage,
            "scale": self.schedule.scale,
            "elapsed_s": None if self._start_time is None else time.perf_counter() - self._start_time,
            "parameterization": self.parameterization,
            "convention": self.convention,
            "pose_convention": self.pose_convention,
            "detector": self.detector_info(),
        }
        initial = RigidTransform(self.initial_matrices)
        return registration_results(
            header, self.rotation, self.translation, poses, initial, self.pose_convention, self.best_starts(),
            self.schedule.smoothed_loss, errors,
        )  # fmt: skip

    def results_path(self) -> Path:
        """Where the results JSON goes: the writer's ``output``, else ``<trainer.log_dir>/poses.json``, else
        ``./poses.json``."""
        return (self.results_writer or ResultsWriter()).path(self._attached_trainer())

    def save_results(self, path: str | Path | None = None) -> Path:
        """Write :meth:`results` as JSON (atomically) and return the path."""
        return write_json_atomically(self.results(), self.results_path() if path is None else path)
