"""The base class of the losses, :class:`SimilarityLoss`, and the default variance floor of the NCC family."""

from __future__ import annotations

import torch

DEFAULT_EPS = 1e-8
"""Default variance floor of the NCC family (absolute, intensity² units)."""


class SimilarityLoss(torch.nn.Module):
    """Base of the image losses: a (B,) loss of predicted images against targets, lower is better.

    Subclasses implement :meth:`similarity`; :meth:`forward` is ``1 - similarity`` (``[0, 2]`` for the NCC
    family) unless a subclass says otherwise (:class:`~drreg.losses.MSELoss` is the MSE as it stands).

    Attributes:
        sparse: ``True`` when the loss accepts (B, C, n) pixel sets as well as (B, C, H, W) images.
        patch_size: when not ``None`` (and ``sparse``), a sparse pixel draw for this loss must be made of whole
            square patches of this side, laid out as :func:`~drreg.losses.sample_patch_indices` draws them;
            ``None``: any pixels.

    Convention: one value per batch element, so that a multi-start optimizer can keep the best start; inputs in
    half precision are compared in float32 and give a float32 loss.
    """

    sparse: bool = False
    patch_size: int | None = None

    def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) similarity of (B, C, H, W) images (or (B, C, n) pixel sets where :attr:`sparse`); higher is better."""
        raise NotImplementedError(f"{type(self).__name__} must implement similarity(pred, target)")

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) loss ``1 - similarity(pred, target)`` of (B, C, H, W) images or, where :attr:`sparse`, (B, C, n)."""
        return 1.0 - self.similarity(pred, target)
