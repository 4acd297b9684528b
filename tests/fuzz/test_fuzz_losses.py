"""Fuzz the image losses, functional and ``ImageLoss`` (issue 10).

Random shapes (dense, sparse, empty, 1-pixel, mismatched), dtypes (half precision, integers, complex), constant,
tiny, huge and NaN images, and random sizes, weights, sigmas and eps: each loss returns a finite (B,) tensor, or
refuses naming the argument.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drreg.losses import (
    LOSS_ARGUMENTS,
    LOSSES,
    ImageLoss,
    SimilarityLoss,
    gather_pixels,
    gradient_ncc,
    loss_from_name,
    mse,
    multiscale_ncc,
    ncc,
    patch_ncc,
)

from ._strategies import (
    FILLS,
    Arg,
    Values,
    arguments,
    check_call,
    check_output,
    choices,
    integers,
    invalid_words,
    numbers,
    tensors,
)

LONG = settings.get_profile("long")
IMAGE_DTYPES = (torch.float32, torch.float32, torch.float64, torch.float16, torch.bfloat16)
BAD_DTYPES = (torch.int64, torch.bool, torch.complex64)


@st.composite
def image_pairs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(pred, target) with the words naming what is wrong with them (nothing in half of the examples)."""
    dense = draw(st.sampled_from((True, True, True, False)))
    batch, channels = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    size = st.integers(1, 9)
    shape = (batch, channels, draw(size), draw(size)) if dense else (batch, channels, draw(size) ** 2)
    bad = draw(st.sampled_from((None,) * 6 + ("shape", "mismatch", "dtype", "values", "empty")))
    if bad == "shape":
        shape = draw(st.sampled_from(((4, 4), (2,), (1, 1, 2, 3, 3), ())))
    elif bad == "empty":
        shape = (0, *shape[1:])
    dtype = draw(st.sampled_from(BAD_DTYPES if bad == "dtype" else IMAGE_DTYPES))
    # Intensities up to 1e4 x N(0, 1) (DRRs in mm x density reach a few hundred); squares above float32's range
    # (|x| > 1e19, the "huge" fill) are not supported (losses module docstring).
    finite = [f for f in FILLS if f not in ("nan", "inf", "huge")]
    scale = draw(st.sampled_from((1.0, 1e-3, 1e4)))
    pred = draw(tensors(shape, dtypes=st.just(dtype), fills=("nan", "inf") if bad == "values" else finite, scale=scale))
    target_dtype = draw(st.sampled_from((dtype, torch.float32))) if bad != "dtype" else dtype
    target = draw(tensors(shape, dtypes=st.just(target_dtype), fills=finite, scale=scale))
    if bad == "mismatch":
        target = target[..., :-1] if target.shape[-1] > 1 else torch.cat((target, target), -1)
    invalid = {
        None: [],
        "shape": ["pred"],
        "mismatch": ["pred"],
        "dtype": ["pred"],
        "values": ["pred"],
        "empty": ["pred"],
    }[bad]
    if bad is None and not (bool(torch.isfinite(pred).all()) and bool(torch.isfinite(target).all())):
        invalid = ["pred", "target"]  # a huge value that the dtype turned into inf
    return pred, target, invalid


OPTIONS = {
    "patch_size": integers(minimum=1, typical=(1, 5), whole_floats=False, huge=False),
    "eps": numbers(minimum=0.0, typical=(0.0, 1.0)),
    "sigma": numbers(minimum=0.0, typical=(0.0, 3.0)),
    "patch_sizes": Values(
        st.lists(st.sampled_from((None, 0, 1, 2, 3)), min_size=1, max_size=3).map(tuple),
        st.sampled_from(((), "3", (2.5,), (-1,), 3, (True,))),
    ),
    "weights": Values(st.just(None), st.sampled_from(((-1.0,), (float("nan"),), ("a",)))),
}
FUNCTIONS = {
    "mse": (mse, ()),
    "ncc": (ncc, ("eps",)),
    "patch_ncc": (patch_ncc, ("patch_size", "eps")),
    "multiscale_ncc": (multiscale_ncc, ("patch_sizes", "weights", "eps")),
    "gradient_ncc": (gradient_ncc, ("sigma", "patch_size", "eps")),
}
# Errors that valid options may meet on a given image: a window larger than the image, a sparse set that is not
# whole patches, a loss that needs dense images.
SITUATIONS = ("larger than the image", "whole patches", "dense images", "patch_size")


# How the messages name the options: "patch_sizes must be a non-empty sequence", "each patch size must be".
WORDS = {"patch_sizes": ("patch_sizes", "patch size"), "weights": ("weights", "weight"), "name": ("loss name",)}


def _check_function(
    name: str, pred: torch.Tensor, target: torch.Tensor, image_invalid: list[str], options: dict[str, Arg]
) -> None:
    function, _ = FUNCTIONS[name]
    if name == "patch_ncc" and "patch_size" not in options:
        options = {**options, "patch_size": Arg(2, True)}
    if name == "multiscale_ncc" and "patch_sizes" not in options:
        options = {**options, "patch_sizes": Arg((None, 2), True)}
    if name == "multiscale_ncc" and "weights" in options and options["weights"].valid and options["patch_sizes"].valid:
        count = len(options["patch_sizes"].value)
        options = {**options, "weights": Arg(tuple(float(i + 1) for i in range(count)), True)}
    if name == "gradient_ncc" and "patch_size" in options and _is_zero(options["patch_size"].value):
        options = {**options, "patch_size": Arg(0, True)}  # 0: the global NCC of the gradients
    kwargs = {key: arg.value for key, arg in options.items()}
    invalid = image_invalid + invalid_words(options, WORDS)
    check_call(
        lambda: function(pred, target, **kwargs),
        names=("pred", "target", *options),
        invalid=invalid,
        situations=SITUATIONS,
        check=lambda value: check_output(value, (pred.shape[0],), name),
        label=name,
    )


@st.composite
def loss_calls(draw: st.DrawFn) -> tuple[str, torch.Tensor, torch.Tensor, list[str], dict[str, Arg]]:
    name = draw(st.sampled_from(tuple(FUNCTIONS)))
    pred, target, invalid = draw(image_pairs())
    allowed = {key: OPTIONS[key] for key in FUNCTIONS[name][1]}
    options = (
        draw(arguments(allowed))
        if not invalid
        else draw(arguments({k: Values(v.valid, v.valid) for k, v in allowed.items()}))
    )
    return name, pred, target, invalid, options


RAMP = torch.arange(64.0).reshape(1, 1, 8, 8)


@given(call=loss_calls())
# float16 images of ordinary intensities overflowed their squares (inf MSE, NaN NCC).
@example(("mse", (RAMP * 20).half(), RAMP.half(), [], {}))
@example(("ncc", (RAMP * 20).half(), RAMP.half(), [], {}))
# eps given as a Fraction (a real number check_number accepts) failed in tensor arithmetic (TypeError).
@example(("ncc", RAMP, RAMP, [], {"eps": Arg(Fraction(0), True)}))
# gradient_ncc: a huge sigma asked for a 2e12-tap kernel, a tiny one (below float32) divided 0 by 0.
@example(("gradient_ncc", RAMP, RAMP.flip(-1), [], {"sigma": Arg(1e12, True)}))
@example(("gradient_ncc", RAMP, RAMP.flip(-1), [], {"sigma": Arg(1.36e-70, True)}))
# patch_size=False was read as 0, the global NCC.
@example(("gradient_ncc", RAMP, RAMP, [], {"patch_size": Arg(False, False)}))
def test_loss_functions_fuzz(call: tuple[str, torch.Tensor, torch.Tensor, list[str], dict[str, Arg]]) -> None:
    _check_function(*call)


@pytest.mark.slow
@settings(LONG)
@given(call=loss_calls())
def test_loss_functions_fuzz_long(call: tuple[str, torch.Tensor, torch.Tensor, list[str], dict[str, Arg]]) -> None:
    _check_function(*call)


# ------------------------------------------------------------------------------------------ ImageLoss

MODULE = {
    "name": choices(LOSSES, ("NCC", "ssim", "", None)),
    "patch_size": integers(minimum=1, typical=(1, 5), whole_floats=False, huge=False, allow_none=True),
    "patch_sizes": OPTIONS["patch_sizes"],
    "sigma": OPTIONS["sigma"],
    "eps": OPTIONS["eps"],
}


def _is_zero(value: object) -> bool:
    return type(value) is int and value == 0


def _check_module(args: dict[str, Arg], pred: torch.Tensor, target: torch.Tensor, image_invalid: list[str]) -> None:
    name = args["name"].value if "name" in args else "ncc"
    if name == "gradient_ncc" and "patch_size" in args and _is_zero(args["patch_size"].value):
        args = {**args, "patch_size": Arg(0, True)}  # 0: the global NCC of the gradients
    kwargs = {key: arg.value for key, arg in args.items()}
    invalid = invalid_words(args, WORDS)
    # patch_size is read by patch_ncc and gradient_ncc only (patch_sizes is checked whatever the name).
    if "patch_size" in args and not args["patch_size"].valid and name not in ("patch_ncc", "gradient_ncc"):
        invalid = [word for word in invalid if word != "patch_size"]
    if name == "patch_ncc" and kwargs.get("patch_size") is None:
        invalid.append("patch_size")
    loss = check_call(lambda: ImageLoss(**kwargs), names=(*MODULE, "patch size"), invalid=invalid, label="ImageLoss")
    if loss is None:
        return
    check_call(
        lambda: loss(pred, target),
        names=("pred", "target"),
        invalid=image_invalid,
        situations=SITUATIONS,
        check=lambda value: check_output(value, (pred.shape[0],), f"ImageLoss({name!r})"),
        label="ImageLoss.forward",
    )


@given(args=arguments(MODULE), images=image_pairs())
# eps=0 and a constant image gave 0 / 0 = NaN.
@example({"eps": Arg(0.0, True)}, (torch.full((1, 1, 1), 1.541), torch.full((1, 1, 1), 1.541), []))
# patch_sizes of a loss that ignores it failed in tuple() (TypeError).
@example({"name": Arg("ncc", True), "patch_sizes": Arg(3, False)}, (RAMP, RAMP, []))
def test_image_loss_fuzz(args: dict[str, Arg], images: tuple[torch.Tensor, torch.Tensor, list[str]]) -> None:
    _check_module(args, *images)


@pytest.mark.slow
@settings(LONG)
@given(args=arguments(MODULE), images=image_pairs())
def test_image_loss_fuzz_long(args: dict[str, Arg], images: tuple[torch.Tensor, torch.Tensor, list[str]]) -> None:
    _check_module(args, *images)


# ------------------------------------------------------------------------------------------ loss classes

CLASS_OPTIONS = {**OPTIONS, "patch_size": MODULE["patch_size"]}


@st.composite
def class_arguments(draw: st.DrawFn) -> tuple[str, dict[str, Arg]]:
    """A loss name and the arguments of its class (one of them invalid in half of the examples, or one it does
    not take)."""
    name = draw(st.sampled_from(LOSSES))
    takes = LOSS_ARGUMENTS[name]
    args = draw(arguments({key: CLASS_OPTIONS[key] for key in takes}, ("patch_size",) if name == "patch_ncc" else ()))
    if draw(st.sampled_from((False,) * 7 + (True,))):
        extra = draw(st.sampled_from([key for key in CLASS_OPTIONS if key not in takes] + ["patch"]))
        args[extra] = Arg(2, False)  # an argument this loss does not take
    if name == "gradient_ncc" and "patch_size" in args and _is_zero(args["patch_size"].value):
        args["patch_size"] = Arg(0, True)  # 0: the global NCC of the gradients
    if name == "multiscale_ncc" and args.get("weights", Arg(None, True)).valid and "weights" in args:
        count = len(args["patch_sizes"].value) if "patch_sizes" in args and args["patch_sizes"].valid else 2
        args["weights"] = Arg(tuple(float(i + 1) for i in range(count)), True)
    return name, args


def _check_class(
    name: str, args: dict[str, Arg], pred: torch.Tensor, target: torch.Tensor, image_invalid: list[str]
) -> None:
    kwargs = {key: arg.value for key, arg in args.items()}
    invalid = invalid_words(args, WORDS)
    if name == "patch_ncc" and args["patch_size"].value is None:
        invalid.append("patch_size")
    loss = check_call(
        lambda: loss_from_name(name, **kwargs),
        names=(*CLASS_OPTIONS, "patch size"),
        invalid=invalid,
        label="loss_from_name",
    )
    if loss is None:
        return
    assert isinstance(loss, SimilarityLoss)
    check_call(
        lambda: loss(pred, target),
        names=("pred", "target"),
        invalid=image_invalid,
        situations=SITUATIONS,
        check=lambda value: check_output(value, (pred.shape[0],), repr(loss)),
        label=f"{type(loss).__name__}.forward",
    )


@given(call=class_arguments(), images=image_pairs())
def test_loss_classes_fuzz(
    call: tuple[str, dict[str, Arg]], images: tuple[torch.Tensor, torch.Tensor, list[str]]
) -> None:
    _check_class(*call, *images)


@pytest.mark.slow
@settings(LONG)
@given(call=class_arguments(), images=image_pairs())
def test_loss_classes_fuzz_long(
    call: tuple[str, dict[str, Arg]], images: tuple[torch.Tensor, torch.Tensor, list[str]]
) -> None:
    _check_class(*call, *images)


# ------------------------------------------------------------------------------------------ gather_pixels


@given(
    image=tensors(st.sampled_from([(1, 1, 3, 4), (2, 2, 2, 2), (1, 1, 1, 1), (3, 4), (1, 1, 0, 3)])),
    indices=st.sampled_from(
        [
            torch.tensor([0, 1]),
            torch.tensor([[5]]),
            torch.tensor([-1]),
            torch.tensor([0.0]),
            torch.tensor([], dtype=torch.int64),
            torch.tensor([[0], [1], [2]]),
            [0, 1],
        ]
    ),
)
def test_gather_pixels_fuzz(image: torch.Tensor, indices: Any) -> None:
    pixels = image.shape[-1] * image.shape[-2] if image.dim() == 4 else 0
    valid = (
        image.dim() == 4
        and isinstance(indices, torch.Tensor)
        and not indices.is_floating_point()
        and indices.numel() > 0
        and (indices.dim() == 1 or indices.shape[0] in (1, image.shape[0]))
        and int(indices.min()) >= 0
        and int(indices.max()) < pixels
    )
    expected = (image.shape[0], image.shape[1], indices.shape[-1]) if valid else None
    check_call(
        lambda: gather_pixels(image, indices),
        names=("image", "indices"),
        invalid=[] if valid else ["image", "indices"],
        check=lambda value: check_output(value, expected, "pixels") if bool(torch.isfinite(image).all()) else None,
        label="gather_pixels",
    )
