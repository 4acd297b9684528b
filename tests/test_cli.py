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

from drreg.cli import RegistrationCLI, main
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
