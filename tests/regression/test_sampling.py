"""Pose samplers: ranges, reproducibility, the perturb/offset composition, and the se(3) normal sampler."""

from __future__ import annotations

import pytest
import torch

from drreg import RigidTransform, convert
from drreg.geometry.se3 import matrix_to_twist
from drreg.regression import NormalPoseSampler, UniformPoseSampler, perturb, pose_offset, reference_pose

RANGES_DEG = ((-10.0, 20.0), (-5.0, 5.0), (0.0, 30.0))
RANGES_MM = ((-30.0, 30.0), (-10.0, 40.0), (-5.0, 0.0))


def test_uniform_samples_are_reference_plus_offsets_in_range():
    sampler = UniformPoseSampler(RANGES_DEG, RANGES_MM)
    poses = sampler(2000, torch.Generator().manual_seed(0))
    rotation, translation = poses.convert("euler_angles", "ZXY", degrees=True)
    offsets = translation - torch.tensor([0.0, 850.0, 0.0], dtype=torch.float64)
    for axis in range(3):
        low, high = RANGES_DEG[axis]
        assert low - 1e-9 <= rotation[:, axis].min() < low + 1.0 and high - 1.0 < rotation[:, axis].max() <= high + 1e-9
        low, high = RANGES_MM[axis]
        assert low - 1e-9 <= offsets[:, axis].min() < low + 1.0 and high - 1.0 < offsets[:, axis].max() <= high + 1e-9


def test_samplers_are_reproducible_and_seeded():
    sampler = UniformPoseSampler()
    first = sampler(5, torch.Generator().manual_seed(3)).matrix
    assert torch.equal(first, sampler(5, torch.Generator().manual_seed(3)).matrix)
    assert not torch.equal(first, sampler(5, torch.Generator().manual_seed(4)).matrix)
    assert first.dtype == torch.float64 and first.shape == (5, 4, 4)


def test_perturb_and_offset_are_inverse():
    reference = reference_pose((20.0, -10.0, 5.0), (10.0, 800.0, -20.0))
    offsets = convert(torch.randn(6, 3, dtype=torch.float64) * 0.2, torch.randn(6, 3, dtype=torch.float64) * 10,
                      parameterization="axis_angle")  # fmt: skip
    poses = perturb(reference, offsets)
    torch.testing.assert_close(pose_offset(reference, poses).matrix, offsets.matrix)
    torch.testing.assert_close(perturb(reference, pose_offset(reference, poses)).matrix, poses.matrix)


def test_perturb_adds_parameter_translations_and_multiplies_rotations():
    reference = reference_pose((30.0, 0.0, 0.0), (0.0, 850.0, 0.0))
    rotation = torch.tensor([[0.0, 0.1, 0.0]], dtype=torch.float64)
    offset = convert(rotation, torch.tensor([[5.0, -3.0, 2.0]], dtype=torch.float64), parameterization="axis_angle")
    pose = perturb(reference, offset)
    _, t_ref = reference.convert("axis_angle")
    _, t_offset = offset.convert("axis_angle")
    _, t = pose.convert("axis_angle")
    torch.testing.assert_close(t, t_ref + t_offset)
    torch.testing.assert_close(pose.rotation, reference.rotation @ offset.rotation)


def test_normal_sampler_has_the_requested_spread():
    sampler = NormalPoseSampler(rotation_std_deg=(5.0, 10.0, 2.0), translation_std_mm=(20.0, 5.0, 10.0))
    poses = sampler(20000, torch.Generator().manual_seed(0))
    log = matrix_to_twist(pose_offset(sampler.reference, poses).matrix)  # (v, omega)
    std = log.std(dim=0)
    expected = torch.tensor(
        [20.0, 5.0, 10.0, *torch.deg2rad(torch.tensor([5.0, 10.0, 2.0])).tolist()], dtype=torch.float64
    )
    torch.testing.assert_close(std, expected, rtol=0.03, atol=0)
    assert log.mean(dim=0).abs().div(expected).max() < 0.03  # centred on the reference


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: UniformPoseSampler(((10.0, -10.0), (0, 1), (0, 1))), r"rotation_range_deg\[0\] has min > max"),
        (lambda: UniformPoseSampler(translation_range_mm=((0, 1), (0, 1))), "three"),
        (lambda: UniformPoseSampler(convention="ABC"), "Euler convention"),
        (lambda: NormalPoseSampler(rotation_std_deg=-1.0), "rotation_std_deg must be a finite number >= 0"),
        (lambda: reference_pose((0.0, float("nan"), 0.0)), "finite"),
    ],
)
def test_bad_sampler_settings_are_named(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_sample_count_must_be_positive():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        UniformPoseSampler()(0)


def test_reference_is_the_ap_view():
    torch.testing.assert_close(reference_pose().matrix, RigidTransform(torch.tensor(
        [[1.0, 0, 0, 0], [0, 1, 0, 850], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)[None]).matrix)  # fmt: skip
