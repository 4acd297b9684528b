"""drreg.xray_files: DICOM, TIFF and PNG written, read back with drreg.targets.read_xray and pydicom."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

from drreg.targets import read_xray
from drreg.xray_files import DX_FOR_PROCESSING, to_uint16, write_dicom, write_png, write_tiff

SPACING = (1.5, 2.0)  # (dely, delx) mm: unequal, so that their order is checked


@pytest.fixture
def raw_image() -> torch.Tensor:
    """(1, 1, 20, 30) raw detector intensities in photon units: 17 to 9017."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, 1, 20, 30, generator=generator, dtype=torch.float64) * 9000.0 + 17.0


def test_to_uint16_round_trips_within_half_a_step(raw_image):
    stored = to_uint16(raw_image)
    restored = stored.pixels.astype(np.float64) * stored.slope + stored.intercept
    assert stored.pixels.dtype == np.uint16 and stored.pixels.max() == 65535 and stored.intercept == 0.0
    assert np.abs(restored - raw_image[0, 0].numpy()).max() <= 0.5 * stored.slope * (1 + 1e-6)


def test_to_uint16_keeps_negative_values_without_clipping():
    image = np.array([[-3.5, 0.0], [2.0, 10.0]])
    stored = to_uint16(image)
    restored = stored.pixels * stored.slope + stored.intercept
    assert stored.intercept == -4.0 and stored.pixels.min() > 0
    np.testing.assert_allclose(restored, image, atol=0.5 * stored.slope * (1 + 1e-6))


@pytest.mark.parametrize("value", [0.0, 7.0, -2.0])
def test_to_uint16_of_a_constant_image(value):
    stored = to_uint16(np.full((3, 4), value))
    restored = stored.pixels * stored.slope + stored.intercept
    np.testing.assert_allclose(restored, value, atol=0.5 * stored.slope * (1 + 1e-6))


def test_dicom_round_trips_through_read_xray(raw_image, tmp_path):
    path = write_dicom(tmp_path / "xray.dcm", raw_image, SPACING, sdd=1020.0, source_to_patient=850.0, kvp=80.0)
    target = read_xray(path)
    slope = float(pydicom.dcmread(path).RescaleSlope)
    assert target.pixel_spacing == SPACING and target.sdd == 1020.0 and (target.height, target.width) == (20, 30)
    assert "DICOM tag ImagerPixelSpacing" in target.sources["delx"] and not target.tag_problems
    assert (target.image.double() - raw_image).abs().max() <= 0.5 * slope * (1 + 1e-6) + 1e-3  # + float32 rounding


def test_dicom_tags(raw_image, tmp_path):
    comments = {"pose_vector": [4.0, -3.0, 2.0, 5.0, 850.0, -4.0]}
    path = write_dicom(
        tmp_path / "xray.dcm", raw_image, SPACING, 1020.0, 850.0, kvp=80.0, comments=comments,
        tags={"FilterMaterial": "ALUMINUM"}, series_uid="1.2.3", instance_number=4,
    )  # fmt: skip
    dataset = pydicom.dcmread(path)
    assert dataset.file_meta.MediaStorageSOPClassUID == dataset.SOPClassUID == DX_FOR_PROCESSING
    assert dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
    assert dataset.Modality == "DX" and dataset.PresentationIntentType == "FOR PROCESSING"
    assert dataset.PatientID == "DRREG-SIM" and dataset.SeriesInstanceUID == "1.2.3" and dataset.InstanceNumber == 4
    assert (dataset.Rows, dataset.Columns, dataset.BitsAllocated, dataset.PixelRepresentation) == (20, 30, 16, 0)
    assert dataset.PhotometricInterpretation == "MONOCHROME2" and dataset.PixelIntensityRelationship == "LIN"
    assert dataset.PixelIntensityRelationshipSign == 1  # raw: higher values, more X-ray intensity
    assert [float(v) for v in dataset.ImagerPixelSpacing] == list(SPACING)
    assert [float(v) for v in dataset.PixelSpacing] == pytest.approx([s * 850.0 / 1020.0 for s in SPACING])
    assert float(dataset.EstimatedRadiographicMagnificationFactor) == pytest.approx(1.2)
    assert float(dataset.DistanceSourceToDetector) == 1020.0 and float(dataset.DistanceSourceToPatient) == 850.0
    assert float(dataset.KVP) == 80.0 and dataset.FilterMaterial == "ALUMINUM"
    assert float(dataset.RescaleIntercept) == 0.0 and float(dataset.RescaleSlope) == to_uint16(raw_image).slope
    assert json.loads(dataset.ImageComments) == comments
    assert dataset.pixel_array.dtype == np.uint16 and dataset.pixel_array.max() == 65535


def test_negative_log_images_say_so(raw_image, tmp_path):
    path = write_dicom(tmp_path / "xray.dcm", raw_image, SPACING, 1020.0, intensity="negative_log")
    dataset = pydicom.dcmread(path)
    assert dataset.PixelIntensityRelationship == "LOG" and dataset.PixelIntensityRelationshipSign == -1
    assert "DistanceSourceToPatient" not in dataset and "PixelSpacing" not in dataset  # no distance: no calibration


def test_tiff_round_trips_through_read_xray(raw_image, tmp_path):
    path = write_tiff(tmp_path / "xray.tif", raw_image, SPACING, description={"pose_vector": [1.0]})
    target = read_xray(path)
    with Image.open(path) as picture:
        mode, description = picture.mode, json.loads(picture.tag_v2[270])
        resolution = (float(picture.tag_v2[282]), float(picture.tag_v2[283]), picture.tag_v2[296])
    restored = target.image.double() * description["slope"] + description["intercept"]
    assert mode == "I;16" and description["pose_vector"] == [1.0]
    assert resolution == pytest.approx((10.0 / SPACING[1], 10.0 / SPACING[0], 3))  # pixels per cm
    assert (restored - raw_image).abs().max() <= 0.5 * description["slope"] * (1 + 1e-6) + 1e-3


def test_png_preview_shows_attenuation_bright(tmp_path):
    raw = np.full((8, 8), 1000.0)
    raw[2:6, 2:6] = 10.0  # bone: few photons
    with Image.open(write_png(tmp_path / "xray.png", raw)) as picture:
        pixels = np.asarray(picture)
    assert picture.mode == "L" and pixels[4, 4] == 255 and pixels[0, 0] == 0


@pytest.mark.parametrize("writer", [write_dicom, write_tiff, write_png], ids=["dicom", "tiff", "png"])
def test_files_are_never_overwritten_unless_asked(writer, raw_image, tmp_path):
    path = tmp_path / "xray"
    path.write_text("a previous run's")
    arguments = (SPACING, 1020.0) if writer is write_dicom else ()
    with pytest.raises(FileExistsError, match="already exists; refusing to overwrite it"):
        writer(path, raw_image, *arguments)
    assert path.read_text() == "a previous run's"
    writer(path, raw_image, *arguments, overwrite=True)
    assert path.stat().st_size > 100 and sorted(p.name for p in tmp_path.iterdir()) == ["xray"]


def test_an_interrupted_write_leaves_no_file(raw_image, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_png(tmp_path / "xray.png", raw_image)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("image", "arguments", "match"),
    [
        (torch.ones(2, 1, 4, 4), {}, r"image must be one image, \(H, W\) or \(1, 1, H, W\), got shape \(2, 1, 4, 4\)"),
        (torch.full((4, 4), float("nan")), {}, "image holds 16 NaN/inf pixel value"),
        (torch.ones(4, 4), {"pixel_spacing": (0.0, 1.0)}, "pixel_spacing"),
        (torch.ones(4, 4), {"pixel_spacing": (1.0,)}, r"pixel_spacing must be \(dely, delx\)"),
        (torch.ones(4, 4), {"sdd": -1.0}, "sdd"),
        (torch.ones(4, 4), {"intensity": "log"}, "unknown intensity 'log'"),
        (torch.ones(4, 4), {"tags": {"FilterMaterials": "AL"}}, r"unknown \['FilterMaterials'\]"),
    ],
    ids=["batch", "nan", "zero-spacing", "one-spacing", "sdd", "intensity", "tag"],
)
def test_bad_dicom_inputs_are_named(image, arguments, match, tmp_path):
    arguments = {"pixel_spacing": SPACING, "sdd": 1020.0, **arguments}
    with pytest.raises(ValueError, match=match):
        write_dicom(tmp_path / "xray.dcm", image, **arguments)
    assert not (tmp_path / "xray.dcm").exists()
