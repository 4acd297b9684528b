"""The losses by short name: :data:`LOSSES`, :func:`loss_from_name` and the deprecated :class:`ImageLoss`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from drreg._checks import check_choice, check_number
from drreg.losses._checks import check_eps, check_patch_sizes
from drreg.losses.base import DEFAULT_EPS, SimilarityLoss
from drreg.losses.correlation import MultiscaleNCCLoss, NCCLoss, PatchNCCLoss
from drreg.losses.gradient import GradientNCCLoss
from drreg.losses.squared_error import MSELoss

LOSSES: tuple[str, ...] = ("mse", "ncc", "patch_ncc", "multiscale_ncc", "gradient_ncc")
"""Every ``name`` that :func:`loss_from_name` accepts."""

_LOSS_CLASSES: dict[str, type[SimilarityLoss]] = {
    "mse": MSELoss,
    "ncc": NCCLoss,
    "patch_ncc": PatchNCCLoss,
    "multiscale_ncc": MultiscaleNCCLoss,
    "gradient_ncc": GradientNCCLoss,
}
LOSS_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "mse": (),
    "ncc": ("eps",),
    "patch_ncc": ("patch_size", "eps"),
    "multiscale_ncc": ("patch_sizes", "weights", "eps"),
    "gradient_ncc": ("sigma", "patch_size", "eps"),
}
"""The keyword arguments that :func:`loss_from_name` accepts for each name of :data:`LOSSES`."""


def loss_from_name(name: str, **kwargs: Any) -> SimilarityLoss:
    """The loss class of a short name, built with ``kwargs``: the string shortcut of configuration files.

    Args:
        name: one of :data:`LOSSES`: ``"mse"`` (:class:`MSELoss`), ``"ncc"`` (:class:`NCCLoss`), ``"patch_ncc"``
            (:class:`PatchNCCLoss`), ``"multiscale_ncc"`` (:class:`MultiscaleNCCLoss`), ``"gradient_ncc"``
            (:class:`GradientNCCLoss`).
        **kwargs: that class's arguments (``patch_size``, ``patch_sizes``, ``weights``, ``sigma``, ``eps``).

    Returns:
        A new :class:`SimilarityLoss`.

    Raises:
        ValueError: an unknown name (the message lists :data:`LOSSES`), or invalid argument values.
        TypeError: an argument that this loss does not take (the message lists those it takes).

    Example:
        >>> loss_from_name("patch_ncc", patch_size=9)
        PatchNCCLoss(patch_size=9, eps=1e-08)
    """
    check_choice(name, LOSSES, "loss name")
    unknown = sorted(set(kwargs) - set(LOSS_ARGUMENTS[name]))
    if unknown:
        takes = ", ".join(LOSS_ARGUMENTS[name]) or "no arguments"
        raise TypeError(
            f"loss {name!r} ({_LOSS_CLASSES[name].__name__}) takes {takes}; got unexpected {', '.join(unknown)}"
        )
    return _LOSS_CLASSES[name](**kwargs)


# ------------------------------------------------------------------------------------------- legacy


class ImageLoss(SimilarityLoss):
    """Deprecated: an image loss chosen by name; use the loss classes (or :func:`loss_from_name`) instead.

    Builds the class of ``name`` (:func:`loss_from_name`) with the arguments that apply to it and delegates to
    it (:attr:`loss`); the other arguments are checked as before, then ignored.

    Args:
        name: one of :data:`LOSSES`: ``"mse"``, ``"ncc"``, ``"patch_ncc"``, ``"multiscale_ncc"``,
            ``"gradient_ncc"``.
        patch_size: window side for ``"patch_ncc"`` (required there) and ``"gradient_ncc"`` (``None``:
            global); ignored otherwise.
        patch_sizes: window sizes for ``"multiscale_ncc"`` (``0``/``None`` = global NCC).
        weights: weights of ``patch_sizes`` (equal if ``None``).
        sigma: Gaussian blur (pixels) of ``"gradient_ncc"``.
        eps: variance floor of the NCC family (intensity²).

    Raises:
        ValueError: unknown name (the message lists :data:`LOSSES`), ``"patch_ncc"`` without
            ``patch_size``, or invalid sizes, weights, sigma or eps.

    Warns:
        DeprecationWarning: always: ``ImageLoss("patch_ncc", patch_size=9)`` is ``PatchNCCLoss(patch_size=9)``.

    Convention: ``forward(pred, target)`` returns the (B,) loss of the class built, lower is better: ``mse`` as
    is, every NCC variant as ``1 - similarity`` in ``[0, 2]``. :meth:`similarity` of ``"mse"`` is minus the MSE.
    """

    def __init__(
        self,
        name: str = "ncc",
        patch_size: int | None = None,
        patch_sizes: Sequence[int | None] = (None, 9),
        weights: Sequence[float] | None = None,
        sigma: float = 1.0,
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        check_choice(name, LOSSES, "loss name")
        if name == "patch_ncc" and patch_size is None:
            raise ValueError("ImageLoss('patch_ncc') needs a patch_size, e.g. ImageLoss('patch_ncc', patch_size=9)")
        # Checked whatever the name, as before (issue 10); only the loss's own arguments are passed on.
        check_patch_sizes(patch_sizes)
        sigma = check_number(sigma, "sigma", minimum=0.0, unit="pixels")
        eps = check_eps(eps)
        given = {"patch_size": patch_size, "patch_sizes": patch_sizes, "weights": weights, "sigma": sigma, "eps": eps}
        self.loss = loss_from_name(name, **{key: given[key] for key in LOSS_ARGUMENTS[name]})
        warnings.warn(
            f"ImageLoss({name!r}, ...) is deprecated: use drreg.losses.{self.loss!r} instead "
            f"(or loss_from_name({name!r}, ...))",
            DeprecationWarning,
            stacklevel=2,
        )
        self.name = name
        self.sparse = self.loss.sparse
        self.patch_size = self.loss.patch_size

    def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) similarity of the loss built (for ``"mse"``: minus the MSE)."""
        return self.loss.similarity(pred, target)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) loss of the loss built."""
        return self.loss(pred, target)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"
