"""DiffDRR 0.6.1's renderer modules, ``Siddon`` and ``Trilinear``, on drreg's renderers.

``DRR.render`` converts rays to voxel space and calls ``renderer(volume, source, target, img, **kwargs)``, where
``img`` (B, 1, N) holds the ray lengths (mm); the module returns the (B, C, N) image. With ``reducefn="sum"``
(the default) the fused kernels or the torch references of :mod:`drreg.render` compute it; any other reduction
(``"max"`` for a maximum intensity projection, or a callable) runs a pure-torch path that lists every
contribution along each ray as DiffDRR does (``drreg._ray_samples``), then reduces.

What drreg does not reproduce raises ``ValueError``: a ``mode`` other than the default, ``align_corners=True``,
an ``eps`` other than 1e-8.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from drreg._checks import check_bool, check_choice, check_integer, check_number
from drreg._ray_samples import siddon_segments, trilinear_samples
from drreg.render import BACKENDS, alpha_range, integrate
from drreg.render.siddon import DIRECTION_EPS

__all__ = ["Siddon", "Trilinear", "reduce"]

Reduction = str | Callable[[torch.Tensor], torch.Tensor]


def reduce(img: torch.Tensor, reducefn: Reduction) -> torch.Tensor:
    """Combine the contributions along each ray.

    Args:
        img: (B, N, S) contributions of S segments or samples to each of N rays.
        reducefn: ``"sum"``, ``"max"`` (maximum intensity projection) or a callable ``(B, N, S) -> (B, N)``.

    Returns:
        (B, N) pixels.

    Raises:
        ValueError: an unknown name.

    Example:
        >>> reduce(torch.tensor([[[1.0, 3.0, 2.0]]]), "max")
        tensor([[3.]])
    """
    if reducefn == "sum":
        return img.sum(dim=-1)
    if reducefn == "max":
        return img.max(dim=-1).values
    if callable(reducefn):
        return reducefn(img)
    raise ValueError(f"reducefn must be 'sum', 'max' or a callable, got {reducefn!r}")


def _check_common(voxel_shift: object, reducefn: object, eps: object) -> float:
    voxel_shift = check_number(voxel_shift, "voxel_shift")
    if not (reducefn in ("sum", "max") or callable(reducefn)):
        raise ValueError(f"reducefn must be 'sum', 'max' or a callable, got {reducefn!r}")
    if check_number(eps, "eps") != DIRECTION_EPS:  # the fused kernels and references add DiffDRR's default
        raise ValueError(f"drreg renders with DiffDRR's default eps=1e-8 only, got eps={eps}")
    return voxel_shift


def _check_mode(mode: object, expected: str, renderer: str) -> None:
    if mode != expected:
        raise ValueError(
            f"drreg's {renderer} renderer samples the volume with mode={expected!r} only, got mode={mode!r}"
        )


def _check_align_corners(align_corners: object) -> None:
    if check_bool(align_corners, "align_corners"):
        raise ValueError("drreg renders with align_corners=False only (DiffDRR's default), got align_corners=True")


def _channels(mask: torch.Tensor | None) -> tuple[torch.Tensor | None, int | None]:
    """Integer labels and their channel count (``max + 1``, as DiffDRR) from a mask of any dtype."""
    if mask is None:
        return None, None
    labels = mask.to(torch.long)
    return labels, int(labels.max()) + 1


class _Renderer(torch.nn.Module):
    """What Siddon and Trilinear share: DiffDRR's settings, drreg's backend, the voxel shift."""

    name = ""

    def __init__(self, voxel_shift: float, reducefn: Reduction, eps: float, backend: str, memory_budget: int | None):
        super().__init__()
        self.voxel_shift = _check_common(voxel_shift, reducefn, eps)
        self.reducefn = reducefn
        self.eps = eps
        check_choice(backend, BACKENDS, "backend")
        self.backend = backend
        self.memory_budget = check_integer(memory_budget, "memory_budget", minimum=1, allow_none=True, unit="bytes")

    def dims(self, volume: torch.Tensor) -> torch.Tensor:
        """The volume's shape (3,) as a tensor like ``volume`` (DiffDRR's helper)."""
        return torch.tensor(volume.shape).to(volume)

    def _to_centres(self, points: torch.Tensor) -> torch.Tensor:
        """DiffDRR's voxel coordinates (voxel ``i`` fills ``[i - voxel_shift, i + 1 - voxel_shift)``) to drreg's
        (voxel ``i`` centred on ``i``): a shift by ``voxel_shift - 1/2``."""
        return points if self.voxel_shift == 0.5 else points + (self.voxel_shift - 0.5)

    def _render(
        self,
        volume: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        img: torch.Tensor,
        mask: torch.Tensor | None,
        contributions: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        **options: Any,
    ) -> torch.Tensor:
        """(B, C, N) pixels, times the ray lengths ``img`` (B, 1, N): the sum of :func:`drreg.render.integrate` (fused
        or reference, always with a ``mask``), or the (B, N, S) ``contributions(source, target)`` reduced by
        ``reducefn``; ``source`` / ``target`` in DiffDRR's voxel coordinates, ``options`` for ``integrate``."""
        labels, n_channels = _channels(mask)
        source, target = self._to_centres(source), self._to_centres(target)
        if self.reducefn == "sum" or labels is not None:
            out = integrate(
                volume, source, target, self.name, labels, n_channels, backend=self.backend,
                memory_budget=self.memory_budget, **options,
            )  # fmt: skip
            return out * img.to(out.dtype)
        values = contributions(source, target)
        return reduce(values * img.transpose(1, 2).to(values.dtype), self.reducefn)[:, None]

    def extra_repr(self) -> str:
        return f"voxel_shift={self.voxel_shift}, reducefn={self.reducefn!r}, backend={self.backend!r}"


class Siddon(_Renderer):
    """Exact line integrals (Siddon's method), DiffDRR 0.6.1's ``diffdrr.renderers.Siddon``.

    Args:
        voxel_shift: 0.5 (voxel centres at integer indices, drreg's convention) or any other shift of the voxel grid.
        mode: ``"nearest"`` only (the exact integral of the piecewise-constant volume).
        stop_gradients_through_grid_sample: gradients flow only through the intersection lengths (not through the
            density nor the ray length), as DiffDRR's ``torch.no_grad`` around its voxel lookup.
        filter_intersections_outside_volume: accepted for compatibility; it changes nothing (the segments outside
            the volume add zero).
        reducefn: ``"sum"`` (line integral), ``"max"`` or a callable on the (B, N, S) segment contributions.
        eps: DiffDRR's offset of the ray direction; 1e-8 only.
        backend: drreg's ``"auto"``, ``"torch"`` or ``"fused"`` (see :func:`drreg.render.render`), for ``"sum"``.
        memory_budget: bytes of temporaries per chunk of rays for the torch reference.
    """

    name = "siddon"

    def __init__(
        self,
        voxel_shift: float = 0.5,
        mode: str = "nearest",
        stop_gradients_through_grid_sample: bool = False,
        filter_intersections_outside_volume: bool = False,
        reducefn: Reduction = "sum",
        eps: float = 1e-8,
        *,
        backend: str = "auto",
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(voxel_shift, reducefn, eps, backend, memory_budget)
        _check_mode(mode, "nearest", "Siddon")
        self.mode = mode
        self.stop_gradients_through_grid_sample = check_bool(
            stop_gradients_through_grid_sample, "stop_gradients_through_grid_sample"
        )
        self.filter_intersections_outside_volume = check_bool(
            filter_intersections_outside_volume, "filter_intersections_outside_volume"
        )

    def forward(
        self,
        volume: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        img: torch.Tensor,
        align_corners: bool = False,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render rays given in voxel coordinates.

        Args:
            volume: (X, Y, Z) density.
            source: (B, 1, 3) or (B, N, 3) ray origins, voxel coordinates.
            target: (B, N, 3) ray ends, voxel coordinates.
            img: (B, 1, N) ray lengths (mm).
            align_corners: False only.
            mask: optional (X, Y, Z) labels: one channel per label (``max + 1`` channels, summed whatever
                ``reducefn``, as DiffDRR).

        Returns:
            (B, C, N) pixels.
        """
        _check_align_corners(align_corners)
        if self.stop_gradients_through_grid_sample:  # only the intersection lengths carry gradients
            volume, img = volume.detach(), img.detach()
        return self._render(volume, source, target, img, mask, lambda s, t: siddon_segments(volume, s, t))


class Trilinear(_Renderer):
    """Trilinear ray marching, DiffDRR 0.6.1's ``diffdrr.renderers.Trilinear``.

    Args:
        voxel_shift: as for :class:`Siddon`.
        mode: ``"bilinear"`` only (trilinear interpolation of the 3D volume).
        reducefn: ``"sum"`` (rectangle rule), ``"max"`` or a callable on the (B, N, n_points) weighted samples.
        eps: 1e-8 only.
        backend: as for :class:`Siddon`.
        memory_budget: as for :class:`Siddon`.
    """

    name = "trilinear"

    def __init__(
        self,
        voxel_shift: float = 0.5,
        mode: str = "bilinear",
        reducefn: Reduction = "sum",
        eps: float = 1e-8,
        *,
        backend: str = "auto",
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(voxel_shift, reducefn, eps, backend, memory_budget)
        _check_mode(mode, "bilinear", "Trilinear")
        self.mode = mode

    def forward(
        self,
        volume: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        img: torch.Tensor,
        n_points: int = 500,
        align_corners: bool = False,
        mask: torch.Tensor | None = None,
        alphamin: Any = None,
        alphamax: Any = None,
        alpha_bounds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render rays given in voxel coordinates.

        Args:
            volume: (X, Y, Z) density.
            source: (B, 1, 3) or (B, N, 3) ray origins, voxel coordinates.
            target: (B, N, 3) ray ends, voxel coordinates.
            img: (B, 1, N) ray lengths (mm).
            n_points: samples per ray (at least 2).
            align_corners: False only.
            mask: as for :meth:`Siddon.forward`.
            alphamin: the start of the sampling range of the ray parameter (with ``alphamax``; by default the batch's
                entry/exit range).
            alphamax: its end.
            alpha_bounds: drreg's (2,) ``[alphamin, alphamax]``, an alternative to the two.

        Returns:
            (B, C, N) pixels.
        """
        _check_align_corners(align_corners)
        n_points = check_integer(n_points, "n_points", minimum=2)
        if alpha_bounds is None and alphamin is not None and alphamax is not None:
            alpha_bounds = torch.stack([torch.as_tensor(alphamin), torch.as_tensor(alphamax)]).reshape(2)
            alpha_bounds = alpha_bounds.to(device=source.device, dtype=source.dtype)

        def samples(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            bounds = alpha_range(tuple(volume.shape), source, target) if alpha_bounds is None else alpha_bounds
            return trilinear_samples(volume, source, target, n_points, bounds)

        return self._render(volume, source, target, img, mask, samples, n_points=n_points, alpha_bounds=alpha_bounds)
