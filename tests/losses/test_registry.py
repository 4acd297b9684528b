"""Tests for drreg.losses.registry: loss_from_name and the deprecated ImageLoss."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from drreg.losses import (
    LOSSES,
    GradientNCCLoss,
    ImageLoss,
    NCCLoss,
    SimilarityLoss,
    loss_from_name,
    mse,
    ncc,
    patch_ncc,
)
from tests.losses._helpers import LOSS_CLASSES, SIMILARITIES, seeded_randn, smooth_image

# ImageLoss is deprecated (it warns); these tests keep it working for existing users.
DEPRECATED_IMAGE_LOSS = pytest.mark.filterwarnings("ignore:ImageLoss.*is deprecated:DeprecationWarning")


@DEPRECATED_IMAGE_LOSS
@pytest.mark.parametrize(
    ("name", "kwargs", "similarity"),
    [
        ("ncc", {}, lambda x, y: ncc(x, y)),
        ("patch_ncc", {"patch_size": 3}, lambda x, y: patch_ncc(x, y, 3)),
        ("multiscale_ncc", {"patch_sizes": (None, 3), "weights": (0.3, 0.7)}, SIMILARITIES["multiscale_ncc"]),
        ("gradient_ncc", {"sigma": 0.7, "patch_size": 4}, SIMILARITIES["gradient_patch_ncc"]),
    ],
)
def test_image_loss_is_one_minus_similarity(name: str, kwargs: dict, similarity, device, dtype) -> None:
    x, y = smooth_image(dtype, device, seed=27), smooth_image(dtype, device, seed=28)
    loss = ImageLoss(name, **kwargs)
    torch.testing.assert_close(loss(x, y), 1.0 - similarity(x, y))
    torch.testing.assert_close(loss.similarity(x, y), similarity(x, y))


@DEPRECATED_IMAGE_LOSS
def test_image_loss_mse_and_defaults(device: torch.device, dtype: torch.dtype) -> None:
    x, y = smooth_image(dtype, device, seed=29), smooth_image(dtype, device, seed=30)
    torch.testing.assert_close(ImageLoss("mse")(x, y), mse(x, y))
    torch.testing.assert_close(ImageLoss()(x, y), 1.0 - ncc(x, y))
    assert set(LOSSES) == {"mse", "ncc", "patch_ncc", "multiscale_ncc", "gradient_ncc"}
    assert "patch_ncc" in repr(ImageLoss("patch_ncc", patch_size=3))


@DEPRECATED_IMAGE_LOSS
@pytest.mark.parametrize("name", ["mse", "ncc", "patch_ncc"])
def test_image_loss_sparse(name: str, device: torch.device) -> None:
    x, y = seeded_randn(2, 1, 8, device=device, seed=31), seeded_randn(2, 1, 8, device=device, seed=32)
    loss = ImageLoss(name, patch_size=2)
    assert loss(x, y).shape == (2,)


class TestLossFromName:
    @pytest.mark.parametrize("name", LOSSES)
    def test_each_name_builds_its_class(self, name: str, device: torch.device, dtype: torch.dtype) -> None:
        cls, kwargs, _ = LOSS_CLASSES[name]
        loss = loss_from_name(name, **kwargs)
        assert type(loss) is cls
        x, y = smooth_image(dtype, device, seed=63), smooth_image(dtype, device, seed=64)
        torch.testing.assert_close(loss(x, y), cls(**kwargs)(x, y), atol=0, rtol=0)

    def test_defaults(self) -> None:
        assert repr(loss_from_name("ncc")) == repr(NCCLoss())
        assert repr(loss_from_name("gradient_ncc")) == repr(GradientNCCLoss())

    def test_unknown_name(self) -> None:
        with pytest.raises(ValueError, match="unknown loss name 'ssim'; expected one of: 'mse', 'ncc', 'patch_ncc'"):
            loss_from_name("ssim")

    @pytest.mark.parametrize(
        ("name", "kwargs", "match"),
        [
            ("ncc", {"patch_size": 3}, r"loss 'ncc' \(NCCLoss\) takes eps; got unexpected patch_size"),
            ("mse", {"eps": 1e-8}, r"loss 'mse' \(MSELoss\) takes no arguments; got unexpected eps"),
            ("patch_ncc", {"patch_size": 3, "sigma": 1.0}, "takes patch_size, eps; got unexpected sigma"),
        ],
    )
    def test_arguments_of_another_loss_are_refused(self, name: str, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(TypeError, match=match):
            loss_from_name(name, **kwargs)

    def test_patch_ncc_needs_its_patch_size(self) -> None:
        with pytest.raises(TypeError, match="patch_size"):
            loss_from_name("patch_ncc")


class TestImageLossCompatibility:
    @pytest.mark.parametrize("name", LOSSES)
    def test_deprecated_alias_warns_and_builds_the_class(self, name: str) -> None:
        cls, kwargs, _ = LOSS_CLASSES[name]
        with pytest.warns(DeprecationWarning, match=f"use drreg.losses.{cls.__name__}"):
            loss = ImageLoss(name, **kwargs)
        assert isinstance(loss, SimilarityLoss) and type(loss.loss) is cls
        assert (loss.sparse, loss.patch_size) == (loss.loss.sparse, loss.loss.patch_size)
        x, y = smooth_image(torch.float64, "cpu", seed=65), smooth_image(torch.float64, "cpu", seed=66)
        torch.testing.assert_close(loss(x, y), loss.loss(x, y), atol=0, rtol=0)
        torch.testing.assert_close(loss.similarity(x, y), loss.loss.similarity(x, y), atol=0, rtol=0)
