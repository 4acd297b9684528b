"""``drreg fit | validate | test | predict``: :class:`PoseRegressionCLI`, pose-regression training."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser
from typing_extensions import override

from drreg.callbacks import PoseWriter
from drreg.cli.base import COMMANDS, PROGRESS_BAR, REGRESSION_COMMANDS, DrregCLI, checkpoint_folders, tensorboard_logger
from drreg.regression import PoseRegressionDataModule, PoseRegressionModule


class PoseRegressionCLI(DrregCLI):
    """``drreg fit | validate | test | predict``: pose-regression training on DRRs rendered on the fly.

    A ``LightningCLI`` over :class:`~drreg.regression.PoseRegressionModule` and
    :class:`~drreg.regression.PoseRegressionDataModule` with Lightning's subcommands. Forced callbacks:
    :class:`~drreg.callbacks.OverlayLogger`, :class:`~drreg.callbacks.RenderThroughput` and :class:`PoseWriter`
    (``predict`` writes ``predictions.json``, configured under ``predictions.*``). ``model.reference_pose`` is linked
    to the data's pose sampler (the network predicts offsets from the sampler's reference), and the model receives the
    data's ``imaging`` (the CT, detector and renderer it builds its own DRR from). By default the trainer
    keeps ``checkpoints/last.ckpt`` (every 100 steps and at the end of each epoch) and the best validation checkpoints
    (``best-step=<n>.ckpt``); a training stopped by an exception (Ctrl-C, SIGTERM, a crash) writes
    ``checkpoints/interrupted.ckpt`` and ``last.ckpt`` (:class:`~drreg.callbacks.InterruptibleModelCheckpoint`).
    Resume with ``--ckpt_path <log dir>/checkpoints/last.ckpt`` (add ``--trainer.logger.init_args.version <n>`` to
    continue in the same folder); fine-tune from a checkpoint with ``--model.init_checkpoint``
    (``recipes/finetune.yaml``).

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
            trainer_defaults={"logger": tensorboard_logger(output), "log_every_n_steps": 10},
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},  # _protect_results has refused a folder with results already
            # Lightning's subcommands are drreg's commands: "drreg fit" in usage, each described as `drreg --help` does.
            parser_kwargs={
                "prog": "drreg",
                "description": "pose regression: " + ", ".join(REGRESSION_COMMANDS),
                **{name: {"description": COMMANDS[name]} for name in REGRESSION_COMMANDS},
            },
            args=None if args is None else list(args),
            run=run,
        )

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_lightning_class_args(PoseWriter, "predictions")
        checkpoint = {
            "class_path": "drreg.callbacks.InterruptibleModelCheckpoint",
            "init_args": {
                "monitor": "val/loss",
                "save_last": True,
                "every_n_train_steps": 100,
                "save_on_exception": True,
                "filename": "best-{step}",
            },
        }
        parser.set_defaults({"trainer.callbacks": [PROGRESS_BAR, checkpoint]})
        parser.link_arguments("data.reference_pose", "model.reference_pose", apply_on="instantiate")
        parser.link_arguments("data.imaging", "model.imaging", apply_on="instantiate")

    @override
    def _output_paths(self, trainer: Trainer) -> list[Path]:
        if self.subcommand == "predict":
            output = self._get(self.config_init, "predictions").output
            return [Path(output)] if output else []
        if self.subcommand not in ("fit", None):  # None: instantiated only (run=False), to be fitted by the caller
            return []
        folders = checkpoint_folders(trainer)
        return [path for folder in folders for path in sorted(folder.glob("*.ckpt"))] + self._overlay_png()
