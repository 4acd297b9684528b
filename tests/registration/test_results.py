"""Registration results: the summary of every target and start, its atomic writing, and the writer callback."""

from __future__ import annotations

import json

import pytest
import torch
from lightning import Callback

from drreg.registration import (
    ResultsWriter,
    pose_vectors_to_transform,
    registration_results,
    write_json_atomically,
)
from tests.registration._setup import START_POSE, TRUE_POSE, make_module, make_trainer, synthetic_data


def test_results_summarise_every_start_and_keep_the_best():
    poses = pose_vectors_to_transform([START_POSE, TRUE_POSE, TRUE_POSE, START_POSE])  # 2 targets x 2 starts
    errors = {
        "rotation_error_deg": torch.tensor([9.0, 0.1, 0.2, 8.0]),
        "translation_error_mm": torch.tensor([20.0, 0.3, 0.4, 30.0]),
        "mtre_mm": torch.tensor([25.0, 0.5, 2.0, 40.0]),
    }
    results = registration_results(
        {"status": "finished"},
        rotation=torch.zeros(4, 3),
        translation=torch.ones(4, 3),
        poses=poses,
        initial=poses,
        pose_convention="ZXY",
        best_starts=torch.tensor([1, 0]),
        smoothed_loss=torch.tensor([[0.4, 0.1], [0.2, 0.3]]),
        errors=errors,
    )
    assert list(results) == ["status", "metrics", "targets"]
    best = results["targets"][0]
    assert best["best_start"] == 1 and best["loss"] == pytest.approx(0.1) and best["errors"]["mtre_mm"] == 0.5
    assert best["pose_vector"] == pytest.approx(TRUE_POSE) and len(best["starts"]) == 2
    assert best["starts"][0]["initial_pose_vector"] == pytest.approx(START_POSE)
    assert results["metrics"]["mean_mtre_mm"] == pytest.approx((0.5 + 2.0) / 2)
    assert results["metrics"]["success_rate_1mm"] == 0.5  # target 1's best start is 2 mm off
    json.dumps(results)  # JSON-ready


def test_json_is_written_atomically(tmp_path):
    path = write_json_atomically({"a": [1, 2]}, tmp_path / "sub" / "poses.json")
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["poses.json"]  # no temporary file left


def test_writer_writes_where_it_is_told(tmp_path):
    assert ResultsWriter(output=str(tmp_path / "x.json")).path(None) == tmp_path / "x.json"
    assert ResultsWriter().path(None).name == "poses.json"
    with pytest.raises(ValueError, match="every_n_steps"):
        ResultsWriter(every_n_steps=-1)


def test_failure_leaves_the_best_pose_on_disk(subject, tmp_path):
    class Crash(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 4:
                raise RuntimeError("simulated crash")

    path = tmp_path / "poses.json"
    data = synthetic_data(subject)
    module = make_module(data.imaging, stage_steps=[50], output=path, every_n_steps=0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        make_trainer(50, [Crash()]).fit(module, datamodule=data)
    results = json.loads(path.read_text())
    assert results["status"] == "interrupted" and results["step"] == 4
    torch.testing.assert_close(
        torch.tensor(results["targets"][0]["matrix"], dtype=torch.float64), module.best_poses().matrix[0]
    )
