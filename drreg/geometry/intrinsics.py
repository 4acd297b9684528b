"""Pinhole intrinsic matrices of a detector, in DiffDRR 0.6.1's convention and in drreg's pixel convention.

Two matrices describe the same detector (docs/conventions.md, "The camera"):

- :func:`make_intrinsic_matrix` (DiffDRR's ``Detector.intrinsic``):
  ``[[sdd/delx, 0, u0], [0, sdd/dely, v0], [0, 0, 1]]`` with ``u0 = x0/delx + W/2``, ``v0 = y0/dely + H/2``
  where ``x0``, ``y0`` are the detector's *principal point*
  (``Detector.x0``, minus the DRR's ``x0`` argument). It maps camera points to coordinates that are then flipped
  (``row = H - v``; ``column = W - u`` with ``reverse_x_axis``) by ``DRR.perspective_projection``.
- :func:`intrinsic_matrix` (drreg's): the same map with those flips folded in, so that it gives the continuous pixel
  coordinates ``(column, row)`` directly; its ``x0``, ``y0`` are the DRR's arguments (the detector centre).
"""

from __future__ import annotations

from typing import Any

import torch

from drreg._checks import check_bool, check_integer, check_number

__all__ = [
    "intrinsic_matrix",
    "make_intrinsic_matrix",
    "get_focal_length",
    "get_principal_point",
    "parse_intrinsic_matrix",
    "MIN_DISTANCE_MM",
    "MAX_DISTANCE_MM",
    "check_distance",
]

# The range of distances, spacings and offsets accepted (mm), 1 nm to 1000 km: far wider than any X-ray set-up, and
# far inside where intrinsics (sdd / delx) or float32 ray lengths overflow into NaN pixels (issue 10).
MIN_DISTANCE_MM = 1e-6
MAX_DISTANCE_MM = 1e9


def check_distance(value: object, name: str) -> float:
    """``sdd``, ``delx`` or ``dely`` in [MIN_DISTANCE_MM, MAX_DISTANCE_MM]; ``x0``, ``y0`` within +-MAX_DISTANCE_MM."""
    offset = name in ("x0", "y0")
    number = check_number(value, name, positive=not offset, unit="mm")  # the usual wording for <= 0, NaN, "1020"
    minimum = -MAX_DISTANCE_MM if offset else MIN_DISTANCE_MM
    return check_number(number, name, minimum=minimum, maximum=MAX_DISTANCE_MM, unit="mm")


def intrinsic_matrix(
    sdd: float,
    delx: float,
    dely: float,
    height: int,
    width: int,
    x0: float = 0.0,
    y0: float = 0.0,
    reverse_x_axis: bool = True,
) -> torch.Tensor:
    """drreg's pinhole intrinsics (3, 3), mapping camera points (mm) to continuous pixel coordinates (column, row).

    Args:
        x0: the detector centre along camera x (mm): the DRR's ``x0`` argument.
        y0: the detector centre along camera y (mm): the DRR's ``y0`` argument.

    Convention:
        pixel ``(row r, column c)`` has its centre at continuous coordinates ``(c + 1/2, r + 1/2)``: the
        origin is the top-left corner of the image; columns run right-to-left in the camera x direction
        when ``reverse_x_axis`` (radiological view). Not DiffDRR's ``Detector.intrinsic``
        (:func:`make_intrinsic_matrix`), which leaves those flips to ``perspective_projection``.

    Raises:
        ValueError: a distance or spacing outside [1e-6, 1e9] mm, an offset outside +-1e9 mm, a size that is not a
            positive integer.

    Example:
        >>> intrinsic_matrix(1000.0, 1.0, 1.0, 100, 100)[0]
        tensor([-1000.,     0.,    50.], dtype=torch.float64)
    """
    for name, value in (("sdd", sdd), ("delx", delx), ("dely", dely), ("x0", x0), ("y0", y0)):
        check_distance(value, name)
    height, width = check_integer(height, "height", minimum=1), check_integer(width, "width", minimum=1)
    check_bool(reverse_x_axis, "reverse_x_axis")
    sign_x = -1.0 if reverse_x_axis else 1.0
    return torch.tensor(
        [
            [sign_x * sdd / delx, 0.0, width / 2 - sign_x * x0 / delx],
            [0.0, -sdd / dely, height / 2 + y0 / dely],
            [0.0, 0.0, 1.0],
        ],
        dtype=torch.float64,
    )


def make_intrinsic_matrix(detector: Any) -> torch.Tensor:
    """DiffDRR's intrinsic matrix (3, 3) of a detector, in torch's default dtype.

    Args:
        detector: anything with ``sdd``, ``delx``, ``dely``, ``x0``, ``y0`` (the principal point, DiffDRR's
            ``Detector.x0``: minus the DRR's ``x0`` argument), ``height`` and ``width``.

    Returns:
        ``[[sdd/delx, 0, x0/delx + W/2], [0, sdd/dely, y0/dely + H/2], [0, 0, 1]]``.

    Example:
        >>> from types import SimpleNamespace
        >>> make_intrinsic_matrix(SimpleNamespace(sdd=100.0, delx=2.0, dely=2.0, x0=2.0, y0=0.0, height=4, width=6))
        tensor([[50.,  0.,  4.],
                [ 0., 50.,  2.],
                [ 0.,  0.,  1.]])
    """
    focal_x = detector.sdd / detector.delx
    focal_y = detector.sdd / detector.dely
    centre_x = detector.x0 / detector.delx + detector.width / 2
    centre_y = detector.y0 / detector.dely + detector.height / 2
    return torch.tensor([[focal_x, 0.0, centre_x], [0.0, focal_y, centre_y], [0.0, 0.0, 1.0]])


def get_focal_length(intrinsic: torch.Tensor, delx: float, dely: float) -> float:
    """The source-to-detector distance (mm) of an intrinsic matrix (3, 3): the mean of ``|fx delx|`` and ``|fy dely|``.

    Convention: as DiffDRR, ``|fx delx + fy dely| / 2`` (so both focal lengths must have the same sign).

    Example:
        >>> get_focal_length(torch.tensor([[500.0, 0, 0], [0, 500.0, 0], [0, 0, 1]]), 2.0, 2.0)
        1000.0
    """
    return abs(intrinsic[0, 0] * delx + intrinsic[1, 1] * dely).item() / 2.0


def get_principal_point(
    intrinsic: torch.Tensor, height: int, width: int, delx: float, dely: float
) -> tuple[float, float]:
    """The principal point ``(x0, y0)`` (mm from the detector centre) of an intrinsic matrix (3, 3).

    Convention: DiffDRR's ``Detector.x0`` / ``y0``: ``delx (u0 - W/2)``, ``dely (v0 - H/2)``.
    """
    x0 = delx * (intrinsic[0, 2] - width / 2)
    y0 = dely * (intrinsic[1, 2] - height / 2)
    return x0.item(), y0.item()


def parse_intrinsic_matrix(
    intrinsic: torch.Tensor, height: int, width: int, delx: float, dely: float
) -> tuple[float, float, float]:
    """``(focal_length, x0, y0)`` of an intrinsic matrix (3, 3), see :func:`get_focal_length` and
    :func:`get_principal_point`."""
    focal_length = get_focal_length(intrinsic, delx, dely)
    x0, y0 = get_principal_point(intrinsic, height, width, delx, dely)
    return focal_length, x0, y0
