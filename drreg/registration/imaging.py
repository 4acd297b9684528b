"""The imaging set-up of a registration: :class:`~drreg.imaging.Imaging` and the detector description it results in.

:class:`Imaging` (defined in ``drreg/imaging.py``, shared with pose regression) describes the data (ARCHITECTURE.md,
"Who owns what"): :class:`~drreg.registration.RegistrationData` holds it, completes it from what its X-ray files say
(DICOM tags) and renders its synthetic targets with a DRR of its own; :class:`~drreg.registration.RegistrationModule`
receives it (``imaging=data.imaging``; ``drreg register`` links it) and builds the DRR it optimises through. Neither
borrows the other's renderer. :func:`describe_detector` records the detector a registration used, stage by stage.
"""

from __future__ import annotations

from typing import Any

from drreg.drr import DRR
from drreg.imaging import INTRINSICS, Imaging

__all__ = ["Imaging", "INTRINSICS", "describe_detector"]


def describe_detector(
    drr: DRR, sizes: list[tuple[int, int]], scales: list[float], sources: dict[str, str]
) -> dict[str, Any]:
    """The detector in use, JSON-ready.

    Args:
        drr: the DRR at full scale.
        sizes: ``(rows, columns)`` of each coarse-to-fine stage (:meth:`CoarseToFine.stage_sizes`).
        scales: the scale of each stage.
        sources: where each of :data:`INTRINSICS` came from (:meth:`Imaging.detector_sources`).

    Returns:
        ``sdd``, ``height``, ``width``, ``delx``, ``dely``, ``x0``, ``y0`` of the full-scale detector (mm,
        pixels), ``sources``, and ``stages``: ``scale``, ``height``, ``width``, ``delx``, ``dely`` of each stage
        (the same area as the full detector).
    """
    detector = drr.detector
    height, width, delx, dely = detector.height, detector.width, float(detector.delx), float(detector.dely)
    stages = [
        {"scale": scale, "height": rows, "width": cols, "delx": delx * width / cols, "dely": dely * height / rows}
        for scale, (rows, cols) in zip(scales, sizes)
    ]
    return {
        "sdd": float(detector.sdd),
        "height": int(height),
        "width": int(width),
        "delx": delx,
        "dely": dely,
        "x0": float(detector.center_x),
        "y0": float(detector.center_y),
        "sources": dict(sources),
        "stages": stages,
    }
