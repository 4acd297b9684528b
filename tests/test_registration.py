"""Registration: pose vectors, views, pixel draws, the loss, and RegistrationModule runs that must converge."""

from __future__ import annotations

import json
import math

import pytest
import torch
from lightning import Callback, Trainer
from scipy.spatial.transform import Rotation

from drreg import DRR, RigidTransform, convert
from drreg.losses import ImageLoss
from drreg.registration import (
    OPTIMIZABLE_PARAMETERIZATIONS,
    RegistrationData,
    RegistrationModule,
    compose_views,
    downsample_targets,
    draw_pixel_indices,
    offset_pose_vectors,
    pose_from_parameters,
    pose_vectors_to_transform,
    registration_loss,
    transform_to_pose_vectors,
    view_transforms_from_poses,
)
from tests._phantoms import blob_subject

TRUE_POSE = [4.0, -3.0, 2.0, 5.0, 850.0, -4.0]  # Euler ZXY degrees, mm
START_POSE = [9.0, -8.0, 6.0, 15.0, 860.0, -12.0]  # about 10 degrees and 15 mm away
SIZE = 64
SMALL = dict(sdd=1020.0, height=SIZE, delx=4.0)


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    # Results go to <trainer.log_dir>/poses.json, the working directory for a Trainer without a logger.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def subject():
    return blob_subject()


def _trainer(max_steps: int, callbacks=(), **kwargs) -> Trainer:
    return Trainer(
        max_steps=max_steps,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        **kwargs,
    )


def _register(subject, tmp_path, starts=(START_POSE,), true_poses=(TRUE_POSE,), steps=(60, 60), **options):
    options = {"scales": [0.5, 1.0], "stage_steps": list(steps), "p_subsample": None, **SMALL, **options}
    module = RegistrationModule(
        initial_poses=[list(s) for s in starts], volume=subject, output=str(tmp_path / "poses.json"), **options
    )
    data = RegistrationData(true_poses=[list(p) for p in true_poses])
    trainer = _trainer(sum(options["stage_steps"]))
    trainer.fit(module, datamodule=data)
    return module, trainer


# ------------------------------------------------------------------------------------------------ pose vectors


def test_pose_vectors_match_scipy():
    vectors = torch.tensor([TRUE_POSE, START_POSE], dtype=torch.float64)
    pose = pose_vectors_to_transform(vectors)
    # Intrinsic ZXY (R = Rz @ Rx @ Ry) is scipy's "ZXY" (upper case = intrinsic); translation is applied first.
    rotation = torch.from_numpy(Rotation.from_euler("ZXY", vectors[:, :3].numpy(), degrees=True).as_matrix())
    torch.testing.assert_close(pose.rotation, rotation)
    torch.testing.assert_close(pose.translation, (rotation @ vectors[:, 3:, None])[..., 0])


@pytest.mark.parametrize("convention", ["ZXY", "XYZ", "ZYZ"])
def test_pose_vectors_round_trip(convention):
    pose = pose_vectors_to_transform([TRUE_POSE, START_POSE], convention)
    back = transform_to_pose_vectors(pose, convention)
    # Proper Euler angles (ZYZ) come back in their canonical range, so compare the poses they make.
    torch.testing.assert_close(pose_vectors_to_transform(back, convention).matrix, pose.matrix)
    torch.testing.assert_close(back[:, 3:], torch.tensor([TRUE_POSE[3:], START_POSE[3:]], dtype=torch.float64))


@pytest.mark.parametrize("bad", [[[1.0, 2.0, 3.0]], [[math.nan, 0, 0, 0, 850, 0]]], ids=["shape", "nan"])
def test_pose_vectors_reject_bad_input(bad):
    with pytest.raises(ValueError, match="pose vectors"):
        pose_vectors_to_transform(bad)


def test_offsets_are_bounded_and_seeded():
    vectors = torch.zeros(500, 6, dtype=torch.float64)
    first = offset_pose_vectors(vectors, 15.0, 30.0, torch.Generator().manual_seed(3))
    again = offset_pose_vectors(vectors, 15.0, 30.0, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert first[:, :3].abs().max() <= 15.0 and first[:, 3:].abs().max() <= 30.0
    assert first[:, :3].abs().max() > 14.0 and first[:, 3:].abs().max() > 28.0  # spans the range


@pytest.mark.parametrize("parameterization", OPTIMIZABLE_PARAMETERIZATIONS)
def test_parameters_round_trip(parameterization):
    from drreg.registration import parameters_from_pose

    pose = pose_vectors_to_transform([TRUE_POSE, START_POSE])
    convention = "ZXY" if parameterization == "euler_angles" else None
    rotation, translation = parameters_from_pose(pose, parameterization, convention)
    back = pose_from_parameters(rotation, translation, parameterization, convention)
    torch.testing.assert_close(back.matrix, pose.matrix)


def test_unknown_parameterization_names_the_choices(subject):
    with pytest.raises(ValueError, match="parameterization.*expected one of.*quaternion"):
        RegistrationModule([START_POSE], volume=subject, parameterization="euler", **SMALL)
    with pytest.raises(ValueError, match="matrix"):  # a raw matrix would leave SO(3)
        RegistrationModule([START_POSE], volume=subject, parameterization="matrix", **SMALL)


# ------------------------------------------------------------------------------------------------------ views


def test_view_transforms_recover_the_view_poses():
    views = pose_vectors_to_transform([[0, 0, 0, 0, 850, 0], [90, 0, 0, 0, 850, 0], [30, 20, 0, 10, 900, 5]])
    transforms = view_transforms_from_poses(views)
    torch.testing.assert_close(transforms[0], torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(compose_views(RigidTransform(views.matrix[:1]), transforms).matrix, views.matrix)
    # Moving the patient moves every view the same way: the transforms do not depend on the patient pose.
    patient = pose_vectors_to_transform([[10, -5, 3, 4, 0, -7]]).matrix
    moved = RigidTransform(patient @ views.matrix)
    torch.testing.assert_close(view_transforms_from_poses(moved), transforms)


def test_compose_views_is_pose_major():
    poses = pose_vectors_to_transform([TRUE_POSE, START_POSE])
    transforms = view_transforms_from_poses(pose_vectors_to_transform([[0, 0, 0, 0, 850, 0], [90, 0, 0, 0, 850, 0]]))
    composed = compose_views(poses, transforms).matrix.reshape(2, 2, 4, 4)
    torch.testing.assert_close(composed[1, 1], poses.matrix[1] @ transforms[1])
    with pytest.raises(ValueError, match="view_transforms must be"):
        compose_views(poses, torch.eye(4))


# ----------------------------------------------------------------------------------------------------- pixels


def test_pixel_draws_are_fresh_distinct_and_sorted():
    generator = torch.Generator().manual_seed(0)
    first = draw_pixel_indices(20, 30, 0.1, generator=generator)
    second = draw_pixel_indices(20, 30, 0.1, generator=generator)
    assert first.shape == (60,) and len(torch.unique(first)) == 60
    assert torch.equal(first, first.sort().values) and 0 <= first.min() and first.max() < 600
    assert not torch.equal(first, second)
    assert draw_pixel_indices(20, 30, None) is None


def test_patch_draws_are_whole_patches():
    indices = draw_pixel_indices(20, 30, 0.25, patch_size=5, generator=torch.Generator().manual_seed(1))
    patches = indices.reshape(-1, 25)
    assert len(patches) == round(0.25 * 600 / 25)
    rows, cols = patches // 30, patches % 30
    assert torch.equal(rows.max(1).values - rows.min(1).values, torch.full((len(patches),), 4))
    assert torch.equal(cols.max(1).values - cols.min(1).values, torch.full((len(patches),), 4))


@pytest.mark.parametrize(
    ("p", "patch", "match"),
    [
        (0.0, None, "p_subsample must be in"),
        (1.5, None, "p_subsample must be in"),
        (1e-4, None, "empty pixel subset"),
        (0.5, 40, "does not fit"),
    ],
)
def test_pixel_draws_reject_bad_input(p, patch, match):
    with pytest.raises(ValueError, match=match):
        draw_pixel_indices(20, 30, p, patch_size=patch)


def test_empty_subset_fails_at_construction(subject):
    # The coarse stage of a 64 x 64 detector at scale 0.125 has 64 pixels: 1% of them is no pixel.
    with pytest.raises(ValueError, match="empty pixel subset"):
        RegistrationModule([START_POSE], volume=subject, scales=[0.125], stage_steps=[5], p_subsample=0.01, **SMALL)


def test_downsampling_averages_blocks():
    images = torch.rand(2, 1, 8, 12, dtype=torch.float64)
    coarse = downsample_targets(images, 4, 6)
    torch.testing.assert_close(coarse, images.reshape(2, 1, 4, 2, 6, 2).mean((3, 5)))
    assert downsample_targets(images, 8, 12) is images


def test_sparse_loss_on_every_pixel_equals_the_dense_loss(subject):
    drr = DRR(subject, reshape=False, **SMALL)
    pose = pose_vectors_to_transform([START_POSE, TRUE_POSE])
    targets = drr(pose_vectors_to_transform([TRUE_POSE, TRUE_POSE]))
    loss = ImageLoss("ncc")
    dense = registration_loss(drr, pose, targets, loss)
    sparse = registration_loss(drr, pose, targets, loss, indices=torch.arange(SIZE * SIZE))
    torch.testing.assert_close(sparse, dense)
    assert dense[1] < 1e-6 < dense[0]


# ---------------------------------------------------------------------------------------------- registration


def test_registration_converges(subject, tmp_path):
    module, trainer = _register(subject, tmp_path)
    results = json.loads((tmp_path / "poses.json").read_text())
    errors = results["targets"][0]["errors"]
    assert results["status"] == "finished"
    assert errors["mtre_mm"] < 1.0 and errors["rotation_error_deg"] < 0.2, errors
    # The start was far: the errors did come down from there.
    start = module.pose_errors(RigidTransform(module.initial_matrices), pose_vectors_to_transform([TRUE_POSE]))
    assert float(start["mtre_mm"][0]) > 10.0
    # Coarse to fine: both stages ran, and the detector is back at full scale.
    assert results["stage"] == 1 and module.drr.detector.height == SIZE
    found = torch.tensor(results["targets"][0]["pose_vector"], dtype=torch.float64)
    truth = torch.tensor(TRUE_POSE, dtype=torch.float64)
    # Depth along the source-detector axis (ty) is the least constrained by one view: 1 mm, the angles 0.2 degrees.
    torch.testing.assert_close(found[:3], truth[:3], atol=0.2, rtol=0)
    torch.testing.assert_close(found[3:], truth[3:], atol=1.0, rtol=0)


def test_registration_is_deterministic_under_a_seed(subject, tmp_path):
    options = dict(steps=(15, 15), p_subsample=0.3, seed=7)
    first, _ = _register(subject, tmp_path / "a", **options)
    second, _ = _register(subject, tmp_path / "b", **options)
    assert torch.equal(first.rotation, second.rotation) and torch.equal(first.translation, second.translation)


def test_sparse_steps_draw_fresh_pixels(subject, tmp_path):
    seen = []

    class Record(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(pl_module.drr.last_indices.clone())

    module = RegistrationModule([START_POSE], volume=subject, p_subsample=0.2, stage_steps=[3], **SMALL)
    _trainer(3, [Record()]).fit(module, datamodule=RegistrationData(true_poses=[TRUE_POSE]))
    assert len(seen) == 3 and all(len(s) == int(0.2 * SIZE * SIZE) for s in seen)
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    assert module.render_stats == {"drrs": 1, "rays": int(0.2 * SIZE * SIZE)}


def test_multi_start_keeps_the_best(subject, tmp_path):
    far = [60.0, 40.0, -50.0, 80.0, 700.0, 60.0]  # a start that cannot reach the truth
    module, _ = _register(subject, tmp_path, starts=([far, START_POSE, far],))
    results = module.results()
    assert module.rotation.shape[0] == 3 and results["targets"][0]["best_start"] == 1
    assert results["targets"][0]["errors"]["mtre_mm"] < 1.0
    assert results["targets"][0]["starts"][0]["errors"]["mtre_mm"] > 10.0


def test_random_extra_starts_are_drawn_around_the_first(subject):
    module = RegistrationModule(
        [START_POSE], volume=subject, n_starts=4, start_rotation_deg=5.0, start_translation_mm=10.0, **SMALL
    )
    vectors = transform_to_pose_vectors(RigidTransform(module.initial_matrices))
    offsets = vectors - torch.tensor(START_POSE, dtype=torch.float64)
    assert offsets[0].abs().max() < 1e-9
    assert offsets[1:, :3].abs().max() <= 5.0 + 1e-9 and offsets[1:, 3:].abs().max() <= 10.0 + 1e-9
    assert offsets[1:].abs().min(dim=1).values.gt(0).all()


def test_multi_view_shares_one_patient_pose(subject, tmp_path):
    views = [[0.0, 0.0, 0.0, 0.0, 850.0, 0.0], [90.0, 0.0, 0.0, 0.0, 850.0, 0.0]]  # AP and lateral
    module = RegistrationModule(
        [START_POSE], volume=subject, scales=[0.5, 1.0], stage_steps=[60, 60], p_subsample=None, **SMALL
    )
    data = RegistrationData(true_poses=[TRUE_POSE], view_poses=views)
    _trainer(120).fit(module, datamodule=data)
    assert data.batch["targets"].shape == (1, 2, 1, SIZE, SIZE)
    # The second target is the lateral view of the same patient: rendered at pose @ view transform.
    transforms = view_transforms_from_poses(pose_vectors_to_transform(views))
    lateral = compose_views(pose_vectors_to_transform([TRUE_POSE]), transforms).matrix[1:]
    expected = DRR(subject, **SMALL)(RigidTransform(lateral))
    torch.testing.assert_close(data.batch["targets"][0, 1], expected[0], atol=1e-5, rtol=1e-5)
    assert module.results()["targets"][0]["errors"]["mtre_mm"] < 1.0


def test_failure_leaves_the_best_pose_on_disk(subject, tmp_path):
    class Crash(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 4:
                raise RuntimeError("simulated crash")

    path = tmp_path / "poses.json"
    module = RegistrationModule(
        [START_POSE], volume=subject, stage_steps=[50], save_every_n_steps=0, output=str(path), **SMALL
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        _trainer(50, [Crash()]).fit(module, datamodule=RegistrationData(true_poses=[TRUE_POSE]))
    results = json.loads(path.read_text())
    assert results["status"] == "interrupted" and results["step"] == 4
    torch.testing.assert_close(
        torch.tensor(results["targets"][0]["matrix"], dtype=torch.float64), module.best_poses().matrix[0]
    )


# --------------------------------------------------------------------------------------------------- bad input


def test_target_size_mismatch_names_both_sizes(subject):
    module = RegistrationModule([START_POSE], volume=subject, stage_steps=[2], **SMALL)
    data = RegistrationData.from_tensors(torch.rand(1, 1, 20, 24))
    with pytest.raises(ValueError, match=r"target is 20x24 pixels .* DRR detector is 64x64"):
        _trainer(2).fit(module, datamodule=data)


def test_nan_targets_are_rejected():
    targets = torch.rand(1, 1, 8, 8)
    targets[0, 0, 3, 3] = math.nan
    with pytest.raises(ValueError, match="targets must be finite"):
        RegistrationData.from_tensors(targets)


def test_target_count_must_match_the_starts(subject):
    module = RegistrationModule([START_POSE, START_POSE], volume=subject, stage_steps=[2], **SMALL)
    with pytest.raises(ValueError, match="initial_poses gives 2"):
        _trainer(2).fit(module, datamodule=RegistrationData.from_tensors(torch.rand(1, 1, SIZE, SIZE)))


def test_missing_target_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        RegistrationData(targets=[str(tmp_path / "missing.png")])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(loss="gradient_ncc", p_subsample=0.5), "needs whole images"),
        (dict(loss="patch_ncc", p_subsample=None), "needs a patch_size"),
        (dict(loss="nc"), "unknown loss"),
        (dict(scales=[0.5, 2.0], stage_steps=[1, 1]), "scales must be"),
        (dict(scales=[0.5, 1.0], stage_steps=[10]), "stage_steps must hold"),
        (dict(lr_rotation=0.0), "lr_rotation must be positive"),
        (dict(convention="ABC"), "Euler convention"),
    ],
)
def test_bad_options_are_named(subject, options, match):
    with pytest.raises(ValueError, match=match):
        RegistrationModule([START_POSE], volume=subject, **{**SMALL, **options})


@pytest.mark.parametrize(
    ("poses", "match"), [([[1.0, 2.0]], "initial_poses must be"), ([[math.nan, 0, 0, 0, 850, 0]], "must be finite")]
)
def test_bad_initial_poses_are_named(subject, poses, match):
    with pytest.raises(ValueError, match=match):
        RegistrationModule(poses, volume=subject, **SMALL)


def test_missing_volume_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ct.nii.gz"):
        RegistrationModule([START_POSE], volume=str(tmp_path / "ct.nii.gz"), **SMALL)


def test_detector_from_dicom_tags(subject, tmp_path):
    """A DICOM target's ImagerPixelSpacing and DistanceSourceToDetector become the detector when not given."""
    from tests.test_targets import write_dicom

    drr = DRR(subject, sdd=980.0, height=24, width=20, delx=9.0, dely=10.0)
    image = drr(pose_vectors_to_transform([TRUE_POSE]))[0, 0]
    path = write_dicom(
        tmp_path / "xray.dcm", (image / image.max() * 4000).round().to(torch.uint16), spacing=(10.0, 9.0), sdd=980.0
    )
    module = RegistrationModule([TRUE_POSE], volume=subject, sdd=None, height=None, delx=None, stage_steps=[1])
    _trainer(1).fit(module, datamodule=RegistrationData(targets=[str(path)]))
    detector = module.drr.detector
    assert (detector.sdd, detector.height, detector.width, detector.delx, detector.dely) == (980.0, 24, 20, 9.0, 10.0)
    assert module.results()["targets"][0]["loss"] < 1e-3  # the target is the DRR at the start pose


def test_missing_intrinsics_are_named(subject, tmp_path):
    module = RegistrationModule([TRUE_POSE], volume=subject, sdd=None, height=32, delx=8.0, stage_steps=[1])
    with pytest.raises(ValueError, match="the detector needs sdd"):
        _trainer(1).fit(module, datamodule=RegistrationData.from_tensors(torch.rand(1, 1, SIZE, SIZE)))


def test_convert_agrees_with_pose_vectors():
    rot = torch.tensor([TRUE_POSE[:3]], dtype=torch.float64)
    xyz = torch.tensor([TRUE_POSE[3:]], dtype=torch.float64)
    pose = convert(rot, xyz, parameterization="euler_angles", convention="ZXY", degrees=True)
    torch.testing.assert_close(pose.matrix, pose_vectors_to_transform([TRUE_POSE]).matrix)
