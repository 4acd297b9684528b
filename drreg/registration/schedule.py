"""The coarse-to-fine schedule of a registration: stages, plateau stop, smoothed losses, best starts, learning rates.

:class:`CoarseToFine` is a plain object that runs without a ``Trainer``: feed it each step's (T, K) losses
(:meth:`~CoarseToFine.update`) and the step loss after the optimiser's step (:meth:`~CoarseToFine.step_learning_rate`),
and it says when a stage is over, which start of each target is best, and sets the optimiser's learning rates.
:class:`~drreg.registration.RegistrationModule` only calls it from its Lightning hooks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from drreg._checks import check_integer, check_number

__all__ = ["CoarseToFine"]


class CoarseToFine:
    """Coarse-to-fine stages with a plateau stop per stage and per-stage learning-rate restarts.

    Stage ``s`` renders a detector rescaled by ``scales[s]`` (targets area-averaged to match) for at most
    ``stage_steps[s]`` steps, and ends early when the best start's smoothed loss has not improved by
    ``stop_tolerance`` for ``stop_patience`` steps. Within a stage, ReduceLROnPlateau watches the step loss;
    each stage starts again from ``lr_rotation`` / ``lr_translation`` with a fresh plateau scheduler.

    Args:
        scales: detector scale of each stage (``DRR.rescale_detector_``), e.g. ``[0.25, 0.5, 1.0]``.
        stage_steps: maximum steps of each stage (one entry per scale).
        lr_rotation: Adam learning rate of the rotation parameters (radians for angles).
        lr_translation: Adam learning rate of the translation parameters (mm).
        lr_patience: ReduceLROnPlateau patience (steps without a lower step loss).
        lr_factor: ReduceLROnPlateau factor, in (0, 1).
        min_lr_fraction: ReduceLROnPlateau's floor, as a fraction of ``lr_rotation`` and ``lr_translation``
            (``1e-3``: 1e-5 rad and 1e-3 mm at the defaults).
        stop_patience: a stage ends when the best smoothed loss has not dropped by ``stop_tolerance`` for this
            many steps; ``None`` runs every stage for its ``stage_steps``.
        stop_tolerance: smallest absolute drop of the smoothed loss that counts as progress.
        smoothing: weight of the newest step in the exponential moving average of each start's loss.

    Raises:
        ValueError: no scale, a scale outside (0, 1], not one step count per scale, a non-positive rate.

    Attributes:
        stage: the current stage (0-based).
        stage_step: steps taken in the current stage.
        smoothed_loss: (T, K) smoothed loss of every start in this stage (``None`` before its first step:
            losses at different scales are not comparable).
        stage_over: the current stage has ended (the next step enters the next stage, if any).
        plateau: the stage's ``ReduceLROnPlateau`` (``None`` without an optimiser).

    Convention: the optimiser has two parameter groups, rotation then translation. Adam's moment estimates carry
    over between stages: on the demo recipe, clearing them too ended 0.062 mm off against 0.0057 mm when kept.

    Example:
        >>> schedule = CoarseToFine(scales=[0.5, 1.0], stage_steps=[2, 2], stop_patience=None)
        >>> schedule.start()
        >>> for _ in range(2):
        ...     schedule.update(torch.tensor([[0.3, 0.2]]))
        >>> schedule.stage_over, schedule.finished, schedule.best_starts(1).tolist()
        (True, False, [1])
    """

    def __init__(
        self,
        scales: Sequence[float] = (1.0,),
        stage_steps: Sequence[int] = (200,),
        lr_rotation: float = 1e-2,
        lr_translation: float = 1.0,
        lr_patience: int = 10,
        lr_factor: float = 0.5,
        min_lr_fraction: float = 1e-3,
        stop_patience: int | None = 30,
        stop_tolerance: float = 1e-4,
        smoothing: float = 0.1,
    ) -> None:
        self.scales = [check_number(s, "scales", positive=True, maximum=1.0) for s in scales]
        self.stage_steps = [check_integer(n, "stage_steps", minimum=1) for n in stage_steps]
        if not self.scales:
            raise ValueError(f"scales must be a non-empty list of numbers in (0, 1], got {list(scales)}")
        if len(self.stage_steps) != len(self.scales):
            raise ValueError(
                f"stage_steps must hold one positive step count per scale ({len(self.scales)}), got {list(stage_steps)}"
            )
        self.lr_rotation = check_number(lr_rotation, "lr_rotation", positive=True)
        self.lr_translation = check_number(lr_translation, "lr_translation", positive=True)
        self.lr_patience = check_integer(lr_patience, "lr_patience", minimum=0)
        self.lr_factor = check_number(lr_factor, "lr_factor", positive=True, maximum=1.0)
        if self.lr_factor == 1.0:  # ReduceLROnPlateau refuses it: say so now rather than at the first step
            raise ValueError("lr_factor must be below 1 (1 would never reduce the learning rates), got 1.0")
        self.min_lr_fraction = check_number(min_lr_fraction, "min_lr_fraction", positive=True, maximum=1.0)
        self.stop_patience = check_integer(stop_patience, "stop_patience", minimum=0, allow_none=True)
        self.stop_tolerance = check_number(stop_tolerance, "stop_tolerance", minimum=0.0)
        self.smoothing = check_number(smoothing, "smoothing", positive=True, maximum=1.0)
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self.start()

    # -- layout -----------------------------------------------------------------------------------------------

    @property
    def n_stages(self) -> int:
        """Number of stages."""
        return len(self.scales)

    @property
    def max_steps(self) -> int:
        """Total steps of all stages (a stage may end earlier on a plateau)."""
        return sum(self.stage_steps)

    @property
    def scale(self) -> float:
        """Detector scale of the current stage."""
        return self.scales[self.stage]

    @property
    def finished(self) -> bool:
        """The last stage is over: the run should stop."""
        return self.stage_over and self.stage + 1 >= self.n_stages

    def stage_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Detector ``(rows, columns)`` of each stage for a full-scale ``height`` x ``width`` detector.

        Convention: as ``DRR.rescale_detector_``: the same area, ``max(1, round(scale * size))`` pixels per side.

        Example:
            >>> CoarseToFine(scales=[0.25, 1.0], stage_steps=[1, 1]).stage_sizes(128, 100)
            [(32, 25), (128, 100)]
        """
        return [(max(1, round(height * scale)), max(1, round(width * scale))) for scale in self.scales]

    # -- state ------------------------------------------------------------------------------------------------

    def start(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Start the first stage (and, given the optimiser, its learning rates)."""
        self.enter_stage(0, optimizer)

    def enter_stage(self, stage: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Start stage ``stage``: reset the smoothed losses and the plateau counter; restart the learning rates.

        Args:
            stage: the stage to enter, ``0 <= stage < n_stages``.
            optimizer: the optimiser of the (rotation, translation) parameter groups: its rates go back to
                ``lr_rotation`` / ``lr_translation`` and a fresh ReduceLROnPlateau watches it (issue 10: a stage
                that inherited the rates the previous stage had decayed to ~1e-8 could not move).

        Raises:
            ValueError: no such stage.
        """
        if not 0 <= stage < self.n_stages:
            raise ValueError(f"stage must be in [0, {self.n_stages}), got {stage}")
        self.stage, self.stage_step, self.stage_over = stage, 0, False
        self.smoothed_loss: torch.Tensor | None = None  # losses at different scales are not comparable
        self._stage_best, self._stale_steps = math.inf, 0
        if optimizer is not None:
            for group, lr in zip(optimizer.param_groups, self.learning_rates):
                group["lr"] = lr
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode="min",
                factor=self.lr_factor,
                patience=self.lr_patience,
                min_lr=[lr * self.min_lr_fraction for lr in self.learning_rates],
            )

    def update(self, losses: torch.Tensor) -> None:
        """Record one step: smooth each start's loss, count steps without progress, decide whether the stage ends.

        Args:
            losses: (T, K) losses of the step, one per (target, start), detached.
        """
        if self.smoothed_loss is None:
            self.smoothed_loss = losses.clone()
        else:
            self.smoothed_loss = (1 - self.smoothing) * self.smoothed_loss + self.smoothing * losses
        best = self.best_loss()
        if best < self._stage_best - self.stop_tolerance:
            self._stage_best, self._stale_steps = best, 0
        else:
            self._stale_steps += 1
        self.stage_step += 1
        plateau = self.stop_patience is not None and self._stale_steps >= self.stop_patience
        self.stage_over = self.stage_step >= self.stage_steps[self.stage] or plateau

    def step_learning_rate(self, loss: float) -> None:
        """Let the stage's ReduceLROnPlateau see the step loss (after the optimiser's step); no-op without one."""
        if self.plateau is not None:
            self.plateau.step(loss)

    # -- readings ---------------------------------------------------------------------------------------------

    @property
    def learning_rates(self) -> tuple[float, float]:
        """The configured ``(rotation, translation)`` learning rates each stage starts from."""
        return float(self.lr_rotation), float(self.lr_translation)

    def current_learning_rates(self) -> tuple[float, float]:
        """The ``(rotation, translation)`` learning rates in use: the optimiser's, else the configured ones."""
        if self.plateau is None:
            return self.learning_rates
        groups = self.plateau.optimizer.param_groups
        return float(groups[0]["lr"]), float(groups[1]["lr"])

    def best_loss(self) -> float:
        """Mean over targets of the best start's smoothed loss (``inf`` before the stage's first step)."""
        if self.smoothed_loss is None:
            return math.inf
        return float(self.smoothed_loss.min(dim=1).values.mean())

    def best_starts(self, n_targets: int) -> torch.Tensor:
        """(T,) int64 index of each target's best start (lowest smoothed loss; the first before any step), on CPU."""
        if self.smoothed_loss is None:
            return torch.zeros(n_targets, dtype=torch.long)
        return self.smoothed_loss.argmin(dim=1).cpu()

    def __repr__(self) -> str:
        return f"CoarseToFine(scales={self.scales}, stage_steps={self.stage_steps}, stage={self.stage})"
