"""What the metrics tests share: random poses and points, the sdd and the error tolerances."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

SDD = 1020.0
# Absolute tolerances on errors in mm / degrees (float32 poses hold ~1e-7 relative, translations ~1e3 mm).
ERROR_ATOL = {torch.float32: 1e-3, torch.float64: 1e-9}


def pose_matrix(rotation: np.ndarray, translation: np.ndarray, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """(B, 4, 4) poses ``[[R, t], [0, 1]]`` from (B, 3, 3) and (B, 3) arrays."""
    rotation, translation = np.asarray(rotation, dtype=np.float64), np.asarray(translation, dtype=np.float64)
    matrix = np.tile(np.eye(4), (rotation.shape[0], 1, 1))
    matrix[:, :3, :3] = rotation
    matrix[:, :3, 3] = translation
    return torch.as_tensor(matrix, dtype=dtype, device=device)


def random_poses(n: int, seed: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    rng = np.random.default_rng(seed)
    rotation = Rotation.random(n, random_state=seed).as_matrix()
    return pose_matrix(rotation, 300.0 * rng.standard_normal((n, 3)), dtype, device)


def random_points(n: int, seed: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (50.0 * torch.randn(n, 3, generator=generator, dtype=torch.float64)).to(dtype=dtype, device=device)
