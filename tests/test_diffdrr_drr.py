"""drreg.drr / drreg.renderers / drreg.utils against DiffDRR 0.6.1 (fixture: tests/fixtures/diffdrr/drr.pt)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
import torchio

from drreg import read
from drreg.drr import DRR, reshape_subsampled_drr
from drreg.geometry import RigidTransform, convert
from drreg.renderers import Siddon, Trilinear, reduce
from drreg.utils import get_pinhole_camera, resample

FIXTURE = Path(__file__).parent / "fixtures" / "diffdrr" / "drr.pt"
POSE = dict(parameterization="euler_angles", convention="ZXY")


@pytest.fixture(scope="module")
def diffdrr_outputs() -> dict:
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} absent: run tests/fixtures/diffdrr/make_drr.py with DiffDRR 0.6.1 installed")
    return torch.load(FIXTURE, weights_only=False)


def _subject(shape: tuple[int, int, int]) -> torchio.Subject:
    """The fixture's subject (make_drr.py), read by drreg."""
    generator = torch.Generator().manual_seed(0)
    hu = (torch.rand(shape, generator=generator) * 1600 - 700).to(torch.int16)[None]
    labels = (torch.rand(shape, generator=generator) * 3).long()[None]
    affine = torch.diag(torch.tensor([2.0, 2.5, 3.0, 1.0], dtype=torch.float64)).numpy()
    return read(torchio.ScalarImage(tensor=hu, affine=affine), labelmap=torchio.LabelMap(tensor=labels, affine=affine))


def _pose() -> tuple[torch.Tensor, torch.Tensor]:
    rot = torch.tensor([[0.1, -0.05, 0.2], [-0.2, 0.1, 0.0]], dtype=torch.float64)
    xyz = torch.tensor([[5.0, 300.0, -4.0], [-3.0, 280.0, 6.0]], dtype=torch.float64)
    return rot, xyz


def _drr(outputs: dict, **kwargs) -> DRR:
    return DRR(_subject(outputs["shape"]), **outputs["detector_args"], **kwargs).double()


@pytest.mark.parametrize("module", ["drr", "detector", "renderers", "utils"])
def test_every_diffdrr_name_exists_at_the_same_path(diffdrr_outputs: dict, module: str) -> None:
    ours = importlib.import_module(f"drreg.{module}")
    missing = [n for n in diffdrr_outputs["names"][f"diffdrr.{module}"] if not hasattr(ours, n)]
    assert not missing


def test_drr_signature_has_diffdrrs_arguments_in_order(diffdrr_outputs: dict) -> None:
    import inspect

    ours = list(inspect.signature(DRR.__init__).parameters)
    theirs = diffdrr_outputs["signatures"]["DRR"]
    expected = [p.split(":")[0].strip() for p in theirs.strip("()").split(", ") if not p.startswith("**")]
    assert ours[: len(expected)] == expected


@pytest.mark.parametrize(
    "name",
    [
        "siddon_sum",
        "siddon_max",
        "siddon_patch",
        "siddon_channels",
        "siddon_stopgrad",
        "trilinear_sum",
        "trilinear_max",
        "trilinear_patch",
        "voxel_shift_0",
    ],
)
def test_images_match_diffdrr(diffdrr_outputs: dict, name: str) -> None:
    case = diffdrr_outputs["images"][name]
    drr = _drr(diffdrr_outputs, **case["kwargs"])
    image = drr(*_pose(), **POSE, **case["call"])
    torch.testing.assert_close(image, case["image"], rtol=1e-5, atol=1e-6)


def test_stop_gradients_leave_only_the_intersection_lengths(diffdrr_outputs: dict) -> None:
    drr = _drr(diffdrr_outputs, stop_gradients_through_grid_sample=True)
    drr.density.requires_grad_(True)
    rot, xyz = _pose()
    rot.requires_grad_(True)
    drr(rot, xyz, **POSE).sum().backward()
    assert drr.density.grad is None and rot.grad is not None and rot.grad.abs().sum() > 0


def test_p_subsample_is_drawn_once_as_diffdrr(diffdrr_outputs: dict) -> None:
    case = diffdrr_outputs["subsample"]
    torch.manual_seed(case["seed"])
    drr = _drr(diffdrr_outputs, p_subsample=case["p"], reshape=False)
    assert drr.detector.subsamples[-1] == case["subsamples"]
    first = drr(*_pose(), **POSE)
    torch.testing.assert_close(first, case["image"], rtol=1e-5, atol=1e-6)
    assert torch.equal(drr.last_indices, torch.tensor(case["subsamples"]))
    torch.testing.assert_close(drr(*_pose(), **POSE), first)  # the same pixels at every call
    full = reshape_subsampled_drr(first, drr.detector, 2)
    assert full.shape == (2, 1, 8, 10) and torch.equal(full.flatten(1)[:, drr.last_indices], first[:, 0])


def test_resample_subset_draws_fresh_pixels(diffdrr_outputs: dict) -> None:
    drr = _drr(diffdrr_outputs, p_subsample=0.25, reshape=False, resample_subset=True)
    generator = torch.Generator().manual_seed(0)
    drr(*_pose(), **POSE, generator=generator)
    first = drr.last_indices
    drr(*_pose(), **POSE, generator=generator)
    assert not torch.equal(first, drr.last_indices)


def test_reshape_false_returns_flat_images(diffdrr_outputs: dict) -> None:
    assert _drr(diffdrr_outputs, reshape=False)(*_pose(), **POSE).shape == (2, 1, 80)


def test_projections_match_diffdrr(diffdrr_outputs: dict) -> None:
    drr = _drr(diffdrr_outputs)
    pose = convert(*_pose(), **POSE)
    case = diffdrr_outputs["projection"]
    torch.testing.assert_close(drr.perspective_projection(pose, pts=case["points"]), case["pixels"])
    case = diffdrr_outputs["inverse_projection"]
    pixels = case["pixels"].clone()
    # DiffDRR inverts its float32 intrinsic matrix: ~1e-6 mm.
    torch.testing.assert_close(drr.inverse_projection(pose, pts=pixels), case["points"], rtol=0, atol=1e-5)
    assert torch.equal(pixels, case["pixels"])  # not modified in place (DiffDRR's is)


def test_pinhole_camera_matches_diffdrr(diffdrr_outputs: dict) -> None:
    drr = _drr(diffdrr_outputs)
    rot, xyz = _pose()
    camera = get_pinhole_camera(drr, convert(rot[:1], xyz[:1], **POSE))
    case = diffdrr_outputs["pinhole"]
    torch.testing.assert_close(camera.intrinsics, case["intrinsics"])
    torch.testing.assert_close(camera.extrinsics, case["extrinsics"], rtol=1e-4, atol=1e-3)
    assert (camera.sdd, camera.x0, camera.y0) == (case["sdd"], case["x0"], case["y0"])


def test_resample_matches_diffdrr(diffdrr_outputs: dict) -> None:
    case = diffdrr_outputs["resample"]
    args = case["args"]
    output = resample(case["input"], args["focal_len"], args["delx"], **{k: v for k, v in args.items() if "new" in k})
    torch.testing.assert_close(output, case["output"])


@pytest.mark.parametrize("persistent", [True, False])
def test_state_dict_keys_match_diffdrr(diffdrr_outputs: dict, persistent: bool) -> None:
    state = DRR(_subject(diffdrr_outputs["shape"]), **diffdrr_outputs["detector_args"], persistent=persistent)
    expected = diffdrr_outputs[f"state_dict_{persistent}"]
    assert {k: tuple(v.shape) for k, v in state.state_dict().items()} == {k: v[0] for k, v in expected.items()}


def test_diffdrr_state_dict_loads(diffdrr_outputs: dict) -> None:
    drr = DRR(_subject(diffdrr_outputs["shape"]), **diffdrr_outputs["detector_args"])
    drr.detector.set_intrinsics_(sdd=999.0, x0=0.0)
    drr.load_state_dict(diffdrr_outputs["state_dict"])
    assert (drr.detector.sdd, drr.detector.center_x, drr.detector.x0) == (400.0, 3.0, -3.0)
    case = diffdrr_outputs["subsample"]
    sparse = DRR(_subject(diffdrr_outputs["shape"]), **diffdrr_outputs["detector_args"], p_subsample=0.25)
    sparse.load_state_dict(case["state_dict"])  # DiffDRR keeps its subset in detector.target only
    assert sparse.detector.subsamples[-1] == case["subsamples"]


def test_renderer_is_a_module_and_its_name_a_string(diffdrr_outputs: dict) -> None:
    drr = _drr(diffdrr_outputs, renderer="trilinear")
    assert isinstance(drr.renderer, Trilinear) and drr.renderer_name == "trilinear"
    assert isinstance(drr.affine, RigidTransform) and isinstance(drr.affine_inverse, RigidTransform)
    assert drr.dtype == torch.float64 and _drr(diffdrr_outputs, patch_size=4).n_patches == 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(mode="bilinear"), "mode='nearest' only"),
        (dict(eps=1e-6), "eps=1e-8 only"),
        (dict(reducefn="mean"), "reducefn must be"),
    ],
)
def test_what_drreg_cannot_match_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Siddon(**kwargs)


def test_reduce() -> None:
    img = torch.tensor([[[1.0, 3.0, 2.0]]])
    assert reduce(img, "sum").item() == 6.0 and reduce(img, "max").item() == 3.0
    assert reduce(img, lambda x: x.mean(-1)).item() == 2.0
    with pytest.raises(ValueError, match="reducefn"):
        reduce(img, "min")
