"""Mutual information of image intensities (Parzen-window histograms): :func:`mutual_information` and its loss.

Convention: intensities are expected in ``[0, 1]`` (the default bins span it); the (normalized) mutual information is
a similarity, higher is better; the matching loss is ``1 - similarity``.
"""

from __future__ import annotations

import torch
from kornia.enhance.histogram import joint_pdf, marginal_pdf

from drreg._checks import check_bool, check_integer, check_number
from drreg.losses._checks import check_pair
from drreg.losses.base import SimilarityLoss

__all__ = ["JOINT_EPS", "MutualInformationLoss", "mutual_information"]

JOINT_EPS = 1e-10
"""Floor added to the joint histogram's total before normalizing it (kornia's ``joint_pdf`` default, as DiffDRR)."""


def _check_bins(bins: int | torch.Tensor) -> int | torch.Tensor:
    if isinstance(bins, torch.Tensor):
        if bins.dim() != 1 or bins.numel() < 2 or not bins.is_floating_point():
            raise ValueError(f"bins must be a (K,) floating tensor of bin centres with K >= 2, got {tuple(bins.shape)}")
        return bins
    return check_integer(bins, "bins", minimum=2, whole_floats=False)


def mutual_information(
    pred: torch.Tensor,
    target: torch.Tensor,
    sigma: float | torch.Tensor = 0.1,
    bins: int | torch.Tensor = 256,
    eps: float = 1e-10,
    normalize: bool = True,
) -> torch.Tensor:
    """Mutual information of the intensities of two images, from Gaussian-kernel (Parzen) histograms.

    Args:
        pred: (B, C, H, W) images or (B, C, n) pixel sets, intensities in ``[0, 1]`` for the default bins.
        target: same shape as ``pred``.
        sigma: standard deviation of the Gaussian kernel (intensity units), a float or a 0-d tensor, ``> 0``.
        bins: the number ``K`` of bin centres spread evenly over ``[0, 1]``, or a (K,) tensor of bin centres.
        eps: added to each marginal histogram's total before normalizing it and inside each logarithm.
        normalize: return ``2 I / (H(pred) + H(target))`` (in ``[0, 1]``) instead of ``I``.

    Returns:
        (B,) mutual information ``I = H(pred) + H(target) - H(pred, target)`` in bits (or its normalized form),
        higher is better. The entropies are ``-sum p log2(p + eps)`` of the kernel histograms: each of the
        ``N = C x H x W`` (or ``C x n``) pixel pairs adds ``exp(-(x - b)² / (2 sigma²))`` to bin ``b``.

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: shapes differ or are not (B, C, H, W) / (B, C, n), no pixels, NaN/inf values, bad sigma,
            bins or eps.

    Convention: DiffDRR's ``MutualInformation`` (kornia's ``marginal_pdf`` and ``joint_pdf``); the joint
    histogram is normalized with the fixed floor :data:`JOINT_EPS`. All channels' pixels are pooled as samples
    (DiffDRR takes one channel). Memory grows as ``B x N x K``.

    Example:
        >>> x = torch.linspace(0.0, 1.0, 16).reshape(1, 1, 4, 4)
        >>> bool(mutual_information(x, x, bins=32) > mutual_information(x, x.flip(-1).flip(-2) ** 4, bins=32))
        True
    """
    pred, target = check_pair(pred, target)
    bins = _check_bins(bins)
    eps = check_number(eps, "eps", minimum=0.0)
    normalize = check_bool(normalize, "normalize")
    if isinstance(sigma, torch.Tensor):
        if sigma.numel() != 1 or not sigma.is_floating_point():
            raise ValueError(f"sigma must be a number or a floating 0-d tensor, got {sigma.dtype} {tuple(sigma.shape)}")
        # No host-side value check here (a device sync per call): kornia checks ``sigma > 0`` asynchronously.
        sigma = sigma.reshape(()).to(device=pred.device, dtype=pred.dtype)
    else:
        sigma = torch.tensor(check_number(sigma, "sigma", positive=True), device=pred.device, dtype=pred.dtype)
    if isinstance(bins, int):
        bins = torch.linspace(0.0, 1.0, bins, device=pred.device, dtype=pred.dtype)
    bins = bins.to(device=pred.device, dtype=pred.dtype)

    # (B, N, 1) samples: kornia's Parzen histograms take one intensity per sample.
    pdf_pred, kernel_pred = marginal_pdf(pred.flatten(1)[..., None], bins, sigma, eps)
    pdf_target, kernel_target = marginal_pdf(target.flatten(1)[..., None], bins, sigma, eps)
    pdf_joint = joint_pdf(kernel_pred, kernel_target, JOINT_EPS)

    entropy_pred = -(pdf_pred * (pdf_pred + eps).log2()).sum(1)
    entropy_target = -(pdf_target * (pdf_target + eps).log2()).sum(1)
    entropy_joint = -(pdf_joint * (pdf_joint + eps).log2()).sum((1, 2))
    information = entropy_pred + entropy_target - entropy_joint
    if not normalize:
        return information
    # Clamp before dividing: two one-bin histograms (zero entropies) give 0, not NaN.
    marginal_entropies = (entropy_pred + entropy_target).clamp_min(torch.finfo(information.dtype).tiny)
    return 2.0 * information / marginal_entropies


class MutualInformationLoss(SimilarityLoss):
    """Mutual-information loss ``1 - mutual_information(pred, target)`` (dense or sparse).

    Args:
        sigma: standard deviation of the Parzen kernel (intensity units), ``> 0``.
        bins: number of bin centres spread evenly over ``[0, 1]``.
        eps: floor of the marginal normalizations and the logarithms.
        normalize: use the normalized mutual information (in ``[0, 1]``, so the loss lies in ``[0, 1]``).

    Raises:
        ValueError: a bad ``sigma``, ``bins``, ``eps`` or ``normalize``.

    Example:
        >>> x = torch.linspace(0.0, 1.0, 16).reshape(1, 1, 4, 4)
        >>> MutualInformationLoss(bins=32)(x, x).shape
        torch.Size([1])
    """

    sparse = True

    def __init__(self, sigma: float = 0.1, bins: int = 256, eps: float = 1e-10, normalize: bool = True) -> None:
        super().__init__()
        self.sigma = check_number(sigma, "sigma", positive=True)
        self.bins = check_integer(bins, "bins", minimum=2, whole_floats=False)
        self.eps = check_number(eps, "eps", minimum=0.0)
        self.normalize = check_bool(normalize, "normalize")

    def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) :func:`mutual_information`, higher is better."""
        return mutual_information(pred, target, self.sigma, self.bins, self.eps, self.normalize)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, bins={self.bins}, eps={self.eps}, normalize={self.normalize}"
