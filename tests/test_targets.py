"""Registration targets: reading PNG/TIFF/DICOM X-rays, preprocessing them, and synthetic targets."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drreg import DRR
from drreg.registration import pose_vectors_to_transform
from drreg.targets import (
    XRayTarget,
    check_target_contrast,
    check_target_size,
    preprocess,
    read_xray,
    synthetic_target,
)
from tests._phantoms import blob_subject


def write_dicom(
    path: Path,
    pixels: torch.Tensor,
    spacing: tuple[float, float] | None = None,
    sdd: float | None = None,
    monochrome1: bool = False,
    slope: float = 1.0,
    intercept: float = 0.0,
    tags: dict[str, object] | None = None,
) -> Path:
    """Write a (H, W) uint16 image as a DICOM X-ray (DX) file with pydicom, with the given tags (``tags``: any
    others by keyword, e.g. ``{"PixelSpacing": ["0", "0"]}``)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "DX"
    array = pixels.numpy().astype(np.uint16)
    dataset.Rows, dataset.Columns = array.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
    dataset.PixelRepresentation = 0
    dataset.RescaleSlope, dataset.RescaleIntercept = slope, intercept
    if spacing is not None:
        dataset.ImagerPixelSpacing = [f"{spacing[0]:g}", f"{spacing[1]:g}"]
    if sdd is not None:
        dataset.DistanceSourceToDetector = f"{sdd:g}"
    for keyword, value in (tags or {}).items():
        setattr(dataset, keyword, value)
    dataset.PixelData = array.tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def _ramp(height: int = 6, width: int = 8) -> torch.Tensor:
    return torch.arange(height * width, dtype=torch.float32).reshape(height, width)


# ------------------------------------------------------------------------------------------------------ reading


def test_read_png_8_and_16_bit(tmp_path):
    ramp = _ramp()
    Image.fromarray(ramp.numpy().astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray((ramp.numpy() * 1000).astype(np.uint16)).save(tmp_path / "b.png")
    eight, sixteen = read_xray(tmp_path / "a.png"), read_xray(tmp_path / "b.png")
    assert eight.image.shape == (1, 1, 6, 8) and eight.pixel_spacing is None and eight.sdd is None
    torch.testing.assert_close(eight.image[0, 0], ramp)
    torch.testing.assert_close(sixteen.image[0, 0], ramp * 1000)


def test_read_float_tiff_and_rgb(tmp_path):
    values = np.linspace(0.0, 1.5, 48, dtype=np.float32).reshape(6, 8)
    Image.fromarray(values, mode="F").save(tmp_path / "x.tif")
    torch.testing.assert_close(read_xray(tmp_path / "x.tif").image[0, 0], torch.from_numpy(values))
    grey = np.full((4, 5, 3), 128, dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "rgb.png")
    assert read_xray(tmp_path / "rgb.png").image.shape == (1, 1, 4, 5)


def test_read_dicom_tags(tmp_path):
    pixels = (_ramp() * 10).to(torch.int32)
    path = write_dicom(tmp_path / "x.dcm", pixels, spacing=(0.3, 0.2), sdd=1100.0, slope=2.0, intercept=-5.0)
    xray = read_xray(path)
    assert xray.pixel_spacing == (0.3, 0.2) and xray.sdd == 1100.0 and xray.path == path
    torch.testing.assert_close(xray.image[0, 0], pixels.float() * 2.0 - 5.0)


@pytest.mark.parametrize(
    ("tags", "key", "match"),
    [
        ({"PixelSpacing": ["0", "0"]}, "pixel_spacing", r"DICOM tag PixelSpacing of file .*x.dcm is '0\\0'"),
        ({"ImagerPixelSpacing": ["0.2"]}, "pixel_spacing", r"ImagerPixelSpacing .* is '0.2', not two positive"),
        ({"DistanceSourceToDetector": "-5"}, "sdd", r"DistanceSourceToDetector of file .*x.dcm is '-5'"),
    ],
    ids=["zero-spacing", "one-value", "negative-sdd"],
)
def test_unusable_dicom_tags_are_recorded_issue10(tmp_path, tags, key, match):
    # An unusable detector tag (0\0 spacing) gives no value and a message naming tag, value and file, not a 0.0.
    xray = read_xray(write_dicom(tmp_path / "x.dcm", (_ramp() * 10).to(torch.int32), tags=tags))
    assert (xray.pixel_spacing if key == "pixel_spacing" else xray.sdd) is None
    assert list(xray.tag_problems) == [key]
    assert re.search(match, xray.tag_problems[key]), xray.tag_problems


def test_dicom_detector_sources_follow_the_preprocessing_issue10(tmp_path):
    # Where each detector value came from is kept: the tag, the file, and any crop or resize.
    path = write_dicom(
        tmp_path / "x.dcm",
        (_ramp(8, 10) * 10).to(torch.int32),
        sdd=1100.0,
        tags={"ImagerPixelSpacing": ["0", "0"], "PixelSpacing": ["0.3", "0.2"]},
    )
    xray = read_xray(path).preprocess(crop=1, size=(3, 4))
    assert xray.pixel_spacing == pytest.approx((0.3 * 6 / 3, 0.2 * 8 / 4)) and xray.tag_problems == {}
    assert xray.sources["sdd"] == f"DICOM tag DistanceSourceToDetector of file {path}"
    assert xray.sources["delx"].startswith(f"DICOM tag PixelSpacing of file {path} (unusable: DICOM tag Imager")
    assert xray.sources["height"] == f"DICOM tag Rows of file {path} (cropped by 1 px, resized from 6x8 to 3x4)"


def test_read_dicom_monochrome1_is_inverted(tmp_path):
    pixels = (_ramp() * 10).to(torch.int32)
    xray = read_xray(write_dicom(tmp_path / "m1", pixels, monochrome1=True))  # no suffix: found by its preamble
    torch.testing.assert_close(xray.image[0, 0], pixels.max().float() - pixels.float())


def test_unreadable_and_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        read_xray(tmp_path / "nothing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read X-ray image .*notes.png"):
        read_xray(tmp_path / "notes.png")
    with pytest.raises(ValueError, match="is a folder"):
        read_xray(tmp_path)
    (tmp_path / "bad.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    with pytest.raises(ValueError, match="cannot read DICOM X-ray"):
        read_xray(tmp_path / "bad.dcm")


def test_nan_pixels_are_rejected(tmp_path):
    values = np.ones((4, 4), dtype=np.float32)
    values[1, 2] = np.nan
    Image.fromarray(values, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match="NaN"):
        read_xray(tmp_path / "nan.tif")


# ------------------------------------------------------------------------------------------------ preprocessing


def test_negative_log_recovers_the_line_integrals():
    """Beer-Lambert: a detector image I = I0 exp(-DRR) becomes the DRR again (up to the rescale)."""
    drr = torch.rand(1, 1, 16, 16, dtype=torch.float64) * 3
    raw = 5000.0 * torch.exp(-drr)
    recovered = preprocess(raw, negative_log=True, rescale=False).double()
    # I0 is the brightest pixel: the recovered values are the DRR minus its minimum.
    torch.testing.assert_close(recovered, (drr - drr.min()).float().double(), atol=1e-5, rtol=1e-5)
    rescaled = preprocess(raw, negative_log=True)
    assert float(rescaled.min()) == 0.0 and float(rescaled.max()) == pytest.approx(1.0)


def test_crop_flip_resize_rescale():
    image = _ramp(6, 8)
    torch.testing.assert_close(preprocess(image, rescale=False, crop=1)[0, 0], image[1:-1, 1:-1])
    torch.testing.assert_close(preprocess(image, rescale=False, flip_horizontal=True)[0, 0], image.flip(-1))
    torch.testing.assert_close(preprocess(image, rescale=False, flip_vertical=True)[0, 0], image.flip(-2))
    torch.testing.assert_close(
        preprocess(image, rescale=False, size=(3, 4))[0, 0], image.reshape(3, 2, 4, 2).mean((1, 3))
    )
    assert preprocess(image, size=12).shape == (1, 1, 12, 12)
    rescaled = preprocess(image)
    assert float(rescaled.min()) == 0.0 and float(rescaled.max()) == 1.0
    torch.testing.assert_close(preprocess(torch.full((4, 4), 7.0)), torch.zeros(1, 1, 4, 4))  # constant: no NaN


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(crop=3), "crop must be in"),
        (dict(size=(0, 4)), "size must be"),
    ],
)
def test_preprocess_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        preprocess(_ramp(6, 8), **kwargs)


def test_preprocess_rejects_bad_images():
    with pytest.raises(ValueError, match="image must be"):
        preprocess(torch.zeros(1, 1, 1, 4, 4))
    with pytest.raises(ValueError, match="finite"):
        preprocess(torch.tensor([[1.0, math.inf]]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        preprocess(np.zeros((4, 4)))


def test_target_spacing_follows_crop_and_resize():
    target = XRayTarget(image=torch.rand(1, 1, 100, 80), pixel_spacing=(0.2, 0.25), sdd=1000.0)
    smaller = target.preprocess(crop=10, size=(40, 30))
    assert smaller.image.shape == (1, 1, 40, 30) and smaller.sdd == 1000.0
    assert smaller.pixel_spacing == pytest.approx((0.2 * 80 / 40, 0.25 * 60 / 30))


# ------------------------------------------------------------------------------------------------ synthetic


def test_synthetic_target_renders_every_pixel():
    subject = blob_subject()
    pose = pose_vectors_to_transform([[3.0, 2.0, -1.0, 0.0, 850.0, 0.0]])
    sparse = DRR(subject, sdd=1020.0, height=16, delx=16.0, p_subsample=0.1)
    dense = DRR(subject, sdd=1020.0, height=16, delx=16.0)
    torch.testing.assert_close(synthetic_target(sparse, pose), dense(pose))
    with pytest.raises(TypeError, match="RigidTransform"):
        synthetic_target(dense, pose.matrix)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (torch.full((1, 1, 8, 8), 7.0), r"target 2 is blank \(constant 7 over 8x8 pixels\)"),
        (torch.zeros(1, 1, 8, 8), r"target 2 is blank \(constant 0"),
        (1000.0 + torch.linspace(0, 0.01, 64).reshape(1, 1, 8, 8), r"target 2 is blank \(values 1000 to 1000.01"),
        (torch.full((1, 1, 8, 8), math.nan), r"target 2 holds 64 NaN/inf pixel value\(s\) of 64"),
    ],
    ids=["constant", "zeros", "rounding-noise", "all-nan"],
)
def test_blank_targets_are_refused_issue10(image, match):
    # A target without contrast gives every pose the same loss: refuse it, naming it, before any optimisation.
    with pytest.raises(ValueError, match=match):
        check_target_contrast(image, "target 2")
    check_target_contrast(torch.rand(1, 1, 8, 8), "target 2")  # any real contrast passes


def test_target_size_check_names_both_sizes():
    drr = DRR(blob_subject(), sdd=1020.0, height=16, width=12, delx=16.0)
    check_target_size(torch.zeros(1, 1, 16, 12), drr)
    with pytest.raises(ValueError, match=r"target is 10x12 pixels \(HxW\) but the DRR detector is 16x12"):
        check_target_size(torch.zeros(1, 1, 10, 12), drr)
