"""Render the figures of docs/conventions.md with drreg itself (every position below is computed by drreg).

Run from the repository root after a change to the geometry (the PNGs are committed, a few tens of kB each):

    .venv/bin/python docs/scripts/conventions_figures.py

It writes docs/images/conventions_{geometry,detector,euler,translation}.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from drreg import DRR, load_example_ct  # noqa: E402
from drreg.geometry.pose import pose_vectors_to_transform  # noqa: E402

SDD = 1020.0
AP = [0.0, 0.0, 0.0, 0.0, 850.0, 0.0]  # pose vector: ZXY Euler angles (deg), translation (mm)
LATERAL = [90.0, 0.0, 0.0, 0.0, 850.0, 0.0]
OUT = Path(__file__).resolve().parents[1] / "images"
DPI = 80
LABEL = dict(boxstyle="round,pad=0.2", facecolor="white", alpha=0.8, edgecolor="none")


def _save(fig: plt.Figure, name: str) -> None:
    path = OUT / name
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pil_kwargs={"optimize": True})
    plt.close(fig)
    print(f"{path}: {path.stat().st_size // 1024} kB")


def _mm(point: np.ndarray) -> str:
    return "(" + ", ".join(f"{round(float(v)) + 0:d}" for v in point) + ")"


def _image(img: torch.Tensor) -> np.ndarray:
    return img[0].sum(0).detach().cpu().numpy()


def geometry(subject) -> None:
    """Top view (world x-y plane) of the source, the detector and the CT for an AP and a lateral pose."""
    drr = DRR(subject, sdd=SDD, height=200, delx=2.0)
    h, w = drr.detector.height, drr.detector.width
    corners = torch.tensor([0, w - 1, (h - 1) * w, h * w - 1])
    extent = np.array(subject.density.spatial_shape) * np.array(subject.density.spacing) / 2
    fig, axs = plt.subplots(1, 2, figsize=(10, 5.2), tight_layout=True)
    for ax, vector, name in zip(axs, [AP, LATERAL], ["AP: (0, 0, 0, 0, 850, 0)", "lateral: (90, 0, 0, 0, 850, 0)"]):
        pose = pose_vectors_to_transform([vector])
        source, target = drr.detector(pose, corners)
        source, target = source[0, 0].numpy(), target[0].numpy()
        camera_to_world = drr.detector.camera_to_world(pose).matrix[0].numpy()
        centre = camera_to_world[:3, :3] @ np.array([0.0, 0.0, SDD]) + camera_to_world[:3, 3]  # principal point
        ax.add_patch(plt.Rectangle((-extent[0], -extent[1]), 2 * extent[0], 2 * extent[1], color="0.75", zorder=1))
        ax.text(0, 0, "CT\n(centred)", ha="center", va="center", fontsize=9)
        for corner in target:
            ax.plot([source[0], corner[0]], [source[1], corner[1]], color="tab:orange", lw=0.8, zorder=2)
        ax.plot([source[0], centre[0]], [source[1], centre[1]], "--", color="tab:red", lw=1, zorder=2)
        ax.plot(target[:, 0], target[:, 1], color="k", lw=4, solid_capstyle="butt", zorder=3)
        ax.plot(*source[:2], "o", color="tab:red", ms=8, zorder=4)
        below = source[1] < 500  # keep the label inside the axes
        ax.annotate(
            f"source\n{_mm(source)}",
            source[:2],
            xytext=(0, -34) if below else (-10, 10),
            textcoords="offset points",
            fontsize=9,
            ha="center" if below else "right",
        )
        ax.annotate(
            f"detector centre\n{_mm(centre)}", centre[:2], xytext=(8, -30), textcoords="offset points", fontsize=9
        )
        # Camera axes (x: along a row, y: up the detector, z: source to detector) in world coordinates.
        camera = camera_to_world[:3, :3]
        for axis, label, colour in zip(camera.T, "xyz", ["tab:blue", "tab:green", "tab:purple"]):
            if abs(axis[2]) > 0.99:
                ax.annotate(
                    f"camera {label} = world {'+' if axis[2] > 0 else '-'}z (out of the page)",
                    (0.02, 0.02),
                    xycoords="axes fraction",
                    fontsize=8,
                    color=colour,
                )
                continue
            ax.annotate(
                "", source[:2] + 200 * axis[:2], source[:2], arrowprops=dict(arrowstyle="->", color=colour, lw=1.5)
            )
            ax.text(
                *(source[:2] + 200 * axis[:2] + 45 * np.array([abs(axis[1]), abs(axis[0])])),
                f"camera {label}",
                color=colour,
                fontsize=8,
                ha="center",
                va="center",
                bbox=LABEL,
            )
        ax.set(
            title=name,
            xlabel="world x (mm)",
            ylabel="world y (mm)",
            aspect="equal",
            xlim=(-1100, 1000),
            ylim=(-450, 1080),
        )
        ax.grid(alpha=0.3)
    _save(fig, "conventions_geometry.png")


def detector(subject) -> None:
    """An AP DRR with its pixel axes and the projections of world points, computed by perspective_projection."""
    drr = DRR(subject, sdd=SDD, height=128, delx=3.0)
    pose = pose_vectors_to_transform([AP])
    with torch.no_grad():
        img = _image(drr(pose))
    points = torch.tensor([[[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 0.0, 100.0]]], dtype=torch.float64)
    ((origin, x, z),) = drr.perspective_projection(pose, points).numpy()
    fig, ax = plt.subplots(figsize=(6, 6), tight_layout=True)
    h, w = img.shape
    # extent: pixel (r, c) covers [c, c + 1] x [r, r + 1] in the continuous coordinates of the projection.
    ax.imshow(img, cmap="gray", extent=(0, w, h, 0))
    ax.plot(*origin, "o", color="tab:red")
    ax.annotate(
        "world origin\n(CT centre)", origin, xytext=(6, 6), textcoords="offset points", color="tab:red", bbox=LABEL
    )
    for end, label, colour in [(x, "world +x (100 mm)", "tab:blue"), (z, "world +z (100 mm)", "tab:green")]:
        ax.annotate("", end, origin, arrowprops=dict(arrowstyle="->", color=colour, lw=2))
        ax.annotate(
            label,
            end,
            xytext=(0, 10 if end is z else -16),
            textcoords="offset points",
            color=colour,
            ha="center",
            bbox=LABEL,
        )
    ax.add_patch(plt.Rectangle((0, 0), 1, 1, fill=False, color="yellow", lw=1.5))
    ax.annotate(
        "pixel (row 0, column 0):\ncentre at (0.5, 0.5)",
        (1, 1),
        xytext=(25, -45),
        textcoords="offset points",
        color="k",
        bbox=LABEL,
        arrowprops=dict(arrowstyle="->", color="yellow"),
    )
    ax.set(
        title=f"AP, {h} x {w} pixels of {drr.detector.delx:g} mm",
        xlabel="column (continuous x coordinate)",
        ylabel="row (continuous y coordinate)",
    )
    _save(fig, "conventions_detector.png")


def _grid(subject, vectors: list[list[list[float]]], row_titles: list[str], titles: list[list[str]], name: str) -> None:
    drr = DRR(subject, sdd=SDD, height=96, delx=4.0)
    rows, cols = len(vectors), len(vectors[0])
    with torch.no_grad():
        images = drr(pose_vectors_to_transform([v for row in vectors for v in row]))
    fig, axs = plt.subplots(rows, cols, figsize=(1.9 * cols + 1.2, 1.9 * rows + 0.3), squeeze=False)
    for index, ax in enumerate(axs.flat):
        ax.imshow(images[index].sum(0).numpy(), cmap="gray")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, title in zip(axs.flat, [t for row in titles for t in row]):
        ax.set_title(title, fontsize=10)
    for ax, title in zip(axs[:, 0], row_titles):
        ax.set_ylabel(title, fontsize=10)
    fig.tight_layout()
    _save(fig, name)


def euler(subject) -> None:
    """Each ZXY Euler angle of the pose vector, on its own, about the AP view."""
    angles = [-30.0, 0.0, 30.0]
    vectors = [[[a if i == k else 0.0 for i in range(3)] + AP[3:] for a in angles] for k in range(3)]
    titles = [[f"{name} = {a:+.0f}°" if a else "AP" for a in angles] for name in "αβγ"]
    _grid(
        subject, vectors, ["α: about world z", "β: about world x", "γ: about world y"], titles, "conventions_euler.png"
    )


def translation(subject) -> None:
    """Each translation component of the pose vector, on its own, about the AP view."""
    steps = {0: [-60.0, 0.0, 60.0], 1: [700.0, 850.0, 1000.0], 2: [-60.0, 0.0, 60.0]}
    vectors = [[[0.0, 0.0, 0.0] + [v if i == k else AP[3 + i] for i in range(3)] for v in steps[k]] for k in range(3)]
    names = ["tx", "ty", "tz"]
    titles = [[f"{names[k]} = {v:g} mm" if v != AP[3 + k] else "AP" for v in steps[k]] for k in range(3)]
    _grid(subject, vectors, names, titles, "conventions_translation.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    subject = load_example_ct()
    geometry(subject)
    detector(subject)
    euler(subject)
    translation(subject)


if __name__ == "__main__":
    main()
