"""Registration results: the JSON-ready summary of every target and start, its atomic writing, and the writer callback.

:func:`registration_results` assembles what :meth:`RegistrationModule.results` returns (and ``poses.json`` holds);
:class:`ResultsWriter` keeps that file on disk during a run, at its end, and on a crash or Ctrl-C.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from lightning import Callback, LightningModule, Trainer
from typing_extensions import override

from drreg._checks import check_integer
from drreg.geometry import RigidTransform, transform_to_pose_vectors
from drreg.metrics import rotation_error_deg, target_registration_error, translation_error_mm

__all__ = [
    "SUCCESS_MTRE_MM",
    "ERROR_NAMES",
    "pose_errors",
    "registration_results",
    "write_json_atomically",
    "ResultsWriter",
    "as_record",
]

SUCCESS_MTRE_MM = 1.0
"""A registration succeeds when the 3D mTRE of its best start is below this (mm)."""

ERROR_NAMES: tuple[str, ...] = ("rotation_error_deg", "translation_error_mm", "mtre_mm")
"""The pose errors reported against a known truth (degrees, mm, mm)."""


def pose_errors(estimate: RigidTransform, truth: RigidTransform, points: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B,) errors of ``estimate`` against ``truth`` by name (:data:`ERROR_NAMES`): geodesic rotation error
    (degrees), translation error (mm, :func:`drreg.metrics.translation_error_mm`) and the 3D mTRE over ``points``
    (N, 3) world mm (:func:`drreg.metrics.target_registration_error`)."""
    return {
        "rotation_error_deg": rotation_error_deg(estimate, truth),
        "translation_error_mm": translation_error_mm(estimate, truth),
        "mtre_mm": target_registration_error(estimate, truth, points),
    }


def _tolist(tensor: torch.Tensor) -> list:
    return tensor.detach().cpu().double().tolist()


def registration_results(
    header: dict[str, Any],
    rotation: torch.Tensor,
    translation: torch.Tensor,
    poses: RigidTransform,
    initial: RigidTransform,
    pose_convention: str,
    best_starts: torch.Tensor,
    smoothed_loss: torch.Tensor | None = None,
    errors: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """JSON-ready results of T targets × K starts.

    Args:
        header: what the run says about itself (``status``, ``step``, ``stage``, ``scale``, ``elapsed_s``, the
            parameterization, ``detector``), first in the result.
        rotation: (T·K, k) rotation parameters, target-major (index ``t * K + k``).
        translation: (T·K, 3) translation parameters (mm).
        poses: T·K current poses (camera to world).
        initial: T·K starting poses.
        pose_convention: Euler convention of the pose vectors written.
        best_starts: (T,) index of each target's best start.
        smoothed_loss: (T, K) smoothed losses, or ``None`` before the first step.
        errors: (T·K,) errors of every start by name (:data:`ERROR_NAMES`) when the true poses are known.

    Returns:
        ``header`` followed by ``metrics`` (when ``errors`` are given: the means over targets of the best
        starts' errors and ``success_rate_1mm``, the fraction with mTRE < :data:`SUCCESS_MTRE_MM`) and
        ``targets``: one entry per target with ``best_start``, ``loss`` (smoothed), ``rotation`` /
        ``translation`` (parameters), ``matrix`` (4x4, camera to world, mm), ``pose_vector`` (Euler degrees in
        ``pose_convention`` + mm), ``errors`` (when known) and ``starts`` (the same for every start, plus
        ``initial_pose_vector``).
    """
    n_targets = len(best_starts)
    n_starts = len(poses) // n_targets
    with torch.no_grad():
        vectors = transform_to_pose_vectors(poses, pose_convention)
        initial_vectors = transform_to_pose_vectors(initial, pose_convention)
    starts = []
    for index in range(n_targets * n_starts):
        target, start = divmod(index, n_starts)
        entry: dict[str, Any] = {
            "start": start,
            "loss": None if smoothed_loss is None else float(smoothed_loss[target, start]),
            "rotation": _tolist(rotation[index]),
            "translation": _tolist(translation[index]),
            "matrix": _tolist(poses.matrix[index]),
            "pose_vector": _tolist(vectors[index]),
            "initial_pose_vector": _tolist(initial_vectors[index]),
        }
        if errors is not None:
            entry["errors"] = {name: float(value[index]) for name, value in errors.items()}
        starts.append(entry)
    targets: list[dict[str, Any]] = []
    for target in range(n_targets):
        own = starts[target * n_starts : (target + 1) * n_starts]
        chosen = dict(own[int(best_starts[target])])
        chosen.pop("start")
        targets.append({"target": target, "best_start": int(best_starts[target]), **chosen, "starts": own})
    metrics: dict[str, float] = {}
    if errors is not None:
        best_errors = [entry["errors"] for entry in targets]
        for name in ERROR_NAMES:
            metrics[f"mean_{name}"] = sum(entry[name] for entry in best_errors) / len(best_errors)
        successes = sum(entry["mtre_mm"] < SUCCESS_MTRE_MM for entry in best_errors)
        metrics[f"success_rate_{SUCCESS_MTRE_MM:g}mm"] = successes / len(best_errors)
    return {**header, "metrics": metrics, "targets": targets}


def write_json_atomically(data: dict, path: str | Path) -> Path:
    """Write ``data`` as indented JSON to ``path`` (folders created) through a temporary file; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)  # never leave a half-written file, even when interrupted
    return path


class _WritesResults(Protocol):
    """What the writer needs of a registration module (:class:`~drreg.registration.RegistrationModule`)."""

    finished: bool
    batch: dict[str, torch.Tensor] | None

    def save_results(self, path: str | Path | None = None) -> Path: ...


class ResultsWriter(Callback):
    """Keeps a registration's results JSON on disk: every ``every_n_steps`` steps, at the end, and on a crash or
    Ctrl-C (``on_exception``, which a LightningModule does not get), so the best poses so far survive.

    :class:`~drreg.registration.RegistrationModule` adds its writer to the trainer (``configure_callbacks``).

    Args:
        output: results JSON path; ``None``: ``<trainer.log_dir>/poses.json`` (``./poses.json`` without a logger).
        every_n_steps: write every this many steps (and at the end, and on a crash or Ctrl-C); ``0`` only at the
            end.

    Raises:
        ValueError: a negative ``every_n_steps``.
    """

    def __init__(self, output: str | None = None, every_n_steps: int = 10) -> None:
        self.output = output
        self.every_n_steps = check_integer(every_n_steps, "every_n_steps", minimum=0)

    def path(self, trainer: Trainer | None) -> Path:
        """Where the results go: ``output``, else ``<trainer.log_dir>/poses.json``, else ``./poses.json``."""
        if self.output:
            return Path(self.output)
        log_dir = None if trainer is None else trainer.log_dir
        return Path(log_dir or ".") / "poses.json"

    @override
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        every = self.every_n_steps
        if trainer.is_global_zero and every and trainer.global_step % every == 0:
            _module(pl_module).save_results()

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        module = _module(pl_module)
        module.finished = True  # callbacks run before the module's own on_train_end
        if trainer.is_global_zero and module.batch is not None:
            module.save_results()

    @override
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        module = _module(pl_module)
        if trainer.is_global_zero and module.batch is not None:
            module.save_results()

    def __repr__(self) -> str:
        return f"ResultsWriter(output={self.output!r}, every_n_steps={self.every_n_steps})"


def _module(pl_module: LightningModule) -> _WritesResults:
    # Only RegistrationModule.configure_callbacks attaches a ResultsWriter.
    return cast(_WritesResults, pl_module)


def as_record(value: Any) -> Any:
    """A constructor argument as plain, YAML-safe data for ``hparams.yaml``.

    Objects become ``{"class_path": ..., "init_args": ...}`` (their attributes named like their constructor's
    arguments), objects with a ``record()`` method (:class:`~drreg.registration.Imaging`) what it returns, tensors and
    tuples lists.

    Example:
        >>> as_record(ResultsWriter(every_n_steps=5))["init_args"]
        {'output': None, 'every_n_steps': 5}
    """
    if callable(getattr(value, "record", None)):
        return value.record()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [as_record(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    cls = type(value)
    names = [name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "args", "kwargs")]
    init_args = {name: as_record(getattr(value, name)) for name in names if hasattr(value, name)}
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}
