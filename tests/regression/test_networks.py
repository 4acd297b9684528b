"""Pose-regression networks: shapes, the reference pose at initialisation, every head parameterization, and the
image encoder injected by ``class_path`` (the recipes' form) or named by the ``backbone`` shortcut."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, cast

import pytest
import torch
import yaml
from lightning.pytorch.cli import LightningCLI
from torch import nn

from drreg.metrics import rotation_error_deg, translation_error_mm
from drreg.regression import (
    ROTATION_OUTPUT_SIZES,
    PoseRegressionModule,
    PoseRegressor,
    ResNetEncoder,
    TimmEncoder,
    build_encoder,
    reference_pose,
)
from drreg.regression.networks import check_encoder

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("parameterization", sorted(ROTATION_OUTPUT_SIZES))
def test_untrained_network_predicts_the_reference(parameterization):
    torch.manual_seed(0)
    reference = reference_pose((10.0, -5.0, 3.0), (5.0, 850.0, -2.0)).matrix[0]
    convention = "ZXY" if parameterization == "euler_angles" else None
    network = PoseRegressor(
        parameterization, convention, base_channels=8, depths=(1, 1), reference_pose=reference
    ).eval()
    rotation, translation = network(torch.rand(3, 1, 32, 32))
    assert rotation.shape == (3, ROTATION_OUTPUT_SIZES[parameterization]) and translation.shape == (3, 3)
    poses = network.predict(torch.rand(3, 1, 32, 32))
    truth = reference.float().expand(3, 4, 4)
    # The heads start with tiny weights and the identity offset as bias.
    assert rotation_error_deg(poses, truth).max() < 0.5 and translation_error_mm(poses, truth).max() < 0.5


def test_resnet_shapes_and_strides():
    encoder = ResNetEncoder(base_channels=4, depths=(1, 2, 1), stem_stride=2)
    assert encoder(torch.zeros(2, 1, 64, 48)).shape == (2, encoder.out_features) == (2, 16)


def test_gradients_reach_every_parameter():
    network = PoseRegressor("quaternion", base_channels=4, depths=(1, 1)).train()
    pose = network.predict(torch.rand(4, 1, 16, 16))
    (pose.matrix[:, :3, :].square().sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in network.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(parameterization="matrix"), "cannot be regressed"),
        (dict(parameterization="euler"), "unknown parameterization"),
        (dict(parameterization="euler_angles"), "needs a convention"),
        (dict(backbone="vgg"), "backbone"),
        (dict(translation_scale=0.0), "translation_scale"),
    ],
)
def test_bad_network_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PoseRegressor(**{"base_channels": 4, "depths": (1,), **kwargs})


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_timm_backbone_without_timm_says_how_to_install():
    with pytest.raises(ImportError, match="pip install timm"):
        PoseRegressor(backbone="timm/resnet18")


# ------------------------------------------------------------------------------------ injected encoders


class _TinyEncoder(nn.Module):
    """A user's own encoder: any module with out_features."""

    out_features = 5

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(images.mean(dim=(-2, -1)))


def _parse_model(model: dict[str, Any]) -> PoseRegressionModule:
    """Build the module from a recipe's ``model:`` section, as the ``drreg`` command (a LightningCLI) does."""
    trainer = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    cli = LightningCLI(
        PoseRegressionModule, args={"model": model, "trainer": trainer}, run=False, save_config_callback=None
    )
    return cast(PoseRegressionModule, cli.model)


def test_encoder_given_by_class_path():
    snippet = """
    parameterization: quaternion
    encoder:
      class_path: drreg.regression.networks.ResNetEncoder
      init_args: {base_channels: 4, depths: [1, 2], stem_stride: 2}
    """
    module = _parse_model(yaml.safe_load(snippet))
    encoder = module.network.encoder
    assert type(encoder) is ResNetEncoder and encoder.out_features == 8 and len(encoder.stages[1]) == 2
    assert module.network.rotation_head.out_features == 4
    assert module.hparams.backbone is None and module.hparams.base_channels is None
    # The checkpoint keeps the configuration, from which load_from_checkpoint rebuilds the encoder.
    assert module.hparams.encoder["class_path"] == "drreg.regression.networks.ResNetEncoder"


@pytest.mark.parametrize("recipe", ["pose_regression.yaml", "finetune.yaml"])
def test_recipes_name_the_encoder_by_class_path(recipe):
    model = yaml.safe_load((ROOT / "recipes" / recipe).read_text())["model"]
    assert model["encoder"]["class_path"] == "drreg.regression.networks.ResNetEncoder"
    assert not {"backbone", "base_channels", "depths", "pretrained"} & set(model)
    module = _parse_model({**model, "init_checkpoint": None})
    assert type(module.network.encoder) is ResNetEncoder and module.network.encoder.out_features == 128


def test_a_users_encoder_by_class_path():
    module = _parse_model({"encoder": {"class_path": f"{__name__}._TinyEncoder"}})
    assert isinstance(module.network.encoder, _TinyEncoder)
    assert module.network.predict(torch.rand(2, 1, 8, 8)).matrix.shape == (2, 4, 4)


def test_shortcut_builds_the_same_network_as_the_class_path():
    torch.manual_seed(3)
    shortcut = PoseRegressor("rotation_6d", base_channels=4, depths=(1, 1))
    torch.manual_seed(3)
    injected = PoseRegressor("rotation_6d", encoder=ResNetEncoder(base_channels=4, depths=(1, 1)))
    assert shortcut.state_dict().keys() == injected.state_dict().keys()
    for name, value in shortcut.state_dict().items():
        assert torch.equal(value, injected.state_dict()[name]), name


def test_default_encoder_is_drregs_resnet():
    encoder = PoseRegressor().encoder
    assert type(encoder) is ResNetEncoder and encoder.out_features == 256 and len(encoder.stages) == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(encoder=ResNetEncoder(base_channels=4, depths=(1,)), base_channels=8), ValueError, "not both"),
        (dict(encoder=ResNetEncoder(base_channels=4, depths=(1,)), backbone="resnet"), ValueError, "not both"),
        (dict(encoder=ResNetEncoder(base_channels=4, depths=(1,)), backbone="vgg"), ValueError, "unknown backbone"),
        (dict(encoder="resnet"), TypeError, r"encoder must be an nn.Module, got str \(for a backbone name"),
        (dict(encoder=nn.Conv2d(1, 4, 3)), TypeError, "must have an out_features attribute"),
        (dict(backbone="timm/resnet18", base_channels=8), ValueError, "built-in backbone 'resnet' only"),
        (dict(backbone="resnet", pretrained=True), ValueError, "pretrained weights exist only for timm"),
    ],
)
def test_bad_encoder_settings_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        PoseRegressor(**kwargs)


def test_encoder_and_shortcut_together_are_refused_on_the_command_line():
    model = {"encoder": {"class_path": "drreg.regression.networks.ResNetEncoder"}, "depths": [1, 1]}
    with pytest.raises(ValueError, match="give either an encoder or the backbone shortcut, not both"):
        _parse_model(model)


def test_check_encoder_returns_the_feature_size():
    assert check_encoder(ResNetEncoder(base_channels=2, depths=(1, 1, 1))) == 8
    assert check_encoder(_TinyEncoder()) == 5


def test_build_encoder_shortcut():
    encoder = build_encoder("resnet", base_channels=4, depths=(1, 1))
    assert type(encoder) is ResNetEncoder and encoder.out_features == 8


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm is not installed")
def test_timm_encoder_by_class_path():
    module = _parse_model({"encoder": {"class_path": "drreg.regression.networks.TimmEncoder",
                                       "init_args": {"name": "resnet18"}}})  # fmt: skip
    assert isinstance(module.network.encoder, TimmEncoder)
    assert module.network(torch.rand(2, 1, 32, 32))[0].shape == (2, 6)
