"""Tests for drreg.geometry.parameterizations: the names, their sizes and the one parameterization check."""

from __future__ import annotations

import pytest

from drreg.geometry.euler import EULER_CONVENTIONS
from drreg.geometry.parameterizations import (
    POSE_PARAMETERIZATIONS,
    ROTATION_PARAMETERIZATIONS,
    ROTATION_SIZES,
    check_parameterization,
)


def test_names_and_sizes() -> None:
    assert POSE_PARAMETERIZATIONS == (*ROTATION_PARAMETERIZATIONS, "se3_log_map")
    assert set(ROTATION_SIZES) == set(POSE_PARAMETERIZATIONS) - {"matrix"}


@pytest.mark.parametrize(
    ("parameterization", "convention", "degrees"),
    [(p, None, False) for p in POSE_PARAMETERIZATIONS if p != "euler_angles"]
    + [("euler_angles", c, d) for c in EULER_CONVENTIONS for d in (False, True)],
)
def test_valid_choices_pass(parameterization: str, convention: str | None, degrees: bool) -> None:
    assert check_parameterization(parameterization, convention, degrees=degrees) is None


@pytest.mark.parametrize(
    ("arguments", "keywords", "match"),
    [
        (("euler",), {}, r"unknown parameterization 'euler'; expected one of: 'axis_angle'.*'se3_log_map'"),
        (("euler_angles",), {}, r"euler_angles needs a convention; expected one of: 'XYZ', 'XZY'.*'ZYZ'"),
        (("euler_angles", "ABC"), {}, r"unknown Euler convention 'ABC'; expected one of: 'XYZ'"),
        (("axis_angle",), {"degrees": True}, r"degrees=True only applies to euler_angles, not 'axis_angle'"),
        (("euler_angles", "ZXY"), {"degrees": "False"}, r"degrees must be True or False, got 'False'"),
        (("matrix",), {"choices": ("axis_angle", "quaternion")}, r"unknown parameterization 'matrix'; .*'quaternion'$"),
    ],
    ids=["unknown", "no_convention", "unknown_convention", "degrees_not_euler", "degrees_string", "not_a_choice"],
)
def test_refusals(arguments: tuple[object, ...], keywords: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_parameterization(*arguments, **keywords)  # type: ignore[arg-type]
