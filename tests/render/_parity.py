"""The parity check of the fused backends (numba, Triton): value and every gradient against the torch reference.

The references :func:`drreg.render.siddon.siddon` and :func:`drreg.render.trilinear.trilinear` are the
specification; a fused kernel's render and the gradients of ``sum(render * grad_out)`` with respect to each input
must match theirs. :class:`Parity` holds one tolerance and applies it to a whole :class:`Result`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from tests._tolerances import ATOL, RTOL, relative_l2

__all__ = ["Result", "value_and_grads", "assert_close", "Parity", "assert_bitwise_equal", "stable_sort"]


class Result(NamedTuple):
    """A render (R, C) or image, and the gradients of ``sum(value * grad_out)`` with respect to its inputs."""

    value: torch.Tensor
    grads: tuple[torch.Tensor, ...]


def value_and_grads(function: Callable[..., torch.Tensor], *tensors: torch.Tensor, grad_out: torch.Tensor) -> Result:
    """Value of ``function(*tensors)`` and its gradients with respect to every tensor argument (fresh leaves)."""
    leaves = [x.detach().clone().requires_grad_() for x in tensors]
    out = function(*leaves)
    out.backward(grad_out)
    return Result(out.detach(), tuple(x.grad for x in leaves))


def assert_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    atol: float = ATOL[torch.float32],
    rtol: float = RTOL[torch.float32],
    name: str = "",
) -> None:
    """Elementwise ``|actual - expected| <= atol + rtol |expected|``, compared in float64."""
    message = (lambda default: f"{name}: {default}") if name else None
    torch.testing.assert_close(actual.double(), expected.double(), atol=atol, rtol=rtol, msg=message)


@dataclass(frozen=True)
class Parity:
    """Holds a fused result to the reference one: the value and every gradient, with one tolerance.

    Elementwise by default (``atol``, ``rtol``: the float32 row of ``tests/_tolerances.py``); with ``relative_l2``
    set, the relative L2 error of each whole tensor is bounded instead (``<=``, or ``<`` when ``strict``).
    """

    atol: float = ATOL[torch.float32]
    rtol: float = RTOL[torch.float32]
    relative_l2: float | None = None
    strict: bool = False

    def __call__(self, fused: Result, reference: Result, *, alpha_bounds: bool = False) -> None:
        """Compare value and gradients. ``alpha_bounds``: the last gradient is that of the trilinear sampling range,
        a sum over all rays of float32 sample gradients, so its absolute tolerance scales with its size."""
        if len(fused.grads) != len(reference.grads):
            raise AssertionError(f"{len(fused.grads)} gradients, expected {len(reference.grads)}")
        grads, expected = fused.grads, reference.grads
        if alpha_bounds:
            assert_close(grads[-1], expected[-1], atol=self.atol * float(expected[-1].abs().max()), rtol=self.rtol)
            grads, expected = grads[:-1], expected[:-1]
        names = ("value", *(f"gradient of input {index}" for index in range(len(grads))))
        self.tensors((fused.value, *grads), (reference.value, *expected), names)

    def tensors(self, actual: Sequence[torch.Tensor], expected: Sequence[torch.Tensor], names: Sequence[str]) -> None:
        """Compare tensors pairwise (one name each, for the failure message)."""
        if not len(actual) == len(expected) == len(names):
            raise AssertionError(f"{len(actual)} tensors, {len(expected)} expected, {len(names)} names")
        for a, e, name in zip(actual, expected, names):
            if self.relative_l2 is None:
                assert_close(a, e, atol=self.atol, rtol=self.rtol, name=name)
                continue
            error = relative_l2(a, e)
            within = error < self.relative_l2 if self.strict else error <= self.relative_l2
            assert within, f"{name}: relative L2 error {error:.3g} over {self.relative_l2:g}"


def assert_bitwise_equal(first: Sequence[torch.Tensor], second: Sequence[torch.Tensor]) -> None:
    """Two runs gave the same tensors, bit for bit."""
    if len(first) != len(second):
        raise AssertionError(f"{len(first)} tensors against {len(second)}")
    for index, (a, b) in enumerate(zip(first, second)):
        assert torch.equal(a, b), f"tensor {index} differs"


def stable_sort(original: Callable[..., object]) -> Callable[..., object]:
    """``torch.Tensor.sort`` made stable, for references compared at exact ties (monkeypatch it in)."""

    def sort(self, dim=-1, descending=False, stable=None):
        return original(self, dim=dim, descending=descending, stable=True)

    return sort
