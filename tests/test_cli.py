"""The ``drreg`` command: ``drreg register`` (LightningCLI) end to end, its recipe, Ctrl-C, and ``drreg render``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch

from drreg.cli import PoseRegressionCLI, RegistrationCLI, main
from tests._phantoms import SPACING, blob_hu

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "register.yaml"
TRUE_POSE = "[[4.0, -3.0, 2.0, 5.0, 850.0, -4.0]]"
START_POSE = "[[9.0, -8.0, 6.0, 15.0, 860.0, -12.0]]"


@pytest.fixture(scope="module")
def ct_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ct") / "blob.nii.gz"
    nibabel.save(nibabel.Nifti1Image(blob_hu().numpy(), np.diag([*SPACING, 1.0])), str(path))
    return path


def _args(ct_file: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--config", str(RECIPE),
        "--model.volume", str(ct_file),
        "--model.initial_poses", START_POSE,
        "--data.true_poses", TRUE_POSE,
        "--model.height", "64",
        "--model.delx", "4.0",
        "--model.scales", "[0.5, 1.0]",
        "--model.stage_steps", "[100, 100]",
        "--trainer.logger.init_args.save_dir", str(output),
        "--overlay.every_n_steps", "50",
        *extra,
    ]  # fmt: skip


def test_register_recipe_end_to_end(ct_file, tmp_path, capsys):
    cli = RegistrationCLI(_args(ct_file, tmp_path))
    # Linked arguments: the stages bound the run; data and model read pose vectors with one convention.
    assert cli.trainer.max_steps == 200
    assert cli.datamodule.hparams.pose_convention == cli.model.hparams.pose_convention == "ZXY"
    results = cli.run()
    log_dir = Path(cli.trainer.log_dir)
    assert log_dir.parent == tmp_path
    written = json.loads((log_dir / "poses.json").read_text())
    assert written["status"] == "finished" and written["targets"][0]["errors"]["mtre_mm"] < 1.0
    assert written["targets"][0]["pose_vector"] == results["targets"][0]["pose_vector"]
    assert written["metrics"]["success_rate_1mm"] == 1.0
    assert (log_dir / "overlay.png").stat().st_size > 10_000
    assert (log_dir / "config.yaml").exists() and list(log_dir.glob("events.out.tfevents.*"))
    printed = capsys.readouterr().out
    assert "drreg register: finished" in printed and "mTRE (mm)" in printed and str(log_dir / "poses.json") in printed


def test_every_constructor_argument_is_a_flag(ct_file, tmp_path):
    cli = RegistrationCLI(_args(ct_file, tmp_path, "--model.loss", "mse", "--model.n_starts", "3", "--data.crop", "2"))
    assert cli.model.hparams.loss == "mse" and cli.model.n_starts == 3 and cli.datamodule.hparams.crop == 2


def test_unknown_option_values_are_refused(ct_file, tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown parameterization 'euler'; expected one of: .*'euler_angles'"):
        RegistrationCLI(_args(ct_file, tmp_path, "--model.parameterization", "euler"))
    with pytest.raises(SystemExit):  # a value of the wrong type is refused by the parser itself
        RegistrationCLI(_args(ct_file, tmp_path, "--model.height", "tall"))
    assert "height" in capsys.readouterr().err


def test_main_lists_commands(capsys):
    main(["--help"])
    assert "register" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown command 'regiser'"):
        main(["regiser"])


def test_render_writes_pictures(tmp_path):
    main(["render", "--output", str(tmp_path), "--height", "16", "--delx", "25"])
    assert (tmp_path / "drr.png").exists() and (tmp_path / "structures.png").exists() and (tmp_path / "drr.pt").exists()


def test_ctrl_c_leaves_the_best_pose_on_disk(ct_file, tmp_path):
    """SIGINT in the middle of `drreg register`: Lightning shuts down gracefully and poses.json says so."""
    command = [sys.executable, "-m", "drreg.cli", "register", *_args(ct_file, tmp_path)]
    command += ["--model.stage_steps", "[100000, 100000]", "--model.save_every_n_steps", "1"]
    command += ["--model.output", str(tmp_path / "poses.json")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    path = tmp_path / "poses.json"
    deadline = time.monotonic() + 120
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # some steps later
    os.kill(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    results = json.loads(path.read_text())
    assert results["status"] == "interrupted", output[-2000:]
    assert results["step"] >= 1 and len(results["targets"][0]["matrix"]) == 4


# --------------------------------------------------------------------------------------------- pose regression

REGRESSION = ROOT / "recipes" / "pose_regression.yaml"


def _regression_args(command: str | None, ct_file: Path, output: Path, *extra: str, config: Path = REGRESSION):
    return [command] * (command is not None) + [
        "--config", str(config),
        "--data.volume", str(ct_file), "--data.height", "24", "--data.delx", "10.0", "--data.renderer", "siddon",
        "--data.batch_size", "4", "--data.val_size", "4", "--data.test_size", "4",
        "--model.base_channels", "8", "--model.depths", "[1, 1]",
        "--trainer.max_steps", "4", "--trainer.val_check_interval", "2",
        "--trainer.logger.init_args.save_dir", str(output), "--trainer.enable_progress_bar", "false",
        *extra,
    ]  # fmt: skip


def test_fit_test_predict_and_fine_tune(ct_file, tmp_path):
    fit = PoseRegressionCLI(_regression_args("fit", ct_file, tmp_path))
    log_dir = Path(fit.trainer.log_dir)
    last = log_dir / "checkpoints" / "last.ckpt"
    assert fit.trainer.global_step == 4 and last.exists() and (log_dir / "config.yaml").exists()
    # The network predicts offsets from the sampler's reference pose (linked by the CLI).
    assert fit.model.hparams.reference_pose == fit.datamodule.reference_pose
    assert fit.model.hparams.reference_pose[1][3] == 850.0

    test = PoseRegressionCLI(_regression_args("test", ct_file, tmp_path, "--ckpt_path", str(last)))
    assert "test/rotation_error_deg_median" in test.trainer.callback_metrics

    predict = PoseRegressionCLI(_regression_args("predict", ct_file, tmp_path, "--ckpt_path", str(last)))
    written = json.loads((Path(predict.trainer.log_dir) / "predictions.json").read_text())
    assert len(written["predictions"]) == 4 and "errors" in written["predictions"][0]

    tune = PoseRegressionCLI(
        _regression_args(
            "fit", ct_file, tmp_path, "--model.init_checkpoint", str(last), config=ROOT / "recipes/finetune.yaml"
        )
    )
    assert tune.trainer.global_step == 4

    resumed = PoseRegressionCLI(
        _regression_args("fit", ct_file, tmp_path, "--ckpt_path", str(last), "--trainer.max_steps", "6")
    )
    assert resumed.trainer.global_step == 6  # continued from step 4


def test_fine_tuning_another_parameterization_is_refused(ct_file, tmp_path):
    fit = PoseRegressionCLI(_regression_args("fit", ct_file, tmp_path, "--trainer.max_steps", "1"))
    last = Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt"
    with pytest.raises(ValueError, match="parameterization='rotation_6d' \\(checkpoint\\) vs 'quaternion'"):
        PoseRegressionCLI(
            _regression_args(
                "fit", ct_file, tmp_path, "--model.init_checkpoint", str(last), "--model.parameterization", "quaternion"
            )
        )


@pytest.mark.parametrize(
    ("extra", "error", "match"),
    [
        (["--model.backbone", "vgg16"], ValueError, "backbone"),
        (["--model.parameterization", "euler"], ValueError, "unknown parameterization"),
        (["--data.sampler.init_args.rotation_range_deg", "[[10, -10], [0, 1], [0, 1]]"], ValueError, "min > max"),
    ],
)
def test_bad_regression_configs_are_named(ct_file, tmp_path, extra, error, match):
    with pytest.raises(error, match=match):
        PoseRegressionCLI(_regression_args(None, ct_file, tmp_path, *extra), run=False)


def test_interrupted_training_resumes_from_its_last_checkpoint(ct_file, tmp_path):
    """Ctrl-C in `drreg fit` saves checkpoints/last.ckpt; `--ckpt_path` continues from that step."""
    command = [sys.executable, "-m", "drreg.cli", *_regression_args("fit", ct_file, tmp_path)]
    command += ["--trainer.max_steps", "100000", "--throughput.every_n_steps", "1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    events = []
    while process.poll() is None and time.monotonic() < deadline:
        events = list(tmp_path.glob("version_0/events.out.tfevents.*"))
        if events and events[0].stat().st_size > 3000:  # some steps logged
            break
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    last = tmp_path / "version_0" / "checkpoints" / "last.ckpt"
    assert last.exists(), output[-3000:]
    saved = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < saved < 100000
    resumed = PoseRegressionCLI(
        _regression_args("fit", ct_file, tmp_path, "--ckpt_path", str(last), "--trainer.max_steps", str(saved + 3))
    )
    assert resumed.trainer.global_step == saved + 3
