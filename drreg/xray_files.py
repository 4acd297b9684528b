"""Writing X-ray images to files: DICOM (DX) with the detector in its tags, 16-bit TIFF, and an 8-bit PNG preview.

What :func:`drreg.targets.read_xray` reads back: ``write_dicom`` stores the pixel spacing at the detector
(``ImagerPixelSpacing``) and the source-to-detector distance (``DistanceSourceToDetector``) that ``drreg register``
takes the detector from. Intensities are stored as unsigned 16-bit integers scaled without clipping
(:func:`to_uint16`); the scale is in the tags (``RescaleSlope``/``RescaleIntercept``) or the TIFF's description.
No function writes over an existing file unless given ``overwrite=True``, and each file appears whole or not at all
(written under a temporary name, then renamed).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from drreg._checks import check_choice, check_number

__all__ = ["INTENSITIES", "DX_FOR_PROCESSING", "Uint16Image", "to_uint16", "write_dicom", "write_tiff", "write_png"]

INTENSITIES = ("raw", "negative_log")
"""What an image's values are: ``"raw"`` detector intensities (bright = more photons; read them with
``negative_log=True``) or ``"negative_log"`` line integrals ``-log(I / I0)`` (bright = more attenuation)."""

DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
"""SOP class UID of Digital X-Ray Image Storage - For Processing (raw detector images, before display processing)."""

_UINT16_MAX = 65535
_DS_DIGITS = 10  # significant digits of a decimal-string tag (DS holds at most 16 characters)


class Uint16Image(NamedTuple):
    """An image stored as unsigned 16-bit integers: ``value = pixels * slope + intercept``."""

    pixels: np.ndarray  # (H, W) uint16
    slope: float
    intercept: float


def _image_2d(image: torch.Tensor | np.ndarray, name: str = "image") -> np.ndarray:
    """(H, W) float64 of a (H, W) or (1, 1, H, W) tensor or array; refuses other shapes and NaN/inf."""
    array = image.detach().cpu().double().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, float)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise ValueError(f"{name} must be one image, (H, W) or (1, 1, H, W), got shape {tuple(np.shape(image))}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds {int((~np.isfinite(array)).sum())} NaN/inf pixel value(s)")
    return array


def to_uint16(image: torch.Tensor | np.ndarray) -> Uint16Image:
    """Scale an image into unsigned 16-bit integers without clipping.

    The largest value maps to 65535; the intercept is 0 for non-negative images (so ratios such as
    ``I / I0`` survive unchanged, as the negative log needs), else the floor of the smallest value. The slope is
    rounded to 10 significant digits first, as the DICOM tag holds it, and the pixels are rounded with that slope.

    Args:
        image: (H, W) or (1, 1, H, W) finite values.

    Returns:
        The pixels, slope and intercept: ``pixels * slope + intercept`` is within ``slope / 2`` of ``image``.

    Raises:
        ValueError: another shape, or NaN/inf values.

    Example:
        >>> stored = to_uint16(np.array([[0.0, 1.0], [3.0, 4.0]]))
        >>> stored.pixels.tolist(), stored.intercept
        ([[0, 16384], [49151, 65535]], 0.0)
    """
    array = _image_2d(image)
    intercept = min(0.0, float(np.floor(array.min())))
    span = float(array.max()) - intercept
    slope = float(f"{span / _UINT16_MAX:.{_DS_DIGITS}g}") if span > 0 else 1.0
    # The rounded slope may fall a hair short of span / 65535: the clip only absorbs that rounding (< 1e-5 of a step).
    pixels = np.clip(np.rint((array - intercept) / slope), 0, _UINT16_MAX).astype(np.uint16)
    return Uint16Image(pixels, slope, intercept)


def _write_atomically(path: str | Path, overwrite: bool, write: Callable[[Path], None]) -> Path:
    """Refuse an existing ``path`` unless ``overwrite``; ``write`` a temporary file beside it, then rename it."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; refusing to overwrite it (give another path or overwrite=True)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder of {path} does not exist")
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)  # atomic: an interrupted run leaves the whole file or none
    finally:
        partial.unlink(missing_ok=True)
    return path


def _ds(value: float) -> str:
    return f"{float(value):.{_DS_DIGITS}g}"


def write_dicom(
    path: str | Path,
    image: torch.Tensor | np.ndarray,
    pixel_spacing: tuple[float, float],
    sdd: float,
    source_to_patient: float | None = None,
    kvp: float | None = None,
    intensity: str = "raw",
    comments: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    instance_number: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write an X-ray as a DICOM Digital X-Ray (DX) image, For Processing, with the detector in its tags.

    Tags: the SOP class and instance, study and series UIDs, ``Modality`` DX, placeholder patient and study
    (``PatientID`` ``DRREG-SIM``), ``Rows``/``Columns``, 16-bit unsigned pixels, ``PhotometricInterpretation``
    MONOCHROME2, ``ImagerPixelSpacing`` (at the detector), ``DistanceSourceToDetector``, and when given
    ``DistanceSourceToPatient``, ``EstimatedRadiographicMagnificationFactor`` and ``PixelSpacing`` (at the patient:
    the detector's spacing over the magnification, ``PixelSpacingCalibrationType`` GEOMETRY) and ``KVP``;
    ``RescaleSlope``/``RescaleIntercept`` (:func:`to_uint16`), ``PixelIntensityRelationship`` (LIN for raw
    intensities, LOG for line integrals) and its sign, ``WindowCenter``/``WindowWidth``, and ``comments`` as JSON in
    ``ImageComments``.

    Args:
        path: the file to write (its folder must exist).
        image: (H, W) or (1, 1, H, W) intensities.
        pixel_spacing: ``(dely, delx)`` detector pixel spacing (mm) between rows and between columns, as
            :attr:`drreg.targets.XRayTarget.pixel_spacing`.
        sdd: source-to-detector distance (mm).
        source_to_patient: source-to-isocentre distance (mm), or ``None``.
        kvp: tube voltage (kV), or ``None``.
        intensity: ``"raw"`` (bright = more photons: read it with ``negative_log=True``) or ``"negative_log"``
            (bright = more attenuation: read it as it is), see :data:`INTENSITIES`.
        comments: JSON-ready values written to ``ImageComments`` (e.g. the pose).
        tags: more attributes by DICOM keyword (``{"FilterMaterial": "ALUMINUM"}``); they override the above.
        study_uid: the study's UID (new by default); give one to every image of a study.
        series_uid: the series' UID (new by default).
        instance_number: the image's number in its series.
        overwrite: replace an existing file.

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: a bad image, spacing, distance, intensity or tag keyword.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

    check_choice(intensity, INTENSITIES, "intensity")
    if len(pixel_spacing) != 2:
        raise ValueError(f"pixel_spacing must be (dely, delx) in mm, got {pixel_spacing}")
    dely, delx = (check_number(v, "pixel_spacing", positive=True, unit="mm") for v in pixel_spacing)
    sdd = check_number(sdd, "sdd", positive=True, unit="mm")
    unknown = [keyword for keyword in tags or {} if not pydicom.datadict.dictionary_has_tag(keyword)]
    if unknown:
        raise ValueError(f"tags must be DICOM keywords (e.g. 'FilterMaterial'), got unknown {unknown}")
    stored = to_uint16(image)
    rows, columns = stored.pixels.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(DX_FOR_PROCESSING)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    dataset.SOPClassUID, dataset.SOPInstanceUID = DX_FOR_PROCESSING, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = study_uid or generate_uid()
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    dataset.Modality, dataset.ImageType = "DX", ["DERIVED", "PRIMARY"]
    dataset.PresentationIntentType = "FOR PROCESSING"
    dataset.DerivationDescription = "simulated X-ray: a CT rendered through a polychromatic detector model (drreg)"
    dataset.Manufacturer, dataset.ManufacturerModelName = "drreg", "drreg simulate"
    dataset.PatientName, dataset.PatientID = "SIMULATED^DRREG", "DRREG-SIM"
    dataset.PatientBirthDate = dataset.PatientSex = dataset.AccessionNumber = dataset.ReferringPhysicianName = ""
    dataset.StudyID, dataset.SeriesNumber, dataset.InstanceNumber = "1", 1, int(instance_number)
    dataset.StudyDate = dataset.SeriesDate = dataset.ContentDate = date
    dataset.StudyTime = dataset.SeriesTime = dataset.ContentTime = time
    dataset.PatientOrientation, dataset.BurnedInAnnotation = "", "NO"
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.Rows, dataset.Columns = rows, columns
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 0
    dataset.RescaleSlope, dataset.RescaleIntercept, dataset.RescaleType = _ds(stored.slope), _ds(stored.intercept), "US"
    raw = intensity == "raw"
    # +1: higher stored values mean more X-ray intensity (raw); -1: less (line integrals).
    dataset.PixelIntensityRelationship, dataset.PixelIntensityRelationshipSign = ("LIN", 1) if raw else ("LOG", -1)
    low, high = (float(v) * stored.slope + stored.intercept for v in np.percentile(stored.pixels, (0.5, 99.5)))
    dataset.WindowCenter, dataset.WindowWidth = _ds((low + high) / 2), _ds(max(high - low, stored.slope))
    dataset.ImagerPixelSpacing = [_ds(dely), _ds(delx)]
    dataset.DistanceSourceToDetector = _ds(sdd)
    if source_to_patient is not None:
        source_to_patient = check_number(source_to_patient, "source_to_patient", positive=True, unit="mm")
        magnification = sdd / source_to_patient
        dataset.DistanceSourceToPatient = _ds(source_to_patient)
        dataset.EstimatedRadiographicMagnificationFactor = _ds(magnification)
        dataset.PixelSpacing = [_ds(dely / magnification), _ds(delx / magnification)]
        dataset.PixelSpacingCalibrationType = "GEOMETRY"
        dataset.PixelSpacingCalibrationDescription = "at the isocentre: ImagerPixelSpacing x SOD / SDD"
    if kvp is not None:
        dataset.KVP = _ds(check_number(kvp, "kvp", positive=True, unit="kV"))
    if comments is not None:
        dataset.ImageComments = json.dumps(comments, separators=(",", ":"))
    for keyword, value in (tags or {}).items():
        setattr(dataset, keyword, value)
    dataset.PixelData = stored.pixels.astype("<u2").tobytes()

    def write(partial: Path) -> None:
        dataset.save_as(partial, enforce_file_format=True)

    return _write_atomically(path, overwrite, write)


def write_tiff(
    path: str | Path,
    image: torch.Tensor | np.ndarray,
    pixel_spacing: tuple[float, float] | None = None,
    description: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an image as a 16-bit greyscale TIFF (Pillow, no ``tifffile`` needed), scaled by :func:`to_uint16`.

    Args:
        path: the file to write.
        image: (H, W) or (1, 1, H, W) values.
        pixel_spacing: ``(dely, delx)`` mm, written as the resolution (pixels per cm), or ``None``.
        description: JSON-ready values for the ``ImageDescription`` tag; the scale (``slope``, ``intercept``: value =
            pixel * slope + intercept) is added.
        overwrite: replace an existing file.

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: a bad image or spacing.
    """
    from PIL import Image

    stored = to_uint16(image)
    text = json.dumps({**(description or {}), "slope": stored.slope, "intercept": stored.intercept})
    options: dict[str, Any] = {"description": text}
    if pixel_spacing is not None:
        dely, delx = (check_number(v, "pixel_spacing", positive=True, unit="mm") for v in pixel_spacing)
        options.update(resolution_unit="cm", x_resolution=10.0 / delx, y_resolution=10.0 / dely)
    picture = Image.fromarray(stored.pixels)  # uint16: mode "I;16"

    def write(partial: Path) -> None:
        picture.save(partial, format="TIFF", **options)

    return _write_atomically(path, overwrite, write)


def write_png(
    path: str | Path,
    image: torch.Tensor | np.ndarray,
    intensity: str = "raw",
    percentiles: tuple[float, float] = (0.5, 99.5),
    overwrite: bool = False,
) -> Path:
    """Write an 8-bit preview: the negative log of the image, windowed for display (bone bright, air dark).

    Args:
        path: the file to write.
        image: (H, W) or (1, 1, H, W) values.
        intensity: ``"raw"`` (the preview shows ``-log(I / max I)``) or ``"negative_log"`` (shown as it is).
        percentiles: the values at these percentiles map to black and white.
        overwrite: replace an existing file.

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: a bad image or intensity.
    """
    from PIL import Image

    check_choice(intensity, INTENSITIES, "intensity")
    array = _image_2d(image)
    if intensity == "raw":
        peak = max(float(array.max()), np.finfo(float).tiny)
        # Clamp before the log: a pixel with no photons would give +inf.
        array = -np.log(np.maximum(array, peak * 1e-6) / peak)
    low, high = np.percentile(array, percentiles)
    scaled = (array - low) / max(float(high - low), np.finfo(float).eps)  # clamp the range before dividing
    picture = Image.fromarray(np.rint(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8))

    def write(partial: Path) -> None:
        picture.save(partial, format="PNG")

    return _write_atomically(path, overwrite, write)
