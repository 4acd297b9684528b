"""drreg.metrics.similarity against DiffDRR 0.6.1's diffdrr.metrics (fixture: tests/fixtures/diffdrr/metrics.pt)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch

import drreg.metrics
from drreg.losses import ncc, patch_ncc
from drreg.metrics import (
    GradientNormalizedCrossCorrelation2d,
    MultiscaleNormalizedCrossCorrelation2d,
    MutualInformation,
    NormalizedCrossCorrelation2d,
    Sobel,
    to_patches,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "diffdrr" / "metrics.pt"
# The blur of DiffDRR's Sobel came from a stand-in for torchvision's gaussian_blur (make_metrics.py): its taps are
# float32 there and float64 here, so the blurred outputs agree to ~1e-7 relative, not to float64 rounding.
BLUR_RTOL = 1e-6
RTOL = 1e-9


@pytest.fixture(scope="module")
def fixture() -> dict[str, Any]:
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} absent: run tests/fixtures/diffdrr/make_metrics.py with DiffDRR 0.6.1 installed")
    return torch.load(FIXTURE, weights_only=False)


def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float) -> None:
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol)


# ------------------------------------------------------------------------------------------ names


def test_every_diffdrr_metrics_name_exists(fixture: dict[str, Any]) -> None:
    missing = [n for n in fixture["names"]["diffdrr.metrics"] if not hasattr(drreg.metrics, n)]
    assert not missing
    assert set(fixture["all"]["diffdrr.metrics"]) <= set(drreg.metrics.__all__)


@pytest.mark.parametrize(
    "name", ["NormalizedCrossCorrelation2d", "MultiscaleNormalizedCrossCorrelation2d", "MutualInformation", "Sobel"]
)
def test_arguments_match_diffdrr(fixture: dict[str, Any], name: str) -> None:
    theirs = fixture["signatures"][f"diffdrr.metrics.{name}"]
    ours = inspect.signature(getattr(drreg.metrics, name))
    assert list(ours.parameters) == [p.split(":")[0].split("=")[0].strip() for p in theirs.strip("()").split(", ")]


def test_state_dict_keys_match_diffdrr(fixture: dict[str, Any]) -> None:
    similarity = fixture["similarity"]
    assert sorted(MutualInformation().state_dict()) == similarity["MutualInformation_state_dict"]
    assert sorted(Sobel(1.0).state_dict()) == similarity["Sobel_state_dict"]


# ------------------------------------------------------------------------------------------ values


def _cases(fixture: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return fixture["similarity"][name]


@pytest.mark.parametrize("index", range(5))
def test_ncc_matches_diffdrr(fixture: dict[str, Any], index: int) -> None:
    case, similarity = _cases(fixture, "NormalizedCrossCorrelation2d")[index], fixture["similarity"]
    _close(NormalizedCrossCorrelation2d(**case["kwargs"])(similarity["x1"], similarity["x2"]), case["output"], RTOL)


@pytest.mark.parametrize("index", range(3))
def test_ncc_of_two_channels_matches_diffdrr(fixture: dict[str, Any], index: int) -> None:
    case, similarity = _cases(fixture, "NormalizedCrossCorrelation2d_channels")[index], fixture["similarity"]
    _close(NormalizedCrossCorrelation2d(**case["kwargs"])(similarity["c1"], similarity["c2"]), case["output"], RTOL)


@pytest.mark.parametrize("index", range(4))
def test_multiscale_ncc_matches_diffdrr(fixture: dict[str, Any], index: int) -> None:
    case, similarity = _cases(fixture, "MultiscaleNormalizedCrossCorrelation2d")[index], fixture["similarity"]
    module = MultiscaleNormalizedCrossCorrelation2d(**case["kwargs"])
    _close(module(similarity["x1"], similarity["x2"]), case["output"], RTOL)


@pytest.mark.parametrize("index", range(4))
def test_gradient_ncc_matches_diffdrr(fixture: dict[str, Any], index: int) -> None:
    case, similarity = _cases(fixture, "GradientNormalizedCrossCorrelation2d")[index], fixture["similarity"]
    module = GradientNormalizedCrossCorrelation2d(**case["kwargs"])  # float32 weights: cast to the input's dtype
    _close(module(similarity["x1"], similarity["x2"]), case["output"], BLUR_RTOL)


@pytest.mark.parametrize("index", range(4))
def test_mutual_information_matches_diffdrr(fixture: dict[str, Any], index: int) -> None:
    case, similarity = _cases(fixture, "MutualInformation")[index], fixture["similarity"]
    _close(MutualInformation(**case["kwargs"])(similarity["x1"], similarity["x2"]), case["output"], RTOL)


@pytest.mark.parametrize("index", range(4))
def test_sobel_matches_diffdrr(fixture: dict[str, Any], index: int) -> None:
    case = _cases(fixture, "Sobel")[index]
    _close(Sobel(case["sigma"])(fixture["similarity"]["x1"]), case["output"], BLUR_RTOL)


@pytest.mark.parametrize("patch_size", [1, 2, 3])
def test_to_patches_matches_diffdrr(fixture: dict[str, Any], patch_size: int) -> None:
    patches = fixture["similarity"]["to_patches"]
    expected = patches["outputs"][patch_size]
    actual = to_patches(patches["input"], patch_size)
    assert actual.shape == expected.shape
    assert torch.equal(actual, expected)


# ------------------------------------------------------------------------------------------ features


def _pair(dtype: torch.dtype = torch.float64, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x1 = torch.rand(2, channels, 8, 8, generator=generator, dtype=dtype)
    return x1, 0.5 * x1 + 0.5 * torch.rand(2, channels, 8, 8, generator=generator, dtype=dtype)


@pytest.mark.parametrize(
    "module",
    [
        NormalizedCrossCorrelation2d(),
        NormalizedCrossCorrelation2d(patch_size=3),
        MultiscaleNormalizedCrossCorrelation2d([None, 5], [0.5, 0.5]),
        GradientNormalizedCrossCorrelation2d(sigma=0.5),
    ],
    ids=["ncc", "patch", "multiscale", "gradient"],
)
def test_similarity_is_higher_is_better(module: torch.nn.Module) -> None:
    x1, x2 = _pair()
    same = module(x1, 2.0 * x1)  # no offset: the zero-padded Sobel sees one at the borders
    assert same.shape == (2,)
    torch.testing.assert_close(same, torch.ones(2, dtype=torch.float64), atol=1e-3, rtol=0)
    assert (module(x1, x2) < same).all()


def test_ncc_is_drreg_ncc_for_one_channel() -> None:
    x1, x2 = _pair()
    torch.testing.assert_close(NormalizedCrossCorrelation2d(eps=1e-8)(x1, x2), ncc(x1, x2, eps=1e-8))
    torch.testing.assert_close(NormalizedCrossCorrelation2d(3, eps=1e-8)(x1, x2), patch_ncc(x1, x2, 3, eps=1e-8))


def test_ncc_averages_the_channels() -> None:
    x1, x2 = _pair(channels=3)
    per_channel = torch.stack([NormalizedCrossCorrelation2d()(x1[:, [c]], x2[:, [c]]) for c in range(3)], 1)
    torch.testing.assert_close(NormalizedCrossCorrelation2d()(x1, x2), per_channel.mean(1))


def test_multiscale_weights_are_not_normalized() -> None:
    x1, x2 = _pair()
    single = NormalizedCrossCorrelation2d()(x1, x2)
    torch.testing.assert_close(MultiscaleNormalizedCrossCorrelation2d([None], [3.0])(x1, x2), 3.0 * single)


def test_sobel_shapes_and_sign() -> None:
    ramp = torch.arange(6.0).repeat(1, 1, 6, 1)  # increases along the columns
    gradients = Sobel(0.0)(ramp)
    assert gradients.shape == (1, 2, 6, 6)
    assert torch.equal(gradients[0, 0, 1:-1, 1:-1], torch.full((4, 4), -8.0))
    assert torch.equal(gradients[0, 1, 1:-1, 1:-1], torch.zeros(4, 4))


def test_mutual_information_is_higher_for_related_images() -> None:
    x1, x2 = _pair()
    module = MutualInformation(num_bins=32)
    assert (module(x1, x1) > module(x1, x2)).all()


# ------------------------------------------------------------------------------------------ errors


def test_ncc_refuses_different_shapes() -> None:
    with pytest.raises(ValueError, match="same size"):
        NormalizedCrossCorrelation2d()(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 7))


@pytest.mark.parametrize("patch_size", [0, 2.5, "3"])
def test_ncc_refuses_bad_patch_sizes(patch_size: object) -> None:
    with pytest.raises(ValueError, match="patch_size"):
        NormalizedCrossCorrelation2d(patch_size=patch_size)  # type: ignore[arg-type]


def test_multiscale_needs_a_weight_per_scale() -> None:
    with pytest.raises(ValueError, match="Each scale must have a weight"):
        MultiscaleNormalizedCrossCorrelation2d([None, 9], [1.0])


def test_sobel_refuses_several_channels_and_too_wide_blurs() -> None:
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        Sobel(1.0)(torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="too wide"):
        Sobel(2.0)(torch.rand(1, 1, 6, 6))


def test_to_patches_refuses_a_patch_larger_than_the_image() -> None:
    with pytest.raises(ValueError, match="patch_size"):
        to_patches(torch.rand(1, 1, 4, 4), 5)


# ------------------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize(
    "module",
    [
        NormalizedCrossCorrelation2d(),
        NormalizedCrossCorrelation2d(patch_size=3),
        MultiscaleNormalizedCrossCorrelation2d([None, 3], [0.7, 0.3]),
        GradientNormalizedCrossCorrelation2d(sigma=0.5),
        GradientNormalizedCrossCorrelation2d(patch_size=3, sigma=0.0),
        MutualInformation(sigma=0.2, num_bins=8),
    ],
    ids=["ncc", "patch", "multiscale", "gradient", "gradient_patch", "mutual_information"],
)
def test_gradcheck(module: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(2)
    x1 = torch.rand(1, 1, 5, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    x2 = torch.rand(1, 1, 5, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x1, x2))
