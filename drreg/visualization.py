"""DiffDRR-compatible import path: ``from drreg.visualization import plot_drr, plot_mask``.

The implementation lives in :mod:`drreg.viz`.
"""

from drreg.viz import plot_drr, plot_mask

__all__ = ["plot_drr", "plot_mask"]
