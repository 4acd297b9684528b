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

from drreg.cli import COMMANDS, PoseRegressionCLI, RegistrationCLI, main
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
        "--data.imaging.volume", str(ct_file),
        "--model.initial_poses", START_POSE,
        "--data.true_poses", TRUE_POSE,
        "--data.imaging.height", "64",
        "--data.imaging.delx", "4.0",
        "--model.schedule.init_args.scales", "[0.5, 1.0]",
        "--model.schedule.init_args.stage_steps", "[100, 100]",
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
    cli = RegistrationCLI(
        _args(ct_file, tmp_path, "--model.loss", "mse", "--model.starts.init_args.n_starts", "3", "--data.crop", "2")
    )
    assert cli.model.hparams.loss == "mse" and cli.model.n_starts == 3 and cli.datamodule.hparams.crop == 2


def test_unknown_option_values_are_refused(ct_file, tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown parameterization 'euler'; expected one of: .*'euler_angles'"):
        RegistrationCLI(_args(ct_file, tmp_path, "--model.parameterization", "euler"))
    with pytest.raises(SystemExit):  # a value of the wrong type is refused by the parser itself
        RegistrationCLI(_args(ct_file, tmp_path, "--data.imaging.height", "tall"))
    assert "height" in capsys.readouterr().err


def test_main_lists_commands(capsys):
    main(["--help"])
    assert "register" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["regiser"])
    assert stop.value.code == 2 and "unknown command 'regiser'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["-h"], []], ids=["--help", "-h", "bare"])
def test_main_help_says_what_each_command_does(argv, capsys):
    main(argv)
    printed = capsys.readouterr().out
    assert printed.startswith("usage: drreg <command>")
    assert all(name in printed and text in " ".join(printed.split()) for name, text in COMMANDS.items())
    assert "--overwrite true" in printed and "DRREG_DEBUG=1" in printed


@pytest.mark.parametrize("argv", [["regiser"], ["--config", "recipes/register.yaml"], ["Register", "--help"]])
def test_unknown_command_is_a_one_line_error_issue11(argv, capsys):
    # An unknown command printed the whole usage and exited with status 1: now one line, status 2, as other errors.
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.count("\n") == 1
    assert printed.err.startswith(f"drreg: error: unknown command {argv[0]!r}; expected one of: register, fit, ")


@pytest.mark.parametrize(
    ("argv", "usage", "options"),
    [
        (["render", "--help"], "usage: drreg render", ["--output", "--height", "--delx", COMMANDS["render"]]),
        (["register", "--help"], "usage: drreg register", ["--data.true_poses", "--overwrite", COMMANDS["register"]]),
        (["fit", "--help"], "usage: drreg [options] fit", ["--model.encoder", "--ckpt_path", COMMANDS["fit"]]),
        (["predict", "--help"], "usage: drreg [options] predict", ["--predictions.output", COMMANDS["predict"]]),
    ],
    ids=["render", "register", "fit", "predict"],
)
def test_command_help_names_the_command_issue11(argv, usage, options, capsys):
    # The help of a command is its own parser's, named as typed ("drreg register"), not after the script's path.
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert printed.startswith(usage) and all(option in printed for option in options)


@pytest.mark.parametrize(
    "argv",
    [["register", "--help"], ["register", "--print_config"], ["fit", "--print_config"], ["render", "--print_config"]],
    ids=["register-help", "register-print_config", "fit-print_config", "render-print_config"],
)
def test_the_command_line_is_read_never_rewritten_issue11(argv, monkeypatch, capsys):
    # `drreg register` assigned sys.argv for LightningCLI to read: every command now gets its arguments as args=.
    command_line = ["drreg", *argv]
    monkeypatch.setattr(sys, "argv", command_line)
    with pytest.raises(SystemExit) as stop:
        main()  # argv=None: the arguments are read from sys.argv
    assert stop.value.code == 0
    assert sys.argv is command_line and command_line == ["drreg", *argv]
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: drreg {argv[0]}" if argv[-1] == "--help" else "") and printed


def test_render_reads_the_command_line_without_rewriting_it_issue11(tmp_path, monkeypatch):
    # The second argparse parser of `drreg render` is now jsonargparse's command line of render_example.
    arguments = ["render", "--output", str(tmp_path), "--height", "16", "--delx", "25"]
    command_line = ["drreg", *arguments]
    monkeypatch.setattr(sys, "argv", command_line)
    main()
    assert sys.argv is command_line and command_line == ["drreg", *arguments]
    assert torch.load(tmp_path / "drr.pt")["image"].shape == (2, 1, 16, 16)


def test_print_config_is_what_config_reads_issue11(ct_file, tmp_path, capsys):
    # drreg register --print_config prints a config that --config reads back into the same configuration.
    with pytest.raises(SystemExit, match="0"):
        main(["register", *_args(ct_file, tmp_path), "--print_config"])
    printed = capsys.readouterr().out
    assert f"volume: {ct_file}" in printed and "stage_steps:" in printed
    (tmp_path / "printed.yaml").write_text(printed)
    with pytest.raises(SystemExit, match="0"):
        main(["register", "--config", str(tmp_path / "printed.yaml"), "--print_config"])
    assert capsys.readouterr().out == printed


@pytest.mark.parametrize("command", ["register", "fit"])
def test_a_saved_config_runs_again_issue11(ct_file, tmp_path, command):
    # The config.yaml that a run saves is a --config of its own: the same run again, in the next folder.
    if command == "register":
        main(["register", *_args(ct_file, tmp_path)])
    else:
        main(_regression_args("fit", ct_file, tmp_path, "--trainer.max_steps", "1"))
    first, second = tmp_path / "version_0", tmp_path / "version_1"
    main([command, "--config", str(first / "config.yaml")])
    assert (second / "config.yaml").read_text() == (first / "config.yaml").read_text()
    if command == "register":
        poses = [json.loads((path / "poses.json").read_text())["targets"][0]["pose_vector"] for path in (first, second)]
        assert poses[1] == pytest.approx(poses[0], abs=1e-4)
    else:
        assert (second / "checkpoints" / "last.ckpt").exists()


def test_render_writes_pictures(tmp_path):
    main(["render", "--output", str(tmp_path), "--height", "16", "--delx", "25"])
    assert (tmp_path / "drr.png").exists() and (tmp_path / "structures.png").exists() and (tmp_path / "drr.pt").exists()


def _drreg(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the `drreg` command in a fresh process; stdout and stderr are kept apart."""
    command = [sys.executable, "-m", "drreg.cli", *args]
    environment = {**os.environ, **env}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=environment)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigterm_stops_register_as_ctrl_c_does_issue10(ct_file, tmp_path, signum):
    # SIGTERM exited with status 0 or died without the final poses.json: both signals now end "interrupted", 128 + n.
    command = [sys.executable, "-m", "drreg.cli", "register", *_args(ct_file, tmp_path)]
    command += ["--model.schedule.init_args.stage_steps", "[100000, 100000]"]
    command += [
        "--model.schedule.init_args.stop_patience",
        "null",
        "--model.results_writer.init_args.every_n_steps",
        "1",
    ]
    command += ["--model.results_writer.init_args.output", str(tmp_path / "poses.json")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    path = tmp_path / "poses.json"
    deadline = time.monotonic() + 120
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # some steps later
    os.kill(process.pid, signum)
    output, _ = process.communicate(timeout=120)
    results = json.loads(path.read_text())
    assert process.returncode == 128 + signum, output[-2000:]
    assert results["status"] == "interrupted", output[-2000:]
    assert results["step"] >= 1 and len(results["targets"][0]["matrix"]) == 4
    assert f"drreg: stopped by {signum.name}" in output and "drreg register: interrupted" in output


def test_a_second_run_does_not_overwrite_the_first_issue10(ct_file, tmp_path):
    # Two runs given one --trainer.logger.init_args.version wrote into one folder: the second now refuses at start.
    folder = tmp_path / "version_0"
    folder.mkdir()
    for name in ("poses.json", "overlay.png", "config.yaml"):
        (folder / name).write_text("first run")
    run = _drreg("register", *_args(ct_file, tmp_path, "--trainer.logger.init_args.version", "0"))
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.splitlines()[-1].startswith(f"drreg: error: {folder} already holds a previous run's results")
    assert "--overwrite true" in run.stderr and "Traceback" not in run.stderr
    assert all((folder / name).read_text() == "first run" for name in ("poses.json", "overlay.png", "config.yaml"))
    assert sorted(path.name for path in folder.iterdir()) == ["config.yaml", "overlay.png", "poses.json"]


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_training_and_prediction_do_not_overwrite_a_previous_run_issue10(ct_file, tmp_path, command):
    # drreg fit/validate/test/predict replaced config.yaml (and mixed checkpoints) in a folder holding a previous run.
    checkpoints = tmp_path / "version_0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_text("first run")
    (checkpoints.parent / "config.yaml").write_text("first run")
    run = _drreg(*_regression_args(command, ct_file, tmp_path, "--trainer.logger.init_args.version", "0"))
    assert run.returncode == 2, run.stderr[-3000:]
    assert f"drreg: error: {checkpoints.parent} already holds a previous run's results" in run.stderr
    assert "Traceback" not in run.stderr
    assert (checkpoints.parent / "config.yaml").read_text() == "first run"
    assert sorted(path.name for path in checkpoints.parent.iterdir()) == ["checkpoints", "config.yaml"]


def test_overwrite_is_an_explicit_choice_issue10(ct_file, tmp_path, capsys):
    # --overwrite true lets a run write into a folder with results; a results file given by path is protected too.
    folder = tmp_path / "version_0"
    (folder / "checkpoints").mkdir(parents=True)
    old = [folder / "poses.json", folder / "events.out.tfevents.1.first", folder / "checkpoints" / "epoch=9.ckpt"]
    for path in old:
        path.write_text("first run")
    cli = RegistrationCLI(_args(ct_file, tmp_path, "--trainer.logger.init_args.version", "0", "--overwrite", "true"))
    assert Path(cli.trainer.log_dir) == folder
    assert cli.config.overwrite is False  # not saved as true: re-running the saved config.yaml replaces nothing
    # The previous run's files are deleted before the new run writes: none will mix with its own.
    assert not any(path.exists() for path in old)
    (folder / "poses.json").write_text("first run")
    with pytest.raises(SystemExit, match="2"):
        main(
            [
                "register",
                *_args(ct_file, tmp_path, "--model.results_writer.init_args.output", str(folder / "poses.json")),
            ]
        )
    assert f"drreg: error: {folder / 'poses.json'} already exists" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- pose regression

REGRESSION = ROOT / "recipes" / "pose_regression.yaml"


def _regression_args(command: str | None, ct_file: Path, output: Path, *extra: str, config: Path = REGRESSION):
    return [command] * (command is not None) + [
        "--config", str(config),
        "--data.volume", str(ct_file), "--data.height", "24", "--data.delx", "10.0", "--data.renderer", "siddon",
        "--data.batch_size", "4", "--data.val_size", "4", "--data.test_size", "4",
        "--model.encoder.init_args.base_channels", "8", "--model.encoder.init_args.depths", "[1, 1]",
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

    # Predicting into the training folder with --overwrite true deletes that run's files, except the checkpoint it
    # reads; the folder then holds this prediction's results only.
    again = PoseRegressionCLI(
        _regression_args(
            "predict", ct_file, tmp_path, "--ckpt_path", str(last), "--overwrite", "true",
            "--trainer.logger.init_args.version", log_dir.name,
        )
    )  # fmt: skip
    assert Path(again.trainer.log_dir) == log_dir and last.exists()
    assert sorted(path.name for path in (log_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    assert len(json.loads((log_dir / "predictions.json").read_text())["predictions"]) == 4


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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigterm_stops_fit_as_ctrl_c_does_and_resumes_in_its_folder_issue10(ct_file, tmp_path, signum):
    # SIGTERM was not handled as Ctrl-C, and the interrupt checkpoint was named best-step=N: now interrupted.ckpt.
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
    os.kill(process.pid, signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, output[-3000:]
    folder = tmp_path / "version_0"
    last, interrupted = folder / "checkpoints" / "last.ckpt", folder / "checkpoints" / "interrupted.ckpt"
    assert last.exists() and interrupted.exists(), output[-3000:]
    saved = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < saved < 100000
    assert torch.load(interrupted, map_location="cpu", weights_only=False)["global_step"] == saved
    # Resuming into its own folder is no overwrite: it continues there, and keeps the earlier config.
    resumed = PoseRegressionCLI(
        _regression_args(
            "fit", ct_file, tmp_path, "--ckpt_path", str(last), "--trainer.max_steps", str(saved + 3),
            "--trainer.logger.init_args.version", "0",
        )
    )  # fmt: skip
    assert resumed.trainer.global_step == saved + 3 and Path(resumed.trainer.log_dir) == folder
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == saved + 3
    assert (folder / "config.yaml").exists() and (folder / "config_0.yaml").exists()
    assert not list(folder.glob("checkpoints/last-v*.ckpt"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model.parameterization", "euler"], "unknown parameterization 'euler'; expected one of: "),
        (["--data.targets", "[{png}]", "--data.true_poses", "null"], "cannot read X-ray image {png}"),
    ],
    ids=["bad-value", "bad-file"],
)
def test_value_errors_print_one_line_issue10(ct_file, tmp_path, extra, message):
    # A wrong value or file printed a 14-frame traceback before its clear last line: now only that line, status 2.
    png = tmp_path / "xray.png"
    png.write_text("not a picture")
    extra = [value.format(png=png) for value in extra]
    run = _drreg("register", *_args(ct_file, tmp_path, *extra))
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.splitlines()[-1].startswith("drreg: error: " + message.format(png=png))
    assert "Traceback" not in run.stderr


def test_debug_shows_the_traceback_of_value_errors(ct_file, tmp_path):
    """DRREG_DEBUG=1 shows the traceback that the one-line error leaves out."""
    run = _drreg("register", *_args(ct_file, tmp_path, "--model.parameterization", "euler"), DRREG_DEBUG="1")
    assert run.returncode == 1 and "Traceback" in run.stderr
    assert run.stderr.splitlines()[-1].startswith("ValueError: unknown parameterization 'euler'")


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    """A TypeError that no `raise` of drreg raised is a bug: it propagates (traceback), not a one-line error."""
    from drreg.cli import dispatch, register

    monkeypatch.setattr(dispatch, "RegistrationCLI", lambda args: register._total_steps(None))
    with pytest.raises(TypeError, match="not iterable"):
        main(["register"])
