"""The one property of the fuzz suite, and the strategies its tests share (issue 10).

The property: a public call given generated arguments either returns finite output of the documented shape, or
raises ``ValueError``/``TypeError`` whose message names the offending argument. Anything else is a bug: NaN/inf
output from finite input, an invalid argument accepted silently, another exception from inside (RuntimeError,
IndexError, ZeroDivisionError, AttributeError...), a ``RuntimeWarning`` (a NumPy overflow) or a hang.

Each generated argument is an :class:`Arg`: its value and whether the documented contract accepts it. A call with
an invalid argument must raise and name it; a call with valid arguments only must succeed, or raise for a reason
the test lists (``situations``: a volume the camera cannot see, a call too large for memory...).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from hypothesis import event
from hypothesis import strategies as st

__all__ = [
    "Arg",
    "Values",
    "arguments",
    "choices",
    "check_call",
    "check_output",
    "flags",
    "integers",
    "numbers",
    "tensors",
    "invalid_words",
]

ACCEPTED_ERRORS = (ValueError, TypeError)
# NumPy's floating-point warnings (drreg's own RuntimeWarnings, e.g. a kernel fallback, are not numerical faults).
_NUMERIC_WARNING = re.compile("overflow|underflow|invalid value|divide by zero")


@dataclass(frozen=True)
class Values:
    """The valid and the invalid values of an argument, as two strategies."""

    valid: st.SearchStrategy[Any]
    invalid: st.SearchStrategy[Any]

    def args(self, invalid: bool | None = None) -> st.SearchStrategy[Arg]:
        """Tagged values: valid ones (``invalid=False``), invalid ones (``True``) or either (``None``)."""
        good = self.valid.map(lambda x: Arg(x, True))
        bad = self.invalid.map(lambda x: Arg(x, False))
        return good if invalid is False else bad if invalid else st.one_of(good, bad)


def choices(valid: Iterable[Any], invalid: Iterable[Any]) -> Values:
    """An argument with a fixed list of valid values."""
    return Values(st.sampled_from(tuple(valid)), st.sampled_from(tuple(invalid)))


@st.composite
def arguments(draw: st.DrawFn, values: dict[str, Values], required: Iterable[str] = ()) -> dict[str, Arg]:
    """Arguments of one call: the ``required`` ones and a random subset of the others, at most one of them invalid
    (none in half of the examples), so that an error must name that one."""
    required = tuple(required)
    present = [name for name in values if name in required or draw(st.booleans())]
    bad = draw(st.sampled_from([None] * len(present) + present)) if present else None
    return {name: draw(values[name].args(invalid=name == bad)) for name in present}


@dataclass(frozen=True)
class Arg:
    """A generated argument: its value and whether the documented contract accepts it."""

    value: Any
    valid: bool

    def __repr__(self) -> str:
        return f"{_short(self.value)}{'' if self.valid else ' (invalid)'}"


def _short(value: object) -> str:
    if isinstance(value, torch.Tensor) and value.numel() > 6:
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    return repr(value)


def invalid_words(args: dict[str, Arg], words: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """The words naming the invalid arguments of ``args``: an argument's name, or the words of ``words[name]``."""
    words = words or {}
    return [word for name, arg in args.items() if not arg.valid for word in words.get(name, (name,))]


def check_call(
    call: Callable[[], Any],
    *,
    names: Iterable[str],
    invalid: Iterable[str] = (),
    situations: Iterable[str] = (),
    check: Callable[[Any], None] | None = None,
    label: str = "call",
) -> Any:
    """Run ``call()`` and assert the property; return its result, or ``None`` when it raised an accepted error.

    Args:
        call: the call under test.
        names: words one of which an error message must hold when every argument is valid (the arguments'
            names as the messages spell them); ``situations`` are accepted there too.
        invalid: words naming the arguments generated invalid: then the call must raise ``ValueError`` or
            ``TypeError`` naming one of them (or one of ``situations``, which may come first).
        situations: message fragments of errors that valid arguments may meet.
        check: asserts the result (shape, finiteness) when the call returns.
        label: names the call in hypothesis' statistics (``--hypothesis-show-statistics``).
    """
    invalid = list(invalid)
    expected = [*(invalid or names), *situations]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except ACCEPTED_ERRORS as error:
            message = str(error)
            assert any(word in message for word in expected), (
                f"{type(error).__name__} names none of {expected}: {message}"
            )
            event(f"{label}: raised {type(error).__name__}: {message[:60]}")
            return None
    numeric = [w for w in caught if issubclass(w.category, RuntimeWarning) and _NUMERIC_WARNING.search(str(w.message))]
    assert not numeric, f"RuntimeWarning (a numerical fault): {numeric[0].message}"
    assert not invalid, f"invalid argument(s) {invalid} accepted silently"
    if check is not None:
        check(result)
    event(f"{label}: returned")
    return result


def check_output(tensor: object, shape: tuple[int, ...] | None, what: str = "output") -> torch.Tensor:
    """Assert that ``tensor`` is a tensor of ``shape`` (if given) holding only finite values."""
    assert isinstance(tensor, torch.Tensor), f"{what} is a {type(tensor).__name__}, not a tensor"
    if shape is not None:
        assert tuple(tensor.shape) == tuple(shape), f"{what} has shape {tuple(tensor.shape)}, expected {shape}"
    if tensor.is_floating_point() or tensor.is_complex():
        bad = int((~torch.isfinite(tensor)).sum())
        assert bad == 0, f"{what} holds {bad} NaN/inf value(s) of {tensor.numel()}"
    return tensor


# ------------------------------------------------------------------------------------------ numbers

# Values that are never a number, whatever the argument.
_NOT_NUMBERS = (
    True,
    False,
    "1",
    "0.5",
    b"2",
    [1.0],
    (2.0,),
    complex(1.0, 0.0),
    float("nan"),
    float("inf"),
    float("-inf"),
    np.float64("nan"),
    torch.tensor(float("nan")),
    torch.tensor([1.0, 2.0]),
    torch.tensor([3.0]),
    np.array([1.0]),
    torch.tensor(True),
    object(),
)


def _float_forms(value: float, accepted: Callable[[float], bool]) -> st.SearchStrategy[Any]:
    """The same number as a Python float, a NumPy scalar, a 0-d tensor (float32 forms only where rounding to
    float32 keeps the value ``accepted``)."""
    forms: list[Any] = [value, np.float64(value), torch.tensor(value, dtype=torch.float64)]
    if abs(value) < 1e30 and accepted(float(np.float32(value))):
        forms += [np.float32(value), torch.tensor(value, dtype=torch.float32)]
    if value == int(value) and abs(value) < 2**53:
        forms.append(Fraction(int(value)))
    return st.sampled_from(forms)


def numbers(
    *,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    allow_none: bool = False,
    typical: tuple[float, float] = (-100.0, 100.0),
    extremes: bool = True,
) -> Values:
    """Real numbers as ``check_number`` accepts them (valid) and everything it refuses (invalid).

    Args:
        positive, minimum, maximum, allow_none: the contract of the argument (as passed to ``check_number``).
        typical: the range of ordinary valid values.
        extremes: also draw valid extremes (subnormal and huge magnitudes) that the contract allows.
    """
    low = typical[0] if minimum is None else max(typical[0], minimum)
    high = typical[1] if maximum is None else min(typical[1], maximum)
    if positive:
        low = max(low, 1e-3)
    ordinary = st.floats(low, high, allow_nan=False, allow_infinity=False)
    candidates = [5e-324, 1e-300, 1e-12, 1e12, 1e30, 1e300, 1.7976931348623157e308] if extremes else []
    candidates += [-c for c in candidates]

    def accepted(x: float) -> bool:
        return (not positive or x > 0) and (minimum is None or x >= minimum) and (maximum is None or x <= maximum)

    edge = [x for x in [*candidates, minimum, maximum] if x is not None and accepted(x)]
    valid = st.one_of(ordinary, *([st.sampled_from(edge)] if edge else [])).flatmap(lambda x: _float_forms(x, accepted))
    refused = list(_NOT_NUMBERS)
    if positive:
        refused += [0.0, 0, -1.0, -1e-300]
    if minimum is not None:
        refused += [minimum - max(1.0, 1e-6 * abs(minimum)), minimum - 1e-9 * max(1.0, abs(minimum))]
    if maximum is not None:
        refused += [maximum + max(1.0, 1e-6 * abs(maximum)), maximum * 1.5 if maximum > 0 else maximum + 0.5]
    if not allow_none:
        refused.append(None)
    return Values(valid | st.just(None) if allow_none else valid, st.sampled_from(refused))


def integers(
    *,
    minimum: int = 0,
    maximum: int | None = None,
    allow_none: bool = False,
    typical: tuple[int, int] = (0, 16),
    huge: bool = True,
    whole_floats: bool = True,
) -> Values:
    """Whole numbers as ``check_integer`` accepts them (valid) and everything it refuses (invalid).

    The huge valid values (10**11 and up) are too large for any allocation, so a call that uses them as a size
    must refuse them up front rather than try.
    """
    low, high = max(typical[0], minimum), typical[1] if maximum is None else min(typical[1], maximum)

    def forms(n: int) -> st.SearchStrategy[Any]:
        values: list[Any] = [n, np.int64(n) if abs(n) < 2**63 else n, torch.tensor(n) if abs(n) < 2**63 else n]
        if whole_floats:
            values += [float(n), np.float64(n)]
        return st.sampled_from(values)

    big = [10**11, 2**40, 2**63 - 1, 2**64, 10**30] if huge and maximum is None else []
    valid = st.one_of(st.integers(low, high), *([st.sampled_from(big)] if big else [])).flatmap(forms)
    refused: list[Any] = [*_NOT_NUMBERS, 2.5, minimum - 1, minimum - 2**40, torch.tensor(2.5)]
    if not whole_floats:
        refused += [float(max(low, 1)), np.float64(max(low, 1))]
    if maximum is not None:
        refused.append(maximum + 1)
    if not allow_none:
        refused.append(None)
    return Values(valid | st.just(None) if allow_none else valid, st.sampled_from(refused))


def flags(*, allow_none: bool = False) -> Values:
    """Booleans (valid) and the values a flag is often given by mistake (strings, numbers: invalid)."""
    valid = st.sampled_from([True, False, np.True_, np.False_])
    refused = st.sampled_from(["False", "true", "no", "", 0, 1, 2.0, [True], *([] if allow_none else [None])])
    return Values(valid, refused)


# ------------------------------------------------------------------------------------------ tensors

FILLS = ("normal", "normal", "uniform", "constant", "zero", "nan", "inf", "huge", "tiny", "round")
FLOAT_DTYPES = (torch.float32, torch.float64)
ODD_DTYPES = (torch.float16, torch.bfloat16, torch.int64, torch.int16, torch.uint8, torch.bool, torch.complex64)


@st.composite
def tensors(
    draw: st.DrawFn,
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]],
    *,
    dtypes: st.SearchStrategy[torch.dtype] | None = None,
    fills: Iterable[str] = FILLS,
    scale: float = 1.0,
    offset: float = 0.0,
) -> torch.Tensor:
    """A tensor of ``shape`` filled one of ``fills`` ways from a drawn seed (cheap to make at any size).

    ``nan``/``inf`` put one non-finite value among normal ones; ``huge`` and ``tiny`` scale by 1e30 / 1e-30
    (which the dtype may turn into inf or 0); ``round`` rounds to integers.
    """
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    dtype = draw(dtypes if dtypes is not None else st.sampled_from(FLOAT_DTYPES))
    fill = draw(st.sampled_from(tuple(fills)))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(shape, generator=generator, dtype=torch.float64)
    if fill == "uniform":
        values = torch.rand(shape, generator=generator, dtype=torch.float64)
    elif fill == "constant":
        values = torch.full(shape, float(draw(st.sampled_from([-3.0, 1.0, 1e-3, 7.5]))), dtype=torch.float64)
    elif fill == "zero":
        values = torch.zeros(shape, dtype=torch.float64)
    elif fill in ("nan", "inf") and values.numel():
        flat = values.flatten()
        flat[draw(st.integers(0, flat.numel() - 1))] = math.nan if fill == "nan" else -math.inf
        values = flat.reshape(shape)
    elif fill == "huge":
        values = values * 1e30
    elif fill == "tiny":
        values = values * 1e-30
    elif fill == "round":
        values = values.mul(4.0).round()
    values = values * scale + offset
    if dtype.is_complex:
        return values.to(dtype)
    if dtype == torch.bool:
        return values > 0
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        values = values.nan_to_num(0.0, posinf=info.max, neginf=info.min).clamp(info.min, info.max)
    return values.to(dtype)


def shapes(min_dims: int = 0, max_dims: int = 5, max_side: int = 5) -> st.SearchStrategy[tuple[int, ...]]:
    """Tensor shapes, 0- and 1-sized sides included."""
    return st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def is_finite_float(x: torch.Tensor) -> bool:
    """A floating tensor with only finite values."""
    return x.is_floating_point() and bool(torch.isfinite(x).all())
