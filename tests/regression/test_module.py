"""PoseRegressionModule: the loss, training that learns, checkpoints (resume, fine-tune, mismatch), predict,
predict-then-refine, and DDP across two CPU processes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from lightning import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from drreg import DRR, RigidTransform, convert
from drreg.callbacks import PoseWriter
from drreg.registration import CoarseToFine
from drreg.regression import (
    PoseRegressionDataModule,
    PoseRegressionModule,
    ResNetEncoder,
    UniformPoseSampler,
    geodesic_pose_loss,
    rescale_images,
)
from drreg.regression.refine import predict_then_refine
from tests._phantoms import blob_subject

ROOT = Path(__file__).resolve().parents[2]
NETWORK = dict(base_channels=8, depths=(1, 1), warmup_steps=0)


@pytest.fixture(scope="module")
def subject():
    return blob_subject()


def _data(subject, **kwargs):
    options = dict(volume=subject, height=32, delx=8.0, renderer="siddon", batch_size=8, train_size=64, val_size=8,
                   test_size=8, sampler=UniformPoseSampler(((-10, 10),) * 3, ((-20, 20),) * 3))  # fmt: skip
    return PoseRegressionDataModule(**{**options, **kwargs})


def _module(data: PoseRegressionDataModule, **kwargs) -> PoseRegressionModule:
    return PoseRegressionModule(reference_pose=data.reference_pose, **{"imaging": data.imaging, **NETWORK, **kwargs})


def _trainer(tmp_path, max_steps, **kwargs) -> Trainer:
    options = dict(max_steps=max_steps, max_epochs=10_000, logger=False, enable_progress_bar=False,
                   enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
                   limit_val_batches=1, enable_checkpointing=False)  # fmt: skip
    return Trainer(**{**options, **kwargs})


# -------------------------------------------------------------------------------------------------------- loss


def test_geodesic_loss_by_hand():
    rotated = convert(torch.tensor([[0.3, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 0.0]]), parameterization="axis_angle")
    shifted = convert(torch.zeros(1, 3), torch.tensor([[3.0, 4.0, 0.0]]), parameterization="axis_angle")
    identity = RigidTransform(torch.eye(4)[None])
    torch.testing.assert_close(geodesic_pose_loss(rotated, identity, 2.0, 1.0), torch.tensor([0.6]))
    torch.testing.assert_close(geodesic_pose_loss(shifted, identity, 2.0, 0.1), torch.tensor([0.5]))
    # The translation term compares R^T t: a rotation alone does not add a translation error.
    source = torch.tensor([[0.0, 850.0, 0.0]], dtype=torch.float64)
    both = convert(torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64), source, parameterization="axis_angle")
    origin = convert(torch.zeros(1, 3, dtype=torch.float64), source, parameterization="axis_angle")
    expected = torch.tensor([0.3], dtype=torch.float64)
    torch.testing.assert_close(geodesic_pose_loss(both, origin, 1.0, 1.0), expected, atol=1e-9, rtol=0)


# ---------------------------------------------------------------------------------------------------- training


def test_training_learns_a_fixed_batch(subject, tmp_path):
    """Overfitting 8 poses: the pose loss drops well below its value at the reference pose."""
    torch.manual_seed(0)
    data = _data(subject, train_size=8, val_size=0)
    module = _module(data, lr=1e-2)
    data.setup("fit")
    batch = data.render_batch(next(iter(data.train_dataloader())))

    def loss() -> float:
        module.eval()
        with torch.no_grad():
            value = float(geodesic_pose_loss(module(batch["image"]), RigidTransform(batch["pose"])).mean())
        module.train()  # Lightning keeps the mode a module is in: leave it training
        return value

    before = loss()
    _trainer(tmp_path, 150).fit(module, datamodule=data)
    after = loss()
    assert after < before / 5, (before, after)
    assert module.render_stats == {"drrs": 8, "rays": 8 * 32 * 32}


def test_validation_logs_errors_and_the_mean_pose_baseline(subject, tmp_path):
    data = _data(subject)
    module = _module(data)
    trainer = _trainer(tmp_path, 2)
    trainer.validate(module, datamodule=data)
    logged = trainer.callback_metrics
    for name in ("val/rotation_error_deg", "val/mtre_mm", "val/baseline_rotation_error_deg_median", "val/loss"):
        assert name in logged and math.isfinite(float(logged[name]))
    # Untrained, the network predicts the reference pose: its errors are the baseline's.
    assert float(logged["val/rotation_error_deg_median"]) == pytest.approx(
        float(logged["val/baseline_rotation_error_deg_median"]), abs=0.5
    )


def test_image_loss_renders_at_the_prediction(subject, tmp_path):
    data = _data(subject)
    module = _module(data, image_loss_weight=0.5)
    trainer = _trainer(tmp_path, 2)
    trainer.fit(module, datamodule=data)
    assert module.render_stats["drrs"] == 16  # 8 targets and 8 DRRs at the predicted poses
    assert "train/image_loss" in trainer.callback_metrics
    assert module.overlay_images()["drr"].shape == (4, 1, 32, 32)


# ------------------------------------------------------------------------------------------------ the renderer


def test_the_module_builds_its_own_drr_from_the_data_imaging(subject, tmp_path):
    """The data owns the imaging description; the module receives it and renders with a DRR of its own."""
    data = _data(subject, voxel_size=10.0)
    module = _module(data, image_loss_weight=0.5)
    _trainer(tmp_path, 1).fit(module, datamodule=data)
    assert module.drr is not None and module.drr is not data.drr
    assert "drr" not in "".join(module.state_dict())  # the network only, not the DRR or its CT
    pose = RigidTransform(data.sampler.reference.matrix)
    torch.testing.assert_close(module.drr(pose), data.drr(pose))  # the same CT (resampled), detector and renderer


def test_the_image_term_needs_the_imaging_not_the_data_module(subject, tmp_path):
    data = _data(subject)
    module = _module(data, imaging=None, image_loss_weight=0.5)
    with pytest.raises(ValueError, match="needs the imaging set-up: give imaging=data.imaging"):
        _trainer(tmp_path, 1).fit(module, datamodule=data)


def test_the_cli_links_the_data_imaging_to_the_model(tmp_path):
    from drreg.cli import PoseRegressionCLI

    args = [
        "--config",
        str(ROOT / "recipes" / "pose_regression.yaml"),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
    ]
    cli = PoseRegressionCLI(args, run=False)
    assert cli.model.imaging is cli.datamodule.imaging
    assert (cli.model.imaging.height, cli.model.imaging.voxel_size) == (64, 4.0)
    assert "imaging" not in cli.model.hparams


# ------------------------------------------------------------------------------------------------- checkpoints


def test_resume_continues_from_the_last_checkpoint(subject, tmp_path):
    data = _data(subject)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=2)
    _trainer(tmp_path, 4, enable_checkpointing=True, callbacks=[checkpoint]).fit(_module(data), datamodule=data)
    last = tmp_path / "ckpt" / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    assert saved["global_step"] == 4
    first = []

    class Record(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            first.append(batch["pose"][0].clone())

    module = _module(data)
    trainer = _trainer(tmp_path, 6, callbacks=[Record()])
    trainer.fit(module, datamodule=data, ckpt_path=last)
    assert trainer.global_step == 6
    # The poses continue the stream: the first batch after resuming is batch 4 (poses 32..39), not batch 0.
    torch.testing.assert_close(first[0], data.dataset("train", offset=32)[0]["pose"])


def test_fine_tuning_starts_from_the_checkpoint_weights(subject, tmp_path):
    data = _data(subject)
    trainer = _trainer(tmp_path, 2)
    trained = _module(data)
    trainer.fit(trained, datamodule=data)
    path = tmp_path / "trained.ckpt"
    trainer.save_checkpoint(path)
    seen = {}

    class Record(Callback):
        def on_train_start(self, trainer, pl_module):
            seen.update({k: v.clone() for k, v in pl_module.network.state_dict().items()})

    tuned = _module(data, init_checkpoint=str(path))
    _trainer(tmp_path, 1, callbacks=[Record()]).fit(tuned, datamodule=data)
    for name, theirs in trained.network.state_dict().items():
        assert torch.equal(seen[name], theirs), name


def test_checkpoint_of_another_parameterization_is_refused(subject, tmp_path):
    data = _data(subject)
    trainer = _trainer(tmp_path, 1)
    trainer.fit(_module(data, parameterization="quaternion"), datamodule=data)
    path = tmp_path / "quaternion.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(ValueError, match="parameterization='quaternion' \\(checkpoint\\) vs 'rotation_6d'"):
        _trainer(tmp_path, 1).fit(_module(data, init_checkpoint=str(path)), datamodule=data)
    with pytest.raises(ValueError, match="parameterization='quaternion'"):
        _module(data).load_network_weights(path)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        _module(data, init_checkpoint=str(tmp_path / "missing.ckpt"))


def test_checkpoint_of_another_encoder_is_refused_and_the_same_layout_loads(subject, tmp_path):
    data = _data(subject)
    path = tmp_path / "narrow.ckpt"
    narrow = _module(data)  # the shortcut: base_channels=8, depths=(1, 1)
    torch.save({"hyper_parameters": dict(narrow.hparams), "state_dict": narrow.state_dict()}, path)
    with pytest.raises(ValueError, match=r"the network layout differs \(weights of other shapes .* \(8,\) vs \(16,\)"):
        _module(data, base_channels=16).load_network_weights(path)
    with pytest.raises(ValueError, match="weights missing from the checkpoint: encoder.stages.2"):
        _module(data, depths=(1, 1, 1)).load_network_weights(path)
    # The same layout given by class_path (an injected encoder) loads the shortcut's weights.
    injected = _module(data, base_channels=None, depths=None, encoder=ResNetEncoder(base_channels=8, depths=(1, 1)))
    injected.load_network_weights(path)
    for name, weight in narrow.network.state_dict().items():
        assert torch.equal(injected.network.state_dict()[name], weight), name


# ----------------------------------------------------------------------------------------------------- predict


def test_predict_writes_poses_and_errors(subject, tmp_path):
    data = _data(subject)
    module = _module(data)
    writer = PoseWriter(output=str(tmp_path / "predictions.json"))
    outputs = _trainer(tmp_path, 1, callbacks=[writer]).predict(module, datamodule=data)
    assert outputs[0]["pose"].shape == (8, 4, 4)
    written = json.loads((tmp_path / "predictions.json").read_text())
    entry = written["predictions"][0]
    assert len(written["predictions"]) == 8 and len(entry["pose_vector"]) == 6
    assert entry["errors"]["rotation_error_deg"] >= 0 and len(entry["true_matrix"]) == 4


def test_predict_then_refine_reaches_sub_millimetre(subject):
    """An untrained network predicts the reference pose; registration takes it the rest of the way."""
    data = _data(subject, height=64, delx=4.0)
    module = _module(data)
    true = RigidTransform(data.sampler.reference.matrix.clone())
    true.matrix[0, :3, 3] += torch.tensor([4.0, 0.0, -3.0], dtype=torch.float64)
    data.setup("fit")
    images = data.drr(true)
    schedule = CoarseToFine(scales=[0.5, 1.0], stage_steps=[60, 60])
    out = predict_then_refine(module, images, subject, sdd=1020.0, delx=4.0, true_poses=true, schedule=schedule,
                              p_subsample=None)  # fmt: skip
    assert float(out["predicted_errors"]["mtre_mm"][0]) > 3.0
    assert out["results"]["targets"][0]["errors"]["mtre_mm"] < 1.0
    assert out["refined"].matrix.shape == (1, 4, 4)
    with pytest.raises(ValueError, match="initial_poses comes from"):
        predict_then_refine(module, images, subject, sdd=1020.0, delx=4.0, initial_poses=[[0] * 6])


# --------------------------------------------------------------------------------------------------------- DDP


DDP_SCRIPT = """
import sys
import torch
from lightning import Callback, Trainer
from drreg.regression import PoseRegressionDataModule, PoseRegressionModule
from tests._phantoms import blob_subject

out = sys.argv[1]
data = PoseRegressionDataModule(volume=blob_subject(), height=24, delx=10.0, renderer="siddon", batch_size=4,
                                train_size=64, val_size=0)
module = PoseRegressionModule(
    reference_pose=data.reference_pose, base_channels=8, depths=(1, 1), warmup_steps=0, lr=1e-2
)
initial = {k: v.clone() for k, v in module.network.state_dict().items()}
trainer = Trainer(strategy="ddp", accelerator="cpu", devices=2, max_steps=3, logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False)
trainer.fit(module, datamodule=data)
final = {name: p.detach().clone() for name, p in module.network.named_parameters()}
torch.save({"initial": initial, "final": final, "world": trainer.world_size,
            "steps": trainer.global_step}, f"{out}/rank{trainer.global_rank}.pt")
"""


def test_ddp_ranks_hold_the_same_weights(tmp_path):
    """trainer.strategy=ddp on two CPU processes (gloo): after a few steps both ranks have identical weights.

    (Batch-norm running statistics are buffers, per rank, as in any DDP training without sync_batchnorm.)
    """
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert ranks[0]["world"] == 2 and ranks[0]["steps"] == 3
    for name, weight in ranks[0]["final"].items():
        assert torch.equal(weight, ranks[1]["final"][name]), name
    changed = [
        not torch.equal(w, ranks[0]["initial"][n]) for n, w in ranks[0]["final"].items() if w.is_floating_point()
    ]
    assert any(changed)  # they trained


def test_predict_then_refine_resizes_for_the_network(subject):
    """Images on a finer detector of the same area are area-averaged to the network's input size."""
    data = _data(subject)
    data.setup("fit")
    module = _module(data)
    true = RigidTransform(data.sampler.reference.matrix.clone())
    fine = DRR(subject, sdd=1020.0, height=64, delx=4.0)(true)  # 64 x 64 of 4 mm = 32 x 32 of 8 mm
    module.eval()
    with torch.no_grad():
        expected = module(rescale_images(torch.nn.functional.avg_pool2d(fine.float(), 2))).matrix.double()
    out = predict_then_refine(module, fine, subject, sdd=1020.0, delx=4.0, network_input_size=(32, 32),
                              schedule=CoarseToFine(stage_steps=[1]), p_subsample=None)  # fmt: skip
    torch.testing.assert_close(out["predicted"].matrix, expected)
