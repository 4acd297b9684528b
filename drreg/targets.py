"""Registration targets: X-ray images read from files, made DRR-like, or rendered from a CT at a known pose.

A target is a (1, 1, H, W) float32 image whose intensities grow with attenuation, as a DRR's do. Raw
detector images (bright where few photons were absorbed) need ``negative_log=True``: the Beer-Lambert
law makes ``-log(I / I0)`` proportional to the line integral that a DRR computes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from drreg._checks import check_finite, check_tensor
from drreg.drr import DRR
from drreg.geometry.pose import RigidTransform

__all__ = ["XRayTarget", "read_xray", "preprocess", "synthetic_target", "check_target_size"]

_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm")


@dataclass(frozen=True)
class XRayTarget:
    """An X-ray image to register, with what its file says about the detector.

    Attributes:
        image: (1, 1, H, W) float32 intensities.
        pixel_spacing: ``(dely, delx)`` detector pixel spacing (mm) along columns and rows, or ``None`` when
            the file does not say (PNG/TIFF).
        sdd: source-to-detector distance (mm), or ``None`` when the file does not say.
        path: the file it was read from (``None`` for images made in memory).
    """

    image: torch.Tensor
    pixel_spacing: tuple[float, float] | None = None
    sdd: float | None = None
    path: Path | None = None

    @property
    def height(self) -> int:
        """Image rows ``H``."""
        return int(self.image.shape[-2])

    @property
    def width(self) -> int:
        """Image columns ``W``."""
        return int(self.image.shape[-1])

    def preprocess(self, **options: object) -> XRayTarget:
        """Apply :func:`preprocess` and keep the pixel spacing consistent with the crop and resize.

        Args:
            **options: the keyword arguments of :func:`preprocess`.

        Returns:
            A new target; its ``pixel_spacing`` grows by the resize factor.
        """
        height, width = self.height, self.width
        crop = int(options.get("crop", 0) or 0)
        image = preprocess(self.image, **options)  # type: ignore[arg-type]
        spacing = self.pixel_spacing
        if spacing is not None:
            cropped_height, cropped_width = height - 2 * crop, width - 2 * crop
            spacing = (
                spacing[0] * cropped_height / image.shape[-2],
                spacing[1] * cropped_width / image.shape[-1],
            )
        return replace(self, image=image, pixel_spacing=spacing)


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
    # ImagerPixelSpacing is measured at the detector (what a DRR's delx/dely are); PixelSpacing may be
    # calibrated to the patient, so it is only the fallback.
    spacing = getattr(dataset, "ImagerPixelSpacing", None) or getattr(dataset, "PixelSpacing", None)
    pixel_spacing = None if spacing is None else (float(spacing[0]), float(spacing[1]))
    sdd = getattr(dataset, "DistanceSourceToDetector", None)
    return XRayTarget(
        image=torch.from_numpy(pixels).to(torch.float32)[None, None],
        pixel_spacing=pixel_spacing,
        sdd=None if sdd is None else float(sdd),
        path=path,
    )


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
    return XRayTarget(image=torch.from_numpy(pixels).to(torch.float32)[None, None], path=path)


def read_xray(path: str | Path) -> XRayTarget:
    """Read an X-ray image file (raw intensities; see :func:`preprocess`).

    Args:
        path: a DICOM file (``.dcm``, or any file with the DICOM preamble), or a picture PIL can read
            (PNG, TIFF including 16-bit and float, JPEG). Colour pictures are converted to grey levels.

    Returns:
        An :class:`XRayTarget`: (1, 1, H, W) float32 image; for DICOM, ``RescaleSlope``/``Intercept`` applied,
        ``MONOCHROME1`` inverted, pixel spacing from ``ImagerPixelSpacing`` (else ``PixelSpacing``) as
        ``(dely, delx)`` mm and ``sdd`` from ``DistanceSourceToDetector`` when present.

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
        low = image.flatten(-2).amin(-1)[..., None, None]
        high = image.flatten(-2).amax(-1)[..., None, None]
        # Clamp the range before dividing: a constant image maps to zeros, not NaN.
        image = (image - low) / (high - low).clamp_min(torch.finfo(torch.float32).eps)
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
    image = drr(pose.to(drr.device), indices=indices)
    return image.reshape(len(pose), -1, height, width).to(torch.float32)
