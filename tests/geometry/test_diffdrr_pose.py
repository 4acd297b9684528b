"""drreg.pose against DiffDRR 0.6.1's diffdrr.pose: names, signatures and outputs (fixture: tests/fixtures/diffdrr).

``tests/fixtures/diffdrr/pose.pt`` holds DiffDRR's own outputs (written by ``make_pose.py`` there), so these tests do
not need DiffDRR installed; they skip when the file is absent.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch

import drreg.pose
from drreg.pose import RigidTransform

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "diffdrr" / "pose.pt"
DATA: dict[str, Any] = torch.load(FIXTURE, weights_only=True) if FIXTURE.exists() else {}
CALLS: list[dict[str, Any]] = DATA.get("calls", [])
NAMES: list[str] = DATA.get("names", [])
SIGNATURES: dict[str, list[list[str]]] = DATA.get("signatures", {})
needs_fixture = pytest.mark.skipif(not DATA, reason=f"DiffDRR fixture {FIXTURE} not found (make_pose.py writes it)")

# The eigenvector of rotation_10d_to_quaternion is defined up to sign (torch.linalg.eigh picks one).
SIGN_FREE = {"rotation_10d_to_quaternion"}


def _unpack(value: Any) -> Any:
    """Fixture values back to tensors in DiffDRR's dtype (stored as float64 views of one storage)."""
    if isinstance(value, dict) and value.get("float32"):
        return value["values"].float()
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, list):
        return [_unpack(item) for item in value]
    if isinstance(value, dict):
        return {key: _unpack(item) for key, item in value.items()}
    return value


def _run(function: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    owner, _, method = function.partition(".")
    if method:
        transform = RigidTransform(args[0])
        rest = [RigidTransform(a) if function == "RigidTransform.compose" else a for a in args[1:]]
        output = getattr(transform, method)(*rest, **kwargs)
    else:
        output = getattr(drreg.pose, function)(*args, **kwargs)
    if isinstance(output, RigidTransform):
        return output.matrix
    return list(output) if isinstance(output, tuple) else output


def _assert_matches(actual: torch.Tensor, expected: torch.Tensor, function: str) -> None:
    assert actual.shape == expected.shape
    if function in SIGN_FREE:
        actual = actual * torch.sign((actual * expected).sum(-1, keepdim=True))
    scale = float(expected.abs().max().clamp_min(1.0))
    # float64: DiffDRR's eps clamp of |ω|² (se3) moves translations by ~1e-8 relative near the identity.
    atol = (2e-5 if expected.dtype == torch.float32 else 1e-7) * scale
    torch.testing.assert_close(actual.to(expected.dtype), expected, atol=atol, rtol=0)


def _call_id(index: int) -> str:
    call = CALLS[index]
    details = [str(a) for a in call["args"] if isinstance(a, str)] + [f"{k}={v}" for k, v in call["kwargs"].items()]
    return f"{index}:{call['function']}" + (f"[{','.join(details)}]" if details else "")


@needs_fixture
@pytest.mark.parametrize("index", range(len(CALLS)), ids=[_call_id(i) for i in range(len(CALLS))])
def test_output_matches_diffdrr(index: int) -> None:
    call = CALLS[index]
    args, kwargs, expected = _unpack(call["args"]), _unpack(call["kwargs"]), _unpack(call["output"])
    actual = _run(call["function"], args, kwargs)
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected)
        for got, wanted in zip(actual, expected):
            _assert_matches(got, wanted, call["function"])
    else:
        _assert_matches(actual, expected, call["function"])


@needs_fixture
@pytest.mark.parametrize("name", NAMES)
def test_every_diffdrr_pose_name_exists(name: str) -> None:
    assert hasattr(drreg.pose, name), f"drreg.pose lacks diffdrr.pose.{name}"


def test_all_names_importable() -> None:
    for name in drreg.pose.__all__:
        assert getattr(drreg.pose, name) is not None


def _drreg_callable(name: str) -> Any:
    owner, _, method = name.partition(".")
    return getattr(getattr(drreg.pose, owner), method) if method else getattr(drreg.pose, owner)


@needs_fixture
@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signature_accepts_diffdrrs_arguments(name: str) -> None:
    # Every DiffDRR parameter exists with its kind and default (drreg may add keyword parameters with defaults);
    # DiffDRR's convert(*args, ...) is convert(rotation, translation=None, ...) in drreg: the same positional calls.
    parameters = inspect.signature(_drreg_callable(name)).parameters
    for parameter_name, kind, default in SIGNATURES[name]:
        if kind == "VAR_POSITIONAL":
            positional = [p for p in parameters.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
            assert len(positional) >= 2, f"{name}: DiffDRR's *{parameter_name} needs positional parameters"
            continue
        assert parameter_name in parameters, f"{name} lacks DiffDRR's parameter {parameter_name!r}"
        ours = parameters[parameter_name]
        assert ours.kind.name == kind, f"{name}({parameter_name}) is {ours.kind.name}, DiffDRR's is {kind}"
        ours_default = "" if ours.default is inspect.Parameter.empty else repr(ours.default)
        assert ours_default == default, f"{name}({parameter_name}) default {ours_default}, DiffDRR's {default}"
    extra = [p for p in parameters.values() if p.name not in {n for n, _, _ in SIGNATURES[name]} and p.name != "self"]
    for parameter in extra:
        if parameter.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD or name != "convert":
            assert parameter.default is not inspect.Parameter.empty, f"{name}: extra parameter {parameter.name}"


def test_getitem_returns_tensor_as_in_diffdrr() -> None:
    pose = RigidTransform(torch.eye(4).repeat(3, 1, 1))
    assert type(pose[0]) is torch.Tensor and pose[0].shape == (4, 4)
    assert pose[1:].shape == (2, 4, 4)


def test_rigid_transform_is_a_module_with_matrix_buffer() -> None:
    pose = RigidTransform(torch.eye(4))
    assert isinstance(pose, torch.nn.Module)
    assert list(pose.state_dict()) == ["matrix"]
    assert pose.double().matrix.dtype == torch.float64


def test_forward_inverse_undoes_forward() -> None:
    pose = drreg.pose.random_rigid_transform(2, generator=torch.Generator().manual_seed(1)).double()
    points = torch.randn(2, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(pose(pose(points), inverse=True), points)
    torch.testing.assert_close(pose(points, inverse=True), pose.inverse()(points))


def test_random_rigid_transform_is_rigid_float32() -> None:
    pose = drreg.pose.random_rigid_transform(4, generator=torch.Generator().manual_seed(0))
    assert pose.dtype == torch.float32 and len(pose) == 4
    RigidTransform(pose.matrix)  # passes the rigidity check


def test_se3_log_map_of_get_se3_log_matches() -> None:
    pose = drreg.pose.random_rigid_transform(3, generator=torch.Generator().manual_seed(3)).double()
    torch.testing.assert_close(pose.get_se3_log(), drreg.pose.se3_log_map(pose.matrix.mT), atol=1e-8, rtol=1e-8)


def test_so3_exponential_map_warns() -> None:
    with pytest.warns(PendingDeprecationWarning, match="so3_exp_map"):
        drreg.pose.so3_exponential_map(torch.zeros(1, 3))
