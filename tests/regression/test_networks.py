"""Pose-regression networks: shapes, the reference pose at initialisation, every head parameterization."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from drreg.metrics import rotation_error_deg, translation_error_mm
from drreg.regression import ROTATION_OUTPUT_SIZES, PoseRegressor, ResNetEncoder, reference_pose


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
