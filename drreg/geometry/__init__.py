"""Rotations, rigid poses and the X-ray detector.

Modules, one idea each: :mod:`~drreg.geometry.so3` (the SO(3) exponential and logarithm, the geodesic distance,
the small-angle series), :mod:`~drreg.geometry.quaternion`, :mod:`~drreg.geometry.euler`,
:mod:`~drreg.geometry.rotations` (the other parameterizations and the dispatch by name),
:mod:`~drreg.geometry.parameterizations` (their names and the one check of them), :mod:`~drreg.geometry.se3`
(homogeneous matrices; SE(3) exp/log, drreg's column-vector ``twist_to_matrix`` / ``matrix_to_twist`` and PyTorch3D's
row-vector ``se3_exp_map`` / ``se3_log_map``), :mod:`~drreg.geometry.pose` (``RigidTransform``, ``convert``) and
:mod:`~drreg.geometry.detector`.
"""

from drreg.geometry.detector import MAX_DISTANCE_MM, MIN_DISTANCE_MM, Detector, intrinsic_matrix
from drreg.geometry.euler import EULER_CONVENTIONS, euler_angles_to_matrix, matrix_to_euler_angles
from drreg.geometry.parameterizations import (
    POSE_PARAMETERIZATIONS,
    ROTATION_PARAMETERIZATIONS,
    ROTATION_SIZES,
    check_parameterization,
)
from drreg.geometry.pose import (
    RigidTransform,
    convert,
    pose_vectors_to_transform,
    random_rigid_transform,
    transform_to_pose_vectors,
    translation_distance,
)
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
    matrix_to_quaternion_adjugate,
    matrix_to_rotation,
    matrix_to_rotation_6d,
    matrix_to_rotation_9d,
    matrix_to_rotation_10d,
    quaternion_adjugate_to_matrix,
    quaternion_adjugate_to_quaternion,
    quaternion_to_quaternion_adjugate,
    quaternion_to_rotation_10d,
    rotation_6d_to_matrix,
    rotation_9d_to_matrix,
    rotation_10d_to_matrix,
    rotation_10d_to_quaternion,
    rotation_to_matrix,
)
from drreg.geometry.se3 import homogeneous, make_matrix, matrix_to_twist, se3_exp_map, se3_log_map, twist_to_matrix
from drreg.geometry.so3 import (
    DEFAULT_ACOS_BOUND,
    acos_linear_extrapolation,
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    hat,
    hat_inv,
    matrix_to_axis_angle,
    quaternion_to_axis_angle,
    rotation_geodesic_distance,
    skew,
    so3_exp_map,
    so3_exponential_map,
    so3_log_map,
    so3_relative_angle,
    so3_rotation_angle,
)

__all__ = [
    # so3
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
    "rotation_geodesic_distance",
    "skew",
    "hat",
    "hat_inv",
    "DEFAULT_ACOS_BOUND",
    "acos_linear_extrapolation",
    "so3_rotation_angle",
    "so3_relative_angle",
    "so3_exp_map",
    "so3_exponential_map",
    "so3_log_map",
    # euler
    "EULER_CONVENTIONS",
    "euler_angles_to_matrix",
    "matrix_to_euler_angles",
    # quaternion
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "standardize_quaternion",
    "quaternion_raw_multiply",
    "quaternion_multiply",
    "quaternion_invert",
    "quaternion_apply",
    # rotations
    "quaternion_adjugate_to_matrix",
    "matrix_to_quaternion_adjugate",
    "quaternion_adjugate_to_quaternion",
    "quaternion_to_quaternion_adjugate",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "rotation_9d_to_matrix",
    "matrix_to_rotation_9d",
    "rotation_10d_to_matrix",
    "matrix_to_rotation_10d",
    "rotation_10d_to_quaternion",
    "quaternion_to_rotation_10d",
    "rotation_to_matrix",
    "matrix_to_rotation",
    # parameterizations
    "ROTATION_PARAMETERIZATIONS",
    "POSE_PARAMETERIZATIONS",
    "ROTATION_SIZES",
    "check_parameterization",
    # se3
    "homogeneous",
    "make_matrix",
    "twist_to_matrix",
    "matrix_to_twist",
    "se3_exp_map",
    "se3_log_map",
    # pose
    "RigidTransform",
    "convert",
    "random_rigid_transform",
    "translation_distance",
    "pose_vectors_to_transform",
    "transform_to_pose_vectors",
    # detector
    "Detector",
    "intrinsic_matrix",
    "MIN_DISTANCE_MM",
    "MAX_DISTANCE_MM",
]
