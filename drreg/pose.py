"""DiffDRR-compatible import path: ``from drreg.pose import convert, RigidTransform``.

The implementation lives in :mod:`drreg.geometry.pose` and :mod:`drreg.geometry.se3`.
"""

from drreg.geometry.pose import RigidTransform, convert
from drreg.geometry.se3 import se3_exp_map, se3_log_map

__all__ = ["RigidTransform", "convert", "se3_exp_map", "se3_log_map"]
