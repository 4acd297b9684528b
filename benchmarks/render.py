"""Rendering speed and memory, drreg side by side with its peers, printed as one markdown table.

Columns: drreg's pure-torch reference (``torch``), drreg's fused kernels (``fused``: numba on CPU, Triton on
CUDA), and DiffDRR 0.6.1 / nanodrr when installed (benchmark-only extras, ``make bench-deps``; drreg itself
never imports them). Volume: a CT-sized 512 x 512 x 133 int16 volume (0.8 x 0.8 x 2.5 mm), written once to
NIfTI so every renderer reads the same file.

    python benchmarks/render.py                                   # CPU default: 200^2 Siddon, fwd and fwd+bwd
    python benchmarks/render.py --sizes 200 512 --renderers siddon trilinear250 trilinear500 --batches 1 8

Each cell of the table (one configuration, one implementation) runs in a fresh child process (this script
re-invoked with a hidden ``--cell``), so that no implementation inherits what an earlier one left in the
allocator or the resident set. The child builds the renderer, runs it once (warm-up: JIT compilation, caches),
takes its baseline there, and reports its times and peak memory to the parent as one JSON line on stdout.

Times are per DRR (a batch's time divided by its size): median, min and max over ``--repeats`` runs after
one warm-up. Peak memory is the extra resident memory over that baseline (CPU, sampled every 2 ms) or the
extra allocated CUDA memory (``max_memory_allocated``) during the timed runs. Two floors: ``x read`` is the
measured time over the time to read the volume once (plus write the images) at the device's measured copy
bandwidth; ``x visits`` (CPU) is the measured time over the DRR's voxel visits times the time per visit that
drreg's kernel takes with the volume in cache, divided by the threads (``floor.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import floor as visit_floor
import torch

RENDERERS = {"siddon": ("siddon", None), "trilinear250": ("trilinear", 250), "trilinear500": ("trilinear", 500)}
IMPLEMENTATIONS = ("drreg-torch", "drreg-fused", "diffdrr", "nanodrr")
ROTATION = (0.1, -0.05, 0.02)  # radians, Euler ZXY
TRANSLATION = (0.0, 850.0, 0.0)  # mm
# Prefix of the child's result line on stdout (anything else a library prints there is ignored).
_RESULT = "drreg-benchmark-cell: "


class Skip(Exception):
    """This implementation cannot run this configuration (the message says why)."""


def make_volume(path: Path, shape: tuple[int, int, int], seed: int = 0) -> None:
    """A CT-like int16 volume: an elliptical body of soft tissue with bone-like blobs, air outside."""
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    body = (x / 0.9) ** 2 + (y / 0.7) ** 2 < 1
    hu = np.where(body, 40.0, -1000.0) + rng.normal(0, 20, shape).astype(np.float32)
    hu[body & (x**2 + (y + 0.4) ** 2 < 0.02)] = 900.0  # a spine-like cylinder
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    nib.save(nib.Nifti1Image(hu.astype(np.int16), affine), str(path))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _PeakMemory:
    """Peak extra memory during a block: CUDA allocator peak, or sampled process RSS on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0

    def __enter__(self) -> _PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device)
        else:
            import psutil

            self.process = psutil.Process()
            self.baseline = self.process.memory_info().rss
            self.peak_rss = self.baseline
            self.running = True
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.baseline
        else:
            self.running = False
            self.thread.join()
            self.peak = self.peak_rss - self.baseline


def _pose(batch: int, device: torch.device, requires_grad: bool):
    rot = torch.tensor([ROTATION], device=device).repeat(batch, 1)
    xyz = torch.tensor([TRANSLATION], device=device).repeat(batch, 1)
    return rot.requires_grad_(requires_grad), xyz.requires_grad_(requires_grad)


def build(impl: str, path: Path, height: int, renderer: str, n_points: int | None, batch: int, device, backward):
    """A zero-argument callable rendering one batch (and back-propagating when ``backward``)."""
    delx = 400.0 / height  # a 400 mm detector
    if impl.startswith("drreg"):
        from drreg import DRR, read
        from drreg.render import resolve_backend

        backend = impl.split("-")[1]
        drr = DRR(read(path), sdd=1020.0, height=height, delx=delx, renderer=renderer, backend=backend).to(device)
        try:
            resolve_backend(backend, drr.density)
        except ValueError as error:
            raise Skip(str(error).split(";")[0]) from None
        kwargs = {"n_points": n_points} if n_points else {}

        def run():
            rot, xyz = _pose(batch, device, backward)
            image = drr(rot, xyz, parameterization="euler_angles", convention="ZXY", **kwargs)
            if backward:
                image.mean().backward()

        return run
    if impl == "diffdrr":
        try:
            from diffdrr.data import read as diffdrr_read
            from diffdrr.drr import DRR as DiffDRR
        except ImportError:
            raise Skip("not installed (make bench-deps)") from None
        drr = DiffDRR(diffdrr_read(str(path)), sdd=1020.0, height=height, delx=delx, renderer=renderer).to(device)
        kwargs = {"n_points": n_points} if n_points else {}

        def run():
            rot, xyz = _pose(batch, device, backward)
            image = drr(rot, xyz, parameterization="euler_angles", convention="ZXY", **kwargs)
            if backward:
                image.mean().backward()

        return run
    if impl == "nanodrr":
        if renderer != "trilinear":
            raise Skip("no Siddon renderer")
        try:
            from nanodrr.camera import make_k_inv, make_rt_inv
            from nanodrr.data import Subject
            from nanodrr.drr import DRR as NanoDRR
        except ImportError:
            raise Skip("not installed (make bench-deps)") from None
        subject = Subject.from_filepath(str(path)).to(device)
        k_inv = make_k_inv(1020.0, delx, delx, 0.0, 0.0, height, height, device=device)
        drr = NanoDRR(k_inv, torch.tensor([1020.0], device=device), height, height).to(device)

        def run():
            rot, xyz = _pose(batch, device, backward)
            image = drr(subject, make_rt_inv(torch.rad2deg(rot), xyz), n_samples=n_points)
            if backward:
                image.mean().backward()

        return run
    raise ValueError(f"unknown implementation {impl!r}")


def copy_bandwidth(device: torch.device) -> float:
    """Measured device memory bandwidth (bytes/s) of a large tensor copy (read + write)."""
    x = torch.empty(128 * 2**20, dtype=torch.float32, device=device).fill_(1.0)
    times = []
    for _ in range(5):
        _synchronize(device)
        start = time.perf_counter()
        x.clone()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * x.numel() * x.element_size() / min(times)


def measure(run, device, repeats: int, time_limit: float) -> tuple[list[float], int]:
    run()  # warm-up: JIT compilation, caches
    times = []
    with _PeakMemory(device) as memory:
        for _ in range(repeats):
            _synchronize(device)
            start = time.perf_counter()
            run()
            _synchronize(device)
            times.append(time.perf_counter() - start)
            if sum(times) > time_limit:
                break
    return times, memory.peak


def _set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    with contextlib.suppress(ImportError):
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def run_cell(cell: dict) -> dict:
    """One table cell, in this (fresh) process: build, warm up, time. Returns ``times`` and ``peak`` (bytes),
    or ``skipped`` / ``failed`` with the reason."""
    device = torch.device(cell["device"])
    _set_threads(cell["threads"])
    renderer, n_points = RENDERERS[cell["renderer"]]
    backward = cell["pass"] == "backward"
    try:
        run = build(cell["impl"], Path(cell["path"]), cell["size"], renderer, n_points, cell["batch"], device, backward)
        times, peak = measure(run, device, cell["repeats"], cell["time_limit"])
    except Skip as reason:
        return {"skipped": str(reason)}
    except (RuntimeError, MemoryError) as error:  # e.g. out of memory
        return {"failed": f"{type(error).__name__}: {str(error)[:60]}"}
    return {"times": times, "peak": peak}


def run_cell_in_child(cell: dict) -> dict:
    """:func:`run_cell` in a fresh Python process; its stderr is passed on, its result read from stdout."""
    command = [sys.executable, str(Path(__file__).resolve()), "--cell", json.dumps(cell)]
    child = subprocess.run(command, capture_output=True, text=True)
    sys.stderr.write(child.stderr)
    for line in reversed(child.stdout.splitlines()):
        if line.startswith(_RESULT):
            return json.loads(line[len(_RESULT) :])
    last = (child.stderr.strip().splitlines() or ["no output"])[-1]  # e.g. killed for memory: no result line
    return {"failed": f"exit code {child.returncode}: {last[:60]}"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200])
    parser.add_argument("--renderers", nargs="+", default=["siddon"], choices=sorted(RENDERERS))
    parser.add_argument("--passes", nargs="+", default=["forward", "backward"], choices=["forward", "backward"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--impls", nargs="+", default=list(IMPLEMENTATIONS), choices=IMPLEMENTATIONS)
    parser.add_argument("--volume", type=int, nargs=3, default=[512, 512, 133])
    parser.add_argument(
        "--ct",
        choices=["synthetic", "example"],
        default="synthetic",
        help="synthetic: a CT-like volume of --volume voxels; example: drreg's example chest CT (load_example_ct)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds of timed runs per configuration")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch and numba)")
    parser.add_argument("--cell", help=argparse.SUPPRESS)  # internal: run one cell (JSON) and print its result
    args = parser.parse_args(argv)
    if args.cell is not None:
        print(_RESULT + json.dumps(run_cell(json.loads(args.cell))), flush=True)
        return
    device = torch.device(args.device)
    _set_threads(args.threads)
    bandwidth = copy_bandwidth(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the children need the memory, not this process's allocator cache
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(
        f"device: {name}; copy bandwidth {bandwidth / 1e9:.1f} GB/s; CT {args.ct}; "
        f"torch {torch.__version__}; one fresh process per cell\n",
        flush=True,
    )
    per_visit: dict[str, float] = {}  # seconds per voxel visit in cache, by method
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "volume.nii.gz"
        if args.ct == "example":
            from drreg.data import load_example_ct

            example = load_example_ct().volume
            example.save(path)
            args.volume = list(example.shape[1:])
        else:
            make_volume(path, tuple(args.volume))
        volume_bytes = 4 * args.volume[0] * args.volume[1] * args.volume[2]
        notes = [f"volume: {'x'.join(map(str, args.volume))} voxels"]
        print(
            "| renderer | pixels | pass | batch | implementation | ms/DRR median | min | max | DRRs/s | rays/s "
            "| peak MiB | x read | x visits |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        configurations = itertools.product(args.renderers, args.sizes, args.passes, args.batches, args.impls)
        visits: dict[tuple[str, int], float] = {}  # voxel visits per DRR, by (renderer, size)
        box = visit_floor.occupied_box(path) if device.type == "cpu" else None  # the kernels skip the zeros around it
        for renderer_name, size, pass_name, batch, impl in configurations:
            floor = (volume_bytes + 4 * batch * size * size) / bandwidth / batch
            method, n_points = RENDERERS[renderer_name]
            if device.type == "cpu" and (renderer_name, size) not in visits:
                shape, source, target = visit_floor.voxel_rays(path, size, 1, ROTATION, TRANSLATION)
                visits[renderer_name, size] = visit_floor.visits(shape, source, target, method, n_points, box)
                if method not in per_visit:
                    per_visit[method] = visit_floor.time_per_visit(shape, source, target, method, n_points)
                notes.append(
                    f"{renderer_name} {size}²: {visits[renderer_name, size] / 1e6:.1f} M voxel visits per DRR, "
                    f"{per_visit[method] * 1e9:.2f} ns per visit in cache (1 thread)"
                )
            passes = 2 if pass_name == "backward" else 1  # the pose-gradient kernel visits every voxel again
            work = passes * visits.get((renderer_name, size), 0.0) * per_visit.get(method, 0.0) / args.threads
            row = f"| {renderer_name} | {size}² | {pass_name} | {batch} | {impl} |"
            cell = {
                "impl": impl,
                "path": str(path),
                "size": size,
                "renderer": renderer_name,
                "pass": pass_name,
                "batch": batch,
                "device": str(device),
                "repeats": args.repeats,
                "time_limit": args.time_limit,
                "threads": args.threads,
            }
            result = run_cell_in_child(cell)
            if "skipped" in result:
                print(f"{row} skipped: {result['skipped']} | | | | | | | |", flush=True)
                continue
            if "failed" in result:
                print(f"{row} failed: {result['failed']} | | | | | | | |", flush=True)
                continue
            per_drr = [t / batch for t in result["times"]]
            median = statistics.median(per_drr)
            print(
                f"{row} {1e3 * median:.1f} | {1e3 * min(per_drr):.1f} | {1e3 * max(per_drr):.1f} | {1 / median:.1f} | "
                f"{size * size / median:.3g} | {result['peak'] / 2**20:.0f} | {median / floor:.0f} | "
                f"{f'{median / work:.1f}' if work > 0 else ''} |",
                flush=True,
            )
        print("\n" + "\n".join(f"- {note}" for note in notes))


if __name__ == "__main__":
    sys.exit(main())
