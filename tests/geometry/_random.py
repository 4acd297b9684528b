"""Random rotations, poses and tensors for the geometry tests, drawn reproducibly (scipy is an independent oracle)."""

from __future__ import annotations

import torch
from scipy.spatial.transform import Rotation

from drreg.geometry import RigidTransform


def random_rotations(n: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> torch.Tensor:
    """(n, 3, 3) uniformly random rotations drawn by scipy (an independent oracle)."""
    return torch.as_tensor(Rotation.random(n, random_state=seed).as_matrix(), dtype=dtype, device=device)


def randn(*shape: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> torch.Tensor:
    """Standard normal samples of ``shape``, drawn in float64 on the CPU from ``seed`` (the same on every device)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)


def random_pose(n: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> RigidTransform:
    """``n`` poses: scipy's random rotations and translations of about 100 mm."""
    rotation = random_rotations(n, dtype, device, seed)
    generator = torch.Generator().manual_seed(seed)
    translation = (100.0 * torch.randn(n, 3, generator=generator, dtype=torch.float64)).to(dtype=dtype, device=device)
    matrix = torch.eye(4, dtype=dtype, device=device).repeat(n, 1, 1)
    matrix[:, :3, :3] = rotation
    matrix[:, :3, 3] = translation
    return RigidTransform(matrix)


def assert_rotation(matrix: torch.Tensor, atol: float) -> None:
    """Assert that ``matrix`` (*, 3, 3) is orthonormal with determinant +1, within ``atol``."""
    identity = torch.eye(3, dtype=matrix.dtype, device=matrix.device).expand_as(matrix)
    torch.testing.assert_close(matrix.mT @ matrix, identity, atol=atol, rtol=0)
    torch.testing.assert_close(torch.linalg.det(matrix), torch.ones_like(matrix[..., 0, 0]), atol=atol, rtol=0)
