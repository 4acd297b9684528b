"""Tests for drreg.losses._checks: bad inputs to every function and loss are refused, naming the argument."""

from __future__ import annotations

import pytest
import torch

from drreg.losses import (
    ImageLoss,
    gather_pixels,
    gradient_ncc,
    mse,
    multiscale_ncc,
    ncc,
    patch_ncc,
    sample_patch_indices,
)
from tests.losses._helpers import FUNCTIONS, smooth_image


def test_shape_mismatch_message() -> None:
    with pytest.raises(ValueError, match=r"pred \(2, 1, 8, 8\) and target \(2, 1, 8, 9\) must have the same shape"):
        ncc(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9))


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("argument", ["pred", "target"])
def test_nan_names_the_argument(name: str, argument: str) -> None:
    x, y = smooth_image(torch.float32, "cpu"), smooth_image(torch.float32, "cpu", seed=1)
    (x if argument == "pred" else y)[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match=f"{argument} must be finite"):
        FUNCTIONS[name](x, y)


@pytest.mark.parametrize("function", [mse, ncc, lambda x, y: patch_ncc(x, y, 1)])
def test_empty_pixel_set(function) -> None:
    with pytest.raises(ValueError, match="no pixels"):
        function(torch.zeros(2, 1, 0), torch.zeros(2, 1, 0))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: patch_ncc(x, x, 9),
        lambda x: multiscale_ncc(x, x, (None, 7)),
        lambda x: gradient_ncc(x, x, patch_size=8),
        lambda x: sample_patch_indices(6, 7, 7, 1),
    ],
)
def test_patch_larger_than_image(call) -> None:
    with pytest.raises(ValueError, match=r"patch_size \d is larger than the image \(6 x 7\)"):
        call(torch.zeros(1, 1, 6, 7))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: patch_ncc(x, x, 0), "patch_size must be a positive integer"),
        (lambda x: patch_ncc(x, x, 2.5), "patch_size must be a positive integer"),
        (lambda x: patch_ncc(x.flatten(2)[..., :10], x.flatten(2)[..., :10], 3), "not a multiple of patch_size"),
        (lambda x: ncc(x, x, eps=-1.0), "eps must be"),
        (lambda x: ncc(x[0, 0], x[0, 0]), r"must be \(B, C, H, W\) images or \(B, C, n\)"),
        (lambda x: multiscale_ncc(x.flatten(2), x.flatten(2), (None,)), r"dense images \(B, C, H, W\)"),
        (lambda x: gradient_ncc(x.flatten(2), x.flatten(2)), r"dense images \(B, C, H, W\)"),
        (lambda x: multiscale_ncc(x, x, ()), "non-empty sequence"),
        (lambda x: multiscale_ncc(x, x, (None, 3), (1.0,)), "one entry per patch size"),
        (lambda x: multiscale_ncc(x, x, (None, 3), (-1.0, 1.0)), "each weight must be a finite number >= 0, got -1.0"),
        (lambda x: gradient_ncc(x, x, sigma=-1.0), "sigma must be"),
        (lambda x: gather_pixels(x, torch.tensor([42])), r"indices must lie in \[0, 42\)"),
        (lambda x: gather_pixels(x, torch.tensor([], dtype=torch.int64)), "indices is empty"),
        (lambda x: gather_pixels(x, torch.zeros(3, 2, dtype=torch.int64)), r"indices must be \(n,\) or \(B, n\)"),
        (lambda x: gather_pixels(x[0], torch.tensor([0])), r"image must be \(B, C, H, W\)"),
        (lambda x: sample_patch_indices(6, 7, 2, 0), "n_patches must be a positive integer"),
        (lambda x: ImageLoss("ssim"), "unknown loss name 'ssim'; expected one of: 'mse', 'ncc', 'patch_ncc'"),
        (lambda x: ImageLoss("patch_ncc"), "needs a patch_size"),
        (lambda x: ImageLoss("multiscale_ncc", patch_sizes=(None, 3), weights=(1.0,)), "one entry per patch size"),
    ],
)
def test_value_errors(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(torch.zeros(1, 1, 6, 7))


@pytest.mark.parametrize(
    "call",
    [
        lambda: ncc(torch.zeros(1, 1, 2, 2), [[0.0]]),
        lambda: ncc(torch.zeros(1, 1, 2, 2, dtype=torch.int64), torch.zeros(1, 1, 2, 2, dtype=torch.int64)),
        lambda: gather_pixels(torch.zeros(1, 1, 2, 2), torch.tensor([0.0])),
    ],
)
def test_type_errors(call) -> None:
    with pytest.raises(TypeError):
        call()
