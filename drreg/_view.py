"""Poses from which the detector cannot see the CT: refused before rendering, with where the volume is and the fix.

Private to drreg: :class:`drreg.drr.DRR` calls :func:`check_view` before every render.
"""

from __future__ import annotations

import warnings

import torch

from drreg.geometry.detector import Detector
from drreg.geometry.pose import RigidTransform

__all__ = ["check_view"]


def check_view(
    pose: RigidTransform,
    detector: Detector,
    affine: torch.Tensor,
    shape: tuple[int, ...],
    renderer: str,
    orientation: object,
) -> None:
    """Refuse poses from which the detector cannot see the CT; warn where Siddon would add mirrored content.

    Eight corners of the volume's box per pose, in the camera frame (source at 0, detector at z = sdd), are
    tested against the planes of the detector's viewing pyramid: all corners outside one plane mean no ray of
    the detector meets the volume.
    """
    if len(pose) == 0 or affine.device.type == "meta":
        return
    with torch.no_grad():
        camera_to_world = detector.camera_to_world(pose).matrix.detach()
        rotation, origin = camera_to_world[:, :3, :3], camera_to_world[:, :3, 3]
        # The camera frame may be mirrored (orientation="PA"), but its axes are orthonormal: R^-1 = R^T.
        points = (_volume_points(affine, shape) - origin[:, None]) @ rotation  # (B, 9, 3)
        x, y, z = points[:, :8].unbind(-1)
        sdd = detector.sdd
        half_width, half_height = detector.delx * detector.width / 2, detector.dely * detector.height / 2
        x_range = (detector.center_x - half_width, detector.center_x + half_width)
        y_range = (detector.center_y - half_height, detector.center_y + half_height)
        # Each side plane of the pyramid through the source and the detector's edges: inside is <= 0.
        sides = torch.stack(
            (sdd * x - x_range[1] * z, x_range[0] * z - sdd * x, sdd * y - y_range[1] * z, y_range[0] * z - sdd * y)
        )  # (4, B, 8)
        behind = (z <= 0).all(-1)
        aside = (sides > 0).all(-1).any(0)
        beyond = (z >= sdd).all(-1)
        # Part of the box behind the source and inside the mirrored pyramid (the rest of Siddon's whole lines).
        mirrored = (z < 0).any(-1) & ~(sides < 0).all(-1).any(0)
        # Trilinear integrates from the source to the detector only: beyond it, nothing is rendered.
        fatal = behind | aside | (beyond & (renderer == "trilinear"))
        flags = torch.stack((fatal, behind, aside, beyond, mirrored)).cpu()  # one device sync for every check
    if not bool(flags.any()):
        return
    fatal, behind, aside, beyond, mirrored = flags
    if bool(fatal.any()):
        index = int(fatal.nonzero()[0])
        centre = points[index, 8]
        raise ValueError(
            _invisible_message(
                detector,
                orientation,
                index,
                centre,
                camera_to_world[index],
                bool(behind[index]),
                bool(aside[index]),
                x_range,
                y_range,
            )  # fmt: skip
        )
    if bool(beyond.any()):
        warnings.warn(
            "the CT volume lies entirely beyond the detector plane (z > sdd in the camera frame) for at least one "
            "pose: no real X-ray sees it; Siddon integrates whole lines, so it still renders, but trilinear "
            "renders zeros. Check sdd and the translation.",
            stacklevel=4,
        )
    if bool(mirrored.any()) and renderer == "siddon":
        warnings.warn(
            "part of the CT volume lies behind the X-ray source for at least one pose (the source is inside the "
            "volume's bounding box or beside it): Siddon integrates whole lines, so that part is added to the "
            "image point-mirrored. Move the source out of the volume or use renderer='trilinear', which "
            "integrates from the source to the detector only.",
            stacklevel=4,
        )


def _volume_points(affine: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """(9, 3) world points (mm, float64): the 8 corners of the box ``[-1/2, n + 1/2]`` per axis (the trilinear
    renderer's box, which holds Siddon's ``[-1/2, n - 1/2]``), then the centre of the voxel grid."""
    affine = affine.to(torch.float64)  # DRR.to(dtype=...) may have cast the buffer
    size = torch.tensor(shape, dtype=torch.float64, device=affine.device)
    unit = torch.tensor([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=torch.float64)
    voxels = torch.cat((unit.to(affine.device) * (size + 1.0) - 0.5, ((size - 1.0) / 2.0)[None]))
    return voxels @ affine[:3, :3].mT + affine[:3, 3]


def _invisible_message(
    detector: Detector,
    orientation: object,
    index: int,
    centre: torch.Tensor,
    camera_to_world: torch.Tensor,
    behind: bool,
    aside: bool,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
) -> str:
    """The error for pose ``index``, whose volume no ray meets: where the volume is, and what to change."""
    x, y, z = centre.tolist()
    source = camera_to_world[:3, 3].tolist()
    look = camera_to_world[:3, 2].tolist()
    where = (
        f"for pose {index} the CT volume's centre is at camera (x, y, z) = ({x:.0f}, {y:.0f}, {z:.0f}) mm "
        f"(the source at 0, the detector at z = sdd = {detector.sdd:g} mm); the source is at world "
        f"({source[0]:.0f}, {source[1]:.0f}, {source[2]:.0f}) mm, looking along world "
        f"({look[0]:.2f}, {look[1]:.2f}, {look[2]:.2f})"
    )
    if behind:
        orientation = str(orientation)
        hint = {
            "AP": "with orientation='AP' the camera looks along world -y at zero rotation, so the source goes on "
            "the +y side of the CT: e.g. xyz = (0, 850, 0)",
            "PA": "with orientation='PA' the camera looks along world +y at zero rotation, so the source goes on "
            "the -y side of the CT: e.g. xyz = (0, -850, 0), not (0, 850, 0)",
        }.get(
            orientation,
            "with orientation=None the camera looks along world +z at zero rotation, so the "
            "source goes on the -z side of the CT: e.g. xyz = (0, 0, -850)",
        )
        return (
            f"the CT volume lies entirely behind the X-ray source, where no X-ray goes: {where}. Put the source on "
            f"the other side of the volume; {hint} (docs/pa_convention.md)."
        )
    if aside:
        return (
            f"the CT volume lies entirely outside the detector's field of view: {where}, while the detector spans "
            f"x in [{x_range[0]:g}, {x_range[1]:g}] and y in [{y_range[0]:g}, {y_range[1]:g}] mm at z = sdd. "
            "Check the translation (mm) and the rotation (radians unless degrees=True)."
        )
    return (
        f"the CT volume lies entirely beyond the detector plane, where renderer='trilinear' integrates nothing: "
        f"{where}. Increase sdd or bring the source closer to the volume."
    )
