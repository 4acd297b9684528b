"""Registration across the domain gap: the recipe on physics-simulated X-rays, read as a user reads raw files.

Three conditions, each ``--runs`` seeded random starts around a hidden pose (:data:`registration.HIDDEN_POSE`):

- ``same``: targets rendered with drreg's own DRR (the renderer the registration optimises through), ±15°/±30 mm;
- ``physics15``: physics-simulated targets, ±15° per Euler angle and ±30 mm per translation component;
- ``physics30``: the same targets, ±30° and ±60 mm.

Physics targets (``RegistrationData(physics=...)``): :class:`drreg.physics.XRayPhysics` at 80 kVp (a SpekPy
spectrum, CsI detector), scatter-to-primary 0.25 (40 mm kernel), 0.8 mm detector blur and Poisson noise of 5000
photons per pixel, bone density ×1.0, written as 16-bit TIFF files and read back with ``negative_log: true`` as a
user's raw X-ray files are; each run draws its own noise (``physics_seed`` = run index). The registration's DRR is
the recipe's plain one. Every run is ``drreg register --config <recipe>`` as the user runs it (``RegistrationCLI``,
:func:`registration.run_once`); only the start, the hidden pose, the targets and the output folder change.
Success: 3D mTRE of the final pose below 1 mm. Time to success: wall time from the first optimisation step to the
first step whose mTRE is below 1 mm (target simulation and start-up excluded). Prints a markdown table per run and
a summary table.

    python benchmarks/realistic_registration.py                                   # 3 conditions x 20 starts
    python benchmarks/realistic_registration.py --conditions physics15 --runs 5 \\
        --override=--model.loss=gradient_ncc                                     # try a recipe change
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark, when imported from elsewhere
from registration import HIDDEN_POSE, ROOT, random_offsets, run_once  # noqa: E402

PHYSICS = {
    "class_path": "drreg.physics.XRayPhysics",
    "init_args": {
        "kvp": 80.0,
        "scatter_to_primary": 0.25,
        "blur_mm": 0.8,
        "noise": "poisson",
        "photons_per_pixel": 5000.0,
        "output": "raw",
    },
}
BONE_SCALE = 1.0
CONDITIONS = {  # name: (physics targets, rotation half-width °, translation half-width mm)
    "same": (False, 15.0, 30.0),
    "physics15": (True, 15.0, 30.0),
    "physics30": (True, 30.0, 60.0),
}
DESCRIPTIONS = {
    "same": "same physics (drreg DRR targets), ±15°/±30 mm",
    "physics15": "physics targets (raw 16-bit TIFF), ±15°/±30 mm",
    "physics30": "physics targets (raw 16-bit TIFF), ±30°/±60 mm",
}


def physics_overrides(seed: int, folder: Path) -> list[str]:
    """Command-line overrides that make the targets physics-simulated raw files read with ``negative_log``."""
    return [
        f"--data.physics={json.dumps(PHYSICS)}",
        f"--data.physics_seed={seed}",
        f"--data.bone_scale={BONE_SCALE}",
        f"--data.physics_folder={folder}",
        "--data.negative_log=true",
    ]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_condition(
    name: str, config: Path, runs: int, seed: int, threshold: float, overrides: list[str], folder: Path
) -> list[dict[str, float]]:
    physics, rotation_deg, translation_mm = CONDITIONS[name]
    offsets = random_offsets(runs, rotation_deg, translation_mm, seed)
    print(f"\n### {DESCRIPTIONS[name]}\n", flush=True)
    print("| run | start offset (α β γ °, tx ty tz mm) | steps | seconds | mTRE (mm) | success | time to success (s) |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for index, offset in enumerate(offsets):
        start = [float(v) for v in torch.tensor(HIDDEN_POSE, dtype=torch.float64) + offset]
        extra = (physics_overrides(index, folder / f"{name}_{index}") if physics else []) + overrides
        row = run_once(config, start, folder / "runs", threshold, extra)
        rows.append(row)
        print(
            f"| {index} | {' '.join(f'{v:+.1f}' for v in offset.tolist())} | {row['steps']} | {row['seconds']:.1f} "
            f"| {row['mtre_mm']:.3f} | {'yes' if row['mtre_mm'] < threshold else 'no'} "
            f"| {row['time_to_success']:.1f} |",
            flush=True,
        )
    return rows


def summary_row(name: str, rows: list[dict[str, float]], threshold: float) -> str:
    successes = [row for row in rows if row["mtre_mm"] < threshold]
    mtre = [row["mtre_mm"] for row in rows]
    return (
        f"| {DESCRIPTIONS[name]} | {len(successes)}/{len(rows)} | {_median(mtre):.3f} | {max(mtre):.3f} "
        f"| {_median([row['time_to_success'] for row in successes]):.1f} "
        f"| {_median([row['seconds'] for row in rows]):.1f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "recipes" / "register.yaml")
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threshold-mm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--override", action="append", default=[], help="an extra drreg register argument, e.g. --override=--a=b"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    overrides = list(args.override)
    config = args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config
    print(
        f"config: {config} {' '.join(overrides)}; hidden pose {HIDDEN_POSE}; {args.runs} seeded starts per condition; "
        f"success = mTRE < {args.threshold_mm:g} mm; physics {json.dumps(PHYSICS['init_args'])}, bone_scale "
        f"{BONE_SCALE}; torch {torch.__version__}, {args.threads} threads",
        flush=True,
    )
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.conditions:
            results[name] = run_condition(
                name, args.config, args.runs, args.seed, args.threshold_mm, overrides, Path(folder)
            )
    print("\n| condition | successes | median mTRE (mm) | worst mTRE (mm) | median time to success (s) "
          "| median total time (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, rows in results.items():
        print(summary_row(name, rows, args.threshold_mm))


if __name__ == "__main__":
    sys.exit(main())
