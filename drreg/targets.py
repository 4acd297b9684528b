"""Registration targets: X-ray images read from files, made DRR-like, or rendered from a CT at a known pose.

A target is a (1, 1, H, W) float32 image whose intensities grow with attenuation, as a DRR's do. Raw
detector images (bright where few photons were absorbed) need ``negative_log=True``: the Beer-Lambert
law makes ``-log(I / I0)`` proportional to the line integral that a DRR computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from drreg._checks import check_finite, check_tensor
from drreg._images import min_max_rescale
from drreg.drr import DRR
from drreg.geometry.pose import RigidTransform

__all__ = [
    "XRayTarget",
    "read_xray",
    "preprocess",
    "synthetic_target",
    "check_target_size",
    "check_target_contrast",
    "MIN_RELATIVE_CONTRAST",
]

_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm")

MIN_RELATIVE_CONTRAST = 1e-4
"""A target whose pixel standard deviation is at most this fraction of its largest magnitude is blank."""


@dataclass(frozen=True)
class XRayTarget:
    """An X-ray image to register, with what its file says about the detector.

    Attributes:
        image: (1, 1, H, W) float32 intensities.
        pixel_spacing: ``(dely, delx)`` detector pixel spacing (mm) along columns and rows, or ``None`` when
            the file does not say (PNG/TIFF).
        sdd: source-to-detector distance (mm), or ``None`` when the file does not say.
        path: the file it was read from (``None`` for images made in memory).
        sources: where each detector value came from, by name (``"height"``, ``"width"``, ``"delx"``,
            ``"dely"``, ``"sdd"``), e.g. ``"DICOM tag ImagerPixelSpacing of file xray.dcm"``; a crop or resize is
            noted. Only the values the file gives.
        tag_problems: DICOM tags present but unusable, by the value they would give (``"pixel_spacing"``,
            ``"sdd"``): a message naming the tag, its value and the file (e.g. a ``PixelSpacing`` of ``0\\0``).
            The value is then ``None``; whoever needs it raises with this message.
    """

    image: torch.Tensor
    pixel_spacing: tuple[float, float] | None = None
    sdd: float | None = None
    path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)
    tag_problems: dict[str, str] = field(default_factory=dict)

    @property
    def height(self) -> int:
        """Image rows ``H``."""
        return int(self.image.shape[-2])

    @property
    def width(self) -> int:
        """Image columns ``W``."""
        return int(self.image.shape[-1])

    def preprocess(self, **options: Any) -> XRayTarget:
        """Apply :func:`preprocess` and keep the pixel spacing consistent with the crop and resize.

        Args:
            **options: the keyword arguments of :func:`preprocess`.

        Returns:
            A new target; its ``pixel_spacing`` grows by the resize factor.
        """
        height, width = self.height, self.width
        crop = int(options.get("crop", 0) or 0)
        image = preprocess(self.image, **options)
        spacing = self.pixel_spacing
        cropped_height, cropped_width = height - 2 * crop, width - 2 * crop
        if spacing is not None:
            spacing = (
                spacing[0] * cropped_height / image.shape[-2],
                spacing[1] * cropped_width / image.shape[-1],
            )
        changes = []
        if crop:
            changes.append(f"cropped by {crop} px")
        if (cropped_height, cropped_width) != tuple(image.shape[-2:]):
            changes.append(f"resized from {cropped_height}x{cropped_width} to {_size(image)}")
        sources = dict(self.sources)
        if changes:
            for name in ("height", "width", "delx", "dely"):
                if name in sources:
                    sources[name] += f" ({', '.join(changes)})"
        return replace(self, image=image, pixel_spacing=spacing, sources=sources)


def _read_dicom(path: Path) -> XRayTarget:
    import pydicom

    try:
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array.astype(np.float64)
    except Exception as error:  # pydicom raises many types for broken files
        raise ValueError(f"cannot read DICOM X-ray {path}: {error}") from error
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        pixels = pixels[..., :3].mean(-1)
    if pixels.ndim != 2:
        raise ValueError(f"X-ray {path} must hold one 2D image, got pixel data of shape {pixels.shape}")
    slope = float(getattr(dataset, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(dataset, "RescaleIntercept", 0.0) or 0.0)
    pixels = pixels * slope + intercept
    if str(getattr(dataset, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        # MONOCHROME1 displays low values bright: invert so that larger still means more attenuation.
        pixels = pixels.max() - pixels
    sources = {"height": f"DICOM tag Rows of file {path}", "width": f"DICOM tag Columns of file {path}"}
    problems: dict[str, str] = {}
    # ImagerPixelSpacing is measured at the detector (what a DRR's delx/dely are); PixelSpacing may be
    # calibrated to the patient, so it is only the fallback.
    pixel_spacing = None
    for tag in ("ImagerPixelSpacing", "PixelSpacing"):
        values = _positive_tag_values(dataset, tag, 2, path)
        if isinstance(values, str):
            problems.setdefault("pixel_spacing", values)
        elif values is not None:
            pixel_spacing = (values[0], values[1])
            skipped = problems.pop("pixel_spacing", None)  # a usable fallback is no problem, but say so
            note = "" if skipped is None else f" (unusable: {skipped})"
            sources["dely"] = sources["delx"] = f"DICOM tag {tag} of file {path}{note}"
            break
    sdd = _positive_tag_values(dataset, "DistanceSourceToDetector", 1, path)
    if isinstance(sdd, str):
        problems["sdd"], sdd = sdd, None
    elif sdd is not None:
        sources["sdd"] = f"DICOM tag DistanceSourceToDetector of file {path}"
    return XRayTarget(
        image=torch.from_numpy(pixels).to(torch.float32)[None, None],
        pixel_spacing=pixel_spacing,
        sdd=None if sdd is None else sdd[0],
        path=path,
        sources=sources,
        tag_problems=problems,
    )


def _positive_tag_values(dataset: object, tag: str, count: int, path: Path) -> list[float] | str | None:
    """The ``count`` positive finite numbers of a DICOM tag; ``None`` when the tag is absent or empty; a message
    naming the tag, its value and the file when it is present but unusable (``0\\0``, one value, text, NaN)."""
    from pydicom.multival import MultiValue

    try:
        raw = getattr(dataset, tag, None)
    except Exception as error:  # pydicom parses values lazily: a malformed DS raises here
        return f"DICOM tag {tag} of file {path} cannot be read ({error})"
    items = list(raw) if isinstance(raw, (MultiValue, list, tuple)) else [] if raw is None else [raw]
    if all(str(item).strip() == "" for item in items):
        return None
    try:
        values = [float(item) for item in items]
    except (TypeError, ValueError):
        values = []
    if len(values) != count or not all(math.isfinite(value) and value > 0 for value in values):
        shown = "\\".join(str(item) for item in items)
        expected = "two positive numbers (mm)" if count == 2 else "a positive number (mm)"
        return f"DICOM tag {tag} of file {path} is '{shown}', not {expected}"
    return values


def _read_picture(path: Path) -> XRayTarget:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            if picture.mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr"):
                picture = picture.convert("L")
            pixels = np.asarray(picture).astype(np.float64)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read X-ray image {path}: {error}") from error
    if pixels.ndim != 2:
        raise ValueError(f"X-ray {path} must hold one 2D image, got pixel data of shape {pixels.shape}")
    return XRayTarget(
        image=torch.from_numpy(pixels).to(torch.float32)[None, None],
        path=path,
        sources={"height": f"image rows of file {path}", "width": f"image columns of file {path}"},
    )


def read_xray(path: str | Path) -> XRayTarget:
    """Read an X-ray image file (raw intensities; see :func:`preprocess`).

    Args:
        path: a DICOM file (``.dcm``, or any file with the DICOM preamble), or a picture PIL can read
            (PNG, TIFF including 16-bit and float, JPEG). Colour pictures are converted to grey levels.

    Returns:
        An :class:`XRayTarget`: (1, 1, H, W) float32 image; for DICOM, ``RescaleSlope``/``Intercept`` applied,
        ``MONOCHROME1`` inverted, pixel spacing from ``ImagerPixelSpacing`` (else ``PixelSpacing``) as
        ``(dely, delx)`` mm and ``sdd`` from ``DistanceSourceToDetector`` when present and valid (positive
        numbers; an unusable tag such as ``0\\0`` gives ``None`` and an entry in ``tag_problems``), and the
        ``sources`` of these values.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a readable 2D image, or holds NaN/inf values (the path is named).

    Example:
        >>> target = read_xray("xray.dcm")  # doctest: +SKIP
        >>> target.image.shape, target.pixel_spacing  # doctest: +SKIP
        (torch.Size([1, 1, 1436, 1436]), (0.194, 0.194))
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"X-ray file not found: {path}")
    if path.is_dir():
        raise ValueError(f"X-ray path {path} is a folder; give one image file (DICOM, PNG or TIFF)")
    is_dicom = path.suffix.lower() in _DICOM_SUFFIXES
    if not is_dicom and path.suffix.lower() not in _IMAGE_SUFFIXES:
        with path.open("rb") as file:
            is_dicom = file.read(132)[128:132] == b"DICM"
    target = _read_dicom(path) if is_dicom else _read_picture(path)
    if not torch.isfinite(target.image).all():
        raise ValueError(f"X-ray {path} holds NaN/inf pixel values")
    return target


def preprocess(
    image: torch.Tensor,
    negative_log: bool = False,
    rescale: bool = True,
    crop: int = 0,
    flip_horizontal: bool = False,
    flip_vertical: bool = False,
    size: int | tuple[int, int] | None = None,
) -> torch.Tensor:
    """Make an X-ray look like a DRR: attenuation-like intensities in [0, 1], cropped, flipped, resized.

    The steps run in this order: crop, negative log, flips, resize, rescale.

    Args:
        image: (H, W), (C, H, W) or (B, C, H, W) intensities.
        negative_log: linearise raw detector intensities, ``-log(I / I0)`` with ``I0`` the image maximum
            (values are clamped to ``I0 * 1e-6`` first, so zeros stay finite).
        rescale: min-max rescale each image to [0, 1].
        crop: pixels removed from every border (collimator edges, labels).
        flip_horizontal: mirror left-right (columns).
        flip_vertical: mirror top-bottom (rows).
        size: output ``H`` (square) or ``(H, W)`` after cropping; area-averaged when shrinking, bilinear
            when enlarging.

    Returns:
        (B, C, H', W') float32 image (leading dimensions added as needed).

    Raises:
        TypeError: ``image`` is not a tensor.
        ValueError: wrong number of dimensions, NaN/inf values, a crop that leaves no pixel, a bad size.

    Example:
        >>> preprocess(torch.tensor([[1.0, 2.0], [3.0, 5.0]])).flatten()
        tensor([0.0000, 0.2500, 0.5000, 1.0000])
    """
    check_tensor(image, "image")
    if image.dim() not in (2, 3, 4):
        raise ValueError(f"image must be (H, W), (C, H, W) or (B, C, H, W), got {tuple(image.shape)}")
    check_finite(image, "image")
    while image.dim() < 4:
        image = image[None]
    image = image.to(torch.float32)
    crop = int(crop)
    if crop < 0 or 2 * crop >= min(image.shape[-2:]):
        raise ValueError(f"crop must be in [0, {(min(image.shape[-2:]) - 1) // 2}] for a {_size(image)} image")
    if crop:
        image = image[..., crop:-crop, crop:-crop]
    if negative_log:
        peak = image.flatten(-2).amax(-1)[..., None, None].clamp_min(torch.finfo(torch.float32).tiny)
        # Clamp before the log: a zero (fully absorbed) pixel would give +inf.
        image = -torch.log(image.clamp_min(0.0).maximum(peak * 1e-6) / peak)
    if flip_horizontal:
        image = image.flip(-1)
    if flip_vertical:
        image = image.flip(-2)
    if size is not None:
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        if int(height) != height or int(width) != width or height < 1 or width < 1:
            raise ValueError(f"size must be a positive int or (H, W), got {size}")
        shrinking = height <= image.shape[-2] and width <= image.shape[-1]
        if shrinking:
            image = F.adaptive_avg_pool2d(image, (int(height), int(width)))
        else:
            image = F.interpolate(image, size=(int(height), int(width)), mode="bilinear", align_corners=False)
    if rescale:
        image = min_max_rescale(image)  # float32 here; a constant image maps to zeros
    return image.contiguous()


def _size(image: torch.Tensor) -> str:
    return f"{image.shape[-2]}x{image.shape[-1]}"


def check_target_size(image: torch.Tensor, drr: DRR, name: str = "target") -> None:
    """Raise a clear error unless ``image``'s (H, W) equals the DRR detector's.

    Args:
        image: (*, H, W) target image(s).
        drr: the DRR whose detector the target must match.
        name: what to call the image in the message.

    Raises:
        ValueError: the sizes differ; both are named, with the ways to fix it.
    """
    height, width = drr.detector.height, drr.detector.width
    if tuple(image.shape[-2:]) != (height, width):
        raise ValueError(
            f"{name} is {_size(image)} pixels (HxW) but the DRR detector is {height}x{width}; resize the target "
            f"(preprocess(..., size=({height}, {width}))) or build the DRR with height={image.shape[-2]}, "
            f"width={image.shape[-1]}"
        )


def check_target_contrast(image: torch.Tensor, name: str = "target", rtol: float = MIN_RELATIVE_CONTRAST) -> None:
    """Raise a clear error unless ``image`` is finite and has contrast to register against.

    A blank target (constant, or constant up to rounding) gives every pose the same loss: the registration
    would "finish" at its start pose. The test is ``std <= rtol * max|image|`` (a zero image included).

    Args:
        image: (*, H, W) one target image (all leading dimensions are pooled).
        name: what to call the image in the message (its file, or its index).
        rtol: the contrast threshold, relative to the image's largest magnitude.

    Raises:
        ValueError: NaN/inf pixels (counted), or no contrast (the standard deviation and the range are shown).

    Example:
        >>> check_target_contrast(torch.full((4, 4), 7.0), "target 0")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: target 0 is blank (constant 7 over 4x4 pixels): there is nothing to register it against; ...
    """
    finite = torch.isfinite(image)
    if not finite.all():
        bad = int((~finite).sum())
        raise ValueError(
            f"{name} holds {bad} NaN/inf pixel value(s) of {image.numel()}; replace them before registering"
        )
    values = image.detach().double().flatten()
    std = float(values.std(correction=0))
    low, high = float(values.min()), float(values.max())
    if std <= rtol * max(abs(low), abs(high)):
        shown = f"constant {low:.6g}" if low == high else f"values {low:.6g} to {high:.6g}, std {std:.3g}"
        raise ValueError(
            f"{name} is blank ({shown} over {_size(image)} pixels): there is nothing to register it against; "
            "check the file (or, for a synthetic target, that the CT is in view at the true pose)"
        )


@torch.no_grad()
def synthetic_target(drr: DRR, pose: RigidTransform) -> torch.Tensor:
    """Render targets from the CT at known poses (for demos, tests and benchmarks).

    Args:
        drr: the DRR to render with; its whole detector is rendered whatever its ``p_subsample``.
        pose: B camera poses (camera to world, mm).

    Returns:
        (B, 1, H, W) float32 DRRs, detached.

    Example:
        >>> pose = convert(torch.zeros(1, 3), torch.tensor([[0.0, 850.0, 0.0]]),
        ...                parameterization="euler_angles", convention="ZXY")  # doctest: +SKIP
        >>> synthetic_target(DRR(load_example_ct(), sdd=1020.0, height=64, delx=4.0), pose).shape  # doctest: +SKIP
        torch.Size([1, 1, 64, 64])
    """
    if not isinstance(pose, RigidTransform):
        raise TypeError(f"pose must be a RigidTransform, got {type(pose).__name__}")
    height, width = drr.detector.height, drr.detector.width
    # Explicit indices render every pixel even when the DRR draws sparse subsets by default.
    indices = torch.arange(height * width, device=drr.device)
    # A moved copy: pose.to() (an nn.Module's) would move the caller's pose in place.
    image = drr(RigidTransform.unchecked(pose.matrix.to(drr.device)), indices=indices)
    return image.reshape(len(pose), -1, height, width).to(torch.float32)
