"""Physics domain randomisation: seeded draws within their ranges, named errors, exact bone weighting, and training
images simulated by the data module (finite, reproducible, training only, usable from the recipe)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from lightning import Trainer

from drreg.physics import PhysicsDRR, XRayPhysics
from drreg.regression import (
    PhysicsRandomization,
    PhysicsSettings,
    PoseRegressionDataModule,
    PoseRegressionModule,
    UniformPoseSampler,
)
from drreg.regression.data import rescale_images
from tests._phantoms import blob_subject

ROOT = Path(__file__).resolve().parents[2]
MATERIALS = ("air", "lung", "soft_tissue", "bone")
SPACING_MM = (10.0, 10.0)


@pytest.fixture(scope="module")
def subject():
    return blob_subject()


@pytest.fixture(scope="module")
def line_integrals(subject):
    drr = PhysicsDRR(subject, sdd=1020.0, height=16, delx=10.0)
    pose = UniformPoseSampler(((-10, 10),) * 3, ((-20, 20),) * 3)(4, torch.Generator().manual_seed(0))
    return drr.line_integrals(pose)


def _data(subject, **kwargs) -> PoseRegressionDataModule:
    options = dict(volume=subject, height=16, delx=10.0, renderer="siddon", batch_size=4, train_size=16, val_size=4,
                   test_size=4, sampler=UniformPoseSampler(((-10, 10),) * 3, ((-20, 20),) * 3))  # fmt: skip
    data = PoseRegressionDataModule(**{**options, **kwargs})
    data.setup("fit")
    return data


# ------------------------------------------------------------------------------------------------------ draws


def test_draws_are_seeded_and_reproducible():
    randomization = PhysicsRandomization()
    first = randomization.sample(8, torch.Generator().manual_seed(3))
    assert first == randomization.sample(8, torch.Generator().manual_seed(3))
    assert first != randomization.sample(8, torch.Generator().manual_seed(4))
    assert len(set(first)) == 8  # independent draws per image


def test_draws_respect_their_ranges():
    randomization = PhysicsRandomization(
        kvp=(70.0, 100.0), scatter_to_primary=(0.1, 0.3), blur_mm=(0.2, 0.5), photons_per_pixel=(1e3, 1e5),
        bone_scale=(0.9, 1.8), scatter_sigma_mm=(20.0, 30.0), kvp_step=None,
    )  # fmt: skip
    draws = randomization.sample(400, torch.Generator().manual_seed(0))
    for name in ("kvp", "scatter_to_primary", "blur_mm", "photons_per_pixel", "bone_scale", "scatter_sigma_mm"):
        low, high = getattr(randomization, name)
        values = [getattr(d, name) for d in draws]
        assert low <= min(values) and max(values) <= high, name
    # Photons per pixel are log-uniform: about half the draws below the geometric mean (1e4).
    below = sum(d.photons_per_pixel < 1e4 for d in draws) / len(draws)
    assert 0.4 < below < 0.6


def test_kvp_is_drawn_on_its_grid():
    draws = PhysicsRandomization(kvp=(60.0, 120.0), kvp_step=5.0).sample(500, torch.Generator().manual_seed(0))
    assert {d.kvp for d in draws} == {60.0 + 5.0 * i for i in range(13)}  # both ends reachable


def test_fixed_physics_is_the_same_for_every_image():
    fixed = PhysicsRandomization.fixed(kvp=90.0, scatter_to_primary=0.25, blur_mm=0.7, photons_per_pixel=5e3)
    draws = fixed.sample(5, torch.Generator().manual_seed(0))
    assert set(draws) == {PhysicsSettings(90.0, 0.25, 40.0, 0.7, 5e3, 1.0)}
    assert fixed.probability == 1.0


def test_choose_follows_the_probability():
    chosen = PhysicsRandomization(probability=0.3).choose(2000, torch.Generator().manual_seed(0))
    assert chosen.dtype == torch.bool and abs(chosen.float().mean().item() - 0.3) < 0.05
    assert PhysicsRandomization(probability=0.0).choose(10).sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(kvp=(120.0, 60.0)), "kvp"),
        (dict(kvp=(0.0, 60.0)), "kvp"),
        (dict(scatter_to_primary=(-0.1, 0.2)), "scatter_to_primary"),
        (dict(blur_mm=(1.0,)), "blur_mm"),
        (dict(photons_per_pixel=(0.0, 1e4)), "photons_per_pixel"),
        (dict(bone_scale="1.5"), "bone_scale"),
        (dict(noise="salt"), "noise"),
        (dict(probability=1.5), "probability"),
        (dict(group_size=0), "group_size"),
        (dict(kvp_step=0.0), "kvp_step"),
        (dict(energy_step_kev=-1.0), "energy_step_kev"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PhysicsRandomization(**kwargs)


# --------------------------------------------------------------------------------------------------- simulate


def test_simulated_images_are_finite_and_reproducible(line_integrals):
    randomization = PhysicsRandomization()
    images, settings = randomization.simulate(line_integrals, MATERIALS, SPACING_MM, torch.Generator().manual_seed(0))
    again, _ = randomization.simulate(line_integrals, MATERIALS, SPACING_MM, torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 16, 16) and len(settings) == 4
    assert torch.isfinite(images).all() and torch.equal(images, again)
    other, _ = randomization.simulate(line_integrals, MATERIALS, SPACING_MM, torch.Generator().manual_seed(1))
    assert not torch.equal(images, other)


def test_groups_share_a_draw(line_integrals):
    _, settings = PhysicsRandomization(group_size=2).simulate(
        line_integrals, MATERIALS, SPACING_MM, torch.Generator().manual_seed(0)
    )
    assert settings[0] == settings[1] and settings[2] == settings[3] and settings[0] != settings[2]


def test_bone_scale_of_the_channel_equals_a_render_of_the_scaled_density(subject, line_integrals):
    """Scaling the bone channel is exact: it matches PhysicsDRR(bone_scale=) rendering the scaled density."""
    pose = UniformPoseSampler(((-10, 10),) * 3, ((-20, 20),) * 3)(4, torch.Generator().manual_seed(0))
    physics = XRayPhysics(kvp=80.0, energy_step_kev=4.0, output="negative_log")
    expected = PhysicsDRR(subject, sdd=1020.0, height=16, delx=10.0, physics=physics, bone_scale=1.7)(pose)
    fixed = PhysicsRandomization.fixed(
        kvp=80.0, scatter_to_primary=0.0, blur_mm=0.0, photons_per_pixel=1e4, bone_scale=1.7, noise=None
    )
    images, _ = fixed.simulate(line_integrals, MATERIALS, SPACING_MM)
    torch.testing.assert_close(images, expected, rtol=1e-5, atol=1e-5)
    unscaled, _ = PhysicsRandomization.fixed(80.0, 0.0, 0.0, 1e4, bone_scale=1.0, noise=None).simulate(
        line_integrals, MATERIALS, SPACING_MM
    )
    assert (images - unscaled).abs().max() > 1e-2  # the blobs' bone shows


def test_simulate_names_a_channel_mismatch(line_integrals):
    with pytest.raises(ValueError, match="one channel per material"):
        PhysicsRandomization().simulate(line_integrals[:, :3], MATERIALS, SPACING_MM)
    with pytest.raises(ValueError, match="line_integrals"):
        PhysicsRandomization().simulate(line_integrals[0], MATERIALS, SPACING_MM)


# ----------------------------------------------------------------------------------------------- data module


def test_training_images_are_simulated_reproducibly(subject):
    data = _data(subject, physics=PhysicsRandomization())
    batch = next(iter(data.train_dataloader()))
    train = data.render_batch(batch, training=True)
    again = _data(subject, physics=PhysicsRandomization()).render_batch(batch, training=True)
    plain = data.render_batch(batch, training=False)
    image = train["image"]
    assert image.shape == (4, 1, 16, 16) and torch.isfinite(image).all()
    assert image.amin(dim=(1, 2, 3)).eq(0).all() and image.amax(dim=(1, 2, 3)).eq(1).all()  # rescaled as DRRs
    assert torch.equal(image, again["image"]) and train["rays"] == 4 * 16 * 16
    assert (image - plain["target"]).abs().mean() > 0.01 and torch.equal(plain["image"], plain["target"])


def test_noise_free_physics_images_align_with_the_drrs(subject):
    """The physics renderer sees the CT in the DRR's geometry: no noise, scatter or blur, the images correlate."""
    physics = PhysicsRandomization.fixed(80.0, 0.0, 0.0, 1e4, noise=None)
    data = _data(subject)
    pose = next(iter(data.val_dataloader()))["pose"]
    simulated = data.render_physics(pose, physics)
    drr = data.render_batch({"pose": pose})["target"]
    correlation = torch.corrcoef(torch.stack([simulated.flatten(), drr.flatten()]))[0, 1]
    assert correlation > 0.95
    assert torch.equal(simulated, rescale_images(simulated))


def test_probability_zero_keeps_the_drrs_and_a_mix_renders_both(subject):
    batch = next(iter(_data(subject).train_dataloader()))
    never = _data(subject, physics=PhysicsRandomization(probability=0.0)).render_batch(batch, training=True)
    torch.testing.assert_close(never["image"], _data(subject).render_batch(batch, training=True)["image"])
    data = _data(subject, physics=PhysicsRandomization(probability=0.5), p_subsample=0.5, batch_size=8)
    batch = next(iter(data.train_dataloader()))
    generator = torch.Generator().manual_seed(0)
    generator.set_state(data.state_dict()["physics"])
    simulated = int(data.physics.choose(8, generator).sum())
    mixed = data.render_batch(batch, training=True)
    assert 0 < simulated < 8  # this seed draws both kinds
    assert mixed["rays"] == simulated * 16 * 16 + (8 - simulated) * int(16 * 16 * 0.5)
    assert torch.isfinite(mixed["image"]).all()


def test_the_physics_generator_is_checkpointed(subject):
    data = _data(subject, physics=PhysicsRandomization())
    batch = next(iter(data.train_dataloader()))
    state = data.state_dict()
    first = data.render_batch(batch, training=True)["image"]
    data.load_state_dict(state)
    torch.testing.assert_close(data.render_batch(batch, training=True)["image"], first, rtol=0, atol=0)


def test_physics_must_be_a_randomization(subject):
    with pytest.raises(TypeError, match="physics must be a PhysicsRandomization"):
        PoseRegressionDataModule(volume=subject, physics={"kvp": (60, 120)})


def test_a_subject_without_hu_is_named(subject):
    import torchio

    density_only = torchio.Subject(density=subject["density"])
    with pytest.raises(ValueError, match="needs the CT in HU"):
        _data(density_only, physics=PhysicsRandomization())


def test_training_with_physics_randomisation(subject, tmp_path):
    data = _data(subject, physics=PhysicsRandomization(group_size=2))
    module = PoseRegressionModule(
        reference_pose=data.reference_pose, imaging=data.imaging, base_channels=8, depths=(1, 1), warmup_steps=0
    )
    trainer = Trainer(max_steps=2, max_epochs=10, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=tmp_path, num_sanity_val_steps=0, limit_val_batches=1,
                      enable_checkpointing=False)  # fmt: skip
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 2 and math.isfinite(float(trainer.callback_metrics["train/loss"]))


def test_the_recipe_takes_physics_randomisation(tmp_path):
    from drreg.cli import PoseRegressionCLI

    physics = '{"class_path": "drreg.regression.PhysicsRandomization", "init_args": {"kvp": [70, 110]}}'
    args = ["--config", str(ROOT / "recipes" / "pose_regression.yaml"), "--trainer.logger.init_args.save_dir",
            str(tmp_path), "--data.physics", physics]  # fmt: skip
    cli = PoseRegressionCLI(args, run=False)
    assert isinstance(cli.datamodule.physics, PhysicsRandomization) and cli.datamodule.physics.kvp == (70.0, 110.0)
