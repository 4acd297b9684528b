"""The DRR module: a CT volume and a detector, rendered from camera poses (DiffDRR-compatible)."""

from __future__ import annotations

import torch
import torchio

from drreg._checks import check_choice, check_finite, check_integer, check_tensor
from drreg.geometry.detector import Detector
from drreg.geometry.pose import RigidTransform, convert
from drreg.render import BACKENDS, RENDERERS, render

__all__ = ["DRR"]

_FORWARD_OPTIONS = ("n_points", "alpha_bounds")


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
        if p_subsample is not None and not 0 < p_subsample <= 1:
            raise ValueError(f"p_subsample must be in (0, 1], got {p_subsample}")
        if patch_size is not None:
            check_integer(patch_size, "patch_size", minimum=1)
        _check_n_points(n_points)
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
        mask = subject.get("mask")
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

    def set_intrinsics_(self, **intrinsics: float) -> None:
        """Change detector intrinsics in place (``sdd``, ``delx``, ``dely``, ``x0``, ``y0``, ``height``, ``width``)."""
        self.detector.set_intrinsics_(**intrinsics)

    def rescale_detector_(self, scale: float) -> None:
        """Resample the detector in place: ``scale`` times as many pixels per side over the same area.

        Example: ``scale=0.25`` turns a 200 × 200 detector of 2 mm pixels into 50 × 50 of 8 mm.
        """
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
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
        if n < 1:
            raise ValueError(f"p_subsample={self.p_subsample} selects no pixel of a {n_pixels}-pixel detector")
        indices = torch.randperm(n_pixels, generator=generator)[:n].sort().values
        return indices.to(self.device)

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
            n_points: samples per ray (trilinear only).
            alpha_bounds: (2,) trilinear sampling range (default: the batch's entry/exit range).

        Returns:
            (B, C, H, W) images; (B, C, n) for a pixel subset with ``reshape=False``.
        """
        unknown = sorted(set(kwargs) - set(_FORWARD_OPTIONS))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {unknown}; DRR.forward also accepts {_FORWARD_OPTIONS}")
        pose = self._pose(args, parameterization, convention, degrees)
        n_points = kwargs.get("n_points", self.n_points)
        _check_n_points(n_points)
        if mask_to_channels and self.mask is None:
            raise ValueError("mask_to_channels=True needs a subject with a 'mask' labelmap (read(..., labelmap=...))")
        if indices is None and self.p_subsample is not None:
            indices = self.sample_indices(generator)
        if indices is not None:
            indices = self._check_indices(indices, len(pose))
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
                    alpha_bounds=kwargs.get("alpha_bounds"),
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
        if len(args) == 1 and isinstance(args[0], RigidTransform):
            pose = args[0]
        elif len(args) == 1 and isinstance(args[0], torch.Tensor) and parameterization in (None, "matrix"):
            pose = RigidTransform(args[0])
        elif len(args) in (1, 2):
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


def _check_n_points(n_points: int) -> None:
    check_integer(n_points, "n_points", minimum=2)
