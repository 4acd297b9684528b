"""``drreg register``: :class:`RegistrationCLI` and the summary table it prints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser
from typing_extensions import override

from drreg.cli.base import COMMANDS, DrregCLI, tensorboard_logger
from drreg.registration import RegistrationData, RegistrationModule


class RegistrationCLI(DrregCLI):
    """``drreg register``: a ``LightningCLI`` over the registration module and data that fits once, then writes and
    prints the results.

    Forced callbacks (always on, configured under ``overlay.*`` and ``throughput.*``):
    :class:`~drreg.callbacks.OverlayLogger` and :class:`~drreg.callbacks.RenderThroughput`. Linked arguments:
    ``trainer.max_steps`` is the sum of ``model.schedule.init_args.stage_steps``, ``data.pose_convention`` follows
    ``model.pose_convention``, and the model receives the data's ``imaging`` (the CT, detector and renderer,
    completed from the files' DICOM tags).

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
            "logger": tensorboard_logger(output),
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
            save_config_kwargs={"overwrite": True},  # _protect_results has refused a folder with results already
            parser_kwargs={"prog": "drreg register", "description": COMMANDS["register"]},
            args=None if args is None else list(args),
            run=False,
        )

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        # The registration's objects default to drreg's classes, so that --model.schedule.init_args.* work alone.
        for key, name in (("schedule", "CoarseToFine"), ("starts", "MultiStart"), ("results_writer", "ResultsWriter")):
            parser.set_defaults({f"model.{key}": {"class_path": f"drreg.registration.{name}"}})
        parser.link_arguments("model.schedule.init_args.stage_steps", "trainer.max_steps", compute_fn=_total_steps)
        parser.link_arguments("model.pose_convention", "data.pose_convention")
        parser.link_arguments("data.imaging", "model.imaging", apply_on="instantiate")

    def run(self) -> dict[str, Any]:
        """Fit, write ``poses.json`` (and the overlay, config and TensorBoard events), print the summary.

        Returns:
            :meth:`RegistrationModule.results`.
        """
        try:
            self.trainer.fit(self.model, datamodule=self.datamodule)
        except SystemExit:  # Lightning's shutdown after Ctrl-C or SIGTERM wrote poses.json: show what it holds
            if self.trainer.interrupted and self.model.results_writer is not None and self.model.batch is not None:
                _print_summary(self.model.results(), self.model.results_path(), self.trainer)
            raise
        path = self.model.save_results()
        results = self.model.results()
        _print_summary(results, path, self.trainer)
        return results

    @override
    def _output_paths(self, trainer: Trainer) -> list[Path]:
        output = None if self.model.results_writer is None else self.model.results_writer.output
        return ([Path(output)] if output else []) + self._overlay_png()


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
