"""Input validation at public boundaries: one helper per kind of check, used everywhere.

Kernels and inner loops never re-check; public functions call these once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["check_shape", "check_finite", "check_choice", "check_integer", "check_same_device", "check_tensor"]


def check_tensor(x: object, name: str) -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_shape(x: torch.Tensor, pattern: str, name: str) -> dict[str, int]:
    """Check that ``x`` matches a space-separated shape pattern and return the bound sizes.

    Each token of ``pattern`` is an integer (that exact size), a name (any size, but every
    occurrence of the same name must agree), ``*`` (any number of leading dimensions, only first)
    or ``_`` (any size).

    Args:
        x: tensor to check.
        pattern: e.g. ``"B N 3"``, ``"* 3 3"``, ``"B 4 4"``.
        name: argument name used in the error message.

    Returns:
        The sizes bound to the named tokens, e.g. ``{"B": 2, "N": 5}``.

    Raises:
        TypeError: ``x`` is not a tensor.
        ValueError: the shape does not match, e.g. ``"points must be (B, N, 3), got (2, 5)"``.

    Example:
        >>> check_shape(torch.zeros(2, 5, 3), "B N 3", "points")
        {'B': 2, 'N': 5}
    """
    check_tensor(x, name)
    tokens = pattern.split()
    shape = tuple(x.shape)
    expected = "(" + ", ".join(tokens) + ")"
    leading = bool(tokens) and tokens[0] == "*"
    body = tokens[1:] if leading else tokens
    ok = len(shape) >= len(body) if leading else len(shape) == len(body)
    bound: dict[str, int] = {}
    if ok:
        for token, size in zip(body, shape[len(shape) - len(body) :]):
            if token == "_":
                continue
            if token.isdigit():
                ok = size == int(token)
            elif token in bound:
                ok = bound[token] == size
            else:
                bound[token] = size
            if not ok:
                break
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {shape}")
    return bound


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values."""
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} must be finite, got {bad} NaN/inf value(s)")


def check_choice(value: object, choices: Sequence[object], name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (listed in the message)."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; expected one of: {listed}")


def check_integer(value: object, name: str, minimum: int = 0) -> int:
    """Return ``value`` as an ``int``; raise ``ValueError`` unless it is a whole number ``>= minimum``.

    Whole floats (``4.0``, as YAML may give) are accepted; booleans, strings, fractions and NaN are refused.

    Example:
        >>> check_integer(4.0, "batch_size", minimum=1)
        4
    """
    try:
        whole = not isinstance(value, bool) and int(value) == value  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or value < minimum:  # type: ignore[operator]
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def check_same_device(reference: torch.Tensor, other: torch.Tensor, names: tuple[str, str]) -> None:
    """Raise ``ValueError`` if two tensors live on different devices."""
    if reference.device != other.device:
        raise ValueError(
            f"{names[1]} is on {other.device} but {names[0]} is on {reference.device}; "
            f"move them to the same device (e.g. drr.to({other.device}))"
        )
