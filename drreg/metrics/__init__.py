"""Pose-error metrics for 2D/3D registration: plain functions for the math, torchmetrics ``Metric``s to accumulate.

=====================  =====================================================================================
:mod:`.pose_errors`    the functions: :func:`rotation_error_deg`, :func:`translation_error_mm`,
                       :func:`double_geodesic_error`, :func:`target_registration_error` (mTRE),
                       :func:`projection_error_mm` (mPE), :func:`ct_grid_points`; the :data:`Pose` type
:mod:`.running`        the torchmetrics ``Metric``s: :class:`RotationError`, :class:`TranslationError`,
                       :class:`DoubleGeodesicError`, :class:`MeanTargetRegistrationError3D`,
                       :class:`MeanProjectionError2D`, :class:`SuccessRate`
:mod:`.similarity`     DiffDRR's image similarity modules (higher is better): :class:`NormalizedCrossCorrelation2d`,
                       :class:`MultiscaleNormalizedCrossCorrelation2d`, :class:`GradientNormalizedCrossCorrelation2d`,
                       :class:`MutualInformation`, :class:`Sobel`, :func:`to_patches`
:mod:`.geodesic`       DiffDRR's pose distances: :class:`LogGeodesicSE3`, :class:`DoubleGeodesicSE3`
=====================  =====================================================================================

Poses are camera-to-world: a (B, 4, 4) matrix ``E`` (or a :class:`~drreg.geometry.pose.RigidTransform`) maps
camera points to world (CT) millimetres, ``p_world = E @ reorient @ p_camera`` (docs/conventions.md). The patient
is fixed in the world; an estimated pose ``E_est`` and the true pose ``E_true`` differ in where they put the
camera. Every error compares the two through the world-to-camera maps ``E^-1`` and so does not depend on the
subject's ``reorient`` (an isometry applied to both).

Each function returns a (B,) tensor, differentiable, in the common floating dtype of its inputs; a batch of one
pose broadcasts against B. Each ``Metric`` sums its per-case errors and counts the cases in float64 / int64
states (``dist_reduce_fx="sum"``), so several ``update`` calls give the same ``compute()`` as one big call.
"""

from drreg.metrics.geodesic import DoubleGeodesicSE3, LogGeodesicSE3
from drreg.metrics.pose_errors import (
    DOUBLE_GEODESIC_EPS,
    Pose,
    ct_grid_points,
    double_geodesic_error,
    projection_error_mm,
    rotation_error_deg,
    target_registration_error,
    translation_error_mm,
)
from drreg.metrics.running import (
    DoubleGeodesicError,
    MeanProjectionError2D,
    MeanTargetRegistrationError3D,
    RotationError,
    SuccessRate,
    TranslationError,
)
from drreg.metrics.similarity import (
    GradientNormalizedCrossCorrelation2d,
    MultiscaleNormalizedCrossCorrelation2d,
    MutualInformation,
    NormalizedCrossCorrelation2d,
    Sobel,
    to_patches,
)

__all__ = [
    "DOUBLE_GEODESIC_EPS",
    "DoubleGeodesicError",
    "MeanProjectionError2D",
    "MeanTargetRegistrationError3D",
    "Pose",
    "RotationError",
    "SuccessRate",
    "TranslationError",
    "ct_grid_points",
    "double_geodesic_error",
    "projection_error_mm",
    "rotation_error_deg",
    "target_registration_error",
    "translation_error_mm",
    # DiffDRR's diffdrr.metrics
    "NormalizedCrossCorrelation2d",
    "MultiscaleNormalizedCrossCorrelation2d",
    "GradientNormalizedCrossCorrelation2d",
    "MutualInformation",
    "LogGeodesicSE3",
    "DoubleGeodesicSE3",
    "Sobel",
    "to_patches",
]
