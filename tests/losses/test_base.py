"""Tests for drreg.losses.base: the SimilarityLoss contract (loss = 1 - similarity), for every loss class."""

from __future__ import annotations

import jsonargparse
import pytest
import torch

from drreg.losses import SimilarityLoss
from tests.losses._helpers import LOSS_CLASSES, make_loss, smooth_image


class TestSimilarityLoss:
    def test_forward_is_one_minus_similarity(self, device: torch.device, dtype: torch.dtype) -> None:
        class Mean(SimilarityLoss):
            def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
                return (pred * target).flatten(1).mean(1)

        x = smooth_image(dtype, device, seed=44)
        torch.testing.assert_close(Mean()(x, x), 1.0 - (x * x).flatten(1).mean(1))
        assert Mean.sparse is False and Mean.patch_size is None

    def test_similarity_must_be_implemented(self) -> None:
        with pytest.raises(NotImplementedError, match="SimilarityLoss must implement similarity"):
            SimilarityLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))

    @pytest.mark.parametrize("name", list(LOSS_CLASSES))
    def test_every_loss_is_a_similarity_loss_matching_its_function(self, name: str, device, dtype) -> None:
        x, y = (
            smooth_image(dtype, device, seed=45, shape=(3, 2, 6, 7)),
            smooth_image(dtype, device, seed=46, shape=(3, 2, 6, 7)),
        )
        loss, similarity = make_loss(name), LOSS_CLASSES[name][2]
        assert isinstance(loss, SimilarityLoss)
        torch.testing.assert_close(loss.similarity(x, y), similarity(x, y), atol=0, rtol=0)
        expected = -similarity(x, y) if name == "mse" else 1.0 - similarity(x, y)
        torch.testing.assert_close(loss(x, y), expected, atol=0, rtol=0)
        assert loss(x, y).shape == (3,) and loss(x, y).dtype == dtype

    @pytest.mark.parametrize("name", list(LOSS_CLASSES))
    def test_half_precision_gives_float32(self, name: str) -> None:
        x, y = smooth_image(torch.float16, "cpu", seed=47) / 1000, smooth_image(torch.float16, "cpu", seed=48) / 1000
        value = make_loss(name)(x, y)
        assert value.dtype == torch.float32 and bool(torch.isfinite(value).all())

    @pytest.mark.parametrize("name", list(LOSS_CLASSES))
    def test_gradcheck(self, name: str) -> None:
        x = smooth_image(torch.float64, "cpu", seed=49, shape=(2, 1, 6, 7)).requires_grad_()
        y = smooth_image(torch.float64, "cpu", seed=50, shape=(2, 1, 6, 7))
        assert torch.autograd.gradcheck(lambda z: make_loss(name)(z, y), (x,), fast_mode=True)

    @pytest.mark.parametrize("name", list(LOSS_CLASSES))
    def test_built_from_a_class_path(self, name: str) -> None:
        # How a recipe names a loss: the registration module's `loss: SimilarityLoss` argument reads it like this.
        cls, kwargs, _ = LOSS_CLASSES[name]
        parser = jsonargparse.ArgumentParser(exit_on_error=False)
        parser.add_argument("--loss", type=SimilarityLoss)
        config = parser.parse_object({"loss": {"class_path": f"drreg.losses.{cls.__name__}", "init_args": kwargs}})
        loss = parser.instantiate(config).loss
        assert type(loss) is cls
        x, y = smooth_image(torch.float64, "cpu", seed=51), smooth_image(torch.float64, "cpu", seed=52)
        torch.testing.assert_close(loss(x, y), make_loss(name)(x, y), atol=0, rtol=0)
