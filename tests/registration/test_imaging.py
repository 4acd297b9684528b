"""The imaging set-up: the CT, the detector (given, or from the targets' DICOM tags) and the renderer."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from lightning import Trainer

from drreg.registration import CoarseToFine, Imaging, RegistrationData, RegistrationModule, ResultsWriter
from tests.registration._setup import SIZE, SMALL, TRUE_POSE, dicom_target, make_trainer


def test_missing_values_are_filled_from_the_files_and_their_sources_kept():
    imaging = Imaging(sdd=None, height=None, delx=2.0)
    assert imaging.missing() == ["sdd", "height"]
    filled = imaging.with_intrinsics({"sdd": 980.0, "height": 24, "width": 20}, {"sdd": "tag of xray.dcm"})
    assert (filled.sdd, filled.height, filled.width, filled.delx, filled.dely) == (980.0, 24, 20, 2.0, None)
    assert filled.detector_sources() == {
        "sdd": "tag of xray.dcm",
        "height": "the target images",
        "width": "the target images",
        "delx": "config",
        "dely": "= delx",
    }


def test_missing_volume_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ct.nii.gz"):
        RegistrationModule([TRUE_POSE], Imaging(volume=str(tmp_path / "ct.nii.gz"), **SMALL))


def test_loading_shares_the_ct(subject):
    imaging = Imaging(volume=subject).load()
    assert imaging.volume is subject and imaging.load() is imaging
    assert imaging.record()["volume"] == "torchio.Subject"


def test_detector_from_dicom_tags(subject, tmp_path):
    """A DICOM target's ImagerPixelSpacing and DistanceSourceToDetector become the detector when not given."""
    path = dicom_target(subject, tmp_path / "xray.dcm", spacing=(10.0, 9.0), sdd=980.0)
    data = RegistrationData(targets=[str(path)], imaging=Imaging(volume=subject, sdd=None, height=None, delx=None))
    module = RegistrationModule([TRUE_POSE], data.imaging, schedule=CoarseToFine(stage_steps=[1]))
    make_trainer(1).fit(module, datamodule=data)
    detector = module.drr.detector
    assert (detector.sdd, detector.height, detector.width, detector.delx, detector.dely) == (980.0, 24, 20, 9.0, 10.0)
    assert module.results()["targets"][0]["loss"] < 1e-3  # the target is the DRR at the start pose


def test_missing_intrinsics_are_named(subject):
    # Images in memory say nothing about the detector: the module refuses to start without sdd.
    data = RegistrationData.from_tensors(torch.rand(1, 1, SIZE, SIZE))
    imaging = Imaging(volume=subject, sdd=None, height=32, delx=8.0)
    with pytest.raises(ValueError, match="the detector needs sdd"):
        make_trainer(1).fit(RegistrationModule([TRUE_POSE], imaging), datamodule=data)


@pytest.mark.parametrize(
    ("tags", "missing", "match"),
    [
        (
            dict(sdd=980.0, tags={"PixelSpacing": ["0", "0"]}),
            dict(delx=None),
            r"DICOM tag PixelSpacing of file .*xray.dcm is '0\\0', not two positive numbers \(mm\): the detector's "
            r"delx cannot come from it; give it yourself: --data.imaging.delx <mm> \(and --data.imaging.dely <mm>",
        ),
        (
            dict(spacing=(10.0, 9.0), tags={"DistanceSourceToDetector": "0"}),
            dict(sdd=None),
            r"DICOM tag DistanceSourceToDetector of file .*xray.dcm is '0'.*give it yourself: --data.imaging.sdd <mm>",
        ),
    ],
    ids=["pixel-spacing", "sdd"],
)
def test_unusable_dicom_tag_is_named_with_the_way_out_issue10(subject, tmp_path, tags, missing, match):
    # PixelSpacing 0\0 with delx null used to fail as "delx must be a positive number (mm), got 0.0".
    path = dicom_target(subject, tmp_path / "xray.dcm", **tags)
    given = {"sdd": 980.0, "height": None, "delx": 9.0, "dely": 10.0, **missing}
    with pytest.raises(ValueError, match=match):  # refused as the files are read, before any module is built
        RegistrationData(targets=[str(path)], imaging=Imaging(volume=subject, **given))


def test_detector_from_tags_is_recorded_issue10(subject, tmp_path):
    # The detector values taken from DICOM tags (after the resize) used to be written nowhere.
    from lightning.pytorch.loggers import TensorBoardLogger

    path = dicom_target(subject, tmp_path / "xray.dcm", spacing=(10.0, 9.0), sdd=980.0)
    imaging = Imaging(volume=subject, sdd=None, height=None, delx=None)
    data = RegistrationData(targets=[str(path)], size=[12, 10], imaging=imaging)
    module = RegistrationModule(
        [TRUE_POSE],
        data.imaging,
        schedule=CoarseToFine(stage_steps=[1, 1], scales=[0.5, 1.0]),
        results_writer=ResultsWriter(output=str(tmp_path / "poses.json")),
    )
    logger = TensorBoardLogger(tmp_path, name="", version=0)  # the CLI's logger: hparams.yaml written once
    trainer = Trainer(
        max_steps=2,
        max_epochs=1,
        logger=logger,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(module, datamodule=data)
    detector = json.loads((tmp_path / "poses.json").read_text())["detector"]
    expected = dict(sdd=980.0, height=12, width=10, delx=18.0, dely=20.0, x0=0.0, y0=0.0)
    assert {name: detector[name] for name in expected} == pytest.approx(expected)
    assert detector["sources"]["sdd"] == f"DICOM tag DistanceSourceToDetector of file {path}"
    resized = " (resized from 24x20 to 12x10)"
    assert detector["sources"]["delx"] == f"DICOM tag ImagerPixelSpacing of file {path}{resized}"
    assert detector["sources"]["height"] == f"DICOM tag Rows of file {path}{resized}"
    assert detector["stages"][0] == pytest.approx(dict(scale=0.5, height=6, width=5, delx=36.0, dely=40.0))
    hparams = yaml.safe_load((tmp_path / "version_0" / "hparams.yaml").read_text())
    assert hparams["detector"] == detector
