"""Registration targets: files, images in memory and synthetic targets, refused by name when unusable."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from drreg import read
from drreg.registration import Imaging, RegistrationData, pose_vectors_to_transform, synthetic_view_targets
from tests.registration._setup import (
    SIZE,
    SMALL,
    START_POSE,
    TINY,
    TRUE_POSE,
    make_module,
    make_trainer,
    synthetic_data,
)


def test_synthetic_targets_need_no_model(subject):
    # The data renders its targets with its own DRR, built from the imaging set-up it is given.
    imaging = Imaging(volume=subject, **SMALL)
    data = RegistrationData(true_poses=[TRUE_POSE], imaging=imaging)
    data.setup("fit")
    batch = data.batch
    assert batch["targets"].shape == (1, 1, 1, SIZE, SIZE) and "detector" not in batch
    assert batch["names"] == [f"synthetic target 0 rendered at true pose {TRUE_POSE}"]
    expected = synthetic_view_targets(imaging.build_drr(), pose_vectors_to_transform([TRUE_POSE]))
    torch.testing.assert_close(batch["targets"], expected)


def test_synthetic_targets_without_imaging_are_refused():
    with pytest.raises(ValueError, match=r"imaging=Imaging\(...\)\), and the module imaging=data.imaging"):
        RegistrationData(true_poses=[TRUE_POSE]).setup("fit")


def test_files_complete_the_imaging_set_up(tmp_path):
    # A PNG says how many pixels it has, not their spacing: the data fills height and width, and says so.
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 24), dtype=np.uint8)).save(tmp_path / "x.png")
    data = RegistrationData(targets=[str(tmp_path / "x.png")], imaging=Imaging(height=None, delx=4.0))
    assert data.intrinsics() == {"height": 20, "width": 24}
    assert (data.imaging.height, data.imaging.width, data.imaging.delx) == (20, 24, 4.0)
    assert data.imaging.detector_sources()["height"] == f"image rows of file {tmp_path / 'x.png'}"
    data.setup("fit")
    assert data.batch["names"] == [f"X-ray {tmp_path / 'x.png'}"] == data.target_names()


def test_nan_targets_are_rejected():
    targets = torch.rand(1, 1, 8, 8)
    targets[0, 0, 3, 3] = math.nan
    with pytest.raises(ValueError, match="targets must be finite"):
        RegistrationData.from_tensors(targets)


def test_missing_target_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        RegistrationData(targets=[str(tmp_path / "missing.png")])


def test_blank_targets_are_refused_before_optimising_issue10(subject, tmp_path):
    # A constant target used to "finish" with loss 1.0 at the start pose: refused with its name, from every source.
    with pytest.raises(ValueError, match=r"target 0 is blank \(constant 3 over 16x16 pixels\)"):
        RegistrationData.from_tensors(torch.full((1, 1, 16, 16), 3.0))
    Image.fromarray(np.full((16, 16), 200, dtype=np.uint8)).save(tmp_path / "flat.png")
    with pytest.raises(ValueError, match=r"X-ray .*flat.png is blank \(constant 200 over 16x16"):
        RegistrationData(targets=[str(tmp_path / "flat.png")]).setup("fit")
    hu = torch.full((8, 8, 8), -1000, dtype=torch.int16)
    hu[0, 0, 0] = 40  # one voxel of tissue, in a corner out of view: the detector sees air only
    air = read(hu, affine=torch.diag(torch.tensor([100.0, 100.0, 100.0, 1.0])))
    data = synthetic_data(air, detector=TINY)
    module = make_module(data.imaging, stage_steps=[2])
    with pytest.raises(ValueError, match=r"synthetic target 0 rendered at true pose \[4.0, -3.0, 2.0, 5.0, 850.0"):
        make_trainer(2).fit(module, datamodule=data)


def test_target_size_mismatch_names_the_file_issue10(subject, tmp_path):
    # After preprocessing, a file that does not fit the detector is named.
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 24), dtype=np.uint8)).save(tmp_path / "x.png")
    module = make_module(Imaging(volume=subject, **TINY), [START_POSE], stage_steps=[2])
    with pytest.raises(ValueError, match=r"X-ray .*x.png is 20x24 pixels \(HxW\) but the DRR detector is 16x16"):
        make_trainer(2).fit(module, datamodule=RegistrationData(targets=[str(tmp_path / "x.png")]))


# ------------------------------------------------------------------------------------ physics-simulated targets


def _physics(**options):
    from drreg.physics import XRayPhysics

    return XRayPhysics(**{"scatter_to_primary": 0.2, "blur_mm": 4.0, "noise": "poisson", "photons_per_pixel": 1e4,
                          **options})  # fmt: skip


def test_physics_targets_are_read_as_raw_files(subject, tmp_path):
    # Raw simulated X-rays go through a 16-bit TIFF and back, read and made DRR-like as a user's file is.
    folder = tmp_path / "raw"
    data = synthetic_data(subject, detector=TINY, physics=_physics(), negative_log=True, physics_folder=str(folder))
    data.setup("fit")
    targets = data.batch["targets"]
    assert targets.shape == (1, 1, 1, 16, 16) and targets.min() == 0.0 and targets.max() == 1.0
    assert data.batch["names"] == [f"synthetic target 0 simulated at true pose {TRUE_POSE}"]
    picture = Image.open(folder / "synthetic_target_0_view_0.tif")
    assert picture.mode == "I;16" and np.asarray(picture).max() == 65535
    in_memory = synthetic_data(subject, detector=TINY, physics=_physics(), negative_log=True)
    in_memory.setup("fit")
    torch.testing.assert_close(in_memory.batch["targets"], targets)  # the same 16-bit values, without the file


def test_physics_targets_differ_from_drrs_but_look_alike(subject):
    physics = synthetic_data(subject, physics=_physics(), negative_log=True)
    drrs = synthetic_data(subject)
    for data in (physics, drrs):
        data.setup("fit")
    simulated, rendered = physics.batch["targets"].flatten(), drrs.batch["targets"].flatten()
    correlation = torch.corrcoef(torch.stack([simulated, rendered]))[0, 1]
    assert 0.8 < correlation < 0.999
    seeded = synthetic_data(subject, physics=_physics(), negative_log=True, physics_seed=1)
    seeded.setup("fit")
    assert not torch.equal(seeded.batch["targets"], physics.batch["targets"])  # another draw of the noise


def test_registration_to_physics_targets(subject, tmp_path):
    data = synthetic_data(subject, physics=_physics(blur_mm=1.0), negative_log=True)
    module = make_module(data.imaging, scales=[0.5, 1.0], stage_steps=[60, 60], p_subsample=None)
    make_trainer(module.max_steps).fit(module, datamodule=data)
    assert module.results()["targets"][0]["errors"]["mtre_mm"] < 2.0


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (dict(), ValueError, r"output='raw' makes raw detector images .* set negative_log=True"),
        (dict(negative_log=True, targets=["x.png"]), ValueError, "give it without target files"),
        (dict(negative_log=True, physics="xray"), TypeError, "physics must be a drreg.physics.XRayPhysics, got str"),
        (dict(physics_folder="raw", physics=_physics(output="negative_log")), ValueError, "needs physics output='raw'"),
        (dict(negative_log=True, bone_scale=-1.0), ValueError, "bone_scale"),
    ],
    ids=["raw-without-negative-log", "with-files", "not-physics", "folder-of-line-integrals", "negative-bone-scale"],
)
def test_physics_targets_refused_with_reasons(subject, tmp_path, options, error, match):
    if "targets" in options:
        Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(tmp_path / "x.png")
        options["targets"] = [str(tmp_path / "x.png")]
    options = {"physics": _physics(), **options}
    with pytest.raises(error, match=match):
        synthetic_data(subject, detector=TINY, **options)
