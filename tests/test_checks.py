"""The input-check helpers every public boundary calls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from drreg._checks import (
    available_memory,
    check_bool,
    check_choice,
    check_integer,
    check_memory,
    check_number,
    check_shape,
)


@pytest.mark.parametrize(("value", "minimum", "expected"), [(4, 1, 4), (4.0, 1, 4), (0, 0, 0), (2, 2, 2)])
def test_check_integer_accepts_whole_numbers(value, minimum, expected):
    result = check_integer(value, "x", minimum=minimum)
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    ("value", "minimum", "match"),
    [
        (0, 1, "x must be a positive integer, got 0"),
        (-1, 0, "x must be a non-negative integer, got -1"),
        (1, 2, "x must be an integer >= 2, got 1"),
        (2.5, 1, "positive integer, got 2.5"),
        (True, 0, "got True"),
        ("4", 1, "got '4'"),
        (math.nan, 0, "got nan"),
        (None, 0, "got None"),
    ],
)
def test_check_integer_names_the_argument_and_the_value(value, minimum, match):
    with pytest.raises(ValueError, match=match):
        check_integer(value, "x", minimum=minimum)


def test_check_shape_binds_names_and_reports_both_shapes():
    assert check_shape(torch.zeros(2, 5, 3), "B N 3", "points") == {"B": 2, "N": 5}
    with pytest.raises(ValueError, match=r"points must be \(B, N, 3\), got \(2, 5\)"):
        check_shape(torch.zeros(2, 5), "B N 3", "points")


def test_check_choice_lists_the_choices():
    with pytest.raises(ValueError, match="unknown renderer 'sid'; expected one of: 'siddon', 'trilinear'"):
        check_choice("sid", ("siddon", "trilinear"), "renderer")


# -- check_number: the float twin of check_integer, one wording (issue 10) ----------------------------------------


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        (0.5, dict(positive=True, maximum=1.0), 0.5),
        (3, dict(minimum=0.0), 3.0),
        (-2.5, {}, -2.5),
        (np.float32(2.0), dict(positive=True), 2.0),
        (torch.tensor(4.0), {}, 4.0),
        (None, dict(allow_none=True), None),
    ],
)
def test_check_number_accepts_real_numbers_issue10(value, options, expected):
    # Python, NumPy and 0-d tensor numbers are accepted and returned as float.
    result = check_number(value, "x", **options)
    assert result == expected and (result is None or type(result) is float)


@pytest.mark.parametrize(
    ("value", "options", "match"),
    [
        (True, dict(positive=True), "x must be a positive number, got True"),
        ("0.5", dict(positive=True, maximum=1.0), r"x must be in \(0, 1\], got '0.5'"),
        (math.nan, {}, "x must be a finite number, got nan"),
        (math.inf, dict(minimum=0.0), "x must be a finite number >= 0, got inf"),
        (-1.0, dict(minimum=0.0), "x must be a finite number >= 0, got -1.0"),
        (0.0, dict(positive=True, unit="mm"), r"x must be a positive number \(mm\), got 0.0"),
        (2.0, dict(positive=True, maximum=1.0, allow_none=True), r"x must be in \(0, 1\] or None, got 2.0"),
        (None, dict(positive=True), "x must be a positive number, got None"),
        (torch.ones(2), {}, r"got tensor\(\[1., 1.\]\)"),
    ],
)
def test_check_number_refuses_and_names_the_argument_issue10(value, options, match):
    # Booleans, strings, NaN/inf and out-of-range values get one clear error naming the argument and the value.
    with pytest.raises(ValueError, match=match):
        check_number(value, "x", **options)


@pytest.mark.parametrize(
    ("value", "options", "match"),
    [
        (True, dict(minimum=1, unit="pixels"), r"height must be a positive integer \(pixels\), got True"),
        ("64", dict(minimum=1), "height must be a positive integer, got '64'"),
        (math.inf, dict(minimum=1), "got inf"),
        (5, dict(minimum=1, maximum=4), r"height must be an integer in \[1, 4\], got 5"),
        (3.0, dict(minimum=1, whole_floats=False), "height must be a positive integer, got 3.0"),
    ],
)
def test_check_integer_shares_the_wording_issue10(value, options, match):
    # check_integer refuses what check_number refuses, plus fractions (and whole floats on request).
    with pytest.raises(ValueError, match=match):
        check_integer(value, "height", **options)


def test_check_integer_without_bounds_issue10():
    # minimum=None accepts any integer (seeds), and still refuses non-integers by name.
    assert check_integer(-3, "seed", minimum=None) == -3
    with pytest.raises(ValueError, match="seed must be an integer, got 'a'"):
        check_integer("a", "seed", minimum=None)


def test_check_memory_names_the_request_issue10():
    # A request beyond what the host can ever give is refused up front, naming its size.
    available = available_memory("cpu")
    assert available is None or available > 0
    if available is None:
        pytest.skip("this platform reports no memory size (os.sysconf / /proc absent)")
    with pytest.raises(ValueError, match=r"a 10 x 10 detector \(height x width\) needs at least .* on cpu"):
        check_memory(2 * available + 1, "cpu", "a 10 x 10 detector (height x width)")
    check_memory(1024, "cpu", "a tiny request")


@pytest.mark.parametrize("value", ["False", "true", "", 0, 1, 2.0, None, [True], np.array([True])])
def test_check_bool_refuses_what_is_not_a_bool_issue10(value: object) -> None:
    # A flag given as a string or a number was read by its truthiness ("False" is True); found by tests/fuzz.
    with pytest.raises(ValueError, match="degrees must be True or False, got"):
        check_bool(value, "degrees")
    assert check_bool(np.True_, "degrees") is True and check_bool(torch.tensor(False), "degrees") is False
