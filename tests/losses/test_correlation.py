"""Tests for drreg.losses.correlation: ncc, patch_ncc, multiscale_ncc and their loss classes."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from drreg.losses import (
    MultiscaleNCCLoss,
    NCCLoss,
    PatchNCCLoss,
    gather_pixels,
    multiscale_ncc,
    ncc,
    patch_ncc,
    sample_patch_indices,
)
from drreg.losses._kernels import patch_ncc_naive, sparse_patch_ncc
from tests.losses._helpers import SIMILARITY_ATOL, smooth_image


def test_ncc_hand_2x2(device: torch.device, dtype: torch.dtype) -> None:
    # Centred: x = (-1.5, -0.5, 0.5, 1.5), y = (-1.5, 0.5, -0.5, 1.5): cov = 1, var = 1.25 each, ncc = 0.8.
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=dtype, device=device)
    target = torch.tensor([[[[1.0, 3.0], [2.0, 4.0]]]], dtype=dtype, device=device)
    torch.testing.assert_close(ncc(pred, target), torch.tensor([0.8], dtype=dtype, device=device))


def test_patch_ncc_hand(device: torch.device, dtype: torch.dtype) -> None:
    pred = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]], dtype=dtype, device=device)
    target = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]]]], dtype=dtype, device=device)
    # Left window identical (1); right window: x = (2, 3, 5, 6), y = (2, 3, 5, 0): cov = -0.5, var 2.5 and 3.25.
    expected = 0.5 * (1.0 - 0.5 / math.sqrt(2.5 * 3.25))
    torch.testing.assert_close(
        patch_ncc(pred, target, patch_size=2), torch.tensor([expected], dtype=dtype, device=device)
    )


def test_multiscale_weights_are_normalized(device: torch.device, dtype: torch.dtype) -> None:
    x, y = smooth_image(dtype, device, seed=1), smooth_image(dtype, device, seed=2)
    expected = 0.25 * ncc(x, y) + 0.75 * patch_ncc(x, y, 2)
    torch.testing.assert_close(multiscale_ncc(x, y, (None, 2), (1.0, 3.0)), expected)
    torch.testing.assert_close(multiscale_ncc(x, y, (0, 2), (2.0, 6.0)), expected)
    torch.testing.assert_close(multiscale_ncc(x, y, (None, 2)), 0.5 * ncc(x, y) + 0.5 * patch_ncc(x, y, 2))


@pytest.mark.parametrize("patch_size", [1, 2, 3, 6])
@pytest.mark.parametrize("channels", [1, 3])
def test_patch_ncc_matches_unfold_reference(patch_size: int, channels: int, device, dtype) -> None:
    x = smooth_image(dtype, device, seed=3, shape=(2, channels, 6, 7))
    y = smooth_image(dtype, device, seed=4, shape=(2, channels, 6, 7)) + 0.3 * x
    expected = patch_ncc_naive(x.double(), y.double(), patch_size, 1e-8).to(dtype)
    torch.testing.assert_close(patch_ncc(x, y, patch_size), expected, atol=SIMILARITY_ATOL[dtype], rtol=0)


def test_patch_ncc_whole_image_is_global_ncc(device: torch.device, dtype: torch.dtype) -> None:
    x, y = (
        smooth_image(dtype, device, seed=5, shape=(2, 2, 5, 5)),
        smooth_image(dtype, device, seed=6, shape=(2, 2, 5, 5)),
    )
    torch.testing.assert_close(patch_ncc(x, y, 5), ncc(x, y), atol=SIMILARITY_ATOL[dtype], rtol=0)


def test_flat_windows_score_zero_in_float32(device: torch.device) -> None:
    # A large flat background: float32 moment cancellation must not turn it into noise.
    x = torch.full((1, 1, 16, 16), 1000.0, device=device)
    x[..., 6:10, 6:10] += torch.arange(16.0, device=device).reshape(4, 4)
    expected = patch_ncc_naive(x.double(), (2.0 * x + 1.0).double(), 3, 1e-8).float()
    torch.testing.assert_close(patch_ncc(x, 2.0 * x + 1.0, 3), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("patch_size", [1, 2, 4])
def test_sparse_patches_of_every_window_equal_dense(patch_size: int, device: torch.device, dtype) -> None:
    height, width = 6, 7
    x = smooth_image(dtype, device, seed=18, shape=(2, 2, height, width))
    y = smooth_image(dtype, device, seed=19, shape=(2, 2, height, width))
    offsets = torch.arange(patch_size)
    windows = [
        ((r + offsets[:, None]) * width + c + offsets[None, :]).reshape(-1)
        for r in range(height - patch_size + 1)
        for c in range(width - patch_size + 1)
    ]
    indices = torch.cat(windows).to(device)
    sparse = patch_ncc(gather_pixels(x, indices), gather_pixels(y, indices), patch_size)
    torch.testing.assert_close(sparse, patch_ncc(x, y, patch_size), atol=SIMILARITY_ATOL[dtype], rtol=0)


def test_sparse_patch_ncc_hand(device: torch.device, dtype: torch.dtype) -> None:
    # Two 2x2 patches: the first correlated (1), the second anticorrelated (-1): mean 0.
    pred = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]]], dtype=dtype, device=device)
    target = torch.tensor([[[2.0, 4.0, 6.0, 8.0, 4.0, 3.0, 2.0, 1.0]]], dtype=dtype, device=device)
    torch.testing.assert_close(patch_ncc(pred, target, 2), torch.zeros(1, dtype=dtype, device=device))


def test_gradcheck_patch_ncc_full_jacobian() -> None:
    x = smooth_image(torch.float64, "cpu", seed=33, shape=(1, 1, 4, 5)).requires_grad_()
    y = smooth_image(torch.float64, "cpu", seed=34, shape=(1, 1, 4, 5)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: patch_ncc(a, b, 3), (x, y))


class TestNCCLoss:
    def test_hand_value_and_attributes(self, device: torch.device, dtype: torch.dtype) -> None:
        pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=dtype, device=device)
        target = torch.tensor([[[[1.0, 3.0], [2.0, 4.0]]]], dtype=dtype, device=device)
        torch.testing.assert_close(NCCLoss()(pred, target), torch.tensor([0.2], dtype=dtype, device=device))
        assert NCCLoss.sparse is True and NCCLoss().patch_size is None
        assert NCCLoss(eps=0.0).eps == 0.0 and repr(NCCLoss()) == "NCCLoss(eps=1e-08)"

    def test_sparse_equals_dense(self, device: torch.device, dtype: torch.dtype) -> None:
        x, y = smooth_image(dtype, device, seed=55), smooth_image(dtype, device, seed=56)
        indices = torch.randperm(42, generator=torch.Generator().manual_seed(1)).to(device)
        torch.testing.assert_close(
            NCCLoss()(gather_pixels(x, indices), gather_pixels(y, indices)), NCCLoss()(x, y), atol=1e-6, rtol=0
        )

    @pytest.mark.parametrize(("eps", "error"), [(-1.0, ValueError), (float("nan"), ValueError), ("0", ValueError)])
    def test_bad_eps(self, eps: Any, error: type[Exception]) -> None:
        with pytest.raises(error, match="eps"):
            NCCLoss(eps=eps)


class TestPatchNCCLoss:
    def test_attributes(self) -> None:
        loss = PatchNCCLoss(patch_size=5)
        assert loss.sparse is True and loss.patch_size == 5
        assert repr(loss) == "PatchNCCLoss(patch_size=5, eps=1e-08)"

    def test_sparse_patches_from_sample_patch_indices(self, device: torch.device, dtype: torch.dtype) -> None:
        # A sparse draw laid out as the loss's patch_size says: whole p x p patches.
        x, y = smooth_image(dtype, device, seed=57), smooth_image(dtype, device, seed=58)
        loss = PatchNCCLoss(patch_size=3)
        indices = sample_patch_indices(6, 7, loss.patch_size, 4, generator=torch.Generator().manual_seed(2))
        indices = indices.to(device)
        expected = sparse_patch_ncc(gather_pixels(x, indices), gather_pixels(y, indices), 3, 1e-8)
        torch.testing.assert_close(loss(gather_pixels(x, indices), gather_pixels(y, indices)), 1.0 - expected)

    @pytest.mark.parametrize("patch_size", [0, -2, 2.5, 3.0, True, None, "3"])
    def test_bad_patch_size(self, patch_size: Any) -> None:
        with pytest.raises(ValueError, match="patch_size must be a positive integer"):
            PatchNCCLoss(patch_size=patch_size)

    def test_patch_larger_than_the_image(self) -> None:
        with pytest.raises(ValueError, match=r"patch_size 9 is larger than the image \(6 x 7\)"):
            PatchNCCLoss(9)(torch.zeros(1, 1, 6, 7), torch.zeros(1, 1, 6, 7))


class TestMultiscaleNCCLoss:
    def test_defaults_and_attributes(self, device: torch.device, dtype: torch.dtype) -> None:
        loss = MultiscaleNCCLoss()
        assert loss.patch_sizes == (None, 9) and loss.weights is None and loss.sparse is False
        assert loss.patch_size is None
        x, y = (
            smooth_image(dtype, device, seed=59, shape=(2, 1, 10, 11)),
            smooth_image(dtype, device, seed=60, shape=(2, 1, 10, 11)),
        )
        torch.testing.assert_close(loss(x, y), 1.0 - multiscale_ncc(x, y, (None, 9)))
        assert repr(MultiscaleNCCLoss((0, 3), (1, 3))) == (
            "MultiscaleNCCLoss(patch_sizes=(0, 3), weights=(1.0, 3.0), eps=1e-08)"
        )

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"patch_sizes": ()}, "non-empty sequence"),
            ({"patch_sizes": (None, 3), "weights": (1.0,)}, "one entry per patch size"),
            ({"patch_sizes": (None, 3), "weights": (-1.0, 1.0)}, "each weight must be"),
            ({"patch_sizes": (None, 2.5)}, "each patch size must be"),
            ({"eps": -1.0}, "eps must be"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            MultiscaleNCCLoss(**kwargs)

    def test_dense_only(self) -> None:
        with pytest.raises(ValueError, match=r"dense images \(B, C, H, W\)"):
            MultiscaleNCCLoss((None,))(torch.zeros(1, 1, 9), torch.zeros(1, 1, 9))


def test_eps_may_be_any_real_number_issue10() -> None:
    # check_number accepts a Fraction (a numbers.Real), but the loss used the raw value and failed in torch.
    from fractions import Fraction

    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    torch.testing.assert_close(ncc(x, x.flip(-1), eps=Fraction(1, 10**8)), ncc(x, x.flip(-1)))
