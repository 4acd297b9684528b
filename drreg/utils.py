"""DiffDRR 0.6.1's ``diffdrr.utils``: resampling an image to new intrinsics, and the DRR's pinhole camera (kornia).

``get_pinhole_camera`` returns a kornia ``PinholeCamera`` (a subclass with DiffDRR's extra attributes) whose
extrinsics are solved by DLT from the projections of the volume's bounding box, as DiffDRR's.
"""

from __future__ import annotations

from typing import Any

import torch
from kornia.geometry.calibration import solve_pnp_dlt
from kornia.geometry.camera.pinhole import PinholeCamera as KorniaPinholeCamera
from kornia.geometry.transform import center_crop, resize, translate

from drreg.geometry.pose import RigidTransform

__all__ = ["resample", "get_pinhole_camera", "PinholeCamera"]


def resample(
    img: torch.Tensor,
    focal_len: float,
    delx: float,
    x0: float = 0,
    y0: float = 0,
    new_focal_len: float | None = None,
    new_delx: float | None = None,
    new_x0: float | None = None,
    new_y0: float | None = None,
) -> torch.Tensor:
    """Resample (B, C, H, W) images taken with ``(focal_len, delx, x0, y0)`` as if taken with the new intrinsics.

    Convention (DiffDRR's): translate by the change of principal point in pixels, crop the centre by the ratio of
    focal lengths and resize back, then pad by the ratio of pixel spacings and resize back; a ``None`` keeps a value.
    """
    new_focal_len = focal_len if new_focal_len is None else new_focal_len
    new_delx = delx if new_delx is None else new_delx
    new_x0 = x0 if new_x0 is None else new_x0
    new_y0 = y0 if new_y0 is None else new_y0
    height, width = img.shape[-2:]
    size = torch.tensor([height, width])
    shift = torch.tensor([[new_x0 - x0, new_y0 - y0]]) / delx
    out = translate(img.clone(), shift.to(img))
    crop = (size / (new_focal_len / focal_len)).long().tolist()
    out = resize(center_crop(out, (crop[0], crop[1])), (height, width))
    border = (size * (new_delx / delx - 1) / 2).long().tolist()
    out = torch.nn.functional.pad(out, [border[1], border[1], border[0], border[0]])
    return resize(out, (height, width))


class PinholeCamera(KorniaPinholeCamera):
    """kornia's pinhole camera of a DRR, with the detector's ``sdd`` (negative for ``"PA"``), ``delx``, ``dely``,
    ``x0``, ``y0`` (DiffDRR's principal point), and DiffDRR's ``center``, ``projmat`` and ``pose``."""

    def __init__(
        self,
        intrinsics: torch.Tensor,
        extrinsics: torch.Tensor,
        height: torch.Tensor,
        width: torch.Tensor,
        detector: Any,
        subject: Any,
    ) -> None:
        super().__init__(intrinsics, extrinsics, height, width)
        self.sdd = (-1 if subject.get("orientation") == "PA" else 1) * detector.sdd
        self.delx, self.dely = detector.delx, detector.dely
        self.x0, self.y0 = detector.x0, detector.y0

    @property
    def center(self) -> torch.Tensor:
        """(B, 3) camera centres ``-R^T t`` (world mm)."""
        return (-self.extrinsics[:, :3, :3].mT @ self.extrinsics[:, :3, 3:])[..., 0]

    @property
    def projmat(self) -> torch.Tensor:
        """(B, 3, 4) camera matrices ``K [R | t]``."""
        return (self.intrinsics @ self.extrinsics)[:, :3]

    @property
    def pose(self) -> RigidTransform:
        """The camera-to-world pose that the DRR renders from (the inverse of the extrinsics)."""
        return RigidTransform.unchecked(self.extrinsics).inverse()


def get_pinhole_camera(drr: Any, pose: RigidTransform, dtype: torch.dtype = torch.float64) -> PinholeCamera:
    """The pinhole camera (kornia) of a DRR at one pose.

    Args:
        drr: a :class:`drreg.drr.DRR`.
        pose: a batch of one camera pose.
        dtype: the precision of the DLT solve (the camera is returned in float32, as DiffDRR's).
    """
    detector = drr.detector
    sign = -1 if drr.subject.get("orientation") == "AP" else 1
    focal_x, focal_y = sign * detector.sdd / detector.delx, sign * detector.sdd / detector.dely
    centre_x = detector.x0 / detector.delx + detector.width / 2
    centre_y = detector.y0 / detector.dely + detector.height / 2
    intrinsics = torch.eye(4, dtype=dtype)[None]
    intrinsics[0, 0, 0], intrinsics[0, 1, 1], intrinsics[0, 0, 2], intrinsics[0, 1, 2] = (
        focal_x, focal_y, centre_x, centre_y,
    )  # fmt: skip
    (x_min, x_max), (y_min, y_max), (z_min, z_max) = drr.subject.volume.get_bounds()
    corners = torch.tensor(
        [[[x, y, z] for z in (z_min, z_max) for y in (y_min, y_max) for x in (x_min, x_max)]], dtype=dtype
    )
    pose = RigidTransform.unchecked(pose.matrix.detach().cpu().to(dtype))
    pixels = drr.perspective_projection(pose.to(drr.device), corners.to(drr.device)).cpu()  # float64 inside
    extrinsics = torch.eye(4, dtype=dtype)[None]
    extrinsics[:, :3, :] = solve_pnp_dlt(corners, pixels.to(dtype), intrinsics[..., :3, :3])
    return PinholeCamera(
        intrinsics.float(),
        extrinsics.float(),
        torch.tensor([detector.height]),
        torch.tensor([detector.width]),
        detector,
        drr.subject,
    )
