"""The compute floor of a DRR: its voxel visits times a measured time per visit (used by ``render.py``).

A *visit* is one voxel read: Siddon reads each voxel a ray crosses once; trilinear reads the 8 corners of each
sample that reaches the grid. The *time per visit* is measured with drreg's own fused kernel on volumes small
enough to stay in cache (32³ and 64³ float32, at most 1 MiB), one thread, along the same rays scaled into them:
for Siddon the slope of time over visits between the two, so the per-ray cost (entry into the box, writing the
pixel) drops out; for trilinear, whose samples per ray do not grow with the grid, the 64³ time over its visits.
It is what a visit costs when memory is free. ``visits x time per visit / threads`` is then the time the same work
would take if the CT fitted in cache, so ``x visits`` shows how much of the measured time goes to memory and
scheduling. A forward + backward pass visits every voxel twice (the forward, then the pose-gradient kernel).
Siddon visits are counted inside the box of non-zero voxels (:func:`occupied_box`): the kernels skip the shell of
exact zeros around it (``drreg/render/kernels/_numba_occupancy.py``), so the floor counts the work they still do.
Trilinear visits count every sample in reach of the grid: its gradient kernels walk them all, and its forward kernel,
which skips the samples of eight zero corners, gets a floor a little too high (an ``x visits`` a little too low).

    python benchmarks/floor.py            # prints the visits and the floor of the default 200² configuration
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

_SMALL = (32, 64)  # voxels per axis of the two cache-resident volumes


def voxel_rays(path: Path, height: int, batch: int, rotation, translation) -> tuple[tuple[int, int, int], ...]:
    """Shape (X, Y, Z) and the rays (R, 3) float64 in voxel-index coordinates of ``batch`` copies of one pose."""
    from drreg import DRR, read
    from drreg.pose import convert

    drr = DRR(read(path), sdd=1020.0, height=height, delx=400.0 / height)
    rot = torch.tensor([rotation], dtype=torch.float64).repeat(batch, 1)
    xyz = torch.tensor([translation], dtype=torch.float64).repeat(batch, 1)
    pose = convert(rot, xyz, parameterization="euler_angles", convention="ZXY")
    image_source, image_target = drr.detector(pose, None)
    world_to_voxel = drr.world_to_voxel.double()  # (4, 4): world mm -> voxel index
    source = image_source.double() @ world_to_voxel[:3, :3].mT + world_to_voxel[:3, 3]
    target = image_target.double() @ world_to_voxel[:3, :3].mT + world_to_voxel[:3, 3]
    source = source.expand_as(target).reshape(-1, 3).contiguous()
    return tuple(drr.density.shape), source, target.reshape(-1, 3).contiguous()


def occupied_box(path: Path) -> tuple[int, int, int, int, int, int]:
    """(lo0, hi0, lo1, hi1, 0, Z): the x and y ranges of the voxels of non-zero density (numpy), all of z."""
    from drreg import DRR, read

    density = DRR(read(path), sdd=1020.0, height=8, delx=50.0).density.detach().numpy()
    x, y, _ = (density != 0).nonzero()
    if len(x) == 0:
        return (0, 0, 0, 0, 0, density.shape[2])
    return (int(x.min()), int(x.max()) + 1, int(y.min()), int(y.max()) + 1, 0, density.shape[2])


def _box_crossing(shape, source, target, low, high) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entry and exit parameters (R,) of the lines on the box [low, n + high] per axis (floats or (3,) tensors),
    and whether they hit it."""
    n = torch.tensor(shape, dtype=torch.float64)
    direction = target - source
    direction = torch.where(direction.abs() < 1e-12, torch.full_like(direction, 1e-12), direction)
    a = (low - source) / direction
    b = (n + high - source) / direction
    entry = torch.minimum(a, b).amax(-1)
    exit_ = torch.maximum(a, b).amin(-1)
    return entry, exit_, entry < exit_


def siddon_visits(shape, source: torch.Tensor, target: torch.Tensor, box=None) -> int:
    """Voxels crossed by the rays: per ray, 1 + the voxel planes it crosses inside the grid, or inside ``box``
    (lo0, hi0, lo1, hi1, lo2, hi2) of it."""
    box = box or (0, shape[0], 0, shape[1], 0, shape[2])
    lo = torch.tensor(box[0::2], dtype=torch.float64)
    hi = torch.tensor(box[1::2], dtype=torch.float64)
    n = torch.tensor(shape, dtype=torch.float64)
    entry, exit_, hit = _box_crossing(shape, source, target, lo - 0.5, hi - n - 0.5)
    direction = target - source
    first = torch.floor(source + entry[:, None] * direction + 0.5)
    last = torch.floor(source + exit_[:, None] * direction + 0.5)
    crossings = (last - first).abs().sum(-1).clamp(max=float((hi - lo).sum()))
    return int((1 + crossings)[hit].sum())


def trilinear_visits(shape, source: torch.Tensor, target: torch.Tensor, n_points: int) -> int:
    """Corner reads of the samples (DiffDRR's sampling, as drreg's) that reach the grid: 8 per sample."""
    from drreg.render.trilinear import alpha_range

    bounds = alpha_range(shape, source, target)
    alphas = torch.linspace(0, 1, n_points, dtype=torch.float64) * (bounds[1] - bounds[0]) + bounds[0]
    n = torch.tensor(shape, dtype=torch.float64)
    total = 0
    for start in range(0, len(source), 4096):  # chunks: (4096, n_points, 3) points at a time
        s, t = source[start : start + 4096], target[start : start + 4096]
        points = s[:, None] + alphas[None, :, None] * (t - s)[:, None]
        total += int(((points >= -1) & (points < n)).all(-1).sum())
    return 8 * total


def visits(shape, source: torch.Tensor, target: torch.Tensor, method: str, n_points: int | None, box=None) -> int:
    """Voxel visits of the rays for ``method`` ("siddon", walked through ``box`` if given, or "trilinear")."""
    if method == "siddon":
        return siddon_visits(shape, source, target, box)
    return trilinear_visits(shape, source, target, int(n_points or 0))


def _in_cache_time(shape, source, target, method: str, n_points: int | None, size: int, repeats: int):
    """Median seconds (one thread) and visits of the fused forward of the rays scaled into a ``size``³ volume."""
    from drreg.render.kernels import siddon_fused, trilinear_fused
    from drreg.render.trilinear import alpha_range

    scale = torch.tensor([size / n for n in shape], dtype=torch.float64)
    small_source = (source + 0.5) * scale - 0.5  # the same lines through a size³ grid over the same box
    small_target = (target + 0.5) * scale - 0.5
    density = torch.rand((size,) * 3, generator=torch.Generator().manual_seed(0)) + 0.5
    bounds = alpha_range(density.shape, small_source, small_target)

    def run():
        if method == "siddon":
            return siddon_fused(density, small_source, small_target)
        return trilinear_fused(density, small_source, small_target, int(n_points or 0), bounds)

    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), visits(density.shape, small_source, small_target, method, n_points)


def time_per_visit(shape, source, target, method: str, n_points: int | None, repeats: int = 7) -> float:
    """Seconds per voxel visit of drreg's fused CPU kernel, one thread, volume in cache (module docstring)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (t_small, v_small), (t_large, v_large) = (
            _in_cache_time(shape, source, target, method, n_points, size, repeats) for size in _SMALL
        )
    finally:
        torch.set_num_threads(threads)
    if method == "siddon":
        return (t_large - t_small) / (v_large - v_small)
    return t_large / v_large


if __name__ == "__main__":
    import tempfile

    from render import ROTATION, TRANSLATION, make_volume

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "volume.nii.gz"
        make_volume(path, (512, 512, 133))
        shape, source, target = voxel_rays(path, 200, 1, ROTATION, TRANSLATION)
        box = occupied_box(path)
        print(f"whole volume: {siddon_visits(shape, source, target) / 1e6:.1f} M Siddon visits; box {box}")
        for method, n_points in (("siddon", None), ("trilinear", 250)):
            count = visits(shape, source, target, method, n_points, box)
            per_visit = time_per_visit(shape, source, target, method, n_points)
            print(
                f"{method}: {count / 1e6:.1f} M visits per 200² DRR, {per_visit * 1e9:.2f} ns per visit (in cache, "
                f"1 thread): floor {count * per_visit * 1e3:.1f} ms on 1 thread, {count * per_visit * 500:.1f} ms on 2"
            )
