"""Pose regression on the example CT: a time-boxed training with the recipe, then errors on held-out sampled poses.

Trains ``recipes/pose_regression.yaml`` as it is (``drreg fit``), stopped by ``--max-minutes`` of wall time if its
``max_steps`` take longer, then tests on the held-out test poses (``drreg test``: a seeded split the training never
draws) and compares the network's median rotation error with always predicting the mean pose of the sampler (the
reference pose). Prints one markdown table.

    python benchmarks/pose_regression.py                  # the recipe, at most 10 minutes of training
    python benchmarks/pose_regression.py --max-minutes 2 --threads 2
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def train(config: Path, max_minutes: float, extra: list[str], folder: str) -> tuple[Any, float]:
    """Fit a recipe with ``drreg fit``'s CLI (no run), stopped by ``max_minutes`` of wall time if its steps take longer.

    Args:
        config: the recipe.
        max_minutes: training wall-time cap (minutes).
        extra: more LightningCLI flags (e.g. ``--trainer.max_steps=500``).
        folder: where the logger writes.

    Returns:
        ``(cli, seconds)``: the ``PoseRegressionCLI`` after ``fit`` and the training's wall time.
    """
    from drreg.cli import PoseRegressionCLI

    minutes = int(max_minutes)
    seconds = round((max_minutes - minutes) * 60)
    flags = ["--config", str(config), "--trainer.max_time", f"00:00:{minutes:02d}:{seconds:02d}"]
    flags += ["--trainer.logger.init_args.save_dir", folder, "--trainer.enable_progress_bar", "false"]
    flags += ["--overlay.every_n_steps", "0", *extra]
    cli = PoseRegressionCLI(flags, run=False)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return cli, time.perf_counter() - start


def quiet() -> None:
    """Silence Lightning's info logs and the warnings of a benchmark's output."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "recipes" / "pose_regression.yaml")
    parser.add_argument("--max-minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("extra", nargs="*", help="more LightningCLI flags, e.g. --trainer.max_steps=500")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet()
    with tempfile.TemporaryDirectory() as folder:
        cli, train_seconds = train(args.config, args.max_minutes, args.extra, folder)
        steps = cli.trainer.global_step
        drrs = steps * cli.datamodule.batch_size
        metrics = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]
    network = metrics["test/rotation_error_deg_median"]
    baseline = metrics["test/baseline_rotation_error_deg_median"]
    data = cli.datamodule.hparams
    print(
        f"config: {args.config.name}; {data.height}x{data.height} {data.renderer} DRRs of the example CT; sampler "
        f"{cli.datamodule.sampler!r}; torch {torch.__version__}, {args.threads} threads, device {cli.model.device}\n"
    )
    print("| training steps | training time (s) | training DRRs | DRRs/s (rendered and trained on) | test poses "
          "| median rotation error, network (°) | median rotation error, mean pose (°) | ratio | mean translation "
          "error (mm) | mean 3D mTRE (mm) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {steps} | {train_seconds:.0f} | {drrs} | {drrs / train_seconds:.0f} | {data.test_size} | {network:.2f} | "
        f"{baseline:.2f} | {baseline / network:.1f}× | {metrics['test/translation_error_mm']:.1f} | "
        f"{metrics.get('test/mtre_mm', float('nan')):.1f} |"
    )


if __name__ == "__main__":
    main()
