"""drreg.physics.materials: compositions against NIST's ICRU-44 tables, the HU calibration line, decompositions."""

from __future__ import annotations

import pytest
import torch

from drreg.physics import (
    DEFAULT_MATERIALS,
    DEFAULT_THRESHOLDS_HU,
    MATERIALS,
    hu_to_mass_density,
    material_labels,
    material_weights,
)
from tests.physics._oracles import AIR_DENSITY, DRY_AIR, ICRU44_CORTICAL_BONE, ICRU44_SOFT_TISSUE


@pytest.mark.parametrize("name", sorted(MATERIALS))
def test_mass_fractions_sum_to_one(name: str) -> None:
    assert sum(MATERIALS[name].composition.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("name", "composition", "density"),
    [("soft_tissue", ICRU44_SOFT_TISSUE, 1.06), ("bone", ICRU44_CORTICAL_BONE, 1.92), ("air", DRY_AIR, AIR_DENSITY)],
)
def test_compositions_are_nist_icru44(name: str, composition: dict[str, float], density: float) -> None:
    material = MATERIALS[name]
    assert dict(material.composition) == composition
    assert material.density == pytest.approx(density)


def test_default_decomposition_names_known_materials() -> None:
    assert all(m in MATERIALS for m in DEFAULT_MATERIALS)
    assert len(DEFAULT_THRESHOLDS_HU) == len(DEFAULT_MATERIALS) - 1


@pytest.mark.parametrize(
    ("hu", "density"),
    [(-1000.0, AIR_DENSITY), (-2000.0, AIR_DENSITY), (-500.0, 0.5), (0.0, 1.0), (1500.0, 1.92), (3000.0, 2.84)],
)
def test_hu_to_mass_density_calibration_points(hu: float, density: float, dtype: torch.dtype) -> None:
    # The calibration line through air (-1000 HU, 0), water (0 HU, 1 g/cm³) and cortical bone (1500 HU, 1.92 g/cm³).
    out = hu_to_mass_density(torch.tensor([hu], dtype=dtype))
    assert out.dtype == dtype
    assert float(out[0]) == pytest.approx(density, rel=1e-6)


def test_hu_to_mass_density_continuous_at_water() -> None:
    hu = torch.tensor([-1e-6, 0.0, 1e-6], dtype=torch.float64)
    assert torch.allclose(hu_to_mass_density(hu), torch.ones(3, dtype=torch.float64), atol=1e-8)


def test_hu_to_mass_density_integer_ct_gives_float32() -> None:
    out = hu_to_mass_density(torch.tensor([[0, 1500]], dtype=torch.int16))
    assert out.dtype == torch.float32
    assert out.shape == (1, 2)


@pytest.mark.parametrize(
    ("hu", "label"),
    [(-1000.0, 0), (-950.0, 1), (-951.0, 0), (-400.0, 2), (349.9, 2), (350.0, 3), (5000.0, 3)],
)
def test_material_labels_half_open_intervals(hu: float, label: int) -> None:
    assert int(material_labels(torch.tensor(hu))) == label


def test_material_labels_metal_and_shape() -> None:
    hu = torch.tensor([[-1000.0, -700.0, 40.0], [900.0, 2999.0, 3000.0]])
    labels = material_labels(hu, metal_threshold=3000.0)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [[0, 1, 2], [3, 3, 4]]


@pytest.mark.parametrize("thresholds", [(0.0, 0.0), (100.0, -100.0), (float("nan"), 1.0)])
def test_material_labels_bad_thresholds(thresholds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        material_labels(torch.zeros(3), thresholds)


def test_material_labels_metal_below_last_threshold() -> None:
    with pytest.raises(ValueError, match="metal_threshold"):
        material_labels(torch.zeros(3), metal_threshold=100.0)


def test_material_weights_partition_of_unity(dtype: torch.dtype) -> None:
    hu = torch.linspace(-1200.0, 2000.0, 321, dtype=dtype)
    weights = material_weights(hu)
    assert weights.shape == (len(DEFAULT_MATERIALS), 321)
    assert weights.dtype == dtype
    assert torch.allclose(weights.sum(0), torch.ones_like(hu), atol=1e-6)
    assert bool((weights >= 0).all() and (weights <= 1).all())


def test_material_weights_tend_to_labels() -> None:
    # Away from the thresholds a narrow logistic is the hard decomposition's one-hot.
    hu = torch.tensor([-1000.0, -700.0, 40.0, 900.0], dtype=torch.float64)
    weights = material_weights(hu, width_hu=1.0)
    one_hot = torch.nn.functional.one_hot(material_labels(hu), len(DEFAULT_MATERIALS)).T.double()
    assert torch.allclose(weights, one_hot, atol=1e-12)


def test_material_weights_half_at_threshold() -> None:
    weights = material_weights(torch.tensor([350.0], dtype=torch.float64), width_hu=10.0)[:, 0]
    assert weights[2:].tolist() == pytest.approx([0.5, 0.5])


def test_material_weights_gradcheck() -> None:
    hu = torch.tensor([-960.0, -420.0, 20.0, 330.0, 800.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: material_weights(h, width_hu=30.0), (hu,))


@pytest.mark.parametrize(("kwargs", "match"), [({"width_hu": 0.0}, "width_hu"), ({"thresholds": (1.0, 0.0)}, "thresh")])
def test_material_weights_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        material_weights(torch.zeros(3), **kwargs)


def test_material_weights_non_finite_hu() -> None:
    with pytest.raises(ValueError, match="hu"):
        material_weights(torch.tensor([0.0, float("nan")]))
