"""``drreg simulate``: realistic X-rays written as DICOM, TIFF and PNG with poses.json, read back by ``drreg register``
with the detector taken from the DICOM tags (issue 13, item 3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

import drreg.cli.simulate as simulate_module
from drreg.cli import RegistrationCLI, main, simulate_command
from drreg.geometry import pose_vectors_to_transform
from drreg.targets import read_xray

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "simulate.yaml"
TRUE_POSE = [4.0, -3.0, 2.0, 5.0, 850.0, -4.0]
START_POSE = "[[9.0, -8.0, 6.0, 15.0, 860.0, -12.0]]"  # 5° and 10 mm off per component
#: mTRE bound of the round trip. Measured on this 64x64, 5 mm detector (80 kVp, SPR 0.2, 0.5 mm blur, Poisson
#: noise at 1e4 photons) after 50 + 50 steps: 0.32, 0.40 and 0.49 mm for noise seeds 0, 1 and 2 (0.08 mm after
#: 100 + 100 steps); the start is about 20 mm away. 1 mm leaves twice the worst of them.
MTRE_BOUND_MM = 1.0


def _simulate_args(output: Path, *extra: str) -> list[str]:
    return [
        "--config", str(RECIPE),
        "--imaging.height", "64",
        "--imaging.delx", "5.0",
        "--poses", json.dumps([TRUE_POSE]),
        "--random_poses", "null",
        "--output", str(output),
        "--progress", "false",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> dict:
    """One X-ray of the example CT at TRUE_POSE, simulated by the recipe's physics on a 64x64, 5 mm detector."""
    return simulate_command(_simulate_args(tmp_path_factory.mktemp("simulate")))


def test_simulate_writes_the_files_and_poses_json(simulated):
    folder = Path(simulated["folder"])
    assert folder.name == "version_0"
    assert sorted(path.name for path in folder.iterdir()) == [
        "config.yaml", "poses.json", "xray_000.dcm", "xray_000.png", "xray_000.tif",
    ]  # fmt: skip
    written = json.loads((folder / "poses.json").read_text())
    assert written == json.loads(json.dumps(simulated)) and written["status"] == "finished"
    assert written["true_poses"] == [TRUE_POSE] and written["read_with"] == {"negative_log": True}
    assert written["images"][0]["matrix"] == pose_vectors_to_transform([TRUE_POSE]).matrix[0].tolist()
    slope = float(pydicom.dcmread(folder / "xray_000.dcm").RescaleSlope)
    assert written["images"][0]["scale"] == {"slope": slope, "intercept": 0.0}
    assert written["detector"] == {
        "sdd": 1020.0, "height": 64, "width": 64, "delx": 5.0, "dely": 5.0, "x0": 0.0, "y0": 0.0,
        "reverse_x_axis": True,
    }  # fmt: skip
    physics = written["physics"]
    assert (physics["kvp"], physics["noise"], physics["scatter_to_primary"], physics["blur_mm"]) == (
        80.0, "poisson", 0.2, 0.5,
    )  # fmt: skip


def test_the_dicom_tags_hold_the_detector_and_the_acquisition(simulated):
    path = Path(simulated["folder"]) / "xray_000.dcm"
    dataset = pydicom.dcmread(path)
    assert dataset.Modality == "DX" and dataset.PhotometricInterpretation == "MONOCHROME2"
    assert [float(v) for v in dataset.ImagerPixelSpacing] == [5.0, 5.0]
    assert float(dataset.DistanceSourceToDetector) == 1020.0 and float(dataset.KVP) == 80.0
    # The source sits at the pose's translation from the world origin (the CT's centre).
    assert float(dataset.DistanceSourceToPatient) == pytest.approx(sum(t * t for t in TRUE_POSE[3:]) ** 0.5)
    assert json.loads(dataset.ImageComments)["pose_vector"] == TRUE_POSE
    target = read_xray(path)
    assert (target.pixel_spacing, target.sdd, target.height) == ((5.0, 5.0), 1020.0, 64)
    # Raw intensities: a chest lets through between a few and about a tenth of the 1e4 photons per pixel.
    assert 1.0 < float(target.image.min()) < float(target.image.max()) < 10_000.0


def test_register_reads_the_simulated_dicom_with_the_detector_from_its_tags(simulated, tmp_path):
    folder = Path(simulated["folder"])
    poses = json.loads((folder / "poses.json").read_text())
    cli = RegistrationCLI([
        "--config", str(ROOT / "recipes" / "register.yaml"),
        "--data.targets", f"[{folder / poses['images'][0]['files']['dicom']}]",
        "--data.negative_log", "true",
        "--data.imaging.sdd", "null", "--data.imaging.height", "null", "--data.imaging.delx", "null",
        "--data.true_poses", json.dumps(poses["true_poses"]),
        "--model.initial_poses", START_POSE,
        "--model.schedule.init_args.scales", "[0.5, 1.0]",
        "--model.schedule.init_args.stage_steps", "[50, 50]",
        "--trainer.logger.init_args.save_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false",
        "--overlay.every_n_steps", "50",
    ])  # fmt: skip
    results = cli.run()
    detector = results["detector"]
    assert (detector["sdd"], detector["height"], detector["width"], detector["delx"], detector["dely"]) == (
        poses["detector"]["sdd"], 64, 64, 5.0, 5.0,
    )  # fmt: skip
    assert detector["sources"]["sdd"].startswith("DICOM tag DistanceSourceToDetector")
    assert detector["sources"]["delx"].startswith("DICOM tag ImagerPixelSpacing")
    assert results["targets"][0]["errors"]["mtre_mm"] < MTRE_BOUND_MM


def test_print_config_is_what_config_reads(tmp_path, capsys):
    with pytest.raises(SystemExit, match="0"):
        main(["simulate", *_simulate_args(tmp_path), "--print_config"])
    printed = capsys.readouterr().out
    assert "class_path: drreg.physics.XRayPhysics" in printed and "noise: poisson" in printed
    (tmp_path / "printed.yaml").write_text(printed)
    with pytest.raises(SystemExit, match="0"):
        main(["simulate", "--config", str(tmp_path / "printed.yaml"), "--print_config"])
    assert capsys.readouterr().out == printed


def test_simulate_help_names_the_command(capsys):
    with pytest.raises(SystemExit, match="0"):
        main(["simulate", "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert printed.startswith("usage: drreg simulate") and "--physics" in printed and "--random_poses" in printed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--poses", "[[1, 2, 3]]"], "poses must be a list of pose vectors [α, β, γ, tx, ty, tz]"),
        (["--poses", "null"], "no pose to simulate: give poses"),
        (["--random_poses.n", "-1"], "random_poses.n must be"),
        (["--formats", "[dicom, jpeg]"], "unknown formats entry 'jpeg'; expected one of: 'dicom', 'tiff', 'png'"),
        (["--imaging.sdd", "null"], "the simulated detector needs sdd: give --imaging.sdd <mm>"),
        (["--pose_convention", "ZZZ"], "unknown pose_convention 'ZZZ'"),
        (["--name", "a/b"], "name must be a file name stem without folders"),
        (["--physics.init_args.noise", "poison"], "physics (drreg.physics.XRayPhysics): unknown noise 'poison'"),
    ],
    ids=["pose-length", "no-pose", "random-n", "format", "sdd", "convention", "name", "physics"],
)
def test_bad_arguments_print_one_line_naming_them(extra, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["simulate", *_simulate_args(tmp_path / "out"), *extra])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.startswith(f"drreg: error: {message}") and error.count("\n") == 1
    assert not (tmp_path / "out" / "version_0").exists()  # refused before anything was written


def test_a_run_never_writes_into_a_previous_runs_folder(simulated, capsys):
    folder = Path(simulated["folder"])
    before = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    with pytest.raises(SystemExit) as stop:
        main(["simulate", *_simulate_args(folder.parent, "--version", "0")])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and f"{folder} already holds a previous run's results" in error
    assert "--overwrite true" in error
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == before


def test_overwrite_replaces_the_previous_run_entirely(tmp_path):
    # Two X-rays, then one over them with --overwrite: the second image of the first run must not stay behind.
    two = json.dumps([TRUE_POSE, [0.0, 0.0, 0.0, 0.0, 850.0, 0.0]])
    first = simulate_command([*_simulate_args(tmp_path, "--version", "0"), "--poses", two])
    folder = Path(first["folder"])
    assert len(list(folder.glob("xray_001.*"))) == 3
    second = simulate_command([*_simulate_args(tmp_path, "--version", "0", "--overwrite", "true")])
    assert second["folder"] == str(folder) and len(second["images"]) == 1
    assert sorted(path.name for path in folder.iterdir()) == [
        "config.yaml", "poses.json", "xray_000.dcm", "xray_000.png", "xray_000.tif",
    ]  # fmt: skip
    assert json.loads((folder / "poses.json").read_text())["true_poses"] == [TRUE_POSE]


def test_an_interrupted_run_keeps_what_it_wrote(tmp_path, monkeypatch, capsys):
    # Ctrl-C while the second pose's TIFF is written: the first pose's files and the second's DICOM are whole.
    write_tiff = simulate_module.write_tiff

    def interrupted(path, *args, **kwargs):
        if path.name == "xray_001.tif":
            raise KeyboardInterrupt
        return write_tiff(path, *args, **kwargs)

    monkeypatch.setattr(simulate_module, "write_tiff", interrupted)
    extra = ["--imaging.height", "16", "--imaging.delx", "20.0", "--random_poses.n", "2"]
    with pytest.raises(SystemExit) as stop:
        main(["simulate", *_simulate_args(tmp_path), "--random_poses", "{}", *extra])
    folder = tmp_path / "version_0"
    written = json.loads((folder / "poses.json").read_text())
    assert stop.value.code == 130 and "drreg: stopped by SIGINT" in capsys.readouterr().err
    assert written["status"] == "interrupted" and len(written["images"]) == 2
    assert written["images"][1]["files"] == {"dicom": "xray_001.dcm"}
    assert sorted(path.name for path in folder.iterdir()) == [
        "config.yaml", "poses.json", "xray_000.dcm", "xray_000.png", "xray_000.tif", "xray_001.dcm",
    ]  # fmt: skip
    assert read_xray(folder / "xray_001.dcm").image.shape == (1, 1, 16, 16)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_simulate_and_keeps_its_files(tmp_path, signum):
    command = [sys.executable, "-m", "drreg.cli", "simulate", *_simulate_args(tmp_path)]
    command += ["--random_poses", "{n: 200}", "--imaging.height", "32", "--imaging.delx", "10.0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    path = tmp_path / "version_0" / "poses.json"
    deadline = time.monotonic() + 180
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # some poses later
    os.kill(process.pid, signum)
    output, _ = process.communicate(timeout=120)
    written = json.loads(path.read_text())
    assert process.returncode == 128 + signum, output[-2000:]
    assert written["status"] == "interrupted" and 1 <= len(written["images"]) < 201
    for entry in written["images"]:
        for name in entry["files"].values():
            assert (tmp_path / "version_0" / name).stat().st_size > 0
        if "dicom" in entry["files"]:
            assert read_xray(tmp_path / "version_0" / entry["files"]["dicom"]).image.shape == (1, 1, 32, 32)
    assert not list((tmp_path / "version_0").glob(".*.partial"))
