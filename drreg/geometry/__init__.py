"""Rotations, rigid poses and the X-ray detector."""

from drreg.geometry.pose import (
    POSE_PARAMETERIZATIONS,
    RigidTransform,
    convert,
    rotation_geodesic_distance,
    se3_exp_map,
    se3_log_map,
    translation_distance,
)
from drreg.geometry.rotations import (
    EULER_CONVENTIONS,
    ROTATION_PARAMETERIZATIONS,
    axis_angle_to_matrix,
    euler_angles_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler_angles,
    matrix_to_quaternion,
    matrix_to_quaternion_adjugate,
    matrix_to_rotation_6d,
    matrix_to_rotation_9d,
    matrix_to_rotation_10d,
    quaternion_adjugate_to_matrix,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
    rotation_9d_to_matrix,
    rotation_10d_to_matrix,
)

# Detector: the detector module adds its imports above and its names to the "detector" block below.

__all__ = [
    # rotations
    "EULER_CONVENTIONS",
    "ROTATION_PARAMETERIZATIONS",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "euler_angles_to_matrix",
    "matrix_to_euler_angles",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "quaternion_adjugate_to_matrix",
    "matrix_to_quaternion_adjugate",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "rotation_9d_to_matrix",
    "matrix_to_rotation_9d",
    "rotation_10d_to_matrix",
    "matrix_to_rotation_10d",
    # pose
    "POSE_PARAMETERIZATIONS",
    "RigidTransform",
    "convert",
    "se3_exp_map",
    "se3_log_map",
    "rotation_geodesic_distance",
    "translation_distance",
    # detector
]
