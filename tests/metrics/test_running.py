"""Tests for drreg.metrics.running: the Metrics accumulate the functions' errors, in float64, on any device."""

from __future__ import annotations

import pytest
import torch

from drreg import Detector
from drreg.metrics import (
    DoubleGeodesicError,
    MeanProjectionError2D,
    MeanTargetRegistrationError3D,
    RotationError,
    SuccessRate,
    TranslationError,
    double_geodesic_error,
    projection_error_mm,
    rotation_error_deg,
    target_registration_error,
    translation_error_mm,
)
from tests.metrics._poses import ERROR_ATOL, SDD, random_points, random_poses

# --------------------------------------------------------------------------------------- Metrics


def _metrics(device) -> dict:
    points = random_points(6, seed=21, device=device)
    detector = Detector(SDD, 32, 32, 1.0, reverse_x_axis=True)
    return {
        "rotation": (RotationError(), rotation_error_deg),
        "translation": (TranslationError(), translation_error_mm),
        "double_geodesic": (DoubleGeodesicError(SDD), lambda e, t: double_geodesic_error(e, t, SDD)),
        "mtre": (MeanTargetRegistrationError3D(points), lambda e, t: target_registration_error(e, t, points)),
        "mpe": (MeanProjectionError2D(detector, points), lambda e, t: projection_error_mm(e, t, points, detector)),
        "success": (
            SuccessRate(200.0, points),
            lambda e, t: (target_registration_error(e, t, points) < 200.0).double(),
        ),
    }


@pytest.mark.parametrize("name", ["rotation", "translation", "double_geodesic", "mtre", "mpe", "success"])
def test_metric_accumulation_equals_one_big_update(name: str, device: torch.device, dtype: torch.dtype) -> None:
    split, joined = _metrics(device)[name][0].to(device), _metrics(device)[name][0].to(device)
    function = _metrics(device)[name][1]
    est = random_poses(10, seed=22, dtype=dtype, device=device)
    true = random_poses(10, seed=23, dtype=dtype, device=device)
    true[:5] = est[:5] + 0.01 * (true[:5] - est[:5])  # half the cases close, so that SuccessRate is not 0
    for chunk in ((0, 3), (3, 4), (4, 10)):
        split.update(est[slice(*chunk)], true[slice(*chunk)])
    joined.update(est, true)
    expected = function(est.double(), true.double()).mean()
    atol = ERROR_ATOL[dtype] * 10
    torch.testing.assert_close(split.compute(), joined.compute(), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(split.compute(), expected.to(split.compute()), atol=atol, rtol=1e-6)
    assert split.compute().dtype == torch.float64
    split.reset()
    split.update(est[:1], true[:1])
    torch.testing.assert_close(
        split.compute(), function(est[:1].double(), true[:1].double()).mean(), atol=atol, rtol=1e-6
    )


def test_mean_over_cases_sums_in_float64_after_moving(device: torch.device) -> None:
    # Why the metrics keep their own sum/count states and not torchmetrics' MeanMetric: after .to(device) a
    # MeanMetric casts updates to the default dtype (float32) even after set_dtype(torch.float64).
    metric = RotationError().to(device)
    errors = torch.tensor([1.0, 1e-7, 1e-7, 1e-7], dtype=torch.float32, device=device)
    metric._accumulate(errors)
    metric._accumulate(errors[:1] + 3.0)
    assert metric.total.dtype == torch.float64 and metric.count.dtype == torch.int64
    expected = (errors.double().sum() + (errors[:1].double() + 3.0).sum()) / 5
    torch.testing.assert_close(metric.compute(), expected, atol=0, rtol=0)


def test_success_rate_counts_strictly_below_threshold(device: torch.device) -> None:
    true = torch.eye(4, dtype=torch.float64, device=device).repeat(4, 1, 1)
    est = true.clone()
    est[:, 2, 3] = torch.tensor([0.5, 1.5, 0.9, 1.0], dtype=torch.float64, device=device)  # mTRE = |shift|
    metric = SuccessRate(threshold_mm=1.0).to(device)
    metric.update(est, true, points=random_points(3, seed=24, device=device))
    torch.testing.assert_close(metric.compute(), torch.tensor(0.5, dtype=torch.float64, device=device))


def test_metric_points_given_per_update(device: torch.device) -> None:
    est, true = random_poses(2, seed=25, device=device), random_poses(2, seed=26, device=device)
    points = random_points(5, seed=27, device=device)
    metric = MeanTargetRegistrationError3D().to(device)
    metric.update(est, true, points=points)
    torch.testing.assert_close(metric.compute(), target_registration_error(est, true, points).mean())


def test_metric_moves_points_and_detector(device: torch.device) -> None:
    metric = MeanProjectionError2D(
        Detector(SDD, 16, 16, 1.0, reverse_x_axis=True), points=random_points(3, seed=28)
    ).to(device)
    assert metric.points.device.type == torch.device(device).type
    assert metric.detector.reorient.device.type == torch.device(device).type


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda e, t, p: MeanTargetRegistrationError3D().update(e, t), ValueError, "has no target points"),
        (lambda e, t, p: MeanProjectionError2D(None), TypeError, "detector must be"),
        (lambda e, t, p: SuccessRate(threshold_mm=0.0), ValueError, "threshold_mm must be a positive number"),
        (lambda e, t, p: DoubleGeodesicError(sdd=-1.0), ValueError, "sdd must be a positive number"),
        (lambda e, t, p: MeanTargetRegistrationError3D(points=p[:, :2]), ValueError, "points must be"),
    ],
)
def test_bad_inputs(call, error: type[Exception], match: str) -> None:
    est, true, points = random_poses(3, seed=29), random_poses(3, seed=30), random_points(4, seed=31)
    with pytest.raises(error, match=match):
        call(est, true, points)
