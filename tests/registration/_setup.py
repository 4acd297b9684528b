"""What the registration tests share: the poses, the detectors, a quiet Trainer and a short registration."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from lightning import Callback, Trainer

from drreg import DRR
from drreg.registration import (
    CoarseToFine,
    Imaging,
    RegistrationData,
    RegistrationModule,
    ResultsWriter,
    pose_vectors_to_transform,
)

TRUE_POSE = [4.0, -3.0, 2.0, 5.0, 850.0, -4.0]  # Euler ZXY degrees, mm
START_POSE = [9.0, -8.0, 6.0, 15.0, 860.0, -12.0]  # about 10 degrees and 15 mm away
SIZE = 64
SMALL = dict(sdd=1020.0, height=SIZE, delx=4.0)
TINY = dict(sdd=1020.0, height=16, delx=16.0)


def make_trainer(max_steps: int, callbacks: Sequence[Callback] = (), **kwargs) -> Trainer:
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


def synthetic_data(subject, true_poses=(TRUE_POSE,), detector=SMALL, **options) -> RegistrationData:
    """Synthetic targets of ``subject`` at ``true_poses`` on ``detector``: the data owns the imaging set-up."""
    imaging = Imaging(volume=subject, **detector)
    return RegistrationData(true_poses=[list(p) for p in true_poses], imaging=imaging, **options)


def make_module(imaging, starts=(START_POSE,), scales=(1.0,), stage_steps=(200,), output=None, **options):
    """A RegistrationModule of ``imaging`` (``data.imaging``); ``options`` are schedule or module arguments."""
    schedule_names = set(inspect.signature(CoarseToFine).parameters)
    schedule = {name: options.pop(name) for name in list(options) if name in schedule_names}
    if output is not None:
        options["results_writer"] = ResultsWriter(output=str(output), every_n_steps=options.pop("every_n_steps", 10))
    schedule = CoarseToFine(scales=list(scales), stage_steps=list(stage_steps), **schedule)
    return RegistrationModule([list(start) for start in starts], imaging, schedule=schedule, **options)


def register(subject, tmp_path, starts=(START_POSE,), true_poses=(TRUE_POSE,), steps=(60, 60), **options):
    """Register synthetic targets at ``true_poses`` from ``starts``, in two stages (0.5, 1), whole images."""
    options = {"scales": [0.5, 1.0], "stage_steps": list(steps), "p_subsample": None, **options}
    data = synthetic_data(subject, true_poses)
    registration = make_module(data.imaging, starts, output=tmp_path / "poses.json", **options)
    trainer = make_trainer(registration.max_steps)
    trainer.fit(registration, datamodule=data)
    return registration, trainer


def dicom_target(subject, path, **tags):
    """A 24 x 20 DICOM target of ``subject`` at TRUE_POSE (980 mm, 9 x 10 mm pixels), with ``tags``."""
    from tests.test_targets import write_dicom

    drr = DRR(subject, sdd=980.0, height=24, width=20, delx=9.0, dely=10.0)
    image = drr(pose_vectors_to_transform([TRUE_POSE]))[0, 0]
    return write_dicom(path, (image / image.max() * 4000).round().to(torch.uint16), **tags)
