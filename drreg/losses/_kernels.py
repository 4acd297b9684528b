"""The unchecked math of the similarities: NCC over windows and patches, Gaussian blur and Sobel gradients.

Private to :mod:`drreg.losses`: the public functions check their arguments (:mod:`drreg.losses._checks`), then call
these, which do not re-check them. :func:`patch_ncc_naive` is the reference of :func:`sliding_patch_ncc`, kept here
for the tests.
"""

from __future__ import annotations

import math

import kornia.filters
import torch
import torch.nn.functional as F


def ncc_last(x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """NCC over the last dimension: ``cov / sqrt((var_x + eps) (var_y + eps))`` (population moments)."""
    x = x - x.mean(-1, keepdim=True)
    y = y - y.mean(-1, keepdim=True)
    covariance = (x * y).mean(-1)
    # Clamp before dividing: constant images give 0, not NaN, even with eps = 0 (issue 10); taking the two roots
    # apart avoids overflowing their product for large intensities.
    tiny = torch.finfo(x.dtype).tiny
    std_x = ((x * x).mean(-1) + eps).clamp_min(tiny).sqrt()
    std_y = ((y * y).mean(-1) + eps).clamp_min(tiny).sqrt()
    return covariance / std_x / std_y


def global_ncc(pred: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """(B,) NCC over all values of each batch element of (B, ...) tensors."""
    return ncc_last(pred.flatten(1), target.flatten(1), eps)


def sliding_patch_ncc(pred: torch.Tensor, target: torch.Tensor, patch_size: int, eps: float) -> torch.Tensor:
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
    tiny = torch.finfo(x.dtype).tiny  # clamp before dividing: flat windows give 0, not NaN, even with eps = 0
    similarity = covariance / (var_x + eps).clamp_min(tiny).sqrt() / (var_y + eps).clamp_min(tiny).sqrt()
    return similarity.flatten(1).mean(1).to(dtype)


def patch_ncc_naive(pred: torch.Tensor, target: torch.Tensor, patch_size: int, eps: float) -> torch.Tensor:
    """Reference for :func:`sliding_patch_ncc`: unfold every window and centre it exactly (memory p² H W)."""
    batch, channels = pred.shape[:2]

    def windows(z: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, L, C p p)
        return F.unfold(z, patch_size).reshape(batch, channels * patch_size**2, -1).transpose(1, 2)

    return ncc_last(windows(pred), windows(target), eps).mean(1)


def sparse_patch_ncc(pred: torch.Tensor, target: torch.Tensor, patch_size: int, eps: float) -> torch.Tensor:
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

    return ncc_last(patches(pred), patches(target), eps).mean(1)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), kernel ``2 ceil(2 sigma) + 1`` taps, replicate borders (kornia)."""
    # Capped at the image's larger side (it only differs for sigma > max(H, W) / 2, where the blur flattens the image):
    # a huge sigma asked for a kernel of 2e12 taps, or an infinite one (issue 10).
    radius = max(1, math.ceil(min(2.0 * sigma, max(image.shape[-2:]))))
    # The taps in float64 on the CPU, then cast: kornia.filters.gaussian_blur2d builds them in the image's dtype,
    # which differs from this kernel by up to 1e-6 in float32 and refuses a sigma below float32's range (1e-70
    # rounds to 0) that float64 still turns into the identity kernel (issue 10).
    kernel = kornia.filters.get_gaussian_kernel1d(2 * radius + 1, sigma, dtype=torch.float64)
    kernel = kernel.to(device=image.device, dtype=image.dtype)
    return kornia.filters.filter2d_separable(image, kernel, kernel, border_type="replicate")


def sobel(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel gradients (along columns, along rows) of (B, C, H, W), replicate borders, scaled so a unit ramp has 1."""
    gradients = kornia.filters.spatial_gradient(image, mode="sobel", order=1, normalized=True)  # (B, C, 2, H, W)
    return gradients[:, :, 0], gradients[:, :, 1]
