"""Empty-space skipping of the numba kernels (:mod:`drreg.render.kernels._numba_occupancy`): the occupied box against
numpy's ``nonzero``, and Siddon walks and trilinear samples clipped to it against those of the whole volume, bit for
bit, on rays that enter the box through its faces, edges and corners, run along its faces, or start inside it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from drreg.render.siddon import siddon
from tests.render._cases import N_CHANNELS, rays
from tests.render._parity import Parity

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed")

SHAPE = (21, 17, 6)


def _oracle(density: np.ndarray) -> list[int]:
    """The box (lo0, hi0, lo1, hi1, 0, nz) of the voxels that are not ±0.0 (nan counts), from numpy."""
    occupied = (density != 0) | np.isnan(density)
    nz = density.shape[2]
    if not occupied.any():
        return [0, 0, 0, 0, 0, nz]
    x, y, _ = np.nonzero(occupied)
    return [int(x.min()), int(x.max()) + 1, int(y.min()), int(y.max()) + 1, 0, nz]


def _box(density: np.ndarray) -> list[int]:
    from drreg.render.kernels._numba_occupancy import occupied_box

    flat = np.ascontiguousarray(density, dtype=np.float32).reshape(-1)
    return occupied_box(flat.view(np.uint32), *density.shape).tolist()


def _shelled(seed: int, box=(4, 15, 3, 12), fill: float = 0.0) -> np.ndarray:
    """Random density in [0.1, 1) inside ``box`` (x and y ranges, all z), ``fill`` outside."""
    rng = np.random.default_rng(seed)
    density = np.full(SHAPE, fill, dtype=np.float32)
    lo0, hi0, lo1, hi1 = box
    density[lo0:hi0, lo1:hi1] = rng.uniform(0.1, 1.0, size=(hi0 - lo0, hi1 - lo1, SHAPE[2]))
    return density


@pytest.mark.parametrize("seed", range(40))
def test_occupied_box_is_numpys(seed):
    rng = np.random.default_rng(seed)
    density = np.zeros(SHAPE, dtype=np.float32)
    n = int(rng.integers(0, 6))  # 0 to 5 non-zero voxels anywhere (0: an empty box)
    for _ in range(n):
        index = tuple(int(rng.integers(0, s)) for s in SHAPE)
        density[index] = rng.choice([1.0, -2.5, np.nan, np.inf, 1e-45])  # 1e-45: the smallest subnormal
    density[density == 0] = rng.choice([0.0, -0.0], size=int((density == 0).sum()))  # -0.0 is empty too
    assert _box(density) == _oracle(density)


def test_occupied_box_of_full_and_empty_volumes():
    assert _box(np.ones(SHAPE, dtype=np.float32)) == [0, SHAPE[0], 0, SHAPE[1], 0, SHAPE[2]]
    assert _box(np.zeros(SHAPE, dtype=np.float32)) == [0, 0, 0, 0, 0, SHAPE[2]]
    assert _box(np.full(SHAPE, -0.0, dtype=np.float32)) == [0, 0, 0, 0, 0, SHAPE[2]]
    # Long slabs: more than one block of the early-exit reduction per slab, the non-zero voxel in the last one.
    long = np.zeros((3, 40, 60), dtype=np.float32)
    long[2, 39, 59] = 5.0
    assert _box(long) == [2, 3, 39, 40, 0, 60]


def _edge_rays(box) -> tuple[np.ndarray, np.ndarray]:
    """Lines through the box's faces, edges and corners (planes at k - 1/2), along its faces, grazing it."""
    lo0, hi0, lo1, hi1 = (b - 0.5 for b in box)
    nz = SHAPE[2]
    rows = [
        ((lo0, lo1, -3.0), (lo0, lo1, nz + 2.0)),  # along the box's edge, parallel to z
        ((lo0 - 5.0, lo1 - 5.0, 2.0), (hi0 + 5.0, hi1 + 5.0, 2.5)),  # through two opposite edges (diagonal)
        ((lo0 - 4.0, lo1 - 4.0, -1.0), (lo0 + 4.0, lo1 + 4.0, nz + 1.0)),  # through a corner edge of the box
        ((-5.0, lo1, 2.2), (SHAPE[0] + 5.0, lo1, 2.2)),  # along the face y = lo1 - 1/2
        ((-5.0, hi1, 2.2), (SHAPE[0] + 5.0, hi1, 2.2)),  # along the face y = hi1 - 1/2
        ((lo0, -5.0, 1.7), (lo0, SHAPE[1] + 5.0, 1.7)),  # along the face x = lo0 - 1/2
        ((lo0 - 0.25, -5.0, 1.7), (lo0 - 0.25, SHAPE[1] + 5.0, 1.7)),  # beside the box, through the empty shell
        ((lo0 + 1.0, lo1 + 1.0, 1.0), (-30.0, -20.0, 3.0)),  # starts inside, leaves through a corner region
        ((hi0 + 3.0, lo1 - 3.0, 0.5), (lo0 - 3.0, hi1 + 3.0, 4.5)),  # decreasing x, increasing y
        ((lo0 - 2.0, lo1 + 0.5, 2.0), (hi0 + 2.0, lo1 + 0.5, 2.0)),  # along x on a voxel edge of the box's y planes
    ]
    source = np.array([r[0] for r in rows], dtype=np.float64)
    target = np.array([r[1] for r in rows], dtype=np.float64)
    random_source, random_target = rays(7, torch.float64, shape=SHAPE, n_rays=200)
    return np.concatenate([source, random_source.numpy()]), np.concatenate([target, random_target.numpy()])


def _clipping_case(density: np.ndarray, with_labels: bool, seed: int):
    """The kernels' arguments for the edge rays through ``density``: its occupied box, the whole box, rays, flat
    volume, shape, ray order, labels (random channels, or none) and the channel count."""
    from drreg.render.kernels._numba_order import ray_order

    box = np.asarray(_box(density), dtype=np.int64)
    whole = np.array([0, SHAPE[0], 0, SHAPE[1], 0, SHAPE[2]], dtype=np.int64)
    source, target = _edge_rays((4, 15, 3, 12))
    flat = density.reshape(-1)
    labels = np.random.default_rng(seed).integers(0, N_CHANNELS, size=flat.size) if with_labels else np.zeros(1, int)
    channels = N_CHANNELS if with_labels else 1
    shape = np.asarray(SHAPE, dtype=np.int64)
    return box, whole, source, target, flat, shape, ray_order(target, 8.0), labels, channels


def _assert_bitwise(images: list[np.ndarray], jacobians: list[np.ndarray], n_rays: int) -> None:
    """Clipped (first) and whole (second) results are the same bits, and not trivially zero."""
    assert (images[0] != 0).sum() > n_rays // 3
    assert images[0].view(np.int64).tolist() == images[1].view(np.int64).tolist()
    if jacobians:
        assert (jacobians[0] != 0).sum() > n_rays
        assert jacobians[0].view(np.int64).tolist() == jacobians[1].view(np.int64).tolist()


@pytest.mark.parametrize("fill", [0.0, -0.0], ids=["zeros", "negative-zeros"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["density", "labels"])
def test_clipped_walks_are_bitwise_whole_walks(fill, with_labels):
    from drreg.render.kernels._numba_siddon import siddon_forward_kernel, siddon_jacobian_kernel

    density = _shelled(1, fill=fill)
    box, whole, source, target, flat, shape, order, labels, channels = _clipping_case(density, with_labels, 2)
    assert box.tolist() == [4, 15, 3, 12, 0, SHAPE[2]]
    images, jacobians = [], []
    for walk_box in (box, whole):
        out = np.zeros((len(target), channels))
        siddon_forward_kernel(flat, shape, walk_box, labels, with_labels, source, target, order, out)
        images.append(out)
        if not with_labels:
            value, jacobian = np.zeros((len(target), 1)), np.zeros((len(target), 6))
            siddon_jacobian_kernel(flat, shape, walk_box, source, target, order, value, jacobian)
            assert value.view(np.int64).tolist() == out.view(np.int64).tolist()
            jacobians.append(jacobian)
    _assert_bitwise(images, jacobians, len(target))


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (1.2, -0.1)], ids=["increasing", "decreasing"])
@pytest.mark.parametrize("with_labels", [False, True], ids=["density", "labels"])
def test_clipped_trilinear_samples_are_bitwise_all_samples(with_labels, bounds):
    from drreg.render.kernels._numba_trilinear import trilinear_forward_kernel, trilinear_jacobian_kernel

    box, whole, source, target, flat, shape, order, labels, channels = _clipping_case(_shelled(5), with_labels, 6)
    # Samples every 1/8 voxel or so, on integer and half-integer coordinates too (the box's faces are at k - 1/2,
    # its first and last corners at lo - 1 and hi).
    alphas = np.linspace(bounds[0], bounds[1], 241)
    step = float(alphas[1] - alphas[0])
    unit = np.linspace(0.0, 1.0, len(alphas))
    images, jacobians = [], []
    for walk_box in (box, whole):
        out = np.zeros((len(target), channels))
        trilinear_forward_kernel(
            flat, shape, walk_box, labels, with_labels, source, target, order, alphas, True, step, out
        )
        images.append(out)
        if not with_labels:
            value, jacobian = np.zeros((len(target), 1)), np.zeros((len(target), 8))
            trilinear_jacobian_kernel(flat, shape, walk_box, source, target, order, alphas, unit, step, value, jacobian)
            assert value.view(np.int64).tolist() == out.view(np.int64).tolist()
            jacobians.append(jacobian)
    _assert_bitwise(images, jacobians, len(target))


def test_host_skips_empty_space_only_when_it_pays_and_matches_reference():
    from drreg.render.kernels._numba_host import siddon_forward, siddon_jacobian

    density = torch.from_numpy(_shelled(3))
    source, target = (torch.from_numpy(a) for a in _edge_rays((4, 15, 3, 12)))
    # Enough rays to search the box (rays x longest side >= voxels / 4), and a single ray (which walks everything).
    assert len(target) * max(SHAPE) * 4 >= density.numel()
    no_labels = torch.empty(0, dtype=torch.int64)
    expected = siddon(density, source, target)
    Parity().tensors((siddon_forward(density, source, target, no_labels, 1),), (expected,), ("value",))
    Parity().tensors((siddon_jacobian(density, source, target)[0],), (expected,), ("value",))
    one = siddon_forward(density, source[:1], target[:1], no_labels, 1)
    assert (
        one.view(torch.int32).tolist()
        == siddon_forward(density, source, target, no_labels, 1)[:1].view(torch.int32).tolist()
    )


def test_a_volume_edited_in_place_is_never_rendered_with_a_stale_box():
    # The box is searched at every call, from the values the kernel reads: an edit through .data (which does not
    # bump the tensor's version counter) or through a NumPy view shows in the next image.
    from drreg.render.kernels._numba_host import siddon_forward

    density = torch.from_numpy(_shelled(4))
    source, target = _edge_rays((4, 15, 3, 12))
    # Two more lines: along z through the column (0, 0) and along x through (., 16, 2).
    source = torch.from_numpy(np.concatenate([source, [[0.0, 0.0, -3.0], [-3.0, 16.0, 2.0]]]))
    target = torch.from_numpy(np.concatenate([target, [[0.0, 0.0, 9.0], [25.0, 16.0, 2.0]]]))
    no_labels = torch.empty(0, dtype=torch.int64)
    before = siddon_forward(density, source, target, no_labels, 1)
    density.data[0, 0, :] = 7.0  # a corner column of the empty shell
    density.numpy()[SHAPE[0] - 1, SHAPE[1] - 1, 2] = 3.0  # and the opposite corner
    after = siddon_forward(density, source, target, no_labels, 1)
    Parity().tensors((after,), (siddon(density, source, target),), ("value",))
    assert before[-2:].tolist() == [[0.0], [0.0]]
    # Siddon sums density x parameter length: 6 voxels of 7 over 1/12 each, one voxel of 3 over 1/28.
    assert after[-2:].tolist() == [[pytest.approx(6 * 7.0 / 12)], [pytest.approx(3.0 / 28)]]
