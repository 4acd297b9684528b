"""Tests for drreg.geometry.detector: intrinsics, the pixel grid, rays and projection (the DRR-level behaviour is in
tests/test_drr.py)."""

from __future__ import annotations

import pytest
import torch

from drreg.geometry import Detector, RigidTransform, convert, intrinsic_matrix
from tests.geometry._random import random_pose


def _detector(reverse_x_axis: bool = True) -> Detector:
    return Detector(400.0, 5, 7, 2.0, dely=1.5, x0=3.0, y0=-2.0, reverse_x_axis=reverse_x_axis)


def test_intrinsic_matrix_layout() -> None:
    assert torch.equal(
        intrinsic_matrix(1000.0, 2.0, 4.0, 100, 60, x0=10.0, y0=8.0, reverse_x_axis=False),
        torch.tensor([[500.0, 0.0, 25.0], [0.0, -250.0, 52.0], [0.0, 0.0, 1.0]], dtype=torch.float64),
    )


@pytest.mark.parametrize("reverse_x_axis", [True, False])
def test_camera_points_project_to_pixel_centres(reverse_x_axis: bool) -> None:
    # Pixel (r, c) has its centre at continuous coordinates (c + 1/2, r + 1/2).
    detector = _detector(reverse_x_axis)
    identity = RigidTransform(torch.eye(4, dtype=torch.float64))
    pixels = detector.project(identity, detector.camera_points())[0]
    rows, columns = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    expected = torch.stack((columns.flatten() + 0.5, rows.flatten() + 0.5), -1).double()
    torch.testing.assert_close(pixels, expected, atol=1e-12, rtol=0)


def test_rays_start_at_the_source_and_end_on_the_detector() -> None:
    detector = _detector()
    pose = random_pose(3, torch.float64, torch.device("cpu"), seed=60)
    source, target = detector(pose)
    assert source.shape == (3, 1, 3) and target.shape == (3, 35, 3)
    torch.testing.assert_close(source[:, 0], pose.translation)
    torch.testing.assert_close(target, pose(detector.camera_points()))


def test_ray_indices_select_pixels() -> None:
    detector = _detector()
    pose = convert(torch.zeros(2, 3), torch.tensor([[0.0, 300.0, 0.0]] * 2), parameterization="axis_angle")
    _, target = detector(pose)
    indices = torch.tensor([[0, 34, 5], [7, 7, 1]])
    _, selected = detector(pose, indices=indices)
    torch.testing.assert_close(selected, torch.stack([target[b, indices[b]] for b in range(2)]))
    _, shared = detector(pose, indices=indices[0])
    torch.testing.assert_close(shared, target[:, indices[0]])


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"sdd": 0.0}, ValueError, "sdd"),
        ({"sdd": float("nan")}, ValueError, "sdd"),
        ({"delx": 1e10}, ValueError, "delx"),
        ({"height": 0}, ValueError, "height"),
        ({"x0": 1e10}, ValueError, "x0"),
        ({"reverse_x_axis": "False"}, ValueError, "reverse_x_axis must be True or False"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Detector(**{"sdd": 400.0, "height": 4, "width": 4, "delx": 1.0, **arguments})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"sdd": None}, r"sdd must be a positive number \(mm\), got None"),
        ({"delx": None}, r"delx must be a positive number \(mm\), got None"),
        ({"height": None}, r"height must be a positive integer \(pixels\), got None"),
        ({"y0": None}, r"y0 must be a finite number \(mm\), got None"),
        ({"dely": 1e300}, r"dely must be in \[1e-06, 1e\+09\] \(mm\), got 1e\+300"),
        ({"delx": 5e-324}, r"delx must be in \[1e-06, 1e\+09\] \(mm\)"),
    ],
)
def test_detector_intrinsics_are_required_and_bounded_issue10(arguments: dict[str, object], match: str) -> None:
    # None was read as "keep the current value" of a detector that had none; 1e300 mm spacings gave NaN images.
    with pytest.raises(ValueError, match=match):
        Detector(**{"sdd": 400.0, "height": 4, "width": 4, "delx": 1.0, **arguments})  # type: ignore[arg-type]


def test_points_in_the_source_plane_project_finitely_issue10() -> None:
    # A point beside the source, in its plane, projected to inf (and a projection error to inf - inf = NaN).
    detector = _detector()
    pose = RigidTransform(torch.eye(4, dtype=torch.float64))
    pixels = detector.project(pose, torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 400.0]]))
    assert torch.isfinite(pixels).all() and pixels[0, 0, 0].abs() > 1e9
    with pytest.raises(TypeError, match="points must be a torch.Tensor, got list"):
        detector.project(pose, [[1.0, 2.0, 3.0]])  # type: ignore[arg-type]
