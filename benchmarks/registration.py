"""Registration success rate and time to success from random starts, with the recipe's defaults.

For each of ``--runs`` random starting offsets (uniform in ±``--rotation-deg`` per Euler angle and ±``--translation-mm``
per translation component, seeded) around a hidden pose, ``drreg register`` runs with ``recipes/register.yaml`` as it
is (only the start, the hidden pose and the output folder change) on the embedded example CT. A run succeeds when the
3D mTRE of its final pose is below 1 mm; its time to success is the wall time from the first optimisation step to the
first step whose mTRE is below 1 mm (rendering of the synthetic target and start-up excluded). Prints a markdown table.

    python benchmarks/registration.py                       # 20 starts, ±15°, ±30 mm
    python benchmarks/registration.py --runs 5 --config recipes/register.yaml --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from lightning.pytorch import Callback

ROOT = Path(__file__).resolve().parents[1]
HIDDEN_POSE = [0.0, 0.0, 0.0, 0.0, 850.0, 0.0]  # Euler ZXY degrees, mm: AP from 850 mm


class _Clock(Callback):
    """Records (seconds since the first step, mTRE) after every step."""

    def __init__(self) -> None:
        self.trace: list[tuple[float, float]] = []
        self.start: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        mtre = trainer.callback_metrics.get("train/mtre_mm")
        if mtre is not None:
            self.trace.append((time.perf_counter() - self.start, float(mtre)))


def run_once(
    config: Path, start: list[float], output: Path, threshold: float, overrides: Sequence[str] = ()
) -> dict[str, float]:
    """One ``drreg register`` run of ``config`` from ``start`` to targets at :data:`HIDDEN_POSE`, as the user runs
    it (``RegistrationCLI``), with extra command-line ``overrides``; its errors, steps, seconds, time to success."""
    from drreg.cli import RegistrationCLI

    args = ["--config", str(config), "--model.initial_poses", str([start]), "--data.true_poses", str([HIDDEN_POSE])]
    args += ["--trainer.logger.init_args.save_dir", str(output), "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.callbacks", "[]", "--overlay.every_n_steps", "0", *overrides]
    cli = RegistrationCLI(args)
    clock = _Clock()
    cli.trainer.callbacks.append(clock)
    with contextlib.redirect_stdout(None):
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    results = cli.model.results()
    errors = results["targets"][0]["errors"]
    reached = [seconds for seconds, mtre in clock.trace if mtre < threshold]
    return {
        "mtre_mm": errors["mtre_mm"],
        "rotation_error_deg": errors["rotation_error_deg"],
        "translation_error_mm": errors["translation_error_mm"],
        "steps": results["step"],
        "seconds": clock.trace[-1][0] if clock.trace else float("nan"),
        "time_to_success": reached[0] if reached and errors["mtre_mm"] < threshold else float("nan"),
    }


def random_offsets(runs: int, rotation_deg: float, translation_mm: float, seed: int) -> torch.Tensor:
    """(runs, 6) start offsets, uniform in ±``rotation_deg`` per Euler angle and ±``translation_mm`` per
    translation component (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    half = torch.tensor([rotation_deg] * 3 + [translation_mm] * 3, dtype=torch.float64)
    return (torch.rand(runs, 6, generator=generator, dtype=torch.float64) * 2 - 1) * half


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "recipes" / "register.yaml")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rotation-deg", type=float, default=15.0)
    parser.add_argument("--translation-mm", type=float, default=30.0)
    parser.add_argument("--threshold-mm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    offsets = random_offsets(args.runs, args.rotation_deg, args.translation_mm, args.seed)
    print(
        f"config: {args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config}; "
        f"{args.runs} starts within ±{args.rotation_deg:g}° and ±{args.translation_mm:g} mm of {HIDDEN_POSE}; "
        f"success = mTRE < {args.threshold_mm:g} mm; torch {torch.__version__}, {args.threads} threads\n",
        flush=True,
    )
    print(
        "| run | start offset (α β γ °, tx ty tz mm) | steps | seconds | mTRE (mm) | rot err (°) | trans err (mm) "
        "| success | time to success (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index, offset in enumerate(offsets):
            start = [float(v) for v in torch.tensor(HIDDEN_POSE, dtype=torch.float64) + offset]
            row = run_once(args.config, start, Path(folder), args.threshold_mm)
            rows.append(row)
            success = row["mtre_mm"] < args.threshold_mm
            print(
                f"| {index} | {' '.join(f'{v:+.1f}' for v in offset.tolist())} | {row['steps']} | "
                f"{row['seconds']:.1f} | {row['mtre_mm']:.3f} | {row['rotation_error_deg']:.3f} | "
                f"{row['translation_error_mm']:.3f} | {'yes' if success else 'no'} | "
                f"{row['time_to_success']:.1f} |",
                flush=True,
            )
    successes = [row for row in rows if row["mtre_mm"] < args.threshold_mm]
    times = [row["time_to_success"] for row in successes]
    print(
        f"\nsuccess rate: {len(successes)}/{len(rows)} = {100 * len(successes) / len(rows):.0f} %; "
        f"median time to success {statistics.median(times) if times else float('nan'):.1f} s "
        f"(min {min(times, default=float('nan')):.1f}, max {max(times, default=float('nan')):.1f}); "
        f"median final mTRE {statistics.median(row['mtre_mm'] for row in rows):.3f} mm"
    )


if __name__ == "__main__":
    sys.exit(main())
