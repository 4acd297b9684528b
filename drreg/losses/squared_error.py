"""The mean squared error: :func:`mse` and its loss class :class:`MSELoss` (dense images or sparse pixel sets)."""

from __future__ import annotations

import torch

from drreg.losses._checks import check_pair
from drreg.losses.base import SimilarityLoss


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per batch element.

    Args:
        pred: (B, C, H, W) images or (B, C, n) pixel sets.
        target: same shape as ``pred``.

    Returns:
        (B,) mean of ``(pred - target)²`` over everything but the batch (a loss: 0 is best).

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ or are not (B, C, H, W) / (B, C, n), no pixels, NaN/inf values.

    Example:
        >>> mse(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 2.0))
        tensor([4.])
    """
    pred, target = check_pair(pred, target)
    return (pred - target).square().flatten(1).mean(1)


class MSELoss(SimilarityLoss):
    """Mean squared error per batch element, as a loss: :func:`mse` (dense or sparse).

    Convention: :meth:`forward` is :func:`mse` itself (0 is best, unbounded); :meth:`similarity` is its negative.

    Example:
        >>> MSELoss()(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 2.0))
        tensor([4.])
    """

    sparse = True

    def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) ``-mse(pred, target)``."""
        return -mse(pred, target)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) :func:`mse` of (B, C, H, W) images or (B, C, n) pixel sets."""
        return mse(pred, target)
