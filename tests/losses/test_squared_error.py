"""Tests for drreg.losses.squared_error: mse and MSELoss."""

from __future__ import annotations

import torch

from drreg.losses import MSELoss, gather_pixels, mse
from tests.losses._helpers import smooth_image


def test_mse_hand(device: torch.device, dtype: torch.dtype) -> None:
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 0.0], [0.0, 0.0]]]], dtype=dtype, device=device)
    target = torch.tensor([[[[1.0, 0.0], [3.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]], dtype=dtype, device=device)
    # (0 + 4 + 0 + 16) / 4 = 5 and 1.
    expected = torch.tensor([5.0, 1.0], dtype=dtype, device=device)
    torch.testing.assert_close(mse(pred, target), expected)


class TestMSELoss:
    def test_hand_value_and_attributes(self, device: torch.device, dtype: torch.dtype) -> None:
        pred = torch.zeros(1, 1, 2, 2, dtype=dtype, device=device)
        target = torch.full((1, 1, 2, 2), 2.0, dtype=dtype, device=device)
        torch.testing.assert_close(MSELoss()(pred, target), torch.tensor([4.0], dtype=dtype, device=device))
        torch.testing.assert_close(MSELoss().similarity(pred, target), torch.tensor([-4.0], dtype=dtype, device=device))
        assert MSELoss.sparse is True and MSELoss().patch_size is None
        assert repr(MSELoss()) == "MSELoss()"

    def test_sparse_equals_dense(self, device: torch.device, dtype: torch.dtype) -> None:
        x, y = smooth_image(dtype, device, seed=53), smooth_image(dtype, device, seed=54)
        indices = torch.arange(42, device=device)
        torch.testing.assert_close(MSELoss()(gather_pixels(x, indices), gather_pixels(y, indices)), MSELoss()(x, y))
