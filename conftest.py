"""Root pytest configuration: `make test` also collects the doctests of drreg/ (`--doctest-modules`)."""

import importlib.util

# The Triton kernels import triton at module level; where it is not installed (macOS, Windows), skip their modules.
collect_ignore_glob = [] if importlib.util.find_spec("triton") else ["drreg/render/kernels/_triton_*.py"]
# The DiffDRR fixture scripts import DiffDRR (and make_metrics.py puts stand-ins for torchvision and timm into
# sys.modules): they are run by `make diffdrr-fixtures`, never imported by the tests.
collect_ignore_glob.append("tests/fixtures/*")
