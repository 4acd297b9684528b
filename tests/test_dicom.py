"""Tests for drreg._dicom (issue 10): DICOM folders with a lost or cut slice, uneven spacing or several series.

Every series here is written slice by slice with SimpleITK into ``tmp_path``, then damaged (a slice removed or cut).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from drreg.volume import read
from tests._ct_files import SHAPE_ZYX, cut, hu_volume, sitk_image

STUDY_UID = "1.2.826.0.1.3680043.2.1125.10"

SERIES_A = "1.2.826.0.1.3680043.2.1125.10.1"

SERIES_B = "1.2.826.0.1.3680043.2.1125.10.2"


def _write_series(
    folder: Path,
    hu_zyx: np.ndarray,
    series_uid: str,
    description: str,
    spacing: tuple[float, float, float] = (1.0, 1.5, 2.5),
    prefix: str = "slice",
) -> list[Path]:
    """Write one DICOM file per slice of an int16 (z, y, x) array with SimpleITK; return the files in slice order."""
    folder.mkdir(exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    files = []
    for k in range(hu_zyx.shape[0]):
        piece = sitk.GetImageFromArray(hu_zyx[k : k + 1])[:, :, 0]
        tags = {
            "0008|0060": "CT",
            "0008|103e": description,
            "0020|000d": STUDY_UID,
            "0020|000e": series_uid,
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|0013": str(k + 1),
            "0020|0032": f"0\\0\\{k * spacing[2]:.6f}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": f"{spacing[1]:.6f}\\{spacing[0]:.6f}",
            "0018|0050": f"{spacing[2]:.6f}",
        }
        for key, value in tags.items():
            piece.SetMetaData(key, value)
        files.append(folder / f"{prefix}_{k:03d}.dcm")
        writer.SetFileName(str(files[-1]))
        writer.Execute(piece)
    return files


def test_dicom_missing_slice_issue10(tmp_path: Path) -> None:
    # A series with a slice missing was stacked as if evenly spaced (ITK only printed a warning).
    files = _write_series(tmp_path / "ct", hu_volume(), SERIES_A, "CT chest")
    files[5].unlink()
    with pytest.raises(
        ValueError,
        match=r"not evenly spaced: slices are 2\.5 mm apart, but slice_004\.dcm and "
        r"slice_006\.dcm are 5 mm apart .*1 slice\(s\) missing",
    ):
        read(tmp_path / "ct")


@pytest.mark.parametrize("index", [0, 5])
def test_dicom_truncated_slice_issue10(tmp_path: Path, index: int) -> None:
    # A cut slice file was skipped by the series reader: a thinner volume (first slice) or a hidden gap.
    files = _write_series(tmp_path / "ct", hu_volume(), SERIES_A, "CT chest")
    cut(files[index], files[index].stat().st_size - 100)
    with pytest.raises(ValueError, match=rf"slice_{index:03d}\.dcm is truncated: it holds 540 of its 640 pixel"):
        read(tmp_path / "ct")


def test_dicom_folder_ignores_non_image_files(tmp_path: Path) -> None:
    """Notes and non-DICOM files beside a series are not slices: the series still reads."""
    _write_series(tmp_path / "ct", hu_volume(), SERIES_A, "CT chest")
    (tmp_path / "ct" / "README.txt").write_text("exported by hand")
    assert read(tmp_path / "ct", center_volume=False).volume.spatial_shape == SHAPE_ZYX[::-1]


@pytest.fixture
def two_series(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    _write_series(folder, hu_volume(), SERIES_A, "CT chest 2.5mm", prefix="a")
    _write_series(folder, hu_volume((7, 10, 8)), SERIES_B, "Scout", spacing=(2.0, 2.0, 5.0), prefix="b")
    return folder


def test_dicom_two_series_refused_issue10(two_series: Path) -> None:
    # A folder with two series silently returned the one with the lowest UID.
    pattern = (
        r"volume folder .*study holds 2 DICOM series.*series_uid=.*\n"
        rf".*series_uid='{SERIES_A}': 'CT chest 2\.5mm', 12 slices of 20 x 16 \(rows x columns\)\n"
        rf".*series_uid='{SERIES_B}': 'Scout', 7 slices of 10 x 8 \(rows x columns\)"
    )
    with pytest.raises(ValueError, match=pattern):
        read(two_series)


@pytest.mark.parametrize(("uid", "shape_zyx"), [(SERIES_A, SHAPE_ZYX), (SERIES_B, (7, 10, 8))], ids=["A", "B"])
def test_dicom_series_uid_selects_issue10(two_series: Path, uid: str, shape_zyx: tuple[int, int, int]) -> None:
    # series_uid= picks one series of a shared folder, whichever its UID sorts.
    subject = read(two_series, series_uid=uid, center_volume=False)
    assert torch.equal(subject.volume.data[0], torch.from_numpy(hu_volume(shape_zyx).transpose(2, 1, 0).copy()))


def test_dicom_series_own_folder(two_series: Path, tmp_path: Path) -> None:
    """The other way out the error names: the series' own folder."""
    own = tmp_path / "scout"
    own.mkdir()
    for file in two_series.glob("b_*.dcm"):
        shutil.copy(file, own)
    assert read(own, center_volume=False).volume.spatial_shape == (8, 10, 7)


def test_dicom_series_uid_unknown_issue10(two_series: Path) -> None:
    # A UID that is not in the folder lists the ones that are.
    with pytest.raises(ValueError, match=rf"(?s)series_uid='1\.2\.3' is not in .*study.*{SERIES_A}.*{SERIES_B}"):
        read(two_series, series_uid="1.2.3")


@pytest.mark.parametrize("volume", ["file", "tensor"])
def test_series_uid_needs_dicom_folder_issue10(tmp_path: Path, volume: str) -> None:
    # series_uid with a single file or a tensor would be ignored silently.
    data: object = torch.zeros(4, 4, 4)
    if volume == "file":
        data = tmp_path / "ct.nii.gz"
        sitk.WriteImage(sitk_image(), str(data), True)
    with pytest.raises(ValueError, match="series_uid selects a series in a DICOM folder"):
        read(data, series_uid=SERIES_A)
