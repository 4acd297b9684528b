"""Tests for drreg.losses._kernels: compiled == eager, and kornia's blur and Sobel against hand-written oracles."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from drreg.losses._kernels import gaussian_blur, global_ncc, sliding_patch_ncc, sobel, sparse_patch_ncc
from tests.losses._helpers import seeded_randn, smooth_image


@pytest.mark.parametrize("kernel", ["global", "sliding", "sparse"])
def test_compiled_matches_eager(kernel: str, device: torch.device) -> None:
    function = {
        "global": lambda x, y: global_ncc(x, y, 1e-8),
        "sliding": lambda x, y: sliding_patch_ncc(x, y, 3, 1e-8),
        "sparse": lambda x, y: sparse_patch_ncc(x.flatten(2)[..., :36], y.flatten(2)[..., :36], 3, 1e-8),
    }[kernel]
    x, y = smooth_image(torch.float64, device, seed=25), smooth_image(torch.float64, device, seed=26)
    compiled = torch.compile(function, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, y), function(x, y), atol=1e-15, rtol=0)


# Blur and Sobel come from kornia.filters; the hand-written versions they replaced are kept here as the oracle.


def _gaussian_blur_by_hand(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(min(2.0 * sigma, max(image.shape[-2:]))))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(device=image.device, dtype=image.dtype)
    batch, channels, height, width = image.shape
    z = image.reshape(batch * channels, 1, height, width)
    z = F.conv2d(F.pad(z, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    z = F.conv2d(F.pad(z, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return z.reshape(batch, channels, height, width)


def _sobel_by_hand(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    sobel_x = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
    sobel_y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))
    batch, channels, height, width = image.shape
    kernels = torch.tensor((sobel_x, sobel_y), dtype=image.dtype, device=image.device).unsqueeze(1) / 8.0
    z = F.pad(image.reshape(batch * channels, 1, height, width), (1, 1, 1, 1), mode="replicate")
    gradients = F.conv2d(z, kernels).reshape(batch, channels, 2, height, width)
    return gradients[:, :, 0], gradients[:, :, 1]


# Measured on the CPU: bitwise equal in float32; within 1 ulp in float64 (kornia's taps exp(-n² / 2σ²) and the
# hand-written exp(-(n / σ)² / 2) round differently in their last bit).
BLUR_ATOL = {torch.float32: 1e-7, torch.float64: 1e-15}


@pytest.mark.parametrize("sigma", [1e-70, 0.3, 1.0, 2.5, 100.0])
@pytest.mark.parametrize("shape", [(2, 3, 6, 7), (1, 1, 1, 9), (2, 1, 1, 1), (1, 2, 40, 33)])
def test_kornia_blur_matches_the_hand_written_one(sigma: float, shape, device, dtype) -> None:
    x = seeded_randn(*shape, dtype=dtype, device=device, seed=40)
    blurred, expected = gaussian_blur(x, sigma), _gaussian_blur_by_hand(x, sigma)
    torch.testing.assert_close(blurred, expected, atol=BLUR_ATOL[dtype], rtol=0)
    if device.type == "cpu" and dtype == torch.float32:
        assert torch.equal(blurred, expected)


@pytest.mark.parametrize("shape", [(2, 3, 6, 7), (1, 1, 1, 1), (1, 2, 17, 19)])
def test_kornia_sobel_is_bitwise_the_hand_written_one(shape, device, dtype) -> None:
    x = seeded_randn(*shape, dtype=dtype, device=device, seed=41)
    (gx, gy), (hx, hy) = sobel(x), _sobel_by_hand(x)
    torch.testing.assert_close(gx, hx, atol=0, rtol=0)
    torch.testing.assert_close(gy, hy, atol=0, rtol=0)
