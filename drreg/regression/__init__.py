"""Pose regression: sampled poses, DRRs rendered on the fly, a network that reads a camera pose off an X-ray.

- :mod:`~drreg.regression.sampling`: pose samplers about a reference pose (uniform Euler/translation ranges,
  normal in se(3)), and how offsets compose with the reference (:func:`perturb`).
- :mod:`~drreg.regression.data`: :class:`PoseRegressionDataModule` (poses from CPU workers, DRRs on the device).
- :mod:`~drreg.regression.augment`: :class:`SimToRealAugmentation` (kornia).
- :mod:`~drreg.regression.randomization`: :class:`PhysicsRandomization` (training X-rays simulated by
  :mod:`drreg.physics` with random tube voltage, scatter, blur, noise and bone density).
- :mod:`~drreg.regression.networks`: :class:`PoseRegressor` (an injected image encoder: drreg's
  :class:`ResNetEncoder`, a :class:`TimmEncoder` or any module with ``out_features``; any rotation
  parameterization).
- :mod:`~drreg.regression.module`: :class:`PoseRegressionModule` (LightningModule).
- :mod:`~drreg.regression.refine`: :func:`~drreg.regression.refine.predict_then_refine` (network predictions as
  starts of registration).
- :mod:`drreg.cli`: :class:`~drreg.cli.PoseRegressionCLI` (``drreg fit | validate | test | predict``).
"""

from drreg.regression.augment import SimToRealAugmentation
from drreg.regression.data import PoseDataset, PoseRegressionDataModule, fill_sparse, load_volume, rescale_images
from drreg.regression.module import PoseRegressionModule, geodesic_pose_loss, warmup_cosine
from drreg.regression.networks import (
    ROTATION_OUTPUT_SIZES,
    PoseRegressor,
    ResNetEncoder,
    TimmEncoder,
    build_encoder,
)
from drreg.regression.randomization import PhysicsRandomization, PhysicsSettings
from drreg.regression.sampling import (
    NormalPoseSampler,
    PoseSampler,
    UniformPoseSampler,
    perturb,
    pose_offset,
    reference_pose,
)

__all__ = [
    # sampling
    "PoseSampler",
    "UniformPoseSampler",
    "NormalPoseSampler",
    "perturb",
    "pose_offset",
    "reference_pose",
    # data
    "PoseDataset",
    "PoseRegressionDataModule",
    "load_volume",
    "rescale_images",
    "fill_sparse",
    # augmentation
    "SimToRealAugmentation",
    # physics domain randomisation
    "PhysicsRandomization",
    "PhysicsSettings",
    # networks
    "ROTATION_OUTPUT_SIZES",
    "PoseRegressor",
    "ResNetEncoder",
    "TimmEncoder",
    "build_encoder",
    # module
    "PoseRegressionModule",
    "geodesic_pose_loss",
    "warmup_cosine",
]
