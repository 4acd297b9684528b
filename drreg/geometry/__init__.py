"""Rotations, rigid poses and the X-ray detector.

Modules, one idea each: :mod:`~drreg.geometry.so3` (the SO(3) exponential and logarithm, the geodesic distance,
the small-angle series), :mod:`~drreg.geometry.quaternion`, :mod:`~drreg.geometry.euler`,
:mod:`~drreg.geometry.rotations` (the other parameterizations and the dispatch by name),
:mod:`~drreg.geometry.parameterizations` (their names and the one check of them), :mod:`~drreg.geometry.se3`
(homogeneous matrices, SE(3) exp/log), :mod:`~drreg.geometry.pose` (``RigidTransform``, ``convert``) and
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
    transform_to_pose_vectors,
    translation_distance,
)
from drreg.geometry.quaternion import matrix_to_quaternion, quaternion_to_matrix
from drreg.geometry.rotations import (
    matrix_to_quaternion_adjugate,
    matrix_to_rotation,
    matrix_to_rotation_6d,
    matrix_to_rotation_9d,
    matrix_to_rotation_10d,
    quaternion_adjugate_to_matrix,
    rotation_6d_to_matrix,
    rotation_9d_to_matrix,
    rotation_10d_to_matrix,
    rotation_to_matrix,
)
from drreg.geometry.se3 import homogeneous, se3_exp_map, se3_log_map
from drreg.geometry.so3 import axis_angle_to_matrix, matrix_to_axis_angle, rotation_geodesic_distance, skew

__all__ = [
    # so3
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rotation_geodesic_distance",
    "skew",
    # euler
    "EULER_CONVENTIONS",
    "euler_angles_to_matrix",
    "matrix_to_euler_angles",
    # quaternion
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    # rotations
    "quaternion_adjugate_to_matrix",
    "matrix_to_quaternion_adjugate",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "rotation_9d_to_matrix",
    "matrix_to_rotation_9d",
    "rotation_10d_to_matrix",
    "matrix_to_rotation_10d",
    "rotation_to_matrix",
    "matrix_to_rotation",
    # parameterizations
    "ROTATION_PARAMETERIZATIONS",
    "POSE_PARAMETERIZATIONS",
    "ROTATION_SIZES",
    "check_parameterization",
    # se3
    "homogeneous",
    "se3_exp_map",
    "se3_log_map",
    # pose
    "RigidTransform",
    "convert",
    "translation_distance",
    "pose_vectors_to_transform",
    "transform_to_pose_vectors",
    # detector
    "Detector",
    "intrinsic_matrix",
    "MIN_DISTANCE_MM",
    "MAX_DISTANCE_MM",
]
