"""Empty-space skipping for the numba kernels: the box of x-slabs and y-planes that holds every non-zero voxel.

CT volumes carry a shell of air, padding or cropped field of view whose density is exactly 0 (the HU-to-density map
clamps it): 16 % of the y-planes of drreg's example chest CT, 30 % of those of the CT-like volume of
``benchmarks/render.py``. A Siddon sum adds ``density * length`` voxel by voxel, and a voxel of density ±0 adds
+0.0, which leaves any partial sum bitwise as it was (a sum that starts at +0.0 is never -0.0 under
round-to-nearest). So a walk clipped to the box of non-zero voxels gives bitwise the image of a walk of the whole
volume, and so do the pose gradients (a crossing between two zero voxels adds ±0 to them), while it skips the
shell's voxel visits, which are cache misses on a volume this size. Likewise a trilinear sample whose eight corners
are zero adds +0.0 and has a zero gradient: the trilinear forward and jacobian kernels visit only the samples with a
corner in the box.

:func:`occupied_box` finds that box by reading the shell, not the volume: slabs of x from both ends until one holds
a non-zero voxel, then y-planes (within those slabs) likewise. Its cost is one read of the shell (about 7 ms for the
52 MB shell of that CT-like volume on 2 cores), so the host only calls it when the rays will visit many voxels (see
``_numba_host``). It is computed at every call, from the values the kernel will read: a volume edited in place by
any means (``.data``, NumPy views) is never rendered with a stale box. The z-axis (contiguous in memory; rays of
radiographs run across it) is not clipped.

"Non-zero" is on the bits: every value other than +0.0 and -0.0 counts, including nan (which must reach the
image) and subnormals.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from drreg.render.kernels._numba_memory import load
from drreg.render.kernels._numba_traversal import JIT

__all__ = ["occupied_box"]

# Elements OR-reduced before each early-exit test (the reduction vectorises; the test does not).
_BLOCK = 1024
# The bits of a float32 other than its sign: zero exactly for +0.0 and -0.0.
_MAGNITUDE = 0x7FFFFFFF


@njit(**JIT)
def _any_nonzero(bits, start, stop):
    """Whether a float32 of ``bits[start:stop]`` (uint32 view) is neither +0.0 nor -0.0."""
    k = start
    while k < stop:
        end = min(stop, k + _BLOCK)
        seen = 0
        for j in range(k, end):
            seen |= load(bits, j) & _MAGNITUDE
        if seen:
            return True
        k = end
    return False


@njit(**JIT)
def _plane_nonzero(bits, y, lo0, hi0, ny, nz):
    """Whether the y-plane ``y`` of the slabs ``[lo0, hi0)`` holds a non-zero voxel (rows of ``nz`` values)."""
    for x in range(lo0, hi0):
        row = (x * ny + y) * nz
        if _any_nonzero(bits, row, row + nz):
            return True
    return False


@njit(parallel=True, **JIT)
def occupied_box(bits, nx, ny, nz):
    """The smallest box ``(lo0, hi0, lo1, hi1, 0, nz)`` (6,) int64 outside which every voxel is ±0.0.

    ``bits`` is the flat C-order float32 volume of shape ``(nx, ny, nz)`` viewed as uint32. A volume of zeros
    gives an empty box (``lo0 == hi0``), which every ray misses. Both ends of an axis are searched in parallel.
    """
    ends = np.empty(4, dtype=np.int64)
    slab = ny * nz
    for side in prange(2):
        if side == 0:
            x = 0
            while x < nx and not _any_nonzero(bits, x * slab, (x + 1) * slab):
                x += 1
            ends[0] = x
        else:
            x = nx
            while x > 0 and not _any_nonzero(bits, (x - 1) * slab, x * slab):
                x -= 1
            ends[1] = x
    lo0, hi0 = ends[0], ends[1]
    if lo0 >= hi0:
        return np.array([0, 0, 0, 0, 0, nz], dtype=np.int64)
    for side in prange(2):
        if side == 0:
            y = 0
            while y < ny and not _plane_nonzero(bits, y, lo0, hi0, ny, nz):
                y += 1
            ends[2] = y
        else:
            y = ny
            while y > 0 and not _plane_nonzero(bits, y - 1, lo0, hi0, ny, nz):
                y -= 1
            ends[3] = y
    return np.array([lo0, hi0, ends[2], ends[3], 0, nz], dtype=np.int64)
