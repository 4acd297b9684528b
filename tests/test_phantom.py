"""Tests for drreg._phantom: the example chest CT is deterministic, cached read-only, and quick to build."""

from __future__ import annotations

import time

import numpy as np
import pytest

from drreg._phantom import GRID_SHAPE, chest_phantom_arrays, make_chest_phantom


def test_example_is_deterministic() -> None:
    hu, labels, affine, structures = make_chest_phantom()
    cached = chest_phantom_arrays()
    assert np.array_equal(hu, cached[0])
    assert np.array_equal(labels, cached[1])
    assert np.array_equal(affine, cached[2])
    assert structures.equals(cached[3])


def test_cached_arrays_are_read_only() -> None:
    hu, labels, affine, _ = chest_phantom_arrays()
    assert hu.shape == labels.shape == GRID_SHAPE
    assert not (hu.flags.writeable or labels.flags.writeable or affine.flags.writeable)


@pytest.mark.slow
def test_example_build_time() -> None:
    """Timing test: the phantom must build in under 3 s (best of three, to ride out a busy machine)."""
    durations = []
    for _ in range(3):
        start = time.perf_counter()
        make_chest_phantom()
        durations.append(time.perf_counter() - start)
        if durations[-1] < 3.0:
            break
    assert min(durations) < 3.0, f"phantom build took {min(durations):.2f} s"
