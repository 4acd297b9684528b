"""drreg.registration's DiffDRR modules (Registration, PoseRegressor) against DiffDRR 0.6.1 (metrics.pt fixture)."""

from __future__ import annotations

import importlib.util
import inspect
import types
from pathlib import Path
from typing import Any

import pytest
import torch
import torchio
from torch import nn

import drreg.registration
from drreg import read
from drreg.drr import DRR
from drreg.geometry.pose import RigidTransform, convert
from drreg.registration import PoseRegressor, Registration, diffdrr_modules
from tests._tolerances import IMAGE_RTOL, SIDDON_GRAD_RTOL, relative_l2

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "diffdrr" / "metrics.pt"
HAS_TIMM = importlib.util.find_spec("timm") is not None


@pytest.fixture(scope="module")
def fixture() -> dict[str, Any]:
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} absent: run tests/fixtures/diffdrr/make_metrics.py with DiffDRR 0.6.1 installed")
    return torch.load(FIXTURE, weights_only=False)


@pytest.fixture(scope="module")
def drr(fixture: dict[str, Any]) -> DRR:
    """make_metrics.py's DRR (the CT of make_drr.py), built by drreg."""
    case = fixture["registration"]
    generator = torch.Generator().manual_seed(0)
    hu = (torch.rand(case["shape"], generator=generator) * 1600 - 700).to(torch.int16)[None]
    labels = (torch.rand(case["shape"], generator=generator) * 3).long()[None]
    affine = torch.diag(torch.tensor([*case["spacing"], 1.0], dtype=torch.float64)).numpy()
    subject = read(
        torchio.ScalarImage(tensor=hu, affine=affine),
        labelmap=torchio.LabelMap(tensor=labels, affine=affine),
        orientation="AP",
    )
    return DRR(subject, **case["detector"]).double()


# ------------------------------------------------------------------------------------------ names


def test_every_diffdrr_registration_name_exists(fixture: dict[str, Any]) -> None:
    missing = [n for n in fixture["names"]["diffdrr.registration"] if not hasattr(diffdrr_modules, n)]
    assert not missing
    assert set(fixture["all"]["diffdrr.registration"]) <= set(drreg.registration.__all__)
    assert diffdrr_modules.N_ANGULAR_COMPONENTS == fixture["N_ANGULAR_COMPONENTS"]


def test_drregs_own_registration_names_remain() -> None:
    assert {"RegistrationModule", "RegistrationData", "CoarseToFine", "pose_from_parameters"} <= set(
        drreg.registration.__all__
    )


@pytest.mark.parametrize("name", ["Registration", "PoseRegressor"])
def test_arguments_match_diffdrr(fixture: dict[str, Any], name: str) -> None:
    theirs = fixture["signatures"][f"diffdrr.registration.{name}"].strip("()").split(", ")
    expected = [p.split(":")[0].split("=")[0].strip().lstrip("*") for p in theirs]
    ours = [p.name for p in inspect.signature(getattr(drreg.registration, name)).parameters.values()]
    assert ours == expected


# ------------------------------------------------------------------------------------------ Registration


@pytest.mark.parametrize("index", range(10))
def test_registration_pose_matches_diffdrr(fixture: dict[str, Any], drr: DRR, index: int) -> None:
    case = fixture["registration"]["poses"][index]
    module = Registration(drr, case["rotation"], case["translation"], case["parameterization"], case["convention"])
    pose = module.pose
    assert isinstance(pose, RigidTransform)
    atol = 1e-5 if case["rotation"].dtype == torch.float32 else 1e-9
    torch.testing.assert_close(pose.matrix, case["pose"], rtol=atol, atol=atol * 1e3)  # translations ~300 mm


def test_registration_forward_and_gradients_match_diffdrr(fixture: dict[str, Any], drr: DRR) -> None:
    case = fixture["registration"]
    expected = case["forward"]
    module = Registration(drr, case["rotation"].clone(), case["translation"].clone(), "euler_angles", "ZXY")
    image = module()
    assert relative_l2(image.detach(), expected["image"]) < IMAGE_RTOL[torch.float64]
    image.mean().backward()
    assert module.rotation.grad is not None and module.translation.grad is not None
    assert relative_l2(module.rotation.grad, expected["grad_rotation"]) < SIDDON_GRAD_RTOL[torch.float64]
    assert relative_l2(module.translation.grad, expected["grad_translation"]) < SIDDON_GRAD_RTOL[torch.float64]
    with torch.no_grad():
        channels = module(mask_to_channels=True)
    assert relative_l2(channels, expected["channels"]) < IMAGE_RTOL[torch.float64]


def test_registration_parameters_and_state_dict_keys(fixture: dict[str, Any], drr: DRR) -> None:
    case = fixture["registration"]
    module = Registration(drr, case["rotation"].clone(), case["translation"].clone(), "euler_angles", "ZXY")
    assert [name for name, _ in module.named_parameters()] == case["parameters"]
    assert {"_rotation", "_translation"} <= set(module.state_dict())
    assert module.rotation is module._rotation and module.translation is module._translation


def test_registration_is_the_drr_at_its_pose(drr: DRR) -> None:
    rotation = torch.tensor([[0.1, 0.0, -0.1]], dtype=torch.float64)
    translation = torch.tensor([[0.0, 290.0, 0.0]], dtype=torch.float64)
    module = Registration(drr, rotation, translation, "axis_angle")
    with torch.no_grad():
        torch.testing.assert_close(module(), drr(rotation, translation, parameterization="axis_angle"))


def test_registration_optimizes_its_pose(drr: DRR) -> None:
    rotation = torch.tensor([[0.1, -0.05, 0.2]], dtype=torch.float64)
    translation = torch.tensor([[5.0, 300.0, -4.0]], dtype=torch.float64)
    module = Registration(drr, rotation.clone(), translation.clone(), "euler_angles", "ZXY")
    before = module.pose.matrix.detach().clone()
    optimizer = torch.optim.SGD(module.parameters(), lr=1e-3)
    module().mean().backward()
    optimizer.step()
    assert not torch.equal(module.pose.matrix.detach(), before)


def test_registration_refuses_unknown_parameterizations(drr: DRR) -> None:
    with pytest.raises(ValueError, match="parameterization"):
        Registration(drr, torch.zeros(1, 3), torch.zeros(1, 3), "euler")


def test_registration_parameters_are_new_leaves_with_converts_gradient(drr: DRR) -> None:
    rotation = torch.tensor([[0.1, -0.05, 0.2]], dtype=torch.float64, requires_grad=True)
    translation = torch.tensor([[5.0, 300.0, -4.0]], dtype=torch.float64, requires_grad=True)
    module = Registration(drr, rotation * 1.0, translation * 1.0, "axis_angle")
    assert module.rotation.is_leaf and module.translation.is_leaf  # nn.Parameter: the graph before is cut
    (module.pose.matrix * torch.arange(16.0, dtype=torch.float64).reshape(4, 4)).sum().backward()
    assert rotation.grad is None
    expected = convert(rotation, translation, parameterization="axis_angle").matrix
    (expected * torch.arange(16.0, dtype=torch.float64).reshape(4, 4)).sum().backward()
    torch.testing.assert_close(module.rotation.grad, rotation.grad)
    torch.testing.assert_close(module.translation.grad, translation.grad)


# ------------------------------------------------------------------------------------------ PoseRegressor


@pytest.mark.skipif(HAS_TIMM, reason="timm is installed")
def test_pose_regressor_without_timm_says_how_to_install_it() -> None:
    with pytest.raises(ImportError, match="pip install timm"):
        PoseRegressor("resnet18", "euler_angles", "ZXY")


class _Backbone(nn.Module):
    """A stand-in for a timm model with ``num_classes=0``: (B, 1, H, W) to (B, 7) features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 7, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((-2, -1))


@pytest.mark.parametrize(
    ("parameterization", "convention", "size"),
    [("euler_angles", "ZXY", 3), ("quaternion", None, 4), ("rotation_6d", None, 6), ("rotation_10d", None, 10)],
)
def test_pose_regressor_shapes_and_arguments(
    monkeypatch: pytest.MonkeyPatch, parameterization: str, convention: str | None, size: int
) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def create_model(*args: Any, **kwargs: Any) -> nn.Module:
        calls.append((args, kwargs))
        return _Backbone()

    monkeypatch.setattr(diffdrr_modules, "import_timm", lambda: types.SimpleNamespace(create_model=create_model))
    model = PoseRegressor("tiny", parameterization, convention, pretrained=True, height=16, drop_rate=0.1)
    assert calls == [(("tiny", True), {"num_classes": 0, "in_chans": 1, "drop_rate": 0.1})]
    assert model.rot_regression.out_features == size and model.xyz_regression.out_features == 3
    assert model.rot_regression.in_features == 7
    with torch.no_grad():
        pose = model(torch.rand(2, 1, 16, 16))
    assert isinstance(pose, RigidTransform) and pose.matrix.shape == (2, 4, 4)


def test_pose_regressor_refuses_the_matrix_parameterization(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diffdrr_modules, "import_timm", lambda: pytest.fail("timm imported before checking"))
    with pytest.raises(ValueError, match="parameterization"):
        PoseRegressor("resnet18", "matrix")
