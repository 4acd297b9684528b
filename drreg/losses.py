"""Image similarity for registration: MSE and the normalized cross-correlation (NCC) family, dense or sparse.

Every function takes a batch of predicted images (DRRs) and target X-rays and returns one value per batch
element, a (B,) tensor, so that a multi-start optimizer can keep the best start. Everything is
differentiable with respect to both images.

Two layouts are accepted:

- dense images (B, C, H, W);
- sparse pixel sets (B, C, n): the values of the same ``n`` pixels of both images, e.g. a DRR rendered
  at ``indices`` with ``reshape=False`` and the target read by :func:`gather_pixels` at the same indices.
  :func:`patch_ncc` on a sparse set expects whole patches laid out by :func:`sample_patch_indices`.

Convention: similarities lie in ``[-1, 1]`` (1 = identical up to an affine intensity change ``a * x + b``
with ``a > 0``); the matching loss is ``1 - similarity``; :func:`mse` is a loss as it stands. ``eps`` is
an absolute variance floor (intensity² units): a constant image has similarity 0 with anything, never NaN.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from drreg._checks import check_choice, check_finite, check_tensor

__all__ = [
    "DEFAULT_EPS",
    "LOSSES",
    "ImageLoss",
    "gather_pixels",
    "gradient_ncc",
    "mse",
    "multiscale_ncc",
    "ncc",
    "patch_ncc",
    "sample_patch_indices",
]

LOSSES: tuple[str, ...] = ("mse", "ncc", "patch_ncc", "multiscale_ncc", "gradient_ncc")
"""Every ``name`` that :class:`ImageLoss` accepts."""

DEFAULT_EPS = 1e-8
"""Default variance floor of the NCC family (absolute, intensity² units)."""

# Sobel kernels (x: along columns, y: along rows), scaled by 1/8 so that a unit ramp has unit gradient.
_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
_SOBEL_Y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))


# ------------------------------------------------------------------------------------------ checks


def _fmt(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _check_pair(pred: torch.Tensor, target: torch.Tensor, dense_only: bool = False) -> None:
    """Validate a (pred, target) pair: tensors, same shape, (B, C, H, W) or (B, C, n), non-empty, finite."""
    check_tensor(pred, "pred")
    check_tensor(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {_fmt(pred.shape)} and target {_fmt(target.shape)} must have the same shape")
    if dense_only and pred.dim() != 4:
        raise ValueError(f"pred and target must be dense images (B, C, H, W), got {_fmt(pred.shape)}")
    if pred.dim() not in (3, 4):
        raise ValueError(f"pred and target must be (B, C, H, W) images or (B, C, n) pixel sets, got {_fmt(pred.shape)}")
    if not pred.is_floating_point() or not target.is_floating_point():
        raise TypeError(f"pred and target must be floating-point tensors, got {pred.dtype} and {target.dtype}")
    if pred.device != target.device:
        raise ValueError(f"target is on {target.device} but pred is on {pred.device}; move them to the same device")
    if pred.numel() == 0:
        raise ValueError(f"pred and target hold no pixels: shape {_fmt(pred.shape)}")
    check_finite(pred, "pred")
    check_finite(target, "target")


def _check_eps(eps: float) -> None:
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


def _check_patch_size(patch_size: object, name: str = "patch_size") -> int:
    if isinstance(patch_size, bool) or not isinstance(patch_size, numbers.Integral) or patch_size < 1:
        raise ValueError(f"{name} must be a positive integer, got {patch_size!r}")
    return int(patch_size)


def _check_patch_fits(patch_size: int, height: int, width: int) -> None:
    if patch_size > height or patch_size > width:
        raise ValueError(f"patch_size {patch_size} is larger than the image ({height} x {width})")


# ---------------------------------------------------------------------------------------- kernels


def _ncc_last(x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """NCC over the last dimension: ``cov / sqrt((var_x + eps) (var_y + eps))`` (population moments)."""
    x = x - x.mean(-1, keepdim=True)
    y = y - y.mean(-1, keepdim=True)
    covariance = (x * y).mean(-1)
    # Clamp before dividing: eps > 0 keeps both factors positive (constant images give 0, not NaN);
    # taking the two roots apart avoids overflowing their product for large intensities.
    return covariance / ((x * x).mean(-1) + eps).sqrt() / ((y * y).mean(-1) + eps).sqrt()


def _global_ncc(pred: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    return _ncc_last(pred.flatten(1), target.flatten(1), eps)


def _sliding_patch_ncc(pred: torch.Tensor, target: torch.Tensor, patch_size: int, eps: float) -> torch.Tensor:
    """Mean NCC of every ``C x p x p`` window (stride 1, no padding) of (B, C, H, W) images."""
    dtype = pred.dtype
    # Local moments E[xy] - E[x]E[y] cancel badly in float32 (flat regions would get random similarities):
    # accumulate them in float64, after removing each image's mean to keep the values small.
    x = pred.to(torch.float64)
    y = target.to(torch.float64)
    x = x - x.mean((1, 2, 3), keepdim=True)
    y = y - y.mean((1, 2, 3), keepdim=True)

    def local_mean(z: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, H', W'), mean over C x p x p
        return F.avg_pool2d(z, patch_size, stride=1).mean(1)

    mean_x, mean_y = local_mean(x), local_mean(y)
    # Clamp at 0: rounding can leave a tiny negative variance in a flat window.
    var_x = (local_mean(x * x) - mean_x * mean_x).clamp_min(0.0)
    var_y = (local_mean(y * y) - mean_y * mean_y).clamp_min(0.0)
    covariance = local_mean(x * y) - mean_x * mean_y
    similarity = covariance / (var_x + eps).sqrt() / (var_y + eps).sqrt()
    return similarity.flatten(1).mean(1).to(dtype)


def _patch_ncc_naive(pred: torch.Tensor, target: torch.Tensor, patch_size: int, eps: float) -> torch.Tensor:
    """Reference for :func:`_sliding_patch_ncc`: unfold every window and centre it exactly (memory p² H W)."""
    batch, channels = pred.shape[:2]

    def windows(z: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, L, C p p)
        return F.unfold(z, patch_size).reshape(batch, channels * patch_size**2, -1).transpose(1, 2)

    return _ncc_last(windows(pred), windows(target), eps).mean(1)


def _sparse_patch_ncc(pred: torch.Tensor, target: torch.Tensor, patch_size: int, eps: float) -> torch.Tensor:
    """Mean NCC of (B, C, P p²) pixel sets laid out patch-major: NCC over each patch's C x p² values."""
    batch, channels, n = pred.shape
    pixels = patch_size**2
    if n % pixels:
        raise ValueError(
            f"a sparse patch_ncc needs whole patches: n = {n} pixels is not a multiple of patch_size² = {pixels} "
            "(draw the pixels with sample_patch_indices)"
        )

    def patches(z: torch.Tensor) -> torch.Tensor:  # (B, C, P p²) -> (B, P, C p²)
        return z.reshape(batch, channels, n // pixels, pixels).transpose(1, 2).reshape(batch, n // pixels, -1)

    return _ncc_last(patches(pred), patches(target), eps).mean(1)


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), kernel ``2 ceil(2 sigma) + 1`` taps, replicate borders."""
    radius = max(1, math.ceil(2.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    batch, channels, height, width = image.shape
    z = image.reshape(batch * channels, 1, height, width)
    z = F.conv2d(F.pad(z, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    z = F.conv2d(F.pad(z, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return z.reshape(batch, channels, height, width)


def _sobel(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel gradients (along columns, along rows) of (B, C, H, W), replicate borders."""
    batch, channels, height, width = image.shape
    kernels = torch.tensor((_SOBEL_X, _SOBEL_Y), dtype=image.dtype, device=image.device).unsqueeze(1) / 8.0
    z = F.pad(image.reshape(batch * channels, 1, height, width), (1, 1, 1, 1), mode="replicate")
    gradients = F.conv2d(z, kernels).reshape(batch, channels, 2, height, width)
    return gradients[:, :, 0], gradients[:, :, 1]


# ------------------------------------------------------------------------------------------ public


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per batch element.

    Args:
        pred: (B, C, H, W) images or (B, C, n) pixel sets.
        target: same shape as ``pred``.

    Returns:
        (B,) mean of ``(pred - target)²`` over everything but the batch (a loss: 0 is best).

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ or are not (B, C, H, W) / (B, C, n), no pixels, NaN/inf values.

    Example:
        >>> mse(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 2.0))
        tensor([4.])
    """
    _check_pair(pred, target)
    return (pred - target).square().flatten(1).mean(1)


def ncc(pred: torch.Tensor, target: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """Global normalized cross-correlation per batch element.

    Args:
        pred: (B, C, H, W) images or (B, C, n) pixel sets.
        target: same shape as ``pred``.
        eps: variance floor (intensity²) added to both variances.

    Returns:
        (B,) similarities in ``[-1, 1]``: ``cov(x, y) / sqrt((var x + eps)(var y + eps))`` over all C x H x W
        (or C x n) values of each element, population moments.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ or are not (B, C, H, W) / (B, C, n), no pixels, NaN/inf values, bad eps.

    Convention: one correlation over all channels together (not a mean of per-channel NCCs); the loss is
    ``1 - ncc``.

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> ncc(x, torch.tensor([[[[1.0, 3.0], [2.0, 4.0]]]]))
        tensor([0.8000])
    """
    _check_pair(pred, target)
    _check_eps(eps)
    return _global_ncc(pred, target, eps)


def patch_ncc(pred: torch.Tensor, target: torch.Tensor, patch_size: int, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """Local normalized cross-correlation: the mean NCC of square windows.

    Args:
        pred: (B, C, H, W) images, or (B, C, P * patch_size²) pixel sets laid out patch-major as
            :func:`sample_patch_indices` draws them (each patch's pixels row-major, contiguous).
        target: same shape as ``pred``.
        patch_size: window side ``p`` in pixels.
        eps: variance floor (intensity²) added to both variances of every window.

    Returns:
        (B,) similarities in ``[-1, 1]``. Dense: the mean over all ``(H - p + 1)(W - p + 1)`` sliding windows
        (stride 1, no padding, as DiffDRR's patch NCC) of the NCC over each window's C x p x p values.
        Sparse: the mean over the P patches of the NCC over each patch's C x p² values.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ, bad patch_size, a patch larger than the image, a sparse length that is not
            a multiple of p², no pixels, NaN/inf values.

    Convention: a window's channels are correlated together, so one window covering the whole image gives
    :func:`ncc`. Dense local moments are accumulated in float64 (flat windows then score 0, not noise).

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> patch_ncc(x, 2.0 * x, patch_size=2).round(decimals=4)
        tensor([1.])
    """
    _check_pair(pred, target)
    _check_eps(eps)
    patch_size = _check_patch_size(patch_size)
    if pred.dim() == 3:
        return _sparse_patch_ncc(pred, target, patch_size, eps)
    _check_patch_fits(patch_size, *pred.shape[-2:])
    return _sliding_patch_ncc(pred, target, patch_size, eps)


def _normalized_weights(patch_sizes: Sequence[int | None], weights: Sequence[float] | None) -> list[float]:
    if isinstance(patch_sizes, (str, bytes)) or not isinstance(patch_sizes, Sequence) or len(patch_sizes) == 0:
        raise ValueError(f"patch_sizes must be a non-empty sequence of patch sizes, got {patch_sizes!r}")
    for size in patch_sizes:
        if size not in (None, 0):
            _check_patch_size(size, "each patch size")
    if weights is None:
        return [1.0 / len(patch_sizes)] * len(patch_sizes)
    weights = [float(w) for w in weights]
    if len(weights) != len(patch_sizes):
        raise ValueError(f"weights must have one entry per patch size ({len(patch_sizes)}), got {len(weights)}")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


def multiscale_ncc(
    pred: torch.Tensor,
    target: torch.Tensor,
    patch_sizes: Sequence[int | None],
    weights: Sequence[float] | None = None,
    eps: float = DEFAULT_EPS,
) -> torch.Tensor:
    """Weighted mean of NCCs at several window sizes (DiffPose's multiscale NCC).

    Args:
        pred: (B, C, H, W) images.
        target: (B, C, H, W) images.
        patch_sizes: window sizes; ``0`` or ``None`` means the global :func:`ncc`, a positive ``p``
            :func:`patch_ncc` with ``patch_size=p``. E.g. ``(None, 9)``.
        weights: one non-negative weight per patch size (normalized to sum to 1); equal weights if ``None``.
        eps: variance floor (intensity²).

    Returns:
        (B,) similarities in ``[-1, 1]``: ``sum_i w_i ncc_i / sum_i w_i``.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ or are not (B, C, H, W), empty ``patch_sizes``, bad sizes or weights, a
            patch larger than the image, NaN/inf values.

    Convention: DiffDRR's ``MultiscaleNormalizedCrossCorrelation2d`` sums ``w_i ncc_i`` unnormalized; the
    two agree when the weights sum to 1 (as in DiffPose's ``[0.5, 0.5]``).

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> multiscale_ncc(x, x + 1.0, patch_sizes=(None, 3), weights=(0.5, 0.5)).round(decimals=4)
        tensor([1.])
    """
    _check_pair(pred, target, dense_only=True)
    _check_eps(eps)
    normalized = _normalized_weights(patch_sizes, weights)
    for size in patch_sizes:
        if size:
            _check_patch_fits(size, *pred.shape[-2:])
    scores = [
        weight * (_global_ncc(pred, target, eps) if not size else _sliding_patch_ncc(pred, target, size, eps))
        for size, weight in zip(patch_sizes, normalized)
    ]
    return torch.stack(scores).sum(0)


def gradient_ncc(
    pred: torch.Tensor,
    target: torch.Tensor,
    sigma: float = 1.0,
    patch_size: int | None = None,
    eps: float = DEFAULT_EPS,
) -> torch.Tensor:
    """NCC of image gradients: Gaussian blur, Sobel x and y gradients, NCC of each, averaged.

    Args:
        pred: (B, C, H, W) images.
        target: (B, C, H, W) images.
        sigma: Gaussian standard deviation (pixels) before differentiation; ``0`` skips the blur. The kernel
            has ``2 ceil(2 sigma) + 1`` taps (5 at ``sigma = 1``, as DiffDRR).
        patch_size: ``None`` (or 0) for global NCC of the gradient images, else the window of :func:`patch_ncc`.
        eps: variance floor (intensity² per pixel²) of the gradient images.

    Returns:
        (B,) similarities in ``[-1, 1]``: ``(ncc(gx_pred, gx_target) + ncc(gy_pred, gy_target)) / 2``.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ or are not (B, C, H, W), bad sigma or patch_size, NaN/inf values.

    Convention: borders are replicated (no false edge at the image border, unlike a zero-padded Sobel);
    gradients are along columns (x) and rows (y) of the image.

    Example:
        >>> x = torch.arange(25.0).reshape(1, 1, 5, 5) ** 2
        >>> gradient_ncc(x, 0.5 * x + 3.0).round(decimals=4)
        tensor([1.])
    """
    _check_pair(pred, target, dense_only=True)
    _check_eps(eps)
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0 (pixels), got {sigma!r}")
    if patch_size:
        patch_size = _check_patch_size(patch_size)
        _check_patch_fits(patch_size, *pred.shape[-2:])
    if sigma > 0:
        pred, target = _gaussian_blur(pred, sigma), _gaussian_blur(target, sigma)
    (pred_x, pred_y), (target_x, target_y) = _sobel(pred), _sobel(target)
    if patch_size:
        score_x = _sliding_patch_ncc(pred_x, target_x, patch_size, eps)
        score_y = _sliding_patch_ncc(pred_y, target_y, patch_size, eps)
    else:
        score_x, score_y = _global_ncc(pred_x, target_x, eps), _global_ncc(pred_y, target_y, eps)
    return 0.5 * (score_x + score_y)


# ------------------------------------------------------------------------------------ sparse pixels


def sample_patch_indices(
    height: int,
    width: int,
    patch_size: int,
    n_patches: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw whole square patches at random and list their pixels, patch-major.

    Args:
        height: image rows ``H``.
        width: image columns ``W``.
        patch_size: patch side ``p`` (pixels), at most ``min(H, W)``.
        n_patches: number of patches ``P``.
        generator: optional CPU ``torch.Generator`` for reproducible draws.
        device: device of the result (drawn on the CPU, then moved).

    Returns:
        (P * p²,) int64 row-major pixel indices ``r * W + c``: patch after patch, each patch's pixels row-major;
        top-left corners uniform over the ``(H - p + 1)(W - p + 1)`` positions that keep the patch inside the
        image. Patches are drawn independently and may overlap.

    Raises:
        ValueError: a size is not a positive integer, or the patch does not fit in the image.

    Convention: feed the result to ``drr(pose, indices=..., ...)`` with ``reshape=False`` and to
    :func:`gather_pixels` for the target, then call :func:`patch_ncc` with the same ``patch_size``.

    Example:
        >>> sample_patch_indices(4, 5, 2, 1, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4])
    """
    for name, value in (("height", height), ("width", width), ("n_patches", n_patches)):
        _check_patch_size(value, name)
    patch_size = _check_patch_size(patch_size)
    _check_patch_fits(patch_size, height, width)
    rows = torch.randint(0, height - patch_size + 1, (n_patches, 1, 1), generator=generator)
    cols = torch.randint(0, width - patch_size + 1, (n_patches, 1, 1), generator=generator)
    offsets = torch.arange(patch_size)
    indices = (rows + offsets[None, :, None]) * width + (cols + offsets[None, None, :])
    return indices.reshape(-1).to(device)


def gather_pixels(image: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Read the pixels of images at row-major indices.

    Args:
        image: (B, C, H, W) images.
        indices: (n,) row-major pixel indices ``r * W + c`` shared by the batch, or (B, n) (or (1, n)) per
            element; integer dtype, in ``[0, H * W)``.

    Returns:
        (B, C, n) pixel values, in the order of ``indices`` (differentiable with respect to ``image``).

    Raises:
        TypeError: ``image`` is not a tensor or ``indices`` not an integer tensor.
        ValueError: wrong shapes, indices out of range, different devices, empty ``indices``.

    Example:
        >>> gather_pixels(torch.arange(6.0).reshape(1, 1, 2, 3), torch.tensor([5, 0]))
        tensor([[[5., 0.]]])
    """
    check_tensor(image, "image")
    check_tensor(indices, "indices")
    if image.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got {_fmt(image.shape)}")
    batch, channels, height, width = image.shape
    if indices.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"indices must be an integer tensor of pixel indices, got {indices.dtype}")
    if indices.dim() not in (1, 2) or (indices.dim() == 2 and indices.shape[0] not in (1, batch)):
        raise ValueError(f"indices must be (n,) or (B, n) with B = {batch}, got {_fmt(indices.shape)}")
    if indices.shape[-1] == 0:
        raise ValueError("indices is empty: select at least one pixel")
    if indices.device != image.device:
        raise ValueError(f"indices is on {indices.device} but image is on {image.device}")
    if int(indices.min()) < 0 or int(indices.max()) >= height * width:
        raise ValueError(f"indices must lie in [0, {height * width}) for a {height} x {width} image")
    indices = indices.long()
    if indices.dim() == 1:
        return image.flatten(2)[:, :, indices]
    index = indices[:, None, :].expand(batch, channels, -1)
    return image.flatten(2).gather(2, index)


# ------------------------------------------------------------------------------------------- module


class ImageLoss(torch.nn.Module):
    """An image loss chosen by name, for configuration files (``1 - similarity``, or the MSE).

    Args:
        name: one of :data:`LOSSES`: ``"mse"``, ``"ncc"``, ``"patch_ncc"``, ``"multiscale_ncc"``,
            ``"gradient_ncc"``.
        patch_size: window side for ``"patch_ncc"`` (required there) and ``"gradient_ncc"`` (``None``:
            global); ignored otherwise.
        patch_sizes: window sizes for ``"multiscale_ncc"`` (``0``/``None`` = global NCC).
        weights: weights of ``patch_sizes`` (equal if ``None``).
        sigma: Gaussian blur (pixels) of ``"gradient_ncc"``.
        eps: variance floor of the NCC family (intensity²).

    Raises:
        ValueError: unknown name (the message lists :data:`LOSSES`), ``"patch_ncc"`` without
            ``patch_size``, or invalid sizes, weights, sigma or eps.

    Convention: ``forward(pred, target)`` returns a (B,) loss, lower is better: ``mse`` as is, every NCC
    variant as ``1 - similarity`` in ``[0, 2]``. Dense (B, C, H, W) inputs work with every name; sparse
    (B, C, n) pixel sets with ``"mse"``, ``"ncc"`` and ``"patch_ncc"``.

    Example:
        >>> loss = ImageLoss("multiscale_ncc", patch_sizes=(None, 3), weights=(0.5, 0.5))
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> loss(x, 2.0 * x).abs().round(decimals=4)
        tensor([0.])
    """

    def __init__(
        self,
        name: str = "ncc",
        patch_size: int | None = None,
        patch_sizes: Sequence[int | None] = (None, 9),
        weights: Sequence[float] | None = None,
        sigma: float = 1.0,
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        check_choice(name, LOSSES, "loss name")
        _check_eps(eps)
        if name == "patch_ncc" and patch_size is None:
            raise ValueError("ImageLoss('patch_ncc') needs a patch_size, e.g. ImageLoss('patch_ncc', patch_size=9)")
        if patch_size is not None and name in ("patch_ncc", "gradient_ncc"):
            _check_patch_size(patch_size)
        if name == "multiscale_ncc":
            _normalized_weights(patch_sizes, weights)
        if name == "gradient_ncc" and not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0 (pixels), got {sigma!r}")
        self.name = name
        self.patch_size = patch_size
        self.patch_sizes = tuple(patch_sizes)
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        self.sigma = float(sigma)
        self.eps = float(eps)

    def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) similarity in ``[-1, 1]`` of the NCC variants (for ``"mse"``: minus the MSE)."""
        if self.name == "mse":
            return -mse(pred, target)
        if self.name == "ncc":
            return ncc(pred, target, self.eps)
        if self.name == "patch_ncc":
            return patch_ncc(pred, target, self.patch_size, self.eps)  # type: ignore[arg-type]
        if self.name == "multiscale_ncc":
            return multiscale_ncc(pred, target, self.patch_sizes, self.weights, self.eps)
        return gradient_ncc(pred, target, self.sigma, self.patch_size, self.eps)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) loss of (B, C, H, W) images or (B, C, n) pixel sets: ``mse``, or ``1 - similarity``."""
        if self.name == "mse":
            return mse(pred, target)
        return 1.0 - self.similarity(pred, target)

    def extra_repr(self) -> str:
        if self.name in ("patch_ncc", "gradient_ncc"):
            extra = f", patch_size={self.patch_size}" + (f", sigma={self.sigma}" if self.name == "gradient_ncc" else "")
        elif self.name == "multiscale_ncc":
            extra = f", patch_sizes={self.patch_sizes}, weights={self.weights}"
        else:
            extra = ""
        return f"name={self.name!r}{extra}"
