"""drreg.physics.model: slabs against Beer-Lambert with xraydb, beam hardening, noise statistics, gradcheck, and the
fused kernels against the torch reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from drreg import read
from drreg.physics import MATERIALS, PhysicsDRR, Spectrum, XRayPhysics, tube_spectrum
from tests._phantoms import blob_subject
from tests._tolerances import ATOL, RTOL
from tests.physics._oracles import (
    AIR_DENSITY,
    AP_KWARGS,
    AP_POSE,
    DRY_AIR,
    ICRU44_CORTICAL_BONE,
    ICRU44_SOFT_TISSUE,
    WATER,
    slab_subject,
    xraydb_mu,
)

IDEAL: dict[str, Any] = {"scintillator_mm": 0.0, "photons_per_pixel": 1.0}
CSI = {"Cs": 0.511549, "I": 0.488451}  # NIST "Cesium iodide"
# Line integrals of the DRR carry float32 geometry (its world-to-voxel map holds float32 values): float64 images of
# the CT slabs agree with the oracle to 1e-8, not 1e-15.
SLAB_RTOL = {torch.float32: 1e-4, torch.float64: 1e-6}


def _spectrum_arrays(kvp: float) -> tuple[np.ndarray, np.ndarray]:
    spectrum = tube_spectrum(kvp)
    return spectrum.energies_kev.numpy(), spectrum.probabilities.numpy()


def _oracle(
    kvp: float, layers: list[tuple[dict[str, float], float, float]], detector: str, efficiency: np.ndarray | None = None
) -> float:
    """``Σ_E s(E) η(E) w(E) exp(-Σ μ(E) ρ t)`` over ``(composition, g/cm³, mm)`` layers, normalised to air."""
    energies, s = _spectrum_arrays(kvp)
    eta = np.ones_like(energies) if efficiency is None else efficiency
    attenuation = sum(xraydb_mu(c, energies) * rho * t_mm / 10.0 for c, rho, t_mm in layers)
    weight = energies if detector == "integrating" else np.ones_like(energies)
    return float((s * eta * weight * np.exp(-attenuation)).sum() / (s * eta * weight).sum() * (s * eta).sum())


# --- XRayPhysics on given line integrals ----------------------------------------------------------------------------


@pytest.mark.parametrize("detector", ["counting", "integrating"])
@pytest.mark.parametrize("thickness_mm", [1.0, 30.0, 200.0])
def test_water_slab_is_beer_lambert(detector: str, thickness_mm: float, dtype: torch.dtype) -> None:
    physics = XRayPhysics(kvp=80, materials=("water",), detector=detector, **IDEAL)
    image = physics(torch.full((1, 1, 2, 2), thickness_mm, dtype=dtype))  # 1 g/cm³ · t mm
    assert image.shape == (1, 1, 2, 2) and image.dtype == dtype
    expected = _oracle(80, [(WATER, 1.0, thickness_mm)], detector)
    assert torch.allclose(image, torch.full_like(image, expected), rtol=10 * RTOL[dtype], atol=0)


def test_scintillator_efficiency() -> None:
    # η(E) = 1 - exp(-μ_CsI ρ t) of a 0.6 mm CsI screen; the raw signal in air is N0 Σ s η.
    physics = XRayPhysics(kvp=100, materials=("water",), scintillator_mm=0.6, photons_per_pixel=1.0)
    energies, s = _spectrum_arrays(100)
    eta = 1.0 - np.exp(-xraydb_mu(CSI, energies) * MATERIALS["csi"].density * 0.06)
    assert physics.air_signal == pytest.approx(float((s * eta).sum()), rel=1e-6)
    image = physics(torch.full((1, 1, 1, 1), 50.0, dtype=torch.float64))
    assert float(image) == pytest.approx(_oracle(100, [(WATER, 1.0, 50.0)], "integrating", eta), rel=1e-9)


@pytest.mark.parametrize("energy_kev", [30.0, 60.0, 100.0])
def test_single_energy_negative_log_is_mu_rho_t(energy_kev: float, dtype: torch.dtype) -> None:
    spectrum = Spectrum(torch.tensor([energy_kev], dtype=torch.float64), torch.ones(1, dtype=torch.float64), 120.0)
    physics = XRayPhysics(materials=("water", "bone"), spectrum=spectrum, output="negative_log", **IDEAL)
    line_integrals = torch.tensor([[[[40.0]], [[1.92 * 15.0]]]], dtype=dtype)  # 40 mm water, 15 mm cortical bone
    mu_water, mu_bone = (float(xraydb_mu(c, np.array([energy_kev]))[0]) for c in (WATER, ICRU44_CORTICAL_BONE))
    expected = mu_water * 1.0 * 4.0 + mu_bone * 1.92 * 1.5
    assert float(physics(line_integrals)) == pytest.approx(expected, rel=10 * RTOL[dtype])


@pytest.mark.parametrize("detector", ["counting", "integrating"])
def test_beam_hardening(detector: str) -> None:
    # -log(T)/t falls with thickness (the beam hardens) and tends to the spectrum-weighted mean μ as t -> 0.
    physics = XRayPhysics(kvp=100, materials=("water",), detector=detector, output="negative_log", **IDEAL)
    thickness_mm = torch.logspace(-2, np.log10(400.0), 40, dtype=torch.float64)
    effective = physics(thickness_mm.view(1, 1, 1, -1))[0, 0, 0] / thickness_mm  # 1/mm at 1 g/cm³
    assert bool((torch.diff(effective) < 0).all())
    energies, s = _spectrum_arrays(100)
    weight = s * (energies if detector == "integrating" else 1.0)
    mean_mu = float((weight * xraydb_mu(WATER, energies)).sum() / weight.sum()) / 10.0
    assert float(effective[0]) == pytest.approx(mean_mu, rel=1e-3)
    assert float(effective[-1]) < 0.9 * mean_mu  # hardened well below it through 40 cm of water


def test_energy_step_close_to_full_resolution() -> None:
    line_integrals = torch.tensor([[[[5.0, 100.0]], [[10.0, 40.0]]]], dtype=torch.float64)
    full = XRayPhysics(materials=("soft_tissue", "bone"), output="negative_log")(line_integrals)
    coarse_physics = XRayPhysics(materials=("soft_tissue", "bone"), output="negative_log", energy_step_kev=5.0)
    assert len(coarse_physics.energies) == 16
    assert torch.allclose(coarse_physics(line_integrals), full, rtol=0.01)


def test_flat_field_scatter_heel_collimation() -> None:
    zeros = torch.zeros(1, 1, 24, 30, dtype=torch.float64)
    plain = XRayPhysics(materials=("water",), photons_per_pixel=1000.0)
    assert torch.allclose(plain(zeros), torch.full_like(zeros, plain.air_signal))
    scatter = XRayPhysics(materials=("water",), photons_per_pixel=1000.0, scatter_to_primary=0.3)
    assert torch.allclose(scatter(zeros), 1.3 * plain(zeros))
    heel = XRayPhysics(materials=("water",), heel=0.2, output="negative_log")
    assert torch.allclose(heel(zeros), torch.zeros_like(zeros), atol=1e-12)  # flat-field corrected
    raw_heel = XRayPhysics(materials=("water",), photons_per_pixel=1000.0, heel=0.2)(zeros)
    assert float(raw_heel.mean()) == pytest.approx(plain.air_signal, rel=1e-12)
    collimated = XRayPhysics(materials=("water",), collimation=(0.5, 0.6))(zeros)
    assert int((collimated > 0).sum()) == 12 * 18
    assert float(collimated[..., 0, 0]) == 0.0


def test_noise_statistics_and_seed() -> None:
    physics = XRayPhysics(
        materials=("water",), detector="counting", noise="poisson", photons_per_pixel=500.0, scintillator_mm=0.0
    )
    zeros = torch.zeros(1, 1, 200, 200, dtype=torch.float64)
    image = physics(zeros, generator=torch.Generator().manual_seed(0))
    assert float(image.mean()) == pytest.approx(500.0, rel=0.01)
    assert float(image.var()) == pytest.approx(500.0, rel=0.03)
    assert torch.equal(image, physics(zeros, generator=torch.Generator().manual_seed(0)))
    integrating = XRayPhysics(materials=("water",), noise="gaussian", photons_per_pixel=500.0)
    image = integrating(zeros + 20.0, generator=torch.Generator().manual_seed(1))
    quanta, _ = integrating.transmission(zeros[..., :1, :1] + 20.0)
    relative_variance = float(image.var() / image.mean() ** 2)
    assert relative_variance == pytest.approx(1.0 / (500.0 * float(quanta)), rel=0.03)


@pytest.mark.parametrize("noise", ["poisson", "gaussian"])
def test_negative_log_floor_is_half_a_photon_issue13(noise: str) -> None:
    # The floor was 0.5 · Σ s η, under half a photon; behind 2 m of bone the image reads -log(0.5 / I_air).
    physics = XRayPhysics(
        materials=("bone",),
        noise=noise,
        photons_per_pixel=10.0,
        output="negative_log",
        **{"detector": "counting", "scintillator_mm": 0.0},
    )
    image = physics(torch.full((1, 1, 2, 2), 1.92 * 2000.0, dtype=torch.float64), generator=torch.Generator())
    assert torch.allclose(image, torch.full_like(image, float(np.log(20.0))))


@pytest.mark.parametrize("output", ["raw", "negative_log"])
@pytest.mark.parametrize("detector", ["counting", "integrating"])
def test_xray_physics_gradcheck(output: str, detector: str) -> None:
    physics = XRayPhysics(
        materials=("soft_tissue", "bone"),
        energy_step_kev=10.0,
        detector=detector,
        output=output,
        scatter_to_primary=0.4,
        scatter_sigma_mm=2.0,
        blur_mm=1.0,
        noise="gaussian",
        heel=0.1,
        photons_per_pixel=1e3,
    )
    line_integrals = torch.rand(1, 2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 30
    line_integrals.requires_grad_(True)

    def image(x: torch.Tensor) -> torch.Tensor:
        return physics(x, (1.0, 1.0), torch.Generator().manual_seed(5))

    assert torch.autograd.gradcheck(image, (line_integrals,))


# --- PhysicsDRR on CT slabs -----------------------------------------------------------------------------------------


def _slab_drr(hu: float, dtype: torch.dtype, detector: str, **kwargs: Any) -> tuple[PhysicsDRR, float, float]:
    subject, thickness_mm, air_mm = slab_subject(hu, slab_voxels=6)
    physics = XRayPhysics(kvp=80, detector=detector, **IDEAL)
    backend = "torch" if dtype == torch.float64 else "auto"
    drr = PhysicsDRR(subject, sdd=1020.0, height=3, delx=0.1, physics=physics, backend=backend, **kwargs).to(dtype)
    return drr, thickness_mm, air_mm


@pytest.mark.parametrize("detector", ["counting", "integrating"])
@pytest.mark.parametrize(
    ("hu", "composition", "density"), [(0.0, ICRU44_SOFT_TISSUE, 1.0), (1500.0, ICRU44_CORTICAL_BONE, 1.92)]
)
def test_ct_slab_is_beer_lambert(
    hu: float, composition: dict[str, float], density: float, detector: str, dtype: torch.dtype
) -> None:
    # A slab across world y in air, seen along y by the central pixel: Σ s(E) exp(-μ ρ t - μ_air ρ_air t_air).
    drr, thickness_mm, air_mm = _slab_drr(hu, dtype, detector)
    pose = tuple(p.to(dtype) for p in AP_POSE)
    image = drr(*pose, **AP_KWARGS)
    assert image.shape == (1, 1, 3, 3) and image.dtype == dtype
    expected = _oracle(80, [(composition, density, thickness_mm), (DRY_AIR, AIR_DENSITY, air_mm)], detector)
    assert float(image[0, 0, 1, 1]) == pytest.approx(expected, rel=SLAB_RTOL[dtype])


def test_ct_slab_line_integrals_per_material(dtype: torch.dtype) -> None:
    drr, thickness_mm, air_mm = _slab_drr(1500.0, dtype, "counting")
    line_integrals = drr.line_integrals(*(p.to(dtype) for p in AP_POSE), **AP_KWARGS)
    assert line_integrals.shape == (1, 4, 3, 3)
    expected = torch.tensor([AIR_DENSITY * air_mm, 0.0, 0.0, 1.92 * thickness_mm], dtype=dtype)
    assert torch.allclose(line_integrals[0, :, 1, 1], expected, rtol=SLAB_RTOL[dtype], atol=ATOL[dtype])


def test_single_energy_ct_negative_log() -> None:
    subject, thickness_mm, air_mm = slab_subject(0.0, slab_voxels=4)
    spectrum = Spectrum(torch.tensor([50.0], dtype=torch.float64), torch.ones(1, dtype=torch.float64), 80.0)
    physics = XRayPhysics(spectrum=spectrum, output="negative_log", **IDEAL)
    drr = PhysicsDRR(subject, sdd=1020.0, height=3, delx=0.1, physics=physics, backend="torch").double()
    mu_st, mu_air = (float(xraydb_mu(c, np.array([50.0]))[0]) for c in (ICRU44_SOFT_TISSUE, DRY_AIR))
    expected = (mu_st * 1.0 * thickness_mm + mu_air * AIR_DENSITY * air_mm) / 10.0
    image = drr(*(p.double() for p in AP_POSE), **AP_KWARGS)
    assert float(image[0, 0, 1, 1]) == pytest.approx(expected, rel=SLAB_RTOL[torch.float64])


def test_soft_decomposition_close_to_hard_away_from_thresholds() -> None:
    subject, _, _ = slab_subject(0.0, slab_voxels=4)
    hard = PhysicsDRR(subject, sdd=1020.0, height=3, delx=0.1, backend="torch").double()
    soft = PhysicsDRR(subject, sdd=1020.0, height=3, delx=0.1, backend="torch", decomposition="soft").double()
    pose = tuple(p.double() for p in AP_POSE)
    # 0 HU is 350 HU from bone and 400 HU from lung: the logistic of width 50 leaves ~1e-3 in the neighbours.
    assert torch.allclose(
        soft.line_integrals(*pose, **AP_KWARGS).sum(1), hard.line_integrals(*pose, **AP_KWARGS).sum(1)
    )
    assert torch.allclose(soft(*pose, **AP_KWARGS), hard(*pose, **AP_KWARGS), rtol=2e-3)


def test_bone_scale_scales_bone_only() -> None:
    pose = tuple(p.double() for p in AP_POSE)
    subject = blob_subject((20, 20, 16))
    base = PhysicsDRR(subject, sdd=1020.0, height=8, delx=30.0, backend="torch").double()
    heavy = PhysicsDRR(subject, sdd=1020.0, height=8, delx=30.0, backend="torch", bone_scale=2.0).double()
    a, b = base.line_integrals(*pose, **AP_KWARGS), heavy.line_integrals(*pose, **AP_KWARGS)
    assert float(a[:, 3].max()) > 0
    assert torch.allclose(b[:, 3], 2.0 * a[:, 3])
    assert torch.allclose(b[:, :3], a[:, :3])


def test_metal_channel() -> None:
    hu = torch.full((6, 6, 6), 40.0)
    hu[:, 2:4] = 3500.0  # a 10 mm metal plate
    subject = read(hu, affine=torch.diag(torch.tensor([5.0, 5.0, 5.0, 1.0], dtype=torch.float64)))
    materials = ("air", "lung", "soft_tissue", "bone", "titanium")
    physics = XRayPhysics(materials=materials)
    drr = PhysicsDRR(
        subject, sdd=1020.0, height=3, delx=0.1, physics=physics, metal="titanium", metal_threshold=3000.0,
        backend="torch",
    ).double()  # fmt: skip
    line_integrals = drr.line_integrals(*(p.double() for p in AP_POSE), **AP_KWARGS)[0, :, 1, 1]
    expected = [0.0, 0.0, (1.0 + 0.92 / 1500.0 * 40.0) * 20.0, 0.0, MATERIALS["titanium"].density * 10.0]
    assert line_integrals.tolist() == pytest.approx(expected, rel=1e-3)


def test_batch_of_poses() -> None:
    subject = blob_subject((12, 12, 10))
    drr = PhysicsDRR(subject, sdd=1020.0, height=6, delx=30.0)
    rotations = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.0, 0.1]])
    translations = torch.tensor([[0.0, 850.0, 0.0], [5.0, 800.0, -3.0]])
    both = drr(rotations, translations, **AP_KWARGS)
    assert both.shape == (2, 1, 6, 6)
    assert torch.allclose(both[1:], drr(rotations[1:], translations[1:], **AP_KWARGS))


def test_hu_argument_does_not_change_subject_labels_issue13() -> None:
    # A call with hu= relabelled the subject for every later call of the hard decomposition.
    subject, _, _ = slab_subject(0.0, slab_voxels=4)
    drr = PhysicsDRR(subject, sdd=1020.0, height=3, delx=0.1, backend="torch")
    before = drr.line_integrals(*AP_POSE, **AP_KWARGS)
    bone = drr.line_integrals(*AP_POSE, hu=torch.full_like(drr.hu, 1000.0), **AP_KWARGS)
    assert float(bone[0, 3, 1, 1]) > 0 and float(bone[0, 2, 1, 1]) == 0
    assert torch.equal(drr.line_integrals(*AP_POSE, **AP_KWARGS), before)


# --- gradients and parity -------------------------------------------------------------------------------------------


def _tiny_drr(decomposition: str) -> PhysicsDRR:
    generator = torch.Generator().manual_seed(0)
    hu = torch.empty(6, 6, 6, dtype=torch.float64).uniform_(-1000.0, 1600.0, generator=generator)
    subject = read(hu, affine=torch.diag(torch.tensor([10.0, 10.0, 10.0, 1.0], dtype=torch.float64)))
    physics = XRayPhysics(energy_step_kev=10.0, output="negative_log")
    return PhysicsDRR(
        subject, sdd=1020.0, height=4, delx=20.0, physics=physics, decomposition=decomposition, backend="torch"
    ).double()


@pytest.mark.parametrize("decomposition", ["hard", "soft"])
def test_physics_drr_pose_gradcheck(decomposition: str) -> None:
    drr = _tiny_drr(decomposition)
    rotation = torch.tensor([[0.1, 0.05, -0.02]], dtype=torch.float64, requires_grad=True)
    translation = torch.tensor([[3.0, 850.0, -2.0]], dtype=torch.float64, requires_grad=True)

    def image(r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return drr(r, t, **AP_KWARGS)

    assert torch.autograd.gradcheck(image, (rotation, translation), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("decomposition", ["hard", "soft"])
def test_physics_drr_hu_gradcheck(decomposition: str) -> None:
    drr = _tiny_drr(decomposition)
    rotation, translation = (p.double() for p in AP_POSE)
    hu = drr.hu.clone().requires_grad_(True)

    def image(h: torch.Tensor) -> torch.Tensor:
        return drr(rotation, translation, hu=h, **AP_KWARGS)

    # Random HU are 1e-4 HU from no kink of the density line or threshold (hard labels are constants).
    assert torch.autograd.gradcheck(image, (hu,), eps=1e-4, atol=1e-5, rtol=1e-4, fast_mode=True)


@pytest.mark.parametrize("decomposition", ["hard", "soft"])
def test_fused_matches_torch(decomposition: str) -> None:
    subject = blob_subject((20, 20, 16))
    pose = (torch.tensor([[0.1, -0.05, 0.2]]), torch.tensor([[4.0, 850.0, -6.0]]))

    def render(backend: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        drr = PhysicsDRR(subject, sdd=1020.0, height=16, delx=12.0, decomposition=decomposition, backend=backend)
        rotation, translation = (p.clone().requires_grad_(True) for p in pose)
        line_integrals = drr.line_integrals(rotation, translation, **AP_KWARGS)
        drr.physics(line_integrals).sum().backward()
        assert rotation.grad is not None and translation.grad is not None
        return line_integrals.detach(), rotation.grad, translation.grad

    fused, torch_reference = render("fused"), render("torch")
    assert float(fused[0].max()) > 0
    for a, b in zip(fused, torch_reference):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    again = render("fused")
    assert all(torch.equal(a, b) for a, b in zip(fused, again))  # deterministic pose gradients


def test_xray_physics_batch_is_per_image() -> None:
    physics = XRayPhysics(materials=("soft_tissue", "bone"), blur_mm=2.0, scatter_to_primary=0.2, output="negative_log")
    line_integrals = torch.rand(3, 2, 6, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 40
    batch = physics(line_integrals, (1.0, 1.0))
    assert batch.shape == (3, 1, 6, 7)
    assert torch.allclose(batch[2:], physics(line_integrals[2:], (1.0, 1.0)))


# --- errors ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"materials": ("water", "unobtainium")}, "materials"),
        ({"materials": ()}, "materials"),
        ({"detector": "film"}, "detector"),
        ({"output": "log"}, "output"),
        ({"noise": "salt"}, "noise"),
        ({"photons_per_pixel": 0.0}, "photons_per_pixel"),
        ({"scatter_to_primary": -0.1}, "scatter_to_primary"),
        ({"scatter_sigma_mm": 0.0}, "scatter_sigma_mm"),
        ({"blur_mm": -1.0}, "blur_mm"),
        ({"heel": 1.0}, "heel"),
        ({"scintillator_mm": -0.6}, "scintillator_mm"),
        ({"collimation": (0.5, 1.5)}, "collimation"),
        ({"collimation": (0.5,)}, "collimation"),
        ({"kvp": 500.0}, "kvp"),
        ({"energy_step_kev": 1.5}, "step_kev"),
    ],
)
def test_xray_physics_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        XRayPhysics(**kwargs)


@pytest.mark.parametrize("shape", [(1, 3, 4, 4), (4, 4)])
def test_xray_physics_bad_line_integrals(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="line_integrals"):
        XRayPhysics()(torch.zeros(shape))


_TITANIUM = XRayPhysics(materials=("air", "lung", "soft_tissue", "bone", "titanium"), energy_step_kev=10.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"decomposition": "fuzzy"}, "decomposition"),
        ({"metal_threshold": 3000.0}, "metal"),
        ({"metal": "titanium"}, "metal_threshold"),
        ({"metal": "titanium", "metal_threshold": 100.0, "physics": _TITANIUM}, "metal_threshold"),
        ({"metal": "mithril", "metal_threshold": 3000.0}, "metal"),
        ({"metal": "titanium", "metal_labels": (1,), "physics": _TITANIUM}, "metal_labels"),
        ({"p_subsample": 0.5}, "p_subsample"),
        ({"reshape": False}, "reshape"),
        ({"thresholds": (0.0, 100.0)}, "thresholds"),
        ({"thresholds": (100.0, 0.0, 500.0)}, "thresholds"),
        ({"physics": XRayPhysics(materials=("water",))}, "physics.materials"),
        ({"bone_scale": -1.0}, "bone_scale"),
        ({"soft_width_hu": 0.0}, "soft_width_hu"),
    ],
)
def test_physics_drr_bad_arguments(kwargs: dict, match: str) -> None:
    subject, _, _ = slab_subject(0.0, slab_voxels=2)
    with pytest.raises(ValueError, match=match):
        PhysicsDRR(subject, sdd=1020.0, height=3, delx=1.0, **kwargs)


def test_physics_drr_needs_a_subject() -> None:
    with pytest.raises(TypeError, match="subject"):
        PhysicsDRR(torch.zeros(4, 4, 4), sdd=1020.0, height=3, delx=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [torch.zeros(3, 3, 3), np.zeros((6, 6, 6))])
def test_physics_drr_bad_hu(bad: object) -> None:
    subject, _, _ = slab_subject(0.0, slab_voxels=2)
    drr = PhysicsDRR(subject, sdd=1020.0, height=3, delx=1.0)
    call: Callable[[], object] = lambda: drr(*AP_POSE, hu=bad, **AP_KWARGS)  # noqa: E731
    with pytest.raises(ValueError, match="hu"):
        call()
