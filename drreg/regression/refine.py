"""Predict then refine: a pose-regression network's predictions become the starting poses of intensity registration.

A network gives a pose within a few degrees in milliseconds; :class:`~drreg.registration.RegistrationModule`
then refines it to sub-millimetre accuracy by optimising the pose through the renderer. This module hands one to
the other: the predicted poses (camera to world) are the registration's initial poses, the images its targets.
"""

from __future__ import annotations

from typing import Any

import torch
import torchio
from lightning import Trainer

from drreg._checks import check_finite, check_shape
from drreg.geometry.pose import RigidTransform
from drreg.registration import Imaging, RegistrationData, RegistrationModule, downsample_targets
from drreg.regression.data import rescale_images
from drreg.regression.module import PoseRegressionModule

__all__ = ["predict_then_refine"]


@torch.no_grad()
def _predict(model: PoseRegressionModule, images: torch.Tensor, size: tuple[int, int] | None) -> RigidTransform:
    training = model.training
    model.eval()
    try:
        images = images.to(model.device, torch.float32)
        if size is not None:
            images = downsample_targets(images, *size)  # the same detector area at the network's resolution
        return model(rescale_images(images)).to(torch.float64)
    finally:
        model.train(training)


def predict_then_refine(
    model: PoseRegressionModule,
    images: torch.Tensor,
    volume: str | torchio.Subject,
    sdd: float,
    delx: float,
    dely: float | None = None,
    true_poses: RigidTransform | None = None,
    network_input_size: tuple[int, int] | None = None,
    trainer: Trainer | None = None,
    **registration: Any,
) -> dict[str, Any]:
    """Predict the poses of X-ray images with a network, then refine them by registration.

    Args:
        model: a trained :class:`PoseRegressionModule`.
        images: (T, 1, H, W) target images (X-rays made DRR-like with :func:`drreg.targets.preprocess`, or DRRs),
            covering the detector area the network was trained for (see ``network_input_size``).
        volume: the CT (``"example"``, a path, or a subject), as for :class:`RegistrationModule`.
        sdd: source-to-detector distance (mm) of the images.
        delx: pixel spacing along a row (mm).
        dely: pixel spacing along a column (mm, default ``delx``).
        true_poses: T known poses (camera to world) for the errors, or ``None``.
        network_input_size: ``(H, W)`` of the DRRs the network was trained on, when the images are finer (the same
            detector area at more pixels, as registration wants): they are area-averaged to it before the
            prediction. ``None``: the network reads the images as they are.
        trainer: the ``Trainer`` for the refinement (a quiet CPU/GPU one with ``max_steps`` = the stages' steps by
            default).
        **registration: further :class:`RegistrationModule` arguments (``loss``, ``schedule``, ``p_subsample``,
            ...). ``initial_poses`` and ``imaging`` come from the predictions, the images and the arguments above.

    Returns:
        ``{"predicted": RigidTransform (T, 4, 4), "refined": RigidTransform (T, 4, 4), "results": dict}`` with
        the registration's :meth:`~RegistrationModule.results` (errors of the refined poses when ``true_poses`` is
        given), and ``"predicted_errors"`` (rotation, translation, mTRE of the predictions) in that case.

    Raises:
        ValueError: images that are not (T, 1, H, W) or hold NaN/inf; a ``true_poses`` of another length.
    """
    check_shape(images, "T 1 H W", name="images")
    check_finite(images, "images")
    if true_poses is not None and len(true_poses) != len(images):
        raise ValueError(f"{len(true_poses)} true poses for {len(images)} images")
    for key in ("initial_poses", "imaging"):
        if key in registration:
            raise ValueError(f"{key} comes from the images and the network's predictions; do not pass it")
    predicted = _predict(model, images, network_input_size)
    registration.setdefault("results_writer", False)  # returned below; give a ResultsWriter to also write them
    height, width = int(images.shape[-2]), int(images.shape[-1])
    imaging = Imaging(volume=volume, sdd=sdd, height=height, width=width, delx=delx, dely=dely)
    module = RegistrationModule(initial_poses=predicted.matrix.cpu(), imaging=imaging, **registration)
    data = RegistrationData.from_tensors(images.float().cpu(), true_poses=true_poses)
    if trainer is None:
        trainer = Trainer(
            max_steps=module.max_steps,
            max_epochs=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator=model.device.type if model.device.type in ("cpu", "cuda") else "auto",
            devices=1,
        )
    trainer.fit(module, datamodule=data)
    output: dict[str, Any] = {"predicted": predicted.to("cpu"), "refined": module.best_poses().to("cpu")}
    output["results"] = module.results()
    if true_poses is not None:
        errors = module.pose_errors(predicted.to(module.device), RigidTransform(true_poses.matrix.to(module.device)))
        output["predicted_errors"] = {name: value.cpu() for name, value in errors.items()}
    return output
