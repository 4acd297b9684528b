"""Sim-to-real augmentation of DRRs for pose regression (kornia): contrast, gamma, blur, noise, random erasing.

DRRs are cleaner than X-rays: no scatter, no detector noise, no collimator edges or devices in the field. A
network that has only seen DRRs takes those differences for pose changes. These augmentations randomize
what should not matter. They act on images rescaled to ``[0, 1]`` (see
:func:`drreg.regression.data.rescale_images`) and are applied to training images only: the data module never
calls them in validation, test or predict, and the module is the identity in ``eval()`` mode.
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia.augmentation as K
import torch

from drreg._checks import check_integer, check_number, check_shape

__all__ = ["SimToRealAugmentation"]


def _pair(value: Sequence[float], name: str, low: float = 0.0) -> tuple[float, float]:
    pair = tuple(check_number(v, name) for v in value)
    if len(pair) != 2 or not pair[0] <= pair[1] or pair[0] < low:
        raise ValueError(f"{name} must be a (min, max) pair with {low} <= min <= max, got {tuple(value)}")
    return pair


def _probability(p: float, name: str) -> float:
    return check_number(p, name, minimum=0.0, maximum=1.0)


class SimToRealAugmentation(torch.nn.Module):
    """Random contrast, gamma, Gaussian blur, Gaussian noise and erasing, each applied with its probability.

    Args:
        contrast: range of the contrast factor (kornia ``RandomContrast``).
        p_contrast: probability of a contrast change.
        gamma: range of the gamma exponent (``x ** gamma``).
        p_gamma: probability of a gamma change.
        blur_sigma: range of the Gaussian blur's standard deviation (pixels).
        blur_kernel: blur kernel size (odd, pixels).
        p_blur: probability of a blur.
        noise_std: standard deviation of the additive Gaussian noise (image range is 1).
        p_noise: probability of noise.
        erasing_scale: range of the erased rectangle's area (fraction of the image).
        p_erasing: probability of erasing one rectangle (set to 0, the mean of the image range, for ``value``).
        erasing_value: intensity written into the erased rectangle.

    Raises:
        ValueError: a range with min > max or a negative bound, a probability outside ``[0, 1]``, an even
            or non-positive kernel, a negative noise level.

    Convention: input and output are (B, 1, H, W) in ``[0, 1]`` (the output is clamped there); one independent
    draw per image. kornia draws from torch's global RNG; pass ``generator=`` to :meth:`forward` for
    reproducible draws (the global RNG is then forked and seeded from it, and left untouched).

    Example:
        >>> augment = SimToRealAugmentation()
        >>> augment(torch.rand(2, 1, 16, 16), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        contrast: Sequence[float] = (0.7, 1.3),
        p_contrast: float = 0.5,
        gamma: Sequence[float] = (0.7, 1.5),
        p_gamma: float = 0.5,
        blur_sigma: Sequence[float] = (0.1, 1.5),
        blur_kernel: int = 5,
        p_blur: float = 0.3,
        noise_std: float = 0.02,
        p_noise: float = 0.5,
        erasing_scale: Sequence[float] = (0.01, 0.05),
        p_erasing: float = 0.25,
        erasing_value: float = 0.0,
    ) -> None:
        super().__init__()
        if check_integer(blur_kernel, "blur_kernel", minimum=1) % 2 == 0:
            raise ValueError(f"blur_kernel must be a positive odd integer, got {blur_kernel}")
        check_number(noise_std, "noise_std", minimum=0.0)
        check_number(erasing_value, "erasing_value")
        blur = _pair(blur_sigma, "blur_sigma")
        if blur[0] <= 0:
            raise ValueError(f"blur_sigma must be positive, got {tuple(blur_sigma)}")
        self.augmentations = torch.nn.ModuleList(
            [
                K.RandomContrast(contrast=_pair(contrast, "contrast"), p=_probability(p_contrast, "p_contrast")),
                K.RandomGamma(gamma=_pair(gamma, "gamma"), p=_probability(p_gamma, "p_gamma")),
                K.RandomGaussianBlur(int(blur_kernel), blur, p=_probability(p_blur, "p_blur")),
                K.RandomGaussianNoise(std=float(noise_std), p=_probability(p_noise, "p_noise")),
                K.RandomErasing(
                    scale=_pair(erasing_scale, "erasing_scale"),
                    value=float(erasing_value),
                    p=_probability(p_erasing, "p_erasing"),
                ),
            ]
        )

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch (identity in ``eval()`` mode).

        Args:
            images: (B, 1, H, W) images in ``[0, 1]``.
            generator: optional CPU generator that seeds the draws.

        Returns:
            (B, 1, H, W) augmented images in ``[0, 1]``.
        """
        check_shape(images, "B 1 H W", name="images")
        if not self.training:
            return images
        if generator is None:
            return self._augment(images)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return self._augment(images)

    # Not _apply: that name is nn.Module's hook behind .to(), .cuda() and .float().
    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        for augmentation in self.augmentations:
            images = augmentation(images)
            # Clamp between steps: gamma needs non-negative inputs, and noise leaves the [0, 1] range.
            images = images.clamp(0.0, 1.0)
        return images
