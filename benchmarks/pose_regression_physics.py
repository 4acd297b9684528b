"""Pose regression with physics domain randomisation against the current augmentation, on physics-simulated X-rays.

Trains ``recipes/pose_regression.yaml`` (the same network, seed and steps) once per arm:

- ``augmentation``: the recipe as it is (DRRs with its kornia ``SimToRealAugmentation``);
- ``physics``: no augmentation; training images simulated by ``PhysicsRandomization(group_size=8)`` (its default
  ranges: 60-120 kVp on a 5 kV grid, scatter-to-primary 0-0.4, blur 0-1.5 mm, Poisson noise of 1e3-1e5 photons per
  pixel, bone x0.8-2.0; one draw per 8 images of a batch, for speed);
- ``both``: the recipe's augmentation applied to the physics-randomised images;
- ``plain``: neither (DRRs only).

Each network is then tested on the same held-out test poses (the data module's seeded test split), rendered twice:
as plain DRRs, and as X-rays of one fixed physics that no training image drew exactly (:data:`TEST_PHYSICS`: 90 kVp,
scatter-to-primary 0.25, 0.7 mm blur, Poisson noise of 5000 photons per pixel, bone density x1.5). Prints one
markdown table: median rotation error (°) and median translation error (mm) on each test set.

    python benchmarks/pose_regression_physics.py --steps 1000                       # all arms
    python benchmarks/pose_regression_physics.py --steps 300 --arms augmentation physics --threads 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pose_regression import ROOT, quiet, train  # noqa: E402  # the benchmark next to this one

from drreg import RigidTransform  # noqa: E402
from drreg.metrics import rotation_error_deg, translation_error_mm  # noqa: E402
from drreg.regression import PhysicsRandomization, PoseRegressionDataModule, PoseRegressionModule  # noqa: E402

_PHYSICS = '{"class_path": "drreg.regression.PhysicsRandomization", "init_args": {"group_size": 8}}'
ARMS: dict[str, list[str]] = {
    "augmentation": [],
    "physics": ["--data.augmentation", "null", "--data.physics", _PHYSICS],
    "both": ["--data.physics", _PHYSICS],
    "plain": ["--data.augmentation", "null"],
}
"""LightningCLI flags of each arm, on top of the recipe."""

TEST_PHYSICS = PhysicsRandomization.fixed(
    kvp=90.0, scatter_to_primary=0.25, blur_mm=0.7, photons_per_pixel=5e3, bone_scale=1.5
)
"""The physics of the simulated test X-rays."""

TEST_SEED = 2026  # of the test images' noise


def make_test_set(data: PoseRegressionDataModule, chunk: int = 32) -> dict[str, torch.Tensor]:
    """The test poses and their plain DRRs and simulated X-rays (``(N, 4, 4)``, ``(N, 1, H, W)`` twice)."""
    dataset = data.dataset("test")
    poses = torch.stack([dataset[i]["pose"] for i in range(len(dataset))])
    generator = torch.Generator().manual_seed(TEST_SEED)
    plain, physics = [], []
    for batch in poses.split(chunk):
        plain.append(data.render_batch({"pose": batch}, training=False)["image"])
        physics.append(data.render_physics(batch, TEST_PHYSICS, generator))
    return {"pose": poses, "plain": torch.cat(plain), "physics": torch.cat(physics)}


def errors(model: PoseRegressionModule, images: torch.Tensor, poses: torch.Tensor) -> tuple[float, float]:
    """Median rotation error (°) and median translation error (mm) of the network on ``images``."""
    model.eval()
    with torch.no_grad():
        predicted = RigidTransform(torch.cat([model(batch).matrix for batch in images.split(64)]))
    true = RigidTransform(poses.to(predicted.matrix.dtype))
    rotation = rotation_error_deg(predicted, true).median()
    translation = translation_error_mm(predicted, true).median()
    return float(rotation), float(translation)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "recipes" / "pose_regression.yaml")
    parser.add_argument("--steps", type=int, default=1000, help="training steps of every arm")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=["augmentation", "physics", "both"])
    parser.add_argument("--max-minutes", type=float, default=12.0, help="wall-time cap of each arm's training")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("extra", nargs="*", help="more LightningCLI flags for every arm")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet()
    rows: list[dict[str, Any]] = []
    tests: dict[str, torch.Tensor] | None = None
    for arm in args.arms:
        with tempfile.TemporaryDirectory() as folder:
            extra = [f"--trainer.max_steps={args.steps}", *ARMS[arm], *args.extra]
            cli, seconds = train(args.config, args.max_minutes, extra, folder)
        if tests is None:  # the same seeded test poses for every arm
            tests = make_test_set(cli.datamodule)
        model = cli.model
        reference = model.reference.matrix.expand(len(tests["pose"]), 4, 4)
        baseline = float(rotation_error_deg(RigidTransform(reference), RigidTransform(tests["pose"])).median())
        rows.append(
            {
                "arm": arm,
                "steps": cli.trainer.global_step,
                "seconds": seconds,
                "plain": errors(model, tests["plain"], tests["pose"]),
                "physics": errors(model, tests["physics"], tests["pose"]),
                "baseline": baseline,
            }
        )
        print(f"{arm}: {rows[-1]}", file=sys.stderr, flush=True)
    if tests is None:
        raise ValueError("no arm ran: give --arms")
    data = cli.datamodule.hparams
    print(
        f"config: {args.config.name}; {data.height}x{data.height} {data.renderer} images of the example CT; "
        f"{len(tests['pose'])} test poses; test physics {TEST_PHYSICS!r}; torch {torch.__version__}, "
        f"{args.threads} threads\n"
    )
    print("| training | steps | training time (s) | DRR test: median rotation error (°) | DRR test: median "
          "translation error (mm) | physics test: median rotation error (°) | physics test: median translation "
          "error (mm) | mean pose: median rotation error (°) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['arm']} | {row['steps']} | {row['seconds']:.0f} | {row['plain'][0]:.2f} | {row['plain'][1]:.1f} "
            f"| {row['physics'][0]:.2f} | {row['physics'][1]:.1f} | {row['baseline']:.2f} |"
        )


if __name__ == "__main__":
    main()
