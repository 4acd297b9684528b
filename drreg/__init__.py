"""drreg: fast differentiable DRRs and 2D/3D X-ray to CT registration on PyTorch Lightning."""

__version__ = "0.1.0"
