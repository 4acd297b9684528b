"""Pictures: DRRs, per-structure masks, and overlays (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from drreg._checks import check_shape

__all__ = ["plot_drr", "plot_mask", "save_drr_png"]


def _as_axes_list(axs, n: int) -> list[Axes]:
    if axs is None:
        _, axs = plt.subplots(ncols=n, figsize=(5 * n, 5), squeeze=False)
    if isinstance(axs, Axes):
        axs = [axs]
    axs = list(np.asarray(axs, dtype=object).ravel())
    if len(axs) < n:
        raise ValueError(f"axs must hold at least one Axes per image ({n}), got {len(axs)}")
    return axs


def plot_drr(
    img: torch.Tensor,
    title: str | Sequence[str] | None = None,
    ticks: bool = True,
    axs: Axes | Sequence[Axes] | np.ndarray | None = None,
    cmap: str = "gray",
    **imshow_kwargs,
) -> list[Axes]:
    """Show a batch of DRRs, one per axes.

    Args:
        img: (B, C, H, W) images; the C channels are summed for display.
        title: one title for all, or one per image.
        ticks: show the first/last row and column numbers (1-based) on the axes.
        axs: an Axes, or an array/list of at least B Axes; new figure if None.
        cmap: matplotlib colormap.
        **imshow_kwargs: passed to ``Axes.imshow``.

    Returns:
        The list of Axes used.

    Convention:
        row 0 at the top, as the detector numbers its pixels.
    """
    check_shape(img, "B C H W", "img")
    images = img.detach().float().sum(dim=1).cpu().numpy()
    axs = _as_axes_list(axs, len(images))
    titles = [title] * len(images) if title is None or isinstance(title, str) else list(title)
    if len(titles) != len(images):
        raise ValueError(f"title must be one string or one per image ({len(images)}), got {len(titles)}")
    for image, ax, name in zip(images, axs, titles):
        ax.imshow(image, cmap=cmap, **imshow_kwargs)
        height, width = image.shape
        ax.xaxis.tick_top()
        ax.set(
            title=name, xticks=[0, width - 1], xticklabels=[1, width], yticks=[0, height - 1], yticklabels=[1, height]
        )
        if not ticks:
            ax.set_xticks([])
            ax.set_yticks([])
    return axs[: len(images)]


def plot_mask(
    img: torch.Tensor,
    axs: Axes | None = None,
    colors: Sequence[str] | None = None,
    alpha: float = 0.5,
    return_masks: bool = False,
) -> np.ndarray | Axes:
    """Overlay the structures of a multi-channel DRR (``mask_to_channels=True``) as coloured masks.

    Args:
        img: (1, C, H, W) per-structure DRRs; a pixel belongs to channel c where ``img[0, c] > 0``.
        axs: the Axes to draw on (new figure if None).
        colors: one matplotlib colour per channel (tab20 cycle by default).
        alpha: opacity of each mask.
        return_masks: return the RGBA masks instead of the Axes.

    Returns:
        (1, C, H, W, 4) float RGBA masks (transparent outside each structure) if ``return_masks``,
        else the Axes.
    """
    check_shape(img, "1 C H W", "img")
    if axs is None:
        _, axs = plt.subplots(figsize=(5, 5))
    present = (img.detach() > 0).cpu().numpy()[0]
    n_channels = present.shape[0]
    palette = plt.get_cmap("tab20")
    rgba = np.zeros((*present.shape, 4), dtype=np.float32)
    for channel in range(n_channels):
        color = palette(channel % 20) if colors is None else plt.matplotlib.colors.to_rgba(colors[channel])
        rgba[channel][present[channel]] = color
        if present[channel].any():
            axs.imshow(rgba[channel], alpha=alpha)
    return rgba[None] if return_masks else axs


def save_drr_png(img: torch.Tensor, path: str, title: str | Sequence[str] | None = None, dpi: int = 150) -> None:
    """Save a batch of DRRs (B, C, H, W) side by side as a PNG without ticks."""
    fig, axs = plt.subplots(ncols=len(img), figsize=(5 * len(img), 5), squeeze=False)
    plot_drr(img, title=title, ticks=False, axs=axs)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
