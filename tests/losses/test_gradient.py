"""Tests for drreg.losses.gradient: gradient_ncc (against kornia's filters) and GradientNCCLoss."""

from __future__ import annotations

from typing import Any

import kornia
import pytest
import torch

from drreg.losses import GradientNCCLoss, gradient_ncc, ncc, patch_ncc
from tests.losses._helpers import smooth_image


@pytest.mark.parametrize("patch_size", [None, 3])
def test_gradient_ncc_matches_kornia_filters(patch_size: int | None, device: torch.device) -> None:
    # Independent oracle: kornia's Gaussian blur and Sobel (both with replicated borders).
    x, y = smooth_image(torch.float64, device, seed=7), smooth_image(torch.float64, device, seed=8)

    def gradients(image: torch.Tensor) -> torch.Tensor:
        blurred = kornia.filters.gaussian_blur2d(image, (5, 5), (1.0, 1.0), border_type="replicate")
        return kornia.filters.spatial_gradient(blurred, mode="sobel", normalized=True)

    gx, gy = gradients(x), gradients(y)
    if patch_size is None:
        expected = 0.5 * (ncc(gx[:, :, 0], gy[:, :, 0]) + ncc(gx[:, :, 1], gy[:, :, 1]))
    else:
        expected = 0.5 * (patch_ncc(gx[:, :, 0], gy[:, :, 0], 3) + patch_ncc(gx[:, :, 1], gy[:, :, 1], 3))
    torch.testing.assert_close(gradient_ncc(x, y, sigma=1.0, patch_size=patch_size), expected)


def test_gradient_ncc_tiny_sigma_is_no_blur(device: torch.device, dtype: torch.dtype) -> None:
    # kornia's own gaussian_blur2d builds the taps in the image's dtype and refuses a sigma that rounds to 0 there;
    # the float64 taps make sigma = 1e-70 the identity kernel, the limit of a vanishing blur.
    x, y = smooth_image(dtype, device, seed=42), smooth_image(dtype, device, seed=43)
    torch.testing.assert_close(gradient_ncc(x, y, sigma=1e-70), gradient_ncc(x, y, sigma=0.0), atol=0, rtol=0)


class TestGradientNCCLoss:
    def test_defaults_and_attributes(self, device: torch.device, dtype: torch.dtype) -> None:
        loss = GradientNCCLoss()
        assert (loss.sigma, loss.patch_size, loss.eps, loss.sparse) == (1.0, None, 1e-8, False)
        x, y = smooth_image(dtype, device, seed=61), smooth_image(dtype, device, seed=62)
        torch.testing.assert_close(loss(x, y), 1.0 - gradient_ncc(x, y))
        assert repr(GradientNCCLoss(0.5, 3)) == "GradientNCCLoss(sigma=0.5, patch_size=3, eps=1e-08)"

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"sigma": -1.0}, "sigma must be"),
            ({"patch_size": -1}, "patch_size must be"),
            ({"patch_size": False}, "patch_size"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            GradientNCCLoss(**kwargs)

    def test_dense_only(self) -> None:
        with pytest.raises(ValueError, match=r"dense images \(B, C, H, W\)"):
            GradientNCCLoss()(torch.zeros(1, 1, 9), torch.zeros(1, 1, 9))


@pytest.mark.parametrize("sigma", [1e12, 1e308, 1.36e-70, 5e-324])
def test_gradient_ncc_extreme_sigma_issue10(sigma: float) -> None:
    # A huge sigma asked for a 2e12-tap kernel (or an infinite one); one below float32's range divided 0 by 0.
    x = torch.arange(64.0).reshape(1, 1, 8, 8) ** 2
    assert torch.isfinite(gradient_ncc(x, x.flip(-1), sigma=sigma)).all()


@pytest.mark.parametrize("patch_size", [False, "", 2.0])
def test_gradient_ncc_patch_size_is_an_integer_issue10(patch_size: object) -> None:
    # False and "" were read as 0 (the global NCC) by their truthiness; 0 and None stay the global NCC.
    x = torch.arange(64.0).reshape(1, 1, 8, 8) ** 2
    with pytest.raises(ValueError, match="patch_size must be a non-negative integer or None"):
        gradient_ncc(x, x, patch_size=patch_size)  # type: ignore[arg-type]
    torch.testing.assert_close(gradient_ncc(x, x.flip(-1), patch_size=0), gradient_ncc(x, x.flip(-1)))
