"""On-the-fly pose-regression data: seeded pose streams, DRRs rendered after transfer, sparse fill, augmentation."""

from __future__ import annotations

import pytest
import torch

from drreg import DRR, RigidTransform
from drreg.regression import (
    PoseDataset,
    PoseRegressionDataModule,
    SimToRealAugmentation,
    UniformPoseSampler,
    fill_sparse,
    rescale_images,
)
from tests._phantoms import blob_subject


@pytest.fixture(scope="module")
def subject():
    return blob_subject()


def _data(subject, **kwargs) -> PoseRegressionDataModule:
    options = dict(volume=subject, height=24, delx=10.0, renderer="siddon", batch_size=4, train_size=16, val_size=4)
    data = PoseRegressionDataModule(**{**options, **kwargs})
    data.setup("fit")
    return data


def test_pose_items_are_pure_functions_of_seed_split_index():
    sampler = UniformPoseSampler()
    a, b = PoseDataset(sampler, 8, seed=1, split=0), PoseDataset(sampler, 8, seed=1, split=0)
    assert torch.equal(torch.stack([a[i]["pose"] for i in range(8)]), torch.stack([b[i]["pose"] for i in range(8)]))
    val = PoseDataset(sampler, 8, seed=1, split=1)
    assert not torch.equal(a[0]["pose"], val[0]["pose"]) and not torch.equal(a[0]["pose"], a[1]["pose"])
    assert not torch.equal(a[0]["pose"], PoseDataset(sampler, 8, seed=2)[0]["pose"])
    with pytest.raises(IndexError):
        a[8]
    # An offset continues the stream (what a resumed training reads).
    assert torch.equal(
        PoseDataset(sampler, 8, seed=1, offset=5)[2]["pose"], PoseDataset(sampler, 16, seed=1)[7]["pose"]
    )


def test_batches_render_the_drrs_of_their_poses(subject):
    data = _data(subject)
    batch = next(iter(data.train_dataloader()))
    rendered = data.render_batch(batch, training=False)
    expected = rescale_images(DRR(subject, sdd=1020.0, height=24, delx=10.0)(RigidTransform(batch["pose"])))
    torch.testing.assert_close(rendered["target"], expected)
    assert rendered["image"] is rendered["target"] and rendered["rays"] == 4 * 24 * 24
    assert rendered["target"].amin(dim=(1, 2, 3)).eq(0).all() and rendered["target"].amax(dim=(1, 2, 3)).eq(1).all()


def test_training_batches_are_augmented_and_validation_ones_are_not(subject):
    data = _data(subject, augmentation=SimToRealAugmentation(p_noise=1.0, noise_std=0.1))
    batch = next(iter(data.train_dataloader()))
    train = data.render_batch(batch, training=True)
    val = data.render_batch(batch, training=False)
    assert (train["image"] - train["target"]).abs().mean() > 0.01
    assert torch.equal(val["image"], val["target"]) and torch.equal(train["target"], val["target"])


def test_sparse_training_renders_a_subset_and_fills_the_rest(subject):
    data = _data(subject, p_subsample=0.25)
    batch = next(iter(data.train_dataloader()))
    sparse = data.render_batch(batch, training=True)
    dense = data.render_batch(batch, training=False)
    assert sparse["rays"] == 4 * int(24 * 24 * 0.25)
    # The filled image is close to the dense one, though not equal.
    error = (sparse["target"] - dense["target"]).abs().mean()
    assert 0 < error < 0.08


def test_fill_sparse_keeps_rendered_pixels_and_fills_smooth_images():
    image = torch.linspace(0, 1, 16)[None, None, None, :].expand(1, 1, 16, 16).contiguous()
    mask = torch.rand(16, 16, generator=torch.Generator().manual_seed(0)) < 0.3
    filled = fill_sparse(image * mask, mask)
    torch.testing.assert_close(filled[..., mask], image[..., mask])
    assert (filled - image).abs().max() < 0.2  # a ramp is filled with local means of the ramp
    board = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 == 0  # every pixel has rendered neighbours
    constant = fill_sparse(torch.full((1, 1, 8, 8), 3.0) * board, board)
    torch.testing.assert_close(constant, torch.full((1, 1, 8, 8), 3.0))


def test_loaders_are_seeded_and_drop_incomplete_training_batches(subject):
    data = _data(subject, train_size=10)
    assert len(data.train_dataloader()) == 2  # 10 poses, batches of 4: the last 2 are dropped
    first = next(iter(data.val_dataloader()))["pose"]
    assert torch.equal(first, next(iter(_data(subject).val_dataloader()))["pose"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(batch_size=0), "batch_size"), (dict(p_subsample=1.5), "p_subsample"), (dict(val_size=-1), "val_size")],
)
def test_bad_data_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PoseRegressionDataModule(**kwargs)


def test_missing_volume_is_named(tmp_path):
    data = PoseRegressionDataModule(volume=str(tmp_path / "ct.nii.gz"))
    with pytest.raises(FileNotFoundError, match="ct.nii.gz"):
        data.setup("fit")


def test_augmentation_is_reproducible_bounded_and_off_in_eval():
    augment = SimToRealAugmentation(p_contrast=1.0, p_gamma=1.0, p_blur=1.0, p_noise=1.0, p_erasing=1.0)
    images = torch.rand(3, 1, 16, 16)
    first = augment(images, generator=torch.Generator().manual_seed(0))
    again = augment(images, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, again) and not torch.equal(first, images)
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(augment.eval()(images), images)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(contrast=(1.5, 0.5)), "contrast"), (dict(p_noise=2.0), "p_noise"), (dict(blur_kernel=4), "odd")],
)
def test_bad_augmentation_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimToRealAugmentation(**kwargs)


def test_voxel_size_resamples_the_ct(subject):
    data = _data(subject, voxel_size=10.0)
    assert data.subject.density.spacing == (10.0, 10.0, 10.0)
    assert tuple(data.drr.density.shape) == (20, 20, 19)  # 200 x 200 x 192 mm at 10 mm
    fine = _data(subject)
    batch = next(iter(data.val_dataloader()))
    coarse_image, fine_image = data.render_batch(batch)["target"], fine.render_batch(batch)["target"]
    # The same anatomy at a coarser sampling: close, not equal.
    assert 0 < (coarse_image - fine_image).abs().mean() < 0.05
    with pytest.raises(ValueError, match="voxel_size"):
        PoseRegressionDataModule(voxel_size=0.0)
