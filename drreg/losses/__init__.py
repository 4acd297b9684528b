"""Image similarity for registration: MSE and the normalized cross-correlation (NCC) family, dense or sparse.

Each similarity comes twice, side by side, as in kornia: a plain function (:func:`mse`, :func:`ncc`,
:func:`patch_ncc`, :func:`multiscale_ncc`, :func:`gradient_ncc`) and a loss class holding its settings
(:class:`MSELoss`, :class:`NCCLoss`, :class:`PatchNCCLoss`, :class:`MultiscaleNCCLoss`, :class:`GradientNCCLoss`,
all :class:`SimilarityLoss` modules), which a configuration file names by ``class_path``::

    loss:
      class_path: drreg.losses.PatchNCCLoss
      init_args: {patch_size: 9}

:func:`loss_from_name` maps the short names of :data:`LOSSES` (``"ncc"``, ``"patch_ncc"``, ...) to the classes.

=====================  =====================================================================================
:mod:`.base`           :class:`SimilarityLoss`, the base class, and :data:`DEFAULT_EPS`
:mod:`.squared_error`  :func:`mse` and :class:`MSELoss`
:mod:`.correlation`    :func:`ncc`, :func:`patch_ncc`, :func:`multiscale_ncc` and their loss classes
:mod:`.gradient`       :func:`gradient_ncc` and :class:`GradientNCCLoss`
:mod:`.information`    :func:`mutual_information` and :class:`MutualInformationLoss` (Parzen histograms)
:mod:`.pixels`         sparse pixel sets: :func:`sample_patch_indices`, :func:`gather_pixels`
:mod:`.registry`       the short names: :data:`LOSSES`, :func:`loss_from_name`, the deprecated :class:`ImageLoss`
=====================  =====================================================================================

Every function and loss takes a batch of predicted images (DRRs) and target X-rays and returns one value per
batch element, a (B,) tensor, so that a multi-start optimizer can keep the best start. Everything is
differentiable with respect to both images.

Two layouts are accepted:

- dense images (B, C, H, W);
- sparse pixel sets (B, C, n): the values of the same ``n`` pixels of both images, e.g. a DRR rendered
  at ``indices`` with ``reshape=False`` and the target read by :func:`gather_pixels` at the same indices.
  :func:`patch_ncc` on a sparse set expects whole patches laid out by :func:`sample_patch_indices`. A loss says
  which it takes: :attr:`SimilarityLoss.sparse` and :attr:`SimilarityLoss.patch_size`.

Convention: similarities lie in ``[-1, 1]`` (1 = identical up to an affine intensity change ``a * x + b``
with ``a > 0``); the matching loss is ``1 - similarity``; :func:`mse` is a loss as it stands. ``eps`` is
an absolute variance floor (intensity² units): a constant image has similarity 0 with anything, never NaN, even
with ``eps = 0``. Half-precision images are compared in float32 (and the result is float32): their squares would
overflow. Intensities whose squares overflow float32 (``|x| > 1e19``) are not supported.
"""

from drreg.losses.base import DEFAULT_EPS, SimilarityLoss
from drreg.losses.correlation import MultiscaleNCCLoss, NCCLoss, PatchNCCLoss, multiscale_ncc, ncc, patch_ncc
from drreg.losses.gradient import GradientNCCLoss, gradient_ncc
from drreg.losses.information import JOINT_EPS, MutualInformationLoss, mutual_information
from drreg.losses.pixels import gather_pixels, sample_patch_indices
from drreg.losses.registry import LOSS_ARGUMENTS, LOSSES, ImageLoss, loss_from_name
from drreg.losses.squared_error import MSELoss, mse

__all__ = [
    "DEFAULT_EPS",
    "JOINT_EPS",
    "LOSSES",
    "LOSS_ARGUMENTS",
    "GradientNCCLoss",
    "ImageLoss",
    "MSELoss",
    "MultiscaleNCCLoss",
    "MutualInformationLoss",
    "NCCLoss",
    "PatchNCCLoss",
    "SimilarityLoss",
    "gather_pixels",
    "gradient_ncc",
    "loss_from_name",
    "mse",
    "multiscale_ncc",
    "mutual_information",
    "ncc",
    "patch_ncc",
    "sample_patch_indices",
]
