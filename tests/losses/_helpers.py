"""What the loss tests share: the similarities by name, the loss classes by name, seeded random images."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from drreg.losses import (
    GradientNCCLoss,
    MSELoss,
    MultiscaleNCCLoss,
    NCCLoss,
    PatchNCCLoss,
    SimilarityLoss,
    gradient_ncc,
    mse,
    multiscale_ncc,
    ncc,
    patch_ncc,
)

# Every NCC-family similarity on dense images, by name (the window sizes fit an image of at least 6 x 7).
SIMILARITIES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ncc": lambda x, y: ncc(x, y),
    "patch_ncc": lambda x, y: patch_ncc(x, y, patch_size=3),
    "multiscale_ncc": lambda x, y: multiscale_ncc(x, y, patch_sizes=(None, 3), weights=(0.3, 0.7)),
    "gradient_ncc": lambda x, y: gradient_ncc(x, y, sigma=1.0),
    "gradient_patch_ncc": lambda x, y: gradient_ncc(x, y, sigma=0.7, patch_size=4),
}


# Every public function on dense images, as (B,)-valued callables (MSE included).
FUNCTIONS = {"mse": mse, **SIMILARITIES}


# Float32 similarities agree with float64 ones to this absolute tolerance (sums of ~100 products).
SIMILARITY_ATOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def seeded_randn(*shape: int, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu", seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)


def smooth_image(dtype: torch.dtype, device: torch.device, seed: int = 0, shape=(2, 1, 6, 7)) -> torch.Tensor:
    """A smooth-ish random image (gradient NCCs are well defined) with variances large enough (~1e4) that the
    eps = 1e-8 variance floor moves similarities by less than 1e-10."""
    return (100.0 * seeded_randn(*shape, seed=seed).cumsum(-1).cumsum(-2)).to(dtype=dtype, device=device)


# (class, arguments, the functional similarity with the same settings), on (B, C, 6, 7) images.
LOSS_CLASSES: dict[str, tuple[type[SimilarityLoss], dict[str, Any], Callable[..., torch.Tensor]]] = {
    "mse": (MSELoss, {}, lambda x, y: -mse(x, y)),
    "ncc": (NCCLoss, {"eps": 1e-6}, lambda x, y: ncc(x, y, eps=1e-6)),
    "patch_ncc": (PatchNCCLoss, {"patch_size": 3}, lambda x, y: patch_ncc(x, y, 3)),
    "multiscale_ncc": (
        MultiscaleNCCLoss,
        {"patch_sizes": (None, 3), "weights": (0.3, 0.7)},
        lambda x, y: multiscale_ncc(x, y, (None, 3), (0.3, 0.7)),
    ),
    "gradient_ncc": (
        GradientNCCLoss,
        {"sigma": 0.7, "patch_size": 4},
        lambda x, y: gradient_ncc(x, y, sigma=0.7, patch_size=4),
    ),
}


def make_loss(name: str) -> SimilarityLoss:
    cls, kwargs, _ = LOSS_CLASSES[name]
    return cls(**kwargs)
