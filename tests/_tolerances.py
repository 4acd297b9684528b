"""Tolerances per dtype, in one table (see ../shared/reference/README.md for the bars)."""

import torch

# Relative L2 errors against the float64 DiffDRR fixtures.
IMAGE_RTOL = {torch.float32: 1e-5, torch.float64: 1e-9}
SIDDON_GRAD_RTOL = {torch.float32: 1e-3, torch.float64: 1e-6}
TRILINEAR_GRAD_RTOL = {torch.float32: 1e-4, torch.float64: 1e-6}
# Absolute errors on rotation matrices.
MATRIX_ATOL = {torch.float32: 1e-5, torch.float64: 1e-6}
# Generic elementwise tolerances for round trips and parity checks.
ATOL = {torch.float16: 1e-2, torch.bfloat16: 1e-2, torch.float32: 1e-5, torch.float64: 1e-10}
RTOL = {torch.float16: 1e-2, torch.bfloat16: 1e-2, torch.float32: 1e-5, torch.float64: 1e-10}


def relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||actual - expected|| / ||expected|| computed in float64."""
    actual, expected = actual.double(), expected.double()
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-300))
