"""The input-check helpers every public boundary calls."""

from __future__ import annotations

import math

import pytest
import torch

from drreg._checks import check_choice, check_integer, check_shape


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
