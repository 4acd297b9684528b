"""Ray chunking: keeps the reference renderers' memory bounded whatever the image size."""

from __future__ import annotations

import math

__all__ = ["DEFAULT_MEMORY_BUDGET", "rays_per_chunk", "ray_chunks"]

# Bytes of temporaries a renderer may hold at once for one chunk of rays (forward or backward).
DEFAULT_MEMORY_BUDGET = 256 * 2**20


def rays_per_chunk(bytes_per_ray: int, n_rays: int, budget: int | None = None) -> int:
    """Largest number of rays whose temporaries fit in ``budget`` bytes (at least 1, at most ``n_rays``)."""
    budget = DEFAULT_MEMORY_BUDGET if budget is None else budget
    return max(1, min(n_rays, budget // max(bytes_per_ray, 1)))


def ray_chunks(n_rays: int, chunk: int) -> list[slice]:
    """Split ``range(n_rays)`` into contiguous slices of at most ``chunk`` rays."""
    return [slice(i * chunk, min((i + 1) * chunk, n_rays)) for i in range(math.ceil(n_rays / chunk))]
