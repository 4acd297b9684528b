"""The cache-friendly ray order of the numba kernels (``drreg/render/kernels/_numba_order.py``).

The order only schedules work: it must be a permutation, keep the rays of one tile in their input order, and leave
every image and pose gradient bitwise what it is for any other order of the same rays (checked by shuffling the
rays through the public fused ops).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from drreg.render.kernels import siddon_fused, trilinear_fused
from drreg.render.trilinear import alpha_range
from tests.render._cases import N_CHANNELS, SHAPE, rays, volume

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed")


@pytest.fixture(scope="module")
def ray_order():
    from drreg.render.kernels._numba_order import ray_order

    return ray_order


def _grid_targets(height: int, width: int, spacing: tuple[float, float]) -> np.ndarray:
    """(H * W, 3) end points of a detector in the x-z plane, raster order (row = z, column = x)."""
    z, x = np.meshgrid(np.arange(height) * spacing[1], np.arange(width) * spacing[0], indexing="ij")
    return np.stack([x.ravel(), np.full(x.size, -5.0), z.ravel()], axis=1)


@pytest.mark.parametrize("n_rays", [0, 1, 2, 7, 1000])
def test_order_is_a_permutation(ray_order, n_rays):
    target = np.random.default_rng(n_rays).normal(0, 50, (n_rays, 3))
    order = ray_order(target, 8.0)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(np.sort(order), np.arange(n_rays))


def test_order_walks_tiles_with_rays_in_input_order(ray_order):
    # A 40 x 30 detector with 2.5-voxel columns and 0.8-voxel rows: tiles of 8 voxels hold rays of 4 columns x 10 rows.
    target = _grid_targets(30, 40, (2.5, 0.8))
    order = ray_order(target, 8.0)
    tile = (np.floor(target[order, 0] / 8.0), np.floor(target[order, 2] / 8.0))
    keys = tile[0] * 1000 + tile[1]
    boundaries = np.flatnonzero(np.diff(keys)) + 1
    # Each tile is visited once (its rays are contiguous in the order), and inside a tile the input order holds.
    assert len(np.unique(keys)) == len(boundaries) + 1
    for segment in np.split(order, boundaries):
        assert np.all(np.diff(segment) > 0)
    # Consecutive rays are neighbours far more often than in raster order (the point of the order).
    step = np.linalg.norm(np.diff(target[order], axis=0), axis=1)
    raster_step = np.linalg.norm(np.diff(target, axis=0), axis=1)
    assert np.median(step) <= np.median(raster_step)


def test_order_survives_non_finite_and_degenerate_targets(ray_order):
    target = np.zeros((6, 3))
    target[1] = np.nan
    target[2] = np.inf
    target[3, 0] = -np.inf
    order = ray_order(target, 8.0)
    np.testing.assert_array_equal(np.sort(order), np.arange(6))


@pytest.mark.parametrize("with_labels", [False, True], ids=["density", "labels"])
@pytest.mark.parametrize("renderer", ["siddon", "trilinear"])
def test_images_and_pose_gradients_do_not_depend_on_the_ray_order(renderer, with_labels):
    density, labels = volume(0)
    labels = labels if with_labels else None
    source, target = rays(0, torch.float64, n_rays=300)
    bounds = alpha_range(SHAPE, source, target).detach()  # the same sampling range for both orders
    weights = torch.rand(len(target), N_CHANNELS if with_labels else 1, generator=torch.Generator().manual_seed(1))
    permutation = torch.randperm(len(target), generator=torch.Generator().manual_seed(0))

    def render(s: torch.Tensor, t: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s, t = s.clone().requires_grad_(True), t.clone().requires_grad_(True)
        if renderer == "siddon":
            image = siddon_fused(density, s, t, labels, N_CHANNELS)
        else:
            image = trilinear_fused(density, s, t, 40, bounds, labels, N_CHANNELS)
        (image * w).sum().backward()
        return image.detach(), s.grad, t.grad

    expected = render(source, target, weights)
    shuffled = render(source[permutation], target[permutation], weights[permutation])
    for got, want in zip(shuffled, expected):
        assert torch.equal(got, want[permutation])
