"""Pose strategies: rotation/translation parameters for ``convert`` and ``DRR.forward``, and pose matrices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st

from drreg.geometry import axis_angle_to_matrix
from drreg.geometry.pose import POSE_PARAMETERIZATIONS, ROTATION_SIZES, RigidTransform
from drreg.geometry.rotations import EULER_CONVENTIONS

from ._strategies import ODD_DTYPES, Arg, flags, tensors
from ._tiny import VIEW_AXIS

BAD_PARAMETERIZATIONS = ("euler", "Quaternion", "", "rotation_3d", 3)
BAD_CONVENTIONS = ("xyz", "XYZW", "XXY", "", 0, None)
# Fills of random parameters that give a rotation with probability 1; other fills may be degenerate.
GENERIC_FILLS = ("normal", "uniform")
# The words a degenerate-parameter error uses: the parameterization's own name (the argument of its function).
DEGENERATE_WORDS = ("quaternion", "rotation_6d", "rotation_9d", "rotation_10d", "degenerate")
POSE_WORDS = ("rotation", "translation", "parameterization", "convention", "degrees", "matrix", "pose")


@dataclass
class PoseCase:
    """Arguments of ``convert(*args, parameterization=..., convention=..., degrees=...)``, or one pose for
    ``drr(pose)``, with what the contract says of them."""

    args: tuple[Any, ...]
    parameterization: Any = None
    convention: Any = None
    degrees: Any = False
    batch: int = 0  # the number of poses when valid
    invalid: list[str] = field(default_factory=list)  # words naming the invalid parts
    maybe_degenerate: bool = False  # the parameters may hold no (unique) rotation

    def keywords(self) -> dict[str, Any]:
        return {"parameterization": self.parameterization, "convention": self.convention, "degrees": self.degrees}

    def __repr__(self) -> str:
        shown = ", ".join(
            f"tensor({tuple(a.shape)}, {a.dtype}, {a.flatten()[:4].tolist()}...)"
            if isinstance(a, torch.Tensor)
            else repr(a)
            for a in self.args
        )
        return (
            f"PoseCase(args=({shown}), parameterization={self.parameterization!r}, convention={self.convention!r}, "
            f"degrees={self.degrees!r}, invalid={self.invalid}, maybe_degenerate={self.maybe_degenerate})"
        )


def rigid_matrices(batch: int, dtype: torch.dtype, generator: torch.Generator, translation: torch.Tensor | None = None):
    """(batch, 4, 4) random rigid poses; ``translation`` (3,) is expressed before the rotation (as in ``convert``)."""
    axis_angle = torch.randn(batch, 3, generator=generator, dtype=torch.float64) * 2.0
    rotation = axis_angle_to_matrix(axis_angle)
    t = torch.randn(batch, 3, generator=generator, dtype=torch.float64) * 10.0
    if translation is not None:
        t = t + translation
    matrix = torch.eye(4, dtype=torch.float64).repeat(batch, 1, 1)
    matrix[:, :3, :3] = rotation
    matrix[:, :3, 3] = (rotation @ t[..., None])[..., 0]
    return matrix.to(dtype)


BAD_PARTS = ("parameterization", "convention", "degrees", "dtype", "shape", "values", "translation")


@st.composite
def parameter_cases(
    draw: st.DrawFn,
    orientation: str | None = "AP",
    distance: float = 600.0,
    parameterization: st.SearchStrategy[Any] | None = None,
) -> PoseCase:
    """Rotation and translation parameters in every parameterization: all valid in half of the examples, else one
    part invalid (the parameterization, the convention, the degrees flag, the rotation's dtype, shape or values,
    or the translation).

    Valid translations put the source ``distance`` mm from the origin, looking at it, for the volumes of
    ``_tiny`` with ``orientation`` (at any rotation: the translation is expressed before the rotation).
    """
    bad = draw(st.sampled_from((None,) * len(BAD_PARTS) + BAD_PARTS))
    invalid: list[str] = []
    if parameterization is None:
        parameterization = st.sampled_from(POSE_PARAMETERIZATIONS)
        if bad == "parameterization":
            parameterization = st.sampled_from(BAD_PARAMETERIZATIONS)
    parameterization = draw(parameterization)
    if parameterization not in POSE_PARAMETERIZATIONS:
        invalid.append("parameterization")
    convention: Any = draw(st.sampled_from(BAD_CONVENTIONS if bad == "convention" else EULER_CONVENTIONS))
    if parameterization == "euler_angles" and convention not in EULER_CONVENTIONS:
        invalid.append("convention")
    euler = parameterization == "euler_angles"
    if bad == "degrees":
        degrees = draw(flags().args(invalid=True) | st.just(Arg(True, euler)))
    else:
        degrees = draw(flags().args(invalid=False) if euler else st.just(Arg(False, True)))
    if not degrees.valid or (degrees.value and parameterization != "euler_angles"):
        invalid.append("degrees")
    degrees = degrees.value

    batch = draw(st.integers(0, 3))
    dtype = draw(st.sampled_from(ODD_DTYPES[2:] if bad == "dtype" else (*FLOATS, *FLOATS, *ODD_DTYPES[:2])))
    if not dtype.is_floating_point:
        invalid.append("rotation")
    fills = (
        ("nan", "inf")
        if bad == "values"
        else ("normal", "normal", "uniform", "zero", "constant", "tiny", "huge", "round")
    )
    fill = draw(st.sampled_from(fills))
    maybe_degenerate = fill not in GENERIC_FILLS or dtype in (torch.float16, torch.bfloat16)
    size = ROTATION_SIZES.get(parameterization, 3) if parameterization != "matrix" else None
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    shape_ok = bad != "shape"
    if parameterization == "matrix":
        square = draw(st.sampled_from((3, 4)))
        matrix = rigid_matrices(batch, torch.float64, generator, torch.tensor(VIEW_AXIS[orientation]) * distance)
        if bad == "values" and batch:
            if fill == "nan":
                matrix[0, 0, 0] = float("nan")
            else:
                matrix = matrix + torch.randn(matrix.shape, generator=generator, dtype=torch.float64)  # not rigid
            invalid.append("rotation")
        if not shape_ok:
            matrix = matrix[..., :3, :]
            invalid.append("rotation")
        rotation = matrix[:, :square, :square] if shape_ok else matrix
        rotation = rotation.to(dtype)
    else:
        shape: tuple[int, ...] = (batch, size or 3)
        if not shape_ok:
            shape = draw(st.sampled_from(((batch, (size or 3) + 1), (size or 3,), (batch, 1, size or 3), (batch,))))
            invalid.append("rotation")
        rotation = draw(tensors(shape, dtypes=st.just(dtype), fills=(fill,), scale=2.0))
        if rotation.is_floating_point() and not bool(torch.isfinite(rotation).all()):
            invalid.append("rotation")  # NaN/inf drawn, or a huge value that the dtype turned into inf

    direction = torch.tensor(VIEW_AXIS[orientation], dtype=torch.float64) * distance
    kinds = ("nan", "shape", "batch", "int") if bad == "translation" else ("view", "view", "view", "none", "wild")
    translation_kind = draw(st.sampled_from(kinds))
    translation: torch.Tensor | None
    if translation_kind == "none":
        translation = None
    elif translation_kind == "wild":
        translation = draw(tensors((batch, 3), fills=("normal", "huge", "zero", "tiny"), scale=1e3))
    else:
        jitter = torch.randn(batch, 3, generator=generator, dtype=torch.float64) * 5.0
        translation = (direction + jitter).to(draw(st.sampled_from(FLOATS)))
        if translation_kind == "nan" and batch:
            translation[-1, 1] = float("inf")
            invalid.append("translation")
        elif translation_kind == "shape":
            translation = translation[:, :2]
            invalid.append("translation")
        elif translation_kind == "batch":
            translation = torch.cat((translation, translation[:1] if batch else direction[None]))
            invalid.append("translation")
        elif translation_kind == "int":
            translation = translation.round().to(torch.int64)
            invalid.append("translation")
    if parameterization == "matrix" and rotation.shape[-1] == 4 and translation is not None and shape_ok:
        invalid.append("translation")  # a full pose carries its translation
    return PoseCase(
        args=(rotation,) if translation is None else (rotation, translation),
        parameterization=parameterization,
        convention=convention,
        degrees=degrees,
        batch=batch,
        invalid=invalid,
        maybe_degenerate=maybe_degenerate,
    )


FLOATS = (torch.float64, torch.float32)


@st.composite
def pose_objects(draw: st.DrawFn, orientation: str | None = "AP", distance: float = 600.0) -> PoseCase:
    """One pose argument for ``drr(pose)``: a ``RigidTransform`` or a (B, 4, 4) / (4, 4) tensor, valid or not."""
    batch = draw(st.integers(0, 3))
    dtype = draw(st.sampled_from(FLOATS))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    matrix = rigid_matrices(batch, dtype, generator, torch.tensor(VIEW_AXIS[orientation]) * distance)
    kind = draw(st.sampled_from(("transform", "tensor", "single", "skewed", "nan", "int", "shape", "list")))
    invalid: list[str] = []
    value: Any
    if kind == "transform":
        value = RigidTransform(matrix)
    elif kind == "single":
        matrix = rigid_matrices(1, dtype, generator, torch.tensor(VIEW_AXIS[orientation]) * distance)
        value, batch = matrix[0], 1
    elif kind == "skewed":
        value = matrix * torch.tensor([1.0, 1.0, 1.5, 1.0], dtype=dtype)
        if batch:
            invalid.append("matrix")
    elif kind == "nan":
        value = matrix.clone()
        if batch:
            value[-1, 0, 3] = float("nan")
            invalid.append("pose")
    elif kind == "int":
        value = matrix.round().to(torch.int64)
        invalid.append("matrix")
    elif kind == "shape":
        value = matrix[..., :3, :]
        invalid.append("matrix")
    elif kind == "list":
        value = matrix.tolist()
        invalid.append("pose")
    else:
        value = matrix
    return PoseCase(args=(value,), batch=batch, invalid=invalid)
