"""The coarse-to-fine schedule, without a Trainer: stages, plateau stop, smoothing, best starts, learning rates."""

from __future__ import annotations

import math

import pytest
import torch

from drreg.registration import CoarseToFine


def _optimizer() -> torch.optim.Optimizer:
    rotation, translation = torch.zeros(1, 3, requires_grad=True), torch.zeros(1, 3, requires_grad=True)
    return torch.optim.Adam([{"params": [rotation], "lr": 1.0}, {"params": [translation], "lr": 1.0}])


def _rates(optimizer: torch.optim.Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def test_stages_end_after_their_steps():
    schedule = CoarseToFine(scales=[0.5, 1.0], stage_steps=[3, 2], stop_patience=None)
    over = []
    for loss in (0.5, 0.4, 0.3):
        schedule.update(torch.tensor([[loss]]))
        over.append(schedule.stage_over)
    assert over == [False, False, True] and not schedule.finished and schedule.scale == 0.5
    schedule.enter_stage(1)
    assert (schedule.stage, schedule.stage_step, schedule.stage_over, schedule.scale) == (1, 0, False, 1.0)
    schedule.update(torch.tensor([[0.2]]))
    schedule.update(torch.tensor([[0.1]]))
    assert schedule.finished and schedule.max_steps == 5


def test_a_plateau_ends_the_stage_early():
    schedule = CoarseToFine(stage_steps=[100], stop_patience=2, stop_tolerance=0.1)
    for loss in (1.0, 0.95, 0.92):  # no drop of 0.1 after the first step: two stale steps
        schedule.update(torch.tensor([[loss]]))
    assert schedule.stage_over and schedule.stage_step == 3 and schedule.finished


def test_smoothing_is_an_exponential_moving_average():
    schedule = CoarseToFine(smoothing=0.25)
    first, second = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 0.0]])
    schedule.update(first)
    schedule.update(second)
    torch.testing.assert_close(schedule.smoothed_loss, 0.75 * first + 0.25 * second)
    assert schedule.best_loss() == pytest.approx(0.75 * 2.0 + 0.25 * 0.0)


def test_best_starts_follow_the_smoothed_loss_and_reset_with_the_stage():
    schedule = CoarseToFine(scales=[0.5, 1.0], stage_steps=[5, 5])
    assert schedule.best_starts(2).tolist() == [0, 0]  # the first start before any step
    schedule.update(torch.tensor([[0.3, 0.1, 0.2], [0.1, 0.5, 0.6]]))
    assert schedule.best_starts(2).tolist() == [1, 0]
    schedule.enter_stage(1)  # losses at another scale are not comparable
    assert schedule.smoothed_loss is None and schedule.best_starts(2).tolist() == [0, 0]


def test_each_stage_restarts_the_learning_rates_issue10():
    # A stage used to inherit the rates the previous stage had decayed (to ~1e-8): the later stages could not move.
    optimizer = _optimizer()
    schedule = CoarseToFine(
        scales=[0.5, 1.0], stage_steps=[20, 20], lr_rotation=0.02, lr_translation=2.0, lr_patience=0, lr_factor=0.1
    )
    schedule.start(optimizer)
    assert _rates(optimizer) == [0.02, 2.0]
    for _ in range(10):
        schedule.step_learning_rate(1.0)  # no progress: the plateau scheduler decays the rates to its floor
    assert _rates(optimizer) == pytest.approx([0.02 * 1e-3, 2.0 * 1e-3])
    schedule.enter_stage(1, optimizer)
    plateau = schedule.plateau
    assert _rates(optimizer) == [0.02, 2.0] and plateau is not None
    assert (plateau.num_bad_epochs, plateau.best) == (0, math.inf)


def test_stage_sizes_round_like_the_drr():
    schedule = CoarseToFine(scales=[0.25, 0.5, 1.0], stage_steps=[1, 1, 1])
    assert schedule.stage_sizes(127, 2) == [(32, 1), (64, 1), (127, 2)]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(scales=[0.5, 2.0], stage_steps=[1, 1]), "scales must be"),
        (dict(scales=[0.5, 1.0], stage_steps=[10]), "stage_steps must hold"),
        (dict(lr_rotation=0.0), "lr_rotation must be a positive number"),
        (dict(lr_factor=1.0), "lr_factor must be below 1"),
    ],
)
def test_bad_options_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        CoarseToFine(**options)
