"""RegistrationModule: runs that must converge, multi-start and multi-view, stages, and inputs refused by name."""

from __future__ import annotations

import json
import math

import pytest
import torch
from lightning import Callback, LightningDataModule
from torch.utils.data import DataLoader

from drreg import DRR, RigidTransform
from drreg.losses import NCCLoss
from drreg.registration import (
    CoarseToFine,
    Imaging,
    MultiStart,
    RegistrationData,
    RegistrationModule,
    compose_views,
    pose_vectors_to_transform,
    transform_to_pose_vectors,
    view_transforms_from_poses,
)
from tests.registration._setup import (
    SIZE,
    SMALL,
    START_POSE,
    TINY,
    TRUE_POSE,
    make_module,
    make_trainer,
    register,
    synthetic_data,
)

# ---------------------------------------------------------------------------------------------- registration


def test_registration_converges(subject, tmp_path):
    # 60 + 100 steps: at 60 + 60 the run is still converging (0.30 degrees with the one-walk float64 pose gradients,
    # under 0.2 with the older float32-weighted ones: where an unfinished run ends depends on the last bits).
    module, trainer = register(subject, tmp_path, steps=(60, 100))
    results = json.loads((tmp_path / "poses.json").read_text())
    errors = results["targets"][0]["errors"]
    assert results["status"] == "finished"
    assert errors["mtre_mm"] < 1.0 and errors["rotation_error_deg"] < 0.2, errors
    # The start was far: the errors did come down from there.
    start = module.pose_errors(RigidTransform(module.initial_matrices), pose_vectors_to_transform([TRUE_POSE]))
    assert float(start["mtre_mm"][0]) > 10.0
    # Coarse to fine: both stages ran, and the detector is back at full scale.
    assert results["stage"] == 1 and module.drr.detector.height == SIZE
    found = torch.tensor(results["targets"][0]["pose_vector"], dtype=torch.float64)
    truth = torch.tensor(TRUE_POSE, dtype=torch.float64)
    # Depth along the source-detector axis (ty) is the least constrained by one view: 1 mm, the angles 0.2 degrees.
    torch.testing.assert_close(found[:3], truth[:3], atol=0.2, rtol=0)
    torch.testing.assert_close(found[3:], truth[3:], atol=1.0, rtol=0)


def test_registration_is_deterministic_under_a_seed(subject, tmp_path):
    options = dict(steps=(15, 15), p_subsample=0.3, seed=7)
    first, _ = register(subject, tmp_path / "a", **options)
    second, _ = register(subject, tmp_path / "b", **options)
    assert torch.equal(first.rotation, second.rotation) and torch.equal(first.translation, second.translation)


def test_sparse_steps_draw_fresh_pixels(subject):
    seen = []

    class Record(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(pl_module.drr.last_indices.clone())

    data = synthetic_data(subject)
    module = make_module(data.imaging, p_subsample=0.2, stage_steps=[3])
    make_trainer(3, [Record()]).fit(module, datamodule=data)
    assert len(seen) == 3 and all(len(s) == int(0.2 * SIZE * SIZE) for s in seen)
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    assert module.render_stats == {"drrs": 1, "rays": int(0.2 * SIZE * SIZE)}


def test_multi_start_keeps_the_best(subject, tmp_path):
    far = [60.0, 40.0, -50.0, 80.0, 700.0, 60.0]  # a start that cannot reach the truth
    module, _ = register(subject, tmp_path, starts=([far, START_POSE, far],))
    results = module.results()
    assert module.rotation.shape[0] == 3 and results["targets"][0]["best_start"] == 1
    assert results["targets"][0]["errors"]["mtre_mm"] < 1.0
    assert results["targets"][0]["starts"][0]["errors"]["mtre_mm"] > 10.0


def test_random_extra_starts_are_drawn_around_the_first(subject):
    starts = MultiStart(n_starts=4, rotation_deg=5.0, translation_mm=10.0)
    module = RegistrationModule([START_POSE], Imaging(volume=subject, **SMALL), starts=starts)
    vectors = transform_to_pose_vectors(RigidTransform(module.initial_matrices))
    offsets = vectors - torch.tensor(START_POSE, dtype=torch.float64)
    assert offsets[0].abs().max() < 1e-9
    assert offsets[1:, :3].abs().max() <= 5.0 + 1e-9 and offsets[1:, 3:].abs().max() <= 10.0 + 1e-9
    assert offsets[1:].abs().min(dim=1).values.gt(0).all()


def test_multi_view_shares_one_patient_pose(subject):
    views = [[0.0, 0.0, 0.0, 0.0, 850.0, 0.0], [90.0, 0.0, 0.0, 0.0, 850.0, 0.0]]  # AP and lateral
    data = synthetic_data(subject, view_poses=views)
    module = make_module(data.imaging, scales=[0.5, 1.0], stage_steps=[60, 60], p_subsample=None)
    make_trainer(120).fit(module, datamodule=data)
    assert data.batch["targets"].shape == (1, 2, 1, SIZE, SIZE)
    # The second target is the lateral view of the same patient: rendered at pose @ view transform.
    transforms = view_transforms_from_poses(pose_vectors_to_transform(views))
    lateral = compose_views(pose_vectors_to_transform([TRUE_POSE]), transforms).matrix[1:]
    expected = DRR(subject, **SMALL)(RigidTransform(lateral))
    torch.testing.assert_close(data.batch["targets"][0, 1], expected[0], atol=1e-5, rtol=1e-5)
    assert module.results()["targets"][0]["errors"]["mtre_mm"] < 1.0


def test_each_stage_starts_from_the_configured_learning_rates_issue10(subject):
    # A stage used to inherit the rates the previous stage had decayed (to ~1e-8): the later stages could not move.
    first_steps, rates = [], []

    class Record(Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            lrs = [group["lr"] for group in optimizer.param_groups]
            rates.append(lrs)
            schedule = pl_module.schedule
            if schedule.stage_step == 1:  # the first step of a stage
                first_steps.append((schedule.stage, lrs, schedule.plateau.num_bad_epochs, schedule.plateau.best))

    options = dict(lr_rotation=0.02, lr_translation=2.0, lr_patience=0, lr_factor=0.1, stop_patience=None)
    data = synthetic_data(subject, detector=TINY)
    module = make_module(data.imaging, scales=[0.5, 1.0, 1.0], stage_steps=[12, 12, 2], p_subsample=0.3, **options)
    make_trainer(26, [Record()]).fit(module, datamodule=data)
    assert first_steps == [(stage, [0.02, 2.0], 0, math.inf) for stage in range(3)]
    # The plateau scheduler did decay each long stage, down to its floor (min_lr_fraction=1e-3) and never below it.
    floor = torch.tensor([0.02, 2.0], dtype=torch.float64) * 1e-3
    lowest = torch.tensor([rates[:12], rates[12:24]], dtype=torch.float64).min(1).values  # (stages, groups)
    torch.testing.assert_close(lowest, floor.expand(2, 2))


# --------------------------------------------------------------------------------------------------- bad input


def test_unknown_parameterization_names_the_choices(subject):
    with pytest.raises(ValueError, match="parameterization.*expected one of.*quaternion"):
        RegistrationModule([START_POSE], Imaging(volume=subject, **SMALL), parameterization="euler")
    with pytest.raises(ValueError, match="matrix"):  # a raw matrix would leave SO(3)
        RegistrationModule([START_POSE], Imaging(volume=subject, **SMALL), parameterization="matrix")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(loss="gradient_ncc", p_subsample=0.5), "needs whole images"),
        (dict(loss="patch_ncc", p_subsample=None), "needs a patch_size"),
        (dict(loss="nc"), "unknown loss"),
        (dict(convention="ABC"), "Euler convention"),
    ],
)
def test_bad_options_are_named(subject, options, match):
    with pytest.raises(ValueError, match=match):
        RegistrationModule([START_POSE], Imaging(volume=subject, **SMALL), **options)


@pytest.mark.parametrize(
    ("poses", "match"), [([[1.0, 2.0]], "initial_poses must be"), ([[math.nan, 0, 0, 0, 850, 0]], "must be finite")]
)
def test_bad_initial_poses_are_named(subject, poses, match):
    with pytest.raises(ValueError, match=match):
        RegistrationModule(poses, Imaging(volume=subject, **SMALL))


def test_empty_subset_fails_at_construction(subject):
    # The coarse stage of a 64 x 64 detector at scale 0.125 has 64 pixels: 1% of them is no pixel.
    with pytest.raises(ValueError, match="empty pixel subset"):
        make_module(Imaging(volume=subject, **SMALL), scales=[0.125], stage_steps=[5], p_subsample=0.01)


def test_target_size_mismatch_names_both_sizes(subject):
    module = make_module(Imaging(volume=subject, **SMALL), stage_steps=[2])
    data = RegistrationData.from_tensors(torch.rand(1, 1, 20, 24))
    with pytest.raises(ValueError, match=r"target is 20x24 pixels .* DRR detector is 64x64"):
        make_trainer(2).fit(module, datamodule=data)


def test_target_count_must_match_the_starts(subject):
    module = make_module(Imaging(volume=subject, **SMALL), starts=[START_POSE, START_POSE], stage_steps=[2])
    with pytest.raises(ValueError, match="initial_poses gives 2"):
        make_trainer(2).fit(module, datamodule=RegistrationData.from_tensors(torch.rand(1, 1, SIZE, SIZE)))


class _PlainData(LightningDataModule):
    """A data module that is not RegistrationData: only the module's own checks stand between it and the run."""

    def __init__(self, targets: torch.Tensor) -> None:
        super().__init__()
        self.targets = targets

    def train_dataloader(self):
        return DataLoader([{"targets": self.targets}] * 2, batch_size=None)


@pytest.mark.parametrize(
    ("fill", "match"),
    [(0.5, r"target 1 is blank \(constant 0.5 over 16x16"), (math.nan, r"target 1 holds 1 NaN/inf pixel value")],
    ids=["blank", "nan"],
)
def test_module_refuses_bad_targets_by_index_issue10(subject, fill, match):
    # Whatever the data module, a blank or NaN target is refused, by index, before the first step.
    targets = torch.rand(2, 1, 1, 16, 16)
    if math.isnan(fill):
        targets[1, 0, 0, 3, 4] = fill
    else:
        targets[1] = fill
    imaging = Imaging(volume=subject, **TINY)
    module = make_module(imaging, starts=[START_POSE, START_POSE], stage_steps=[2], p_subsample=None)
    with pytest.raises(ValueError, match=match):
        make_trainer(2).fit(module, datamodule=_PlainData(targets))
    assert module.global_step == 0


def test_nan_loss_stops_the_run_issue10(subject, tmp_path):
    # A NaN loss used to flow into the poses; now the run stops with a clear error and keeps the last finite poses.
    class NaNAfterThree(NCCLoss):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, pred, target):
            self.calls += 1
            loss = super().forward(pred, target)
            return loss * math.nan if self.calls > 3 else loss

    path = tmp_path / "poses.json"
    data = synthetic_data(subject, detector=TINY)
    module = make_module(data.imaging, stage_steps=[10], p_subsample=None, output=path, loss=NaNAfterThree())
    with pytest.raises(
        FloatingPointError, match=r"the loss became NaN/inf at step 3 \(stage 0, scale 1.0\) for target 0"
    ):
        make_trainer(10).fit(module, datamodule=data)
    results = json.loads(path.read_text())
    assert results["status"] == "interrupted" and results["step"] == 3
    assert all(math.isfinite(value) for value in results["targets"][0]["pose_vector"] + [results["targets"][0]["loss"]])


def test_only_the_best_start_goes_on_after_keep_best_after(subject):
    # MultiStart(keep_best_after=0): the starts race on the coarse stage, then the best one alone runs the fine one.
    seen = {}

    class Record(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # before the module's hook
            if batch_idx == 6:
                seen.update(best=int(pl_module.best_starts()[0]), initial=pl_module.initial_matrices.clone())
                seen.update(n_starts=pl_module.n_starts)

    starts = MultiStart(n_starts=4, rotation_deg=5.0, translation_mm=10.0, keep_best_after=0)
    data = synthetic_data(subject, detector=TINY)
    schedule = CoarseToFine(scales=[0.5, 1.0], stage_steps=[6, 4], stop_patience=None)
    module = RegistrationModule([START_POSE], data.imaging, starts=starts, schedule=schedule, results_writer=False)
    make_trainer(10, [Record()]).fit(module, datamodule=data)
    assert seen["n_starts"] == 4 and module.n_starts == 1
    assert module.rotation.shape[0] == module.translation.shape[0] == 1
    torch.testing.assert_close(module.initial_matrices[0], seen["initial"][seen["best"]])
    assert len(module.results()["targets"][0]["starts"]) == 1


def test_keep_best_after_must_be_a_stage():
    with pytest.raises(ValueError, match="keep_best_after"):
        MultiStart(keep_best_after=-1)
