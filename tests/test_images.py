"""Tests for drreg._images: the one min-max rescale, against the three copies it replaced."""

from __future__ import annotations

import pytest
import torch

from drreg._images import min_max_rescale
from drreg.regression import rescale_images
from drreg.targets import preprocess


def _images(dtype: torch.dtype, device: torch.device, shape=(3, 2, 5, 6)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (100.0 * torch.randn(*shape, generator=generator, dtype=torch.float64) + 7.0).to(dtype=dtype, device=device)


def test_hand_values(device: torch.device, dtype: torch.dtype) -> None:
    image = torch.tensor([[1.0, 3.0], [2.0, 5.0]], dtype=dtype, device=device)
    expected = torch.tensor([[0.0, 0.5], [0.25, 1.0]], dtype=dtype, device=device)
    torch.testing.assert_close(min_max_rescale(image), expected, atol=0, rtol=0)


@pytest.mark.parametrize("dims", [(-2, -1), (1, 2, 3)])
def test_each_image_spans_zero_to_one(dims: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> None:
    rescaled = min_max_rescale(_images(dtype, device), dims)
    assert rescaled.shape == (3, 2, 5, 6) and rescaled.dtype == dtype
    torch.testing.assert_close(rescaled.amin(dim=dims), torch.zeros_like(rescaled.amin(dim=dims)))
    torch.testing.assert_close(rescaled.amax(dim=dims), torch.ones_like(rescaled.amax(dim=dims)))


def test_constant_image_maps_to_zeros(device: torch.device, dtype: torch.dtype) -> None:
    rescaled = min_max_rescale(torch.full((1, 1, 3, 3), 4.2, dtype=dtype, device=device))
    torch.testing.assert_close(rescaled, torch.zeros_like(rescaled), atol=0, rtol=0)


def test_the_copies_it_replaced(device: torch.device, dtype: torch.dtype) -> None:
    # drreg.regression.rescale_images: each (C, H, W) element as a whole; drreg.targets.preprocess and the overlays
    # (drreg.viz): each channel on its own, preprocess in float32.
    images = _images(dtype, device)
    low, high = images.flatten(1).amin(1)[:, None, None, None], images.flatten(1).amax(1)[:, None, None, None]
    expected = (images - low) / (high - low).clamp_min(torch.finfo(dtype).eps)
    torch.testing.assert_close(rescale_images(images), expected, atol=0, rtol=0)
    single = images.float()
    low, high = single.flatten(-2).amin(-1)[..., None, None], single.flatten(-2).amax(-1)[..., None, None]
    expected = (single - low) / (high - low).clamp_min(torch.finfo(torch.float32).eps)
    torch.testing.assert_close(preprocess(images), expected, atol=0, rtol=0)
