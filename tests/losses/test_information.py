"""drreg.losses.information: the mutual information of Parzen histograms and its loss."""

from __future__ import annotations

import math

import pytest
import torch

from drreg.losses import MutualInformationLoss, mutual_information


def _pair(shape: tuple[int, ...] = (2, 1, 6, 7), dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=generator, dtype=dtype)
    return x, 0.7 * x + 0.3 * torch.rand(shape, generator=generator, dtype=dtype)


def _naive(x: torch.Tensor, y: torch.Tensor, sigma: float, bins: int, eps: float, normalize: bool) -> torch.Tensor:
    """The definition, one batch element at a time, with explicit sums."""
    centres = torch.linspace(0.0, 1.0, bins, dtype=x.dtype)
    out = []
    for xb, yb in zip(x.flatten(1), y.flatten(1)):
        kx = torch.exp(-0.5 * ((xb[:, None] - centres) / sigma) ** 2)  # (N, K)
        ky = torch.exp(-0.5 * ((yb[:, None] - centres) / sigma) ** 2)
        px, py = kx.mean(0), ky.mean(0)
        px, py = px / (px.sum() + eps), py / (py.sum() + eps)
        joint = kx.T @ ky
        joint = joint / (joint.sum() + 1e-10)
        hx = -(px * torch.log2(px + eps)).sum()
        hy = -(py * torch.log2(py + eps)).sum()
        hxy = -(joint * torch.log2(joint + eps)).sum()
        information = hx + hy - hxy
        out.append(2 * information / (hx + hy) if normalize else information)
    return torch.stack(out)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize(("sigma", "bins"), [(0.1, 256), (0.05, 16)])
def test_matches_the_definition(normalize: bool, sigma: float, bins: int) -> None:
    x, y = _pair()
    expected = _naive(x, y, sigma, bins, 1e-10, normalize)
    torch.testing.assert_close(mutual_information(x, y, sigma, bins, normalize=normalize), expected)


@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (3, 2, 5, 6), (2, 1, 20)], ids=["one", "channels", "sparse"])
def test_one_value_per_batch_element(shape: tuple[int, ...]) -> None:
    x, y = _pair(shape)
    assert mutual_information(x, y).shape == (shape[0],)
    assert MutualInformationLoss()(x, y).shape == (shape[0],)


def test_related_images_share_more_information() -> None:
    x, y = _pair()
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(5), dtype=x.dtype)
    assert (mutual_information(x, y) > mutual_information(x, noise)).all()
    assert (mutual_information(x, x) >= mutual_information(x, y)).all()


def test_normalized_lies_in_zero_one_and_loss_is_its_complement() -> None:
    x, y = _pair()
    similarity = mutual_information(x, y, bins=32)
    assert ((similarity >= 0) & (similarity <= 1)).all()
    torch.testing.assert_close(MutualInformationLoss(bins=32)(x, y), 1 - similarity)


def test_bins_as_centres() -> None:
    x, y = _pair()
    centres = torch.linspace(0.0, 1.0, 16, dtype=torch.float64)
    torch.testing.assert_close(mutual_information(x, y, bins=centres), mutual_information(x, y, bins=16))


def test_sigma_as_a_tensor() -> None:
    x, y = _pair()
    torch.testing.assert_close(mutual_information(x, y, sigma=torch.tensor(0.2)), mutual_information(x, y, sigma=0.2))


def test_half_precision_is_computed_in_float32() -> None:
    x, y = _pair(dtype=torch.float16)
    assert mutual_information(x, y, bins=16).dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": math.inf}, "sigma"),
        ({"bins": 1}, "bins"),
        ({"bins": 2.5}, "bins"),
        ({"bins": torch.zeros(2, 2)}, "bins"),
        ({"eps": -1.0}, "eps"),
        ({"normalize": "yes"}, "normalize"),
        ({"sigma": torch.ones(2)}, "sigma"),
    ],
)
def test_refuses_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    x, y = _pair()
    with pytest.raises(ValueError, match=match):
        mutual_information(x, y, **kwargs)  # type: ignore[arg-type]


def test_refuses_bad_images() -> None:
    with pytest.raises(ValueError, match="same shape"):
        mutual_information(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 5))
    with pytest.raises(TypeError, match="floating"):
        mutual_information(torch.ones(1, 1, 4, 4, dtype=torch.long), torch.ones(1, 1, 4, 4, dtype=torch.long))


def test_loss_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sigma"):
        MutualInformationLoss(sigma=-1.0)


@pytest.mark.parametrize("normalize", [True, False])
def test_gradcheck(normalize: bool) -> None:
    x, y = _pair((1, 1, 3, 3))
    x.requires_grad_()
    y.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: mutual_information(a, b, sigma=0.2, bins=8, normalize=normalize), (x, y)
    )
