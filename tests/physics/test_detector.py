"""drreg.physics.detector: blur and scatter against their analytic moments, quantum noise against Poisson statistics."""

from __future__ import annotations

import pytest
import torch

from drreg.physics import add_scatter, collimation_mask, gaussian_blur_mm, heel_profile, quantum_noise
from tests._tolerances import ATOL


def _impulse(size: int = 41, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    image = torch.zeros(1, 1, size, size, dtype=dtype)
    image[..., size // 2, size // 2] = 1.0
    return image


def test_blur_preserves_sum(dtype: torch.dtype) -> None:
    blurred = gaussian_blur_mm(_impulse(dtype=dtype), 2.0, (0.5, 1.0))
    assert blurred.dtype == dtype
    assert float(blurred.sum()) == pytest.approx(1.0, abs=10 * ATOL[dtype])


@pytest.mark.parametrize(("sigma_mm", "spacing_mm"), [(2.0, (1.0, 1.0)), (3.0, (0.5, 1.5))])
def test_blur_second_moment_is_sigma_squared(sigma_mm: float, spacing_mm: tuple[float, float]) -> None:
    # The kernel is cut at 4 sigma: 0.1 % of the variance is lost.
    blurred = gaussian_blur_mm(_impulse(61), sigma_mm, spacing_mm)[0, 0]
    offsets = torch.arange(61, dtype=torch.float64) - 30
    rows_mm, cols_mm = offsets * spacing_mm[0], offsets * spacing_mm[1]
    assert float((blurred.sum(1) * rows_mm**2).sum()) == pytest.approx(sigma_mm**2, rel=2e-3)
    assert float((blurred.sum(0) * cols_mm**2).sum()) == pytest.approx(sigma_mm**2, rel=2e-3)


def test_blur_keeps_constant_image_and_batch_shape() -> None:
    image = torch.full((2, 3, 7, 9), 5.0)
    blurred = gaussian_blur_mm(image, 4.0, (1.0, 1.0))
    assert blurred.shape == (2, 3, 7, 9)
    assert torch.allclose(blurred, image)


def test_blur_zero_sigma_is_identity() -> None:
    image = torch.rand(1, 1, 5, 5)
    assert gaussian_blur_mm(image, 0.0, (1.0, 1.0)) is image


@pytest.mark.parametrize(
    ("image", "sigma_mm", "match"), [(torch.zeros(4, 4), 1.0, "image"), (torch.zeros(1, 1, 4, 4), -1.0, "sigma_mm")]
)
def test_blur_bad_arguments(image: torch.Tensor, sigma_mm: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gaussian_blur_mm(image, sigma_mm, (1.0, 1.0))


@pytest.mark.parametrize("spr", [0.0, 0.3, 1.0])
def test_scatter_to_primary_on_flat_image(spr: float) -> None:
    primary = torch.full((1, 1, 32, 48), 100.0, dtype=torch.float64)
    total = add_scatter(primary, spr, 40.0, (2.0, 2.0))
    scatter = total - primary
    assert float(scatter.mean() / primary.mean()) == pytest.approx(spr, rel=1e-12)


def test_scatter_conserves_ratio_away_from_edges() -> None:
    primary = 50.0 * _impulse(81)
    scatter = add_scatter(primary, 0.5, 5.0, (1.0, 1.0)) - primary
    assert float(scatter.sum() / primary.sum()) == pytest.approx(0.5, rel=1e-9)
    assert float(scatter.max()) < 0.5 * float(primary.max())  # spread out, not a copy


def test_scatter_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scatter_to_primary"):
        add_scatter(torch.ones(1, 1, 4, 4), -0.1, 10.0, (1.0, 1.0))
    with pytest.raises(ValueError, match="sigma_mm"):
        add_scatter(torch.ones(1, 1, 4, 4), 0.1, 0.0, (1.0, 1.0))


@pytest.mark.parametrize("mean", [3.0, 100.0])
def test_poisson_counting_variance_equals_mean(mean: float) -> None:
    counts = torch.full((200_000,), mean, dtype=torch.float64)
    noisy = quantum_noise(counts, counts, generator=torch.Generator().manual_seed(1))
    assert float(noisy.mean()) == pytest.approx(mean, rel=0.01)
    assert float(noisy.var()) == pytest.approx(mean, rel=0.02)
    assert torch.equal(noisy, noisy.round())  # whole counts


@pytest.mark.parametrize("mode", ["poisson", "gaussian"])
def test_integrating_variance_is_signal_squared_over_quanta(mode: str) -> None:
    quanta = torch.full((200_000,), 400.0, dtype=torch.float64)
    signal = 3.0 * quanta  # an energy-integrating signal: 3 units per quantum on average
    noisy = quantum_noise(signal, quanta, mode, generator=torch.Generator().manual_seed(2))
    assert float(noisy.mean()) == pytest.approx(1200.0, rel=2e-3)
    assert float(noisy.var()) == pytest.approx(1200.0**2 / 400.0, rel=0.02)


def test_noise_is_seeded() -> None:
    signal = torch.full((1, 1, 16, 16), 50.0)
    first = quantum_noise(signal, signal, generator=torch.Generator().manual_seed(7))
    again = quantum_noise(signal, signal, generator=torch.Generator().manual_seed(7))
    other = quantum_noise(signal, signal, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("mode", ["poisson", "gaussian"])
def test_no_quanta_no_noise(mode: str) -> None:
    signal = torch.tensor([0.0, 0.0, 5.0])
    quanta = torch.tensor([0.0, 0.0, 0.0])
    assert torch.equal(quantum_noise(signal, quanta, mode, torch.Generator().manual_seed(0)), signal)


def test_gaussian_noise_gradcheck() -> None:
    signal = torch.tensor([[20.0, 35.0], [50.0, 80.0]], dtype=torch.float64, requires_grad=True)
    quanta = torch.tensor([[10.0, 12.0], [30.0, 40.0]], dtype=torch.float64, requires_grad=True)

    def noisy(s: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return quantum_noise(s, q, "gaussian", torch.Generator().manual_seed(3))

    assert torch.autograd.gradcheck(noisy, (signal, quanta))


def test_poisson_noise_keeps_signal_gradient() -> None:
    # Straight-through: d noisy / d signal = N / q, the draw over its mean.
    signal = torch.full((8,), 30.0, dtype=torch.float64, requires_grad=True)
    quanta = torch.full((8,), 30.0, dtype=torch.float64)
    noisy = quantum_noise(signal, quanta, generator=torch.Generator().manual_seed(4))
    noisy.sum().backward()
    assert signal.grad is not None
    assert torch.allclose(signal.grad, noisy.detach() / 30.0)


def test_noise_bad_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        quantum_noise(torch.ones(3), torch.ones(3), "uniform")


@pytest.mark.parametrize(("height", "width", "axis"), [(64, 48, "rows"), (63, 10, "rows"), (5, 40, "columns")])
def test_heel_profile_mean_one(height: int, width: int, axis: str) -> None:
    profile = heel_profile(height, width, 0.2, axis, dtype=torch.float64)
    assert profile.shape == (height, width)
    assert float(profile.mean()) == pytest.approx(1.0, rel=1e-12)
    ramp = profile[:, 0] if axis == "rows" else profile[0]
    assert float(ramp[0]) == pytest.approx(0.8) and float(ramp[-1]) == pytest.approx(1.2)
    assert bool((torch.diff(ramp) > 0).all())


def test_heel_profile_bad_arguments() -> None:
    with pytest.raises(ValueError, match="strength"):
        heel_profile(4, 4, 1.0)
    with pytest.raises(ValueError, match="axis"):
        heel_profile(4, 4, 0.1, axis="diagonal")


@pytest.mark.parametrize(("field", "open_rows", "open_cols"), [((0.5, 0.25), 10, 10), ((1.0, 1.0), 20, 40)])
def test_collimation_zero_outside(field: tuple[float, float], open_rows: int, open_cols: int) -> None:
    mask = collimation_mask(20, 40, field)
    rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
    assert int(mask.sum()) == open_rows * open_cols
    assert len(rows) == open_rows and len(cols) == open_cols
    assert int(rows[0]) + int(rows[-1]) == 19 and int(cols[0]) + int(cols[-1]) == 39  # centred
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("field", [(0.0, 0.5), (0.5, 1.5)])
def test_collimation_bad_field(field: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="field"):
        collimation_mask(8, 8, field)
