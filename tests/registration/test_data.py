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
