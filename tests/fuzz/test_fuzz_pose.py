"""Fuzz ``convert``, ``RigidTransform`` and the rotation conversions (issue 10).

Every parameterization with random values (degenerate ones included: zero quaternions, collinear 6D vectors,
rank-deficient 9D matrices, repeated 10D eigenvalues, huge and tiny magnitudes), random shapes and dtypes, NaN/inf
entries and empty batches: ``convert`` returns a rigid pose of the documented shape, finite, or refuses naming the
argument.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drreg import RigidTransform, convert
from drreg.geometry.pose import POSE_PARAMETERIZATIONS
from drreg.geometry.rotations import EULER_CONVENTIONS

from ._poses import BAD_PARAMETERIZATIONS, DEGENERATE_WORDS, POSE_WORDS, PoseCase, parameter_cases, pose_objects
from ._strategies import check_call, check_output

LONG = settings.get_profile("long")


def _check_convert(case: PoseCase) -> None:
    def check(pose: RigidTransform) -> None:
        assert isinstance(pose, RigidTransform)
        matrix = check_output(pose.matrix, (case.batch, 4, 4), "pose matrix")
        rotation = matrix[:, :3, :3].double()
        tolerance = 3 * max(torch.finfo(matrix.dtype).eps ** 0.5, 1e-4)  # 3 x what RigidTransform accepts
        gram = rotation.mT @ rotation - torch.eye(3, dtype=torch.float64)
        assert gram.abs().amax().item() <= tolerance if case.batch else True, "the pose's rotation is not orthonormal"
        # The inverse conversion of a valid pose is finite too.
        parameterization = case.parameterization
        if case.batch and parameterization in POSE_PARAMETERIZATIONS and parameterization != "matrix":
            convention = case.convention if case.convention in EULER_CONVENTIONS else "ZXY"
            for part in pose.convert(parameterization, convention if parameterization == "euler_angles" else None):
                check_output(part, None, f"pose.convert({parameterization!r})")

    situations = DEGENERATE_WORDS if case.maybe_degenerate else ()
    check_call(
        lambda: convert(*case.args, **case.keywords()),
        label="convert",
        names=POSE_WORDS,
        invalid=case.invalid,
        situations=situations,
        check=check,
    )


PARAMETERIZATIONS = [*POSE_PARAMETERIZATIONS, "unknown"]


def _parameterization(name: str) -> st.SearchStrategy[object]:
    return st.sampled_from(BAD_PARAMETERIZATIONS) if name == "unknown" else st.just(name)


# Every parameterization in turn, then a case of it: each gets its share of the examples.
CASES = st.sampled_from(PARAMETERIZATIONS).flatmap(
    lambda name: parameter_cases(parameterization=_parameterization(name))
)
HALF = (torch.float16, torch.bfloat16)


@settings(max_examples=4 * settings.default.max_examples)  # convert is cheap: 4 x the profile's examples
@given(case=CASES)
# Huge parameters overflowed their squares (a NaN pose, a silent identity, a non-orthonormal "rotation").
@example(PoseCase((torch.full((1, 4), 1e20),), "quaternion", batch=1, maybe_degenerate=True))
@example(PoseCase((torch.full((1, 10), 1e20),), "quaternion_adjugate", batch=1, maybe_degenerate=True))
@example(
    PoseCase(
        (torch.tensor([[3e30, -6e29, -4e30, 1e30, -2e30, -3e30]]).to(HALF[1]),),
        "rotation_6d",
        batch=1,
        maybe_degenerate=True,
    )
)
@example(PoseCase((torch.full((1, 3), 1e20),), "axis_angle", batch=1, maybe_degenerate=True))
@example(PoseCase((torch.full((1, 3), 1e200, dtype=torch.float64),), "se3_log_map", batch=1, maybe_degenerate=True))
# Half-precision 9D and 10D parameters met torch's missing half SVD / eigh (NotImplementedError).
@example(PoseCase((torch.eye(3).reshape(1, 9).to(HALF[0]),), "rotation_9d", batch=1, maybe_degenerate=True))
@example(
    PoseCase(
        (torch.tensor([[0.0, 0, 0, 0, 1, 0, 0, 1, 0, 1]]).to(HALF[0]),), "rotation_10d", batch=1, maybe_degenerate=True
    )
)
# A flag given as a string was read by its truthiness.
@example(PoseCase((torch.zeros(1, 3),), "euler_angles", "ZXY", degrees="False", batch=1, invalid=["degrees"]))
def test_convert_fuzz(case: PoseCase) -> None:
    _check_convert(case)


@pytest.mark.slow
@settings(LONG)
@given(case=CASES)
def test_convert_fuzz_long(case: PoseCase) -> None:
    _check_convert(case)


def _check_rigid_transform(case: PoseCase, points: torch.Tensor) -> None:
    value = case.args[0]
    if isinstance(value, RigidTransform):
        value = value.matrix
    # NaN/inf are left to the users of a RigidTransform (DRR, metrics): the constructor checks rigidity only.
    invalid = ["matrix"] if not isinstance(value, torch.Tensor) else [w for w in case.invalid if w != "pose"]
    pose = check_call(lambda: RigidTransform(value), label="RigidTransform", names=("matrix",), invalid=invalid)
    if pose is None or "pose" in case.invalid:
        return
    batch = len(pose)
    shape_ok = points.dim() in (2, 3) and points.shape[-1] == 3
    batch_ok = points.dim() == 2 or points.shape[0] in (1, batch) or batch == 1
    expected = None
    if shape_ok and batch_ok:
        out_batch = batch if points.dim() == 2 or batch != 1 else points.shape[0]
        expected = (0 if 0 in (batch, points.shape[0] if points.dim() == 3 else 1) else out_batch, points.shape[-2], 3)
    check_call(
        lambda: pose(points),
        label="pose(points)",
        names=("points",),
        invalid=[] if expected is not None and points.is_floating_point() else ["points"],
        check=lambda moved: check_output(moved, expected, "transformed points"),
    )
    check_output(pose.inverse().compose(pose).matrix, (batch, 4, 4), "pose.inverse().compose(pose)")


POINT_SHAPES = [(5, 3), (1, 5, 3), (2, 5, 3), (3, 5, 3), (5, 2), (3,), (0, 3), (2, 0, 3)]


@given(
    case=pose_objects(),
    points=st.tuples(st.sampled_from(POINT_SHAPES), st.sampled_from([torch.float32, torch.float64, torch.int64])).map(
        lambda s: torch.randn(s[0], dtype=torch.float64).to(s[1])
    ),
)
# float32 points with a float64 pose (and integer points) failed in a matmul (RuntimeError).
@example(PoseCase((torch.eye(4, dtype=torch.float64)[None],), batch=1), torch.randn(5, 3))
@example(PoseCase((torch.eye(4, dtype=torch.float64)[None],), batch=1), torch.ones(5, 3, dtype=torch.int64))
def test_rigid_transform_fuzz(case: PoseCase, points: torch.Tensor) -> None:
    _check_rigid_transform(case, points)
