"""The numba kernels' unchecked reads (:mod:`drreg.render.kernels._numba_memory`) against numpy indexing and the
scalar expression, and the trilinear forward kernel's interior fast path: at the faces of the grid, where it hands
over to the checked path, and on whole runs of interior samples against the checked path and the reference."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from drreg.render.kernels import trilinear_fused
from drreg.render.trilinear import trilinear
from tests.render._cases import volume
from tests.render._parity import Parity, value_and_grads

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba is not installed")


def _reader():
    from numba import njit

    from drreg.render.kernels._numba_memory import load

    @njit
    def read_all(array, indices):
        out = np.empty(indices.shape[0], dtype=array.dtype)
        for k in range(indices.shape[0]):
            out[k] = load(array, indices[k])
        return out

    return read_all


@pytest.mark.parametrize("array_dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64, np.uint64])
def test_load_reads_what_indexing_reads(array_dtype, index_dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=1000) * 100).astype(array_dtype)
    indices = np.concatenate([[0, 999], rng.integers(0, 1000, size=200)]).astype(index_dtype)
    np.testing.assert_array_equal(_reader()(array, indices), array[indices])


def test_load_refuses_arrays_it_cannot_read_as_flat_memory():
    from numba.core.errors import TypingError

    with pytest.raises(TypingError):  # 2-D
        _reader()(np.zeros((4, 4)), np.zeros(2, dtype=np.int64))
    with pytest.raises(TypingError):  # strided (not C-contiguous)
        _reader()(np.zeros(8)[::2], np.zeros(2, dtype=np.int64))


def test_lerp_pair_is_bitwise_the_scalar_expression():
    from numba import njit

    from drreg.render.kernels._numba_memory import lerp_pair

    @njit
    def both(array, indices, w0, w1):
        fused, scalar = np.empty(indices.shape[0]), np.empty(indices.shape[0])
        for k in range(indices.shape[0]):
            i = indices[k]
            fused[k] = lerp_pair(array, i, w0[k], w1[k])
            scalar[k] = np.float64(array[i]) * w0[k] + np.float64(array[i + 1]) * w1[k]
        return fused, scalar

    rng = np.random.default_rng(1)
    array = (rng.normal(size=1001) * 1e3).astype(np.float32)
    indices = np.concatenate([[0, 999], rng.integers(0, 1000, size=500)])
    w1 = np.concatenate([[0.0, 1.0], rng.random(500)])
    fused, scalar = both(array, indices, 1.0 - w1, w1)
    assert fused.view(np.int64).tolist() == scalar.view(np.int64).tolist()


def test_lerp_pair_refuses_other_than_float32_voxels():
    from numba import njit
    from numba.core.errors import TypingError

    from drreg.render.kernels._numba_memory import lerp_pair

    @njit
    def read(array):
        return lerp_pair(array, 0, 0.5, 0.5)

    with pytest.raises(TypingError):
        read(np.zeros(4))


def test_trilinear_samples_on_the_faces_of_the_grid_match_reference():
    # Lines along the faces, edges and just inside / outside them: samples with coordinates exactly 0, n - 1 and
    # n - 1 -+ 1e-9 sit on the boundary of the interior fast path (all 8 corners in the grid) and the checked path.
    density, _ = volume(31)
    nx, ny, nz = density.shape
    # The volume sits in a buffer of nans: a fast path that took a face sample for an interior one would read past
    # the volume's ends (with weight 0) and turn the ray's value into nan.
    pad = ny * nz + nz + 2
    buffer = torch.full((density.numel() + 2 * pad,), float("nan"))
    buffer[pad:-pad] = density.reshape(-1)
    density = buffer[pad:-pad].view(density.shape)
    rows = []
    for a in (0.0, ny - 1.0, 2.5):  # the first sample (alpha = 0) is the source, exactly on the face x = nx - 1
        rows.append(([nx - 1.0, a, 1.0], [nx - 1.0, a, nz - 2.0]))
        rows.append(([0.0, a, 1.0], [0.0, a, nz - 2.0]))
    for a in (0.0, 1e-9, -1e-9, 0.5):
        for b in (0.0, nz - 1.0, nz - 1.0 - 1e-9, nz - 1.0 + 1e-9, -0.5):
            rows.append(([-3.0, a, b], [nx + 2.0, a, b]))  # along x, on/near the faces y = a, z = b
            rows.append(([a, ny - 1.0, -3.0], [a + 1e-9, ny - 1.0, nz + 2.0]))  # along z, on the face y = ny - 1
    source = torch.tensor([r[0] for r in rows], dtype=torch.float64)
    target = torch.tensor([r[1] for r in rows], dtype=torch.float64)
    bounds = torch.tensor([0.0, 1.0], dtype=torch.float64)
    n_points = 4 * max(nx, nz) + 1  # samples on integer coordinates too
    grad_out = torch.randn(len(rows), 1, generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    expected = value_and_grads(
        lambda d, s, t: trilinear(d, s, t, n_points, bounds), density, source, target, grad_out=grad_out
    )
    fused = value_and_grads(
        lambda d, s, t: trilinear_fused(d, s, t, n_points, bounds), density, source, target, grad_out=grad_out
    )
    assert (expected.value > 0).sum() > len(rows) // 2
    # Pose gradients are left out: at integer coordinates they are one-sided derivatives at kinks, which the
    # reference's float32 sampling grid may take from the other side (see test_numba.py).
    Parity().tensors((fused.value, fused.grads[0]), (expected.value, expected.grads[0]), ("value", "density gradient"))
    # value_and_grads renders fresh copies of its inputs: render the padded volume itself too.
    Parity().tensors((trilinear_fused(density, source, target, n_points, bounds),), (expected.value,), ("value",))


@pytest.mark.parametrize("bounds", [(0.15, 1.4), (1.4, 0.15)], ids=["increasing", "decreasing"])
def test_trilinear_interior_runs_sum_what_the_checked_path_sums(bounds):
    # With monotone sample parameters, the forward kernel sums each ray's run of interior samples without tests;
    # told they are not monotone, it checks every sample. Both must give the same bits, and the reference's values.
    from drreg.render.kernels._numba_host import trilinear_forward
    from drreg.render.kernels._numba_order import ray_order
    from drreg.render.kernels._numba_trilinear import trilinear_forward_kernel
    from tests.render._cases import rays

    density, _ = volume(32)
    source, target = rays(33, torch.float64)
    alpha_bounds = torch.tensor(bounds, dtype=torch.float64)
    n_points = 64
    unit = torch.linspace(0, 1, n_points).double()
    alphas = (unit * (alpha_bounds[1] - alpha_bounds[0]) + alpha_bounds[0]).numpy()
    step = float((alpha_bounds[1] - alpha_bounds[0]) / (n_points - 1))
    flat = density.reshape(-1).numpy()
    shape = np.asarray(density.shape, dtype=np.int64)
    order = ray_order(target.numpy(), 8.0)
    outs = []
    for monotone in (True, False):
        out = np.zeros((len(target), 1))
        whole = np.array([0, shape[0], 0, shape[1], 0, shape[2]], dtype=np.int64)
        labels = np.zeros(1, dtype=np.int64)
        args = (flat, shape, whole, labels, False, source.numpy(), target.numpy(), order, alphas)
        trilinear_forward_kernel(*args, monotone, step, out)
        outs.append(out)
    assert (outs[0] != 0).sum() > len(target) // 2
    assert outs[0].view(np.int64).tolist() == outs[1].view(np.int64).tolist()
    expected = trilinear(density, source, target, n_points, alpha_bounds)
    fused = trilinear_forward(density, source, target, alpha_bounds, torch.empty(0, dtype=torch.int64), 1, n_points)
    Parity().tensors((fused,), (expected,), ("value",))
