"""DiffDRR-compatible import path: ``from drreg.pose import convert, RigidTransform``.

The implementation lives in :mod:`drreg.geometry.pose`.
"""

from drreg.geometry.pose import RigidTransform, convert, se3_exp_map, se3_log_map

__all__ = ["RigidTransform", "convert", "se3_exp_map", "se3_log_map"]
