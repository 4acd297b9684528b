"""Pose algebra of registration: pose vectors, offsets, multi-view composition, parameters ↔ poses, starts."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.spatial.transform import Rotation

from drreg import RigidTransform, convert
from drreg.registration import (
    OPTIMIZABLE_PARAMETERIZATIONS,
    MultiStart,
    compose_views,
    offset_pose_vectors,
    parameters_from_pose,
    pose_from_parameters,
    pose_grid,
    pose_vectors_to_transform,
    transform_to_pose_vectors,
    view_transforms_from_poses,
)
from tests.registration._setup import START_POSE, TRUE_POSE

# ------------------------------------------------------------------------------------------------ pose vectors


def test_pose_vectors_match_scipy():
    vectors = torch.tensor([TRUE_POSE, START_POSE], dtype=torch.float64)
    pose = pose_vectors_to_transform(vectors)
    # Intrinsic ZXY (R = Rz @ Rx @ Ry) is scipy's "ZXY" (upper case = intrinsic); translation is applied first.
    rotation = torch.from_numpy(Rotation.from_euler("ZXY", vectors[:, :3].numpy(), degrees=True).as_matrix())
    torch.testing.assert_close(pose.rotation, rotation)
    torch.testing.assert_close(pose.translation, (rotation @ vectors[:, 3:, None])[..., 0])


@pytest.mark.parametrize("convention", ["ZXY", "XYZ", "ZYZ"])
def test_pose_vectors_round_trip(convention):
    pose = pose_vectors_to_transform([TRUE_POSE, START_POSE], convention)
    back = transform_to_pose_vectors(pose, convention)
    # Proper Euler angles (ZYZ) come back in their canonical range, so compare the poses they make.
    torch.testing.assert_close(pose_vectors_to_transform(back, convention).matrix, pose.matrix)
    torch.testing.assert_close(back[:, 3:], torch.tensor([TRUE_POSE[3:], START_POSE[3:]], dtype=torch.float64))


@pytest.mark.parametrize("bad", [[[1.0, 2.0, 3.0]], [[math.nan, 0, 0, 0, 850, 0]]], ids=["shape", "nan"])
def test_pose_vectors_reject_bad_input(bad):
    with pytest.raises(ValueError, match="pose vectors"):
        pose_vectors_to_transform(bad)


def test_convert_agrees_with_pose_vectors():
    rot = torch.tensor([TRUE_POSE[:3]], dtype=torch.float64)
    xyz = torch.tensor([TRUE_POSE[3:]], dtype=torch.float64)
    pose = convert(rot, xyz, parameterization="euler_angles", convention="ZXY", degrees=True)
    torch.testing.assert_close(pose.matrix, pose_vectors_to_transform([TRUE_POSE]).matrix)


def test_offsets_are_bounded_and_seeded():
    vectors = torch.zeros(500, 6, dtype=torch.float64)
    first = offset_pose_vectors(vectors, 15.0, 30.0, torch.Generator().manual_seed(3))
    again = offset_pose_vectors(vectors, 15.0, 30.0, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert first[:, :3].abs().max() <= 15.0 and first[:, 3:].abs().max() <= 30.0
    assert first[:, :3].abs().max() > 14.0 and first[:, 3:].abs().max() > 28.0  # spans the range


@pytest.mark.parametrize(
    ("spec", "shape"),
    [([TRUE_POSE], (1, 1)), ([[TRUE_POSE, START_POSE]], (1, 2)), (torch.eye(4).expand(3, 4, 4), (3, 1))],
    ids=["vectors", "vectors-per-start", "matrices"],
)
def test_pose_grid_is_targets_by_starts(spec, shape):
    grid = pose_grid(spec, "ZXY")
    assert grid.shape == (*shape, 4, 4) and grid.dtype == torch.float64


@pytest.mark.parametrize("parameterization", OPTIMIZABLE_PARAMETERIZATIONS)
def test_parameters_round_trip(parameterization):
    pose = pose_vectors_to_transform([TRUE_POSE, START_POSE])
    convention = "ZXY" if parameterization == "euler_angles" else None
    rotation, translation = parameters_from_pose(pose, parameterization, convention)
    back = pose_from_parameters(rotation, translation, parameterization, convention)
    torch.testing.assert_close(back.matrix, pose.matrix)


# ------------------------------------------------------------------------------------------------------ views


def test_view_transforms_recover_the_view_poses():
    views = pose_vectors_to_transform([[0, 0, 0, 0, 850, 0], [90, 0, 0, 0, 850, 0], [30, 20, 0, 10, 900, 5]])
    transforms = view_transforms_from_poses(views)
    torch.testing.assert_close(transforms[0], torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(compose_views(RigidTransform(views.matrix[:1]), transforms).matrix, views.matrix)
    # Moving the patient moves every view the same way: the transforms do not depend on the patient pose.
    patient = pose_vectors_to_transform([[10, -5, 3, 4, 0, -7]]).matrix
    moved = RigidTransform(patient @ views.matrix)
    torch.testing.assert_close(view_transforms_from_poses(moved), transforms)


def test_compose_views_is_pose_major():
    poses = pose_vectors_to_transform([TRUE_POSE, START_POSE])
    transforms = view_transforms_from_poses(pose_vectors_to_transform([[0, 0, 0, 0, 850, 0], [90, 0, 0, 0, 850, 0]]))
    composed = compose_views(poses, transforms).matrix.reshape(2, 2, 4, 4)
    torch.testing.assert_close(composed[1, 1], poses.matrix[1] @ transforms[1])
    with pytest.raises(ValueError, match="view_transforms must be"):
        compose_views(poses, torch.eye(4))


# ----------------------------------------------------------------------------------------------------- starts


def test_multi_start_draws_extra_starts_around_the_first():
    given = pose_grid([[START_POSE], [TRUE_POSE]], "ZXY")  # two targets, one start each
    starts = MultiStart(n_starts=4, rotation_deg=5.0, translation_mm=10.0)
    poses = starts.starting_poses(given, "ZXY", torch.Generator().manual_seed(0))
    assert poses.shape == (2, 4, 4, 4) and torch.equal(poses[:, :1], given)
    offsets = transform_to_pose_vectors(RigidTransform(poses[0])) - torch.tensor(START_POSE, dtype=torch.float64)
    assert offsets[1:, :3].abs().max() <= 5.0 + 1e-9 and offsets[1:, 3:].abs().max() <= 10.0 + 1e-9
    again = starts.starting_poses(given, "ZXY", torch.Generator().manual_seed(0))
    assert torch.equal(poses, again)  # seeded


@pytest.mark.parametrize(
    ("options", "match"),
    [(dict(n_starts=0), "n_starts"), (dict(rotation_deg=-1.0), "rotation_deg"), (dict(n_starts=1), "smaller than")],
)
def test_multi_start_refuses_bad_values(options, match):
    with pytest.raises(ValueError, match=match):
        MultiStart(**options).starting_poses(pose_grid([[START_POSE, TRUE_POSE]], "ZXY"), "ZXY")
