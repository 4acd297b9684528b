"""Tests for drreg._volume_files (issue 10): truncated or corrupt NIfTI, NRRD and MetaImage payloads are refused by
read(), intact ones read unchanged.

Every file here is a real one, written by nibabel or SimpleITK into ``tmp_path`` and then damaged the way downloads
and copies damage them (cut short, a flipped byte), so the tests exercise the same readers users hit.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from drreg.volume import read
from tests._ct_files import SHAPE_ZYX, cut, hu_volume, sitk_image


def _flip(path: Path, offset_fraction: float) -> Path:
    """Flip every bit of one byte of ``path``, at ``offset_fraction`` of its length (from the end if negative)."""
    data = bytearray(path.read_bytes())
    offset = int(len(data) * offset_fraction) if offset_fraction >= 0 else len(data) + int(offset_fraction)
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_nifti_issue10(tmp_path: Path, keep: float) -> None:
    # An uncompressed .nii cut short loaded as a full-size volume padded with zeros.
    path = tmp_path / "ct.nii"
    nib.save(nib.Nifti1Image(hu_volume().transpose(2, 1, 0), np.eye(4)), path)
    expected = path.stat().st_size
    cut(path, keep)
    with pytest.raises(ValueError, match=rf"volume file .*ct\.nii is truncated: .*{expected:,} bytes.*only"):
        read(path)


@pytest.mark.parametrize("keep", [0.5, 400, -8])
def test_truncated_nifti_gz_issue10(tmp_path: Path, keep: float | int) -> None:
    # The first bytes of a .nii.gz (even 400 of them, or all but the gzip trailer) loaded as a valid CT.
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk_image(), str(path), True)
    cut(path, keep if keep != -8 else path.stat().st_size - 8)
    with pytest.raises(ValueError, match=r"volume file .*ct\.nii\.gz is truncated: its compressed data ends"):
        read(path)


@pytest.mark.parametrize("where", [0.5, -6])
def test_corrupt_nifti_gz_issue10(tmp_path: Path, where: float) -> None:
    # One flipped byte in the deflate data (or in the CRC) gave garbage, or a volume with its end zeroed.
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk_image(), str(path), True)
    _flip(path, where)
    with pytest.raises(ValueError, match=r"volume file .*ct\.nii\.gz is damaged: its compressed data is corrupt"):
        read(path)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_nrrd_issue10(tmp_path: Path, compress: bool) -> None:
    # A cut NRRD failed with "file not understood", without saying what was wrong with it.
    path = tmp_path / "ct.nrrd"
    sitk.WriteImage(sitk_image(), str(path), compress)
    cut(path, 0.6)
    match = "its compressed data ends" if compress else rf"{np.prod(SHAPE_ZYX) * 2:,} bytes.*only"
    with pytest.raises(ValueError, match=rf"volume file .*ct\.nrrd is truncated: .*{match}"):
        read(path)


def test_corrupt_nrrd_gzip_issue10(tmp_path: Path) -> None:
    # A flipped byte inside a gzip-encoded NRRD loaded as garbage, silently.
    path = tmp_path / "ct.nrrd"
    sitk.WriteImage(sitk_image(), str(path), True)
    _flip(path, 0.5)
    with pytest.raises(ValueError, match=r"volume file .*ct\.nrrd is damaged: its compressed data is corrupt"):
        read(path)


def test_truncated_detached_nrrd_issue10(tmp_path: Path) -> None:
    # A detached header (.nhdr) whose raw data file was cut short.
    data = tmp_path / "ct.raw"
    data.write_bytes(hu_volume().tobytes())
    header = tmp_path / "ct.nhdr"
    header.write_text(
        "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\n"
        f"sizes: {SHAPE_ZYX[2]} {SHAPE_ZYX[1]} {SHAPE_ZYX[0]}\n"
        "space directions: (1,0,0) (0,1.5,0) (0,0,2.5)\nkinds: domain domain domain\nendian: little\n"
        "encoding: raw\nspace origin: (0,0,0)\ndata file: ct.raw\n"
    )
    assert read(header, center_volume=False).volume.spatial_shape == SHAPE_ZYX[::-1]
    cut(data, 0.5)
    with pytest.raises(ValueError, match=r"volume file .*ct\.nhdr is truncated: .*its data file .*ct\.raw holds"):
        read(header)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_metaimage_issue10(tmp_path: Path, compress: bool) -> None:
    # A cut .mha failed with "file not understood"; the byte counts went to stderr only.
    path = tmp_path / "ct.mha"
    sitk.WriteImage(sitk_image(), str(path), compress)
    cut(path, 0.6)
    match = "its compressed data ends" if compress else rf"{np.prod(SHAPE_ZYX) * 2:,} bytes.*only"
    with pytest.raises(ValueError, match=rf"volume file .*ct\.mha is truncated: .*{match}"):
        read(path)


def test_corrupt_metaimage_issue10(tmp_path: Path) -> None:
    # A flipped byte inside a compressed .mha loaded as garbage, silently.
    path = tmp_path / "ct.mha"
    sitk.WriteImage(sitk_image(), str(path), True)
    _flip(path, 0.5)
    with pytest.raises(ValueError, match=r"volume file .*ct\.mha is damaged: its compressed data is corrupt"):
        read(path)


def test_truncated_mhd_raw_issue10(tmp_path: Path) -> None:
    # A MetaImage header whose detached .raw data file was cut short.
    path = tmp_path / "ct.mhd"
    sitk.WriteImage(sitk_image(), str(path))
    cut(tmp_path / "ct.raw", 0.5)
    with pytest.raises(ValueError, match=r"volume file .*ct\.mhd is truncated: .*its data file .*ct\.raw holds"):
        read(path)


def test_truncated_labelmap_issue10(tmp_path: Path) -> None:
    # The labelmap goes through the same reader, so it is checked the same way (and named as the labelmap).
    volume, labelmap = tmp_path / "ct.nii.gz", tmp_path / "mask.nii.gz"
    sitk.WriteImage(sitk_image(), str(volume), True)
    sitk.WriteImage(sitk.GetImageFromArray((hu_volume() > 500).astype(np.uint8)), str(labelmap), True)
    cut(labelmap, 0.5)
    with pytest.raises(ValueError, match=r"labelmap file .*mask\.nii\.gz is truncated"):
        read(volume, labelmap=labelmap)


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".nii", False), (".nii.gz", True), (".nrrd", False), (".nrrd", True), (".mha", False), (".mha", True)],
)
def test_intact_files_read_unchanged(tmp_path: Path, suffix: str, compress: bool) -> None:
    """The checks refuse damaged files only: intact ones, compressed or not, read exactly as before."""
    path = tmp_path / f"ct{suffix}"
    sitk.WriteImage(sitk_image(), str(path), compress)
    subject = read(path, center_volume=False)
    assert torch.equal(subject.volume.data[0], torch.from_numpy(hu_volume().transpose(2, 1, 0).copy()))


def test_multi_member_gzip_nifti_reads_issue10(tmp_path: Path) -> None:
    # A .nii.gz made of two concatenated gzip members (as `cat a.gz b.gz` or pigz can write) is intact.
    plain = tmp_path / "ct.nii"
    nib.save(nib.Nifti1Image(hu_volume().transpose(2, 1, 0), np.eye(4)), plain)
    raw = plain.read_bytes()
    path = tmp_path / "ct.nii.gz"
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    assert read(path, center_volume=False).volume.spatial_shape == SHAPE_ZYX[::-1]
    cut(path, 0.8)
    with pytest.raises(ValueError, match="is truncated: its compressed data ends"):
        read(path)
