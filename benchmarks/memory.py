"""Peak memory and time of one large DRR on the CPU (issue: 512 x 512 Siddon of a 512 x 512 x 133 CT).

Each configuration runs in a fresh process so that its peak resident set size (ru_maxrss) is its own.

    python benchmarks/memory.py                       # 512^2 Siddon, forward and forward+backward, torch and fused
    python benchmarks/memory.py --height 200 --renderer trilinear
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _child(args: argparse.Namespace) -> None:
    import torch

    from drreg import DRR, read

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    shape = tuple(args.volume)
    # A CT-sized volume: soft tissue with bony noise, 0.8 x 0.8 x 2.5 mm voxels.
    hu = (torch.rand(shape, generator=generator) * 1400 - 400).to(torch.int16)
    subject = read(hu, affine=torch.diag(torch.tensor([0.8, 0.8, 2.5, 1.0], dtype=torch.float64)))
    drr = DRR(
        subject, sdd=1020.0, height=args.height, delx=400.0 / args.height, renderer=args.renderer, backend=args.backend
    )
    rot = torch.tensor([[0.1, -0.05, 0.02]], requires_grad=args.backward)
    xyz = torch.tensor([[0.0, 850.0, 0.0]], requires_grad=args.backward)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        with torch.set_grad_enabled(args.backward):
            image = drr(rot, xyz, parameterization="euler_angles", convention="ZXY", n_points=args.n_points)
            if args.backward:
                image.mean().backward()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"median_s": statistics.median(times), "peak_rss_mib": peak / 1024, "before_render_mib": baseline / 1024}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--volume", type=int, nargs=3, default=[512, 512, 133])
    parser.add_argument("--renderer", default="siddon", choices=["siddon", "trilinear"])
    parser.add_argument("--n-points", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--backends", nargs="+", default=["torch", "fused"], choices=["torch", "fused"])
    parser.add_argument("--backend", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--backward", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    print("| renderer | backend | DRR | volume | pass | median time (s) | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for backend, backward in [(b, p) for b in args.backends for p in (False, True)]:
        command = [
            sys.executable,
            __file__,
            "--child",
            "--height",
            str(args.height),
            "--volume",
            *map(str, args.volume),
            "--renderer",
            args.renderer,
            "--n-points",
            str(args.n_points),
            "--threads",
            str(args.threads),
            "--repeats",
            str(args.repeats),
            "--backend",
            backend,
        ] + (["--backward"] if backward else [])
        result = json.loads(
            subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        )
        volume = "x".join(map(str, args.volume))
        kind = "forward+backward" if backward else "forward"
        print(
            f"| {args.renderer} | {backend} | {args.height}x{args.height} | {volume} | {kind} | "
            f"{result['median_s']:.2f} | {result['peak_rss_mib']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
