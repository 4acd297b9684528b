"""Input validation at public boundaries: one helper per kind of check, used everywhere.

Kernels and inner loops never re-check; public functions call these once.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, overload

import torch

__all__ = [
    "check_shape",
    "check_finite",
    "check_choice",
    "check_bool",
    "check_number",
    "check_integer",
    "check_memory",
    "available_memory",
    "check_same_device",
    "check_tensor",
    "check_floating",
    "check_rigid",
]


def check_tensor(x: object, name: str) -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_floating(x: torch.Tensor, name: str) -> None:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor."""
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


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


def check_bool(value: object, name: str) -> bool:
    """Return ``value`` as a ``bool``; raise ``ValueError`` unless it is ``True`` or ``False``.

    NumPy bools and 0-d bool tensors count as booleans. A string (``"False"`` from a configuration file) or a
    number is refused rather than read by its truthiness, which would turn ``"False"`` into ``True``.

    Example:
        >>> check_bool(True, "degrees")
        True
    """
    flag = _unwrap_scalar(value)
    if not isinstance(flag, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return flag


def _is_real(value: object) -> bool:
    """A real number that is not a bool (``True`` is an ``int`` in Python, but never a size or a distance)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _unwrap_scalar(value: object) -> object:
    """A 0-d tensor or array becomes its Python number; anything else is returned as is."""
    if isinstance(value, (str, bytes)) or getattr(value, "ndim", None) != 0 or not hasattr(value, "item"):
        return value
    try:
        return value.item()
    except (TypeError, ValueError, RuntimeError):
        return value


def _describe(
    integer: bool, minimum: float | None, maximum: float | None, positive: bool, allow_none: bool, unit: str | None
) -> str:
    """The expected kind of value, as the error message words it (e.g. ``"a positive number (mm) or None"``)."""
    if integer:
        if minimum is None:
            kind = "an integer" if maximum is None else f"an integer <= {maximum}"
        elif maximum is not None:
            kind = f"an integer in [{minimum}, {maximum}]"
        else:
            named = {0: "a non-negative integer", 1: "a positive integer"}
            kind = named[int(minimum)] if minimum in named else f"an integer >= {minimum}"
    elif positive and maximum is not None:
        kind = f"in (0, {maximum:g}]"
    elif positive:
        kind = "a positive number"
    elif minimum is not None and maximum is not None:
        kind = f"in [{minimum:g}, {maximum:g}]"
    elif minimum is not None:
        kind = f"a finite number >= {minimum:g}"
    elif maximum is not None:
        kind = f"a finite number <= {maximum:g}"
    else:
        kind = "a finite number"
    if unit:
        kind += f" ({unit})"
    return kind + (" or None" if allow_none else "")


def _check_real(
    value: object,
    name: str,
    *,
    integer: bool,
    minimum: float | None,
    maximum: float | None,
    positive: bool,
    allow_none: bool,
    unit: str | None,
    whole_floats: bool = True,
) -> float | int | None:
    """The one implementation behind :func:`check_number` and :func:`check_integer`."""
    if value is None and allow_none:
        return None
    number = _unwrap_scalar(value)
    result: float | int | None = None
    if _is_real(number):
        as_float = float(number)  # type: ignore[arg-type]
        if math.isfinite(as_float):
            if not integer:
                result = as_float
            elif isinstance(number, numbers.Integral):
                result = int(number)
            elif whole_floats and as_float.is_integer():  # whole floats (4.0, as YAML may give) are sizes too
                result = int(as_float)
    ok = result is not None
    if ok and positive and not result > 0:  # type: ignore[operator]
        ok = False
    if ok and minimum is not None and result < minimum:  # type: ignore[operator]
        ok = False
    if ok and maximum is not None and result > maximum:  # type: ignore[operator]
        ok = False
    if not ok:
        kind = _describe(integer, minimum, maximum, positive, allow_none, unit)
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return result


@overload
def check_number(
    value: object,
    name: str,
    *,
    positive: bool = ...,
    minimum: float | None = ...,
    maximum: float | None = ...,
    allow_none: Literal[False] = ...,
    unit: str | None = ...,
) -> float: ...
@overload
def check_number(
    value: object,
    name: str,
    *,
    positive: bool = ...,
    minimum: float | None = ...,
    maximum: float | None = ...,
    allow_none: bool,
    unit: str | None = ...,
) -> float | None: ...
def check_number(
    value: object,
    name: str,
    *,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    allow_none: bool = False,
    unit: str | None = None,
) -> float | None:
    """Return ``value`` as a ``float``; raise ``ValueError`` unless it is a finite real number in range.

    The float twin of :func:`check_integer`: the two share one implementation and one wording.

    Args:
        value: the argument as given (a Python or NumPy number, or a 0-d tensor or array).
        name: the argument's name, used in the message.
        positive: require ``value > 0``.
        minimum: require ``value >= minimum``.
        maximum: require ``value <= maximum``.
        allow_none: ``None`` is accepted (and returned).
        unit: unit shown in the message, e.g. ``"mm"``.

    Returns:
        ``float(value)``, or ``None`` for an allowed ``None``.

    Raises:
        ValueError: a bool, a string (``"0.5"`` is not parsed), any other non-number, NaN, ±inf, or a value out of
            range. The message names the argument and shows the value with ``repr``: ``"sdd must be a positive
            number (mm), got '1020'"``.

    Example:
        >>> check_number(0.5, "p_subsample", positive=True, maximum=1.0)
        0.5
    """
    return _check_real(
        value,
        name,
        integer=False,
        minimum=minimum,
        maximum=maximum,
        positive=positive,
        allow_none=allow_none,
        unit=unit,
    )


@overload
def check_integer(
    value: object,
    name: str,
    minimum: int | None = ...,
    *,
    maximum: int | None = ...,
    allow_none: Literal[False] = ...,
    unit: str | None = ...,
    whole_floats: bool = ...,
) -> int: ...
@overload
def check_integer(
    value: object,
    name: str,
    minimum: int | None = ...,
    *,
    maximum: int | None = ...,
    allow_none: bool,
    unit: str | None = ...,
    whole_floats: bool = ...,
) -> int | None: ...
def check_integer(
    value: object,
    name: str,
    minimum: int | None = 0,
    *,
    maximum: int | None = None,
    allow_none: bool = False,
    unit: str | None = None,
    whole_floats: bool = True,
) -> int | None:
    """Return ``value`` as an ``int``; raise ``ValueError`` unless it is a whole number ``>= minimum``.

    Whole floats (``4.0``, as YAML may give) are accepted; booleans, strings, fractions, NaN and ±inf are refused.
    Same rules and wording as :func:`check_number`.

    Args:
        value: the argument as given.
        name: the argument's name, used in the message.
        minimum: smallest accepted value (``None``: no lower bound).
        maximum: largest accepted value, if any.
        allow_none: ``None`` is accepted (and returned).
        unit: unit shown in the message, e.g. ``"pixels"``.
        whole_floats: accept ``4.0`` as ``4``; ``False`` for values used as given, where only an integer type works.

    Example:
        >>> check_integer(4.0, "batch_size", minimum=1)
        4
    """
    return _check_real(  # type: ignore[return-value]
        value,
        name,
        integer=True,
        minimum=minimum,
        maximum=maximum,
        positive=False,
        allow_none=allow_none,
        unit=unit,
        whole_floats=whole_floats,
    )


def _rigid_tolerance(dtype: torch.dtype) -> float:
    """Absolute tolerance on ``R^T R = I``, ``det R = 1`` and the last row of a pose given as a matrix.

    ``sqrt(eps)`` of the dtype, but at least 1e-4: a matrix written out with six decimals (error ~1e-6) passes in
    any dtype, while a scale, a shear, a reflection or a projective row (errors of order 1) does not.
    """
    return max(torch.finfo(dtype).eps ** 0.5, 1e-4)


def check_rigid(matrix: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` unless every (3, 3) or (4, 4) matrix of ``matrix`` (*, n, n) is a rotation / rigid pose.

    Checks ``R^T R = I`` and ``det R = +1`` (and a last row ``[0, 0, 0, 1]`` for 4 x 4) within
    ``max(sqrt(eps), 1e-4)`` of the dtype, naming the first offending batch index. NaN/inf are left to
    ``check_finite``. One device sync; skipped while compiling and on the meta device; never part of the autograd graph.
    """
    if torch.compiler.is_compiling() or matrix.device.type == "meta" or matrix.numel() == 0:
        return
    tolerance = _rigid_tolerance(matrix.dtype)
    with torch.no_grad():
        values = matrix.detach().to(torch.promote_types(matrix.dtype, torch.float32))
        rotation = values[..., :3, :3]
        identity = torch.eye(3, dtype=rotation.dtype, device=rotation.device)
        gram = (rotation.mT @ rotation - identity).abs().amax((-2, -1))
        determinant = torch.linalg.det(rotation)
        if matrix.shape[-1] == 4:
            last_row = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=values.dtype, device=values.device)
            row_error = (values[..., 3, :] - last_row).abs().amax(-1)
        else:
            row_error = torch.zeros_like(gram)
        bad = (gram > tolerance) | (determinant < 1.0 - tolerance) | (row_error > tolerance)
        if not bool(bad.any()):
            return
    index = tuple(int(i) for i in bad.nonzero()[0])
    where = "" if not index else f" at batch index {index[0] if len(index) == 1 else index}"
    if row_error[index] > tolerance:
        problem = f"its last row is {[round(v, 6) for v in values[index][3].tolist()]}, not [0, 0, 0, 1]"
    elif gram[index] > tolerance:
        problem = (
            f"its 3 x 3 block is not a rotation (max |R^T R - I| = {float(gram[index]):.3g} > {tolerance:.1g}: "
            "a scale or a shear?)"
        )
    else:
        problem = f"its 3 x 3 block is a reflection, not a rotation (det = {float(determinant[index]):.3g})"
    raise ValueError(f"{name}{where} is not a rigid transform: {problem}")


def check_same_device(reference: torch.Tensor, other: torch.Tensor, names: tuple[str, str]) -> None:
    """Raise ``ValueError`` if two tensors live on different devices."""
    if reference.device != other.device:
        raise ValueError(
            f"{names[1]} is on {other.device} but {names[0]} is on {reference.device}; "
            f"move them to the same device (e.g. drr.to({other.device}))"
        )


# cgroup (container) memory limits, v2 then v1: an allocation above them is killed, whatever the host has.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def _host_memory() -> int | None:
    """Bytes the host can ever give this process: physical RAM plus swap, capped by a cgroup limit (Linux)."""
    limits = []
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = None
    if physical is not None and physical > 0:
        swap = 0
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("SwapTotal:"):
                    swap = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        limits.append(physical + swap)
    for path in _CGROUP_LIMITS:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    return min(limits) if limits else None


def available_memory(device: torch.device | str) -> int | None:
    """An upper bound on the bytes a new allocation on ``device`` can get, or ``None`` where it is unknown.

    CUDA: the device's free memory plus what PyTorch's caching allocator holds unused. CPU: physical RAM plus
    swap, capped by a cgroup limit (read with ``os.sysconf`` and ``/proc``; ``None`` where they do not exist). A
    request above this bound cannot succeed; one below it may still fail (other processes, fragmentation).
    """
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "cpu":
        return _host_memory()
    return None


def _format_bytes(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} TiB"  # unreachable


def check_memory(n_bytes: int, device: torch.device | str, what: str) -> None:
    """Raise ``ValueError`` if ``n_bytes`` (a lower bound of what a call needs) exceeds :func:`available_memory`.

    Args:
        n_bytes: bytes the call will certainly allocate.
        device: where it allocates them.
        what: the request in the caller's words, naming the arguments that set its size
            (e.g. ``"a batch of 2 poses on a 100000 x 100000 detector (height x width)"``).
    """
    available = available_memory(device)
    if available is not None and n_bytes > available:
        raise ValueError(
            f"{what} needs at least {_format_bytes(n_bytes)} on {torch.device(device)}, but only "
            f"{_format_bytes(available)} can be allocated there; render fewer or smaller images"
        )
