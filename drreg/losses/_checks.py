"""Argument checks of the losses: image pairs, ``eps`` and patch sizes (private to :mod:`drreg.losses`).

Each public loss function checks its arguments here once, then hands them to the unchecked kernels of
:mod:`drreg.losses._kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from drreg._checks import check_finite, check_integer, check_number, check_tensor


def format_shape(shape: Sequence[int]) -> str:
    """A shape as the error messages write it: ``(2, 1, 8, 8)``."""
    return "(" + ", ".join(str(s) for s in shape) + ")"


def check_pair(pred: torch.Tensor, target: torch.Tensor, dense_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a (pred, target) pair: tensors, same shape, (B, C, H, W) or (B, C, n), non-empty, finite.

    Returns both in their common dtype, float32 at least: half-precision squares overflow above 256 (float16),
    which turned the MSE of ordinary images into inf and their NCC into NaN (issue 10).
    """
    check_tensor(pred, "pred")
    check_tensor(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {format_shape(pred.shape)} and target {format_shape(target.shape)} must have the same shape"
        )
    if dense_only and pred.dim() != 4:
        raise ValueError(f"pred and target must be dense images (B, C, H, W), got {format_shape(pred.shape)}")
    if pred.dim() not in (3, 4):
        raise ValueError(
            f"pred and target must be (B, C, H, W) images or (B, C, n) pixel sets, got {format_shape(pred.shape)}"
        )
    if not pred.is_floating_point() or not target.is_floating_point():
        raise TypeError(f"pred and target must be floating-point tensors, got {pred.dtype} and {target.dtype}")
    if pred.device != target.device:
        raise ValueError(f"target is on {target.device} but pred is on {pred.device}; move them to the same device")
    if pred.numel() == 0:
        raise ValueError(f"pred and target hold no pixels: shape {format_shape(pred.shape)}")
    check_finite(pred, "pred")
    check_finite(target, "target")
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    return pred.to(dtype), target.to(dtype)


def check_eps(eps: float) -> float:
    """``eps`` as a float ``>= 0`` (a variance floor)."""
    # The float is used from here on: a Fraction or Decimal-like number does not mix with tensors (issue 10).
    return check_number(eps, "eps", minimum=0.0)


def check_patch_size(patch_size: object, name: str = "patch_size") -> int:
    """``patch_size`` as a positive int."""
    # Whole floats are refused too: callers pass the size on to pooling and unfold as given.
    return check_integer(patch_size, name, minimum=1, whole_floats=False)


def check_patch_fits(patch_size: int, height: int, width: int) -> None:
    """Refuse a window larger than the image."""
    if patch_size > height or patch_size > width:
        raise ValueError(f"patch_size {patch_size} is larger than the image ({height} x {width})")


def check_patch_sizes(patch_sizes: object) -> None:
    """Refuse anything but a non-empty sequence of window sizes (``0`` or ``None``: the global NCC)."""
    if isinstance(patch_sizes, (str, bytes)) or not isinstance(patch_sizes, Sequence) or len(patch_sizes) == 0:
        raise ValueError(f"patch_sizes must be a non-empty sequence of patch sizes, got {patch_sizes!r}")
    for size in patch_sizes:
        if size not in (None, 0):
            check_patch_size(size, "each patch size")
