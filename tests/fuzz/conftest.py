"""Hypothesis profiles of the fuzz suite (issue 10).

- ``ci`` (the default): a few dozen examples per test, derandomized (the same examples on every run, so CI is
  reproducible), no example database written to disk; the whole suite runs in well under a minute.
- ``long``: 1000 random examples per test, for the ``*_long`` twins marked ``slow`` (``pytest -m slow tests/fuzz``)
  or for every test with ``HYPOTHESIS_PROFILE=long pytest tests/fuzz``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Generated tensors and subjects are large for hypothesis' taste, and a first call may compile a kernel (numba).
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

settings.register_profile(
    "ci", max_examples=50, deadline=None, derandomize=True, database=None, suppress_health_check=_QUIET
)
settings.register_profile("long", max_examples=1000, deadline=None, database=None, suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
