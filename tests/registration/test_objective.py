"""One registration step: pixel draws, downsampled targets, the loss of rendered poses, and the loss's checks."""

from __future__ import annotations

import pytest
import torch

from drreg import DRR
from drreg.losses import GradientNCCLoss, MSELoss, NCCLoss, PatchNCCLoss
from drreg.registration import (
    downsample_targets,
    draw_pixel_indices,
    pose_vectors_to_transform,
    registration_loss,
    resolve_loss,
)
from tests.registration._setup import SIZE, SMALL, START_POSE, TRUE_POSE

# ----------------------------------------------------------------------------------------------------- pixels


def test_pixel_draws_are_fresh_distinct_and_sorted():
    generator = torch.Generator().manual_seed(0)
    first = draw_pixel_indices(20, 30, 0.1, generator=generator)
    second = draw_pixel_indices(20, 30, 0.1, generator=generator)
    assert first.shape == (60,) and len(torch.unique(first)) == 60
    assert torch.equal(first, first.sort().values) and 0 <= first.min() and first.max() < 600
    assert not torch.equal(first, second)
    assert draw_pixel_indices(20, 30, None) is None


def test_patch_draws_are_whole_patches():
    indices = draw_pixel_indices(20, 30, 0.25, patch_size=5, generator=torch.Generator().manual_seed(1))
    patches = indices.reshape(-1, 25)
    assert len(patches) == round(0.25 * 600 / 25)
    rows, cols = patches // 30, patches % 30
    assert torch.equal(rows.max(1).values - rows.min(1).values, torch.full((len(patches),), 4))
    assert torch.equal(cols.max(1).values - cols.min(1).values, torch.full((len(patches),), 4))


@pytest.mark.parametrize(
    ("p", "patch", "match"),
    [
        (0.0, None, "p_subsample must be in"),
        (1.5, None, "p_subsample must be in"),
        (1e-4, None, "empty pixel subset"),
        (0.5, 40, "does not fit"),
    ],
)
def test_pixel_draws_reject_bad_input(p, patch, match):
    with pytest.raises(ValueError, match=match):
        draw_pixel_indices(20, 30, p, patch_size=patch)


def test_downsampling_averages_blocks():
    images = torch.rand(2, 1, 8, 12, dtype=torch.float64)
    coarse = downsample_targets(images, 4, 6)
    torch.testing.assert_close(coarse, images.reshape(2, 1, 4, 2, 6, 2).mean((3, 5)))
    assert downsample_targets(images, 8, 12) is images


# ------------------------------------------------------------------------------------------------------- loss


def test_sparse_loss_on_every_pixel_equals_the_dense_loss(subject):
    drr = DRR(subject, reshape=False, **SMALL)
    pose = pose_vectors_to_transform([START_POSE, TRUE_POSE])
    targets = drr(pose_vectors_to_transform([TRUE_POSE, TRUE_POSE])).reshape(2, 1, SIZE, SIZE)  # reshape=False: flat
    loss = NCCLoss()
    dense = registration_loss(drr, pose, targets, loss)
    sparse = registration_loss(drr, pose, targets, loss, indices=torch.arange(SIZE * SIZE))
    torch.testing.assert_close(sparse, dense)
    assert dense[1] < 1e-6 < dense[0]


@pytest.mark.parametrize(
    ("loss", "p_subsample", "expected"),
    [("ncc", 0.1, NCCLoss), ("mse", None, MSELoss), (PatchNCCLoss(patch_size=5), 0.5, PatchNCCLoss)],
    ids=["name", "name-dense", "class"],
)
def test_losses_by_name_or_class(loss, p_subsample, expected):
    assert isinstance(resolve_loss(loss, p_subsample), expected)


@pytest.mark.parametrize(
    ("loss", "p_subsample", "match"),
    [
        ("patch_ncc", None, "needs a patch_size"),
        (GradientNCCLoss(), 0.5, "needs whole images"),
        ("nc", None, "unknown loss"),
    ],
)
def test_losses_refuse_what_they_cannot_compare(loss, p_subsample, match):
    with pytest.raises(ValueError, match=match):
        resolve_loss(loss, p_subsample)
