"""drreg.data against DiffDRR 0.6.1's diffdrr.data: the same names, arguments and outputs (fixture data.pt)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchio as tio

from drreg.data import canonicalize, read, transform_hu_to_density
from drreg.pose import RigidTransform
from tests._diffdrr_fixture import load_fixture, write_nifti

READ_CASES = (
    "default pa none not_centred bone_2_5 bone_0 labelmap labels_list labels_int resample_4 resample_tuple "
    "resample_labels fiducials fiducials_not_centred transform transform_not_centred"
).split()


@pytest.fixture(scope="module")
def fixture() -> dict[str, Any]:
    return load_fixture()


@pytest.fixture(scope="module")
def files(fixture: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_nifti(fixture["inputs"], tmp_path_factory.mktemp("diffdrr_ct"))


def _read_case(fixture: dict[str, Any], files: tuple[Path, Path], name: str) -> tio.Subject:
    kwargs = dict(fixture["read_cases"][name])
    if kwargs.pop("labelmap", False):
        kwargs["labelmap"] = files[1]
    if kwargs.pop("fiducials", False):
        kwargs["fiducials"] = fixture["fiducials"].clone()
    if kwargs.pop("transform", False):
        kwargs["transform"] = RigidTransform(fixture["transform"][None])
    return read(files[0], **kwargs)


@pytest.mark.parametrize("name", READ_CASES)
def test_read_matches_diffdrr(fixture: dict[str, Any], files: tuple[Path, Path], name: str) -> None:
    subject = _read_case(fixture, files, name)
    expected = fixture["read"][name]
    assert tuple(subject.volume.data.shape) == expected["volume_shape"]
    assert str(subject.volume.data.dtype) == expected["volume_dtype"]
    torch.testing.assert_close(torch.as_tensor(subject.volume.affine), expected["volume_affine"], rtol=0, atol=1e-9)
    assert subject.volume.data.double().sum().item() == pytest.approx(expected["volume_sum"], rel=1e-9)
    density = subject.density.data
    assert tuple(density.shape) == expected["density_shape"] and str(density.dtype) == expected["density_dtype"]
    torch.testing.assert_close(torch.as_tensor(subject.density.affine), expected["density_affine"], rtol=0, atol=1e-9)
    stats = torch.stack([density.sum(), density.mean(), density.max(), density.std()]).double()
    torch.testing.assert_close(stats, expected["density_stats"], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(density[0, ::3, ::3, ::2], expected["density_sample"], rtol=0, atol=0)
    torch.testing.assert_close(subject.reorient, expected["reorient"], rtol=0, atol=0)
    assert subject.orientation == expected["orientation"]
    assert (subject.mask is None) == expected["mask_is_none"]
    assert (subject.fiducials is None) == expected["fiducials_is_none"]
    if subject.mask is not None:
        assert tuple(subject.mask.data.shape) == expected["mask_shape"]
        torch.testing.assert_close(torch.as_tensor(subject.mask.affine), expected["mask_affine"], rtol=0, atol=1e-9)
        counts = torch.bincount(subject.mask.data.flatten().long(), minlength=5)
        assert counts.tolist() == expected["mask_counts"].tolist()
    if subject.fiducials is not None:
        torch.testing.assert_close(subject.fiducials, expected["fiducials"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("multiplier", [0.0, 1.0, 2.5])
def test_transform_hu_to_density_matches_diffdrr(fixture: dict[str, Any], multiplier: float) -> None:
    density = transform_hu_to_density(fixture["hu_values"], multiplier)
    torch.testing.assert_close(density, fixture["transform_hu_to_density"][multiplier], rtol=0, atol=0)


def test_canonicalize_matches_diffdrr(fixture: dict[str, Any]) -> None:
    inputs, expected = fixture["inputs"], fixture["canonicalize"]
    affine = inputs["affine"].numpy()
    subject = tio.Subject(
        volume=tio.ScalarImage(tensor=inputs["hu"][None], affine=affine),
        mask=tio.LabelMap(tensor=inputs["labelmap"][None], affine=affine),
        fiducials=fixture["fiducials"].clone(),
    )
    assert canonicalize(subject) is subject  # in place, as DiffDRR's
    torch.testing.assert_close(torch.as_tensor(subject.volume.affine), expected["volume_affine"], rtol=0, atol=1e-9)
    torch.testing.assert_close(torch.as_tensor(subject.mask.affine), expected["mask_affine"], rtol=0, atol=1e-9)
    torch.testing.assert_close(subject.fiducials, expected["fiducials"], rtol=0, atol=1e-9)


def test_canonicalize_without_fiducials() -> None:
    subject = tio.Subject(volume=tio.ScalarImage(tensor=torch.zeros(1, 3, 5, 7)))
    canonicalize(subject)
    np.testing.assert_allclose(subject.volume.affine[:3, 3], [-1.0, -2.0, -3.0])


@pytest.mark.parametrize("module", ["data", "visualization"])
def test_public_names_match_diffdrr(fixture: dict[str, Any], module: str) -> None:
    names = fixture["public_names"][f"diffdrr.{module}"]
    ours = importlib.import_module(f"drreg.{module}")
    assert set(names["all"]) <= set(ours.__all__)
    missing = [name for name in names["defined"] if not callable(getattr(ours, name, None))]
    assert not missing, f"drreg.{module} lacks {missing}"


# -- drreg's own checks around DiffDRR's arguments -------------------------------------------------------------


def test_absent_mask_and_fiducials_are_none() -> None:
    subject = read(torch.zeros(4, 4, 4))
    assert subject.mask is None and subject.fiducials is None
    assert subject.reorient.dtype == torch.float32


def test_transform_rejects_torchio_transform() -> None:
    with pytest.raises(TypeError, match="subject_transform"):
        read(torch.zeros(4, 4, 4), transform=tio.Crop(1))


def test_transform_rejects_batch() -> None:
    with pytest.raises(ValueError, match="one pose, got a batch of 2"):
        read(torch.zeros(4, 4, 4), transform=RigidTransform(torch.eye(4).repeat(2, 1, 1)))


def test_transform_accepts_matrix_and_moves_labelmap(fixture: dict[str, Any], files: tuple[Path, Path]) -> None:
    # drreg moves the labelmap with the volume (DiffDRR 0.6.1 leaves its affine as read; its renderer ignores it).
    matrix = fixture["transform"]
    subject = read(files[0], labelmap=files[1], transform=matrix, center_volume=False)
    expected = fixture["read"]["transform_not_centred"]["volume_affine"]
    torch.testing.assert_close(torch.as_tensor(subject.volume.affine), expected, rtol=0, atol=1e-9)
    torch.testing.assert_close(torch.as_tensor(subject.mask.affine), expected, rtol=0, atol=1e-9)


def test_float32_fiducials_keep_dtype(files: tuple[Path, Path]) -> None:
    points = torch.tensor([[[1.0, 2.0, 3.0]]])
    assert read(files[0], fiducials=points).fiducials.dtype == torch.float32
    assert read(files[0], fiducials=points.numpy()).fiducials.dtype == torch.float64


def test_resample_target_keeps_fiducials(files: tuple[Path, Path]) -> None:
    points = torch.tensor([[[1.0, 2.0, 3.0]]], dtype=torch.float64)
    subject = read(files[0], fiducials=points, resample_target=4, center_volume=False)
    torch.testing.assert_close(subject.fiducials, points)
    assert subject.volume.spacing == (4.0, 4.0, 4.0)
