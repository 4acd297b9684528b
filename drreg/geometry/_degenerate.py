"""Refusing rotation parameters that determine no rotation (issue 10), shared by every parameterization.

A zero quaternion, collinear 6D vectors, a 9D matrix without a unique nearest rotation or an angle whose square
overflows give NaN or an arbitrary rotation if left through; these helpers raise instead, naming the batch index.
"""

from __future__ import annotations

import torch

__all__ = ["degeneracy_tolerance", "refuse_degenerate", "refuse_huge_angle", "scale_free"]


def degeneracy_tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance below which a parameterization's rotation is undetermined: ``sqrt(eps)`` of ``dtype``.

    A rotation read off two directions whose separation is ``s`` (relative) carries an error of about ``eps / s``;
    below ``sqrt(eps)`` that error exceeds ``sqrt(eps)`` (3e-4 rad in float32) and the gradient ``1 / s`` explodes.
    """
    return torch.finfo(dtype).eps ** 0.5


def refuse_degenerate(parameters: torch.Tensor, parameterization: str, *checks: tuple[torch.Tensor, str]) -> None:
    """Raise ``ValueError`` for the first ``(bad, problem)`` check whose mask (shape ``*``) holds somewhere, naming
    the problem and the first such batch index.

    One device sync in eager mode whatever the number of checks; skipped while compiling (no data-dependent branch
    in the graph) and on the meta device (no values). The masks are computed from detached values, so the check
    never touches the autograd graph.
    """
    if torch.compiler.is_compiling() or parameters.device.type == "meta":
        return
    masks = torch.stack([bad for bad, _ in checks])
    if not bool(masks.any()):
        return
    for bad, problem in checks:
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0])
            where = "" if not index else f" at batch index {index[0] if len(index) == 1 else index}"
            values = [round(float(v), 6) for v in parameters.detach()[index].flatten().tolist()]
            raise ValueError(f"{parameterization}{where} is degenerate: {problem}; got {values}")


def scale_free(x: torch.Tensor) -> torch.Tensor:
    """``x`` divided by its largest |component| along the last dimension (detached; zero vectors are left as is).

    For parameters whose rotation does not change with a positive scale (quaternions, 6D vectors, 9D and 10D
    matrices): their squares and products can then neither overflow (1e20 in float32 did) nor underflow (issue 10),
    and the gradient is unchanged, the rotation being scale invariant.
    """
    largest = x.detach().abs().amax(-1, keepdim=True)
    return x / torch.where(largest > 0, largest, torch.ones_like(largest))


def refuse_huge_angle(vector: torch.Tensor, theta_squared: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` where a rotation vector's squared angle (shape ``*``) overflows its dtype (|angle| above
    ~1.8e19 rad in float32, ~1.3e154 in float64): its sine and cosine would be NaN, and no rotation is determined."""
    refuse_degenerate(
        vector,
        name,
        (
            torch.isinf(theta_squared.detach()),
            f"its angle is too large for {vector.dtype} (|angle|^2 overflows), so it determines no rotation",
        ),
    )
