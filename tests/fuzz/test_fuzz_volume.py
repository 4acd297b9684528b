"""Fuzz ``read`` with generated tensors, arrays and affines, then render what it returns (issue 10).

Volumes of random shapes (0- and 1-sized sides, 2D, 5D, several channels) and dtypes (bool, integers, float16,
complex...), affines that are singular, non-finite, mis-shaped or not numbers, labelmaps with odd ids, labels,
orientations, bone multipliers and fiducials: ``read`` returns a subject whose density is finite, in [0, 1] and of
the volume's shape, and which a DRR renders to a finite image, or it refuses naming the argument.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drreg import DRR, RigidTransform, read

from ._strategies import Arg, Values, check_call, check_output, choices, flags, invalid_words, numbers, tensors
from ._tiny import VIEW_AXIS

LONG = settings.get_profile("long")

VOLUME_DTYPES = (torch.int16, torch.int32, torch.int64, torch.uint8, torch.float16, torch.float32, torch.float64)
# HU-like values: air, soft tissue and bone in every volume of the "normal" fill.
HU_SCALE, HU_OFFSET = 600.0, -100.0


@st.composite
def volumes(draw: st.DrawFn, bad: bool) -> Any:
    """A CT as a tensor or array: (X, Y, Z) or (1, X, Y, Z) with sides >= 2 and real HU values, unless ``bad``."""
    side = st.integers(2, 5)
    if bad:
        kind = draw(st.sampled_from(("shape", "dtype", "values", "type")))
    else:
        kind = "valid"
    shape: tuple[int, ...] = draw(st.tuples(side, side, side))
    if draw(st.booleans()):
        shape = (1, *shape)
    dtype = draw(st.sampled_from(VOLUME_DTYPES + (torch.bool,)))
    fills = ("normal", "normal", "round", "constant")
    if kind == "shape":
        shape = draw(
            st.sampled_from([(0, 3, 3), (1, 3, 3), (3, 3, 1), (3, 0), (3, 3), (2, 3, 3, 3), (1, 1, 3, 3, 3), (3,), ()])
        )
    elif kind == "dtype":
        dtype = torch.complex64
    elif kind == "values":
        fills = ("nan", "inf") if dtype.is_floating_point else ("constant",)
        if not dtype.is_floating_point:
            dtype = torch.float32
            fills = ("nan",)
    if kind == "type":
        return draw(st.sampled_from([None, "", [[[0.0] * 3] * 3] * 3, 3.0, np.zeros((3, 3, 3), dtype=object)]))
    volume = draw(tensors(shape, dtypes=st.just(dtype), fills=fills, scale=HU_SCALE, offset=HU_OFFSET))
    return volume.numpy() if draw(st.booleans()) and dtype != torch.bfloat16 else volume


def _rotation(seed: int) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(4, generator=generator, dtype=torch.float64)
    from drreg.geometry import quaternion_to_matrix

    return quaternion_to_matrix(q).numpy()


@st.composite
def affines(draw: st.DrawFn, bad: bool) -> Any:
    """A voxel-to-world affine: valid (spacings 1e-3 to 1e3 mm, flips, rotations, shifts, in any array form) or
    not (singular, NaN, mis-shaped, a last row other than (0, 0, 0, 1), not numbers)."""
    if not bad:
        if draw(st.booleans()):
            return None
        spacing = np.array(
            draw(st.lists(st.sampled_from([0.5, 1.0, 2.5, -1.0, 1e-3, 1e3, 0.7]), min_size=3, max_size=3))
        )
        matrix = np.eye(4)
        matrix[:3, :3] = (_rotation(draw(st.integers(0, 1000))) if draw(st.booleans()) else np.eye(3)) * spacing
        matrix[:3, 3] = draw(st.lists(st.floats(-500, 500), min_size=3, max_size=3))
        form = draw(st.sampled_from(("numpy", "torch64", "torch32", "list")))
        return {
            "numpy": matrix,
            "torch64": torch.from_numpy(matrix),
            "torch32": torch.from_numpy(matrix).float(),
            "list": matrix.tolist(),
        }[form]
    matrix = np.diag([1.0, 2.0, 3.0, 1.0])
    kind = draw(st.sampled_from(("singular", "nan", "inf", "shape", "row", "text", "complex", "tiny")))
    if kind == "singular":
        matrix[:, 1] = 0.0
    elif kind == "nan":
        matrix[0, 3] = math.nan
    elif kind == "inf":
        matrix[1, 1] = math.inf
    elif kind == "shape":
        return matrix[:3]
    elif kind == "row":
        matrix[3, 0] = 0.5
    elif kind == "text":
        return "identity"
    elif kind == "complex":
        return matrix.astype(np.complex128) * 1j
    elif kind == "tiny":
        matrix[:3, :3] *= 1e-9  # a determinant of 6e-27: singular to float64 inversion, for all purposes
    return matrix


@st.composite
def labelmaps(draw: st.DrawFn, bad: bool, shape: tuple[int, ...]) -> Any:
    """A labelmap on the volume's grid: whole ids >= 0 (valid, up to 10**6), or negative, fractional, NaN ids, a
    complex dtype or another shape (invalid)."""
    spatial = shape[-3:]
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    ids = torch.randint(0, 4, spatial, generator=generator)
    if not bad:
        dtype = draw(st.sampled_from((torch.int64, torch.int16, torch.uint8, torch.float32, torch.bool)))
        if draw(st.booleans()) and dtype in (torch.int64, torch.float32):
            ids.view(-1)[0] = draw(st.sampled_from((1000, 65535, 10**6)))
        return ids.to(dtype)
    kind = draw(st.sampled_from(("negative", "fraction", "nan", "complex", "shape")))
    if kind == "negative":
        ids.view(-1)[-1] = -1
        return ids
    if kind == "fraction":
        return ids.double() + 0.5
    if kind == "nan":
        values = ids.double()
        values.view(-1)[0] = math.nan
        return values
    if kind == "complex":
        return ids.to(torch.complex64)
    return ids[..., :-1]


READ_VALUES = {
    "orientation": choices(("AP", "PA", None), ("ap", "LR", 1, "")),
    "bone_attenuation_multiplier": numbers(minimum=0.0, typical=(0.0, 10.0)),
    "center_volume": flags(),
    "fiducials": Values(
        st.sampled_from([None, np.zeros((2, 3)), torch.ones(1, 3, 3), [[1.0, 2.0, 3.0]]]),
        st.sampled_from([np.zeros((2, 2)), torch.full((1, 3), math.nan), "origin", torch.zeros(2, 1, 3)]),
    ),
}
PARTS = ("volume", "affine", "labelmap", "labels", *READ_VALUES)


@st.composite
def read_arguments(draw: st.DrawFn) -> dict[str, Arg]:
    """Arguments of ``read(volume, ...)``: all valid in half of the examples, else exactly one invalid."""
    bad = draw(st.sampled_from((None,) * len(PARTS) + PARTS))
    args: dict[str, Arg] = {}
    volume = draw(volumes(bad == "volume"))
    args["volume"] = Arg(volume, bad != "volume")
    affine = draw(affines(bad == "affine"))
    args["affine"] = Arg(affine, bad != "affine")
    with_labelmap = bad in ("labelmap", "labels") or draw(st.booleans())
    if with_labelmap:
        shape = tuple(volume.shape) if hasattr(volume, "shape") and len(volume.shape) >= 3 else (3, 3, 3)
        args["labelmap"] = Arg(draw(labelmaps(bad == "labelmap", shape)), bad != "labelmap")
    if bad == "labels":
        labels, valid = draw(st.sampled_from(([], [-1], [1.5], "1", [math.inf], 1j))), False
        if draw(st.booleans()):
            args.pop("labelmap")
            labels = [1]  # labels need a labelmap
        args["labels"] = Arg(labels, valid)
    elif with_labelmap and draw(st.booleans()):
        args["labels"] = Arg(draw(st.sampled_from((1, [1, 2], [0], [7], (3,), np.array([2])))), True)
    for name, values in READ_VALUES.items():
        if bad == name or draw(st.booleans()):
            args[name] = draw(values.args(invalid=bad == name))
    return args


def _view(subject: Any) -> tuple[DRR, RigidTransform] | None:
    """A 6 x 6 DRR of the subject and a pose that sees all of it, whatever its affine; None where the detector
    would leave the accepted range of distances."""
    image = subject["density"]
    affine = torch.as_tensor(image.affine, dtype=torch.float64)
    shape = torch.tensor(image.spatial_shape, dtype=torch.float64)
    corners = torch.tensor([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=torch.float64)
    world = (corners * (shape + 1.0) - 0.5) @ affine[:3, :3].T + affine[:3, 3]
    centre = world.mean(0)
    radius = float((world - centre).norm(dim=-1).max())
    depth = 3.0 * radius + 10.0
    if 2.0 * depth > 1e9:
        return None
    drr = DRR(subject, sdd=2.0 * depth, height=6, delx=radius + 1.0)
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, 3] = centre + torch.tensor(VIEW_AXIS[subject["orientation"]], dtype=torch.float64) * depth
    return drr, RigidTransform(pose)


def _check_read(args: dict[str, Arg]) -> None:
    kwargs = {name: arg.value for name, arg in args.items()}
    volume = kwargs.pop("volume")
    invalid = invalid_words(args)
    if "labels" in invalid and "labelmap" not in args:
        invalid = ["labelmap"]  # "labels=[1] requires a labelmap"
    if isinstance(volume, str) and kwargs.get("affine") is not None:
        invalid.append("affine")  # a path carries its own affine

    def check(subject: Any) -> None:
        density = subject["density"].data
        shape = tuple(np.shape(volume))
        spatial = shape[-3:]
        check_output(density, (1, *spatial), "density")
        assert density.dtype == torch.float32, f"density is {density.dtype}"
        assert float(density.min()) >= 0.0 and float(density.max()) <= 1.0, "density leaves [0, 1]"
        check_output(torch.as_tensor(subject["density"].affine), (4, 4), "affine")
        check_output(subject["reorient"], (4, 4), "reorient")
        if subject["fiducials"] is not None:
            check_output(subject["fiducials"], None, "fiducials")
        view = _view(subject)
        if view is None:
            return
        drr, pose = view
        mask = subject["mask"] is not None
        channels = int(subject["mask"].data.max()) + 1 if mask else 1
        check_call(
            lambda: drr(pose, mask_to_channels=mask),
            label="render",
            names=("mask",),
            situations=("can be allocated there",),
            check=lambda image: check_output(image, (1, channels, 6, 6), "image"),
        )

    check_call(
        lambda: read(volume, **kwargs),
        label="read",
        names=("volume", "bone_attenuation_multiplier"),
        invalid=invalid,
        situations=("volume has no soft-tissue voxel",),  # a constant volume of air or bone
        check=check,
    )


HU = torch.tensor([[[824, -276], [-1407, 241]], [[-750, -939], [142, 402]]], dtype=torch.int16)  # air, tissue, bone


def _hu(**extra: Arg) -> dict[str, Arg]:
    return {"volume": Arg(HU, True), **extra}


@given(args=read_arguments())
# A flag given as a string was read by its truthiness.
@example(_hu(center_volume=Arg("False", False)))
# A huge bone multiplier overflowed float32 into a NaN density.
@example(_hu(bone_attenuation_multiplier=Arg(1e300, True)))
# Text, complex or infinite affines, fiducials and labels failed deep in NumPy/torch, or lost their imaginary part.
@example(_hu(fiducials=Arg("origin", False)))
@example(_hu(affine=Arg(np.eye(4) * 1j, False)))
@example(_hu(labelmap=Arg(HU.clamp(0, 3), True), labels=Arg([math.inf], False)))
# A volume of an unknown type with an affine blamed the affine; an object array failed in torch.
@example({"volume": Arg(None, False), "affine": Arg(np.eye(4), True)})
@example({"volume": Arg(np.zeros((3, 3, 3), dtype=object), False)})
def test_read_fuzz(args: dict[str, Arg]) -> None:
    _check_read(args)


@pytest.mark.slow
@settings(LONG)
@given(args=read_arguments())
def test_read_fuzz_long(args: dict[str, Arg]) -> None:
    _check_read(args)
