"""drreg: fast differentiable DRRs and 2D/3D X-ray to CT registration on PyTorch Lightning."""

from drreg.drr import DRR
from drreg.geometry.detector import Detector
from drreg.geometry.pose import RigidTransform, convert
from drreg.viz import plot_drr, plot_mask
from drreg.volume import load_example_ct, read

__version__ = "0.1.0"  # the one version string: pyproject reads it (setuptools dynamic)

__all__ = [
    "DRR",
    "Detector",
    "RigidTransform",
    "convert",
    "read",
    "load_example_ct",
    "plot_drr",
    "plot_mask",
    "__version__",
]
