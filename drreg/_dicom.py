"""Reading one DICOM series from a folder: the only one or the chosen ``series_uid``, every slice, evenly spaced.

A folder holding several series, a slice the series reader skipped (cut, unreadable) or slices missing from an
even stack would otherwise be read silently as a wrong volume (issue 10); each raises here, saying what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
import torchio as tio

__all__ = ["read_dicom_series"]


def _dicom_series_table(files: dict[str, list[str]]) -> str:
    """One line per series: UID, description, slices and rows x columns, read from its first file's header."""
    lines = []
    for uid, names in files.items():
        header = sitk.ImageFileReader()
        header.SetFileName(names[0])
        try:
            header.ReadImageInformation()
            tag = {key: header.GetMetaData(key).strip() for key in header.GetMetaDataKeys()}
        except RuntimeError:
            tag = {}
        description = tag.get("0008|103e") or "(no description)"
        rows, columns = tag.get("0028|0010", "?"), tag.get("0028|0011", "?")
        lines.append(
            f"  series_uid={uid!r}: {description!r}, {len(names)} slices of {rows} x {columns} (rows x columns)"
        )
    return "\n".join(lines)


def _lost_dicom_slice(file: Path) -> str | None:
    """Why ``file``, which the series reader left out of every series, is a lost image; ``None`` if it is none.

    Files without the ``DICM`` marker or a DICOM suffix (notes, thumbnails) and DICOM objects that are not
    images (DICOMDIR, structure sets, reports) are not slices and give ``None``.
    """
    with file.open("rb") as stream:
        marked = stream.read(132)[128:] == b"DICM"
    if not marked and file.suffix.lower() not in (".dcm", ".dicom", ".ima"):
        return None
    import pydicom  # only for files the series reader skipped

    try:
        dataset = pydicom.dcmread(file)
    except Exception as error:  # any parse failure of a .dcm file is the finding itself
        return f"is not readable DICOM ({type(error).__name__}: {error})"
    if len(dataset) == 0:  # every DICOM object has a main data set (its SOP class and instance UIDs at least)
        return "is truncated: it ends inside its file meta header"
    sop_class = dataset.file_meta.get("MediaStorageSOPClassUID", dataset.get("SOPClassUID"))
    kind = getattr(sop_class, "name", "")
    image = "Image Storage" in kind
    rows, columns, pixels = dataset.get("Rows"), dataset.get("Columns"), dataset.get("PixelData")
    if rows is None or columns is None or pixels is None:
        # A DICOMDIR, structure set, report or private object is no slice; a cut image is.
        return f"is truncated: it ends before its {'pixel data' if rows else 'image header'}" if image else None
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is not None and not syntax.is_compressed:
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        expected = rows * columns * int(dataset.get("SamplesPerPixel", 1)) * frames
        expected *= int(dataset.get("BitsAllocated", 16)) // 8
        if len(pixels) < expected:
            return f"is truncated: it holds {len(pixels):,} of its {expected:,} pixel bytes"
    return f"is a {kind or 'DICOM image'} that the series reader could not read"


def _check_dicom_slices(reader: sitk.ImageSeriesReader, names: list[str], where: str) -> None:
    """Raise ``ValueError`` unless the slices just read share one orientation and are evenly spaced."""
    if len(names) < 2:
        return  # one (multi-frame) file: its frames are laid out by its own header
    try:
        positions = np.array(
            [[float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")] for i in range(len(names))]
        )
        orientations = np.array(
            [[float(v) for v in reader.GetMetaData(i, "0020|0037").split("\\")] for i in range(len(names))]
        )
    except (RuntimeError, ValueError):
        return  # no ImagePositionPatient/ImageOrientationPatient: the reader stacks the files as it sorts them
    if positions.shape[1] != 3 or orientations.shape[1] != 6:
        return
    changed = np.flatnonzero(np.abs(orientations - orientations[0]).max(axis=1) > 1e-4)
    if changed.size:
        raise ValueError(
            f"{where} mixes slice orientations: {Path(names[0]).name} has {orientations[0].tolist()} but "
            f"{Path(names[changed[0]]).name} has {orientations[changed[0]].tolist()} (ImageOrientationPatient); "
            "a volume needs one stack of parallel slices: pass a folder or series_uid holding one stack"
        )
    depth = positions @ np.cross(orientations[0, :3], orientations[0, 3:])
    steps = np.diff(depth)
    step = float(np.median(steps))
    # 10 % of a slice: far above the rounding of written positions, far below one missing slice (100 %).
    uneven = np.flatnonzero(np.abs(steps - step) > 0.1 * abs(step))
    if abs(step) < 1e-6 or uneven.size:
        k = int(uneven[0]) if uneven.size else 0
        gap = abs(float(steps[k]))
        missing = round(gap / abs(step)) - 1 if abs(step) >= 1e-6 else 0
        lost = f"; about {missing} slice(s) missing there" if missing >= 1 else ""
        raise ValueError(
            f"{where} is not evenly spaced: slices are {abs(step):.4g} mm apart, but {Path(names[k]).name} and "
            f"{Path(names[k + 1]).name} are {gap:.4g} mm apart ({max(uneven.size, 1)} uneven gap(s){lost}); a volume "
            "needs evenly spaced slices: re-export or copy the complete series (two slices at one position mean "
            "two series share this series UID: separate them)"
        )


def read_dicom_series(
    folder: Path, image_class: type[tio.Image], name: str, series_uid: str | None, expected: str
) -> tio.Image:
    """Read one DICOM series of ``folder``: the only one, or ``series_uid``; refuse lost or uneven slices.

    Args:
        folder: the DICOM folder.
        image_class: ``torchio.ScalarImage`` or ``torchio.LabelMap``, the class of the result.
        name: what the folder is (``"volume"``, ``"labelmap"``), for error messages.
        series_uid: the SeriesInstanceUID (0020,000E) to read; ``None`` when the folder must hold one series.
        expected: what ``name`` must be, for the message when the folder holds no series.

    Returns:
        The series as ``image_class``, with the RAS+ affine torchio gives a folder.

    Raises:
        ValueError: no series, several and no ``series_uid`` (the message lists them), an unknown ``series_uid``,
            a slice file the series reader skipped, slices of mixed orientation or uneven spacing, or a series the
            reader fails on.
    """
    reader = sitk.ImageSeriesReader()
    uids = list(reader.GetGDCMSeriesIDs(str(folder)))
    if not uids:
        subfolders = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
        hint = f"; pass the folder of one series, e.g. one of its subfolders {subfolders[:5]}" if subfolders else ""
        raise ValueError(f"{name} must be {expected}; the folder {folder} holds no DICOM series{hint}")
    files = {uid: list(reader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in uids}
    listed = {Path(file).resolve() for names in files.values() for file in names}
    for entry in sorted(folder.iterdir()):
        problem = None if not entry.is_file() or entry.resolve() in listed else _lost_dicom_slice(entry)
        if problem is not None:
            raise ValueError(
                f"{name} folder {folder}: {entry.name} {problem}, so the series reader skipped it and the volume "
                "would lack that slice; copy that file again from its source, or move it out of the folder"
            )
    choose = (
        "choose one with read(..., series_uid=...) or pass a folder holding only that series"
        if name == "volume"
        else "pass a folder holding only that series"
    )
    if series_uid is None and len(uids) > 1:
        raise ValueError(
            f"{name} folder {folder} holds {len(uids)} DICOM series; {choose}:\n{_dicom_series_table(files)}"
        )
    uid = uids[0] if series_uid is None else str(series_uid)
    if uid not in files:
        raise ValueError(
            f"series_uid={uid!r} is not in {folder}, which holds {len(uids)} DICOM series; choose one of:\n"
            + _dicom_series_table(files)
        )
    reader.SetFileNames(files[uid])
    reader.MetaDataDictionaryArrayUpdateOn()  # keeps each slice's header, for the spacing check below
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise ValueError(f"{name} DICOM series {uid} in {folder} could not be read: {error}") from error
    _check_dicom_slices(reader, files[uid], f"{name} DICOM series {uid} in {folder}")
    # As torchio reads a folder: SimpleITK's LPS image to a RAS+ affine, uint16/uint32 widened for torch.
    data, affine = tio.io.sitk_to_nib(image, keepdim=True)
    return image_class(tensor=torch.as_tensor(tio.io.check_uint_to_int(data)), affine=affine)
