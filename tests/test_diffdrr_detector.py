"""drreg.detector against DiffDRR 0.6.1's diffdrr.detector (fixture: tests/fixtures/diffdrr/drr.pt)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from drreg.detector import Detector, get_focal_length, get_principal_point, make_intrinsic_matrix
from drreg.geometry import RigidTransform

FIXTURE = Path(__file__).parent / "fixtures" / "diffdrr" / "drr.pt"


@pytest.fixture(scope="module")
def diffdrr_outputs() -> dict:
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} absent: run tests/fixtures/diffdrr/make_drr.py with DiffDRR 0.6.1 installed")
    return torch.load(FIXTURE, weights_only=False)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_intrinsics_match_diffdrr(diffdrr_outputs: dict, index: int) -> None:
    case = diffdrr_outputs["intrinsics"][index]
    args = case["args"]
    detector = Detector(**args)
    torch.testing.assert_close(detector.intrinsic, case["intrinsic"], rtol=1e-6, atol=1e-5)
    assert (detector.x0, detector.y0) == (case["x0"], case["y0"])  # DiffDRR's sign: minus the arguments
    torch.testing.assert_close(detector._calibration.float(), case["calibration"])
    if isinstance(case["target"], torch.Tensor):
        torch.testing.assert_close(detector.target, case["target"])
    else:
        assert tuple(detector.target.shape) == case["target"]
    parsed = (get_focal_length(detector.intrinsic, args["delx"], args["dely"]),) + get_principal_point(
        detector.intrinsic, args["height"], args["width"], args["delx"], args["dely"]
    )
    torch.testing.assert_close(torch.tensor(parsed), torch.tensor(case["parsed"]))


def test_detector_signature_is_diffdrrs(diffdrr_outputs: dict) -> None:
    # DiffDRR's positional order (sdd, height, width, delx, ...) and reverse_x_axis=False by default.
    detector = Detector(400.0, 5, 7, 2.0)
    assert (detector.height, detector.width, detector.delx, detector.dely) == (5, 7, 2.0, 2.0)
    assert detector.reverse_x_axis is False
    assert "reverse_x_axis: 'bool' = False" in diffdrr_outputs["signatures"]["Detector"]
    with pytest.raises(TypeError):
        Detector(400.0, 5, 2.0)  # type: ignore[call-arg]  # drreg's old (sdd, height, delx) order: refused, not misread


def test_detector_names_exist(diffdrr_outputs: dict) -> None:
    module = importlib.import_module("drreg.detector")
    missing = [n for n in diffdrr_outputs["names"]["diffdrr.detector"] if not hasattr(module, n)]
    assert not missing


def test_make_intrinsic_matrix_and_pixel_intrinsic_describe_one_projection() -> None:
    # DiffDRR's K, then its flips (row = H - v, column = W - u), equals drreg's pixel_intrinsic.
    detector = Detector(400.0, 5, 7, 2.0, 1.5, 3.0, -2.0, reverse_x_axis=True)
    camera = detector.camera_points()
    uvw = camera @ make_intrinsic_matrix(detector).double().T
    u, v = uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2]
    pixels = detector.project(RigidTransform(torch.eye(4, dtype=torch.float64)), camera)[0]
    torch.testing.assert_close(pixels, torch.stack((7 - u, 5 - v), -1))


def test_subset_is_drawn_once_like_diffdrr() -> None:
    torch.manual_seed(5)
    expected = torch.randperm(35)[:6]
    torch.manual_seed(5)
    detector = Detector(400.0, 5, 7, 2.0, n_subsample=6)
    assert detector.subsamples[-1] == expected.tolist()
    _, target = detector(RigidTransform(torch.eye(4, dtype=torch.float64)))
    assert target.shape == (1, 6, 3)


def test_unproject_inverts_project() -> None:
    detector = Detector(400.0, 5, 7, 2.0, 1.5, 3.0, -2.0, reverse_x_axis=True)
    pose = RigidTransform(torch.eye(4, dtype=torch.float64))
    pixels = torch.tensor([[[0.5, 0.5], [3.2, 4.1]]], dtype=torch.float64)
    points = detector.unproject(pose, pixels)
    torch.testing.assert_close(detector.project(pose, points), pixels)
    torch.testing.assert_close(points[..., 2], torch.full((1, 2), 400.0, dtype=torch.float64))
