"""Fuzz the pose-error metrics, functions and torchmetrics ``Metric``s (issue 10).

Random poses (rigid or not, single or batched, broadcast, float32/float64, far away), degenerate ones (NaN,
integer, mis-shaped, empty batches, mismatched batches), random target points (empty, mis-shaped, NaN, at the
X-ray source) and random ``sdd``/``eps``/thresholds: each function returns a finite (B,) tensor and each metric a
finite value, or they refuse naming the argument.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drreg import Detector, RigidTransform
from drreg.geometry.detector import MAX_DISTANCE_MM as MAX_MM
from drreg.metrics import (
    DoubleGeodesicError,
    MeanProjectionError2D,
    MeanTargetRegistrationError3D,
    RotationError,
    SuccessRate,
    TranslationError,
    ct_grid_points,
    double_geodesic_error,
    projection_error_mm,
    rotation_error_deg,
    target_registration_error,
    translation_error_mm,
)

from . import _tiny
from ._poses import rigid_matrices
from ._strategies import Arg, arguments, check_call, check_output, integers, invalid_words, numbers

LONG = settings.get_profile("long")
FLOATS = (torch.float64, torch.float32)


@st.composite
def poses(draw: st.DrawFn, batch: int, bad: bool) -> Arg:
    """Camera-to-world poses as metrics take them: valid (any float (B, 4, 4) or (4, 4), rigid or not, or a
    RigidTransform), or not (NaN, integer, mis-shaped, empty, a list)."""
    dtype = draw(st.sampled_from(FLOATS))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from((1.0, 1.0, 1e3, 1e6)))
    matrix = rigid_matrices(batch, torch.float64, generator, _tiny.view_translation("AP") * scale)
    if not bad:
        kind = draw(st.sampled_from(("tensor", "tensor", "transform", "single", "skewed")))
        if kind == "single" and batch == 1:
            return Arg(matrix[0].to(dtype), True)
        if kind == "skewed":  # the metrics take any (B, 4, 4), rigid or not
            matrix[:, :3, :3] *= 1.3
        value = matrix.to(dtype)
        return Arg(RigidTransform(value) if kind == "transform" else value, True)
    kind = draw(st.sampled_from(("nan", "int", "shape", "empty", "list")))
    if kind == "nan":
        matrix[-1, 1, 3] = float("nan")
    elif kind == "int":
        matrix = matrix.round().to(torch.int64)
    elif kind == "shape":
        matrix = matrix[:, :3]
    elif kind == "empty":
        matrix = matrix[:0]
    elif kind == "list":
        return Arg(matrix.tolist(), False)
    return Arg(matrix if not matrix.is_floating_point() else matrix.to(dtype), False)


@st.composite
def target_points(draw: st.DrawFn, batch: int, bad: bool, est: Arg) -> Arg:
    """World target points (mm): valid (N, 3), (B, N, 3) or (1, N, 3), some at the X-ray source; or not."""
    n = draw(st.integers(1, 5))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    points = torch.randn(n, 3, generator=generator, dtype=torch.float64) * 20.0
    if not bad:
        layout = draw(st.sampled_from(("shared", "batched", "one", "source", "plane")))
        dtype = draw(st.sampled_from(FLOATS))
        if layout == "batched":
            points = points.expand(batch, n, 3).clone()
        elif layout == "one":
            points = points[None]
        elif layout in ("source", "plane") and isinstance(est.value, (torch.Tensor, RigidTransform)) and est.valid:
            matrix = (est.value.matrix if isinstance(est.value, RigidTransform) else est.value).reshape(-1, 4, 4)[0]
            points = matrix[None, :3, 3].double()  # the X-ray source itself: depth 0
            if layout == "plane":  # beside the source, in its plane (camera x = world x for orientation AP)
                points = points + 10.0 * matrix[None, :3, 0].double()
        return Arg(points.to(dtype), True)
    kind = draw(st.sampled_from(("empty", "shape", "nan", "int", "batch", "list")))
    value: Any = {
        "empty": points[:0],
        "shape": points[:, :2],
        "nan": points.clone().fill_(float("nan")),
        "int": points.round().long(),
        "batch": points.expand(batch + 1, n, 3) if batch > 1 else points.expand(3, n, 3)[:2],
        "list": points.tolist(),
    }[kind]
    if kind == "batch" and batch <= 1:
        return Arg(value, True)  # any batch of points broadcasts against one pose
    return Arg(value, False)


METRIC_NUMBERS = {
    "sdd": numbers(positive=True, maximum=MAX_MM, typical=(1.0, 5000.0)),
    "eps": numbers(minimum=0.0, maximum=MAX_MM**2, typical=(0.0, 1.0)),
    "threshold_mm": numbers(positive=True, typical=(0.01, 100.0)),
}
FUNCTIONS = ("rotation", "translation", "double_geodesic", "mtre", "mpe")


@st.composite
def metric_calls(draw: st.DrawFn) -> tuple[str, dict[str, Arg]]:
    """One metric function and its arguments: all valid in half of the examples, else one invalid."""
    name = draw(st.sampled_from(FUNCTIONS))
    parts = ["est", "true"] + {"double_geodesic": ["sdd", "eps"], "mtre": ["points"], "mpe": ["points"]}.get(name, [])
    bad = draw(st.sampled_from([None] * len(parts) + parts))
    batch = draw(st.integers(1, 3))
    broadcast = draw(st.sampled_from((False, False, True)))
    args = {"est": draw(poses(batch, bad == "est"))}
    args["true"] = draw(poses(1 if broadcast else batch, bad == "true"))
    if name == "double_geodesic":
        args.update(draw(arguments({"sdd": METRIC_NUMBERS["sdd"], "eps": METRIC_NUMBERS["eps"]}, ("sdd",))))
        if bad not in ("sdd", "eps"):
            args = {k: v if k in ("est", "true") or v.valid else Arg(1.0, True) for k, v in args.items()}
    if name in ("mtre", "mpe"):
        args["points"] = draw(target_points(batch, bad == "points", args["est"]))
    return name, args


def _call(name: str, values: dict[str, Any]) -> Any:
    est, true = values["est"], values["true"]
    if name == "rotation":
        return rotation_error_deg(est, true)
    if name == "translation":
        return translation_error_mm(est, true)
    if name == "double_geodesic":
        return double_geodesic_error(est, true, **{k: v for k, v in values.items() if k in ("sdd", "eps")})
    if name == "mtre":
        return target_registration_error(est, true, values["points"])
    detector = Detector(
        _tiny.SDD, _tiny.HEIGHT, _tiny.HEIGHT, _tiny.DELX, reorient=_tiny.subject("AP")["reorient"], reverse_x_axis=True
    )
    return projection_error_mm(est, true, values["points"], detector)


def _batch(value: Any) -> int:
    matrix = value.matrix if isinstance(value, RigidTransform) else value
    return 1 if matrix.dim() == 2 else matrix.shape[0]


def _check_metric_function(name: str, args: dict[str, Arg]) -> None:
    values = {key: arg.value for key, arg in args.items()}
    invalid = invalid_words(args)
    expected = None
    if not invalid:
        points = values.get("points")
        # One pose, or one set of points, broadcasts against the other's batch.
        batches = (
            _batch(values["est"]),
            _batch(values["true"]),
            points.shape[0] if points is not None and points.dim() == 3 else 1,
        )
        expected = (max(batches),)
    check_call(
        lambda: _call(name, values),
        names=tuple(args),
        invalid=invalid,
        check=lambda value: check_output(value, expected, name),
        label=name,
    )


SOURCE_AT_600 = torch.eye(4, dtype=torch.float64)
SOURCE_AT_600[1, 3] = 600.0


@given(call=metric_calls())
# An sdd of 1e300 squared the rotation part into inf.
@example(
    ("double_geodesic", {"est": Arg(SOURCE_AT_600, True), "true": Arg(torch.eye(4), True), "sdd": Arg(1e300, False)})
)
# A point in the source's plane projected to inf, and its projection error to inf - inf = NaN.
@example(
    (
        "mpe",
        {
            "est": Arg(SOURCE_AT_600, True),
            "true": Arg(torch.eye(4), True),
            "points": Arg(torch.tensor([[10.0, 600.0, 0.0]]), True),
        },
    )
)
def test_metric_functions_fuzz(call: tuple[str, dict[str, Arg]]) -> None:
    _check_metric_function(*call)


@pytest.mark.slow
@settings(LONG)
@given(call=metric_calls())
def test_metric_functions_fuzz_long(call: tuple[str, dict[str, Arg]]) -> None:
    _check_metric_function(*call)


# ------------------------------------------------------------------------------------------ Metric classes

CLASSES = {
    "RotationError": (RotationError, ()),
    "TranslationError": (TranslationError, ()),
    "DoubleGeodesicError": (DoubleGeodesicError, ("sdd", "eps")),
    "MeanTargetRegistrationError3D": (MeanTargetRegistrationError3D, ()),
    "MeanProjectionError2D": (MeanProjectionError2D, ()),
    "SuccessRate": (SuccessRate, ("threshold_mm",)),
}


@st.composite
def metric_updates(draw: st.DrawFn) -> tuple[str, dict[str, Arg], list[tuple[Arg, Arg, Arg | None]]]:
    """A Metric's constructor arguments and two or three ``update`` calls."""
    name = draw(st.sampled_from(tuple(CLASSES)))
    options = draw(
        arguments(
            {key: METRIC_NUMBERS[key] for key in CLASSES[name][1]}, ("sdd",) if name == "DoubleGeodesicError" else ()
        )
    )
    updates = []
    for _ in range(draw(st.integers(1, 3))):
        batch = draw(st.integers(1, 3))
        bad = draw(st.sampled_from((None, None, None, None, "est", "points")))
        est = draw(poses(batch, bad == "est"))
        true = draw(poses(batch, False))
        points = (
            draw(target_points(batch, bad == "points", est))
            if "Error3D" in name or "2D" in name or "Success" in name
            else None
        )
        updates.append((est, true, points))
    return name, options, updates


def _check_metric_class(name: str, options: dict[str, Arg], updates: list[tuple[Arg, Arg, Arg | None]]) -> None:
    cls, _ = CLASSES[name]
    kwargs = {key: arg.value for key, arg in options.items()}
    if name == "MeanProjectionError2D":
        kwargs["detector"] = Detector(
            _tiny.SDD,
            _tiny.HEIGHT,
            _tiny.HEIGHT,
            _tiny.DELX,
            reorient=_tiny.subject("AP")["reorient"],
            reverse_x_axis=True,
        )
    metric = check_call(lambda: cls(**kwargs), names=tuple(options), invalid=invalid_words(options), label=name)
    if metric is None:
        return
    counted = False
    for est, true, points in updates:
        arguments_ = (est.value, true.value) if points is None else (est.value, true.value, points.value)
        invalid = invalid_words({"est": est, "true": true, **({"points": points} if points is not None else {})})
        done = check_call(
            lambda arguments_=arguments_: metric.update(*arguments_) or True,
            names=("est", "true", "points"),
            invalid=invalid,
            label=f"{name}.update",
        )
        counted = counted or bool(done)
    if counted:
        check_output(metric.compute(), (), f"{name}.compute()")


@given(call=metric_updates())
def test_metric_classes_fuzz(call: tuple[str, dict[str, Arg], list[tuple[Arg, Arg, Arg | None]]]) -> None:
    _check_metric_class(*call)


@pytest.mark.slow
@settings(LONG)
@given(call=metric_updates())
def test_metric_classes_fuzz_long(call: tuple[str, dict[str, Arg], list[tuple[Arg, Arg, Arg | None]]]) -> None:
    _check_metric_class(*call)


# ------------------------------------------------------------------------------------------ ct_grid_points


@given(
    args=arguments(
        {
            "n_per_axis": integers(minimum=1, typical=(1, 6)),
            "threshold": numbers(allow_none=True, typical=(-0.5, 1.5)),
        }
    ),
    labelmap=st.booleans(),
)
# A grid beyond any memory failed in the allocator (RuntimeError) instead of being refused.
@example({"n_per_axis": Arg(10**11, True)}, False)
def test_ct_grid_points_fuzz(args: dict[str, Arg], labelmap: bool) -> None:
    kwargs = {key: arg.value for key, arg in args.items()}
    check_call(
        lambda: ct_grid_points(_tiny.subject("AP", labelmap), **kwargs),
        names=("n_per_axis", "threshold"),
        invalid=invalid_words(args),
        situations=("no voxel has density > threshold", "no grid point lands", "can be allocated there"),
        check=lambda points: check_output(points, None, "grid points"),
        label="ct_grid_points",
    )
