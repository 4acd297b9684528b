"""DiffDRR 0.6.1's outputs on small inputs (tests/fixtures/diffdrr/data.pt, made by make_data.py beside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "diffdrr" / "data.pt"


def load_fixture() -> dict[str, Any]:
    """The fixture's dict; skips the test if the file is absent (run make_data.py with diffdrr 0.6.1)."""
    if not FIXTURE.exists():
        pytest.skip(f"DiffDRR fixture {FIXTURE} not found: run tests/fixtures/diffdrr/make_data.py")
    return torch.load(FIXTURE, weights_only=False)


def write_nifti(inputs: dict[str, torch.Tensor], folder: Path) -> tuple[Path, Path]:
    """The fixture's CT and labelmap as NIfTI files, written as make_data.py writes them."""
    import nibabel as nib

    affine = inputs["affine"].numpy()
    ct, mask = folder / "ct.nii.gz", folder / "mask.nii.gz"
    nib.save(nib.Nifti1Image(inputs["hu"].numpy(), affine), ct)
    nib.save(nib.Nifti1Image(inputs["labelmap"].numpy(), affine), mask)
    return ct, mask
