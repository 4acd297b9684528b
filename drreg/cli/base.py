"""What drreg's commands share: the table of commands and :class:`DrregCLI`, the ``LightningCLI`` they derive from
(forced callbacks, a rich progress bar and a TensorBoard logger by default, and refusing to overwrite previous runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

from drreg.callbacks import OverlayLogger, RenderThroughput

#: The commands of ``drreg`` and what each does (the help of ``drreg`` and of each command).
COMMANDS = {
    "register": "2D/3D registration of X-rays to a CT",
    "fit": "train a pose-regression network on DRRs rendered on the fly",
    "validate": "validate a pose-regression network",
    "test": "test a pose-regression network on held-out sampled poses",
    "predict": "predict poses with a pose-regression network, written to predictions.json",
    "render": "render the embedded example CT and save pictures",
    "simulate": "simulate realistic X-rays of a CT at given poses: DICOM with the detector in its tags, TIFF, PNG",
}
#: The commands that are Lightning's subcommands of :class:`~drreg.cli.PoseRegressionCLI`.
REGRESSION_COMMANDS = ("fit", "validate", "test", "predict")
#: The default progress bar of every command.
PROGRESS_BAR = {"class_path": "lightning.pytorch.callbacks.RichProgressBar"}


def tensorboard_logger(save_dir: str) -> dict[str, Any]:
    """The default logger of a command, as a config entry: TensorBoard, ``version_<n>`` folders in ``save_dir``."""
    return {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": save_dir, "name": ""},
    }


#: What a run leaves in its folder (globs in the logger's folder). A run that would write into a folder holding any
#: of them refuses to start (``--overwrite true`` lets it), so that no run replaces another's results.
_RESULT_FILES = (
    "poses.json",
    "overlay.png",
    "config*.yaml",
    "predictions*.json",
    "hparams.yaml",
    "metrics.csv",
    "events.out.tfevents.*",
    "checkpoints/*.ckpt",
)


def previous_results(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    """The files of ``folder`` that match the globs ``patterns`` (a previous run's results), in pattern order."""
    return [path for pattern in patterns for path in sorted(folder.glob(pattern))]


def remove_results(paths: list[Path], keep: Path | None = None) -> None:
    """``--overwrite true``: delete a previous run's result files (all but ``keep``), so that none mixes with the new
    run's."""
    kept = keep.resolve() if keep is not None else None
    for path in paths:
        if path.resolve() != kept:
            path.unlink()


class DrregCLI(LightningCLI):
    """What drreg's commands share: the forced :class:`OverlayLogger` and :class:`RenderThroughput` callbacks
    (configured under ``overlay.*`` and ``throughput.*``), a rich progress bar by default, a saved config, and
    ``--overwrite``: a run refuses to start when its folder (or an output file given by path) already holds a
    previous run's results, unless given ``--overwrite true``. ``drreg fit --ckpt_path`` with a checkpoint of the
    folder it writes into resumes that run: allowed, and the earlier ``config.yaml`` is kept as ``config_<n>.yaml``."""

    #: default ``every_n_steps`` of the forced callbacks: (overlay, throughput).
    CALLBACK_PERIODS: tuple[int, int] = (25, 10)

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(OverlayLogger, "overlay")
        parser.add_lightning_class_args(RenderThroughput, "throughput")
        overlay, throughput = self.CALLBACK_PERIODS
        parser.set_defaults({"overlay.every_n_steps": overlay, "throughput.every_n_steps": throughput})
        # A rich progress bar by default; --trainer.callbacks [] or --trainer.enable_progress_bar false removes it.
        parser.set_defaults({"trainer.callbacks": [PROGRESS_BAR]})
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="write into a folder that holds a previous run's results, deleting them first (default: false, "
            "refuse to start); config.yaml records false, so that re-running it replaces nothing",
        )

    @override
    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        # --trainer.enable_progress_bar false drops the default progress bar instead of failing on it.
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("enable_progress_bar") is False and trainer_config.get("callbacks"):
            trainer_config["callbacks"] = [c for c in trainer_config["callbacks"] if not isinstance(c, ProgressBar)]
        trainer = super().instantiate_trainer(**kwargs)
        self._protect_results(trainer)
        return trainer

    def _protect_results(self, trainer: Trainer) -> None:
        """Refuse to start a run that would replace a previous run's results; keep a resumed run's earlier config.

        Raises:
            FileExistsError: the log folder holds a previous run's results, or an output file given by path exists,
                and ``--overwrite`` is false.
        """
        overwrite = bool(self._get(self.config_init, "overwrite", False))
        # --overwrite is an order to this command, not a setting of the run: the config.yaml saved in the folder
        # says false, so that re-running a saved config never replaces results.
        self.config.get(str(self.subcommand), self.config)["overwrite"] = False
        if getattr(rank_zero_only, "rank", 0) != 0:  # the other processes start once rank 0 has written
            return
        log_dir = Path(trainer.log_dir or ".")
        if self._resumes(trainer, log_dir):
            config = log_dir / "config.yaml"
            if config.is_file():
                index = 0
                while (log_dir / f"config_{index}.yaml").exists():
                    index += 1
                config.rename(log_dir / f"config_{index}.yaml")
            return
        previous = previous_results(log_dir, _RESULT_FILES)
        if overwrite:
            # Event files, checkpoints and overlays of the previous run would mix with the new run's (TensorBoard
            # would draw both runs' curves as one); a checkpoint given as --ckpt_path is kept: the run reads it.
            ckpt_path = self._get(self.config_init, "ckpt_path")
            remove_results(previous, keep=Path(ckpt_path) if ckpt_path else None)
            return
        if previous:
            names = ", ".join(str(path.relative_to(log_dir)) for path in previous[:5])
            names += f" and {len(previous) - 5} more" if len(previous) > 5 else ""
            resume = ""
            if self.subcommand == "fit" and (log_dir / "checkpoints" / "last.ckpt").is_file():
                resume = f"; to resume its training, pass --ckpt_path {log_dir / 'checkpoints' / 'last.ckpt'}"
            raise FileExistsError(
                f"{log_dir} already holds a previous run's results ({names}); refusing to overwrite them: write to "
                "a new folder (leave --trainer.logger.init_args.version unset for the next free version_<n>, or "
                f"give an unused one) or pass --overwrite true to replace them{resume}"
            )
        for path in self._output_paths(trainer):
            if path.exists():
                raise FileExistsError(
                    f"{path} already exists (a previous run's results); refusing to overwrite it: give another path "
                    "or pass --overwrite true to replace it"
                )

    def _resumes(self, trainer: Trainer, log_dir: Path) -> bool:
        """Whether this is ``drreg fit --ckpt_path`` with a checkpoint of the folders it writes into (the log folder
        or a checkpoint callback's ``dirpath``): that continues the run that wrote them, and overwrites nothing."""
        ckpt_path = self._get(self.config_init, "ckpt_path")
        if self.subcommand != "fit" or not ckpt_path:
            return False
        if ckpt_path == "last":  # Lightning looks for it in this run's checkpoint folder
            return True
        folders = [log_dir, *checkpoint_folders(trainer)]
        return any(Path(ckpt_path).resolve().is_relative_to(folder.resolve()) for folder in folders)

    def _output_paths(self, trainer: Trainer) -> list[Path]:
        """Output files given by path, outside the log folder (subclasses list theirs)."""
        return []

    def _overlay_png(self) -> list[Path]:
        overlay = self._get(self.config_init, "overlay")
        return [Path(overlay.png)] if overlay.save_png and overlay.png else []


def checkpoint_folders(trainer: Trainer) -> list[Path]:
    """The folders given to the trainer's checkpoint callbacks (``dirpath``; by default they use the log folder)."""
    folders = (getattr(callback, "dirpath", None) for callback in trainer.checkpoint_callbacks)
    return [Path(folder) for folder in folders if folder]
