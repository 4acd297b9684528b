"""The one dispatch point of :mod:`drreg.render`: ``render`` and ``resolve_backend`` (fused where it can run).

``backend="auto"`` without loadable fused kernels renders with the torch reference, with one warning saying why;
``backend="fused"`` where the kernels cannot run, and unknown backends, raise with the valid choices.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from drreg import DRR, read
from drreg.render import render, resolve_backend
from drreg.render.kernels import fused_unavailable_reason, kernel_load_error
from tests.render._cases import rays, volume

EULER = {"parameterization": "euler_angles", "convention": "ZXY"}


def test_kernels_load_here():
    # The test environment has numba: the CPU kernels must load, or every "fused" test below is meaningless.
    assert kernel_load_error(torch.device("cpu")) is None
    assert resolve_backend("auto", torch.zeros(2, 2, 2)) == "fused"


def _run_without_numba(body: str) -> subprocess.CompletedProcess:
    # sys.modules[name] = None makes `import numba` raise ModuleNotFoundError, exactly as in an install without it.
    script = "import sys\nsys.modules['numba'] = None\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_auto_falls_back_with_one_warning_issue9():
    # A `pip install` without numba silently rendered 20x slower: it now warns once, naming numba and the fix.
    result = _run_without_numba(
        """
        import warnings
        import torch
        from drreg import DRR, load_example_ct
        warnings.simplefilter("always")
        drr = DRR(load_example_ct(), sdd=1020.0, height=16, delx=20.0)
        rot, xyz = torch.zeros(1, 3), torch.tensor([[0.0, 850.0, 0.0]])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = drr(rot, xyz, parameterization="euler_angles", convention="ZXY")
            second = drr(rot, xyz, parameterization="euler_angles", convention="ZXY")
        reference = DRR(load_example_ct(), sdd=1020.0, height=16, delx=20.0, backend="torch")
        expected = reference(rot, xyz, parameterization="euler_angles", convention="ZXY")
        assert torch.equal(first, second) and torch.allclose(first, expected), "fallback must render the reference"
        messages = [str(w.message) for w in caught if "backend='auto'" in str(w.message)]
        print(len(messages))
        print(messages[0])
        """
    )
    assert result.returncode == 0, result.stderr
    count, message = result.stdout.strip().splitlines()
    assert count == "1"
    assert "numba is not installed" in message and "pip install 'numba>=0.59'" in message


def test_fused_without_numba_raises_issue9():
    # backend="fused" asked for explicitly cannot fall back: a clear error naming the missing package.
    result = _run_without_numba(
        """
        import torch
        from drreg.render import resolve_backend
        try:
            resolve_backend("fused", torch.zeros(2, 2, 2))
        except ValueError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "backend='fused' cannot render here: numba is not installed" in result.stdout


def test_float64_falls_back_silently():
    # float64 volumes are a documented limit of the kernels, not a broken install: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_backend("auto", torch.zeros(2, 2, 2, dtype=torch.float64)) == "torch"


# -- bad input ---------------------------------------------------------------------------------------------------------


def test_fused_backend_rejects_float64_density():
    density, _ = volume(22)
    source, target = rays(23, torch.float64)
    assert "float64" in fused_unavailable_reason(density.double())
    with pytest.raises(ValueError, match=r"float64.*backend='torch'"):
        render(density.double(), source[None], target[None], torch.eye(4), backend="fused")


def _tiny_subject():
    generator = torch.Generator().manual_seed(29)
    hu = (torch.rand(12, 10, 8, generator=generator) * 1600 - 700).to(torch.int16)
    return read(hu, affine=torch.diag(torch.tensor([2.0, 2.5, 3.0, 1.0], dtype=torch.float64)))


def test_drr_fused_backend_rejects_float64_density():
    drr = DRR(_tiny_subject(), sdd=400.0, height=4, delx=2.0, backend="fused").double()
    rot, xyz = torch.zeros(1, 3, dtype=torch.float64), torch.tensor([[0.0, 300.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"float64.*backend='torch'"):
        drr(rot, xyz, **EULER)
    assert DRR(_tiny_subject(), sdd=400.0, height=4, delx=2.0, backend="torch").double()(rot, xyz, **EULER).max() > 0


def test_unknown_backend_lists_choices():
    density, _ = volume(24)
    source, target = rays(25)
    with pytest.raises(ValueError, match=r"unknown backend 'numba'.*auto, torch, fused"):
        render(density, source[None], target[None], torch.eye(4), backend="numba")
    with pytest.raises(ValueError, match=r"unknown backend 'numba'.*'auto', 'torch', 'fused'"):
        DRR(_tiny_subject(), sdd=400.0, height=4, delx=2.0, backend="numba")
